"""gateway.setup.wifi_manager: the state machine in virtual time against a fake
WiFi. A failed join keeps (or reopens) the AP and never touches the saved
credentials; a dropped network is rejoined at once, then with back-off.

Board-side test: plain unittest, runs under pytest and the unix MicroPython.
"""
import unittest

from support.fakes import Clock, FakeSettings, FakeWifi, Gw
from gateway.setup import wifi_manager as wmod
from gateway.setup.wifi_manager import networks, quality

HOME, PW = "HomeNet", "home-secret"


def make(nets=None, delay=3.0, safe=None, **settings):
    clock = Clock()
    wifi = FakeWifi(clock, nets if nets is not None else {HOME: PW}, delay)
    gw = Gw(wifi, clock, FakeSettings(**settings))
    if safe is not None:           # what gateway.app.Gateway always has
        gw.safe_mode = {"active": safe, "reason": "3 crashes in a row" if safe else ""}
    wm = wmod.attach(gw)
    wm.clock, wm.sleep = clock, clock.sleep
    gw.settings.on_change(wm.settings_changed)
    return clock, wifi, gw, wm


def run_for(clock, wm, seconds, tick=1.0):
    end = clock() + seconds
    while clock() < end:
        clock.advance(tick)
        wm.step(clock())


def connects(wifi):
    return [e for e in wifi.log if e[0] == "connect"]


class FactoryMode(unittest.TestCase):
    def test_no_wifi_configured_opens_the_ap(self):
        clock, wifi, gw, wm = make()
        self.assertFalse(gw.sched.net_up)          # until joined: no DTU rounds
        wm.step(clock())
        self.assertEqual(wm.state, "ap")
        self.assertEqual(wifi.ap, "DTU-Gateway-c0ffee")
        self.assertIn(("disconnect",), wifi.log)   # forget what the chip joined on its own
        self.assertEqual(connects(wifi), [])
        self.assertTrue(wm.captive())
        st = wm.status()
        self.assertEqual((st["mode"], st["connected"], st["ap_ssid"], st["ap_ip"], st["rssi"]),
                         ("ap", False, "DTU-Gateway-c0ffee", "192.168.4.1", None))
        run_for(clock, wm, 600)
        self.assertEqual((wm.state, wifi.ap), ("ap", "DTU-Gateway-c0ffee"))
        self.assertFalse(gw.sched.net_up)

    def test_setup_joins_then_closes_the_ap_after_a_grace(self):
        clock, wifi, gw, wm = make()
        wm.step(clock())
        woken = gw.link.woken
        gw.settings.update({"wifi.ssid": HOME, "wifi.password": PW})
        self.assertEqual(wm.state, "joining")      # at once, not at the next tick
        self.assertEqual(connects(wifi), [("connect", HOME, PW)])
        self.assertEqual(wm.status()["mode"], "ap+sta")
        run_for(clock, wm, 3)
        self.assertEqual(wm.state, "connected")
        self.assertTrue(gw.sched.net_up)
        self.assertGreater(gw.link.woken, woken)   # the first DTU round right away
        self.assertFalse(wm.captive())             # probes get "online" now
        st = wm.status()
        self.assertEqual((st["mode"], st["connected"], st["ssid"], st["ip"], st["rssi"]),
                         ("ap+sta", True, HOME, "192.168.1.50", -61))
        run_for(clock, wm, wmod.AP_GRACE - 10)
        self.assertEqual(wifi.ap, "DTU-Gateway-c0ffee")   # the page can still show the address
        run_for(clock, wm, 15)
        self.assertIsNone(wifi.ap)
        self.assertEqual(wm.status()["mode"], "sta")
        self.assertEqual(len(connects(wifi)), 1)

    def test_joined_already_at_boot_is_kept(self):
        clock = Clock()
        wifi = FakeWifi(clock, {HOME: PW}, delay=0)
        wifi.connect(HOME, PW)
        wifi.log = []
        gw = Gw(wifi, clock, FakeSettings(wifi__ssid=HOME, wifi__password=PW))
        wm = wmod.attach(gw)
        wm.clock = clock
        wm.step(clock())
        self.assertEqual(wm.state, "connected")
        self.assertEqual(wifi.log, [])
        self.assertIsNone(wifi.ap)


