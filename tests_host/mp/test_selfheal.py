"""Self-healing on a fake board: the crash counter and safe mode
(gateway/safemode.py), the heartbeats (gateway/health.py), the watchdog task
(gateway/selfheal.py: a hung link or a failing web server -> no feed;
healthy -> feed), the optional console, and the ESP board code
(board/esp.py) over fake `machine` and `network` modules.

Board-side test: plain unittest, runs under pytest and under the unix
MicroPython (tests_host/mp/run_all.py).
"""
import asyncio
import json
import sys
import unittest

from board import boards, esp
from gateway import health, safemode, selfheal
from support.tmpfs import mkdtemp, write_text


# ---- fakes ---------------------------------------------------------------------

class Ticks:
    """A settable ticks_ms() clock."""

    def __init__(self, t=1000):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, s):
        self.t += int(s * 1000)


class FakeBoard:
    def __init__(self, data_dir, cause="power"):
        self.data_dir = data_dir
        self.cause = cause
        self.resets = 0
        self.wdts = []
        self.console = False

    def reset_cause(self):
        return self.cause

    def reset(self):
        self.resets += 1

    def watchdog(self, timeout_ms, on_expire=None):
        w = FakeWdt(timeout_ms)
        self.wdts.append(w)
        return w


class FakeWdt:
    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self.feeds = 0
        self.stopped = False

    def feed(self):
        self.feeds += 1

    def stop(self):
        self.stopped = True


class Recorder:
    def __init__(self):
        self.items = []

    def add(self, kind, msg, level="info", persist=False):
        self.items.append((kind, msg, level))

    def kinds(self):
        return [i[0] for i in self.items]


class FakeApi:
    """gateway.web.httpd.Server as gateway.selfheal sees it."""
    def __init__(self):
        self.server = object()        # listening
        self.up = True

    def serving(self):
        return self.up


class FakeGw:
    def __init__(self, board, safe=None):
        self.board = board
        self.safe_mode = safe or {"active": False, "reason": ""}
        self.events = Recorder()
        self.api = None


def read_json(path):
    with open(path) as f:
        return json.loads(f.read())


def rmtree_all(d):
    import os
    for name in os.listdir(d):
        p = d + "/" + name
        if os.stat(p)[0] & 0x4000:
            rmtree_all(p)
        else:
            os.remove(p)
    os.rmdir(d)


class Base(unittest.TestCase):
    def setUp(self):
        self.d = mkdtemp()
        self.board = FakeBoard(self.d)

    def tearDown(self):
        safemode._path = None
        safemode.last = None
        rmtree_all(self.d)

    def boot(self, cause, button=False):
        self.board = FakeBoard(self.d, cause)
        return safemode.boot(self.board, button_held=button)


# ---- crash counter and safe mode -----------------------------------------------

