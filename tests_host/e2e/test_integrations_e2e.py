"""End to end: the push integrations of the real gateway (host mode, CPython
and the unix MicroPython) against the DTU simulator, a real Mosquitto, and a
local stand-in for openHAB's REST API.

  - MQTT: Home Assistant discovery complete and valid JSON; the value topics
    equal the simulator's wire values; availability; discovery off removes
    the entities; a broker restart; connections cut mid-packet; /metrics
    parsed with prometheus_client's own parser.
  - Commands: a burst on <topic>/set/power_limit reaches the simulator once,
    and the next write (a button) keeps the 31 s spacing; retained commands
    are ignored.
  - TLS with the test CA and a password.
  - openHAB: items follow /api/data; the limit item is read back; while the
    server hangs (and then is dead) the DTU rounds keep their spacing.

The scenarios run at once for both runtimes in background threads (the first
test starts all the selected ones; each test waits for its own), as in
test_gateway_e2e.py, whose process helpers this file uses. Loopback only.
"""
import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support.env import micropython_bin
from proc_util import free_port
from support.gateway_proc import DTU_CSQ, FAST, PROCS, expected_from_wire, http, snapshot, start_pair, tz_offset_for
from support.broker import Mosquitto, Proxy, Watcher, make_ca

BASE = "dtu-gateway/00c0ffee"          # the host board's chip id
NODE = "dtu_gateway_00c0ffee"
RUNTIMES = ["cpython", "micropython"]
MQTT_FAST = {"dtu.cloud_pause": False, "dtu.interval": FAST, "mqtt.enabled": True,
             "mqtt.host": "127.0.0.1"}

SENSOR_KEYS = {
    # object id: (value topic, unit, device_class, state_class)
    "grid_p": ("grid/p", "W", "power", "measurement"),
    "grid_v": ("grid/v", "V", "voltage", "measurement"),
    "grid_c": ("grid/c", "A", "current", "measurement"),
    "grid_f": ("grid/f", "Hz", "frequency", "measurement"),
    "grid_dE": ("grid/dE", "kWh", "energy", "total_increasing"),
    "grid_tE": ("grid/tE", "kWh", "energy", "total_increasing"),
    "inverter_temp": ("inverter/temp", "\u00b0C", "temperature", "measurement"),
    "inverter_limit": ("inverter/limit", "%", None, "measurement"),
    "dtu_rssi": ("dtu/rssi", "%", None, "measurement"),
    "inverter_warnings": ("inverter/warnings", None, None, "measurement"),
}
for _p in ("pv0", "pv1"):
    SENSOR_KEYS.update({
        _p + "_v": (_p + "/v", "V", "voltage", "measurement"),
        _p + "_c": (_p + "/c", "A", "current", "measurement"),
        _p + "_p": (_p + "/p", "W", "power", "measurement"),
        _p + "_dE": (_p + "/dE", "kWh", "energy", "total_increasing"),
        _p + "_tE": (_p + "/tE", "kWh", "energy", "total_increasing"),
    })
CONFIGS = ["homeassistant/sensor/%s/%s/config" % (NODE, o) for o in SENSOR_KEYS] + [
    "homeassistant/sensor/%s/dtu_connection/config" % NODE,
    "homeassistant/sensor/%s/dtu_error/config" % NODE,
    "homeassistant/binary_sensor/%s/inverter_uptodate/config" % NODE,
    "homeassistant/binary_sensor/%s/inverter_active/config" % NODE,
    "homeassistant/number/%s/power_limit/config" % NODE,
    "homeassistant/button/%s/dtu_reboot/config" % NODE,
    "homeassistant/button/%s/inverter_restart/config" % NODE,
]
VALUE_TOPICS = ["grid/v", "grid/c", "grid/p", "grid/f", "grid/dE", "grid/tE"] + [
    "%s/%s" % (p, k) for p in ("pv0", "pv1") for k in ("v", "c", "p", "dE", "tE")] + [
    "inverter/temp", "inverter/limit", "inverter/limit_set", "inverter/uptodate",
    "inverter/active", "inverter/warnings", "dtu/rssi", "dtu/connection", "dtu/error"]


# ---- helpers ---------------------------------------------------------------------------------

def retained(w, topic):
    """The payload of the last message on topic (None if none)."""
    m = w.last(topic)
    return None if m is None else m[1]


def wait_value(w, topic, pred, seconds=15, what=None):
    return w.wait(lambda m: m[0] == topic and pred(m[1]), seconds, what or topic)


def onlines(w):
    return w.count(lambda m: m[0] == BASE + "/availability" and m[1] == b"online")


def wait_onlines(w, n, seconds=20):
    w.until(lambda: onlines(w) >= n, seconds, "availability online #%d" % n)


def events(gw):
    return [e["msg"] for e in gw.get("/api/events")["events"]]


