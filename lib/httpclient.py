"""The one HTTP(S) client, on both Pythons: a GET that follows redirects
(the update download) and the answer parser that a kept-alive connection
reuses (openHAB's REST API).

    r = await get(url, ca=der_bytes, user_agent="dtu-gateway/0.1.0")
    r.status, r.headers["etag"], r.length
    n = await r.readinto(memoryview(buf))   # 0 at the end; HttpError when cut short
    await r.close()

    r = Response(reader, writer, timeout)   # an answer on a connection of one's own
    await r.read_head(); body = await r.read_all(512, cut=True); r.keep_alive

- TLS always with certificate and host name checks (lib/tlsctx.py) against
  the CA list passed in; never CERT_NONE. Plain http:// only where the URL
  says so (local mirrors, tests, openHAB on the LAN): then the update's
  sha256 checks are all that protect it. A redirect from https to http is
  refused.
- Redirects (GitHub's asset downloads answer 302 to another host) are
  followed up to 5 times; no credentials are ever sent (there are none), so
  none can leak to the other host.
- The body is never read whole unless asked for: readinto() fills the
  caller's buffer; Content-Length, chunked and read-to-close bodies are
  handled, and a body that ends early raises HttpError. Header lines are
  kept to 256 bytes (3 KB for a Location): github.com's long
  Content-Security-Policy is skipped, not stored; every read has a timeout.
"""
import asyncio

from micropython import const

_MAX_LINE = const(3072)
_MAX_HEADERS = const(64)
KEEP = ("content-length", "transfer-encoding", "location", "etag", "retry-after",
        "x-ratelimit-remaining", "x-ratelimit-reset", "content-type", "connection")


class HttpError(Exception):
    """A failed request; .status is the HTTP status when there was one."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status


def split_url(url):
    """"https://host:port/path" -> ("https", host, port, "/path")."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise HttpError("not an http(s) URL: %s" % url)
    hostport, _, path = rest.partition("/")
    host, port = hostport, 443 if scheme == "https" else 80
    if ":" in hostport:
        host, _, p = hostport.rpartition(":")
        if not p.isdigit():
            raise HttpError("bad port in %s" % url)
        port = int(p)
    if not host or "@" in host:
        raise HttpError("bad host in %s" % url)
    return scheme, host, port, "/" + path