class TestSafeMode(Base):
    def test_three_crashes_in_a_row_boot_into_safe_mode(self):
        self.assertEqual(self.boot("power"), {"active": False, "reason": ""})
        safemode.crashed("MemoryError: memory allocation failed")
        self.assertFalse(self.boot("soft")["active"])                 # 1 crash
        self.assertEqual(safemode.last, ("soft", 1, "MemoryError: memory allocation failed"))
        self.assertFalse(self.boot("watchdog")["active"])             # 2: a watchdog reset, no note
        self.assertEqual(safemode.last, ("watchdog", 2, "watchdog reset"))
        safemode.crashed("OSError: [Errno 12] ENOMEM")
        mode = self.boot("crash")                                     # 3 -> safe mode
        self.assertTrue(mode["active"])
        self.assertIn("3 crashes in a row", mode["reason"])
        self.assertIn("OSError: [Errno 12] ENOMEM", mode["reason"])
        self.assertEqual(read_json(self.d + "/boot.json")["n"], 0)    # the count starts over
        # safe mode crashed as well: the next boot tries the full app (1 crash)
        self.assertFalse(self.boot("soft")["active"])

    def test_a_stable_run_or_a_deliberate_restart_clears_the_count(self):
        self.boot("power")
        self.boot("watchdog")
        self.boot("watchdog")                     # 2 in a row
        safemode.stable()                         # ran healthily for STABLE_AFTER
        self.assertFalse(self.boot("watchdog")["active"])
        self.assertEqual(safemode.last[1], 0)
        self.boot("watchdog")
        self.boot("watchdog")                     # 2 in a row again
        self.board.reset()                        # the app restarts the board itself
        self.assertEqual(self.board.resets, 1)    # ... the real reset still happens
        self.assertFalse(self.boot("soft")["active"])
        self.assertEqual(safemode.last[1], 0)

    def test_power_on_and_the_reset_button_start_afresh(self):
        self.boot("power")
        self.boot("crash")
        self.boot("crash")
        self.assertEqual(safemode.last[1], 2)
        self.assertFalse(self.boot("hard")["active"])
        self.assertEqual(safemode.last[1], 0)

    def test_ctrl_c_is_not_a_crash(self):
        self.boot("power")
        self.boot("crash")
        self.boot("crash")
        safemode.clean()
        self.assertFalse(self.boot("soft")["active"])

    def test_the_button_forces_safe_mode(self):
        mode = self.boot("power", button=True)
        self.assertEqual(mode, {"active": True, "reason": "the button was held at boot"})

    def test_a_broken_boot_file_is_a_fresh_start(self):
        for text in ("{not json", "[1, 2]", '{"n": "x", "run": true}', ""):
            write_text(self.d + "/boot.json", text)
            self.assertFalse(self.boot("soft")["active"])
        write_text(self.d + "/boot.json", '{"n": 2, "run": true, "why": "' + "x" * 300 + '"}')
        mode = self.boot("soft")
        self.assertTrue(mode["active"])
        self.assertLess(len(mode["reason"]), 200)

    def test_without_boot_nothing_is_written(self):
        safemode._path = None
        safemode.stable()
        safemode.crashed("x")
        safemode.clean()
        import os
        self.assertEqual(os.listdir(self.d), [])


# ---- heartbeats ----------------------------------------------------------------

class TestHealth(unittest.TestCase):
    def test_promises_expire(self):
        clock = Ticks()
        h = health.Health(clock)
        self.assertEqual(h.stale(), [])
        h.beat("link", 36)
        h.beat("api", 60)
        clock.advance(36)
        self.assertEqual(h.stale(), [])
        clock.advance(1)
        self.assertEqual(h.stale(), ["link"])
        h.beat("link", 36)
        clock.advance(30)
        self.assertEqual(h.stale(), ["api"])
        h.forget("api")
        self.assertEqual(h.stale(), [])
        self.assertEqual(sorted(h.names()), ["link"])

    def test_ticks_wrap(self):
        if not hasattr(__import__("time"), "ticks_add"):
            self.skipTest("no ticks_ms wrap on CPython")
        import time
        start = time.ticks_add(0, -5000)          # 5 s before the wrap
        clock = Ticks(start)
        h = health.Health(clock)
        h.beat("link", 10)
        clock.t = time.ticks_add(start, 8000)     # after the wrap, 8 s later
        self.assertEqual(h.stale(), [])
        clock.t = time.ticks_add(start, 11000)
        self.assertEqual(h.stale(), ["link"])


# ---- the watchdog task ---------------------------------------------------------

class WatchdogBase(Base):
    def setUp(self):
        Base.setUp(self)
        self.boot("power")
        self.clock = Ticks()
        self.h = health.Health(self.clock)
        self.gw = FakeGw(self.board)
        self.gw.api = FakeApi()
        self.sh = selfheal.SelfHeal(self.gw, self.h)

    def step(self, s):
        """s seconds pass; the link beats as a healthy one does (36 s promises)."""
        self.clock.advance(s)


