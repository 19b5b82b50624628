"""WiFi manager: join the configured network, never lock the user out.

States (`state`, also in GET /api/wifi):
  "fixed"      the network is managed outside the app (host mode with --dtu)
  "ap"         nothing to join (factory mode): our open AP DTU-Gateway-<chip id>
  "joining"    connect() issued at _since; the AP stays as it is
  "connected"  joined; our AP, if open, closes AP_GRACE s later (the setup
               page can still show the new address to the phone on it);
               in safe mode it stays open (see keep_ap())
  "waiting"    a join failed or timed out: the station is stopped, our AP is
               open, the next attempt comes at _retry_at (back-off 10 s..5 min)
  "visiting"   gateway.link.rescue borrows the station for a short visit to the DTU's AP
               (its visit() and come_back(): the state machine stands aside)

What is joined: the home WiFi (wifi.ssid / wifi.password), or the DTU's own AP
(dtu.ap_ssid / dtu.ap_password) when dtu.via is "ap" (our AP then stays open:
it is the only way in, and the Gateway points the DTU link at the DTU's
address there, dtu.client.AP_IP). Settings are never
changed here, so a failed attempt loses nothing. A drop of the joined network
starts a new join at once; if that fails the AP opens.

step(now) is the whole state machine, synchronous, so tests drive it in
virtual time; run() calls it every TICK s and on every settings change. It
also tells the scheduler whether the network is up (no DTU rounds without it)
and whether the last rung of the recovery ladder is possible.
"""
import asyncio

from gateway.mono import mono

from micropython import const

JOIN_TIMEOUT = const(20)      # s for a join to reach "connected"
FIRST_RETRY = const(10)       # s after the first failure; doubles up to MAX_RETRY
MAX_RETRY = const(300)
AP_GRACE = const(120)         # s our AP stays open after a successful join
TICK = 1                      # s between steps
SCAN_CACHE = const(10)        # s a scan is reused
MAX_NETWORKS = const(20)      # networks kept from a scan (RAM)
_TARGET_KEYS = ("wifi.ssid", "wifi.password", "dtu.via", "dtu.ap_ssid", "dtu.ap_password")
REASONS = {"wrong_password": "wrong password", "no_ap": "network not found",
            "fail": "connection failed"}


def quality(rssi):
    """Signal quality 0-100 from dBm (the seed's foundNetworks.wifi)."""
    return max(0, min(100, 2 * (rssi + 100)))


def entry(n):
    """A kept network (name, rssi, channel, open) -> the seed's foundNetworks entry."""
    return {"name": n[0], "wifi": quality(n[1]), "rssi": n[1], "chan": n[2], "open": n[3]}


def networks(raw, limit=MAX_NETWORKS):
    """network.WLAN.scan() tuples -> [(name, rssi, channel, open)], one per
    SSID (its strongest AP), strongest first; hidden and unnamed ones dropped."""
    best = {}
    for ap in raw:
        if ap[5] or not ap[0]:
            continue
        try:
            name = ap[0].decode() if isinstance(ap[0], bytes) else str(ap[0])
        except UnicodeError:
            continue
        old = best.get(name)
        if old is None or ap[3] > old[1]:
            best[name] = (ap[2], ap[3], ap[4] == 0)
    items = sorted(best.items(), key=lambda kv: -kv[1][1])[:limit]
    return [(n, r, c, o) for n, (c, r, o) in items]


