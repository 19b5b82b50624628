"""The gateway and the DTU simulator as separate processes (tools/run_host.py
under CPython or the unix MicroPython, tools/dtu_sim.py), and how the tests
talk to them: HTTP over real sockets on 127.0.0.1, the seed's JSON shapes,
what the simulator sent on the wire. Used by the e2e tests."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection

import pytest

from proc_util import Procs, free_port, tail, wait_for
from support.env import MP_HOST_HEAP as HEAP
from support.env import ROOT

PY = sys.executable
SIM = os.path.join(ROOT, "tools", "dtu_sim.py")
RUN_HOST = os.path.join(ROOT, "tools", "run_host.py")
FAST = 5                    # dtu.interval (s) for the tests that need rounds quickly
FIRST_POLL = 3.0            # s from the API's first answer to the first fresh /api/data
START = 15.0                # s from the process start to the API's first answer, at most
MAX_BODY = 2048
DTU_SERIAL = "4143A0123456"  # the simulator's
DTU_CSQ = 72


# The seed's /api/data and /api/info (shared/seeds/gateway-description.md).
SEED_DATA = {
    "localtime": 1704110892, "ntpStamp": 1707640484, "lastResponse": 1704063600,
    "dtuConnState": 1, "dtuErrorState": 0, "starttime": 1707593197,
    "inverter": {"pLim": 0, "pLimSet": 101, "temp": 0.00, "uptodate": 0},
    "grid": {"v": 0.00, "c": 0.00, "p": 0.00, "dE": 0.000, "tE": 0.000},
    "pv0": {"v": 0.00, "c": 0.00, "p": 0.00, "dE": 0.000, "tE": 0.000},
    "pv1": {"v": 0.00, "c": 0.00, "p": 0.00, "dE": 0.000, "tE": 0.000},
}
SEED_INFO = {
    "chipid": 12345678, "host": "hoymilesGW_12345678", "initMode": 0,
    "firmware": {
        "version": "1.0.0022", "versiondate": "10.02.2024 - 19:23:57",
        "versionServer": "1.0.0051", "versiondateServer": "10.02.2024 - 19:23:57",
        "versionServerRelease": "checking", "versiondateServerRelease": "...",
        "selectedUpdateChannel": "0", "updateAvailable": 0,
    },
    "dtuConnection": {"dtuHostIp": "192.168.0.249", "dtuSsid": "DTUBI-12345678",
                      "dtuPassword": "dtubiPassword", "rssiDtu": 0},
    "wifiConnection": {
        "networkCount": 2,
        "foundNetworks": [{"name": "Name1 Wlan", "wifi": 62, "rssi": -69, "chan": 1},
                          {"name": "name2-wifi", "wifi": 48, "rssi": -76, "chan": 3}],
        "wifiSsid": "myWifiSSID", "wifiPassword": "myPass", "rssiGW": 87,
    },
}

# ---- processes ---------------------------------------------------------------

PROCS = Procs()                # every process still possibly running (the safety net)
# Starts are serialised: the start and first-poll bounds are about the
# gateway, not about a dozen interpreters importing at once on two cores.
_START_LOCK = threading.Lock()


def midday_tz_offset():
    """--tz-offset (whole quarter hours) that puts the DTU at about 12:00 local."""
    now = int(time.time())
    off = (12 * 3600 - now % 86400) // 900 * 900
    return off


def tz_offset_for(hms):
    """--tz-offset that puts the DTU at local time "HH:MM:SS" now."""
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s - int(time.time()) % 86400


# ---- HTTP --------------------------------------------------------------------

def http(port, method, path, body=None, timeout=5.0, raw=False):
    """(status, decoded JSON, or the raw bytes if raw or not JSON) of one request."""
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if raw:
            return r.status, data
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data
    finally:
        conn.close()


def raw_http(port, request, timeout=5.0):
    """Send raw bytes, return (status, body bytes, whole answer). A server that
    closes with unread input resets the connection after its answer: what
    arrived before the reset counts."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = b""
    try:
        try:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass        # the server may answer and close before it read everything
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    while data.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):       # an interim answer
        data = data[25:]
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    head, _, body = data.partition(b"\r\n\r\n")
    return (int(m.group(1)) if m else None), body, data


