"""The gateway: settings, scheduler, DTU link, live state and API wired together."""
import asyncio
import gc
import sys

from dtu.client import AP_IP, DtuClient
from gateway import VERSION, VERSION_DATE, tz
from gateway.link.dtu_link import DtuLink
from gateway.energy import Energy
from gateway.events import Events
from gateway.link.scheduler import APP_INFO_EVERY, CONN_WORDS, Scheduler, word
from gateway.settings import Settings
from gateway.state import LiveState

_MICROPYTHON = sys.implementation.name == "micropython"


def split_host(hostport, default_port):
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return hostport, default_port
    return host, int(port)


def _local_day(now, offset):
    """The local day (days since 1970 in the configured time zone) at Unix time now."""
    return int((now + offset) // 86400)


def feature_modules(profile="full"):
    """The features of `profile` (gateway/profiles.py) beyond the core (MQTT,
    openHAB, metrics, web app, OTA, ...) as [(name, module)]: each module has
    attach(gw) -> an object, or None when it has nothing to do. The object
    may have any of: routes(app), after_round(), alarms_changed(started,
    ended), settings_changed(changed), async run(), stop(). Add a feature in
    gateway/profiles.py."""
    from gateway import lazy, profiles
    out = []
    for name, mod, _ in profiles.FEATURES:
        if name in profiles.features(profile):
            # an upper-case name is a gateway.lazy spec: loaded while its setting is on
            out.append((name, getattr(lazy, mod) if mod.isupper() else __import__(mod, None, None, ("attach",))))
    return out


class Gateway:
    def __init__(self, board, dtu_override=None, safe_mode=None, profile=None):
        from gateway import profiles
        self.board = board
        self.profile = profile or profiles.current()      # what this build carries
        # safe mode (gateway/safemode.py decides at boot): setup, WiFi, updates; no DTU traffic
        self.safe_mode = safe_mode or {"active": False, "reason": ""}
        self.settings = Settings(board.data_dir)
        self.events = Events(board.data_dir + "/events.json", clock=board.time)
        self.events.load()
        for level, msg in self.settings.load():
            self.events.add("settings", msg, level)
        self.dtu_override = dtu_override      # "host[:port]" from the command line
        self.dtu_visit = False                # the recovery ladder is on the DTU's own AP (dtu_rescue)
        self.state = LiveState(board.time())
        self.energy = Energy(board.data_dir + "/energy.json")   # the counters that never fall
        self.energy.load()
        self.state.energy = self.energy
        self.alarms = None                    # gateway.alarms.Alarms once a list with entries came
        self.api = None                       # the web server (gateway.web.httpd), once run() starts it
        self.sched = Scheduler()
        if self.energy.producing is False:
            # stopped after the dusk's zero power: a DTU silent now is asleep, not failing
            self.sched.dark = True
        # one request a round: the DTU's AppInfoData is asked again only every
        # APP_INFO_EVERY s, after a write or when a reply cannot be read
        self.client = DtuClient("", clock=lambda: int(board.time()), timeout=5, connect_timeout=5,
                                session_max_age=APP_INFO_EVERY)
        self.link = DtuLink(self.sched, self.state, self.client, board.time,
                            on_round=self._after_round, on_dtu_time=self._dtu_time, on_data=self._on_data,
                            on_warnings=self._on_warnings)
        self._apply_settings()
        self.settings.on_change(self._settings_changed)
        self.state.render(board.time(), self.tz_offset(board.time()), self.sched)
        # the features that others ask for by name, set by their attach() (None: not running)
        self.wifi_manager = self.auth = self.ota = None
        self.features = []
        safe = profiles.SAFE
        for name, mod in feature_modules(self.profile):
            if self.safe_mode["active"] and name not in safe:
                continue
            f = mod.attach(self)
            if f is not None:
                self.features.append(f)
        from gateway.lazy import unload
        unload("gateway.profiles")             # asked once: its table stays out of the heap

    def each_feature(self, method, *args):
        """Call `method` on every feature that has it; one failing feature
        is logged and never takes the gateway (or the others) down."""
        for f in self.features:
            fn = getattr(f, method, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception as e:  # isolate features from each other and the core
                self.events.add("feature", "%s.%s: %r" % (type(f).__name__, method, e), "error")

    # ---- settings -------------------------------------------------------------

    def apply_dtu_target(self):
        """The one place that decides where the DTU is and whether it is
        polled: the DTU's address on its own access point while the gateway
        is there (a rescue visit; dtu.via "ap" unless the command line says
        --dtu); else the command line's --dtu; else dtu.host. Safe mode never
        polls."""
        g = self.settings.get
        host, port = g("dtu.host"), g("dtu.port")
        if self.dtu_visit or (g("dtu.via") == "ap" and not self.dtu_override):
            host = AP_IP
        elif self.dtu_override:
            host, port = split_host(self.dtu_override, port)
        self.client.host, self.client.port = host, port
        self.sched.enabled = bool(host) and not self.safe_mode["active"]

    def _apply_settings(self):
        g = self.settings.get
        self.apply_dtu_target()
        interval = g("dtu.interval")
        self.sched.configure(interval, g("dtu.cloud_pause"), g("dtu.cloud_pause_seconds"),
                             g("dtu.cloud_schedule"))
        self.state.stale_after = 2 * interval + 5
        self._tz = tz.parse(g("timezone"))
        for w in self.settings.warnings():
            self.events.add("settings", w, "warn")

    def _settings_changed(self, changed):
        self._apply_settings()
        self.events.add("settings", "changed: " + ", ".join(sorted(changed)), persist=True)
        self.link.wake()
        self.each_feature("settings_changed", changed)

    def tz_offset(self, now):
        """Seconds east of UTC at Unix time `now` in the configured time zone."""
        return tz.offset(self._tz, now)

    # ---- DTU ------------------------------------------------------------------

    def command(self, cmd, source):
        """The one way a command (gateway.link.commands.Command: a limit, a DTU
        reboot, an inverter restart) reaches the DTU, whoever asks (`source`: "api",
        "mqtt", "openhab"): queued with the scheduler, which spaces and
        coalesces the writes; logged; the link woken to plan at once.
        Returns what was queued (a limit: the percent the DTU will get)."""
        queued = cmd.queue(self.sched, self.board.time())
        self.events.add(source, cmd.text(queued), persist=cmd.persist)
        self.link.wake()
        self._render()
        return queued

    def _dtu_time(self, unix):
        if not self.board.time_trusted and unix > 1600000000:
            self.board.set_time(unix)

    def _on_data(self, r):
        """A fresh answer, before anyone sees it: the energy counters' rules."""
        now = self.board.time()
        warn = self.energy.take(r, _local_day(now, self.tz_offset(now)), now)
        if warn:
            self.events.add("energy", warn, "warn")

    def _on_warnings(self, warns):
        """A fresh warning list: each start and end is an event, and the
        features hear of them (MQTT's event topic). Returns the active count."""
        if self.alarms is None:
            if not warns:
                return 0                   # nothing yet: gateway.alarms stays out of the heap
            from gateway.alarms import Alarms
            self.alarms = self.state.alarms = Alarms()
        started, ended = self.alarms.take(warns)
        if started or ended:
            from dtu.warn_texts import text
            for e in started:
                self.events.add("alarm", "warning %d %s started" % (e[0], text(e[0])), "warn", persist=True)
            for e in ended:
                self.events.add("alarm", "warning %d %s ended" % (e[0], text(e[0])), persist=True)
            self.each_feature("alarms_changed", started, ended)
        return self.state.warnings()

    def alarms_body(self):
        """GET /api/alarms and MQTT's list: the warnings as last read."""
        from gateway import alarms
        s = self.sched
        body = alarms.body(self.alarms, self.tz_offset, None if s.warn_failed else s.warn_read)
        if self.alarms is None:
            from gateway.lazy import unload
            unload("gateway.alarms")       # still none: its code goes again
        return body

    def data_now(self):
        now = self.board.time()
        offset = self.tz_offset(now)      # once: /api/data is the hot path
        if _local_day(now, offset) != self.energy.day:
            self._render()                 # local midnight: today's energy starts at 0
        return self.state.current(now, offset)

    def _render(self):
        now = self.board.time()
        offset = self.tz_offset(now)
        self.energy.new_day(self.state.readings, _local_day(now, offset))
        self.state.render(now, offset, self.sched)

    def _after_round(self, link):
        for level, kind, msg in self.sched.take_notes():
            self.events.add(kind, msg, level)
        self._render()
        self.each_feature("after_round")
        self.events.flush()
        if _MICROPYTHON:
            # a small heap stays compact when each round's garbage goes at once;
            # CPython frees it by reference counting, and a full collection of
            # a large process costs ~10 ms a round for nothing
            gc.collect()

    # ---- /api/info ------------------------------------------------------------

    def heap(self):
        gc.collect()
        return {"free": self.board.mem_free(), "used": self.board.mem_alloc()}

    def info(self):
        g = self.settings.get
        b = self.board
        wifi = b.wifi
        wm = self.wifi_manager
        nets = wm.found() if wm is not None else []      # the last scan: scanning blocks
        return {
            "chipid": int(b.chip_id(), 16),            # a number, as in the seed
            "host": "hoymilesGW_%d" % int(b.chip_id(), 16),
            "initMode": 0 if g("wifi.ssid") or b.name == "host" else 1,
            "firmware": self._firmware(),
            "profile": self.profile, "features": self._feature_names(),
            "dtuConnection": {
                "dtuHostIp": self.client.host, "dtuPort": self.client.port,
                "dtuSsid": g("dtu.ap_ssid"), "dtuPassword": "",
                "dtuPasswordSet": bool(g("dtu.ap_password")),
                "rssiDtu": self.state.dtu_rssi,
                "dtuState": word(CONN_WORDS, self.sched.conn),   # /api/data's dtuConnState as a word
            },
            "wifiConnection": {
                "networkCount": len(nets), "foundNetworks": nets,
                "wifiSsid": g("wifi.ssid") or wifi.ssid(), "wifiPassword": "",
                "wifiPasswordSet": bool(g("wifi.password")),
                "rssiGW": wifi.rssi(),
            },
            "heap": self.heap(),
            # requests answered, connections cut (slow or idle), out-of-memory answers (gateway.web.httpd)
            "http": self.api.counts if self.api is not None else None,
            "safeMode": self.safe_mode,
            "uptime": int(b.time() - self.state.start_time),
        }

    def _feature_names(self):
        """What this build carries (gateway/profiles.py), asked when /api/info is."""
        from gateway import profiles
        from gateway.lazy import unload
        names = profiles.features(self.profile)
        unload("gateway.profiles")
        return names

    def _firmware(self):
        """/api/info's "firmware": the update feature's (installed and released
        versions), else the installed version alone."""
        if self.ota is not None:
            return self.ota.firmware()
        return {"version": VERSION, "versiondate": VERSION_DATE, "versionServer": "",
                "versiondateServer": "", "versionServerRelease": "", "versiondateServerRelease": "",
                "selectedUpdateChannel": "0", "updateAvailable": 0}

    # ---- run ------------------------------------------------------------------

    async def run(self, host="0.0.0.0", port=80):
        from gateway.web.api import make_app
        self.api = make_app(self)
        self.events.add("boot", "gateway %s started" % VERSION, persist=True)
        asyncio.create_task(self.link.run())
        for f in self.features:
            if hasattr(f, "run"):
                asyncio.create_task(f.run())
        await self.api.start_server(host=host, port=port)

    def stop(self):
        self.link.running = False
        self.link.wake()
        self.each_feature("stop")
        self.events.flush(force=True)
        try:
            self.energy.save(self.board.time())
        except OSError:  # noqa: S110 - stopping: the figures written last stay
            pass
        api = self.api
        if api is not None:
            api.shutdown()