def check_discovery(w, url_port=None):
    """Every config present, valid JSON and complete; returns {topic: dict}."""
    out = {}
    ids = set()
    for topic in CONFIGS:
        raw = retained(w, topic)
        assert raw, "no discovery config on " + topic
        c = json.loads(raw)
        out[topic] = c
        dev = c["device"]
        assert dev["identifiers"] == [NODE] and dev["model"] and dev["name"]
        assert dev["sw_version"] == "0.1.0"
        assert re.match(r"http://127\.0\.0\.1(:\d+)?/$", dev["configuration_url"]), dev
        if url_port:
            assert dev["configuration_url"] == "http://127.0.0.1:%d/" % url_port, dev
        assert c["availability_topic"] == BASE + "/availability"
        assert (c["payload_available"], c["payload_not_available"]) == ("online", "offline")
        assert c["name"] and c["unique_id"] not in ids
        ids.add(c["unique_id"])
        obj = topic.split("/")[3]
        kind = topic.split("/")[1]
        if kind in ("sensor", "binary_sensor", "number"):
            assert c["state_topic"].startswith(BASE + "/"), c
            assert c["state_topic"][len(BASE) + 1:] in VALUE_TOPICS, c
        if obj in SENSOR_KEYS:
            val, unit, dc, sc = SENSOR_KEYS[obj]
            assert c["state_topic"] == BASE + "/" + val
            assert c.get("unit_of_measurement") == unit and c["state_class"] == sc, c
            assert c.get("device_class") == dc, c
        elif kind == "sensor":                       # the two enums
            assert c["device_class"] == "enum" and "state_class" not in c and c["options"], c
        elif kind == "binary_sensor":
            assert (c["payload_on"], c["payload_off"]) == ("1", "0")
        elif kind == "number":
            assert c["command_topic"] == BASE + "/set/power_limit"
            assert c["state_topic"] == BASE + "/inverter/limit_set"
            assert (c["min"], c["max"], c["step"], c["unit_of_measurement"]) == (0, 100, 1, "%")
        else:
            assert c["command_topic"] == BASE + "/set/" + obj and c["payload_press"] == "PRESS"
    return out


def values_match(w, rd, d):
    """[(topic, got, expected)] that differ from the simulator's wire values."""
    exp = expected_from_wire(rd)
    want = {"inverter/temp": exp["inverter"]["temp"], "inverter/limit": exp["inverter"]["pLim"],
            "dtu/rssi": DTU_CSQ, "inverter/limit_set": d["inverter"]["pLimSet"]}
    for k in ("v", "c", "p", "f", "dE", "tE"):
        want["grid/" + k] = exp["grid"][k]
    for p in ("pv0", "pv1"):
        for k in ("v", "c", "p", "dE", "tE"):
            want["%s/%s" % (p, k)] = exp[p][k]
    bad = []
    for topic, v in want.items():
        got = retained(w, BASE + "/" + topic)
        try:
            ok = got is not None and abs(float(got) - v) < 1e-9 + 1e-9 * abs(v)
        except ValueError:
            ok = False
        if not ok:
            bad.append((topic, got, v))
    for topic, v in (("dtu/connection", b"connected"), ("dtu/error", b"ok"),
                     ("inverter/uptodate", b"1"), ("inverter/active", b"1")):
        if retained(w, BASE + "/" + topic) != v:
            bad.append((topic, retained(w, BASE + "/" + topic), v))
    return bad


