"""The web app (web_static/) in a real browser: headless Chromium from Debian
(/usr/bin/chromium), driven by playwright-core (package.json) through
tests_host/web/browser.mjs, against the gateway in host mode (tools/run_host.py)
and the DTU simulator (tools/dtu_sim.py), each a separate process.

  - the files: gzipped, the right Content-Type, Cache-Control (hashed assets
    for a year, index.html revalidated by ETag -> 304), HEAD, under 30 KB,
    on CPython and on the unix MicroPython;
  - the dashboard shows the simulator's values (read around a moment when no
    DTU round ran in between, compared with the RealDataNew the simulator
    sent) and the chart of /api/history;
  - a limit set in the page shows pending at once and applied once the
    simulated DTU has it;
  - a bad setting gets the server's 400 message next to its field;
  - factory mode (a fresh --data-dir, no --dtu): the first visit opens Setup,
    a scanned network is picked, the gateway joins, the dashboard shows the
    DTU's values; with the admin password set there, Settings asks for it;
  - screenshots of every page, phone and desktop, light and dark, in
    tests_host/artifacts/web/.

The page may load nothing from anywhere but the gateway: the driver blocks
and reports every other request, and every JavaScript error fails the test.
Everything listens on 127.0.0.1, on ports the kernel picks; every process is
stopped by the fixture that started it; every wait is bounded.
"""
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from http.client import HTTPConnection

import pytest

from support.env import ROOT, micropython_bin
from proc_util import Procs, free_port, tail, wait_for

PY = sys.executable
NODE = shutil.which("node")
CHROMIUM = "/usr/bin/chromium"
DRIVER = os.path.join(ROOT, "tests_host", "web", "browser.mjs")
ARTIFACTS = os.path.join(ROOT, "tests_host", "artifacts", "web")
BUILD = os.path.join(ROOT, "build", "web")
FAST = 5                        # dtu.interval (s) of the dashboard gateway
# MicroPython heap: the whole gateway with every feature keeps ~240 KB (64-bit
# unix port) after boot, so 256k is too tight; the web app's own share is in
# `make bench`.
from support.env import MP_HOST_HEAP as HEAP  # noqa: E402
MAX_WEB = 30 * 1024             # bytes, the whole web app gzipped
SCAN = [{"name": "HomeNet", "rssi": -48, "chan": 6},
        {"name": "Neighbour 5G", "rssi": -81, "chan": 36},
        {"name": "Cafe guest", "rssi": -67, "chan": 11, "open": True}]
WIFI_PASSWORD = "home-S3cret!"
ADMIN = "admin-S3cret"