class FailedJoins(unittest.TestCase):
    def test_wrong_password_keeps_the_ap_and_the_credentials(self):
        clock, wifi, gw, wm = make()
        wm.step(clock())
        gw.settings.update({"wifi.ssid": HOME, "wifi.password": "typo-pass"})
        run_for(clock, wm, 4)
        self.assertEqual(wm.state, "waiting")
        self.assertEqual(wm.error, "wrong password")
        self.assertEqual(wifi.ap, "DTU-Gateway-c0ffee")
        self.assertEqual(wifi.log[-1], ("disconnect",))     # no endless retries by the chip
        self.assertTrue(wm.captive())
        self.assertEqual(wm.status()["error"], "wrong password")
        self.assertEqual((gw.settings.get("wifi.ssid"), gw.settings.get("wifi.password")),
                         (HOME, "typo-pass"))
        # back-off between attempts: 10, 20, 40, 80, 160, 300, 300 s
        times = []
        for _ in range(7):
            n = len(connects(wifi))
            t0 = clock()
            while len(connects(wifi)) == n:
                clock.advance(1)
                wm.step(clock())
                self.assertLess(clock() - t0, 400)
            times.append(clock())
        gaps = [round(b - a) for a, b in zip(times, times[1:])]
        self.assertEqual(gaps, [20 + 3, 40 + 3, 80 + 3, 160 + 3, 300 + 3, 300 + 3])
        self.assertEqual(wifi.ap, "DTU-Gateway-c0ffee")
        self.assertTrue(all(c == ("connect", HOME, "typo-pass") for c in connects(wifi)))
        self.assertEqual(gw.settings.get("wifi.password"), "typo-pass")
        # the router's password changes to what was saved: the next retry joins
        wifi.nets[HOME] = "typo-pass"
        run_for(clock, wm, 310)
        self.assertEqual((wm.state, wm.error, wm.attempts), ("connected", "", 0))

    def test_unknown_network_and_silent_network(self):
        clock, wifi, gw, wm = make()
        gw.settings.update({"wifi.ssid": "Elsewhere", "wifi.password": PW})
        run_for(clock, wm, 4)
        self.assertEqual((wm.state, wm.error), ("waiting", "network not found"))
        wifi.silent.add(HOME)
        gw.settings.update({"wifi.ssid": HOME})
        self.assertEqual((wm.state, wm.attempts, wm.error), ("joining", 0, ""))   # new settings: at once
        run_for(clock, wm, wmod.JOIN_TIMEOUT - 2)
        self.assertEqual(wm.state, "joining")
        run_for(clock, wm, 3)
        self.assertEqual(wm.state, "waiting")
        self.assertIn("no connection within", wm.error)
        self.assertEqual(wifi.ap, "DTU-Gateway-c0ffee")

    def test_new_credentials_cut_a_long_back_off_short(self):
        clock, wifi, gw, wm = make()
        gw.settings.update({"wifi.ssid": HOME, "wifi.password": "wrong-one"})
        run_for(clock, wm, 400)
        self.assertEqual(wm.state, "waiting")
        self.assertGreater(wm.attempts, 3)
        gw.settings.update({"wifi.password": PW})
        run_for(clock, wm, 4)
        self.assertEqual(wm.state, "connected")


class Drops(unittest.TestCase):
    def test_drop_rejoins_at_once_then_backs_off_and_reopens_the_ap(self):
        clock, wifi, gw, wm = make(wifi__ssid=HOME, wifi__password=PW)
        run_for(clock, wm, 4)
        run_for(clock, wm, wmod.AP_GRACE + 5)
        self.assertEqual((wm.state, wifi.ap), ("connected", None))
        self.assertEqual(len(connects(wifi)), 1)
        wifi.drop(HOME)                      # the router goes away
        clock.advance(1)
        wm.step(clock())
        self.assertEqual(wm.state, "joining")
        self.assertEqual(len(connects(wifi)), 2)
        self.assertIn("lost HomeNet", gw.events.text())
        self.assertFalse(gw.sched.net_up)
        self.assertIsNone(wifi.ap)           # a short blip does not open the AP
        run_for(clock, wm, 4)
        self.assertEqual(wm.state, "waiting")
        self.assertEqual(wifi.ap, "DTU-Gateway-c0ffee")    # never locked out
        t_fail = clock()
        run_for(clock, wm, 600)
        t = [c for c in wifi.log if c[0] == "connect"]
        self.assertGreater(len(t), 4)
        self.assertLess(len(t), 10)          # backing off, not hammering
        woken = gw.link.woken
        wifi.nets[HOME] = PW                 # the router is back
        run_for(clock, wm, 305)
        self.assertEqual(wm.state, "connected")
        self.assertTrue(gw.sched.net_up)
        self.assertGreater(gw.link.woken, woken)
        self.assertGreater(clock() - t_fail, 0)
        run_for(clock, wm, wmod.AP_GRACE + 5)
        self.assertIsNone(wifi.ap)
        self.assertEqual((gw.settings.get("wifi.ssid"), gw.settings.get("wifi.password")), (HOME, PW))

    def test_factory_reset_goes_back_to_the_ap(self):
        clock, wifi, gw, wm = make(wifi__ssid=HOME, wifi__password=PW)
        run_for(clock, wm, 130)
        self.assertEqual((wm.state, wifi.ap), ("connected", None))
        gw.settings.update({"wifi.ssid": "", "wifi.password": ""})
        self.assertEqual(wm.state, "ap")
        self.assertEqual(wifi.ap, "DTU-Gateway-c0ffee")
        self.assertIsNone(wifi.joining)
        self.assertFalse(gw.sched.net_up)