def assert_values_equal_simulator(w, sim, gw, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        d, rd = snapshot(sim, gw)
        bad = values_match(w, rd, d)
        if not bad:
            return d, rd
        assert time.monotonic() < deadline, "MQTT values differ from the simulator's: %s" % bad
        time.sleep(0.2)


def metrics(gw):
    from prometheus_client.parser import text_string_to_metric_families
    status, body = http(gw.port, "GET", "/metrics", raw=True)
    assert status == 200, body
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    samples = {}
    for f in fams.values():
        for s in f.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return fams, samples


def check_metrics(gw, runtime):
    for _ in range(50):            # a moment with no round in between
        d1 = gw.data()
        fams, s = metrics(gw)
        d2 = gw.data()
        if d1["lastResponse"] == d2["lastResponse"]:
            break
        time.sleep(0.1)
    d = d2
    one = lambda name, labels=(): s[(name, labels)]    # noqa: E731
    assert fams["dtu_grid_energy_kwh"].type == "counter"
    assert fams["dtu_polls"].type == "counter" and fams["dtu_timeouts"].type == "counter"
    assert one("dtu_grid_power_watts") == pytest.approx(d["grid"]["p"])
    assert one("dtu_grid_voltage_volts") == pytest.approx(d["grid"]["v"])
    assert one("dtu_grid_frequency_hertz") == pytest.approx(d["grid"]["f"])
    assert one("dtu_grid_energy_kwh_total") == pytest.approx(d["grid"]["tE"])
    assert one("dtu_grid_energy_today_kwh") == pytest.approx(d["grid"]["dE"])
    for i in (0, 1):
        lab = (("port", str(i)),)
        pv = d["pv%d" % i]
        assert one("dtu_pv_power_watts", lab) == pytest.approx(pv["p"])
        assert one("dtu_pv_energy_kwh_total", lab) == pytest.approx(pv["tE"])
    assert one("dtu_inverter_temperature_celsius") == pytest.approx(d["inverter"]["temp"])
    assert one("dtu_inverter_power_limit_percent") == d["inverter"]["pLim"]
    assert one("dtu_connection_state") == d["dtuConnState"] == 1
    assert one("dtu_data_uptodate") == 1 and one("dtu_polls_total") >= 1
    assert one("dtu_timeouts_total") == 0 and one("dtu_recoveries_total") == 0
    assert one("dtu_signal_strength") == DTU_CSQ
    assert one("dtu_gateway_uptime_seconds") >= 0
    assert one("dtu_gateway_info", (("chip_id", "00c0ffee"), ("version", "0.1.0"))) == 1
    assert one("dtu_gateway_mqtt_connected") == 1 and one("dtu_gateway_mqtt_dropped_total") == 0
    if runtime == "micropython":
        assert 10000 < one("dtu_gateway_heap_used_bytes") and one("dtu_gateway_heap_free_bytes") > 0
    else:
        assert ("dtu_gateway_heap_used_bytes", ()) not in s      # CPython cannot tell


# ---- running the scenarios in the background ---------------------------------------------------

_RUNS = {}


class _Run(threading.Thread):
    def __init__(self, fn, runtime, workdir):
        threading.Thread.__init__(self, daemon=True)
        self.fn, self.runtime, self.workdir = fn, runtime, workdir
        self.error = None

    def run(self):
        try:
            self.fn(self.runtime, self.workdir)
        except BaseException as e:   # handed to the test that waits for it
            self.error = e


def scenario(request, fn, runtime, timeout=200):
    """Start every selected scenario of this file for every runtime (once),
    then wait for (fn, runtime) and re-raise its failure."""
    if not _RUNS:
        root = tempfile.mkdtemp(prefix="integrations-")
        for item in request.session.items:
            cs = getattr(item, "callspec", None)
            f = getattr(item.module, "SCENARIOS", {}).get(item.originalname) if \
                item.module.__name__ == __name__ else None
            if f is None or cs is None or "runtime" not in cs.params:
                continue
            rt = cs.params["runtime"]
            if rt == "micropython" and not micropython_bin():
                continue
            if (f, rt) not in _RUNS:
                _RUNS[(f, rt)] = _Run(f, rt, tempfile.mkdtemp(dir=root))
        for r in _RUNS.values():
            r.start()
    r = _RUNS.get((fn, runtime))
    if r is None:                   # not found among the items (run directly): run it here
        r = _RUNS[(fn, runtime)] = _Run(fn, runtime, tempfile.mkdtemp())
        r.start()
    r.join(timeout)
    assert not r.is_alive(), "scenario still running after %d s" % timeout
    if r.error is not None:
        raise r.error


@pytest.fixture(scope="module", autouse=True)
def _no_leftovers():
    yield
    for r in list(_RUNS.values()):
        r.join(200)
    PROCS.stop_all(signal.SIGKILL)


class _Stack:
    """Everything a scenario started, stopped in reverse order."""

    def __init__(self):
        self.items = []

    def add(self, x, stop):
        self.items.append((x, stop))
        return x

    def close(self):
        for x, stop in reversed(self.items):
            try:
                stop(x)
            except Exception:  # keep stopping the rest
                pass


def _start(stack, runtime, workdir, settings, files=None, sim_opts=None):
    sim, gw = start_pair(runtime, workdir, sim_opts or {"min_gap": 0}, settings, files)
    stack.add(sim, lambda s: s.stop())
    stack.add(gw, lambda g: g.stop())
    return sim, gw


# ---- 1. MQTT: discovery, values, availability, /metrics, restart, cuts ----------------------

def _mqtt_scenario(runtime, workdir):
    st = _Stack()
    try:
        broker = st.add(Mosquitto(os.path.join(workdir, "broker")), lambda b: b.stop())
        proxy = st.add(Proxy(broker.port), lambda p: p.close())
        w = st.add(Watcher(broker.port), lambda w: w.close())
        sim, gw = _start(st, runtime, workdir, dict(MQTT_FAST, **{"mqtt.port": proxy.port}))
        wait_onlines(w, 1)
        w.until(lambda: all(retained(w, t) for t in CONFIGS), 15, "every discovery config")
        check_discovery(w, gw.port if runtime == "cpython" else None)
        d, rd = assert_values_equal_simulator(w, sim, gw)
        assert d["grid"]["p"] > 100 and d["pv0"]["v"] > 20          # midday: real values
        check_metrics(gw, runtime)

        # a late subscriber gets every value and the availability, retained
        late = Watcher(broker.port, (BASE + "/#",))
        try:
            late.until(lambda: all(late.last(BASE + "/" + t) for t in VALUE_TOPICS), 10, "all values")
            assert all(late.last(BASE + "/" + t)[2] for t in VALUE_TOPICS)
            assert late.last(BASE + "/availability")[1:3] == (b"online", True)
        finally:
            late.close()

        # Home Assistant restarted: it says online, we announce again
        n = w.count(lambda m: m[0] == CONFIGS[0])
        w.publish("homeassistant/status", b"online")
        w.until(lambda: w.count(lambda m: m[0] == CONFIGS[0]) > n, 10, "re-announce")

        # discovery off: empty retained configs remove the entities
        status, body = gw.post("/api/config", {"mqtt.ha_discovery": False})
        assert status == 200, body
        w.until(lambda: all(retained(w, t) == b"" for t in CONFIGS), 15, "empty configs")
        late = Watcher(broker.port, ("homeassistant/#",))
        try:
            time.sleep(0.5)
            assert [m for m in late.msgs if m[1]] == [], late.msgs[:3]
        finally:
            late.close()
        assert gw.post("/api/config", {"mqtt.ha_discovery": True})[0] == 200
        w.until(lambda: all(retained(w, t) for t in CONFIGS), 15, "configs back")

        # settings that would break topics or item names are refused
        for body, field in (({"mqtt.topic": "a/#"}, "mqtt.topic"), ({"mqtt.topic": "a/+/b"}, "mqtt.topic"),
                            ({"openhab.item_prefix": "a b"}, "openhab.item_prefix"),
                            ({"openhab.item_prefix": "x/y"}, "openhab.item_prefix"),
                            ({"mqtt.port": 0}, "mqtt.port"), ({"mqtt.host": "a b"}, "mqtt.host")):
            status, resp = gw.post("/api/config", body)
            assert status == 400 and resp["field"] == field, (body, status, resp)

        # broker restart: reconnect, re-subscribe, republish availability and discovery
        w.close()
        broker.restart()
        w = st.add(Watcher(broker.port), lambda w: w.close())
        w.wait(lambda m: m[0] == BASE + "/availability" and m[1] == b"online", 20, "online after restart")
        w.until(lambda: all(retained(w, t) for t in CONFIGS), 15, "discovery after restart")
        w.publish(BASE + "/set/power_limit", b"80")
        gw.wait_until("limit 80 via MQTT after the restart", lambda d: d["inverter"]["pLimSet"] == 80, 10)
        wait_value(w, BASE + "/inverter/limit_set", lambda v: v == b"80")
        assert any("connection lost" in m for m in events(gw)), events(gw)

        # cut mid-packet, both ways; a huge command and a bad one
        ons = onlines(w)
        proxy.cut("up", 40)                 # the next round's values
        wait_onlines(w, ons + 1)
        ons = onlines(w)
        proxy.cut("down", 30)
        w.publish(BASE + "/set/power_limit", b"9" * 3000)
        wait_onlines(w, ons + 1)
        assert proxy.cuts == 2
        w.publish(BASE + "/set/power_limit", b"7" * 3000)          # bigger than the buffer: skipped
        w.publish(BASE + "/set/power_limit", b"abc")
        w.publish(BASE + "/set/power_limit", b"101")
        w.publish(BASE + "/set/power_limit", b"65")
        gw.wait_until("limit 65", lambda d: d["inverter"]["pLimSet"] == 65, 10)
        msgs = events(gw)
        assert any("refused power_limit b'abc'" in m for m in msgs), msgs
        assert any("refused power_limit b'101'" in m for m in msgs), msgs
        assert onlines(w) == ons + 1                                # the big one cost no connection
        assert_values_equal_simulator(w, sim, gw)

        # switched off: offline, said by the gateway itself; its code is unloaded (no
        # MQTT metrics any more); switched on again: back
        assert gw.post("/api/config", {"mqtt.enabled": False})[0] == 200
        wait_value(w, BASE + "/availability", lambda v: v == b"offline", 10)
        gw.wait_until("MQTT unloaded", lambda d: ("dtu_gateway_mqtt_connected", ()) not in metrics(gw)[1], 10)
        assert gw.post("/api/config", {"mqtt.enabled": True})[0] == 200
        wait_onlines(w, ons + 2)
        gw.wait_until("MQTT loaded", lambda d: metrics(gw)[1].get(("dtu_gateway_mqtt_connected", ())) == 1, 10)
        gw.assert_alive()
        gw.assert_clean_log()
        assert broker.alive()
        c = sim.counters()["counters"]
        assert c["hangs_induced"] == 0
    finally:
        st.close()


def test_mqtt_discovery_values_metrics_restart_and_cuts(request, runtime):
    scenario(request, _mqtt_scenario, runtime)


# ---- 2. commands: once, coalesced, spaced; retained commands ignored -------------------------

def _command_scenario(runtime, workdir):
    st = _Stack()
    try:
        broker = st.add(Mosquitto(os.path.join(workdir, "broker")), lambda b: b.stop())
        w = st.add(Watcher(broker.port), lambda w: w.close())
        # stale retained commands waiting on the broker: never to be obeyed
        w.publish(BASE + "/set/power_limit", b"20", retain=True)
        w.publish(BASE + "/set/dtu_reboot", b"PRESS", retain=True)
        sim, gw = _start(st, runtime, workdir, dict(MQTT_FAST, **{"mqtt.port": broker.port}),
                         sim_opts={"min_gap": 0, "quiet": False})
        wait_onlines(w, 1)
        gw.wait_until("ignored commands logged", lambda d: sum(
            1 for m in events(gw) if "ignored a retained command" in m) == 2, 10)
        w.publish(BASE + "/set/power_limit", b"", retain=True)    # clear them
        w.publish(BASE + "/set/dtu_reboot", b"", retain=True)
        d = gw.data()
        assert d["inverter"]["pLimSet"] == 100 and d["inverter"]["pending"] == 0, d

        for v in (b"70", b"40", b"55"):
            w.publish(BASE + "/set/power_limit", v)
        wait_value(w, BASE + "/inverter/limit_set", lambda v: v == b"55", 5, "limit_set 55 at once")
        deadline = time.monotonic() + FAST + 31 + 10
        while sim.counters()["counters"]["limit_writes"] == 0:
            d = gw.data()
            assert d["inverter"]["pLimSet"] == 55 and d["inverter"]["pLim"] == 100, d
            assert time.monotonic() < deadline, "the limit never reached the DTU"
            time.sleep(0.2)
        c = sim.counters()
        assert (c["counters"]["limit_writes"], c["counters"]["writes_received"], c["limit"]) == (1, 1, 55)
        wait_value(w, BASE + "/inverter/limit", lambda v: v == b"55", 2 * FAST + 10, "limit 55 confirmed")

        # a button: queued like the web API's, so it waits 31 s after the write
        w.publish(BASE + "/set/inverter_restart", b"PRESS")
        deadline = time.monotonic() + 31 + FAST + 10
        while sim.counters()["counters"]["writes_received"] < 2:
            gw.assert_alive()
            assert time.monotonic() < deadline, "the restart never reached the DTU"
            time.sleep(0.2)
        # every Command 31 s apart: the limit, the restart, and the warning list's
        # action 50 (read at connect), which the DTU may take for a write too
        times = sim.write_times(gathers=True)
        assert len(times) >= 2 and all((b - a) % 86400 >= 31 for a, b in zip(times, times[1:])), times
        c = sim.counters()["counters"]
        assert c["limit_writes"] == 1 and c["reboots"] == 0 and c["hangs_induced"] == 0
        msgs = events(gw)
        assert "inverter restart requested" in msgs, msgs
        gw.assert_alive()
        gw.assert_clean_log()
    finally:
        st.close()


def test_mqtt_limit_reaches_the_dtu_once_with_spacing(request, runtime):
    scenario(request, _command_scenario, runtime)


# ---- 3. TLS with the test CA, user and password -----------------------------------------------

def _tls_scenario(runtime, workdir):
    st = _Stack()
    try:
        ca = make_ca(workdir)
        broker = st.add(Mosquitto(os.path.join(workdir, "broker"), users={"gw": "gw S3cret", "w": "w"},
                                  tls=ca), lambda b: b.stop())
        w = st.add(Watcher(broker.port, user="w", password="w"), lambda w: w.close())
        with open(ca["ca"], "rb") as f:
            pem = f.read()
        settings = dict(MQTT_FAST, **{"mqtt.port": broker.tls_port, "mqtt.tls": True, "mqtt.user": "gw",
                                      "mqtt.password": "gw S3cret"})
        sim, gw = _start(st, runtime, workdir, settings, files={"mqtt_ca.pem": pem})
        wait_onlines(w, 1)
        w.until(lambda: all(retained(w, t) for t in CONFIGS), 15, "discovery over TLS")
        assert_values_equal_simulator(w, sim, gw)
        cfg = gw.get("/api/config")
        assert cfg["mqtt.password"] == "" and cfg["mqtt.password_set"] is True
        # a wrong password: said offline, refused, retried, nothing crashes
        assert gw.post("/api/config", {"mqtt.password": "wrong"})[0] == 200
        wait_value(w, BASE + "/availability", lambda v: v == b"offline", 10)
        gw.wait_until("the refusal in the events", lambda d: any(
            "cannot connect" in m and "refused" in m for m in events(gw)), 15)
        assert gw.post("/api/config", {"mqtt.password": "gw S3cret"})[0] == 200
        wait_onlines(w, 2)
        # the CA replaced by one that did not sign the broker's certificate
        with open(ca["other_ca"], "rb") as src, open(os.path.join(gw.data_dir, "mqtt_ca.pem"), "wb") as dst:
            dst.write(src.read())
        assert gw.post("/api/config", {"mqtt.port": broker.tls_port, "mqtt.topic": "other/gw"})[0] == 200
        gw.wait_until("a TLS refusal", lambda d: any(
            "cannot connect" in m and ("TLS" in m or "CERTIFICATE" in m or "SSL" in m) for m in events(gw)), 15)
        assert retained(w, "other/gw/availability") is None
        gw.assert_alive()
        gw.assert_clean_log()
        for text in (open(gw.out, "rb").read(), open(gw.err, "rb").read()):
            assert b"gw S3cret" not in text
    finally:
        st.close()


def test_mqtt_tls_and_password(request, runtime):
    scenario(request, _tls_scenario, runtime)


# ---- 4. the dusk, the night and the morning, with a real broker ---------------------------------

def _night_scenario(runtime, workdir):
    st = _Stack()
    try:
        broker = st.add(Mosquitto(os.path.join(workdir, "broker")), lambda b: b.stop())
        w = st.add(Watcher(broker.port), lambda w: w.close())
        # the DTU at 19:59:40: sunset at 20:00, then 30 s of zeros (the lifetime
        # counters too), then off the network until the test jumps to the morning
        sim, gw = _start(st, runtime, workdir, dict(MQTT_FAST, **{"mqtt.port": broker.port}),
                         sim_opts={"min_gap": 0, "extra": ["--tz-offset=%d" % tz_offset_for("19:59:40"),
                                                           "--dusk", "30"]})
        wait_onlines(w, 1)
        evening = gw.data()["grid"]["tE"]
        assert evening > 1000
        wait_value(w, BASE + "/dtu/connection", lambda v: v == b"night", 60, "the night")
        assert sim.counters()["state"] == "offline"              # it really is off the network
        # the night: its own state everywhere, 0 W, the evening's totals
        d = gw.data()
        assert d["dtuConnState"] == 8 and d["grid"]["p"] == 0 and d["grid"]["tE"] >= evening, d
        assert gw.get("/api/info")["dtuConnection"]["dtuState"] == "night"
        _, samples = metrics(gw)
        assert samples[("dtu_connection_state", ())] == 8
        assert samples[("dtu_grid_energy_kwh_total", ())] >= evening
        assert retained(w, BASE + "/grid/p") == b"0"
        assert float(retained(w, BASE + "/grid/tE")) >= evening
        assert retained(w, BASE + "/availability") == b"online"     # the entities stay: 0 W, the totals
        msgs = events(gw)
        assert any("asleep for the night" in m for m in msgs), msgs
        # the morning: back with the first look after the DTU is on the network again
        sim.set_local_time("06:30:00")
        # (the last value on each topic: the evening's "connected" must not count)
        w.until(lambda: retained(w, BASE + "/dtu/connection") == b"connected", 10 * FAST + 20, "the morning")
        w.until(lambda: float(retained(w, BASE + "/grid/p")) > 0, 2 * FAST + 10, "the morning's power")
        # never a lower lifetime total on MQTT, through the dusk's zeros, the night and the morning
        low = w.count(lambda m: m[0] == BASE + "/grid/tE" and float(m[1]) < evening)
        assert low == 0
        assert sim.counters()["counters"]["hangs_induced"] == 0
        gw.assert_alive()
        gw.assert_clean_log()
    finally:
        st.close()


def test_mqtt_through_the_dusk_the_night_and_the_morning(request, runtime):
    scenario(request, _night_scenario, runtime)


# ---- 5. the inverter's warnings: start and end, in the API, MQTT and /metrics -------------------

def _warning_scenario(runtime, workdir):
    st = _Stack()
    try:
        broker = st.add(Mosquitto(os.path.join(workdir, "broker")), lambda b: b.stop())
        w = st.add(Watcher(broker.port), lambda w: w.close())
        sim, gw = _start(st, runtime, workdir, dict(MQTT_FAST, **{"mqtt.port": broker.port}))
        wait_onlines(w, 1)
        count = lambda n: lambda: retained(w, BASE + "/inverter/warnings") == n  # noqa: E731 - the last value
        w.until(count(b"0"), 20, "no warning yet")
        # the list is read at connect; action 50 is a Command, so the next read
        # keeps 31 s from it (at this test's 5 s rounds: several rounds)
        w.until(lambda: (retained(w, BASE + "/inverter/warnings/list") or b"").find(b'"read": null') < 0
                and retained(w, BASE + "/inverter/warnings/list") is not None, 20, "the read at connect")
        assert gw.get("/api/alarms")["active"] == []
        time.sleep(32)
        r0 = sim.counters()["counters"]["rounds"]
        sim.warning(8333)                                 # 141, grid overvoltage, with a flag bit
        w.until(count(b"1"), 4 * FAST + 10, "the count")
        assert sim.counters()["counters"]["rounds"] - r0 <= 3    # within two rounds (one may be running)
        ev = json.loads(wait_value(w, BASE + "/inverter/warnings/event", lambda v: b'"started"' in v, 5)[0][1])
        assert (ev["code"], ev["text"], ev["state"], ev["end"]) == (141, "Grid overvoltage", "started", None)
        lst = json.loads(retained(w, BASE + "/inverter/warnings/list"))
        assert [a["code"] for a in lst["active"]] == [141] and lst["active"][0]["raw"] == 8333
        a = gw.get("/api/alarms")["active"][0]
        assert (a["code"], a["text"], a["count"]) == (141, "Grid overvoltage", 1)
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", a["start"]), a
        assert gw.data()["inverter"]["warnings"] == 1
        _, samples = metrics(gw)
        assert samples[("dtu_inverter_warnings_active", (("code", "141"),))] == 1
        assert any("warning 141 Grid overvoltage started" in m for m in events(gw))
        # the end: read at the next look while a warning is active (WARN_ROUNDS intervals)
        sim.warning(8333, end=True)
        w.until(count(b"0"), 17 * FAST + 15, "the end")
        ev = json.loads(wait_value(w, BASE + "/inverter/warnings/event", lambda v: b'"ended"' in v, 5)[0][1])
        assert (ev["code"], ev["state"]) == (141, "ended") and ev["end"]
        body = gw.get("/api/alarms")
        assert body["active"] == [] and [e["code"] for e in body["ended"]] == [141]
        assert gw.data()["inverter"]["warnings"] == 0
        _, samples = metrics(gw)
        assert not [k for k in samples if k[0] == "dtu_inverter_warnings_active"]
        disc = json.loads(retained(w, "homeassistant/sensor/%s/inverter_warnings/config" % NODE))
        assert disc["json_attributes_topic"] == BASE + "/inverter/warnings/list"
        c = sim.counters()["counters"]
        assert c["hangs_induced"] == 0 and c["writes_received"] == 0
        gw.assert_alive()
        gw.assert_clean_log()
    finally:
        st.close()


def test_a_warning_starts_and_ends_in_the_api_mqtt_and_metrics(request, runtime):
    scenario(request, _warning_scenario, runtime)


# ---- 6. openHAB -----------------------------------------------------------------------------------

ITEMS = {   # what an openHAB user defines for the gateway (prefix dtuGateway_)
    "grid_v": "Number", "grid_c": "Number", "grid_p": "Number", "grid_dE": "Number",
    "grid_tE": "Number", "inverter_temp": "Number", "inverter_limit": "Number",
    "inverter_limit_set": "Number", "inverter_uptodate": "Number", "inverter_active": "Number",
    "dtu_rssi": "Number", "dtu_connection": "String", "dtu_error": "String",
    "power_limit_set": "Number",
}
for _p in ("pv0", "pv1"):
    ITEMS.update({_p + "_" + k: "Number" for k in ("v", "c", "p", "dE", "tE")})
# grid_f is left out on purpose: openHAB answers 404, the gateway reports it once


class OpenHabStandIn:
    """openHAB's REST contract for items, on 127.0.0.1: POST /rest/items/<name>
    with Content-Type text/plain sends a command (200; 404 unknown item; 400
    not a number for a Number item; 415 another content type); GET
    /rest/items/<name>/state answers the state as text/plain (chunked, as
    Jetty streams it; "NULL" until set). HTTP/1.1 with keep-alive.
    hang=True: reads each request and never answers."""

    def __init__(self, items, hang=False):
        self.types = {"dtuGateway_" + k: v for k, v in items.items()}
        self.states = {k: "NULL" for k in self.types}
        self.log = []                  # (monotonic, method, path, content type, body, status)
        self.connections = 0
        self.hang = hang
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                BaseHTTPRequestHandler.setup(self)
                owner.connections += 1

            def _reply(self, status, body=b"", ctype="text/plain", chunked=False):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for part in (body[:1], body[1:]):
                        if part:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def _handle(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode() if n else ""
                ctype = self.headers.get("Content-Type", "")
                entry = [time.monotonic(), method, self.path, ctype, body, None]
                owner.log.append(entry)
                if owner.hang:
                    owner.release.wait(120)
                    self.close_connection = True
                    return
                status, out, chunked = owner.answer(method, self.path, ctype, body)
                entry[5] = status
                self._reply(status, out, "text/plain" if status == 200 else "application/json", chunked)

            def do_POST(self):
                self._handle("POST")

            def do_GET(self):
                self._handle("GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, method, path, ctype, body):
        m = re.fullmatch(r"/rest/items/([A-Za-z0-9_]+)(/state)?", path)
        if not m:
            return 404, b'{"error":{"message":"not found","http-code":404}}', False
        name, state = m.group(1), m.group(2)
        if name not in self.types:
            return 404, b'{"error":{"message":"Item %s does not exist!","http-code":404}}' % name.encode(), False
        if method == "GET" and state:
            return 200, self.states[name].encode(), True
        if method == "POST" and not state:
            if ctype.split(";")[0].strip() != "text/plain":
                return 415, b'{"error":{"message":"Unsupported Media Type","http-code":415}}', False
            if self.types[name] == "Number":
                try:
                    float(body)
                except ValueError:
                    return 400, b'{"error":{"message":"State could not be parsed","http-code":400}}', False
            self.states[name] = body
            return 200, b"", False
        return 405, b'{"error":{"message":"Method Not Allowed","http-code":405}}', False

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def round_times(gw, seconds):
    """monotonic times at which a new round's data showed up, over `seconds`."""
    out = []
    last = gw.data()["lastResponse"]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        d = gw.data()
        if d["lastResponse"] != last:
            last = d["lastResponse"]
            out.append(time.monotonic())
        gw.assert_alive()
        time.sleep(0.05)
    return out


def assert_on_schedule(times, seconds, what):
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:])]
    assert len(times) >= int(seconds // FAST) - 1 and len(times) >= 2, "%s: %d rounds in %d s" % (
        what, len(times), seconds)
    # the scheduler starts a round `interval` s after the last one started: any
    # stall of the DTU task shows as a longer gap (observed jitter: ~0.05 s)
    assert all(abs(g - FAST) <= 0.5 for g in gaps), "%s: round gaps %s" % (what, gaps)
    slip = times[-1] - times[0] - FAST * (len(times) - 1)
    assert abs(slip) <= 0.5, "%s: the schedule slipped %.2f s: gaps %s" % (what, slip, gaps)