class TestWatchdog(WatchdogBase):
    def test_healthy_link_and_idle_server_feed(self):
        for _ in range(100):                        # 500 s
            self.h.beat("link", 36)
            self.assertTrue(self.sh.check())
            self.step(5)
        self.assertIsNone(self.sh.starving)

    def test_a_hung_link_stops_the_feeding_and_says_why(self):
        self.h.beat("link", 36)
        self.assertTrue(self.sh.check())
        self.step(36)
        self.assertTrue(self.sh.check())
        self.step(1)                               # the promise is broken
        self.assertFalse(self.sh.check())
        self.assertFalse(self.sh.check())
        self.assertEqual(self.sh.starving, "link")
        self.assertEqual(self.gw.events.kinds(), ["watchdog"])   # said once
        st = read_json(self.d + "/boot.json")
        self.assertTrue(st["run"])
        self.assertEqual(st["why"], "watchdog: no progress from link")
        # the reset that follows counts as a crash, with that reason
        self.boot("watchdog")
        self.assertEqual(safemode.last, ("watchdog", 1, "watchdog: no progress from link"))

    def test_a_late_link_recovers_before_the_reset(self):
        self.h.beat("link", 10)
        self.step(11)
        self.assertFalse(self.sh.check())
        self.h.beat("link", 36)
        self.assertTrue(self.sh.check())
        self.assertIsNone(self.sh.starving)
        self.assertEqual(self.gw.events.kinds(), ["watchdog", "watchdog"])

    def test_a_web_server_that_only_fails_stops_the_feeding(self):
        self.sh.answered(200)
        for _ in range(24):                         # 120 s of nothing but 500s
            self.h.beat("link", 36)
            self.sh.answered(500)
            self.assertTrue(self.sh.check())
            self.step(5)
        fed = True
        for _ in range(20):                         # after the window: api goes stale
            self.h.beat("link", 36)
            self.sh.answered(500)
            fed = self.sh.check()
            self.step(5)
        self.assertFalse(fed)
        self.assertEqual(self.sh.starving, "api")
        self.sh.answered(200)                       # one good answer: fine again
        self.h.beat("link", 36)
        self.assertTrue(self.sh.check())

    def test_a_closed_server_stops_the_feeding(self):
        self.h.beat("link", 400)
        self.assertTrue(self.sh.check())
        self.gw.api.up = False
        fed = [self.sh.check() for _ in range(0, 1)]
        for _ in range(13):
            self.step(5)
            fed.append(self.sh.check())
        self.assertTrue(fed[0] and fed[11])         # the last "fine" holds API_WITHIN (60 s)
        self.assertFalse(fed[13])
        self.assertEqual(self.sh.starving, "api")

    def test_the_server_may_take_a_while_to_start(self):
        self.gw.api = None
        self.h.beat("link", 400)
        self.assertTrue(self.sh.check())
        self.step(selfheal.START_GRACE + selfheal.API_WITHIN + 1)
        self.assertFalse(self.sh.check())

    def test_a_server_not_listening_yet_gets_the_start_grace(self):
        self.gw.api.server = None
        self.assertTrue(self.sh._serving(self.clock()))
        self.step(selfheal.START_GRACE + 1)
        self.assertFalse(self.sh._serving(self.clock()))

    def test_stable_after_five_healthy_minutes(self):
        self.boot("crash")                        # one crash so far
        for _ in range(60):                       # checks at 0..295 s
            self.h.beat("link", 36)
            self.sh.check()
            self.step(5)
        self.assertFalse(self.sh.was_stable)
        self.h.beat("link", 36)
        self.sh.check()
        self.assertTrue(self.sh.was_stable)
        self.assertEqual(read_json(self.d + "/boot.json"), {"n": 0, "run": False, "why": ""})

    def test_run_feeds_the_board_watchdog_and_stop_disarms_it(self):
        sleeps = []

        async def sleep(s):
            sleeps.append(s)
            self.h.beat("link", 36)
            self.step(s)
            if len(sleeps) == 10:
                self.sh.stop()
        self.sh.sleep = sleep
        asyncio.run(self.sh.run())
        [wdt] = self.board.wdts
        self.assertEqual(wdt.timeout_ms, selfheal.WDT_TIMEOUT_MS)
        self.assertEqual(wdt.feeds, 10)
        self.assertEqual(sleeps, [selfheal.FEED_EVERY] * 10)
        self.assertTrue(wdt.stopped)

    def test_run_does_not_feed_a_hung_link(self):
        n = [0]

        async def sleep(s):
            n[0] += 1
            if n[0] <= 3:
                self.h.beat("link", 36)           # then the link hangs
            self.step(s)
            if n[0] == 20:
                self.sh.running = False
        self.sh.sleep = sleep
        asyncio.run(self.sh.run())
        [wdt] = self.board.wdts
        self.assertEqual(wdt.feeds, 10)           # checks at 0..45 s: the last promise (10 + 36 s) held
        self.assertEqual(self.sh.starving, "link")


