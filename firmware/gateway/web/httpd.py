"""The web server: Microdot behind a door that nobody on the LAN can knock over.

Microdot finds the route and builds the answer; this subclass owns what comes
before and around that, the same for every route:

  - The method is upper-cased before anything looks at it: gateway.web.auth and
    the routing see one spelling ("post", "Post" and "pOST" are POST).
  - At most `clients` connections are served at once (a board property: a
    few on an ESP8266, more on an ESP32, whose lwIP has 10-16 sockets in all,
    more on a PC), and one more only while the heap has RESERVE bytes for
    each; the next ones wait in the listen backlog, which costs the heap
    nothing, until a place is free. Refusing them with a 503 would lose
    requests a board could serve a moment later.
  - The request line and headers (at most MAX_HEAD bytes, parsed strictly by
    httphead) and a body of up to MAX_BODY bytes must arrive within
    HEAD_TIME s of the accept. Larger bodies exist only where a route asks
    for them (body_limits: the update upload) and are streamed by it. Once
    the app has the request, every read or write of the client socket must
    make progress within IO_TIME s; the app's own work (an update check) is
    not timed here.
  - While connections wait in the backlog and no place can be given (all
    taken, or no heap), a connection that is GRACE s old, still has not sent
    its whole head and has nothing more to read gives its place up
    (slowloris): a real client sends its head at once, so the place goes to
    one that will use it. A watchdog task holds the connections to these
    times without allocating (MicroPython: select.poll's ipoll).
  - A MemoryError while serving is answered with a 503 (when nothing was
    sent yet); the connection is closed and the rest of the app goes on.
  - The socket is always closed, whatever happened.
  - Routes with a fixed path (all of the gateway's) are kept in one dict,
    path -> [(methods, handler)]: Microdot's own table keeps a URLPattern
    object per route and compiles a regular expression for each one a
    request walks past (~200 B a route that a board's heap keeps for good).
    Routes with <parts> still go to Microdot's table.

A connection answers one request (HTTP/1.0 style, as Microdot does).
"""
import asyncio
import errno
import gc
import json

from microdot.microdot import Microdot, NoCaseDict, Request, Response, print_exception

import httphead
from gateway.mono import mono

from micropython import const

MAX_HEAD = const(2048)     # bytes of request line + headers; more: 431
MAX_BODY = const(2048)     # bytes of a body read whole; larger ones: 413 (unless body_limits)
HEAD_TIME = const(5)       # s from the accept to the end of the head and a small body
IO_TIME = const(10)        # s a read or write of the client may take afterwards
GRACE = 0.1                # s a head may stall while others wait for a place
TICK = 0.05                # s between the watchdog's looks while connections are open
RESERVE = const(4096)      # bytes of free heap each connection being served may need

JSON_HEADERS = {"Content-Type": "application/json"}
# Whole answers sent without the help of anything that allocates: when the
# heap is short, and when the watchdog cuts a head that did not come in time.
# Literals, so that frozen code keeps them in flash (test_security.py checks
# that they are well-formed).
_OOM_BODY = b'{"error": "out of memory: try again"}'
_OOM = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 37\r\n"
        b"Connection: close\r\n\r\n{\"error\": \"out of memory: try again\"}")
_SLOW = (b"HTTP/1.0 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: 41\r\n"
         b"Connection: close\r\n\r\n{\"error\": \"request not received in time\"}")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def json_response(obj, status=200, headers=None):
    h = JSON_HEADERS
    if headers:
        h = dict(JSON_HEADERS)
        h.update(headers)
    return Response(json.dumps(obj), status, h)


def error(status, message, field=None):
    """The API's error answer: {"error": message, "field": field}."""
    body = {"error": message}
    if field is not None:
        body["field"] = field
    return json_response(body, status)


def json_body(req):
    """(the request's body as a JSON object, None) or (None, a 400 answer).
    Every JSON body that comes over HTTP is read through this (strictjson:
    imported with the first body, most requests are reads)."""
    import strictjson
    try:
        data = strictjson.loads(req.body or b"")
    except ValueError as e:
        return None, error(400, str(e))
    if not isinstance(data, dict):
        return None, error(400, "body must be a JSON object")
    return data, None