class Response:
    def __init__(self, reader, writer, timeout):
        self.r, self.w = reader, writer
        self.timeout = timeout
        self.buf = bytearray(512)
        self.bs = self.be = 0      # buffered bytes: buf[bs:be]
        self.status = 0
        self.headers = {}
        self.length = None
        self.left = 0
        self.chunked = False
        self.chunk_left = 0
        self.done = False
        self.received = 0
        self.keep_alive = False    # the connection may carry the next request once the body is read

    async def _recv(self, mv):
        while True:
            if hasattr(self.r, "readinto"):   # MicroPython
                n = await asyncio.wait_for(self.r.readinto(mv), self.timeout)
            else:
                data = await asyncio.wait_for(self.r.read(len(mv)), self.timeout)
                n = len(data)
                mv[:n] = data
            if n is not None:                 # None: a TLS record not complete yet
                return n

    async def _read(self, mv):
        if self.bs < self.be:
            n = min(len(mv), self.be - self.bs)
            mv[:n] = memoryview(self.buf)[self.bs:self.bs + n]
            self.bs += n
            return n
        return await self._recv(mv)

    async def _line(self):
        """One line without its CRLF; lines over _MAX_LINE come back cut
        short (the rest is skipped). b"" at the end of the stream."""
        out = bytearray()
        while True:
            if self.bs >= self.be:
                self.bs, self.be = 0, await self._recv(memoryview(self.buf))
                if not self.be:
                    if not out:
                        raise HttpError("connection closed in the headers")
                    return bytes(out)
            b = self.buf
            i = self.bs
            while i < self.be and b[i] != 10:
                i += 1
            # only a Location may be long (a signed URL): other lines keep 256 bytes
            cap = 256 if len(out) >= 9 and bytes(out[:9]).lower() != b"location:" else _MAX_LINE
            room = cap - len(out)
            if room > 0:
                out += b[self.bs:min(i, self.bs + room)]
            if i < self.be:
                self.bs = i + 1
                return bytes(out).rstrip(b"\r")
            self.bs = self.be

    async def read_head(self):
        """The status line and the headers; the body is left to read."""
        line = await self._line()
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise HttpError("not an HTTP answer")
        self.status = int(parts[1])
        http10 = parts[0] == b"HTTP/1.0"
        for _ in range(_MAX_HEADERS):
            line = await self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower().decode()
            if name in KEEP:
                self.headers[name] = value.strip().decode()
        else:
            raise HttpError("too many header lines")
        te = self.headers.get("transfer-encoding", "").lower()
        self.chunked = "chunked" in te
        cl = self.headers.get("content-length")
        if self.status in (204, 304) or self.status < 200:
            self.length = self.left = 0          # no body, whatever the headers say
            self.chunked = False
        elif cl is not None and not self.chunked:
            if not cl.isdigit():
                raise HttpError("bad Content-Length")
            self.length = self.left = int(cl)
        conn = self.headers.get("connection", "").lower()
        framed = self.chunked or self.length is not None
        self.keep_alive = framed and conn != "close" and (not http10 or conn == "keep-alive")

    async def readinto(self, mv):
        """Up to len(mv) bytes of the body into mv; 0 at its end."""
        if self.done or not len(mv):
            return 0
        if self.chunked:
            if self.chunk_left == 0:
                line = await self._line()
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise HttpError("bad chunked encoding")
                if size == 0:
                    while await self._line():   # trailers up to the empty line
                        pass
                    self.done = True
                    return 0
                self.chunk_left = size
            n = await self._read(mv[:min(len(mv), self.chunk_left)])
            if not n:
                raise HttpError("download cut short after %d bytes" % self.received)
            self.chunk_left -= n
            if self.chunk_left == 0:
                await self._line()              # the CRLF after the chunk
        elif self.length is not None:
            if self.left == 0:
                self.done = True
                return 0
            n = await self._read(mv[:min(len(mv), self.left)])
            if not n:
                raise HttpError("download cut short: %d of %d bytes" % (self.received, self.length))
            self.left -= n
        else:
            n = await self._read(mv)
            if not n:
                self.done = True
                return 0
        self.received += n
        return n

    async def read_all(self, limit, cut=False):
        """The whole (small) body as bytes; over limit bytes HttpError, or
        with cut=True its first limit bytes (the rest read and dropped)."""
        out = bytearray()
        mv = memoryview(bytearray(256))
        while True:
            n = await self.readinto(mv)
            if not n:
                return bytes(out)
            if len(out) + n > limit and not cut:
                raise HttpError("answer larger than %d bytes" % limit)
            out += mv[:max(0, min(n, limit - len(out)))]

    async def close(self):
        try:
            self.w.close()
            await asyncio.wait_for(self.w.wait_closed(), 5)
        except Exception:  # already gone (or no TLS goodbye): nothing to tidy
            pass


async def _open(scheme, host, port, ctx, timeout):
    if scheme == "https":
        conn = asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
    else:
        conn = asyncio.open_connection(host, port)
    return await asyncio.wait_for(conn, timeout)


async def get(url, headers=None, ca=None, user_agent="dtu-gateway", timeout=20, redirects=5):
    """GET url, following redirects; returns the Response (any status) with
    its headers read. HttpError when no HTTP answer comes."""
    ctx = None
    for _ in range(redirects + 1):
        scheme, host, port, path = split_url(url)
        if scheme == "https" and ctx is None:
            from tlsctx import context
            try:
                ctx = context(ca)
            except Exception as e:
                raise HttpError("TLS: %s" % (e,))
        default = 443 if scheme == "https" else 80
        lines = ["GET %s HTTP/1.1" % path,
                 "Host: %s" % (host if port == default else "%s:%d" % (host, port)),
                 "User-Agent: " + user_agent, "Connection: close"]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        req = ("\r\n".join(lines) + "\r\n\r\n").encode()
        try:
            reader, writer = await _open(scheme, host, port, ctx, timeout)
        except asyncio.TimeoutError:
            raise HttpError("%s: connect timed out" % host)
        except Exception as e:
            raise HttpError("%s: %s" % (host, _why(e)))
        r = Response(reader, writer, timeout)
        try:
            writer.write(req)
            await asyncio.wait_for(writer.drain(), timeout)
            await r.read_head()
        except HttpError:
            await r.close()
            raise
        except asyncio.TimeoutError:
            await r.close()
            raise HttpError("%s: no answer in %d s" % (host, timeout))
        except Exception as e:
            await r.close()
            raise HttpError("%s: %s" % (host, _why(e)))
        loc = r.headers.get("location")
        if r.status in (301, 302, 303, 307, 308) and loc:
            await r.close()
            if loc.startswith("/"):
                loc = "%s://%s:%d%s" % (scheme, host, port, loc)
            if scheme == "https" and not loc.startswith("https://"):
                raise HttpError("redirect from https to %s refused" % loc.split("/", 3)[2])
            url = loc
            continue
        return r
    raise HttpError("too many redirects")


def _why(e):
    s = str(e).strip()
    return "%s %s" % (type(e).__name__, s) if s else type(e).__name__
