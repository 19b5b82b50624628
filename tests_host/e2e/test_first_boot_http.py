"""First boot, WiFi and access control through HTTP: the real Gateway with
every feature attached, Microdot's in-process TestClient, a simulated WiFi.

  - factory mode: the probe URLs and unknown pages redirect to the setup
    page, /api/* and / answer; after setup the probes get their "online"
    answers;
  - every state-changing route of every feature (found in the app's URL map,
    so features added later are covered too) needs the admin password once
    it is set: 401 without, Basic accepted, cookie + CSRF token accepted,
    403 without the token, 429 after repeated wrong passwords;
  - admin.protect_read, POST /api/factory-reset (auth, defaults, restart
    after the reply), /api/history, /api/wifi, /api/wifi/scan, /api/info.
"""
import asyncio
import base64
import json
import shutil
import tempfile

import pytest

from board.host import Board, HostWifi
from dtu.client import AP_IP
from gateway.setup import portal
from gateway.web.api import make_app
from gateway.app import Gateway
from microdot.test_client import TestClient

PW = "Adm1n-pass!"
NETS = [{"name": "HomeNet", "rssi": -58, "chan": 6}, {"name": "HomeNet", "rssi": -80, "chan": 1},
        {"name": "Cafe", "rssi": -75, "chan": 11, "open": True}]
