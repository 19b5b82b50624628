"""Live state: the latest readings and the cached /api/data body.

/api/data is what every smart-home system polls, often many times a minute,
so it is rendered once per DTU round (and when the data turns stale) and served
as the same bytes until the next render.
"""
import json


def _port(p):
    if p is None:
        return {"v": 0.0, "c": 0.0, "p": 0.0, "dE": 0.0, "tE": 0.0}
    return {"v": round(p["v"], 2), "c": round(p["c"], 2), "p": round(p["p"], 2),
            "dE": round(p["dE"], 3), "tE": round(p["tE"], 3)}


class LiveState:
    def __init__(self, start_time):
        self.start_time = int(start_time)
        self.readings = None       # dtu.readings.real_data() of the last answered round
        self.last_ok = 0           # gateway time of the last answered round
        self.dtu_time = 0          # the DTU's timestamp in that answer
        self.dtu_rssi = 0
        self.dtu_serial = ""
        self.dtu_version = ""
        self.encrypted = False
        self.inverter_serial = 0
        self.polls = 0
        self.poll_errors = 0
        self.timeouts = 0          # DTU timeouts (counted in poll_errors too), for /metrics
        self.data = b"{}"          # the /api/data body of the last render
        self._rest = b"}"
        self.energy = None         # gateway.energy.Energy: the kept totals before the first answer
        self.alarms = None         # gateway.alarms.Alarms: the active warnings' count
        self.stale_after = 67      # s; set from the interval by the app

    def fresh(self, now):
        return self.readings is not None and now - self.last_ok <= self.stale_after

    def signature(self):
        """What must change between polls while the inverter produces."""
        r = self.readings
        g = r["grid"]
        return (self.dtu_time, g["p"], g["v"], g["c"], g["dE"]) + tuple(p["p"] for p in r["pv"])

    def daylight(self):
        r = self.readings
        if r is None or not r["inverter"]["link"]:
            return False
        for p in r["pv"]:
            if p["v"] > 0:
                return True
        return False

    def warnings(self):
        """The inverter's active warnings (as last read)."""
        return len(self.alarms.active()) if self.alarms is not None else 0

    def dark(self):
        """The last answer had no power and no sun on the panels: the dusk
        (an inverter switched off at noon still sees its panels' voltage)."""
        r = self.readings
        return r is not None and r["grid"]["p"] == 0 and not self.daylight()

    def render(self, now, local_offset, sched):
        r = self.readings
        pv = r["pv"] if r else ()
        inv = r["inverter"] if r else {"temp": 0.0, "limit": 0.0}
        grid = r["grid"] if r else None
        if r is None and self.energy is not None:
            grid, p0, p1 = self.energy.placeholder()      # the kept totals, never 0 after a reboot
            pv = (p0, p1)
        want = sched.want_limit if sched.want_power is not False else 0
        lim = sched.dtu_limit if sched.dtu_limit is not None else inv["limit"]
        body = {
            "lastResponse": int(self.dtu_time),
            "dtuConnState": sched.conn,
            "dtuErrorState": sched.error,
            "starttime": self.start_time,
            "inverter": {
                "pLim": int(round(lim)),
                "pLimSet": int(want if want is not None else round(lim)),
                "temp": round(inv["temp"], 2),
                "uptodate": 1 if self.fresh(now) else 0,
                "active": 1 if sched.inverter_on else 0,
                "pending": 1 if sched.writes_pending else 0,
                "warnings": self.warnings(),
            },
            "grid": _port(grid),
            "pv0": _port(pv[0] if len(pv) > 0 else None),
            "pv1": _port(pv[1] if len(pv) > 1 else None),
            "dtu": {"rssi": self.dtu_rssi, "serial": self.dtu_serial,
                    "version": self.dtu_version, "encrypted": 1 if self.encrypted else 0},
        }
        body["grid"]["f"] = round(grid["f"], 2) if grid else 0.0
        self._rest = json.dumps(body).encode()[1:]   # without its "{"
        self.data = self.current(now, local_offset)
        return self.data

    def current(self, now, local_offset):
        """The /api/data body as of now: the clock fields are fresh, the rest is
        the bytes rendered after the last round (cheap enough per request)."""
        now = int(now)
        head = '{"localtime": %d, "ntpStamp": %d, "age": %d, ' % (
            now + int(local_offset), now, now - int(self.last_ok) if self.last_ok else -1)
        return head.encode() + self._rest