def setup_module():
    missing = [what for what, ok in (
        ("node", NODE), ("Debian chromium (requirements-apt.txt)", os.path.exists(CHROMIUM)),
        ("playwright-core (package.json)", os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core"))))
        if not ok]
    assert not missing, "missing %s: run `make setup`" % ", ".join(missing)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)     # no stale screenshot passes for a new one
    os.makedirs(ARTIFACTS)


# ---- processes ---------------------------------------------------------------

_PROCS = Procs()                # every process started here; teardown_module stops what is left
stop = _PROCS.stop              # stop(p): its process group, SIGTERM then SIGKILL (tools/proc_util.py)


def spawn(cmd, log):
    """cmd in a process group of its own, stdout and stderr to the file log (p.log)."""
    return _PROCS.start(cmd, log=log, cwd=ROOT)


def teardown_module():
    _PROCS.stop_all()


def request(port, method, path, body=None, headers=None, timeout=5.0):
    """(status, headers dict with lower-case names, body bytes)."""
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = dict(headers or {})
        if body is not None:
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def get_json(port, path):
    status, _, body = request(port, "GET", path)
    assert status == 200, (path, status, body)
    return json.loads(body)


def midday_tz_offset():
    now = int(time.time())
    return (12 * 3600 - now % 86400) // 900 * 900


class Sim:
    def __init__(self, workdir):
        self.port, self.control = free_port(), free_port()
        self.proc = spawn([PY, os.path.join(ROOT, "tools", "dtu_sim.py"), "--listen", "127.0.0.1:%d" % self.port,
                           "--control", "127.0.0.1:%d" % self.control, "--min-gap", "0", "--no-cloud", "--quiet",
                           "--tz-offset=%d" % midday_tz_offset(), "--dusk", "20"], os.path.join(workdir, "sim.log"))
        assert wait_for(self.counters, 15, self.proc, retry=(OSError,)) is not None, \
            "simulator did not start:\n" + tail(self.proc.log)

    def counters(self):
        return get_json(self.control, "/counters")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.control


class Gw:
    """tools/run_host.py (which builds the web app first) as a process."""

    def __init__(self, workdir, runtime="cpython", dtu=None, settings=None, extra=()):
        self.port = free_port()
        self.runtime = runtime
        self.data_dir = tempfile.mkdtemp(dir=workdir, prefix="data-")
        if settings is not None:
            with open(os.path.join(self.data_dir, "settings.json"), "w") as f:
                json.dump(settings, f)
        cmd = [PY, os.path.join(ROOT, "tools", "run_host.py"), "--listen", "127.0.0.1:%d" % self.port,
               "--data-dir", self.data_dir] + list(extra)
        if dtu:
            cmd += ["--dtu", dtu]
        if runtime == "micropython":
            cmd += ["--micropython", "--heap", HEAP]
        self.proc = spawn(cmd, self.data_dir + ".log")
        self.base = "http://127.0.0.1:%d" % self.port

    def log(self):
        return "--- gateway log ---\n" + tail(self.proc.log)

    def wait(self, what, cond, seconds):
        deadline = time.monotonic() + seconds
        last = None
        while True:
            try:
                last = get_json(self.port, "/api/data")
                if cond(last):
                    return last
            except (OSError, ValueError):
                pass
            assert self.proc.poll() is None, "gateway exited\n" + self.log()
            assert time.monotonic() < deadline, "timed out waiting for %s: %s\n%s" % (what, last, self.log())
            time.sleep(0.1)

    def assert_clean(self):
        assert self.proc.poll() is None, "gateway exited\n" + self.log()
        text = tail(self.proc.log, 50000)
        assert "Traceback" not in text and "MemoryError" not in text, self.log()


def browse(scenario, base, timeout=60, **cfg):
    """Run one scenario of tests_host/web/browser.mjs; returns what it saw."""
    cfg.update(scenario=scenario, base=base, artifacts=ARTIFACTS, timeout=timeout)
    p = subprocess.Popen([NODE, DRIVER, json.dumps(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
        pytest.fail("browser driver hung (%s)\n%s" % (scenario, err.decode()[-3000:]))
    lines = out.decode().strip().splitlines()
    assert lines, "no answer from the browser driver (rc %s)\n%s" % (p.returncode, err.decode()[-3000:])
    r = json.loads(lines[-1])
    assert r["ok"] and p.returncode == 0, "%s failed at %r: %s\n%s" % (
        scenario, r.get("step"), r.get("error"), err.decode()[-2000:])
    assert r["external"] == [], "the page asked for outside resources: %s" % r["external"]
    assert r["errors"] == [], "JavaScript errors: %s" % r["errors"]
    return r


# ---- fixtures ------------------------------------------------------------------

@pytest.fixture(scope="module")
def workroot(tmp_path_factory):
    return str(tmp_path_factory.mktemp("web"))


_GWS = {}


def dashboard_gw(runtime, workroot):
    """One gateway per runtime, each against a simulator of its own, polling
    every FAST s (started at the first test that needs it)."""
    if runtime not in _GWS:
        if runtime == "micropython" and not micropython_bin():
            pytest.skip("no unix MicroPython")
        sim = Sim(workroot)
        g = Gw(workroot, runtime, dtu="127.0.0.1:%d" % sim.port,
               settings={"dtu.interval": FAST, "dtu.cloud_pause": False})
        g.sim = sim
        _GWS[runtime] = g
        g.wait("the first fresh data", lambda d: d["inverter"]["uptodate"] == 1, 30)
    return _GWS[runtime]


@pytest.fixture(scope="module")
def _gws():
    yield _GWS
    for g in _GWS.values():
        stop(g.proc)
        stop(g.sim.proc)
    _GWS.clear()


@pytest.fixture(scope="module")
def gw(workroot, _gws):
    return dashboard_gw("cpython", workroot)


@pytest.fixture(scope="module", params=["cpython", "micropython"])
def any_gw(request, workroot, _gws):
    return dashboard_gw(request.param, workroot)


# ---- helpers for the checks ----------------------------------------------------

def expected_from_wire(rd):
    """/api/data's values from the RealDataNew the simulator sent (unscaled
    wire integers): V/10, A/100, W/10, Wh/1000 -> kWh, degC/10, Hz/100; the
    grid's dE/tE are the sums over the PV ports."""
    sgs = (rd.get("sgs_data") or [{}])[0]
    pvs = sorted(rd.get("pv_data", []), key=lambda p: p.get("port_number", 0))
    out = {"inverter.temp": sgs.get("temperature", 0) / 10,
           "grid.v": sgs.get("voltage", 0) / 10, "grid.c": sgs.get("current", 0) / 100,
           "grid.p": sgs.get("active_power", 0) / 10, "grid.f": sgs.get("frequency", 0) / 100,
           "grid.dE": sum(p.get("energy_daily", 0) for p in pvs) / 1000,
           "grid.tE": sum(p.get("energy_total", 0) for p in pvs) / 1000}
    for i, p in enumerate(pvs):
        k = "pv%d." % i
        out.update({k + "v": p.get("voltage", 0) / 10, k + "c": p.get("current", 0) / 100,
                    k + "p": p.get("power", 0) / 10, k + "dE": p.get("energy_daily", 0) / 1000,
                    k + "tE": p.get("energy_total", 0) / 1000})
    return out


def assert_shows(values, expected):
    """Every number on the page equals the expected value to the decimals shown."""
    assert set(values) == set(expected), (sorted(values), sorted(expected))
    for k, text in values.items():
        decimals = len(text.split(".")[1]) if "." in text else 0
        assert float(text) == pytest.approx(expected[k], abs=0.5 * 10 ** -decimals + 1e-9), (k, text, expected[k])


def index_assets(html):
    return re.findall(r'(?:src|href)="([^"]+)"', html)


# ---- 1. the files ----------------------------------------------------------------

def test_files_are_gzipped_cached_and_small(any_gw):
    port = any_gw.port
    status, h, body = request(port, "GET", "/")
    assert status == 200, (status, h, body[:200])
    assert h["content-encoding"] == "gzip" and h["content-type"] == "text/html; charset=utf-8", h
    assert h["cache-control"] == "no-cache" and re.fullmatch(r'"[0-9a-f]{8}"', h["etag"]), h
    assert int(h["content-length"]) == len(body)
    html = gzip.decompress(body).decode()
    assert html.startswith("<!doctype html>")
    # everything the page refers to is on the gateway (relative) or inline (data:)
    refs = index_assets(html)
    assets = [r for r in refs if not r.startswith(("#", "data:", "/api/"))]
    assert all(not re.match(r"[a-z]+:", r) or r.startswith("data:") for r in refs), refs
    assert sorted(re.sub(r"\.[0-9a-f]{8}\.", ".", a) for a in assets) == ["app.css", "app.js"], assets
    total = len(body)
    for a in assets:
        status, h, data = request(port, "GET", "/" + a)
        assert status == 200, (a, status)
        assert h["content-encoding"] == "gzip", h
        assert h["content-type"] == ("text/css; charset=utf-8" if a.endswith(".css")
                                     else "text/javascript; charset=utf-8"), h
        assert h["cache-control"] == "public, max-age=31536000, immutable", h
        assert int(h["content-length"]) == len(data)
        with open(os.path.join(BUILD, a + ".gz"), "rb") as f:
            assert data == f.read()                           # the stored bytes, as they are
        text = gzip.decompress(data).decode()
        assert not re.search(r"url\((?!data:)|@import|https?://(?!www\.w3\.org/2000/svg)[\w.-]", text), a
        total += len(data)
    assert total < MAX_WEB, "web app is %d bytes gzipped" % total
    # revalidation: 304 without a body; HEAD: the headers only; /index.html is /
    etag = request(port, "GET", "/")[1]["etag"]
    status, h, data = request(port, "GET", "/", headers={"If-None-Match": etag})
    assert (status, data, h["etag"]) == (304, b"", etag), (status, h)
    status, h, data = request(port, "GET", "/", headers={"If-None-Match": '"00000000"'})
    assert status == 200 and data == body
    status, h, data = request(port, "HEAD", "/" + assets[0])
    assert status == 200 and data == b"" and h["content-encoding"] == "gzip", (status, h)
    assert request(port, "GET", "/index.html")[2] == body
    assert request(port, "GET", "/app.00000000.js")[0] == 404
    any_gw.assert_clean()


# ---- 2. the dashboard -----------------------------------------------------------

def test_dashboard_shows_the_simulators_values_and_the_chart(any_gw):
    r = browse("dashboard", any_gw.base, sim_control=any_gw.sim.url)
    assert r["view"] == "view-dashboard"
    dom, rd = r["dom"], r["rd"]
    assert_shows(dom["values"], expected_from_wire(rd))
    assert float(dom["values"]["grid.p"]) > 0, "the simulated sun is up at its midday"
    assert (dom["conn"], dom["err"], dom["connText"]) == ("1", "0", "DTU connected"), dom
    assert dom["serial"] == rd["device_serial_number"] and dom["version"].startswith("V0"), dom
    assert dom["limitState"] in ("applied", "pending")
    # the chart: one point per 5-minute slot that has a value
    hist, chart = r["history"], r["chart"]
    assert hist is not None, "GET /api/history answered no history"
    n = sum(1 for v in hist["power"] if v is not None)
    assert n >= 1 and chart["points"] == n, (chart, hist)
    assert chart["line"] or chart["dots"] >= 1, chart
    assert "peak" in chart["label"] and "Peak" in chart["note"], chart
    assert {"00:00", "12:00", "24:00"} <= set(chart["labels"]), chart["labels"]
    any_gw.assert_clean()


# ---- 3. the power limit ---------------------------------------------------------

def test_limit_change_round_trips(gw):
    sim = gw.sim
    before = sim.counters()
    assert before["limit"] == 100
    r = browse("limit", gw.base, limit=55, apply_s=45, timeout=90)
    assert r["before"]["limitState"] == "applied" and r["before"]["limitValue"] == "100", r["before"]
    assert r["post"]["request"] == {"limit": 55}
    assert (r["post"]["status"], r["post"]["body"]) == (202, {"limit": 55, "pending": True})
    assert r["pending"]["limitState"] == "pending" and "55" in r["pending"]["limitText"], r["pending"]
    assert r["pending_after_ms"] < 3000
    assert r["applied"]["limitState"] == "applied" and r["applied"]["limitValue"] == "55", r["applied"]
    assert "Applied: 55 %" in r["applied"]["limitText"]
    c = sim.counters()
    assert c["limit"] == 55 and c["applied_limit"] == 55, c
    assert c["counters"]["limit_writes"] == before["counters"]["limit_writes"] + 1
    assert c["counters"]["hangs_induced"] == 0
    d = get_json(gw.port, "/api/data")["inverter"]
    assert (d["pLim"], d["pLimSet"], d["pending"]) == (55, 55, 0)
    gw.assert_clean()


# ---- 4. settings: the server's error next to its field ----------------------------

def test_validation_error_appears_next_to_its_field(gw):
    cfg = get_json(gw.port, "/api/config")
    secrets = sorted(k[:-4] for k in cfg if k.endswith("_set") and isinstance(cfg[k], bool))
    r = browse("settings", gw.base, bad_interval=1, ap_ssid="DTUBI-WEBTEST")
    # a form field, labelled, for every key of /api/config
    names = [f["name"] for f in r["fields"]]
    assert sorted(names) == sorted(k for k in cfg if k[:-4] not in secrets or not k.endswith("_set"))
    assert all(f["labelled"] for f in r["fields"]), [f for f in r["fields"] if not f["labelled"]]
    assert all(f["type"] == "password" for f in r["fields"] if f["name"] in secrets)
    # the bad value: only what changed, untouched secrets as null
    assert r["bad"]["request"] == dict({"dtu.interval": 1}, **{k: None for k in secrets}), r["bad"]["request"]
    assert r["bad"]["status"] == 400 and r["bad"]["body"]["field"] == "dtu.interval", r["bad"]
    e = r["error"]
    assert e["text"] == r["bad"]["body"]["error"] and e["visible"], e
    assert e["fieldKey"] == "dtu.interval" and e["fieldHasInput"], e
    assert e["ariaInvalid"] == "true" and e["describedBy"] and e["focused"] and e["errorsShown"] == 1, e
    # a good change saves, and the message goes
    assert r["good"]["request"] == dict({"dtu.ap_ssid": "DTUBI-WEBTEST"}, **{k: None for k in secrets})
    assert r["good"]["status"] == 200 and r["good"]["body"]["changed"] == ["dtu.ap_ssid"]
    assert r["ok_text"].startswith("Saved") and r["errors_left"] == 0, r
    after = get_json(gw.port, "/api/config")
    assert after["dtu.ap_ssid"] == "DTUBI-WEBTEST" and after["dtu.interval"] == FAST
    assert {k: after[k + "_set"] for k in secrets} == {k: cfg[k + "_set"] for k in secrets}
    gw.assert_clean()


# ---- 5. screenshots ---------------------------------------------------------------

def check_screens(r, pages):
    for page in pages:
        for size in ("phone", "desktop"):
            for scheme in ("light", "dark"):
                key = "%s-%s-%s" % (page, size, scheme)
                assert r[key]["view"] == "view-" + page, (key, r[key])
                assert not r[key]["overflow"], "%s scrolls sideways" % key
                path = os.path.join(ARTIFACTS, key + ".png")
                with open(path, "rb") as f:
                    assert f.read(8) == b"\x89PNG\r\n\x1a\n", path


def test_screenshots_of_dashboard_settings_login(gw):
    pages = ["dashboard", "settings", "login"]
    r = browse("screens", gw.base, pages=pages, timeout=90)
    check_screens(r, pages)


def test_connection_state_in_words_with_the_reason_from_events(gw):
    r = browse("fault", gw.base, sim_control=gw.sim.url, fault={"name": "drop", "times": 1}, timeout=90)
    bad = r["bad"]
    words = {"3": "DTU reconnecting", "5": "DTU connection error", "0": "DTU offline"}
    assert bad["connText"] == words[bad["conn"]], bad
    # the reason is the newest event about the DTU link that is not just info
    newest = next(e for e in r["events"] if e["kind"] in ("dtu", "recovery", "wifi", "write", "config", "health")
                  and e["level"] != "info")
    assert bad["reason"].startswith(newest["msg"]), (bad["reason"], r["events"][:5])
    assert r["good"]["connText"] == "DTU connected" and r["good"]["reason"] == "", r["good"]
    gw.assert_clean()


def test_the_night_is_shown_as_night_not_as_a_fault(gw):
    # the shared simulator jumps to 19:59:55 (sunset at 20:00, 20 s of zeros,
    # then off the network) and back to noon
    r = browse("night", gw.base, sim_control=gw.sim.url, dusk_at=20 * 3600 - 5, morning_at=12 * 3600,
               timeout=180)
    night = r["night"]
    assert night["connText"] == "DTU asleep for the night", night
    assert night["dot"].split() == ["dot"], night              # grey: not the fault colours
    assert "every few minutes" in night["reason"] and "morning" in night["reason"], night
    assert float(night["values"]["grid.p"]) == 0 and float(night["values"]["grid.tE"]) > 0, night["values"]
    assert "kept until the morning" in night["age"], night
    assert r["morning"]["connText"] == "DTU connected", r["morning"]
    gw.assert_clean()


def test_a_warning_is_listed_while_active_and_then_as_ended(gw):
    # raw 8333 is 141 (grid overvoltage); the end is read at the next look
    # while a warning is active (WARN_ROUNDS rounds of FAST s)
    r = browse("warning", gw.base, sim_control=gw.sim.url, code=8333, code_shown=141, start_s=60,
               end_s=120, timeout=240)
    assert "141 Grid overvoltage" in r["active"] and "active" in r["active"], r
    assert r["count"] == "(1 active)", r
    assert "141 Grid overvoltage" in r["ended"] and "active" not in r["ended"], r
    assert r["countAfter"] == "", r
    gw.assert_clean()


# ---- 6. first boot ------------------------------------------------------------------

def test_setup_flow_from_factory_mode(workroot):
    scan = os.path.join(workroot, "scan.json")
    with open(scan, "w") as f:
        json.dump(SCAN, f)
    sim = Sim(workroot)
    g = Gw(workroot, extra=["--wifi-scan", scan])        # a fresh --data-dir, no --dtu: factory mode
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                w = get_json(g.port, "/api/wifi")
                break
            except OSError:
                assert g.proc.poll() is None and time.monotonic() < deadline, g.log()
                time.sleep(0.1)
        assert (w["state"], w["mode"], w["connected"]) == ("ap", "ap", False), w
        r = browse("screens", g.base, pages=["setup"], timeout=60)
        check_screens(r, ["setup"])
        r = browse("setup", g.base, ssid="HomeNet", wifi_password=WIFI_PASSWORD,
                   dtu="127.0.0.1:%d" % sim.port, admin=ADMIN, join_s=30, dash_s=45, timeout=120)
        assert (r["view"], r["hash"]) == ("view-setup", "#setup"), r
        # the scan, strongest first, with strength and channel
        assert [n["name"] for n in r["nets"]] == ["HomeNet", "Cafe guest", "Neighbour 5G"], r["nets"]
        assert re.fullmatch(r"\d+ % · -48 dBm · ch 6", r["nets"][0]["meta"]), r["nets"]
        assert r["nets"][1]["meta"].startswith("open · ") and all(n["labelled"] for n in r["nets"])
        assert r["ssid_field"] == "HomeNet"
        assert r["post"]["request"] == {"wifi.ssid": "HomeNet", "wifi.password": WIFI_PASSWORD,
                                        "dtu.host": "127.0.0.1", "dtu.port": sim.port,
                                        "admin.password": ADMIN}, r["post"]
        assert r["post"]["status"] == 200, r["post"]
        assert "Connected to “HomeNet”" in r["progress"], r["progress"]
        assert r["dash"]["conn"] == "1" and float(r["dash"]["values"]["grid.p"]) > 0, r["dash"]
        assert r["logged_in"], "the page logs in with the admin password it just set"
        cfg = get_json(g.port, "/api/config")
        assert (cfg["wifi.ssid"], cfg["wifi.password_set"], cfg["admin.password_set"],
                cfg["dtu.host"], cfg["dtu.port"]) == ("HomeNet", True, True, "127.0.0.1", sim.port), cfg
        w = get_json(g.port, "/api/wifi")
        assert w["connected"] and w["ssid"] == "HomeNet", w
        # with the password set, Settings asks for it; a wrong one is refused
        r = browse("login", g.base, admin=ADMIN, wrong="not-the-password")
        assert r["view"] == "view-login" and r["wrong"] == "Wrong password.", r
        assert r["after"] == "view-settings" and r["logout_visible"], r
        r = browse("screens", g.base, pages=["login"], timeout=60)
        check_screens(r, ["login"])
        g.assert_clean()
    finally:
        stop(g.proc)
        stop(sim.proc)


# ---- 7. the server side on its own ---------------------------------------------------

def test_serving_keeps_no_heap_under_micropython():
    """tools/bench/web.py's figures, as bounds: serving streams (a page load
    allocates far less than Microdot's per-request cost plus the files), and
    101 page loads keep no more heap than one."""
    if not micropython_bin():
        pytest.skip("no unix MicroPython")
    from bench import web as bench_web
    built = bench_web.sizes()
    first, page, reval, after_1, after_100, _ = bench_web.serve_figures(built)
    assert first["files"] == 3 and first["webui"] < 12 * 1024, first
    assert after_100 - after_1 <= 512, (after_1, after_100)
    assert 0 < reval < page, (reval, page)


def test_unbuilt_or_odd_web_folder(tmp_path):
    """No build: / explains how to get one (the API still answers); files
    not named NAME.HASH.EXT.gz are never served."""
    from microdot import Microdot
    from microdot.test_client import TestClient
    from gateway.web import webui

    def client(www):
        class Board:
            www_dir = www

        class G:
            board = Board()
        app = Microdot()
        webui.attach(G()).routes(app)
        return TestClient(app)

    import asyncio
    r = asyncio.run(client(str(tmp_path / "nothing")).get("/"))
    assert r.status_code == 200 and b"make web" in r.body
    for name in ("index.html.gz", "secret.txt", "app.1234.js.gz", "index.abcdef01.html.gz",
                 "app.abcdef01.js.gz.tmp1"):
        (tmp_path / name).write_bytes(gzip.compress(b"x" * 3000))
    c = client(str(tmp_path))
    r = asyncio.run(c.get("/"))
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip" and r.headers["ETag"] == '"abcdef01"'
    assert gzip.decompress(r.body) == b"x" * 3000            # streamed in chunks, whole
    for path in ("/index.html.gz", "/secret.txt", "/app.1234.js", "/app.abcdef01.js"):
        assert asyncio.run(c.get(path)).status_code == 404, path
    os.remove(tmp_path / "index.abcdef01.html.gz")           # rebuilt under a running gateway
    r = asyncio.run(c.get("/"))
    assert r.status_code == 503 and b"restart" in r.body


# ---- 8. safe mode: the page says why --------------------------------------------------

# A reason that would show differently through innerHTML (or lose characters).
SAFE_REASON = ('3 crashes in a row, each within 5 min of boot; last: MemoryError: <b>alloc</b> '
               '& "boom" at 0x3ffe')
SAFE_VIEWS = ("setup", "dashboard")

def browse_banner(base, visits, timeout=90):    # 9 visits with screenshots, as "screens"
    """What the safe-mode banner shows at each visit (browser.mjs scenario safe_mode)."""
    return browse("safe_mode", base, timeout=timeout, visits=visits)["visits"]


def host_gw(workroot, safe_reason=None):
    """tools/host_main.py on CPython in factory mode (simulated WiFi, scan list
    SCAN, no DTU), with --safe-mode REASON when given; -> (process, port)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import build_web
    build_web.build()                          # what tools/run_host.py does first
    scan = os.path.join(workroot, "safe-scan.json")
    with open(scan, "w") as f:
        json.dump(SCAN, f)
    port = free_port()
    data = tempfile.mkdtemp(dir=workroot, prefix="data-safe-" if safe_reason else "data-normal-")
    cmd = [PY, os.path.join(ROOT, "tools", "host_main.py"), ROOT, "--listen", "127.0.0.1:%d" % port,
           "--data-dir", data, "--www", BUILD, "--wifi-scan", scan]
    if safe_reason:
        cmd += ["--safe-mode", safe_reason]
    p = spawn(cmd, data + ".log")
    deadline = time.monotonic() + 20
    while True:
        try:
            get_json(port, "/api/info")
            return p, port
        except OSError:
            assert p.poll() is None and time.monotonic() < deadline, \
                "gateway did not start\n" + tail(p.log)
            time.sleep(0.1)


def test_safe_mode_banner_says_why(workroot):
    """In safe mode every view starts with a banner: the exact reason of
    /api/info "safeMode" (as text), what works and what to do, and a link to
    /safe-mode; screenshots of it, phone and desktop, light and dark."""
    p, port = host_gw(workroot, SAFE_REASON)
    try:
        info = get_json(port, "/api/info")
        assert info["safeMode"] == {"active": True, "reason": SAFE_REASON}, info["safeMode"]
        status, _, page = request(port, "GET", "/safe-mode")
        assert status == 200 and b"Safe mode" in page, (status, page[:200])
        w = get_json(port, "/api/wifi")                    # our AP is open: the way in
        assert w["mode"] in ("ap", "ap+sta") and w["ap_ssid"].startswith("DTU-Gateway-"), w
        visits = [["", "desktop", "light", ""]] + [
            [v, size, scheme, "safe-mode-%s-%s-%s" % (v, size, scheme)]
            for v in SAFE_VIEWS for size in ("phone", "desktop") for scheme in ("light", "dark")]
        seen = browse_banner("http://127.0.0.1:%d" % port, visits)
        assert len(seen) == len(visits)
        assert seen[0]["view"] == "view-setup", seen[0]      # factory mode opens Setup, banner above it
        for s in seen:
            assert s["view"] == "view-" + (s["key"].split("-")[0] or "setup"), s
            assert not s["hidden"] and s["shown"], s
            assert s["reason"] == info["safeMode"]["reason"] and s["reasonElements"] == 0, s
            assert s["text"].startswith("⚠ Safe mode Why: " + SAFE_REASON), s["text"]
            assert "does not talk to the DTU" in s["text"] and "restart" in s["text"], s["text"]
            assert s["link"] == "/safe-mode" and s["role"] == "alert", s
            assert 0 <= s["top"] < s["bottom"] <= s["height"], "the banner is not in view at the top: %s" % s
            assert not s["overflow"], "%s scrolls sideways" % s["key"]
            if s.get("shot"):
                with open(os.path.join(ARTIFACTS, s["shot"] + ".png"), "rb") as f:
                    assert f.read(8) == b"\x89PNG\r\n\x1a\n", s["shot"]
        text = tail(p.log, 50000)
        assert p.poll() is None and "Traceback" not in text, text
    finally:
        stop(p)


def test_no_safe_mode_banner_in_normal_mode(workroot):
    p, port = host_gw(workroot)
    try:
        assert get_json(port, "/api/info")["safeMode"] == {"active": False, "reason": ""}
        assert request(port, "GET", "/safe-mode")[0] in (302, 404)    # the captive portal's redirect
        seen = browse_banner("http://127.0.0.1:%d" % port,
                             [["", "desktop", "light", ""], ["dashboard", "phone", "dark", ""]])
        assert [s["view"] for s in seen] == ["view-setup", "view-dashboard"], seen
        for s in seen:
            assert s["hidden"] and not s["shown"] and s["reason"] == "", s
        assert p.poll() is None
    finally:
        stop(p)


# ---- 8. an image update from the Settings page ------------------------------------------

@pytest.mark.usefixtures("micropython")
def test_an_image_update_from_the_settings_page_shows_progress_restart_and_outcome(workroot):
    """The unix MicroPython as an ESP32 with two app slots
    (tests_host/support/image_board.py) and the GitHub stand-in: the page
    checks, offers the update, shows its progress, waits through the restart
    (this test starts the board again when it resets) and shows the new
    version on trial, then kept."""
    import threading
    from support import esp32_standin as flash
    from support.board_proc import BoardProc
    from support.gh_standin import Standin
    from support.image_release import image, release_assets
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import run_host
    d = tempfile.mkdtemp(dir=workroot)
    gh = Standin("dtu-gateway/dtu-gateway")
    gh.add_release("v0.2.0", release_assets(os.path.join(d, "rel"), "0.2.0", image("0.2.0")))
    fl, data = os.path.join(d, "flash"), os.path.join(d, "data")
    os.makedirs(data)
    flash.format_flash(fl, 48, image("0.1.0"))
    with open(os.path.join(data, "settings.json"), "w") as f:
        json.dump({"ota.api": gh.api_url, "ota.repo": "dtu-gateway/dtu-gateway"}, f)
    b = BoardProc("image_board.py", [run_host.build_mpy_tree(), fl], data, ["--www", run_host.build_web()])
    seen = {}

    def drive():
        try:
            seen["r"] = browse("update", "http://127.0.0.1:%d" % b.port, timeout=150)
        except BaseException as e:  # reported by the test's thread
            seen["error"] = e
    try:
        b.start()
        b.wait_up()
        b.wait_ota(lambda s: s["kept"])              # an update waits until the running app is kept
        t = threading.Thread(target=drive)
        t.start()
        rc, out = b.wait_exit(timeout=120)           # the reset after set_boot()
        assert rc == 3, out
        b.start()                                    # the bootloader boots the new slot
        t.join(200)
        assert not t.is_alive(), "the browser scenario did not end"
        if "error" in seen:
            raise seen["error"]
        r = seen["r"]
    finally:
        b.stop()
        gh.close()
    assert r["before"] == "Installed: 0.1.0 (app slot ota_0)", r
    assert r["available"] == "Version 0.2.0 is out." and r["button"] == "Update to 0.2.0", r
    # what the page went through, in order (it polls once a second: a short phase may
    # fall between two looks, the restart of a host process often does)
    phases = ["downloading", "verifying", "staged", "restarting", "applied-trial", "applied"]
    at = [phases.index(x) for x in r["states"]]
    assert r["states"][0] == "downloading" and r["states"][-1] == "applied" and at == sorted(at), r["states"]
    assert r["after"] == "Installed: 0.2.0 (app slot ota_1)", r
    assert r["last"] == "Last update: 0.2.0, kept", r
