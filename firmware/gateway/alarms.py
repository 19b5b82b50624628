"""The inverter's warnings as the gateway shows them: GET /api/alarms, the
active count in /api/data, the dashboard's list, MQTT, /metrics and the
events ring.

The DTU keeps a list of the inverter's warnings, active and recently ended;
the scheduler decides when it is read (gateway.link.scheduler), the link
reads it (DtuClient.get_warnings()), dtu.warnings says what an entry means.
This module keeps the last list read and tells which warnings started and
which ended since the one before. The texts (dtu.warn_texts) are imported
only while a list is rendered.
"""
from dtu.warnings import entries


def _key(e):
    return e[0], e[3]               # code and start: the same warning in two lists


def _find(items, key):
    for e in items:
        if _key(e) == key:
            return e
    return None


class Alarms:
    def __init__(self):
        self.items = []             # dtu.warnings.entries() of the last list read
        self.read_at = None         # gateway time of that read
        self.version = 0            # counts the reads (MQTT publishes the list after each)

    def active(self):
        return [e for e in self.items if e[1]]

    def take(self, warns, now):
        """A fresh list (WarnMO dicts). Returns (started, ended): the entries
        that are active now and were not, and those that were and are not."""
        new = entries(warns)
        was = [_key(e) for e in self.active()]
        now_active = [_key(e) for e in new if e[1]]
        started = [e for e in new if e[1] and _key(e) not in was]
        # an ended one as the new list has it (with its end), or as it was (gone)
        ended = [_find(new, _key(e)) or e for e in self.active() if _key(e) not in now_active]
        self.version += 1
        self.items = new
        self.read_at = now
        return started, ended

    def by_code(self):
        """{code: active count} (for /metrics)."""
        out = {}
        for e in self.active():
            out[e[0]] = out.get(e[0], 0) + 1
        return out

    def body(self, offset_at):
        """The /api/alarms object; offset_at(unix) gives the time zone's offset."""
        return {"active": [describe(e, offset_at) for e in self.items if e[1]],
                "ended": [describe(e, offset_at) for e in self.items if not e[1]],
                "read": iso(self.read_at, offset_at)}


def describe(e, offset_at):
    from dtu.warn_texts import text
    code, _, count, start, end, d1, d2, raw = e
    return {"code": code, "text": text(code), "count": count, "start": iso(start, offset_at),
            "end": iso(end, offset_at), "data": [d1, d2], "raw": raw}


def iso(t, offset_at):
    """ISO 8601 with the zone's offset ("2026-06-17T14:03:00+02:00"); None for 0/None."""
    if not t:
        return None
    from gateway.tz import local_fields
    off = offset_at(t)
    y, mo, d, h, mi, s, _ = local_fields(t, off)
    sign = "-" if off < 0 else "+"
    off = abs(off) // 60
    return "%04d-%02d-%02dT%02d:%02d:%02d%s%02d:%02d" % (y, mo, d, h, mi, s, sign, off // 60, off % 60)


def text_of(e):
    from dtu.warn_texts import text
    return "warning %d %s" % (e[0], text(e[0]))