def _openhab_scenario(runtime, workdir):
    st = _Stack()
    try:
        oh = st.add(OpenHabStandIn(ITEMS), lambda o: o.close())
        oh.states["dtuGateway_power_limit_set"] = "60"        # the user's wish, waiting in openHAB
        settings = {"dtu.cloud_pause": False, "dtu.interval": FAST, "openhab.enabled": True,
                    "openhab.host": "127.0.0.1", "openhab.port": oh.port}
        sim, gw = _start(st, runtime, workdir, settings)
        # the limit item is read back at once and queued like a web API wish
        gw.wait_until("limit 60 from openHAB", lambda d: d["inverter"]["pLimSet"] == 60, 10)
        # the items follow /api/data
        deadline = time.monotonic() + 20
        while True:
            d, rd = snapshot(sim, gw)
            exp = expected_from_wire(rd)
            want = {"grid_p": exp["grid"]["p"], "grid_v": exp["grid"]["v"], "grid_tE": exp["grid"]["tE"],
                    "pv0_p": exp["pv0"]["p"], "pv1_dE": exp["pv1"]["dE"], "inverter_temp": exp["inverter"]["temp"],
                    "dtu_rssi": DTU_CSQ}
            bad = [(k, oh.states["dtuGateway_" + k], v) for k, v in want.items()
                   if oh.states["dtuGateway_" + k] == "NULL" or abs(float(oh.states["dtuGateway_" + k]) - v) > 1e-9]
            if not bad and oh.states["dtuGateway_dtu_connection"] == "connected":
                break
            assert time.monotonic() < deadline, "openHAB items differ: %s" % bad
            time.sleep(0.2)
        posts = [e for e in oh.log if e[1] == "POST"]
        assert posts and all(e[3] == "text/plain" and e[5] in (200, 404) for e in posts), posts[:3]
        assert all(e[2].startswith("/rest/items/dtuGateway_") for e in posts)
        assert not any(e[2] == "/rest/items/dtuGateway_power_limit_set" for e in posts)  # only read
        assert oh.connections <= 2 < len(oh.log)                     # kept alive
        msgs = events(gw)
        assert sum(1 for m in msgs if "items missing: dtuGateway_grid_f" in m) == 1, msgs
        kinds = [(e["kind"], e["msg"]) for e in gw.get("/api/events")["events"]]
        assert ("openhab", "power limit 60 % requested") in kinds, kinds
        assert_on_schedule(round_times(gw, 2 * FAST + 2), 2 * FAST + 2, "openHAB answering")

        # openHAB hangs: the DTU rounds keep their spacing, the API answers
        hang = st.add(OpenHabStandIn(ITEMS, hang=True), lambda o: o.close())
        assert gw.post("/api/config", {"openhab.port": hang.port})[0] == 200
        times = round_times(gw, 4 * FAST + 2)
        assert_on_schedule(times, 4 * FAST + 2, "openHAB hanging")
        assert len(hang.log) >= 1 and all(e[5] is None for e in hang.log)   # really hung
        msgs = events(gw)
        assert any("unreachable" in m and str(hang.port) in m for m in msgs), msgs
        # dead: nothing listens there
        assert gw.post("/api/config", {"openhab.port": free_port()})[0] == 200
        assert_on_schedule(round_times(gw, 2 * FAST + 2), 2 * FAST + 2, "openHAB dead")
        assert sim.counters()["counters"]["hangs_induced"] == 0
        gw.assert_alive()
        gw.assert_clean_log()
    finally:
        st.close()


