"""Nobody gets in, nothing falls over: the gateway as an attacker on the LAN
meets it, over real sockets, under CPython and under the unix MicroPython
(tools/run_host.py, as in test_gateway_e2e.py), with an admin password set.

  - every write route, in every spelling of its method, without
    credentials: 401/403/405, and nothing changes (settings file, the DTU's
    writes, the limit, the events); with credentials the odd spelling works;
  - requests the door refuses (gateway.web.httpd, lib/httphead.py): a negative
    or non-ASCII Content-Length, Transfer-Encoding, a head too large, bad
    bytes in the head, a request line that never ends: a 4xx JSON error,
    at once, and the server goes on;
  - bodies the API refuses (lib/strictjson.py, gateway.settings): JSON
    nested 1000 deep (the login too), lone surrogates, bytes that are not
    UTF-8, non-ASCII digits in a host, an update address that is not an
    http(s) URL: 400 with a JSON error, settings byte-identical;
  - a client that sends nothing, or its head a byte at a time, is answered
    408 and closed after HEAD_TIME; the connections served at once never
    exceed the board's http_clients (the others wait in the backlog).

The load under a board-sized heap is tests_host/e2e/test_load.py; generated
requests are tests_host/e2e/test_http_fuzz.py.
"""
import base64
import json
import os
import socket
import tempfile
import threading
import time

import pytest

from support.env import micropython_bin
from gateway.web import httpd
from proc_util import child_pids, tcp_states
from support.gateway_proc import FAST, PROCS, http, raw_http, start_pair

PW = "Adm1n-pass!"
SETTINGS = {"dtu.cloud_pause": False, "dtu.interval": FAST, "admin.password": PW}
AUTH = "Basic " + base64.b64encode(("admin:" + PW).encode()).decode()
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def spellings(method):
    """The method in lower case, capitalised and with its first letter small."""
    return (method.lower(), method.capitalize(), method[0].lower() + method[1:])


def write_routes():
    """(method, path) of every route of the full app that is not a read,
    taken from its URL map (with <args> filled in): features added later are
    covered too."""
    from board.host import Board, HostWifi
    from gateway.web.api import make_app
    from gateway.app import Gateway
    d = tempfile.mkdtemp(prefix="gw-routes-")
    gw = Gateway(Board(data_dir=d, wifi=HostWifi(fixed=False)))
    out = []
    for m, path in make_app(gw).routes():
        path = "/".join("x" if seg.startswith("<") else seg for seg in path.split("/"))
        if m in WRITES and path not in ("/api/login", "/api/logout"):
            out.append((m, path))
    return sorted(set(out))


def settings_bytes(gw):
    with open(os.path.join(gw.data_dir, "settings.json"), "rb") as f:
        return f.read()


def request(port, method, path, body=b"", headers=(), timeout=10.0):
    """(status, JSON body or raw bytes) of one request sent as raw bytes:
    the method goes out exactly as spelled."""
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n" % (method, path, port, len(body))
    for name, value in headers:
        head += "%s: %s\r\n" % (name, value)
    status, data, _ = raw_http(port, head.encode() + b"\r\n" + body, timeout)
    try:
        return status, json.loads(data)
    except ValueError:
        return status, data


def events_but_rounds(gw):
    """The event log without the link's own notes about rounds."""
    return [(e["kind"], e["msg"], e["count"]) for e in gw.get("/api/events")["events"] if e["kind"] != "link"]


@pytest.fixture(scope="module", params=["cpython", "micropython"])
def pair(request, tmp_path_factory):
    if request.param == "micropython" and not micropython_bin():
        pytest.skip("no unix MicroPython")
    wd = str(tmp_path_factory.mktemp("sec-" + request.param))
    sim, gw = start_pair(request.param, wd, {"min_gap": 0}, SETTINGS)
    try:
        yield sim, gw
        gw.assert_alive()
    finally:
        gw.stop()
        sim.stop()
        PROCS.stop_all()


# ---- 1. no spelling of a write gets in --------------------------------------------------