class ViaDtuAp(unittest.TestCase):
    def test_joins_the_dtu_ap_and_keeps_ours_open(self):
        clock, wifi, gw, wm = make({"DTUBI-4143": "dtu-pass1"}, dtu__via="ap")
        gw.settings.update({"dtu.ap_ssid": "DTUBI-4143", "dtu.ap_password": "dtu-pass1"})
        # (where the DTU is then, and whether it is polled: the Gateway's
        # apply_dtu_target, tests_host/e2e/test_first_boot_http.py)
        run_for(clock, wm, 4 + wmod.AP_GRACE + 10)
        self.assertEqual(wm.state, "connected")
        self.assertEqual(wifi.joining, ("DTUBI-4143", "dtu-pass1"))
        self.assertEqual(wifi.ap, "DTU-Gateway-c0ffee")        # the only way in stays open
        self.assertTrue(gw.sched.net_up)
        self.assertFalse(gw.sched.rescue_possible)               # no rescue in this mode

    def test_rescue_possible_only_when_it_can_work(self):
        clock, wifi, gw, wm = make(wifi__ssid=HOME, wifi__password=PW)
        run_for(clock, wm, 4)
        self.assertFalse(gw.sched.rescue_possible)              # DTU AP unknown
        gw.link.dtu_ap = ("DTUBI-4143", "12345678")              # learned from GetConfig
        wm.step(clock())
        self.assertTrue(gw.sched.rescue_possible)
        self.assertEqual(wm.dtu_ap(), ("DTUBI-4143", "12345678"))
        gw.settings.update({"dtu.ap_ssid": "DTUBI-OTHER", "dtu.ap_password": "other-pw"})
        self.assertEqual(wm.dtu_ap(), ("DTUBI-OTHER", "other-pw"))   # the settings win
        wifi.drop(HOME)
        clock.advance(1)
        wm.step(clock())
        self.assertFalse(gw.sched.rescue_possible)              # our own network is down


