"""Small stand-ins for board-side unit tests of the first-boot features (WiFi
manager, auth, history): a virtual clock, a WiFi that joins by the rules it
is given, and a gateway with just the parts those features touch. Runs on
both Pythons."""
from gateway.link.scheduler import Scheduler
from gateway.settings import SCHEMA, check


class Clock:
    def __init__(self, t=1000.0):
        self.t = float(t)

    def __call__(self):
        return self.t

    def advance(self, s):
        self.t += s

    async def sleep(self, s):
        self.t += s


class FakeWifi:
    """Networks in `nets` ({ssid: password}) can be joined; a join takes
    `delay` s of the clock; an SSID in `silent` never answers (the join times
    out); drop() makes the joined network vanish."""
    fixed = False

    def __init__(self, clock, nets=None, delay=3.0):
        self.clock = clock
        self.nets = dict(nets or {})
        self.silent = set()
        self.delay = delay
        self.scan_list = []
        self.joining = None        # (ssid, password)
        self.since = 0.0
        self.ap = None
        self.log = []              # ("connect", ssid, pw) | ("disconnect",) | ("ap_start", ssid) | ("ap_stop",)

    def connect(self, ssid, password):
        self.log.append(("connect", ssid, password))
        self.joining = (ssid, password)
        self.since = self.clock()

    def disconnect(self):
        self.log.append(("disconnect",))
        self.joining = None

    def status(self):
        j = self.joining
        if j is None:
            return "idle"
        if j[0] in self.silent or self.clock() - self.since < self.delay:
            return "connecting"
        if j[0] not in self.nets:
            return "no_ap"
        if self.nets[j[0]] != j[1]:
            return "wrong_password"
        return "connected"

    def connected(self):
        return self.status() == "connected"

    def ssid(self):
        return self.joining[0] if self.connected() else ""

    def rssi(self):
        return -61 if self.connected() else 0

    def ip(self):
        return "192.168.1.50" if self.connected() else ""

    def drop(self, ssid):
        self.nets.pop(ssid, None)

    def scan(self):
        return list(self.scan_list)

    def ap_start(self, ssid, password=""):
        self.log.append(("ap_start", ssid))
        self.ap = ssid

    def ap_stop(self):
        self.log.append(("ap_stop",))
        self.ap = None

    def ap_active(self):
        return self.ap is not None

    def ap_ssid(self):
        return self.ap or ""

    def ap_ip(self):
        return "192.168.4.1"


class FakeSettings:
    """get/update over a dict with the real defaults and validation, and the
    change listeners; no files."""

    def __init__(self, **values):
        self.v = {r[0]: r[2] for r in SCHEMA}
        self.rows = {r[0]: r for r in SCHEMA}
        self.cbs = []
        for k, val in values.items():
            self.v[k.replace("__", ".")] = val

    def get(self, key):
        return self.v[key]

    def on_change(self, cb):
        self.cbs.append(cb)

    def update(self, changes):
        changed = {}
        for k, val in changes.items():
            val = check(self.rows[k], val)
            if self.v[k] != val:
                changed[k] = val
        self.v.update(changed)
        for cb in self.cbs:
            cb(dict(changed))
        return changed


class Events:
    def __init__(self):
        self.items = []

    def add(self, kind, msg, level="info", persist=False):
        self.items.append((kind, level, msg))

    def flush(self, force=False):
        return False

    def text(self):
        return "\n".join("%s %s %s" % e for e in self.items)


class Link:
    def __init__(self):
        self.woken = 0
        self.dtu_ap = None
        self.rescue = None

    def wake(self):
        self.woken += 1


class Client:
    host = ""
    port = 10081


class Board:
    name = "fake"
    dns_addr = None

    def __init__(self, wifi, clock):
        self.wifi = wifi
        self.time = clock

    def chip_id(self):
        return "c0ffee"


class Gw:
    """What the first-boot features use of gateway.app.Gateway."""

    def __init__(self, wifi, clock, settings=None):
        self.board = Board(wifi, clock)
        self.settings = settings or FakeSettings()
        self.events = Events()
        self.sched = Scheduler()
        self.link = Link()
        self.client = Client()
        self.dtu_override = None
        self.state = None
        self.tz_off = 0
        self.safe_mode = {"active": False, "reason": ""}

    def tz_offset(self, now):
        return self.tz_off