class TestSafeModeRun(WatchdogBase):
    def test_safe_mode_retries_the_full_app_after_an_hour_of_quiet(self):
        self.gw.safe_mode = {"active": True, "reason": "3 crashes"}
        sh = selfheal.SelfHeal(self.gw, self.h)
        self.step(selfheal.SAFE_RETRY - 1)
        self.assertFalse(sh._retry_full_app())
        sh.answered(200)                          # somebody is on the setup page
        self.step(selfheal.SAFE_IDLE - 1)
        self.assertFalse(sh._retry_full_app())
        self.step(2)
        self.assertTrue(sh._retry_full_app())
        self.assertFalse(self.sh._retry_full_app())   # never outside safe mode

    def test_the_led_blinks_in_safe_mode(self):
        self.gw.safe_mode = {"active": True, "reason": "3 crashes"}
        lit = []
        self.board.led = lambda on: lit.append(on)
        sh = selfheal.SelfHeal(self.gw, self.h)

        async def sleep(s):
            self.h.beat("link", 36)
            self.step(s)
            if len(lit) == 4:
                sh.stop()
        sh.sleep = sleep
        asyncio.run(sh.run())
        self.assertEqual(lit, [1, 0, 1, 0])
        lit.clear()
        self.sh.sleep = sleep                     # outside safe mode the LED is left alone
        self.sh.running = True

        async def once(s):
            self.sh.stop()
        self.sh.sleep = once
        asyncio.run(self.sh.run())
        self.assertEqual(lit, [])

    def test_attach_logs_the_reason(self):
        self.gw.safe_mode = {"active": True, "reason": "3 crashes in a row"}
        selfheal.attach(self.gw)
        self.assertEqual(self.gw.events.items, [("safemode", "3 crashes in a row", "error")])
        gw = FakeGw(self.board)
        safemode.last = ("watchdog", 2, "watchdog reset")
        selfheal.attach(gw)
        self.assertEqual(gw.events.kinds(), ["crash"])
        self.assertIn("watchdog reset", gw.events.items[0][1])