class SafeMode(unittest.TestCase):
    """Safe mode (gateway/safemode.py): the setup page and the OTA upload must
    stay reachable on our AP even when the home WiFi works."""

    def test_safe_mode_keeps_the_ap_open_long_after_the_grace(self):
        clock, wifi, gw, wm = make(safe=True, wifi__ssid=HOME, wifi__password=PW)
        run_for(clock, wm, 4)
        self.assertEqual(wm.state, "connected")
        self.assertTrue(gw.sched.net_up)
        run_for(clock, wm, 10 * wmod.AP_GRACE)
        self.assertEqual((wm.state, wifi.ap), ("connected", "DTU-Gateway-c0ffee"))
        self.assertNotIn(("ap_stop",), wifi.log)
        self.assertEqual(wm.status()["mode"], "ap+sta")
        self.assertNotIn("closed", gw.events.text())
        self.assertEqual(len(connects(wifi)), 1)

    def test_safe_mode_opens_the_ap_when_joined_at_boot_and_reopens_it(self):
        clock = Clock()
        wifi = FakeWifi(clock, {HOME: PW}, delay=0)
        wifi.connect(HOME, PW)                 # the chip rejoined on its own before the app ran
        wifi.log = []
        gw = Gw(wifi, clock, FakeSettings(wifi__ssid=HOME, wifi__password=PW))
        gw.safe_mode = {"active": True, "reason": "the button was held at boot"}
        wm = wmod.attach(gw)
        wm.clock = clock
        wm.step(clock())
        self.assertEqual(wm.state, "connected")
        self.assertEqual(wifi.log, [("ap_start", "DTU-Gateway-c0ffee")])   # no rejoin, AP open
        wifi.ap_stop()                         # something else closed it
        clock.advance(1)
        wm.step(clock())
        self.assertEqual(wifi.ap, "DTU-Gateway-c0ffee")
        self.assertEqual(wm.state, "connected")
        self.assertEqual(len(connects(wifi)), 0)

    def test_setup_from_the_ap_closes_it_only_outside_safe_mode(self):
        # safe: off, on, and a gateway stand-in that does not say (off)
        for safe, after in ((False, None), (None, None), (True, "DTU-Gateway-c0ffee")):
            clock, wifi, gw, wm = make(safe=safe)
            wm.step(clock())
            self.assertEqual((wm.state, wifi.ap), ("ap", "DTU-Gateway-c0ffee"))
            gw.settings.update({"wifi.ssid": HOME, "wifi.password": PW})
            run_for(clock, wm, 4)
            self.assertEqual((wm.state, wifi.ap), ("connected", "DTU-Gateway-c0ffee"))
            run_for(clock, wm, wmod.AP_GRACE - 10)
            self.assertEqual(wifi.ap, "DTU-Gateway-c0ffee")
            run_for(clock, wm, 15)
            self.assertEqual(wifi.ap, after, safe)
            run_for(clock, wm, 10 * wmod.AP_GRACE)
            self.assertEqual(wifi.ap, after, safe)       # and it stays that way
            self.assertEqual(wifi.log.count(("ap_stop",)), 0 if safe else 1)
            self.assertEqual((wm.state, len(connects(wifi))), ("connected", 1))


class FixedAndScan(unittest.TestCase):
    def test_fixed_network_is_left_alone(self):
        clock = Clock()
        wifi = FakeWifi(clock, {})
        wifi.fixed = True
        gw = Gw(wifi, clock)
        wm = wmod.attach(gw)
        self.assertTrue(gw.sched.net_up)
        wm.step(clock())
        self.assertEqual((wm.state, wifi.log, wm.captive()), ("fixed", [], False))
        self.assertEqual(wm.status()["mode"], "sta")

    def test_scan_list_is_deduplicated_and_sorted(self):
        raw = [(b"Weak", b"1", 1, -90, 3, False), (b"Home", b"2", 6, -70, 3, False),
               (b"Home", b"3", 11, -50, 3, False), (b"", b"4", 3, -40, 0, False),
               (b"Hidden", b"5", 3, -30, 3, True), (b"Cafe", b"6", 1, -60, 0, False),
               (b"\xff\xfe", b"7", 1, -60, 0, False)]
        nets = [wmod.entry(n) for n in networks(raw)]
        self.assertEqual(nets, [
            {"name": "Home", "wifi": 100, "rssi": -50, "chan": 11, "open": False},
            {"name": "Cafe", "wifi": 80, "rssi": -60, "chan": 1, "open": True},
            {"name": "Weak", "wifi": 20, "rssi": -90, "chan": 1, "open": False}])
        self.assertEqual((quality(-69), quality(-76), quality(-20), quality(-120)), (62, 48, 100, 0))
        self.assertEqual(len(networks([(b"n%d" % i, b"", 1, -50 - i, 0, False) for i in range(40)])),
                         wmod.MAX_NETWORKS)

    def test_scan_is_cached_and_skipped_while_joining(self):
        clock, wifi, gw, wm = make()
        wifi.scan_list = [(b"Home", b"2", 6, -70, 3, False)]
        self.assertEqual([n["name"] for n in wm.scan()], ["Home"])
        wifi.scan_list = [(b"Other", b"2", 6, -70, 3, False)]
        self.assertEqual([n["name"] for n in wm.scan()], ["Home"])     # cached
        clock.advance(wmod.SCAN_CACHE + 1)
        gw.settings.update({"wifi.ssid": HOME, "wifi.password": PW})
        self.assertEqual([n["name"] for n in wm.scan()], ["Home"])     # joining: no scan
        run_for(clock, wm, 4)
        self.assertEqual([n["name"] for n in wm.scan()], ["Other"])


if __name__ == "__main__":
    unittest.main()