def post_raw(port, path, body, content_length=None, extra=b""):
    if isinstance(body, str):
        body = body.encode()
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % path.encode()
    head += b"Content-Type: application/json\r\n" + extra
    if content_length != "none":
        head += b"Content-Length: %d\r\n" % (len(body) if content_length is None else content_length)
    return raw_http(port, head + b"\r\n" + body)


# ---- the simulator and the gateway ---------------------------------------------

class Sim:
    """tools/dtu_sim.py as a process, with its control endpoint."""

    def __init__(self, workdir, min_gap=31, encrypted=False, quiet=True, extra=()):
        self.port, self.control = free_port(), free_port()
        self.log = os.path.join(workdir, "sim.log")
        cmd = [PY, SIM, "--listen", "127.0.0.1:%d" % self.port,
               "--control", "127.0.0.1:%d" % self.control, "--min-gap", str(min_gap),
               "--no-cloud", "--tz-offset=%d" % midday_tz_offset()]
        if quiet:
            cmd.append("--quiet")
        if encrypted:
            cmd.append("--encrypted")
        cmd += list(extra)
        self._log = open(self.log, "wb")
        self.proc = PROCS.start(cmd, stdout=subprocess.DEVNULL, stderr=self._log, cwd=ROOT)
        if wait_for(self.counters, 15, self.proc, retry=(OSError,)) is None:
            self.stop()
            raise AssertionError("simulator did not start:\n" + tail(self.log))

    def _call(self, method, path, body=None):
        status, data = http(self.control, method, path, body)
        assert status == 200, (status, data)
        return data

    def counters(self):
        return self._call("GET", "/counters")

    def fault(self, name, **params):
        return self._call("POST", "/fault", dict(params, name=name))

    def reboot(self, seconds):
        return self._call("POST", "/reboot", {"seconds": seconds})

    def warning(self, code, end=False):
        """The inverter raises (or ends) warning `code` (raw, flags included)."""
        return self._call("POST", "/warning", {"code": code, "end": end})

    def set_local_time(self, hms):
        """Jump the DTU's local time to "HH:MM:SS"."""
        h, m, s = (int(x) for x in hms.split(":"))
        return self._call("POST", "/local-time", {"at": h * 3600 + m * 60 + s})

    def write_times(self, gathers=False):
        """Seconds of the day (DTU local) of every write (A305 Command, A310
        SetConfig, 2305 cloud command), from the request log; with gathers,
        also the Commands that only gather the warning list (action 50)."""
        out = []
        with open(self.log, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                m = re.match(r"(\d\d):(\d\d):(\d\d) .*\b(A305|A310|2305) seq", line)
                if m and (gathers or "(alarm list)" not in line):
                    out.append(int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3)))
        return out

    def stop(self):
        PROCS.stop(self.proc)
        self._log.close()


