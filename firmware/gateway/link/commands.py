"""What a user may ask of the DTU, from any door (the HTTP API, MQTT, openHAB).

A Command is checked when it is made (ValueError if it cannot be carried
out) and reaches the DTU only through Gateway.command(): queued with the
scheduler, which spaces and coalesces the writes (link/scheduler.py: the
31-second rule), logged as an event, the link woken to plan at once.
One class with a kind, not a class per command: each class costs the
board's heap ~200 B for as long as the gateway runs.
"""
from micropython import const

SET_LIMIT = const(0)          # limit the inverter to `limit` % (0 switches it off, 1 becomes 2)
REBOOT_DTU = const(1)         # restart the DTU itself (the WiFi stick, not the inverter)
RESTART_INVERTER = const(2)   # restart the inverter (the DTU stays up)
_TEXT = ("power limit %d %% requested", "DTU reboot requested", "inverter restart requested")


def percent(v):
    """The one 0..100 check for a power limit: a whole number (an int, not a
    bool) from 0 to 100, returned as is; else ValueError."""
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 100:
        raise ValueError("limit must be a whole number 0..100")
    return v


class Command:
    def __init__(self, kind, limit=None):
        if kind == SET_LIMIT:
            limit = percent(limit)
        elif kind != REBOOT_DTU and kind != RESTART_INVERTER:
            raise ValueError("unknown command")
        self.kind = kind
        self.limit = limit
        # a slider sends many limits: those wait for the event ring's next flush
        self.persist = kind != SET_LIMIT

    def queue(self, sched, now):
        """Hand it to the scheduler; returns what was queued (a limit: the percent the DTU will get)."""
        if self.kind == SET_LIMIT:
            return sched.request_limit(self.limit, now)
        if self.kind == REBOOT_DTU:
            sched.request_reboot()
        else:
            sched.request_restart()

    def text(self, queued):
        return _TEXT[self.kind] % queued if self.kind == SET_LIMIT else _TEXT[self.kind]
