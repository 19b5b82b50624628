"""Today's AC power for the dashboard's chart: one value per 5 minutes.

A ring of 288 signed 16-bit watts (array('h'): 576 bytes), reset at local
midnight (gateway.tz with the timezone setting). Each answered DTU round adds
its grid power to the running average of its 5-minute slot; slots without
an answered round stay empty. GET /api/history:

    {"start": <unix time of local midnight>, "step": 300,
     "power": [watts or null, ...]}          one entry per slot up to now

Slot i covers local time i*5 min .. i*5 min + 5 min. On the two days a year
when daylight saving time switches, `start` is midnight computed with the
current offset (an hour off for the slots before the switch): the chart is
labelled in local time of day, which is what slot i means.

The body is streamed in small pieces (no 2 KB string on the board's heap).
"""
from array import array

from micropython import const

NO_DATA = const(-32768)
STEP = const(300)
SLOTS = const(288)
_DAY = const(86400)


class History:
    def __init__(self, gw=None):
        self.gw = gw
        self.ring = array("h", bytes(2 * SLOTS))
        self.day = None            # unix time of the local midnight the ring is for
        self._slot = -1
        self._sum = 0.0
        self._n = 0
        self._last_ok = None
        self._clear()

    def _clear(self):
        r = self.ring
        for i in range(SLOTS):
            r[i] = NO_DATA
        self._slot, self._sum, self._n = -1, 0.0, 0

    @staticmethod
    def day_start(now, off):
        now = int(now)
        return now - (now + off) % _DAY

    @staticmethod
    def slot(now, off):
        return (int(now) + off) % _DAY // STEP

    def add(self, now, watts, off):
        """One answered round at `now` (Unix s) with `watts`; off = UTC offset (s)."""
        day = self.day_start(now, off)
        if day != self.day:
            self._clear()
            self.day = day
        i = self.slot(now, off)
        if i != self._slot:
            self._slot, self._sum, self._n = i, 0.0, 0
        self._sum += watts
        self._n += 1
        v = int(round(self._sum / self._n))
        self.ring[i] = max(-32767, min(32767, v))

    def chunks(self, now, off):
        """The JSON body of GET /api/history, in pieces of ~32 values."""
        day = self.day_start(now, off)
        n = self.slot(now, off) + 1
        today = day == self.day
        yield '{"start": %d, "step": %d, "power": [' % (day, STEP)
        ring = self.ring
        buf = []
        sep = ""
        for i in range(n):
            v = ring[i] if today else NO_DATA
            buf.append("null" if v == NO_DATA else str(v))
            if len(buf) == 32:
                yield sep + ",".join(buf)
                sep = ","
                del buf[:]
        yield (sep + ",".join(buf) if buf else "") + "]}"

    # ---- the gateway's hooks ----------------------------------------------------------

    def after_round(self):
        st = self.gw.state
        if st.readings is None or not st.last_ok or st.last_ok == self._last_ok:
            return              # no answer this round: the slot keeps what it has
        self._last_ok = st.last_ok
        self.add(st.last_ok, st.readings["grid"]["p"], self.gw.tz_offset(st.last_ok))

    def routes(self, app):
        from microdot import Response
        gw = self.gw

        @app.get("/api/history")
        async def history(req):
            now = gw.board.time()
            return Response(self.chunks(now, gw.tz_offset(now)), 200,
                            {"Content-Type": "application/json", "Cache-Control": "no-store"})


def attach(gw):
    return History(gw)