# ---- sockets: asyncio's streams differ between the runtimes -----------------------------
try:
    from asyncio import core as _core          # MicroPython

    def _key(s):
        return s                      # select.poll reports the socket object

    def _ready(poller):
        return poller.ipoll(0)        # reuses one tuple: no heap while the heap is short

    def _wait(s, write):
        # a generator awaited like a coroutine, as MicroPython's own streams do
        yield _core._io_queue.queue_write(s) if write else _core._io_queue.queue_read(s)

    async def _accept(s):
        while True:
            await _wait(s, False)
            try:
                return s.accept()
            except OSError as e:
                if e.errno != errno.EAGAIN:    # EAGAIN: the client left before the accept
                    raise

    async def _recv(s, n):
        while True:
            await _wait(s, False)
            try:
                return s.recv(n)
            except OSError as e:
                if e.errno != errno.EAGAIN:
                    raise

    async def _sendall(s, data):
        mv = memoryview(data)
        while True:
            try:
                mv = mv[s.send(mv):]  # at once while the send buffer has room
            except OSError as e:
                if e.errno != errno.EAGAIN:
                    raise
            if not mv:
                return
            await _wait(s, True)
except ImportError:  # pragma: no cover - CPython
    def _key(s):
        return s.fileno()

    def _ready(poller):
        return poller.poll(0)

    async def _accept(s):
        return await asyncio.get_running_loop().sock_accept(s)

    async def _recv(s, n):
        return await asyncio.get_running_loop().sock_recv(s, n)

    async def _sendall(s, data):
        await asyncio.get_running_loop().sock_sendall(s, data)


def _log(what, e):
    try:
        print("%s: %r" % (what, e))
    except Exception:  # noqa: S110 - no heap even for the message
        pass


def _forget(poller, sock):
    try:
        poller.unregister(sock)
    except (OSError, KeyError, ValueError):
        pass                          # never registered


def _room(active):
    """Heap for one more connection beside the `active` ones (MicroPython;
    CPython has no such limit). With none active, always: a request that
    then runs out gets its 503, and waiting would serve nobody."""
    if active == 0 or not hasattr(gc, "mem_free"):
        return True
    need = RESERVE * (active + 1)
    if gc.mem_free() >= need:
        return True
    gc.collect()
    return gc.mem_free() >= need


class Conn:
    """One client connection: its socket, the deadline the watchdog holds it
    to (None while the app works on its request) and what was read past the
    head. It is the stream Microdot's Request reads and Response writes."""

    def __init__(self, sock, addr, now):
        self.sock = sock
        self.addr = addr
        self.start = now
        self.deadline = now + HEAD_TIME
        self.head = True              # still sending its head (it may have to give its place up)
        self.pending = b""            # bytes read past the head: the body's start
        self.sent = False             # an answer has begun: nothing else may be sent
        self.cut = False              # cut by the watchdog
        self.ready = False            # input waits unread (the watchdog's last look)
        self.key = _key(sock)
        self.task = None

    async def _io(self, aw):
        if not self.head:
            self.deadline = mono() + IO_TIME
        r = await aw
        if not self.head:
            self.deadline = None
        return r

    async def read(self, n=-1):
        if self.pending:
            b = self.pending if n < 0 else self.pending[:n]
            self.pending = self.pending[len(b):]
            return b
        return await self._io(_recv(self.sock, n if n > 0 else 1024))

    async def readexactly(self, n):
        b = b""
        while len(b) < n:
            chunk = await self.read(n - len(b))
            if not chunk:
                raise EOFError
            b += chunk
        return b

    async def awrite(self, data):
        self.sent = True
        await self._io(_sendall(self.sock, data))

    async def aclose(self):
        pass                          # the server closes the socket when the task ends

    def get_extra_info(self, name):
        return self.addr if name == "peername" else None

    def send_now(self, data):
        """Best effort, without waiting: the last words before the close."""
        if not self.sent:
            self.sent = True
            try:
                self.sock.send(data)
            except OSError:
                pass


