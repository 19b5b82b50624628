"""The energy counters as the gateway publishes them (/api/data, MQTT,
openHAB, /metrics): a lifetime total never goes down and is never 0 once it
was above 0; today's energy resets at local midnight (the configured time
zone), and only then.

Why: the DTU is powered by the panels. At dusk it answers for a while with
every value 0, the lifetime counters included, then drops off the network
until morning; Home Assistant's energy dashboard counts a total_increasing
sensor that falls to 0 and climbs back as a second harvest. A DTU that comes
back with a smaller total is logged and the larger one kept.

The kept figures survive a reboot in energy.json, written when they stop
growing (the first zero-power answer after production: dusk), every
SAVE_EVERY s while they grow, and when the gateway stops: a few writes a day
(flash wear).
"""
import json

from micropython import const

from gateway import fsutil

SAVE_EVERY = const(21600)      # s between writes while the totals grow (6 h)


class Energy:
    def __init__(self, path, fs=None):
        self.path = path
        self.fs = fs or fsutil.OsFs()
        self.total = [0.0, 0.0, 0.0]   # kWh: grid, pv0, pv1, the largest each has reported
        self.today = [0.0, 0.0, 0.0]   # kWh today, for local day self.day
        self.day = -1                  # local day number (Unix days) of self.today
        self._saved_at = None          # gateway time of the last write (None: not since start)
        self._dirty = False
        # whether the last answer had power (None: none since the first start);
        # kept in the file: a gateway restarted at night knows the DTU went to sleep
        self.producing = None

    def load(self):
        """The figures kept before the last stop; a missing or broken file is no error."""
        try:
            d = fsutil.read_json(self.fs, self.path, 512, {})
            total, today, day = d["total"], d["today"], d["day"]
            if len(total) == 3 and len(today) == 3 and isinstance(day, int):
                self.total = [float(x) for x in total]
                self.today = [float(x) for x in today]
                self.day = day
                p = d.get("producing")
                self.producing = p if isinstance(p, bool) else None
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def save(self, now):
        # a new file renamed over the old: a power cut leaves one or the other
        fsutil.write(self.fs, self.path + ".tmp", json.dumps({"total": self.total, "today": self.today,
                                                              "day": self.day, "producing": self.producing}))
        fsutil.replace(self.fs, self.path + ".tmp", self.path)
        self._saved_at = now
        self._dirty = False

    def new_day(self, r, day):
        """Local midnight passed (or not): today's figures start again at 0,
        also in the readings still shown (r, or None before the first)."""
        if day == self.day:
            return
        self.day = day
        self.today = [0.0, 0.0, 0.0]
        self._dirty = True
        if r is not None:
            for p in _parts(r):
                p["dE"] = 0.0

    def take(self, r, day, now):
        """A fresh answer (dtu.readings.real_data(), corrected in place).
        Returns a warning when the DTU reported a smaller non-zero total."""
        self.new_day(None, day)
        warn = None
        for i, p in enumerate(_parts(r)):
            t = p["tE"]
            if t > self.total[i]:
                self.total[i] = t
                self._dirty = True
            elif t < self.total[i]:
                if t > 0 and warn is None:
                    warn = "the DTU reported %.3f kWh in all, less than the %.3f kWh it had: kept" % (
                        t, self.total[i])
                p["tE"] = self.total[i]
            d = p["dE"]
            if d > self.today[i]:
                self.today[i] = d
                self._dirty = True
            elif d < self.today[i]:
                p["dE"] = self.today[i]       # the dusk's zeros: today's harvest stays until midnight
        producing = r["grid"]["p"] > 0
        dusk = self.producing and not producing
        if producing is not self.producing:
            self._dirty = True
        self.producing = producing
        if self._dirty and (dusk or self._saved_at is None or now - self._saved_at >= SAVE_EVERY):
            try:
                self.save(now)
            except OSError:                   # a full or failing flash: the next trigger tries again
                pass
        return warn

    def placeholder(self):
        """Before the first answer: (grid, pv0, pv1) of zeros with the kept
        figures, so that /api/data never says 0 for a total that was above it."""
        return [{"v": 0.0, "c": 0.0, "p": 0.0, "f": 0.0, "dE": self.today[i], "tE": self.total[i]}
                for i in range(3)]


def _parts(r):
    pv = r["pv"]
    return [r["grid"]] + [pv[i] for i in range(min(2, len(pv)))]
