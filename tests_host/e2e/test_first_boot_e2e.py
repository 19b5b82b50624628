"""First boot end to end in host mode, on CPython and on the unix MicroPython:
tools/run_host.py with a fresh --data-dir and no --dtu (factory mode, the
simulated WiFi), --dns on a free UDP port, and the DTU simulator.

  - factory mode: the AP is "open", real UDP DNS queries get the AP address
    (A) or no record (AAAA), the probe URLs and unknown pages redirect to the
    setup page, / and /api/* answer, no DTU round is attempted;
  - POST /api/config with the WiFi, the DTU's address and an admin password:
    the gateway joins, leaves factory mode (probes answer "online") and polls
    the simulator;
  - then writes need the password: 401, Basic, login cookie + CSRF token,
    429 after wrong guesses (the client address as each runtime reports it);
  - POST /api/factory-reset: back to factory mode in the same process;
  - a join that fails keeps the portal and the saved credentials.

Everything listens on 127.0.0.1 on kernel-picked ports; every process is
stopped by the test that started it; every wait is bounded.
"""
import base64
import json
import os
import socket
import struct
import sys
import time
from http.client import HTTPConnection

import pytest

from support.env import ROOT
from proc_util import free_port, start, stop, tail

PY = sys.executable
RUN_HOST = os.path.join(ROOT, "tools", "run_host.py")
SIM = os.path.join(ROOT, "tools", "dtu_sim.py")
# The whole gateway with every feature keeps ~220-240 KB of the 64-bit unix
# port's heap after boot: 256k is too tight (see `make bench` for the shares).
from support.env import MP_HOST_HEAP as HEAP  # noqa: E402
PW = "Adm1n e2e pass"
SCAN = [{"name": "HomeNet", "rssi": -52, "chan": 6}, {"name": "HomeNet", "rssi": -85, "chan": 1},
        {"name": "Cafe", "rssi": -71, "chan": 11, "open": True}]


class Proc:
    """One process of a test (its own process group), stdout and stderr to log."""

    def __init__(self, cmd, log):
        self.log = log
        self.p = start(cmd, log=log, cwd=ROOT)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        stop(self.p)


def req(port, method, path, body=None, headers=None, timeout=5.0):
    """(status, headers dict, body bytes) of one request."""
    c = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, {k: v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def get_json(port, path, headers=None):
    status, h, body = req(port, "GET", path, headers=headers)
    assert status == 200, (path, status, body)
    return json.loads(body)


def basic(pw):
    return {"Authorization": "Basic " + base64.b64encode(("admin:" + pw).encode()).decode()}


def dns_query(port, name, qtype=1, qid=0x4242, wait=3.0):
    """One real UDP query to 127.0.0.1:port; the reply bytes or None."""
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes((len(label),)) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            s.sendto(q, ("127.0.0.1", port))
            try:
                data = s.recv(512)
            except OSError:      # timeout, or ICMP port unreachable before it binds
                continue
            if data[:2] == q[:2]:
                return data
        return None
    finally:
        s.close()


def wait_for(what, fn, seconds, proc, step=0.1):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError, KeyError):
            pass
        assert proc.alive(), "gateway exited while waiting for %s\n%s" % (what, tail(proc.log))
        time.sleep(step)
    raise AssertionError("timed out waiting for %s (last %r)\n%s" % (what, last, tail(proc.log)))


@pytest.fixture
def sim(tmp_path):
    port, control = free_port(), free_port()
    p = Proc([PY, SIM, "--listen", "127.0.0.1:%d" % port, "--control", "127.0.0.1:%d" % control,
              "--min-gap", "0", "--no-cloud", "--quiet"], str(tmp_path / "sim.log"))
    p.port, p.control = port, control
    try:
        wait_for("the simulator", lambda: req(control, "GET", "/counters")[0] == 200, 15, p)
        yield p
    finally:
        p.stop()


def sim_requests(sim):
    status, _, body = req(sim.control, "GET", "/counters")
    return json.loads(body)["counters"]["requests"]