class Gateway:
    """tools/run_host.py as a process (CPython, or MicroPython with --heap)."""

    def __init__(self, runtime, sim_port, data_dir, settings=None, files=None, heap=HEAP, profile=None):
        self.runtime = runtime
        self.port = free_port()
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        if settings is not None:
            with open(os.path.join(data_dir, "settings.json"), "w") as f:
                json.dump(settings, f)
        for name, content in (files or {}).items():
            with open(os.path.join(data_dir, name), "wb") as f:
                f.write(content)
        cmd = [PY, RUN_HOST, "--dtu", "127.0.0.1:%d" % sim_port,
               "--listen", "127.0.0.1:%d" % self.port, "--data-dir", data_dir]
        if profile:
            cmd += ["--profile", profile]
        if runtime == "micropython":
            cmd += ["--micropython", "--heap", heap]
            # build (or find) the .mpy tree before the clock starts: START
            # bounds the gateway's start, not mpy-cross compiling every module
            # (~10 s on a loaded machine, when a test happened to be the first)
            sys.path.insert(0, os.path.join(ROOT, "tools"))
            import run_host
            run_host.build_mpy_tree()
        self.out = os.path.join(data_dir, "..", "gw-%d.out" % self.port)
        self.err = os.path.join(data_dir, "..", "gw-%d.err" % self.port)
        self._out, self._err = open(self.out, "wb"), open(self.err, "wb")
        self.started = time.monotonic()
        self.proc = PROCS.start(cmd, stdout=self._out, stderr=self._err, cwd=ROOT)

    def log(self):
        return "--- gateway stderr ---\n%s\n--- stdout ---\n%s" % (tail(self.err), tail(self.out))

    def alive(self):
        return self.proc.poll() is None

    def assert_alive(self):
        assert self.alive(), "gateway exited with %s\n%s" % (self.proc.returncode, self.log())

    def get(self, path):
        status, body = http(self.port, "GET", path)
        assert status == 200, (path, status, body, self.log())
        return body

    def post(self, path, body):
        return http(self.port, "POST", path, body)

    def data(self):
        return self.get("/api/data")

    def wait_first_data(self, within=FIRST_POLL):
        """Wait for the first /api/data with uptodate 1; assert it came within
        `within` s of the API's first answer: the first DTU round runs at the
        start, not an interval later. Measured from the API's first answer,
        not the process start, which is the interpreter's start-up and imports
        and varies with the machine's load (bounded by START). Returns that body."""
        deadline = self.started + START + within + 10     # wait longer, to report how long
        up = None
        while True:
            try:
                d = self.data()
                now = time.monotonic()
                if up is None:
                    up = now
                    assert up - self.started <= START, "API up after %.2f s (%s)" % (up - self.started,
                                                                                     self.runtime)
                if d["inverter"]["uptodate"] == 1:
                    took = now - up
                    assert took <= within, "first fresh data %.2f s after the API answered, %.2f s after " \
                        "the start (%s)" % (took, now - self.started, self.runtime)
                    return d
            except OSError:
                pass
            self.assert_alive()
            assert time.monotonic() < deadline, "no fresh data (%s)\n%s" % (self.runtime, self.log())
            time.sleep(0.05)

    def wait_until(self, what, cond, seconds, step=0.2, allow_down=False):
        """Poll /api/data until cond(data) is true; returns that data."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                d = self.data()
            except OSError:
                if not allow_down:
                    raise
                d = None
            if d is not None and cond(d):
                return d
            self.assert_alive()
            assert time.monotonic() < deadline, "timed out waiting for %s; last %s\n%s" % (
                what, json.dumps(d), self.log())
            time.sleep(step)

    def assert_clean_log(self):
        text = tail(self.err, 20000)
        assert "Traceback" not in text and "MemoryError" not in text, self.log()

    def stop(self, sig=signal.SIGTERM):
        rc = PROCS.stop(self.proc, sig)
        self._out.close()
        self._err.close()
        return rc


def start_pair(runtime, workdir, sim_opts=None, settings=None, files=None, first_poll=True, heap=HEAP,
               profile=None):
    """A simulator and a gateway talking to it. With first_poll, the gateway's
    first fresh /api/data is awaited and must come within FIRST_POLL s of the
    API's first answer (gw.first); else just its first answer."""
    with _START_LOCK:
        sim = Sim(workdir, **(sim_opts or {}))
        gw = None
        try:
            gw = Gateway(runtime, sim.port, os.path.join(workdir, "data"), settings, files, heap, profile)
            if first_poll:
                gw.first = gw.wait_first_data()
            else:
                gw.first = gw.wait_until("a first answer", lambda d: True, 10, 0.05, allow_down=True)
        except BaseException:
            if gw is not None:
                gw.stop()
            sim.stop()
            raise
    return sim, gw


