"""The live values as plain text, one per name, for the push integrations
(MQTT topics <topic>/<name>, openHAB items <prefix><name with / as _>).

Each value is a number or a word, never JSON: any client can use it as is.
Numbers are rounded as in /api/data (2 decimals, energy 3) without trailing
zeros; limit and state values mirror /api/data's pLim, pLimSet, uptodate,
active, dtuConnState and dtuErrorState (as words).
"""
from gateway.link.commands import percent
from gateway.link.scheduler import CONN_WORDS, ERROR_WORDS, word

_PORT_KEYS = ("v", "c", "p", "dE", "tE")


def num(x, energy=False):
    """'230.1', '0', '12.345': rounded like /api/data, no trailing zeros."""
    s = ("%.3f" if energy else "%.2f") % x
    s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def readings(state):
    """[(name, text)] measured in the last answered round ([] before the first)."""
    r = state.readings
    if r is None:
        return []
    g = r["grid"]
    out = [("grid/v", num(g["v"])), ("grid/c", num(g["c"])), ("grid/p", num(g["p"])),
           ("grid/f", num(g["f"])), ("grid/dE", num(g["dE"], True)), ("grid/tE", num(g["tE"], True))]
    pv = r["pv"]
    for i in (0, 1):
        p = pv[i] if i < len(pv) else None
        for k in _PORT_KEYS:
            out.append(("pv%d/%s" % (i, k), num(p[k] if p else 0.0, k[1:] == "E")))
    out.append(("inverter/temp", num(r["inverter"]["temp"])))
    out.append(("dtu/rssi", str(state.dtu_rssi)))
    return out


def status(state, sched, now):
    """[(name, text)] the scheduler changes between polls (computed as in
    LiveState.render, so they equal /api/data's pLim, pLimSet, ...)."""
    r = state.readings
    lim = sched.dtu_limit if sched.dtu_limit is not None else (r["inverter"]["limit"] if r else 0.0)
    want = sched.want_limit if sched.want_power is not False else 0   # 0: switched off
    return [
        ("inverter/limit", str(int(round(lim)))),
        ("inverter/limit_set", str(int(want if want is not None else round(lim)))),
        ("inverter/uptodate", "1" if state.fresh(now) else "0"),
        ("inverter/active", "1" if sched.inverter_on else "0"),
        ("inverter/warnings", str(state.warnings())),
        ("dtu/connection", word(CONN_WORDS, sched.conn)),
        ("dtu/error", word(ERROR_WORDS, sched.error)),
    ]


def parse_limit(text):
    """0..100 from '55', ' 55.0 ', '55 %' (an openHAB QuantityType); else ValueError."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode()
    t = text.strip()
    if t.endswith("%"):
        t = t[:-1].strip()
    v = float(t)  # ValueError for words such as NULL or UNDEF
    try:
        n = int(v)    # ValueError for nan
    except OverflowError:
        n = None      # inf
    if n != v:
        raise ValueError("limit must be a whole number 0..100")
    return percent(n)