def start_gateway(runtime, tmp_path, join="ok"):
    port, dns = free_port(), free_port(socket.SOCK_DGRAM)
    scan = tmp_path / "scan.json"
    scan.write_text(json.dumps(SCAN))
    cmd = [PY, RUN_HOST, "--listen", "127.0.0.1:%d" % port, "--data-dir", str(tmp_path / "data"),
           "--dns", "127.0.0.1:%d" % dns, "--wifi-scan", str(scan), "--wifi-join", join]
    if runtime == "micropython":
        cmd += ["--micropython", "--heap", HEAP]
    p = Proc(cmd, str(tmp_path / "gateway.log"))
    p.port, p.dns = port, dns
    try:
        wait_for("the gateway's HTTP", lambda: req(port, "GET", "/api/wifi")[0] == 200, 60, p)
    except BaseException:
        p.stop()
        raise
    return p


def assert_factory_mode(gw):
    w = get_json(gw.port, "/api/wifi")
    assert (w["mode"], w["connected"], w["ap_ssid"], w["ap_ip"]) == (
        "ap", False, "DTU-Gateway-00c0ffee", "192.168.4.1"), w
    for path in ("/generate_204", "/hotspot-detect.html", "/connecttest.txt", "/ncsi.txt",
                 "/success.txt", "/some/unknown/page"):
        status, h, _ = req(gw.port, "GET", path, headers={"Host": "connectivitycheck.gstatic.com"})
        assert (status, h.get("Location")) == (302, "http://192.168.4.1/"), (path, status, h)
        status, h, _ = req(gw.port, "GET", path)        # Host 127.0.0.1:port: stay on it
        assert (status, h.get("Location")) == (302, "/"), (path, status, h)
    assert req(gw.port, "GET", "/")[0] == 200
    status, _, body = req(gw.port, "GET", "/api/nothing")
    assert status == 404 and json.loads(body)["error"]
    # the DNS responder: every A query -> the AP address; AAAA -> no record
    r = wait_for("a DNS answer", lambda: dns_query(gw.dns, "connectivitycheck.gstatic.com"), 10, gw)
    assert struct.unpack(">H", r[6:8])[0] == 1 and r[-4:] == bytes((192, 168, 4, 1)), r
    r = dns_query(gw.dns, "www.apple.com", qtype=28, qid=0x4343)
    assert r is not None and struct.unpack(">H", r[6:8])[0] == 0 and r[3] & 0x0F == 0, r
    assert dns_query(gw.dns, "x" * 64 + ".com", wait=0.5) is None       # malformed: silence


