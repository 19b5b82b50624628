"""Self-healing: the watchdog task, the stable-run mark, safe mode's page and
retry, and the optional console (aiorepl). A feature (gateway.app
feature of every profile (gateway/profiles.py); it also runs in safe mode.

The hardware watchdog (board.watchdog(), see board/boards.py "wdt") is fed
every FEED_EVERY seconds by this task, and only while the app is healthy:

  - the DTU link's loop keeps its heartbeat promise (gateway/health.py);
  - the web server still listens, and when requests come in, not all of
    them fail: answers of 500 (MemoryError in a handler, say) for longer than
    API_FAIL_WINDOW with no good answer in between count as a hang.

A hung or dead part therefore stops the feeding and the board resets within
WDT_TIMEOUT_MS; the reason goes into boot.json first (gateway/safemode.py),
so after three such resets within minutes the board comes up in safe mode
and says why. The asyncio loop itself being stuck stops this task, and
thereby the feeding, too.
"""
import asyncio
import gc

from gateway import health, safemode

from micropython import const

SAFE_MODE = True              # runs in safe mode too (gateway.app)
WDT_TIMEOUT_MS = 60000        # blocking calls (DNS, TLS handshakes, scans) stay well below
FEED_EVERY = 5                # s between checks (and feeds)
API_WITHIN = const(60)        # s a check's "the server is fine" holds
API_FAIL_WINDOW = const(120)  # s of nothing but 5xx answers -> the web server counts as hung
START_GRACE = const(60)       # s the web server may take to start listening
SAFE_RETRY = const(3600)      # s in safe mode before the full app is tried again ...
SAFE_IDLE = const(600)        # ... when nobody used the web pages for this long
GC_MIN = const(2048)          # bytes: the smallest gc.threshold
GC_LOADING = const(4096)      # bytes: gc.threshold while the app loads

_PAGE = ("<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
         "<title>DTU Gateway: safe mode</title><h1>Safe mode</h1><p>%s</p>"
         "<p>The gateway does not talk to the DTU in safe mode. Fix the settings on the "
         "<a href=/>setup page</a> or upload an update, then restart it (or press RESET).</p>")


class SelfHeal:
    def __init__(self, gw, health_=None, clock=None, sleep=asyncio.sleep):
        self.gw = gw
        self.health = health_ or health.default()
        self.clock = clock or self.health.clock        # ms, ticks
        self.sleep = sleep
        self.safe = gw.safe_mode["active"]
        self.running = False
        self.wdt = None
        self.feeds = 0
        self.starving = None          # the parts without progress, once the feeding stopped
        self.was_stable = False
        self._t0 = self.clock()
        self._fail_since = None       # ms of the first 5xx after the last good answer
        self._last_request = self._t0
        self._stable_from = self._t0

    def _s(self, t):
        """ms ticks -> seconds since this object was made."""
        return health.ticks_diff(t, self._t0) // 1000

    # ---- the web server's side --------------------------------------------------

    def routes(self, app):
        @app.after_request
        async def _ok(req, res):
            self.answered(res.status_code)
            return res

        @app.after_error_request
        async def _err(req, res):
            self.answered(res.status_code)
            return res

        if self.safe:
            reason = self.gw.safe_mode["reason"]

            @app.get("/safe-mode")
            async def _safe_page(req):
                return _PAGE % _escape(reason), 200, {"Content-Type": "text/html; charset=utf-8"}

    def answered(self, status):
        now = self.clock()
        self._last_request = now
        if status < 500:
            self._fail_since = None
            self.health.beat("api", API_WITHIN)
        elif self._fail_since is None:
            self._fail_since = now

    def _serving(self, now):
        api = self.gw.api
        if api is None or api.server is None:   # not listening (yet)
            return self._s(now) < START_GRACE
        return api.serving()

    # ---- the check ----------------------------------------------------------------

    def check(self):
        """One check: -> True when the watchdog may be fed."""
        now = self.clock()
        failing = self._fail_since is not None and \
            health.ticks_diff(now, self._fail_since) > API_FAIL_WINDOW * 1000
        if self._serving(now) and not failing:
            self.health.beat("api", API_WITHIN)
        bad = self.health.stale()
        if bad:
            self._stable_from = now
            if self.starving is None:
                self.starving = ", ".join(sorted(bad))
                self.gw.events.add("watchdog", "no progress from: %s (reset follows)" % self.starving,
                                   "error", persist=True)
                safemode.crashed("watchdog: no progress from " + self.starving)
            return False
        if self.starving is not None:      # recovered before the reset came
            self.gw.events.add("watchdog", "progress again: " + self.starving, "warn")
            self.starving = None
        if not self.was_stable and health.ticks_diff(now, self._stable_from) >= safemode.STABLE_AFTER * 1000:
            self.was_stable = True
            safemode.stable()
        return True

    def _retry_full_app(self):
        """In safe mode: after SAFE_RETRY, with nobody on the pages, try the full app."""
        now = self.clock()
        return (self.safe and self._s(now) >= SAFE_RETRY
                and health.ticks_diff(now, self._last_request) >= SAFE_IDLE * 1000)

    async def run(self):
        self.running = True
        board = self.gw.board
        tune_gc()
        _start_console(board)
        _start_button(self.gw)
        if hasattr(board, "watchdog"):
            self.wdt = board.watchdog(WDT_TIMEOUT_MS, on_expire=self._expired)
        led = getattr(board, "led", None) if self.safe else None
        while self.running:
            if self.check() and self.wdt is not None:
                self.wdt.feed()
                self.feeds += 1
            if led is not None:          # safe mode: the LED blinks slowly
                try:
                    led(self.feeds & 1)
                except Exception:  # noqa: a missing or odd LED is no reason to stop
                    led = None
            if self._retry_full_app():
                self.gw.events.add("safemode", "trying the full app again", "warn", persist=True)
                board.reset()
            await self.sleep(FEED_EVERY)

    def _expired(self):
        safemode.crashed("watchdog: " + ("no progress from " + self.starving if self.starving
                                         else "the event loop stopped"))

    def stop(self):
        """Ctrl-C or shutdown: not a crash; the watchdog stands down."""
        self.running = False
        if self.wdt is not None:
            self.wdt.stop()
            self.wdt = None


