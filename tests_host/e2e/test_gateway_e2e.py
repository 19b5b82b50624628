"""End to end: the gateway as a separate process, under CPython and under the
unix MicroPython (both through tools/run_host.py), against the DTU simulator
as a separate process (tools/dtu_sim.py), through HTTP and the real sockets.

Everything listens on 127.0.0.1, on ports picked by the kernel. Every process
runs in its own process group and is stopped by the test that started it (a
module-level net kills whatever a failing test left). Every wait polls against
a deadline.

Where the DTU's rules matter the simulator runs with its hang model on
(--min-gap 31, gateway at its default 31 s interval). Tests that need many
rounds quickly run the gateway at FAST (5 s, allowed "for testing") against a
simulator with --min-gap 0 and check the write spacing on the simulator's own
request log instead. The simulator always runs with --no-cloud and the gateway
with dtu.cloud_pause off (settings.json written before the start), so no
upload window can make a test wait; the DTU's clock is put at midday
(--tz-offset) so the inverter produces.

The slow scenarios (the coalesced limit, the four faults) run for both
runtimes at once, in threads: the first test of a kind starts them all and
each test waits for its own result. That keeps the file within ~3 minutes on
two cores.
"""
import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from support.env import micropython_bin
from proc_util import tail
from support.gateway_proc import (DTU_CSQ, DTU_SERIAL, FAST, FAST_SETTINGS, MAX_BODY, PROCS, SEED_DATA, SEED_INFO,
                                  SLOW_SETTINGS, assert_matches_wire, http, missing_keys, post_raw, snapshot,
                                  start_pair, wrong_types)

# ---- fixtures ------------------------------------------------------------------

@pytest.fixture(scope="module")
def workroot(tmp_path_factory):
    return str(tmp_path_factory.mktemp("e2e"))


@pytest.fixture
def workdir(workroot):
    return tempfile.mkdtemp(dir=workroot)


@pytest.fixture(scope="module", autouse=True)
def _no_leftovers():
    """The safety net: whatever a failing test or thread left running."""
    yield
    for t in list(_BACKGROUND.values()):
        t.join(120)
    PROCS.stop_all(signal.SIGKILL)


@pytest.fixture(scope="module")
def ro(runtime, workroot):
    """One gateway per runtime for the read-only tests, at the default 31 s
    interval, against a simulator with its hang model on (--min-gap 31)."""
    wd = tempfile.mkdtemp(dir=workroot)
    sim, gw = start_pair(runtime, wd, {"min_gap": 31}, SLOW_SETTINGS)
    try:
        gw.sim = sim
        yield gw
        gw.assert_alive()
        c = sim.counters()
        assert c["counters"]["hangs_induced"] == 0, c["hang_reasons"]
        gw.assert_clean_log()
    finally:
        gw.stop()
        sim.stop()


# ---- background scenarios --------------------------------------------------------

_BACKGROUND = {}        # (kind, key, runtime) -> Runner


class Runner(threading.Thread):
    def __init__(self, fn, *args):
        threading.Thread.__init__(self, daemon=True)
        self.fn, self.args = fn, args
        self.error = None
        self.result = None

    def run(self):
        try:
            self.result = self.fn(*self.args)
        except BaseException as e:   # handed to the test that waits for it
            self.error = e


def _selected(request, param):
    """The (param value, runtime) pairs of this test function that will run."""
    out = []
    for item in request.session.items:
        cs = getattr(item, "callspec", None)
        if item.originalname == request.node.originalname and cs is not None:
            if "runtime" in cs.params and not (cs.params["runtime"] == "micropython"
                                               and not micropython_bin()):
                out.append((cs.params.get(param), cs.params["runtime"]))
    return out