def test_no_spelling_of_a_write_gets_in(pair):
    sim, gw = pair
    routes = write_routes()
    assert {("POST", p) for p in ("/api/config", "/api/power-limit", "/api/dtu/reboot", "/api/inverter/restart",
                                  "/api/factory-reset", "/api/ota/check", "/api/ota/update",
                                  "/api/ota/upload")} <= set(routes), routes
    gw.wait_until("a fresh round", lambda d: d["inverter"]["uptodate"] == 1, 30)
    settings, events, writes = settings_bytes(gw), events_but_rounds(gw), sim.write_times()
    limit = gw.data()["inverter"]["pLimSet"]
    bodies = {"/api/config": {"admin.password": "", "dtu.host": "evil.example", "ota.api": "http://evil"},
              "/api/power-limit": {"limit": 3}}
    tried = 0
    for method, path in routes:
        body = json.dumps(bodies.get(path, {})).encode()
        for m in spellings(method) + ("PROPFIND", "foo"):
            status, resp = request(gw.port, m, path, body)
            assert status in (401, 403, 405), (m, path, status, resp)
            assert isinstance(resp, dict) and resp.get("error"), (m, path, resp)
            tried += 1
    assert tried >= 8 * 5
    # nothing changed: the settings file, the limit, the DTU's writes, the events
    assert settings_bytes(gw) == settings
    d = gw.data()
    assert (d["inverter"]["pLimSet"], d["inverter"]["pending"]) == (limit, 0)
    r0 = d["lastResponse"]
    gw.wait_until("a round after the attempts", lambda d: d["lastResponse"] > r0, 4 * FAST)
    assert sim.write_times() == writes
    assert events_but_rounds(gw) == events
    # the door normalises for the routing too: with credentials the odd spelling works
    status, resp = request(gw.port, "pOsT", "/api/power-limit", b'{"limit": 70}', [("Authorization", AUTH)])
    assert (status, resp) == (202, {"limit": 70, "pending": True})
    status, resp = request(gw.port, "post", "/api/power-limit", b'{"limit": 100}', [("Authorization", AUTH)])
    assert status == 202
    gw.assert_alive()


# ---- 2. what the door refuses ------------------------------------------------------------------

def test_the_answers_written_out_by_hand_are_well_formed():
    # 503 and 408 are sent as literal bytes (no heap needed to build them)
    for raw, status in ((httpd._OOM, 503), (httpd._SLOW, 408)):
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0].startswith("HTTP/1.0 %d " % status)
        fields = dict(line.split(": ", 1) for line in lines[1:])
        assert int(fields["Content-Length"]) == len(body)
        assert fields["Content-Type"] == "application/json" and json.loads(body)["error"]
    assert httpd._OOM.endswith(httpd._OOM_BODY)