FAST_SETTINGS = {"dtu.cloud_pause": False, "dtu.interval": FAST}
SLOW_SETTINGS = {"dtu.cloud_pause": False}        # the default 31 s interval


# ---- checks --------------------------------------------------------------------

def missing_keys(seed, got, path=""):
    """Dotted paths of the seed's keys that `got` lacks (nested, list items
    checked against the seed's first item when `got` has any)."""
    out = []
    if isinstance(seed, dict):
        if not isinstance(got, dict):
            return [path or "."]
        for k, v in seed.items():
            p = path + "." + k if path else k
            if k not in got:
                out.append(p)
            else:
                out += missing_keys(v, got[k], p)
    elif isinstance(seed, list):
        if not isinstance(got, list):
            return [path]
        for i, item in enumerate(got):
            out += missing_keys(seed[0], item, "%s[%d]" % (path, i))
    return out


def wrong_types(seed, got, path=""):
    """Leaves whose JSON type differs from the seed's (numbers are numbers,
    never booleans)."""
    out = []
    if isinstance(seed, dict):
        for k, v in seed.items():
            if isinstance(got, dict) and k in got:
                out += wrong_types(v, got[k], path + "." + k if path else k)
    elif isinstance(seed, (int, float)) and not isinstance(seed, bool):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            out.append("%s=%r" % (path, got))
    elif isinstance(seed, str) and not isinstance(got, str):
        out.append("%s=%r" % (path, got))
    return out


def expected_from_wire(rd):
    """/api/data's values computed here from the RealDataNew the simulator
    sent (unscaled wire integers): V/10, A/100, W/10, Wh/1000 -> kWh,
    degC/10, Hz/100, limit 0.1 %; grid dE/tE are the sums over the PV ports."""
    sgs = (rd.get("sgs_data") or [{}])[0]
    pvs = sorted(rd.get("pv_data", []), key=lambda p: p.get("port_number", 0))
    ports = []
    for p in pvs:
        ports.append({"v": round(p.get("voltage", 0) / 10, 2), "c": round(p.get("current", 0) / 100, 2),
                      "p": round(p.get("power", 0) / 10, 2),
                      "dE": round(p.get("energy_daily", 0) / 1000, 3),
                      "tE": round(p.get("energy_total", 0) / 1000, 3)})
    exp = {
        "lastResponse": rd["timestamp"],
        "inverter": {"temp": round(sgs.get("temperature", 0) / 10, 2),
                     "pLim": int(round(sgs.get("power_limit", 0) / 10))},
        "grid": {"v": round(sgs.get("voltage", 0) / 10, 2), "c": round(sgs.get("current", 0) / 100, 2),
                 "p": round(sgs.get("active_power", 0) / 10, 2),
                 "f": round(sgs.get("frequency", 0) / 100, 2),
                 "dE": round(sum(p.get("energy_daily", 0) for p in pvs) / 1000, 3),
                 "tE": round(sum(p.get("energy_total", 0) for p in pvs) / 1000, 3)},
        "pv0": ports[0], "pv1": ports[1],
    }
    return exp


def snapshot(sim, gw, seconds=15):
    """(/api/data, the RealDataNew it was made from): read both around a
    moment when no round ran in between."""
    deadline = time.monotonic() + seconds
    while True:
        c1 = sim.counters()
        d = gw.data()
        c2 = sim.counters()
        rd = c1["last_real_data"]
        if rd is not None and rd == c2["last_real_data"] and d["lastResponse"] == rd["timestamp"]:
            return d, rd
        assert time.monotonic() < deadline, "no consistent snapshot: %s / %s" % (d, rd)
        time.sleep(0.1)


def assert_matches_wire(d, rd):
    exp = expected_from_wire(rd)
    assert d["lastResponse"] == exp["lastResponse"]
    for group in ("inverter", "grid", "pv0", "pv1"):
        for k, v in exp[group].items():
            assert d[group][k] == pytest.approx(v, rel=1e-9, abs=1e-9), (group, k, d[group][k], v)