def in_background(request, fn, workroot, runtime, key=None, param=None, timeout=150):
    """fn(runtime, workdir, key) for every selected (key, runtime) of this
    test at once; waits for this one and re-raises its failure."""
    kind = request.node.originalname
    if (kind, key, runtime) not in _BACKGROUND:
        for k, rt in _selected(request, param) or [(key, runtime)]:
            if (kind, k, rt) not in _BACKGROUND:
                r = Runner(fn, rt, tempfile.mkdtemp(dir=workroot), k)
                _BACKGROUND[(kind, k, rt)] = r
                r.start()
    r = _BACKGROUND[(kind, key, runtime)]
    r.join(timeout)
    assert not r.is_alive(), "scenario still running after %d s" % timeout
    if r.error is not None:
        raise r.error
    return r.result


# ---- 1. /api/data: the seed's shape, the simulator's values ---------------------------

def test_data_has_seed_shape_and_simulator_values(ro):
    d, rd = snapshot(ro.sim, ro)
    assert missing_keys(SEED_DATA, d) == []
    assert wrong_types(SEED_DATA, d) == []
    assert_matches_wire(d, rd)
    # midday at the DTU: the values are real, not zeros
    assert d["grid"]["p"] > 100 and d["grid"]["v"] > 200 and d["grid"]["tE"] > 1000
    assert d["pv0"]["v"] > 20 and d["pv1"]["p"] > 50 and d["inverter"]["temp"] != 0
    assert d["grid"]["tE"] == pytest.approx(d["pv0"]["tE"] + d["pv1"]["tE"], abs=0.0011)
    assert d["grid"]["dE"] == pytest.approx(d["pv0"]["dE"] + d["pv1"]["dE"], abs=0.0011)
    inv = d["inverter"]
    assert (inv["uptodate"], inv["pLim"], inv["pLimSet"], inv["pending"]) == (1, 100, 100, 0)
    assert (d["dtuConnState"], d["dtuErrorState"]) == (1, 0)
    now = time.time()
    # rendered with each round: the gateway's clock as of the last round (<= 31 s ago)
    assert now - 40 < d["ntpStamp"] <= now + 1 and d["localtime"] == d["ntpStamp"]   # UTC
    assert d["starttime"] <= d["ntpStamp"] and d["lastResponse"] <= now + 1
    assert d["dtu"]["serial"] == DTU_SERIAL and d["dtu"]["encrypted"] == 0
    assert d["dtu"]["rssi"] == DTU_CSQ
    c = ro.sim.counters()["counters"]
    assert c["hangs_induced"] == 0 and c["uploads_disturbed"] == 0 and c["writes_received"] == 0


# ---- 2. /api/info and no password anywhere ---------------------------------------------

def _secrets():
    """A distinct value for every secret setting (wifi.password,
    dtu.ap_password, admin.password, and whatever secret rows come later)."""
    from gateway.settings import SCHEMA
    return {row[0]: "S3cret %s e2e!" % row[0] for row in SCHEMA if row[5]}


def test_info_has_seed_keys_and_passwords_never_leave(runtime, workdir):
    sim, gw = start_pair(runtime, workdir, {"min_gap": 31}, SLOW_SETTINGS)
    try:
        secrets = _secrets()
        assert {"wifi.password", "dtu.ap_password", "admin.password"} <= set(secrets)
        change = dict(secrets)
        change["dtu"] = {"ap_ssid": "DTUBI-E2E"}          # nested and dotted keys mixed
        status, body = http(gw.port, "POST", "/api/config", json.dumps(change), raw=True)
        assert status == 200, body
        assert json.loads(body)["ok"] is True
        bodies = [body.decode()]
        for path in ("/api/info", "/api/config", "/api/events", "/api/data"):
            status, b = http(gw.port, "GET", path, raw=True)
            assert status == 200
            bodies.append(b.decode())
        info = json.loads(bodies[1])
        assert missing_keys(SEED_INFO, info) == []
        assert info["dtuConnection"]["dtuHostIp"] == "127.0.0.1"
        assert info["dtuConnection"]["dtuSsid"] == "DTUBI-E2E"
        assert info["dtuConnection"]["rssiDtu"] == DTU_CSQ
        assert info["dtuConnection"]["dtuPassword"] == "" and info["wifiConnection"]["wifiPassword"] == ""
        assert info["dtuConnection"]["dtuPasswordSet"] is True
        assert info["wifiConnection"]["wifiPasswordSet"] is True
        cfg = json.loads(bodies[2])
        for key in secrets:
            assert cfg[key] == "" and cfg[key + "_set"] is True, key
        with open(os.path.join(gw.data_dir, "settings.json")) as f:
            saved = json.load(f)
        assert saved["wifi.password"] == secrets["wifi.password"]   # kept, just never shown
        events = ""
        if os.path.exists(os.path.join(gw.data_dir, "events.json")):
            with open(os.path.join(gw.data_dir, "events.json")) as f:
                events = f.read()
        for secret in secrets.values():
            for text in bodies + [events, tail(gw.out), tail(gw.err)]:
                assert secret not in text and json.dumps(secret)[1:-1] not in text, (secret, text)
        gw.assert_alive()
        gw.assert_clean_log()
    finally:
        gw.stop()
        sim.stop()


