"""The power side of the simulated HMS-800W-2T: sun, panels, limit, energy.

Pure and deterministic: every reading is a function of the DTU time handed in
and of the commands applied so far; the noise is keyed by (seed, data period),
so the same instant always reads the same whatever was asked before.

- Daylight: sin(pi * x) ** 1.5 between `sunrise` and `sunset` (local hours).
- Two ports of `peak_w`, the second a little weaker, +-4 % noise per data
  period (the DTU refreshes its data about twice a minute).
- AC = min(DC * efficiency, limit % of rated_w, temporary limit); when the
  limit caps, the panels are throttled, so DC energy follows AC.
- Energy integrates DC power; daily energy resets at local midnight.
- At night the inverter sleeps: zeros and link_status 0 (and, as reported for
  DTUs, energy fields 0 too unless night_zero_energy=False).
"""
import math

PORT_FACTORS = (1.0, 0.93)          # the second panel faces slightly worse
_M64 = 0xFFFFFFFFFFFFFFFF


def _mix(h):
    # splitmix64 finaliser: cheap, stateless, good enough for sensor noise.
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _M64
    return h ^ (h >> 31)


def noise(seed, *keys):
    """A deterministic value in [-1, 1) for (seed, keys)."""
    h = _mix(seed & _M64)
    for k in keys:
        h = _mix(h ^ (k & _M64))
    return h / 2.0 ** 63 - 1.0


