"""The lean profile (gateway/profiles.py, the ESP8266's build) as a process
under both runtimes, with a real Mosquitto: it reads the DTU, answers the
seed's /api/data and /api/info, publishes Home Assistant discovery, takes a
power limit over MQTT and over the API (the admin password guards it), and
says in /api/info what it carries. What it leaves out is not served; that
none of it is ever imported is tests_host/unit/test_profiles.py's check."""
import base64
import json
import time
from http.client import HTTPConnection

from support.broker import Mosquitto, Watcher
from support.gateway_proc import FAST, SEED_DATA, SEED_INFO, http, missing_keys, start_pair

from gateway import profiles

BASE = "dtu-gateway/00c0ffee"
PW = "lean-secret-1"
SETTINGS = {"dtu.cloud_pause": False, "dtu.interval": FAST, "mqtt.enabled": True, "mqtt.host": "127.0.0.1",
            "mqtt.ha_discovery": True, "admin.password": PW}


def post_auth(port, path, body):
    conn = HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        auth = "Basic " + base64.b64encode(("admin:" + PW).encode()).decode()
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json", "Authorization": auth})
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def test_the_lean_profile_runs_what_it_carries_and_says_what_it_leaves_out(runtime, tmp_path):
    broker = Mosquitto(str(tmp_path / "broker"))
    w = sim = gw = None
    try:
        w = Watcher(broker.port)
        settings = dict(SETTINGS, **{"mqtt.port": broker.port})
        sim, gw = start_pair(runtime, str(tmp_path), {"min_gap": 0}, settings, profile="lean")
        info = gw.get("/api/info")
        assert info["profile"] == "lean" and info["features"] == list(profiles.features("lean"))
        for gone in ("openhab", "metrics", "history", "ota"):
            assert gone not in info["features"]
        assert missing_keys(SEED_INFO, info) == [] and missing_keys(SEED_DATA, gw.first) == []
        for path in ("/metrics", "/api/history", "/api/ota"):
            status, body = http(gw.port, "GET", path)
            assert status == 404 and "error" in body, (path, status, body)

        # Home Assistant discovery and the values, as on the full gateway
        limit_cfg = "homeassistant/number/dtu_gateway_00c0ffee/power_limit/config"
        w.until(lambda: w.last(limit_cfg) and w.last(BASE + "/grid/p"), 20, "discovery and values")
        assert json.loads(w.last(limit_cfg)[1])["command_topic"] == BASE + "/set/power_limit"

        # the limit: refused without the password, then over MQTT and over the API
        status, body = http(gw.port, "POST", "/api/power-limit", {"limit": 40})
        assert status == 401 and "error" in body
        w.publish(BASE + "/set/power_limit", "55")
        # the writes keep their 31 s spacing (the warning list read at connect is one)
        gw.wait_until("the MQTT limit on the DTU", lambda d: d["inverter"]["pLim"] == 55, FAST + 31 + 30)
        c = sim.counters()
        assert c["counters"]["limit_writes"] == 1 and c["limit"] == 55, c
        status, body = post_auth(gw.port, "/api/power-limit", {"limit": 70})
        assert status == 202 and body == {"limit": 70, "pending": True}   # queued with the scheduler
        assert gw.data()["inverter"]["pLimSet"] == 70
        time.sleep(0.5)
        gw.assert_alive()
        gw.assert_clean_log()
    finally:
        for x in (gw, sim, w, broker):
            if x is not None:
                (x.close if x is w else x.stop)()


def test_the_full_profile_lists_every_feature(tmp_path):
    sim, gw = start_pair("cpython", str(tmp_path), {"min_gap": 0}, {"dtu.cloud_pause": False})
    try:
        info = gw.get("/api/info")
        assert info["profile"] == "full" and info["features"] == list(profiles.features("full"))
        assert gw.get("/api/ota")["version"] == info["firmware"]["version"]
    finally:
        gw.stop()
        sim.stop()