# ---- 3. a burst of limits: one write, the latest value, 31 s apart -------------------------

def _limit_scenario(runtime, workdir, _key):
    # --min-gap 0 (the gateway polls every 5 s); the write spacing is checked
    # on the simulator's request log instead.
    sim, gw = start_pair(runtime, workdir, {"min_gap": 0, "quiet": False}, FAST_SETTINGS)
    try:
        for v in (70, 40, 55):
            status, body = gw.post("/api/power-limit", {"limit": v})
            assert (status, body) == (202, {"limit": v, "pending": True})
        t_post = time.monotonic()
        # waiting for the write: the wish shows, the old limit stays
        deadline = t_post + FAST + 31 + 10
        while True:
            c = sim.counters()
            if c["counters"]["limit_writes"]:
                break
            d = gw.data()
            assert d["inverter"]["pLimSet"] == 55 and d["inverter"]["pending"] == 1, d
            assert d["inverter"]["pLim"] == 100, d
            gw.assert_alive()
            assert time.monotonic() < deadline, "the limit never reached the DTU"
            time.sleep(0.2)
        assert c["counters"]["limit_writes"] == 1 and c["limit"] == 55, c
        # confirmed by reading back: pLim 55, nothing pending
        d = gw.wait_until("pLim 55 confirmed", lambda d: d["inverter"]["pending"] == 0,
                          2 * FAST + 10)
        assert (d["inverter"]["pLim"], d["inverter"]["pLimSet"]) == (55, 55), d
        c = sim.counters()
        assert c["counters"]["limit_writes"] == 1 and c["counters"]["writes_received"] == 1
        assert c["limit"] == 55 and c["applied_limit"] == 55
        d, rd = snapshot(sim, gw)
        assert_matches_wire(d, rd)            # with the limit applied, and a day's energy
        assert rd["sgs_data"][0]["power_limit"] == 550
        # 1 is raised to the inverter's minimum 2; 0 (off) is accepted too
        assert gw.post("/api/power-limit", {"limit": 1}) == (202, {"limit": 2, "pending": True})
        assert gw.post("/api/power-limit", {"limit": 0}) == (202, {"limit": 0, "pending": True})
        # the next write ("off") waits until 31 s after the first one
        first = sim.write_times()
        assert len(first) == 1, first
        deadline = time.monotonic() + 31 + FAST + 10
        while sim.counters()["counters"]["writes_received"] < 2:
            gw.assert_alive()
            assert gw.data()["inverter"]["pending"] == 1
            assert time.monotonic() < deadline, "the second write never came"
            time.sleep(0.2)
        times = sim.write_times()
        assert len(times) == 2, times
        assert (times[1] - times[0]) % 86400 >= 31, times
        c = sim.counters()["counters"]
        assert c["limit_writes"] == 1 and c["hangs_induced"] == 0
        gw.assert_alive()
        gw.assert_clean_log()
    finally:
        gw.stop()
        sim.stop()


