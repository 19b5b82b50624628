"""GET /metrics: the live values and the gateway's health in the Prometheus
text format (version 0.0.4), for Grafana and friends.

Measurements come from the last answered round and are left out until there
is one; dtu_data_uptodate and dtu_data_age_seconds say how fresh they are.
Energy: *_energy_kwh_total are the inverter's lifetime counters (counter),
*_energy_today_kwh restart at local midnight (gauge). Features may add
samples with a metrics() method returning (name, value, help) tuples.
The body is streamed family by family, never held whole in RAM. This module
loads on the first scrape (gateway/lazy.py).
"""
from microdot import Response

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _num(v):
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    return repr(round(v, 3))


def _family(name, kind, help_, samples):
    """One metric family: samples = [(labels text, value)]."""
    out = "# HELP %s %s\n# TYPE %s %s\n" % (name, help_, name, kind)
    for labels, v in samples:
        out += "%s%s %s\n" % (name, labels, _num(v))
    return out


def _esc(s):
    return str(s).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def lines(gw):
    """The exposition, family by family (a generator of str)."""
    from gateway import VERSION
    st, sc, b = gw.state, gw.sched, gw.board
    now = b.time()
    G = "gauge"
    C = "counter"
    r = st.readings
    if r is not None:
        g = r["grid"]
        pv = r["pv"]
        ports = [('{port="%d"}' % i, pv[i]) for i in range(len(pv))]
        for name, key, help_ in (("dtu_grid_voltage_volts", "v", "AC voltage"),
                                 ("dtu_grid_current_amperes", "c", "AC current"),
                                 ("dtu_grid_power_watts", "p", "AC power"),
                                 ("dtu_grid_frequency_hertz", "f", "AC frequency")):
            yield _family(name, G, help_, [("", g[key])])
        yield _family("dtu_grid_energy_today_kwh", G, "energy fed in today (sum of the PV ports)",
                      [("", g["dE"])])
        yield _family("dtu_grid_energy_kwh_total", C, "energy fed in, lifetime (sum of the PV ports)",
                      [("", g["tE"])])
        for name, key, kind, help_ in (("dtu_pv_voltage_volts", "v", G, "DC voltage per PV port"),
                                       ("dtu_pv_current_amperes", "c", G, "DC current per PV port"),
                                       ("dtu_pv_power_watts", "p", G, "DC power per PV port"),
                                       ("dtu_pv_energy_today_kwh", "dE", G, "energy today per PV port"),
                                       ("dtu_pv_energy_kwh_total", "tE", C, "lifetime energy per PV port")):
            yield _family(name, kind, help_, [(lab, p[key]) for lab, p in ports])
        yield _family("dtu_inverter_temperature_celsius", G, "inverter temperature",
                      [("", r["inverter"]["temp"])])
        yield _family("dtu_last_response_timestamp_seconds", G, "the DTU's clock in its last answer",
                      [("", st.dtu_time)])
    lim = sc.dtu_limit if sc.dtu_limit is not None else (r["inverter"]["limit"] if r else 0)
    want = sc.want_limit if sc.want_power is not False else 0   # as /api/data's pLimSet
    yield _family("dtu_inverter_power_limit_percent", G, "power limit the inverter reports", [("", lim)])
    yield _family("dtu_inverter_power_limit_set_percent", G, "power limit asked for",
                  [("", want if want is not None else lim)])
    yield _family("dtu_inverter_on", G, "1 while the inverter is switched on", [("", sc.inverter_on)])
    yield _family("dtu_inverter_warnings_active", G, "the inverter's active warnings, by code",
                  [('{code="%d"}' % code, n) for code, n in
                   sorted(gw.alarms.by_code().items() if gw.alarms is not None else ())])
    yield _family("dtu_writes_pending", G, "1 while a write waits to be sent or confirmed",
                  [("", sc.writes_pending)])
    yield _family("dtu_data_uptodate", G, "1 while the data is fresh", [("", st.fresh(now))])
    yield _family("dtu_data_age_seconds", G, "seconds since the last answered round (-1: none yet)",
                  [("", int(now - st.last_ok) if st.last_ok else -1)])
    yield _family("dtu_connection_state", G, "0 offline, 1 connected, 2 cloud pause, 3 reconnecting, "
                  "4 DTU reboot, 5 connect error, 6 stopped, 7 inverter reboot, 8 night", [("", sc.conn)])
    yield _family("dtu_error_state", G, "0 ok, 1 no time, 2 time diff, 3 data frozen, 4 no answer for long",
                  [("", sc.error)])
    yield _family("dtu_signal_strength", G, "the DTU's WiFi signal as it reports it", [("", st.dtu_rssi)])
    yield _family("dtu_polls_total", C, "rounds answered by the DTU", [("", st.polls)])
    yield _family("dtu_poll_errors_total", C, "rounds that failed (timeouts included)", [("", st.poll_errors)])
    yield _family("dtu_timeouts_total", C, "rounds the DTU did not answer in time", [("", st.timeouts)])
    yield _family("dtu_recoveries_total", C, "DTU reboots ordered by the health rules", [("", sc.recoveries)])
    yield _family("dtu_consecutive_failures", G, "failed rounds in a row", [("", sc.failures)])
    yield _family("dtu_info", G, "the DTU", [('{serial="%s",version="%s"}' % (
        _esc(st.dtu_serial), _esc(st.dtu_version)), 1)])
    yield _family("dtu_gateway_info", G, "the gateway", [('{version="%s",chip_id="%s"}' % (
        _esc(VERSION), _esc(b.chip_id())), 1)])
    yield _family("dtu_gateway_uptime_seconds", G, "seconds since the gateway started",
                  [("", int(now - st.start_time))])
    heap = gw.heap()
    if heap["free"] is not None:
        yield _family("dtu_gateway_heap_free_bytes", G, "free heap after a collection", [("", heap["free"])])
        yield _family("dtu_gateway_heap_used_bytes", G, "heap in use after a collection", [("", heap["used"])])
    for f in gw.features:
        m = getattr(f, "metrics", None)
        if m is None:
            continue
        try:
            items = m()
        except Exception:  # one feature's numbers must not break the scrape
            continue
        for name, v, help_ in items:
            yield _family(name, C if name.endswith("_total") else G, help_, [("", v)])


async def handle(gw, req):
    """GET /metrics (registered by gateway/lazy.py, which loads this module
    for each request and forgets it after)."""
    return Response(lines(gw), 200, {"Content-Type": CONTENT_TYPE})