def test_openhab_items_limit_readback_and_a_hanging_server(request, runtime):
    scenario(request, _openhab_scenario, runtime)


SCENARIOS = {
    "test_mqtt_discovery_values_metrics_restart_and_cuts": _mqtt_scenario,
    "test_mqtt_limit_reaches_the_dtu_once_with_spacing": _command_scenario,
    "test_mqtt_tls_and_password": _tls_scenario,
    "test_openhab_items_limit_readback_and_a_hanging_server": _openhab_scenario,
    "test_mqtt_through_the_dusk_the_night_and_the_morning": _night_scenario,
    "test_a_warning_starts_and_ends_in_the_api_mqtt_and_metrics": _warning_scenario,
}


def test_openhab_stand_in_follows_the_contract():
    """The stand-in itself, so the gateway is tested against the real contract."""
    oh = OpenHabStandIn({"x": "Number", "s": "String"})
    try:
        def call(method, path, body=None, ctype="text/plain"):
            s = socket.create_connection(("127.0.0.1", oh.port), timeout=5)
            data = (body or "").encode()
            head = "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % (method, path)
            if body is not None:
                head += "Content-Type: %s\r\nContent-Length: %d\r\n" % (ctype, len(data))
            s.sendall(head.encode() + b"\r\n" + data)
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
            s.close()
            return int(out.split()[1]), out
        assert call("GET", "/rest/items/dtuGateway_x/state")[0] == 200
        assert call("POST", "/rest/items/dtuGateway_x", "12.5")[0] == 200
        status, out = call("GET", "/rest/items/dtuGateway_x/state")
        assert status == 200 and b"Transfer-Encoding: chunked" in out and out.endswith(b"0\r\n\r\n")
        assert oh.states["dtuGateway_x"] == "12.5"
        assert call("POST", "/rest/items/dtuGateway_x", "word")[0] == 400
        assert call("POST", "/rest/items/dtuGateway_s", "word")[0] == 200
        assert call("POST", "/rest/items/dtuGateway_x", "1", "application/json")[0] == 415
        assert call("POST", "/rest/items/dtuGateway_nope", "1")[0] == 404
    finally:
        oh.close()