PROBES = {
    "/generate_204": (204, b""),
    "/hotspot-detect.html": (200, b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"),
    "/connecttest.txt": (200, b"Microsoft Connect Test"),
    "/ncsi.txt": (200, b"Microsoft NCSI"),
    "/success.txt": (200, b"success\n"),
}
WRITES = ("POST", "PUT", "PATCH", "DELETE")


class Env:
    def __init__(self, join="ok", name="host", settings=None, safe_mode=None):
        self.dir = tempfile.mkdtemp(prefix="gw-fb-")
        if settings is not None:
            with open(self.dir + "/settings.json", "w") as f:
                json.dump(settings, f)
        self.wifi = HostWifi(fixed=False, networks=NETS, join=join)
        self.board = Board(data_dir=self.dir, chip_id="0badf00d", wifi=self.wifi)
        self.board.name = name
        self.resets = 0
        self.board.reset = self._reset
        self.gw = Gateway(self.board, safe_mode=safe_mode)
        self.wm = self.gw.wifi_manager
        self.app = make_app(self.gw)
        self.c = TestClient(self.app)
        self.step()

    def _reset(self):
        self.resets += 1

    def step(self):
        self.wm.step(self.wm.clock())

    def req(self, method, path, body=None, headers=None, cookies=None):
        c = self.c if cookies is None else TestClient(self.app, cookies=cookies)
        return run(c.request(method, path, headers=dict(headers or {}), body=body))

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def env():
    e = Env()
    yield e
    e.close()


def basic(pw, user="admin"):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def write_routes(app):
    """(method, path) of every state-changing route under /api/, with
    <args> filled in."""
    out = []
    for m, path in app.routes():
        if not path.startswith("/api/") or path in ("/api/login", "/api/logout"):
            continue
        path = "/".join("x" if seg.startswith("<") else seg for seg in path.split("/"))
        if m in WRITES:
            out.append((m, path))
    return out


# ---- factory mode and the probes --------------------------------------------------------

def test_factory_mode_redirects_probes_and_unknown_pages(env):
    assert env.wm.state == "ap" and env.wifi.ap_active()
    assert env.wifi.ap_ssid() == "DTU-Gateway-0badf00d"
    for path in list(PROBES) + ["/gen_204", "/library/test/success.html", "/nowhere",
                                "/some/deep/page.php?x=1"]:
        r = env.req("GET", path, headers={"Host": "connectivitycheck.gstatic.com"})
        assert (r.status_code, r.headers.get("Location")) == (302, "http://192.168.4.1/"), path
        r = env.req("GET", path, headers={"Host": "192.168.4.1"})
        assert (r.status_code, r.headers.get("Location")) == (302, "/"), path
        r = env.req("HEAD", path, headers={"Host": "127.0.0.1:8080"})
        assert r.status_code == 302, path
    # what exists keeps working: the page, the API; unknown API paths stay JSON 404s
    assert env.req("GET", "/").status_code == 200
    for path in ("/api/data", "/api/info", "/api/config", "/api/events", "/api/wifi",
                 "/api/wifi/scan", "/api/session", "/api/history"):
        r = env.req("GET", path)
        assert r.status_code == 200, path
        assert isinstance(r.json, dict), path
    r = env.req("GET", "/api/nothing")
    assert r.status_code == 404 and r.json["error"]
    r = env.req("POST", "/nowhere", body={})
    assert r.status_code in (404, 405)          # only GETs are redirected
    w = env.req("GET", "/api/wifi").json
    assert (w["mode"], w["connected"], w["ap_ssid"], w["ap_ip"], w["state"]) == (
        "ap", False, "DTU-Gateway-0badf00d", "192.168.4.1", "ap")


def test_setup_leaves_factory_mode_and_probes_answer_online(env):
    r = env.req("POST", "/api/config", body={"wifi.ssid": "HomeNet", "wifi.password": "home-pass-1",
                                             "dtu.host": "192.168.1.77", "admin.password": PW})
    assert r.status_code == 200, r.text
    assert env.wifi.joins == [("HomeNet", "home-pass-1")]
    env.step()
    w = env.req("GET", "/api/wifi").json
    assert (w["mode"], w["connected"], w["ssid"], w["ip"], w["error"]) == (
        "ap+sta", True, "HomeNet", "127.0.0.1", "")
    assert env.gw.sched.net_up and env.gw.sched.enabled
    for path, (status, body) in PROBES.items():
        r = env.req("GET", path, headers={"Host": "connectivitycheck.gstatic.com"})
        assert (r.status_code, r.body) == (status, body), path
        assert "Location" not in r.headers
    assert env.req("GET", "/nowhere").status_code == 404
    # the admin password is now needed for writes, and it is never shown
    assert env.req("POST", "/api/power-limit", body={"limit": 50}).status_code == 401
    for path in ("/api/config", "/api/info", "/api/session", "/api/wifi"):
        assert PW not in env.req("GET", path).text


def test_failed_join_keeps_the_portal_and_the_credentials():
    e = Env(join="fail")
    try:
        r = e.req("POST", "/api/config", body={"wifi.ssid": "HomeNet", "wifi.password": "wrong-pass"})
        assert r.status_code == 200
        e.step()
        w = e.req("GET", "/api/wifi").json
        assert (w["mode"], w["connected"], w["state"], w["error"]) == ("ap", False, "waiting", "wrong password")
        assert e.req("GET", "/generate_204").status_code == 302
        cfg = e.req("GET", "/api/config").json
        assert cfg["wifi.ssid"] == "HomeNet" and cfg["wifi.password_set"] is True
        with open(e.dir + "/settings.json") as f:
            assert json.load(f)["wifi.password"] == "wrong-pass"
    finally:
        e.close()


VIA_AP = {"dtu.via": "ap", "dtu.ap_ssid": "DTUBI-4143", "dtu.ap_password": "dtu-pass1",
          "dtu.host": "192.168.1.77"}


def test_the_dtu_over_its_own_ap_is_polled_at_its_address():
    e = Env(settings=VIA_AP)
    try:
        e.step()
        assert e.wifi.joins == [("DTUBI-4143", "dtu-pass1")]
        assert (e.gw.client.host, e.gw.sched.enabled, e.gw.sched.net_up) == (AP_IP, True, True)
        # back to the home network: dtu.host again
        assert e.req("POST", "/api/config", body={"dtu.via": "lan", "wifi.ssid": "HomeNet",
                                                  "wifi.password": "home-pass-1"}).status_code == 200
        assert (e.gw.client.host, e.gw.sched.enabled) == ("192.168.1.77", True)
    finally:
        e.close()


def test_safe_mode_keeps_the_dtu_off_also_over_its_own_ap():
    # safe mode talks to no DTU, whichever way the DTU is reached
    e = Env(settings=VIA_AP, safe_mode={"active": True, "reason": "3 crashes"})
    try:
        assert not e.gw.sched.enabled
        for _ in range(3):
            e.step()
        assert e.wifi.joins == [("DTUBI-4143", "dtu-pass1")] and e.gw.sched.net_up
        assert not e.gw.sched.enabled
        assert e.req("POST", "/api/config", body={"dtu.interval": 45}).status_code == 200
        assert e.req("POST", "/api/config", body={"dtu.ap_password": "dtu-pass2"}).status_code == 200
        e.step()
        assert not e.gw.sched.enabled
    finally:
        e.close()


def test_scan_and_info_list_the_networks(env):
    nets = env.req("GET", "/api/wifi/scan").json["networks"]
    assert nets == [{"name": "HomeNet", "wifi": 84, "rssi": -58, "chan": 6, "open": False},
                    {"name": "Cafe", "wifi": 50, "rssi": -75, "chan": 11, "open": True}]
    info = env.req("GET", "/api/info").json["wifiConnection"]
    assert info["networkCount"] == 2 and info["foundNetworks"] == nets


def test_history_endpoint(env):
    st = env.gw.state
    st.readings = {"grid": {"p": 321.0}}
    st.last_ok = env.board.time()
    env.gw.each_feature("after_round")
    d = env.req("GET", "/api/history").json
    assert d["step"] == 300 and d["start"] <= env.board.time() < d["start"] + 86400
    assert d["power"][-1] == 321 and all(v is None for v in d["power"][:-1])


# ---- access control ---------------------------------------------------------------------------

@pytest.fixture
def locked(env):
    assert env.req("POST", "/api/config", body={"admin.password": PW}).status_code == 200
    return env


def test_every_write_route_of_every_feature_needs_the_password(locked):
    routes = write_routes(locked.app)
    paths = {p for _m, p in routes}
    assert {"/api/config", "/api/power-limit", "/api/dtu/reboot", "/api/inverter/restart",
            "/api/factory-reset"} <= paths, paths
    for method, path in routes:
        for spelling in (method, method.lower(), method.capitalize(), method[0].lower() + method[1:]):
            r = locked.req(spelling, path, body={})
            assert r.status_code == 401, (spelling, path, r.status_code)
        assert "WWW-Authenticate" not in r.headers          # no login box in a browser
        assert r.json["error"]
        r = locked.req(method, path, body={}, headers=basic("not-it"))
        assert r.status_code in (401, 429), (method, path)
        # never let the lock-out of this loop hide the next route's answer
        locked.gw.auth.limiter.t.clear()
    assert locked.gw.settings.get("admin.password") == PW    # nothing got through
    assert locked.resets == 0


def test_basic_and_the_challenge(locked):
    r = locked.req("POST", "/api/power-limit", body={"limit": 40}, headers=basic(PW))
    assert r.status_code == 202, r.text
    r = locked.req("POST", "/api/power-limit", body={"limit": 40}, headers=basic("wrong"))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="DTU Gateway"'
    r = locked.req("POST", "/api/power-limit", body={"limit": 40}, headers=basic(PW, user="root"))
    assert r.status_code == 401


def test_cookie_session_with_csrf(locked):
    r = locked.req("POST", "/api/login", body={"password": PW}, cookies={})
    assert r.status_code == 200
    csrf = r.json["csrf"]
    cookie = r.headers["Set-Cookie"][0]
    assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie \
        and "Path=/" in cookie
    jar = {"session": cookie.split(";")[0].split("=", 1)[1]}
    r = locked.req("POST", "/api/power-limit", body={"limit": 30}, cookies=jar)
    assert (r.status_code, r.json) == (403, {"error": "missing or wrong CSRF token"})
    r = locked.req("POST", "/api/power-limit", body={"limit": 30}, cookies=jar,
                   headers={"X-CSRF-Token": csrf})
    assert r.status_code == 202
    s = locked.req("GET", "/api/session", cookies=jar).json
    assert s == {"auth_required": True, "logged_in": True, "protect_read": False, "csrf": csrf}
    assert locked.req("GET", "/api/session", cookies={}).json == {
        "auth_required": True, "logged_in": False, "protect_read": False}
    r = locked.req("POST", "/api/logout", cookies=jar)
    assert r.status_code == 200 and "Max-Age=0" in r.headers["Set-Cookie"][0]
    r = locked.req("POST", "/api/power-limit", body={"limit": 30}, cookies=jar,
                   headers={"X-CSRF-Token": csrf})
    assert r.status_code == 401
    for body in (b"{bad", b"[]", {"password": 5}):
        assert locked.req("POST", "/api/login", body=body).status_code == 400


def test_wrong_passwords_are_rate_limited(locked):
    for i in range(5):
        r = locked.req("POST", "/api/login", body={"password": "guess%d" % i})
        assert r.status_code == 401, i
    r = locked.req("POST", "/api/login", body={"password": PW})
    assert r.status_code == 429
    assert 0 < r.json["retry_after"] <= 30 and r.headers["Retry-After"] == str(r.json["retry_after"])
    r = locked.req("POST", "/api/config", body={}, headers=basic(PW))
    assert r.status_code == 429


def test_protect_read(locked):
    assert locked.req("GET", "/api/data").status_code == 200          # open by default
    r = locked.req("POST", "/api/config", body={"admin.protect_read": True}, headers=basic(PW))
    assert r.status_code == 200
    for path in ("/api/data", "/api/info", "/api/config", "/api/events", "/api/history"):
        assert locked.req("GET", path).status_code == 401, path
        assert locked.req("GET", path, headers=basic(PW)).status_code == 200, path
    assert locked.req("GET", "/api/session").json["protect_read"] is True
    assert locked.req("GET", "/").status_code == 200                   # the login page loads


def test_factory_reset_needs_the_password_and_resets(locked):
    assert locked.req("POST", "/api/factory-reset").status_code == 401
    locked.req("POST", "/api/config", body={"wifi.ssid": "HomeNet", "wifi.password": "home-pass-1"},
               headers=basic(PW))
    locked.step()
    assert locked.wm.state == "connected"
    r = locked.req("POST", "/api/factory-reset", headers=basic(PW))
    assert (r.status_code, r.json) == (202, {"ok": True, "rebooting": False})   # host: keeps running
    cfg = locked.req("GET", "/api/config").json
    assert cfg["wifi.ssid"] == "" and cfg["admin.password_set"] is False
    assert locked.wm.state == "ap" and locked.wifi.ap_active()
    assert locked.req("GET", "/generate_204").status_code == 302
    assert locked.req("GET", "/api/session").json["auth_required"] is False
    assert any("factory reset" in e["msg"] for e in locked.req("GET", "/api/events").json["events"])


def test_factory_reset_restarts_a_board_after_the_reply(monkeypatch):
    monkeypatch.setattr(portal, "REBOOT_DELAY", 0.05)
    e = Env(name="esp32")
    try:
        async def scenario():
            r = await e.c.post("/api/factory-reset")
            assert (r.status_code, r.json) == (202, {"ok": True, "rebooting": True})
            assert e.resets == 0                 # not before the answer has gone
            for _ in range(100):
                await asyncio.sleep(0.01)
                if e.resets:
                    break
            return e.resets
        assert asyncio.run(scenario()) == 1
    finally:
        e.close()
