"""The inverter's warnings as the gateway shows them: GET /api/alarms, the
active count in /api/data, the dashboard's list, MQTT, /metrics and the
events ring.

The DTU keeps a list of the inverter's warnings, active and recently ended;
the scheduler decides when it is read (gateway.link.scheduler), the link
reads it (DtuClient.get_warnings()), dtu.warnings says what an entry means.
This module keeps the last list read and tells which warnings started and
which ended since the one before. It is imported only once a list with
entries comes (gateway.app: most DTUs have none most of the time, and the
module costs ~0.6 KB of heap on the board); the texts (dtu.warn_texts) only
while a list is rendered.
"""
from dtu.warnings import entries


class Alarms:
    def __init__(self):
        self.items = []             # dtu.warnings.entries() of the last list read

    def active(self):
        return [e for e in self.items if e[1]]

    def take(self, warns):
        """A fresh list (WarnMO dicts). Returns (started, ended): the entries
        that are active now and were not, and those that were and are not."""
        new = entries(warns)
        old = self.active()
        # the same warning in two lists: the same code and start
        was = [(e[0], e[3]) for e in old]
        now_active = [(e[0], e[3]) for e in new if e[1]]
        started = [e for e in new if e[1] and (e[0], e[3]) not in was]
        ended = []
        for e in old:
            if (e[0], e[3]) not in now_active:
                for n in new:       # as the new list has it (with its end), or as it was (gone)
                    if (n[0], n[3]) == (e[0], e[3]):
                        e = n
                ended.append(e)
        self.items = new
        return started, ended

    def by_code(self):
        """{code: active count} (for /metrics)."""
        out = {}
        for e in self.active():
            out[e[0]] = out.get(e[0], 0) + 1
        return out


def body(alarms, offset_at, read):
    """The /api/alarms object of `alarms` (None: no list with entries yet);
    offset_at(unix) gives the time zone's offset, `read` the time of the
    last read (None: none answered)."""
    items = alarms.items if alarms is not None else ()
    return {"active": [describe(e, offset_at) for e in items if e[1]],
            "ended": [describe(e, offset_at) for e in items if not e[1]],
            "read": iso(read, offset_at)}


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