class TestGcThreshold(unittest.TestCase):
    def test_a_quarter_of_the_free_heap_or_nothing_on_cpython(self):
        import gc
        t = selfheal.tune_gc()
        if not hasattr(gc, "mem_free"):
            self.assertIsNone(t)                  # CPython: its gc is left alone
            return
        try:
            self.assertGreaterEqual(t, selfheal.GC_MIN)
            self.assertLessEqual(t, max(selfheal.GC_MIN, gc.mem_free() // 4 + 4096))
            self.assertLess(abs(gc.threshold() - t), 64)   # rounded to GC blocks
        finally:
            gc.threshold(-1)

    def test_small_while_loading(self):
        import gc
        selfheal.gc_while_loading()
        if not hasattr(gc, "threshold"):
            return                                # CPython: nothing to set
        try:
            self.assertLess(abs(gc.threshold() - selfheal.GC_LOADING), 64)
        finally:
            gc.threshold(-1)


class TestConsole(unittest.TestCase):
    def tearDown(self):
        sys.modules.pop("aiorepl", None)

    def test_runs_without_aiorepl(self):
        sys.modules.pop("aiorepl", None)
        board = FakeBoard("/nonexistent")
        board.console = True
        self.assertFalse(selfheal._start_console(board))

    def test_starts_the_aiorepl_task_when_installed(self):
        started = []

        class Fake:
            @staticmethod
            async def task():
                started.append(1)
        sys.modules["aiorepl"] = Fake
        board = FakeBoard("/nonexistent")
        self.assertFalse(selfheal._start_console(board))      # the board says no console

        async def go():
            board.console = True
            ok = selfheal._start_console(board)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return ok
        self.assertTrue(asyncio.run(go()))
        self.assertEqual(started, [1])


# ---- board/esp.py on fakes -----------------------------------------------------

class FakeWLAN:
    def __init__(self, net, iface):
        self.net = net
        self.iface = iface
        self._active = False
        self.cfg = {}
        self._status = net.STAT_IDLE
        self.connects = []
        self.up = False

    def active(self, *v):
        if v:
            self._active = bool(v[0])
        return self._active

    def config(self, *a, **kw):
        if kw:
            self.cfg.update(kw)
            return None
        if a[0] == "ssid" and self.net.old:
            raise ValueError("unknown config param")
        return self.cfg.get("essid", "")

    def connect(self, ssid, pw):
        self.connects.append((ssid, pw))
        self.cfg["essid"] = ssid
        self._status = self.net.STAT_CONNECTING

    def disconnect(self):
        self.up = False

    def isconnected(self):
        return self.up

    def status(self, *a):
        if a:
            return -61
        return self._status

    def scan(self):
        return [(b"home", b"\x00" * 6, 6, -60, 3, False)]

    def ifconfig(self):
        return ("192.168.4.1" if self.iface else "192.168.1.50", "255.255.255.0", "", "")


class FakeNetwork:
    STA_IF, AP_IF = 0, 1
    # the ESP8266's numbers (the ESP32's differ: looked up by name)
    STAT_IDLE, STAT_CONNECTING, STAT_WRONG_PASSWORD = 0, 1, 2
    STAT_NO_AP_FOUND, STAT_CONNECT_FAIL, STAT_GOT_IP = 3, 4, 5
    AUTH_OPEN, AUTH_WPA2_PSK = 0, 3

    def __init__(self, old=False):
        self.old = old
        self.ifaces = {}

    def WLAN(self, iface):
        if iface not in self.ifaces:
            self.ifaces[iface] = FakeWLAN(self, iface)
        return self.ifaces[iface]


class FakeTimer:
    PERIODIC = 1
    made = []

    def __init__(self, n):
        self.cb = None
        FakeTimer.made.append(self)

    def init(self, period, mode, callback):
        self.period, self.cb = period, callback

    def deinit(self):
        self.cb = None


class FakeMachine:
    PWRON_RESET, WDT_RESET, SOFT_RESET, DEEPSLEEP_RESET, HARD_RESET = 0, 1, 4, 5, 6
    Timer = FakeTimer

    def __init__(self):
        self.cause = 0
        self.resets = 0
        self.rtc = []
        self.wdts = []
        self.pins = {}
        machine = self

        class RTC:
            def datetime(self, t):
                machine.rtc.append(t)

        class WDT:
            def __init__(self, timeout=None):
                self.timeout, self.feeds = timeout, 0
                machine.wdts.append(self)

            def feed(self):
                self.feeds += 1

        class Pin:
            IN, OUT, PULL_UP = 0, 1, 2

            def __init__(self, n, mode, pull=None):
                self.n, self.mode, self.pull, self.v = n, mode, pull, 1
                machine.pins[n] = self

            def value(self, *v):
                if v:
                    self.v = v[0]
                return self.v
        self.RTC, self.WDT, self.Pin = RTC, WDT, Pin

    def unique_id(self):
        return b"\x00\xa1\xb2\xc3"

    def reset_cause(self):
        return self.cause

    def reset(self):
        self.resets += 1


class TestEspBoard(unittest.TestCase):
    def setUp(self):
        self.d = mkdtemp()
        self.m = FakeMachine()
        self.net = FakeNetwork()

    def tearDown(self):
        rmtree_all(self.d)

    def make(self, model="esp8266", platform="esp8266", net=None):
        return esp.Board(machine=self.m, network=net or self.net, platform=platform, model=model,
                         data_dir=self.d + "/data")

    def test_identity_and_table_row(self):
        b = self.make()
        self.assertEqual(b.name, "esp8266")
        self.assertEqual(b.row, boards.get("esp8266"))
        self.assertEqual(b.chip_id(), "00a1b2c3")
        self.assertEqual(b.data_dir, self.d + "/data")
        self.assertTrue(b.www_dir.endswith("app/www"))
        self.assertEqual(b.dns_addr, ("0.0.0.0", 53))
        s3 = self.make("esp32s3", "esp32")
        self.assertEqual((s3.name, s3.model, s3.row["led_kind"]), ("esp32", "esp32s3", "rgb"))

    def test_time_is_unix_seconds_as_an_int_and_set_time_sets_the_rtc(self):
        import time
        b = self.make()
        t = b.time()
        self.assertIsInstance(t, int)
        self.assertLess(abs(t - (time.time() + esp.EPOCH)), 2)
        self.assertGreater(t, 1600000000)
        b.set_time(1704110892)                 # 2024-01-01 12:08:12 UTC, a Monday
        self.assertEqual(self.m.rtc, [(2024, 1, 1, 0, 12, 8, 12, 0)])
        self.assertFalse(b.time_trusted)

    def test_ntp(self):
        b = self.make()

        class Ntp:
            fail = True

            def settime(self):
                if self.fail:
                    raise OSError(110)
        ntp = Ntp()
        self.assertFalse(b.ntp_sync(ntp))
        self.assertFalse(b.time_trusted)
        ntp.fail = False
        self.assertTrue(b.ntp_sync(ntp))
        self.assertTrue(b.time_trusted)

    def test_reset_causes(self):
        b = self.make()
        for code, word in ((0, "power"), (1, "watchdog"), (2, "crash"), (3, "crash"), (4, "soft"),
                           (5, "deepsleep"), (6, "hard")):
            self.m.cause = code
            self.assertEqual(b.reset_cause(), word)
        b.reset()
        self.assertEqual(self.m.resets, 1)

    def test_wifi_station(self):
        b = self.make()
        w = b.wifi
        self.assertFalse(w.fixed)
        self.assertEqual((w.connected(), w.ssid(), w.rssi(), w.ip()), (False, "", 0, ""))
        self.assertEqual(w.status(), "idle")
        self.assertEqual(w.scan()[0][0], b"home")
        w.connect("home", "secret123")
        sta = self.net.ifaces[0]
        self.assertEqual(sta.connects, [("home", "secret123")])
        self.assertEqual(w.status(), "connecting")
        for code, word in ((2, "wrong_password"), (3, "no_ap"), (4, "fail"), (77, "fail")):
            sta._status = code
            self.assertEqual(w.status(), word)
        sta.up = True
        self.assertEqual((w.connected(), w.status(), w.ssid(), w.rssi(), w.ip()),
                         (True, "connected", "home", -61, "192.168.1.50"))
        w.disconnect()
        self.assertFalse(sta.active())            # ESP8266: no auto-join at the next boot
        old = FakeNetwork(old=True)               # a port that knows only "essid"
        w2 = self.make(net=old).wifi
        w2.connect("x", "y")
        old.ifaces[0].up = True
        self.assertEqual(w2.ssid(), "x")

    def test_wifi_access_point(self):
        w = self.make("esp32", "esp32").wifi
        ap = self.net.ifaces[1]
        self.assertFalse(w.ap_active())
        w.ap_start("DTU-Gateway-00a1b2c3")
        self.assertTrue(w.ap_active())
        self.assertEqual(ap.cfg, {"essid": "DTU-Gateway-00a1b2c3", "authmode": 0})
        self.assertEqual((w.ap_ssid(), w.ap_ip()), ("DTU-Gateway-00a1b2c3", "192.168.4.1"))
        w.ap_start("Setup", "password1")
        self.assertEqual(ap.cfg, {"essid": "Setup", "authmode": 3, "password": "password1"})
        w.ap_stop()
        self.assertEqual((w.ap_active(), w.ap_ssid()), (False, ""))
        w.disconnect()
        self.assertFalse(self.net.ifaces[0].active())   # never switched on: stays off

    def test_esp32_watchdog_is_the_hardware_one(self):
        b = self.make("esp32", "esp32")
        wdt = b.watchdog(60000)
        wdt.feed()
        self.assertEqual([(w.timeout, w.feeds) for w in self.m.wdts], [(60000, 1)])
        wdt.stop()                                 # cannot be switched off: a day's timeout
        self.assertEqual(self.m.wdts[-1].timeout, 86400000)

    def test_esp8266_soft_watchdog_resets_a_hung_loop(self):
        b = self.make()
        expired = []
        wdt = b.watchdog(5000, on_expire=lambda: expired.append(1))
        timer = FakeTimer.made[-1]
        self.assertEqual(timer.period, 1000)
        for _ in range(20):                        # fed every 2 s: no reset
            timer.cb(timer)
            timer.cb(timer)
            wdt.feed()
        self.assertEqual(self.m.resets, 0)
        for _ in range(4):
            timer.cb(timer)
        self.assertEqual(self.m.resets, 0)
        timer.cb(timer)                            # 5 s without a feed
        self.assertEqual((self.m.resets, expired), (1, [1]))
        self.assertIsNone(timer.cb)
        wdt2 = b.watchdog(3000)
        t2 = FakeTimer.made[-1]
        wdt2.stop()
        self.assertIsNone(t2.cb)

    def test_button_and_led(self):
        b = self.make()
        self.assertEqual(b.button_level(), 1)
        pin = self.m.pins[0]                       # GPIO0, the FLASH button, pulled up
        self.assertEqual((pin.mode, pin.pull), (0, 2))
        b.led(True)
        self.assertEqual(self.m.pins[2].v, 0)      # GPIO2, lit when low
        b.led(False)
        self.assertEqual(self.m.pins[2].v, 1)
        c = self.make("esp32", "esp32")
        c.led(True)
        self.assertEqual(self.m.pins[2].v, 1)      # DevKit LED: lit when high


if __name__ == "__main__":
    unittest.main()