class Inverter:
    def __init__(self, start, seed=1, serial=0x116491234567, tz_offset=0,
                 sunrise=6.0, sunset=20.0, peak_w=400.0, rated_w=800.0, efficiency=0.96,
                 ambient_min=-6.0, ambient_max=10.0, data_period=30.0, limit=100,
                 energy_total=(1234567, 1198765), night_zero_energy=True, restart_seconds=30.0):
        self.seed = seed
        self.serial = serial
        self.tz_offset = tz_offset
        self.sunrise, self.sunset = sunrise, sunset
        self.peak_w, self.rated_w, self.efficiency = peak_w, rated_w, efficiency
        self.ambient_min, self.ambient_max = ambient_min, ambient_max
        self.data_period = data_period
        self.night_zero_energy = night_zero_energy
        self.restart_seconds = restart_seconds
        self.limit = limit              # percent the inverter runs with (persistent)
        self.temp_limit_w = None        # action 211: watts, lost at every DTU reboot
        self.on = True
        self.restart_until = 0.0
        self.energy_total = [float(e) for e in energy_total]
        self.energy_daily = [0.0, 0.0]
        self._pending = []              # (when, order, kind, value)
        self._order = 0
        self._t = start                 # energy integrated up to here

    # ---- commands -----------------------------------------------------------

    def schedule(self, when, kind, value=None):
        """Apply a command at DTU time `when`: "limit" (percent), "temp_limit"
        (watts or None), "start", "stop", "restart"."""
        self._order += 1
        self._pending.append((when, self._order, kind, value))
        self._pending.sort()

    def _apply(self, when, kind, value):
        if kind == "limit":
            self.limit = value
        elif kind == "temp_limit":
            self.temp_limit_w = value
        elif kind == "start":
            self.on = True
        elif kind == "stop":
            self.on = False
        elif kind == "restart":
            self.restart_until = when + self.restart_seconds
            self.temp_limit_w = None

    # ---- physics ----------------------------------------------------------------

    def _hour(self, t):
        return ((t + self.tz_offset) % 86400) / 3600.0

    def solar(self, t):
        """0..1: the share of peak irradiance at DTU time t."""
        h = self._hour(t)
        if not self.sunrise < h < self.sunset:
            return 0.0
        return math.sin(math.pi * (h - self.sunrise) / (self.sunset - self.sunrise)) ** 1.5

    def ambient(self, t):
        """degC: coldest at 03:00, warmest at 15:00 local time."""
        mid = (self.ambient_max + self.ambient_min) / 2
        amp = (self.ambient_max - self.ambient_min) / 2
        return mid + amp * math.sin(2 * math.pi * (self._hour(t) - 9.0) / 24.0)

    def power(self, t):
        """(AC watts, [DC watts per port], solar share) at DTU time t with the
        commands applied so far; constant within one data period."""
        k = math.floor(t / self.data_period)
        # the data period's sample, but nothing once the sun has set (or before
        # it rises): the dusk's zeros start at sunset, not at the next period
        sol = self.solar(k * self.data_period) if self.solar(t) > 0.0 else 0.0
        if sol <= 0.0 or not self.on or t < self.restart_until:
            return 0.0, [0.0, 0.0], sol
        avail = [max(0.0, self.peak_w * sol * f * (1 + 0.04 * noise(self.seed, i, k)))
                 for i, f in enumerate(PORT_FACTORS)]
        cap = self.rated_w * self.limit / 100.0
        if self.temp_limit_w is not None:
            cap = min(cap, self.temp_limit_w)
        ac_avail = self.efficiency * sum(avail)
        ac = min(ac_avail, cap)
        scale = ac / ac_avail if ac_avail > 0 else 0.0
        return ac, [a * scale for a in avail], sol

    def advance(self, t1):
        """Integrate energy up to DTU time t1, applying due commands on the way.
        Power is piecewise constant, so splitting at data periods, local
        midnights and commands makes the sums exact."""
        t = self._t
        period = self.data_period
        while True:
            while self._pending and self._pending[0][0] <= t:
                when, _, kind, value = self._pending.pop(0)
                self._apply(when, kind, value)
            if t >= t1:
                break
            midnight = (math.floor((t + self.tz_offset) / 86400) + 1) * 86400 - self.tz_offset
            t2 = min(t1, (math.floor(t / period) + 1) * period, midnight,
                     self._pending[0][0] if self._pending else t1)
            _, dc, _ = self.power(t)
            for i, p in enumerate(dc):
                wh = p * (t2 - t) / 3600.0
                self.energy_daily[i] += wh
                self.energy_total[i] += wh
            t = t2
            if t == midnight:
                self.energy_daily = [0.0, 0.0]
        self._t = max(self._t, t1)

    def readings(self, now):
        """(sgs_data dict, [pv_data dicts], AC watts) at DTU time `now`, as the
        wire carries them: unscaled integers (see dtu/readings.py)."""
        ac, dc, sol = self.power(now)
        k = math.floor(now / self.data_period)
        sn = self.serial
        sgs = {"serial_number": sn, "firmware_version": 1}
        awake = sol > 0
        if awake:
            v = 230.0 + 2.0 * noise(self.seed, 10, k)
            temp = self.ambient(k * self.data_period) + 1.5 + 20.0 * ac / self.rated_w
            sgs.update(voltage=round(v * 10), frequency=round(5000 + 2 * noise(self.seed, 11, k)),
                       active_power=round(ac * 10), current=round(ac / v * 100),
                       power_factor=1000 if ac > 0 else 0,
                       reactive_power=round(3 * noise(self.seed, 12, k)) if ac > 0 else 0,
                       temperature=round(temp * 10), link_status=1,
                       power_limit=round(self.limit * 10), modulation_index_signal=16580771)
        pvs = []
        for i, p in enumerate(dc):
            pv = {"serial_number": sn, "port_number": i + 1}
            if awake:
                vmp = 29.0 + 9.0 * sol ** 0.3 + 0.3 * noise(self.seed, 20 + i, k)
                volt = vmp if p > 0 else vmp + 6.0     # open circuit when not feeding
                pv.update(voltage=round(volt * 10), current=round(p / volt * 100),
                          power=round(p * 10))
            if awake or not self.night_zero_energy:
                pv.update(energy_total=int(self.energy_total[i]),
                          energy_daily=int(self.energy_daily[i]))
            pvs.append(pv)
        return sgs, pvs, ac