def test_limit_burst_coalesces_into_one_write(request, runtime, workroot):
    in_background(request, _limit_scenario, workroot, runtime)


# ---- 4. bad input: the right status, the config file untouched ----------------------------

def _settings_state(data_dir):
    out = {}
    for name in sorted(os.listdir(data_dir)):
        if name.startswith("settings."):
            with open(os.path.join(data_dir, name), "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


BAD_CONFIG = [
    # (body, field at fault or None)
    (b"{bad json", None),
    (b'{"dtu.interval": 40,', None),
    (b"\xff\xfe{}", None),
    (b"[1, 2]", None),
    (b'"text"', None),
    (b"", None),
    ({"dtu.interval": "40"}, "dtu.interval"),
    ({"dtu": {"interval": "40"}}, "dtu.interval"),
    ({"dtu.port": True}, "dtu.port"),
    ({"wifi.ssid": 5}, "wifi.ssid"),
    ({"dtu.interval": 1}, "dtu.interval"),
    ({"dtu.port": 70000}, "dtu.port"),
    ({"dtu.interval": 40, "dtu.port": 70000}, "dtu.port"),      # nothing applied of a bad set
    ({"nosuch": 1}, "nosuch"),
    ({"dtu": {"nosuch": 1}}, "dtu.nosuch"),
    ({"wifi.password": "short"}, "wifi.password"),
]
BAD_LIMIT = [
    (b"{bad json", None),
    (b"[55]", None),
    ({"limit": 101}, "limit"),
    ({"limit": -1}, "limit"),
    ({"limit": "50"}, "limit"),
    ({"limit": 50.5}, "limit"),
    ({"limit": True}, "limit"),
    ({"limit": None}, "limit"),
    ({"limit": 50, "nosuch": 1}, "nosuch"),
]


def test_bad_input_is_refused_and_changes_nothing(ro):
    port = ro.port
    before = _settings_state(ro.data_dir)
    assert "settings.json" in before
    cfg_before = ro.get("/api/config")
    for path, cases in (("/api/config", BAD_CONFIG), ("/api/power-limit", BAD_LIMIT)):
        for body, field in cases:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            status, resp = http(port, "POST", path, raw)
            assert status == 400, (path, body, status, resp)
            assert isinstance(resp, dict) and isinstance(resp.get("error"), str) and resp["error"], resp
            if field is not None:
                assert resp.get("field") == field, (path, body, resp)
    big = json.dumps({"dtu.ap_ssid": "x" * 3000}).encode()
    for path in ("/api/config", "/api/power-limit"):
        # > 2 KB, Content-Length true
        status, body, whole = post_raw(port, path, big)
        assert status == 413 and json.loads(body)["error"], whole[:300]
        # Content-Length says more than is sent
        status, body, whole = post_raw(port, path, b'{"limit": 50}', content_length=MAX_BODY + 1)
        assert status == 413 and json.loads(body)["error"], whole[:300]
        status, body, whole = post_raw(port, path, b"", content_length=10 ** 9)
        assert status == 413, whole[:300]
        # Content-Length says less than is sent: the body is its first bytes
        status, body, whole = post_raw(port, path, big, content_length=100)
        assert status == 400, whole[:300]
        # none at all: no body
        status, body, whole = post_raw(port, path, big, content_length="none")
        assert status == 400, whole[:300]
        assert ro.data()["inverter"]["uptodate"] == 1
    assert _settings_state(ro.data_dir) == before
    assert ro.get("/api/config") == cfg_before
    d = ro.data()
    assert d["inverter"]["pLimSet"] == 100 and d["inverter"]["pending"] == 0   # no limit queued
    ro.assert_alive()
    ro.assert_clean_log()


# ---- 5. a settings file cut mid-write ------------------------------------------------------

GOOD_BAK = {"dtu.cloud_pause": False, "dtu.ap_ssid": "DTUBI-FROM-BAK", "dtu.interval": 45,
            "timezone": "CET-1CEST,M3.5.0,M10.5.0/3"}
NEWER = {"dtu.cloud_pause": False, "dtu.ap_ssid": "DTUBI-NEWER", "dtu.interval": 40}


def _events(gw):
    return gw.get("/api/events")["events"]


@pytest.mark.parametrize("bak", [True, False], ids=["with-bak", "no-bak"])
def test_truncated_settings_are_recovered(runtime, workdir, bak):
    text = json.dumps(NEWER).encode()
    files = {"settings.json": text[:len(text) // 2]}
    if bak:
        files["settings.bak"] = json.dumps(GOOD_BAK).encode()
    # with the defaults (no .bak) the cloud pause is on: it may hold the first poll
    sim, gw = start_pair(runtime, workdir, {"min_gap": 31}, None, files, first_poll=bak)
    try:
        cfg = gw.get("/api/config")
        msgs = [(e["level"], e["msg"]) for e in _events(gw)]
        if bak:
            assert (cfg["dtu.ap_ssid"], cfg["dtu.interval"], cfg["timezone"]) == (
                "DTUBI-FROM-BAK", 45, GOOD_BAK["timezone"])
            assert any(lv == "warn" and "settings.json" in m and "unreadable" in m for lv, m in msgs), msgs
            assert any(lv == "warn" and "restored" in m and "settings.bak" in m for lv, m in msgs), msgs
        else:
            assert (cfg["dtu.ap_ssid"], cfg["dtu.interval"], cfg["dtu.cloud_pause"]) == ("", 31, True)
            assert any(lv == "warn" and "settings.json" in m and "unreadable" in m for lv, m in msgs), msgs
            assert any(lv == "error" and "defaults" in m for lv, m in msgs), msgs
        # no crash loop: still the same process, still answering, a while later
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            assert set(SEED_DATA) <= set(gw.data())
            time.sleep(0.2)
        gw.assert_alive()
        # the next change is saved over the cut file, from the values in use
        status, body = gw.post("/api/config", {"dtu.ap_ssid": "DTUBI-FIXED"})
        assert status == 200, body
        with open(os.path.join(gw.data_dir, "settings.json")) as f:
            saved = json.load(f)
        assert saved["dtu.ap_ssid"] == "DTUBI-FIXED"
        assert saved["dtu.interval"] == (45 if bak else 31)
        assert sim.counters()["counters"]["hangs_induced"] == 0
        gw.assert_alive()
        gw.assert_clean_log()
    finally:
        gw.stop()
        sim.stop()


# ---- 6. faults through the real sockets ----------------------------------------------------

FAULTS = {
    "drop": {"times": 2},
    "garbage": {"times": 2},
    "badcrc": {"times": 2},
    "silent": {"duration": 20},
}
STALE_AFTER = 2 * FAST + 5      # the app's rule: 2 intervals + 5 s


def _fault_scenario(runtime, workdir, fault):
    sim, gw = start_pair(runtime, workdir, {"min_gap": 0}, FAST_SETTINGS)
    try:
        first = gw.first
        # start right after a round, so the next one meets the fault
        d = gw.wait_until("a new round", lambda d: d["lastResponse"] != first["lastResponse"],
                          FAST + 5, 0.05)
        last_ok = time.monotonic()
        last_resp = d["lastResponse"]
        sim.fault(fault, **FAULTS[fault])
        t_fault = time.time()
        seen = []               # (t since the last good round, conn, error, uptodate)
        deadline = time.monotonic() + 75
        recovered = False
        while time.monotonic() < deadline:
            d = gw.data()        # must answer throughout
            t = time.monotonic() - last_ok
            inv = d["inverter"]
            seen.append((round(t, 1), d["dtuConnState"], d["dtuErrorState"], inv["uptodate"]))
            bad = any(s[1] in (3, 5) for s in seen)
            if bad and d["dtuConnState"] == 1 and inv["uptodate"] == 1 and d["lastResponse"] > t_fault:
                recovered = True
                break
            gw.assert_alive()
            time.sleep(0.2)
        assert recovered, "no recovery from %s: %s\n%s" % (fault, seen, gw.log())
        conns = {s[1] for s in seen}
        assert conns & {3, 5}, seen
        assert conns <= ({1, 3, 5} if fault == "silent" else {1, 3}), seen
        assert {s[2] for s in seen} == {0}, seen          # no long silence: no error state
        stale = [s for s in seen if s[3] == 0]
        assert stale, "never reported stale: %s" % seen
        assert min(s[0] for s in stale) >= STALE_AFTER - 1, seen     # not before its time
        assert all(s[3] == 0 for s in seen if STALE_AFTER + 1.5 < s[0] and s[1] != 1), "%s" % seen
        c = sim.counters()
        assert fault not in c["faults"], c["faults"]
        assert d["lastResponse"] > last_resp
        d, rd = snapshot(sim, gw)
        assert_matches_wire(d, rd)
        gw.assert_alive()
        gw.assert_clean_log()
        return seen
    finally:
        gw.stop()
        sim.stop()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_is_survived_and_recovered(request, runtime, workroot, fault):
    in_background(request, _fault_scenario, workroot, runtime, key=fault, param="fault")


# ---- 7. an encrypting DTU, and a new key after its reboot -----------------------------------

def test_encrypted_dtu_and_new_key_after_reboot(runtime, workdir):
    sim, gw = start_pair(runtime, workdir, {"min_gap": 0, "encrypted": True}, FAST_SETTINGS)
    try:
        d = gw.first
        assert d["dtu"]["encrypted"] == 1 and d["dtu"]["version"] == "V01.01.01"
        d, rd = snapshot(sim, gw)
        assert_matches_wire(d, rd)
        key0 = sim.counters()["enc_rand"]
        t_reboot = time.time()
        sim.reboot(2)
        d = gw.wait_until("data after the reboot",
                          lambda d: d["lastResponse"] > t_reboot + 2 and d["inverter"]["uptodate"] == 1,
                          2 + 4 * FAST + 10)
        assert d["dtu"]["encrypted"] == 1 and d["dtuConnState"] == 1
        c = sim.counters()
        assert c["enc_rand"] != key0 and c["counters"]["reboots"] == 1
        assert c["counters"]["bad_frames_in"] == 0
        d, rd = snapshot(sim, gw)
        assert_matches_wire(d, rd)
        gw.assert_alive()
        gw.assert_clean_log()
    finally:
        gw.stop()
        sim.stop()


# ---- 8. Ctrl-C -------------------------------------------------------------------------

def test_ctrl_c_stops_cleanly(runtime, workdir):
    sim, gw = start_pair(runtime, workdir, {"min_gap": 0}, FAST_SETTINGS)
    try:
        assert gw.post("/api/power-limit", {"limit": 50})[0] == 202
        # the note reaches the event ring with the next round, and the file
        # only when the gateway stops (flushes are rate-limited)
        deadline = time.monotonic() + FAST + 5
        while not any("limit 50 % requested" in e["msg"] for e in _events(gw)):
            assert time.monotonic() < deadline, _events(gw)
            time.sleep(0.2)
        t0 = time.monotonic()
        os.killpg(gw.proc.pid, signal.SIGINT)       # what a terminal's Ctrl-C does
        try:
            rc = gw.proc.wait(5)
        except subprocess.TimeoutExpired:
            pytest.fail("still running 5 s after Ctrl-C\n" + gw.log())
        took = time.monotonic() - t0
        assert rc == 0 and took < 5, (rc, took, gw.log())
        deadline = time.monotonic() + 5
        while True:                                  # nothing of the group is left
            try:
                os.killpg(gw.proc.pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "a gateway process outlived Ctrl-C"
            time.sleep(0.05)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", gw.port), timeout=1).close()
        with open(os.path.join(gw.data_dir, "events.json")) as f:
            assert "limit 50 % requested" in f.read()         # flushed on the way out
        gw.assert_clean_log()
        assert sim.counters()["connections_open"] == 0
    finally:
        gw.stop()
        sim.stop()