class WifiManager:
    def __init__(self, gw, clock=mono, sleep=asyncio.sleep):
        self.gw = gw
        self.clock = clock
        self.sleep = sleep
        self.state = "fixed" if gw.board.wifi.fixed else "off"
        self.error = ""              # why the last join failed ("" after a success)
        self.attempts = 0            # failed joins in a row
        self.networks = []           # the last scan, compact: see networks()
        self.ap_name = "DTU-Gateway-" + gw.board.chip_id()
        self.running = False
        self._target = None          # (ssid, password) being joined / joined
        self._since = 0              # start of the current join
        self._retry_at = 0
        self._ap_off_at = None
        self._scanned = None
        self.safe = gw.safe_mode["active"]     # decided once at boot (gateway/safemode.py)

    @property
    def wifi(self):
        return self.gw.board.wifi

    def _ev(self, msg, level="info"):
        self.gw.events.add("wifi", msg, level)

    # ---- what to join -----------------------------------------------------------

    def via_ap(self):
        return self.gw.settings.get("dtu.via") == "ap"

    def target(self):
        g = self.gw.settings.get
        if self.via_ap():
            return (g("dtu.ap_ssid"), g("dtu.ap_password")) if g("dtu.ap_ssid") else None
        return (g("wifi.ssid"), g("wifi.password")) if g("wifi.ssid") else None

    def dtu_ap(self):
        """(ssid, password) of the DTU's AP: the settings, else what GetConfig said."""
        g = self.gw.settings.get
        if g("dtu.ap_ssid"):
            return g("dtu.ap_ssid"), g("dtu.ap_password")
        return self.gw.link.dtu_ap

    def keep_ap(self):
        """Our AP stays open whatever the station does: in safe mode (the setup
        page and the OTA upload must stay reachable) and with dtu.via "ap"
        (it is the only way in)."""
        return self.safe or self.via_ap()

    # ---- the state machine ----------------------------------------------------

    def step(self, now):
        w = self.wifi
        if w.fixed or self.state == "visiting":
            self._publish()
            return
        tgt = self.target()
        if tgt != self._target or self.state == "off":
            first = self.state == "off"
            self._target = tgt
            self.attempts, self.error = 0, ""
            if tgt is None:
                w.disconnect()
                self._ap_on()
                self.state = "ap"
            elif first and w.connected() and w.ssid() == tgt[0]:
                self._joined(now)       # joined already at boot
            else:
                self._join(now)
        st = self.state
        if st == "joining":
            s = w.status()
            if s == "connected":
                self._joined(now)
            elif s in REASONS:
                self._failed(now, REASONS[s])
            elif now - self._since >= JOIN_TIMEOUT:
                self._failed(now, "no connection within %d s" % JOIN_TIMEOUT)
        elif st == "connected":
            if not w.connected():
                self._ev("lost %s" % self._target[0], "warn")
                self._join(now)
            elif self._ap_off_at is not None and now >= self._ap_off_at and not self.keep_ap():
                w.ap_stop()
                self._ap_off_at = None
                self._ev("access point %s closed" % self.ap_name)
        elif st == "waiting":
            if now >= self._retry_at:
                self._join(now)
        elif st == "ap" and not w.ap_active():
            self._ap_on()
        if self.keep_ap() and not w.ap_active():
            self._ap_on()
        self._publish()

    def _join(self, now):
        self.state = "joining"
        self._since = now
        self.wifi.connect(self._target[0], self._target[1])
        self._ev("joining %s" % self._target[0])

    def _joined(self, now):
        self.state = "connected"
        self.attempts, self.error = 0, ""
        self._ev("connected to %s, address %s" % (self._target[0], self.wifi.ip()))
        if self.wifi.ap_active():
            self._ap_off_at = now + AP_GRACE

    def _failed(self, now, reason):
        self.wifi.disconnect()      # stop the station's own retries: they upset the AP
        self.attempts += 1
        self.error = reason
        self._ap_on()
        wait = min(MAX_RETRY, FIRST_RETRY << min(self.attempts - 1, 5))
        self._retry_at = now + wait
        self.state = "waiting"
        self._ev("joining %s failed (%s); access point %s open, next try in %d s"
                 % (self._target[0], reason, self.ap_name, wait), "warn")

    def _ap_on(self):
        self._ap_off_at = None
        if not self.wifi.ap_active():
            self.wifi.ap_start(self.ap_name)
            self._ev("access point %s open at %s" % (self.ap_name, self.wifi.ap_ip()))

    def up(self):
        """The gateway's own network (the one the DTU is reached over) is up."""
        return self.state == "fixed" or self.state == "connected"

    def _publish(self):
        gw = self.gw
        s = gw.sched
        up = self.up()
        if up and not s.net_up:
            gw.link.wake()          # the first round right away
        s.net_up = up
        s.rescue_possible = bool(up and self.state != "fixed" and not self.via_ap()
                                 and gw.settings.get("wifi.ssid") and self.dtu_ap())

    def captive(self):
        """Phones on our AP should see the setup page: the AP is up and the
        station is not joined (factory mode, or a failed join)."""
        w = self.wifi
        return not w.fixed and w.ap_active() and not w.connected()

    # ---- a visit to another network (the DTU's AP: gateway.link.rescue) ----------

    async def _wait_join(self, timeout):
        w = self.wifi
        t0 = self.clock()
        while self.clock() - t0 < timeout:
            s = w.status()
            if s == "connected":
                return True
            if s in REASONS:
                return False
            await self.sleep(0.5)
        return False

    async def visit(self, ssid, password, timeout=JOIN_TIMEOUT):
        """Leave the current network and join (ssid, password): True when
        joined. The state machine stands aside meanwhile ("visiting")."""
        self.state = "visiting"
        self.step(self.clock())              # tells the scheduler the network is gone
        w = self.wifi
        w.disconnect()
        w.connect(ssid, password)
        ok = await self._wait_join(timeout)
        if not ok:
            w.disconnect()
        return ok

    async def come_back(self, timeout=JOIN_TIMEOUT):
        """After visit(): rejoin the configured network; the state machine
        takes over again (and opens our AP if that fails). True when joined."""
        self.wifi.disconnect()
        self.state = "off"                   # step() starts a join to the target
        self.step(self.clock())
        ok = await self._wait_join(timeout)
        self.step(self.clock())
        return ok

    async def rescue(self, link):
        """The DTU link's last rung (DtuLink.rescue)."""
        try:
            from gateway.link import rescue as dtu_rescue   # only loaded when the last rung is needed
            await dtu_rescue.run(self.gw, self, link)
        except Exception as e:  # never take the DTU link down with it
            self._ev("rescue failed: %r" % (e,), "error")
            self.gw.sched.rescue_done(link.clock(), False)
            if self.state == "visiting":
                self.state = "off"           # the state machine rejoins the home WiFi

    # ---- scan, status, hooks ----------------------------------------------------

    def found(self):
        """The last scan as the seed's foundNetworks (GET /api/info)."""
        return [entry(n) for n in self.networks]

    def scan(self):
        """Scan (at most every SCAN_CACHE s, never while joining) -> found()."""
        now = self.clock()
        if self.state in ("joining", "visiting") or (
                self._scanned is not None and now - self._scanned < SCAN_CACHE):
            return self.found()
        try:
            raw = self.wifi.scan()
        except OSError as e:
            self._ev("scan failed: %s" % e, "warn")
            return self.found()
        self._scanned = now
        self.networks = None         # let the old list go before the new one is built
        self.networks = networks(raw)
        return self.found()

    def status(self):
        w = self.wifi
        ap = w.ap_active() if not w.fixed else False
        con = w.connected()
        sta = self.state in ("fixed", "joining", "connected", "visiting")
        return {"mode": "ap+sta" if ap and sta else ("ap" if ap else "sta"),
                "connected": con, "ssid": w.ssid() if con else (self._target or ("",))[0],
                "ip": w.ip() if con else "", "rssi": w.rssi() if con else None,
                "ap_ssid": self.ap_name, "ap_ip": w.ap_ip() if ap else "",
                "error": self.error, "state": self.state}

    def settings_changed(self, changed):
        for k in _TARGET_KEYS:
            if k in changed:
                self.step(self.clock())
                break

    def routes(self, app):
        @app.get("/api/wifi")
        async def wifi(req):
            return self.status()

        @app.get("/api/wifi/scan")
        async def wifi_scan(req):
            return {"networks": self.scan()}

    async def run(self):
        self.running = True
        if not self.wifi.fixed:
            self.scan()                 # for the setup page, before anyone asks
        while self.running:
            self.step(self.clock())
            await self.sleep(TICK)

    def stop(self):
        self.running = False


def attach(gw):
    wm = WifiManager(gw)
    gw.wifi_manager = wm
    gw.link.rescue = wm.rescue
    gw.sched.net_up = wm.up()
    return wm
