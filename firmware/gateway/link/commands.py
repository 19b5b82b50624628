"""What a user may ask of the DTU, from any door (the HTTP API, MQTT, openHAB).

A command is checked when it is made (ValueError if it cannot be carried
out) and reaches the DTU only through Gateway.command(): queued with the
scheduler, which spaces and coalesces the writes (link/scheduler.py: the
31-second rule), logged as an event, the link woken to plan at once.
"""


def percent(v):
    """The one 0..100 check for a power limit: a whole number (an int, not a
    bool) from 0 to 100, returned as is; else ValueError."""
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 100:
        raise ValueError("limit must be a whole number 0..100")
    return v


class SetLimit:
    """Limit the inverter to `limit` % of its rated power; 0 switches it
    off, 1 is raised to 2 (the inverter's minimum) by the scheduler."""
    persist = False           # a slider sends many: the event ring keeps them until its next flush

    def __init__(self, limit):
        self.limit = percent(limit)

    def queue(self, sched, now):
        return sched.request_limit(self.limit, now)

    def text(self, queued):
        return "power limit %d %% requested" % queued


class RebootDtu:
    """Restart the DTU itself (the WiFi stick, not the inverter)."""
    persist = True

    def queue(self, sched, now):
        sched.request_reboot()

    def text(self, queued):
        return "DTU reboot requested"


class RestartInverter:
    """Restart the inverter (the DTU stays up)."""
    persist = True

    def queue(self, sched, now):
        sched.request_restart()

    def text(self, queued):
        return "inverter restart requested"