def test_factory_mode_setup_auth_and_reset(runtime, sim, tmp_path):
    gw = start_gateway(runtime, tmp_path)
    try:
        assert_factory_mode(gw)
        nets = get_json(gw.port, "/api/wifi/scan")["networks"]
        assert [n["name"] for n in nets] == ["HomeNet", "Cafe"] and nets[0]["wifi"] == 96
        assert get_json(gw.port, "/api/info")["wifiConnection"]["networkCount"] == 2
        assert get_json(gw.port, "/api/session") == {
            "auth_required": False, "logged_in": False, "protect_read": False}
        time.sleep(0.5)
        assert sim_requests(sim) == 0                       # nothing to talk to yet

        # the setup page's one POST
        status, _, body = req(gw.port, "POST", "/api/config", {
            "wifi": {"ssid": "HomeNet", "password": "home-pass-1"},
            "dtu": {"host": "127.0.0.1", "port": sim.port, "interval": 5, "cloud_pause": False},
            "admin": {"password": PW}})
        assert status == 200, body
        t0 = time.monotonic()
        w = wait_for("the join", lambda: (lambda w: w if w["connected"] else None)(
            get_json(gw.port, "/api/wifi")), 10, gw)
        assert (w["mode"], w["ssid"], w["error"]) == ("ap+sta", "HomeNet", ""), w
        d = wait_for("data from the simulator", lambda: (lambda d: d if d["inverter"]["uptodate"] else None)(
            get_json(gw.port, "/api/data")), 15, gw)
        assert d["dtuConnState"] == 1 and time.monotonic() - t0 < 15
        assert sim_requests(sim) > 0
        # out of factory mode: the probes' "online" answers
        for path, (code, text) in {"/generate_204": (204, b""), "/ncsi.txt": (200, b"Microsoft NCSI"),
                                   "/success.txt": (200, b"success\n"),
                                   "/connecttest.txt": (200, b"Microsoft Connect Test")}.items():
            status, h, body = req(gw.port, "GET", path, headers={"Host": "www.msftncsi.com"})
            assert (status, body) == (code, text), path
        assert req(gw.port, "GET", "/some/unknown/page")[0] == 404

        # writes now need the admin password
        status, h, body = req(gw.port, "POST", "/api/power-limit", {"limit": 60})
        assert status == 401 and "WWW-Authenticate" not in h, (status, body)
        status, h, body = req(gw.port, "POST", "/api/power-limit", {"limit": 60}, headers=basic("nope"))
        assert status == 401 and h.get("WWW-Authenticate") == 'Basic realm="DTU Gateway"'
        status, h, body = req(gw.port, "POST", "/api/power-limit", {"limit": 60}, headers=basic(PW))
        assert status == 202, body
        status, h, body = req(gw.port, "POST", "/api/login", {"password": PW})
        assert status == 200, body
        csrf = json.loads(body)["csrf"]
        cookie = h["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in h["Set-Cookie"] and "SameSite=Strict" in h["Set-Cookie"]
        status, _, body = req(gw.port, "POST", "/api/power-limit", {"limit": 55}, headers={"Cookie": cookie})
        assert status == 403 and json.loads(body)["error"] == "missing or wrong CSRF token"
        status, _, _ = req(gw.port, "POST", "/api/power-limit", {"limit": 55},
                           headers={"Cookie": cookie, "X-CSRF-Token": csrf})
        assert status == 202
        s = get_json(gw.port, "/api/session", headers={"Cookie": cookie})
        assert s == {"auth_required": True, "logged_in": True, "protect_read": False, "csrf": csrf}
        # guessing: locked out after 5 (per client address: here 127.0.0.1)
        codes = [req(gw.port, "POST", "/api/login", {"password": "guess%d" % i})[0] for i in range(6)]
        assert codes == [401] * 5 + [429], codes
        status, h, body = req(gw.port, "POST", "/api/config", {}, headers=basic(PW))
        assert status == 429 and 0 < json.loads(body)["retry_after"] <= 30
        # the session still works: a lock-out stops guessing, not the logged-in page
        status, _, _ = req(gw.port, "POST", "/api/factory-reset", headers={"Cookie": cookie})
        assert status == 403                                   # no token: refused
        status, _, body = req(gw.port, "POST", "/api/factory-reset",
                              headers={"Cookie": cookie, "X-CSRF-Token": csrf})
        assert status == 202 and json.loads(body) == {"ok": True, "rebooting": False}, body
        # host mode: the same process, in factory mode again
        assert_factory_mode(gw)
        assert get_json(gw.port, "/api/session")["auth_required"] is False
        cfg = get_json(gw.port, "/api/config")
        assert cfg["wifi.ssid"] == "" and cfg["admin.password_set"] is False and cfg["dtu.host"] == ""
        assert gw.alive()
        log = tail(gw.log, 20000)
        assert "Traceback" not in log and "MemoryError" not in log, log
        assert PW not in log and "home-pass-1" not in log
    finally:
        gw.stop()


def test_failed_join_keeps_the_portal(sim, tmp_path):
    gw = start_gateway("cpython", tmp_path, join="fail")
    try:
        status, _, body = req(gw.port, "POST", "/api/config", {
            "wifi.ssid": "HomeNet", "wifi.password": "typo-pass", "dtu.host": "127.0.0.1",
            "dtu.port": sim.port, "dtu.interval": 5, "dtu.cloud_pause": False})
        assert status == 200, body
        w = wait_for("the failed join", lambda: (lambda w: w if w["state"] == "waiting" else None)(
            get_json(gw.port, "/api/wifi")), 10, gw)
        assert (w["mode"], w["connected"], w["error"]) == ("ap", False, "wrong password"), w
        assert req(gw.port, "GET", "/generate_204")[0] == 302
        r = dns_query(gw.dns, "example.com")
        assert r is not None and r[-4:] == bytes((192, 168, 4, 1))
        cfg = get_json(gw.port, "/api/config")
        assert (cfg["wifi.ssid"], cfg["wifi.password_set"]) == ("HomeNet", True)
        with open(tmp_path / "data" / "settings.json") as f:
            assert json.load(f)["wifi.password"] == "typo-pass"
        time.sleep(1)
        assert sim_requests(sim) == 0                # no network: no DTU rounds either
        events = get_json(gw.port, "/api/events")["events"]
        assert any(e["kind"] == "wifi" and "wrong password" in e["msg"] for e in events), events
        assert gw.alive()
    finally:
        gw.stop()
