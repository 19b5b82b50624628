"""The web app: serves the pre-gzipped files tools/build_web.py writes into
the board's web folder (`board.www_dir`), streamed in small chunks.

Files are named NAME.HASH.EXT.gz. The assets are served at /NAME.HASH.EXT
with a year-long, immutable Cache-Control (a new build has new names);
index.html is served at / and /index.html with its hash as ETag and
`Cache-Control: no-cache`, so a browser revalidates it and gets a 304 with
no body while nothing changed. The bytes go out as they are stored, with
`Content-Encoding: gzip` (every browser accepts gzip; the board has no RAM
to decompress). Each response reads its file through one buffer of CHUNK
bytes and writes it out before reading on: the heap needed does not grow
with the file (`make bench` has the figures).

The folder is listed once, at start: rebuilding the web app means
restarting the gateway (tools/run_host.py builds before it starts).
"""
import os

from microdot import Response

from micropython import const

CHUNK = const(1024)            # bytes per read and per socket write
MAX_AGE = const(31536000)      # s, for the hashed assets

TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "json": "application/json",
    "ico": "image/x-icon",
    "png": "image/png",
}

_NOT_BUILT = (b"<!doctype html><meta charset=utf-8><title>DTU Gateway</title>"
              b"<p>The web app is not installed on this gateway (run <code>make web</code> "
              b"and copy build/web to the board). The API answers at <a href=/api/data>/api/data</a>.")


class _Stream:
    """A file as an async iterator of chunks, read into one buffer (Microdot
    writes each chunk out before it asks for the next). The file is opened
    on the first read, so a HEAD request never opens it."""

    def __init__(self, path):
        self.path = path
        self.f = None
        self.buf = None

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.f is None:
            self.f = open(self.path, "rb")
            self.buf = bytearray(CHUNK)
            self.mv = memoryview(self.buf)
        n = self.f.readinto(self.buf)
        if not n:
            raise StopAsyncIteration
        return self.mv[:n]

    async def aclose(self):
        if self.f is not None:
            self.f.close()
            self.f = None


def scan(www_dir):
    """{url path: (file path, content type, etag or None, size)} of the
    built files in www_dir (an empty dict when there are none)."""
    files = {}
    try:
        names = os.listdir(www_dir)
    except (OSError, TypeError):
        return files
    for name in names:
        parts = name.split(".")
        # NAME.HASH.EXT.gz
        if len(parts) != 4 or parts[3] != "gz" or len(parts[1]) != 8:
            continue
        path = www_dir + "/" + name
        try:
            size = os.stat(path)[6]
        except OSError:
            continue
        ctype = TYPES.get(parts[2], "application/octet-stream")
        if parts[0] == "index" and parts[2] == "html":
            files["/"] = (path, ctype, '"%s"' % parts[1], size)
        else:
            files["/" + name[:-3]] = (path, ctype, None, size)
    return files


class WebUI:
    def __init__(self, www_dir):
        self.www_dir = www_dir
        self.files = scan(www_dir)

    def serve(self, req, url):
        path, ctype, etag, _ = self.files[url]
        if etag is None:
            headers = {"Cache-Control": "public, max-age=%d, immutable" % MAX_AGE}
        else:
            headers = {"Cache-Control": "no-cache", "ETag": etag}
            if req.headers.get("If-None-Match") == etag:
                return Response(b"", 304, headers)
        try:
            size = os.stat(path)[6]
        except OSError:  # replaced by a new build since the start
            return Response(b'{"error": "the web app changed on disk: restart the gateway"}', 503,
                            {"Content-Type": "application/json", "Cache-Control": "no-store"})
        headers["Content-Type"] = ctype
        headers["Content-Encoding"] = "gzip"
        headers["Content-Length"] = str(size)
        headers["Vary"] = "Accept-Encoding"
        return Response(_Stream(path), 200, headers)

    def routes(self, app):
        if "/" not in self.files:
            async def not_built(req):
                return Response(_NOT_BUILT, 200, {"Content-Type": TYPES["html"], "Cache-Control": "no-cache"})
            app.route("/")(not_built)
            return
        # one handler for every file: a closure per route would cost the heap ~50 B each
        async def handler(req):
            return self.serve(req, "/" if req.path == "/index.html" else req.path)
        for url in self.files:
            app.get(url)(handler)    # Microdot answers HEAD from GET routes
        app.get("/index.html")(handler)


def attach(gw):
    return WebUI(getattr(gw.board, "www_dir", None))
