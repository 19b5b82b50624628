"""Heartbeats: each busy part of the app promises to show progress again
within some seconds; the watchdog (gateway/selfheal.py) feeds the hardware
watchdog only while no promise is broken.

    from gateway import health
    health.beat("link", 45)      # the DTU link: "I'll be back within 45 s"
    health.stale()               # -> ["link"] once 45 s passed without a beat

Who beats: the DTU link's loop (dtu_link.py, every pass, with the time to its
next round plus LINK_SLACK) and the web server (selfheal.py: every answered
request, and its own check that the server still listens). Times are integer
milliseconds from time.ticks_ms(): no floats (single precision on the
boards), no wall clock (it jumps when NTP sets it).
"""
from gateway.mono import ticks_diff, ticks_ms

from micropython import const

# s added to the link's own wait: one round (bounded by the client's timeouts)
# or a visit to the DTU's access point fits in it
LINK_SLACK = const(300)


class Health:
    def __init__(self, clock=ticks_ms):
        self.clock = clock
        self._due = {}   # name -> (ticks_ms of the beat, ms promised)

    def beat(self, name, within):
        self._due[name] = (self.clock(), int(within * 1000))

    def forget(self, name):
        self._due.pop(name, None)

    def stale(self):
        """Names whose promise is broken (oldest first is not guaranteed)."""
        now = self.clock()
        return [n for n, (t, ms) in self._due.items() if ticks_diff(now, t) > ms]

    def names(self):
        return list(self._due)


_default = Health()


def beat(name, within):
    _default.beat(name, within)


def stale():
    return _default.stale()


def default():
    return _default