DOOR = [
    # (raw request, expected status)
    (b"POST /api/login HTTP/1.1\r\nContent-Length: -1\r\n\r\n{}", 400),
    (b"POST /api/login HTTP/1.1\r\nContent-Length: -9223372036854775808\r\n\r\n", 400),
    ("POST /api/login HTTP/1.1\r\nContent-Length: \u0662\r\n\r\n{}".encode(), 400),
    (b"POST /api/login HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    (b"POST /api/login HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411),
    (b"POST /api/login HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 413),
    (b"GET /api/data HTTP/1.1\r\nX-Long: " + b"a" * 3000 + b"\r\n\r\n", 431),
    (b"GET /api/data HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(40)) + b"\r\n", 431),
    (b"GET /api/data HTTP/1.1\r\nX: \xff\xfe\r\n\r\n", 400),
    (b"GET /api/\x00data HTTP/1.1\r\n\r\n", 400),
    (b"GET http://127.0.0.1/api/data HTTP/1.1\r\n\r\n", 400),
    (b"GET /api/data HTTP/9.9\r\n\r\n", 400),
    (b"GET /api/data?x=%zz HTTP/1.1\r\n\r\n", 400),
    (b"GET /api/data\r\n\r\n", 400),
    (b" Host: x\r\n\r\n", 400),
    (b"GET /api/data HTTP/1.1\r\n Folded: x\r\n\r\n", 400),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 431),
    (b"GET /" + b"a" * 100000, 431),                 # a request line that never ends
]


def test_the_door_refuses_bad_requests(pair):
    sim, gw = pair
    settings = settings_bytes(gw)
    for raw, want in DOOR:
        t0 = time.monotonic()
        status, body, whole = raw_http(gw.port, raw, timeout=httpd.HEAD_TIME + 5)
        assert status == want, (raw[:80], whole[:300])
        assert json.loads(body)["error"], whole[:300]
        assert time.monotonic() - t0 < httpd.HEAD_TIME, raw[:80]      # answered, not timed out
    assert settings_bytes(gw) == settings
    assert gw.data()["inverter"]["uptodate"] in (0, 1)
    gw.assert_alive()


def bad_bodies():
    # nested 1000 deep, within the 2 KB a body may have (a longer one is a 413)
    deep = b"[" * 1000 + b"]" * 1000
    deeper = b"[" * 2040
    return [
        # (path, body, field or None); every one answered 400 with an error
        ("/api/login", deep, None),
        ("/api/login", deeper, None),
        ("/api/login", b'{"password": "\\ud800"}', None),
        ("/api/config", deep, None),
        ("/api/config", b'{"dtu":' * 250 + b"1" + b"}" * 250, None),
        ("/api/power-limit", deep, None),
        ("/api/config", b'{"admin.password": "x\\ud800y"}', None),
        ("/api/config", b'{"wifi.ssid": "\\udc00"}', None),
        ("/api/config", b'{"mqtt.topic": "a\\ud83d"}', None),
        ("/api/config", b'{"wifi.ssid": "\xff\xfe"}', None),
        ("/api/config", b'{"wifi.ssid": "\xed\xa0\x80"}', None),     # an encoded surrogate
        ("/api/config", b'{"wifi.ssid": "\xc0\xaf"}', None),         # an overlong form
        ("/api/power-limit", b'{"limit": 5\xff}', None),
        ("/api/config", '{"dtu.host": "\u0661\u0669\u0662.\u0661\u0666\u0668.\u0661.\u0665\u0660"}'.encode(),
         "dtu.host"),
        ("/api/config", '{"mqtt.host": "10.0.0.\uff11"}'.encode(), "mqtt.host"),
        ("/api/config", b'{"ota.api": "javascript:alert(1)"}', "ota.api"),
        ("/api/config", b'{"ota.api": "file:///data/settings.json"}', "ota.api"),
        ("/api/config", b'{"ota.api": "https://user:pw@evil.example"}', "ota.api"),
        ("/api/config", b'{"ota.repo": "javascript:alert(1)"}', "ota.repo"),
        ("/api/config", b'{"ota.repo": "../../etc"}', "ota.repo"),
    ]


def test_bad_bodies_get_400_and_change_nothing(pair):
    sim, gw = pair
    settings = settings_bytes(gw)
    config = gw.get("/api/config")
    for path, body, field in bad_bodies():
        headers = [("Content-Type", "application/json")]
        if path != "/api/login":
            headers.append(("Authorization", AUTH))
        status, resp = request(gw.port, "POST", path, body, headers)
        assert status == 400, (path, body[:60], status, resp)
        assert isinstance(resp, dict) and resp.get("error"), (path, body[:60], resp)
        if field is not None:
            assert resp.get("field") == field, (path, body[:60], resp)
    assert settings_bytes(gw) == settings
    assert gw.get("/api/config") == config
    # the password still is what it was: it opens, and nothing else does
    assert http(gw.port, "POST", "/api/login", {"password": PW})[0] == 200
    assert http(gw.port, "POST", "/api/login", {"password": ""})[0] == 401
    # a surrogate pair is a character: stored and given back as such
    status, resp = request(gw.port, "POST", "/api/config", b'{"dtu.ap_ssid": "DTU \\ud83d\\ude00"}',
                           [("Authorization", AUTH)])
    assert status == 200, resp
    assert gw.get("/api/config")["dtu.ap_ssid"] == "DTU \U0001F600"
    gw.assert_alive()


# ---- 3. slow and idle clients, and how many are served at once ------------------------------------

def _recv_all(s, until):
    data = b""
    while time.monotonic() < until:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            # the gateway closed while the client still sent (a trickler's
            # next header line): the kernel answers that with a reset
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def test_idle_and_trickling_clients_are_answered_408_and_closed(pair):
    sim, gw = pair
    idle = socket.create_connection(("127.0.0.1", gw.port), timeout=1)
    trickle = socket.create_connection(("127.0.0.1", gw.port), timeout=1)
    t0 = time.monotonic()
    closed = {}

    def drip():
        # a slowloris: a header line a second, never the end of the head
        trickle.sendall(b"GET /api/data HTTP/1.1\r\n")
        try:
            while time.monotonic() - t0 < httpd.HEAD_TIME + 10 and "trickle" not in closed:
                time.sleep(1)
                trickle.sendall(b"X-a: b\r\n")
        except OSError:
            pass
    th = threading.Thread(target=drip)
    th.start()
    for name, s in (("idle", idle), ("trickle", trickle)):
        s.settimeout(0.5)
        data, eof = _recv_all(s, t0 + httpd.HEAD_TIME + 10)
        closed[name] = time.monotonic() - t0
        assert eof and data.startswith(b"HTTP/1.0 408 "), (name, data)
        assert json.loads(data.partition(b"\r\n\r\n")[2])["error"]
        assert httpd.HEAD_TIME - 0.5 <= closed[name] <= httpd.HEAD_TIME + 3, closed
        s.close()
    th.join()
    assert gw.data()["inverter"]["uptodate"] in (0, 1)


def test_connections_beyond_the_cap_wait_in_the_backlog(pair):
    # 3 x http_clients idle connections: the gateway holds at most
    # http_clients of them at any time (its open sockets, counted by the
    # kernel), and a real request among them is answered
    from board.host import Board
    sim, gw = pair
    cap = Board.http_clients
    pids = child_pids(gw.proc.pid)
    assert pids

    def held():
        # connections the gateway has accepted and not closed (a listen
        # backlog's belong to no process)
        return sum(n for state, n in tcp_states(gw.port, pids).items() if state != "LISTEN")
    socks = [socket.create_connection(("127.0.0.1", gw.port), timeout=5) for _ in range(3 * cap)]
    try:
        seen = []
        t_end = time.monotonic() + 2
        while time.monotonic() < t_end:
            seen.append(held())
            time.sleep(0.01)
        assert 0 < max(seen) <= cap, (cap, seen, gw.log())
        status, resp = http(gw.port, "GET", "/api/data", timeout=10)
        assert status == 200 and "inverter" in resp, (status, resp)
    finally:
        for s in socks:
            s.close()
    # and every one of them is closed on the gateway's side soon after
    deadline = time.monotonic() + 10
    while tcp_states(gw.port, pids).get("CLOSE_WAIT", 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tcp_states(gw.port, pids).get("CLOSE_WAIT", 0) == 0