def gc_while_loading():
    """Collect every GC_LOADING bytes while the modules load and the gateway
    is built (main.py calls this first). Otherwise nothing is collected until
    the heap is full, and the loaders' garbage, freed late, stays as hundreds
    of holes between the objects kept for good, all too small for a 1 KB
    buffer: the memory benchmark met MemoryErrors with 50 KB free. Collected
    early, one import's garbage is reused by the next. tune_gc() then sets
    the threshold for the running app."""
    if hasattr(gc, "threshold"):
        gc.collect()
        gc.threshold(GC_LOADING)


def tune_gc():
    """MicroPython collects only when an allocation fails, by then the heap is
    full of garbage between live objects and fragments. With a threshold of a
    quarter of the heap left free once the app is loaded, it collects early
    and often: the memory benchmark's smallest heap drops by ~1/5
    (tools/bench/memory.py). CPython's gc has no threshold(): untouched."""
    if not (hasattr(gc, "threshold") and hasattr(gc, "mem_free")):
        return None
    gc.collect()
    t = max(GC_MIN, gc.mem_free() // 4)
    gc.threshold(t)
    return t


def _escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _start_console(board):
    """aiorepl (micropython-lib; `make deploy` installs it) when the board
    allows it and it is there; the app runs the same without it."""
    if not getattr(board, "console", False):
        return False
    try:
        import aiorepl
    except ImportError:
        return False
    asyncio.create_task(aiorepl.task())
    return True


def _start_button(gw):
    """The factory-reset button (held 10 s) on boards that have one."""
    read = getattr(gw.board, "button_level", None)
    if read is None:
        return False
    try:
        from gateway.setup import button
        from gateway.setup import portal
    except ImportError:
        return False
    asyncio.create_task(button.watch(read, lambda: portal.factory_reset(gw, "button")))
    return True


def attach(gw):
    f = SelfHeal(gw)
    cause, n, why = safemode.last or ("", 0, "")
    if gw.safe_mode["active"]:
        gw.events.add("safemode", gw.safe_mode["reason"], "error", persist=True)
    elif n:
        gw.events.add("crash", "the last run ended early (%s); %d in a row" % (why or cause, n), "warn",
                      persist=True)
    return f