class Server(Microdot):
    """Microdot with the rules above. `clients`: connections served at once;
    `backlog`: connections the network stack keeps waiting beyond them."""

    def __init__(self, clients=4, backlog=8):
        super().__init__()
        self.clients = clients
        self.backlog = backlog
        self.body_limits = {}         # path -> a larger body cap; such a body is streamed
        # fixed path -> (methods, handler, methods, handler, ...): one flat tuple
        # per path, the methods a tuple (Microdot's url_map holds the rest)
        self.paths = {}
        self.conns = [None] * clients
        self.server = None            # the listening socket while the server runs
        self.port = None              # the port it listens on
        self.counts = {"served": 0, "cut": 0, "noMemory": 0}   # /api/info "http"
        self._closing = False
        self._task = None
        self._held = False            # the accept loop waits for a place or for heap
        self._poller = None           # select.poll of the listening socket and every connection
        self._pollin = None           # select.POLLIN (select is imported when serving starts)
        self._slot = asyncio.Event()  # a place came free
        self._busy = asyncio.Event()  # a connection came in (wakes the watchdog)
        self.error_handlers[MemoryError] = _out_of_memory

    def body_limit(self, path):
        return self.body_limits.get(path, MAX_BODY)

    # ---- routes ---------------------------------------------------------------------

    def route(self, url_pattern, methods=None):
        if "<" in url_pattern:
            return super().route(url_pattern, methods)

        def decorated(f):
            self.paths[url_pattern] = self.paths.get(url_pattern, ()) + (tuple(methods or ("GET",)), f)
            return f
        return decorated

    def find_route(self, req):
        hits = self.paths.get(req.path)
        if hits is None:
            return super().find_route(req)
        method = req.method
        if method == "OPTIONS" and self.options_handler:
            return self.options_handler(req), "", None
        if method == "HEAD":
            method = "GET"
        req.url_args = {}
        for i in range(0, len(hits), 2):
            if method in hits[i]:
                return hits[i + 1], "", None
        return 405, "", None

    def default_options_handler(self, req):
        hits = self.paths.get(req.path)
        if hits is None:
            return super().default_options_handler(req)
        allow = [m for i in range(0, len(hits), 2) for m in hits[i]]
        if "GET" in allow:
            allow.append("HEAD")
        allow.append("OPTIONS")
        return {"Allow": ", ".join(allow)}

    def routes(self):
        """[(method, path)] of every route (the fixed ones and Microdot's)."""
        out = [(m, p) for p, hits in self.paths.items() for i in range(0, len(hits), 2) for m in hits[i]]
        for methods, pattern, _h, _p, _s in self.url_map:
            out += [(m, pattern.url_pattern) for m in methods]
        return out

    async def dispatch_request(self, req):
        # the door: one spelling of the method for every rule and route, and
        # the body cap of this path (Microdot answers 413 above it)
        if req is not None:
            req.method = req.method.upper()
            req.max_content_length = self.body_limit(req.path)
        return await super().dispatch_request(req)

    # ---- listening ------------------------------------------------------------------

    async def start_server(self, host="0.0.0.0", port=80, **_):
        # imported here: the app's routes are also built where there are no
        # sockets (the WebAssembly port, for tools/bench/memory.py)
        import select
        import socket
        ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        s = socket.socket(ai[0], socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(ai[-1])
        s.listen(self.backlog)
        s.setblocking(False)
        self._poller = select.poll()
        self._pollin = select.POLLIN
        self._poller.register(s, self._pollin)
        self.server, self.port = s, port
        self._closing = False
        watchdog = asyncio.create_task(self._watch())
        self._task = asyncio.create_task(self._accept_loop(s))
        try:
            await self._task
        except asyncio.CancelledError:
            if not self._closing:
                raise
        finally:
            self._closing = True
            watchdog.cancel()
            self._poller.unregister(s)
            s.close()
            self.server = None

    def serving(self):
        """True while the accept loop runs (gateway.selfheal asks)."""
        return self._task is not None and not self._task.done()

    def shutdown(self):
        self._closing = True
        if self._task is not None:
            self._task.cancel()

    def _free(self):
        for i in range(self.clients):
            if self.conns[i] is None:
                return i
        return -1

    async def _accept_loop(self, s):
        while not self._closing:
            try:
                await self._accept_one(s)
            except Exception as e:  # MemoryError, EMFILE, ...: this loop must not end with it
                gc.collect()
                _log("httpd: accept failed", e)
                await asyncio.sleep(0.1)

    async def _accept_one(self, s):
        i = self._free()
        if i < 0 or not _room(self.clients - self.conns.count(None)):
            # full, or the heap is: the next client waits in the backlog, not in the heap
            self._held = True
            self._slot.clear()
            try:
                await asyncio.wait_for(self._slot.wait(), 1)
            except asyncio.TimeoutError:
                pass
            return
        self._held = False
        sock, addr = await _accept(s)
        try:
            c = Conn(sock, addr, mono())
            self._poller.register(sock, self._pollin)
            c.task = asyncio.create_task(self._serve(c, i))
        except BaseException:
            _forget(self._poller, sock)
            sock.close()
            raise
        self.conns[i] = c
        self._busy.set()

    # ---- one connection -------------------------------------------------------------

    async def _serve(self, c, i):
        try:
            req = None
            try:
                req = await self._request(c)
                if req is not None:
                    res = await self.dispatch_request(req)
                    if res is not Response.already_handled:
                        await res.write(c)
                    self.counts["served"] += 1
            except httphead.HeadError as e:
                if not c.sent:
                    await error(e.status, e.message).write(c)
            except MemoryError:
                req = None
                gc.collect()
                self.counts["noMemory"] += 1
                c.send_now(_OOM)
            except (OSError, EOFError):
                pass                  # the client went away
            except Exception as e:  # a fault of ours: logged, the connection closed
                print_exception(e)
        except BaseException:  # the watchdog's cancel (CancelledError), nothing else
            if not c.cut:
                raise
        finally:
            if c.cut and c.head:
                c.send_now(_SLOW)
            _forget(self._poller, c.sock)
            try:
                c.sock.close()
            except OSError:
                pass
            self.conns[i] = None
            self._slot.set()

    async def _request(self, c):
        """The request (a microdot Request) read from c, or None when the
        client closed first. HeadError for what is not a request we take."""
        buf = b""
        while True:
            chunk = await c.read(512)
            if not chunk:
                if buf:               # it stopped sending halfway
                    raise httphead.HeadError(400, "request incomplete")
                return None           # connected and left: nothing to answer
            buf += chunk
            end = httphead.end(buf, max(0, len(buf) - len(chunk) - 3))
            if end >= 0:
                break
            if len(buf) >= MAX_HEAD:
                raise httphead.HeadError(431, "request head larger than %d bytes" % MAX_HEAD)
        if end > MAX_HEAD:
            raise httphead.HeadError(431, "request head larger than %d bytes" % MAX_HEAD)
        c.pending = buf[end:]
        headers = NoCaseDict()
        method, target, version, length = httphead.parse(buf[:end], headers)
        buf = None
        limit = self.body_limit(target.split("?", 1)[0])
        if length > limit:
            raise httphead.HeadError(413, "body larger than %d bytes" % limit)
        body, stream = b"", None
        if length and not c.pending and headers.get("Expect", "").lower() == "100-continue":
            await _sendall(c.sock, _CONTINUE)     # curl waits a second for it, else
        if length > MAX_BODY:
            stream = c                # streamed by the route that allows it
        elif length:
            try:
                body = await c.readexactly(length)
            except EOFError:
                raise httphead.HeadError(400, "body shorter than its Content-Length")
        try:
            req = Request(self, c.addr, method, target, version, headers, body=body,
                          stream=stream, sock=(c, c))
        except (ValueError, UnicodeError, IndexError):
            raise httphead.HeadError(400, "malformed request target or headers")
        c.head = False
        c.deadline = None
        return req

    # ---- the watchdog ---------------------------------------------------------------

    async def _watch(self):
        while not self._closing:
            try:
                if not any(self.conns):          # nobody connected: sleep until someone is
                    self._busy.clear()
                    await self._busy.wait()
                await asyncio.sleep(TICK)
                self._look(mono())
            except Exception as e:  # a MemoryError: the deadlines must outlive it
                gc.collect()
                _log("httpd: watchdog", e)
                await asyncio.sleep(TICK)

    def _look(self, now):
        # deadlines first: they need no heap
        for c in self.conns:
            if c is not None and not c.cut and c.deadline is not None and now > c.deadline:
                self._cut(c)
        # held back (every place taken, or no heap) while others wait in the
        # backlog: a head that stalls gives its place up
        if not self._held or not self._scan():
            return
        for c in self.conns:
            if c is not None and not c.cut and c.head and not c.ready and now - c.start >= GRACE:
                self._cut(c)

    def _scan(self):
        """Mark each connection whose input waits unread (c.ready); True when
        a connection waits in the backlog. Without heap on MicroPython."""
        for c in self.conns:
            if c is not None:
                c.ready = False
        waiting = False
        lkey = _key(self.server)
        for k, _ev in _ready(self._poller):
            if k is lkey or k == lkey:
                waiting = True
                continue
            for c in self.conns:
                if c is not None and (c.key is k or c.key == k):
                    c.ready = True
        return waiting

    def _cut(self, c):
        c.cut = True
        self.counts["cut"] += 1
        c.task.cancel()


async def _out_of_memory(req, exc):
    gc.collect()
    return _OOM_BODY, 503, JSON_HEADERS
