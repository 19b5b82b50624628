"""openHAB: push the live values to items over its REST API, read a limit back.

After each fresh round, every value of gateway/integrations/values.py goes to an item:

    POST /rest/items/<openhab.item_prefix><name>     Content-Type: text/plain
    body: the value ("230.1", "connected", ...); name as in MQTT, "/" -> "_"
    (dtuGateway_grid_p, dtuGateway_pv0_dE, dtuGateway_dtu_connection, ...)

Every READ_EVERY s it reads <prefix>power_limit_set back
(GET /rest/items/<name>/state) and, when that changes, queues the limit with
gw.command(): the scheduler's rules apply as for the web API. The item
is never written by the gateway, so a user's command is not overwritten.

openHAB runs in its own task, on one kept-alive HTTP/1.1 connection; each
request has TIMEOUT s, one round of pushes at most PUSH_BUDGET s, and after a
failure the task waits (10 s doubling to 5 min). The DTU's task never waits
for openHAB: a dead or hanging server costs this task its timeouts, nothing
more. Missing items (404) are reported once per set, in /api/events.
Loaded only while openhab.enabled is on (gateway/lazy.py).
"""
import asyncio

from httpclient import HttpError, Response   # the HTTP/1.1 answers, as for the updates

TIMEOUT = 2          # s per connect, and per request and answer
PUSH_BUDGET = 8      # s for one round of pushes
READ_EVERY = 60      # s between reads of the limit item
MAX_BODY = 64        # bytes of an answer kept (the rest is read and dropped)
LIMIT_ITEM = "power_limit_set"


def attach(gw):
    return OpenHab(gw)


class OpenHab:
    def __init__(self, gw):
        self.gw = gw
        self._r = self._w = None
        self._wake = asyncio.Event()
        self._running = True
        self._polls = -1
        self._due = False         # a fresh round waits to be pushed
        self._sent = {}           # name -> text last pushed (status values)
        self._next_read = 0
        self._seen = None         # the limit item's last value
        self._until = 0           # no contact before this time (backoff)
        self._failures = 0
        self._missing = None
        self._reset = False
        self.pushes = 0
        self.errors = 0

    def _enabled(self):
        g = self.gw.settings.get
        return bool(g("openhab.enabled") and g("openhab.host"))

    # ---- feature hooks ---------------------------------------------------------------

    def after_round(self):
        polls = self.gw.state.polls
        if polls != self._polls and self._enabled():
            self._due = True
            self._wake.set()
        self._polls = polls

    def settings_changed(self, changed):
        if any(k.startswith("openhab.") for k in changed):
            self._reset = True    # applied by run(), between two requests
            self._wake.set()

    def stop(self):
        self._running = False
        self._close()
        self._wake.set()

    def metrics(self):
        return (("dtu_gateway_openhab_pushes_total", self.pushes, "openHAB push rounds completed"),
                ("dtu_gateway_openhab_errors_total", self.errors, "openHAB push or read failures"))

    async def run(self):
        """Serve until stop() or until openhab.enabled is turned off."""
        while self._running and self.gw.settings.get("openhab.enabled"):
            if self._reset:   # new host, port or prefix: start afresh
                self._reset = False
                self._close()
                self._until = self._next_read = self._failures = 0
                self._sent = {}
                self._missing = None
            now = self.gw.board.time()
            wait = READ_EVERY
            if self._enabled():
                if now < self._until:
                    wait = self._until - now
                elif self._due or now >= self._next_read:
                    await self._work(now)
                    continue
                else:
                    wait = self._next_read - now
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.1, wait))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def _work(self, now):
        try:
            if self._due:
                self._due = False
                await self._push()
            if self.gw.board.time() >= self._next_read:
                self._next_read = self.gw.board.time() + READ_EVERY
                await self._read_limit()
            self._failures = 0
        except Exception as e:  # OSError, HttpError, TimeoutError ... never let it end the task
            self._close()
            self.errors += 1
            self._failures += 1
            pause = min(300, 10 << min(self._failures - 1, 5))
            self._until = self.gw.board.time() + pause
            self.gw.events.add("openhab", "%s:%d unreachable (%s), next try in %d s" % (
                self.gw.settings.get("openhab.host"), self.gw.settings.get("openhab.port"),
                type(e).__name__ if not str(e) else e, pause), "warn")

    # ---- what is sent ----------------------------------------------------------------

    async def _push(self):
        from gateway.integrations import values
        gw = self.gw
        t0 = gw.board.time()
        pre = gw.settings.get("openhab.item_prefix")
        missing = []
        sent = self._sent
        items = values.readings(gw.state) + [
            s for s in values.status(gw.state, gw.sched, t0) if sent.get(s[0]) != s[1]]
        for name, text in items:
            if gw.board.time() - t0 > PUSH_BUDGET:
                raise HttpError("push took longer than %d s" % PUSH_BUDGET)
            item = pre + name.replace("/", "_")
            status, _ = await self._call("POST", "/rest/items/" + item, text)
            if status == 404:
                missing.append(item)
            elif not 200 <= status < 300:
                raise HttpError("HTTP %d for %s" % (status, item))
            sent[name] = text
        self.pushes += 1
        if missing != self._missing:
            self._missing = missing
            if missing:
                gw.events.add("openhab", "%d items missing: %s" % (len(missing), ", ".join(missing)), "warn")

    async def _read_limit(self):
        from gateway.integrations import values
        gw = self.gw
        item = gw.settings.get("openhab.item_prefix") + LIMIT_ITEM
        status, body = await self._call("GET", "/rest/items/%s/state" % item)
        if status == 404:
            self._next_read = gw.board.time() + 10 * READ_EVERY   # not set up: ask rarely
            return
        if status != 200:
            raise HttpError("HTTP %d for %s" % (status, item))
        try:
            v = values.parse_limit(body)
        except (ValueError, UnicodeError):
            return   # NULL, UNDEF or nonsense: nothing to apply
        if v == self._seen:
            return
        first = self._seen is None
        self._seen = v
        s = gw.sched
        cur = s.want_limit if s.want_limit is not None else s.dtu_limit
        if first and cur is not None and v == int(round(cur)):
            return   # already what the inverter is asked for
        from gateway.link.commands import SET_LIMIT, Command
        gw.command(Command(SET_LIMIT, v), "openhab")

    # ---- HTTP/1.1, one connection kept alive -------------------------------------------

    def _close(self):
        w = self._w
        self._r = self._w = None
        if w is not None:
            try:
                w.close()
            except Exception:  # closing a dead socket may fail; it is gone all the same
                pass

    async def _call(self, method, path, body=None):
        """(status, first MAX_BODY bytes of the answer); each step within TIMEOUT s."""
        g = self.gw.settings.get
        host, port = g("openhab.host"), g("openhab.port")
        if self._w is None:
            self._r, self._w = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
        data = b"" if body is None else body.encode()
        head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: keep-alive\r\n" % (method, path, host, port)
        if body is not None:
            head += "Content-Type: text/plain\r\nContent-Length: %d\r\n" % len(data)
        self._w.write(head.encode() + b"\r\n" + data)
        await asyncio.wait_for(self._w.drain(), TIMEOUT)
        return await asyncio.wait_for(self._answer(), TIMEOUT)

    async def _answer(self):
        r = Response(self._r, self._w, TIMEOUT)
        await r.read_head()
        body = await r.read_all(MAX_BODY, cut=True)
        if not r.keep_alive:
            self._close()   # closed by openHAB, or unknown framing: do not reuse the connection
        return r.status, body
