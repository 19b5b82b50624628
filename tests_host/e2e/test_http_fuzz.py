"""Generated requests against the gateway's HTTP layer, over real sockets:
10 000 cases under CPython, 3 000 under the unix MicroPython (host mode,
tools/run_host.py), each gateway with an admin password and a DTU simulator.

A case is a request built from the parts an attacker on the LAN controls:
the request line (method spellings and garbage, the real routes and odd
paths, versions), the headers (Content-Length right, wrong, negative, huge,
twice, in other scripts' digits; Transfer-Encoding; Expect; right, wrong
and garbage credentials; cookies, Origin, CSRF tokens; junk headers, many
and long), the body (valid and invalid settings changes, limits, deep
nesting, surrogates, bytes that are not UTF-8, random bytes), line endings,
and last a few random byte flips, inserts and cuts. The client sends it,
half-closes, and reads the answer (test_gateway_e2e.raw_http).

Every case must get a 2xx or 4xx answer (an interim 100 Continue aside),
the process must stay alive, and the settings file must stay byte-identical
unless the case was a valid authenticated change (then the new bytes are the
reference). Seeded: a failure names its case and is reproducible.
"""
import base64
import json
import os
import random

import pytest

from support.env import micropython_bin
from support.gateway_proc import PROCS, raw_http, start_pair

PW = "Fuzz-admin-1"
AUTH = "Basic " + base64.b64encode(("admin:" + PW).encode()).decode()
SETTINGS = {"dtu.cloud_pause": False, "admin.password": PW,
            "ota.api": "http://127.0.0.1:9"}          # the discard port: an update check fails at once
CASES = {"cpython": 10000, "micropython": 3000}
SEED = 20261206

ROUTES = ["/api/data", "/api/info", "/api/config", "/api/events", "/api/session", "/api/login",
          "/api/logout", "/api/power-limit", "/api/dtu/reboot", "/api/inverter/restart",
          "/api/ota", "/api/ota/check", "/api/ota/update", "/api/ota/upload", "/api/wifi",
          "/api/history", "/metrics", "/", "/index.html", "/app.js", "/app.css", "/nowhere",
          "/api/nowhere", "/api/factory-reset"]
ODD_PATHS = ["//api/config", "/API/CONFIG", "/api/config/", "/api/../api/config", "/%61pi/config",
             "/api/config?x=%zz", "/api/config?%", "/api/data?a=1&a=2&b", "/api/config#x", "/" + "a" * 1500,
             "/\u00e4pi", "/api/\x01", "/api/ config", "*", "http://127.0.0.1/api/config", ""]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "post", "Post", "pOST", "get",
           "PROPFIND", "TRACE", "CONNECT", "FOO", "G ET", "", "GET\x00", "P" * 20, "\u00c4BC"]
VERSIONS = ["HTTP/1.1"] * 12 + ["HTTP/1.0"] * 4 + ["HTTP/2", "http/1.1", "HTTP/1.1 x", "", "HTTP/1.10"]
# changes a valid authenticated write may make: nothing that locks the fuzzer
# out (admin.*), points the DTU elsewhere or starts a feature
SAFE_CHANGES = [{"dtu.interval": 31}, {"dtu.interval": 45}, {"timezone": "UTC"},
                {"timezone": "CET-1CEST,M3.5.0,M10.5.0/3"}, {"mqtt.topic": "fuzz/gw"},
                {"openhab.item_prefix": "fz_"}, {"dtu.cloud_pause_seconds": 40}, {"dtu": {"interval": 33}}]
BAD_CHANGES = [{"dtu.interval": "40"}, {"dtu.interval": 1}, {"admin.password": 5}, {"nosuch": 1},
               {"dtu": {"nosuch": 1}}, {"ota.api": "javascript:alert(1)"}, {"ota.repo": "../x"},
               {"dtu.host": "\u0661\u0669\u0662.1.1.1"}, {"wifi.password": "short"}, {"timezone": "Mars/Base"},
               {"dtu.port": 70000}, {"mqtt.topic": "a/#"}, [], "text", None, 1.5]
LIMITS = [{"limit": 50}, {"limit": 101}, {"limit": -1}, {"limit": "50"}, {"limit": True}, {"limit": 50, "x": 1}]


def body_for(rng, path):
    """(body bytes, a valid authenticated change?) for path."""
    r = rng.random()
    if r < 0.35 and path == "/api/config":
        if rng.random() < 0.5:
            return json.dumps(rng.choice(SAFE_CHANGES)).encode(), True
        return json.dumps(rng.choice(BAD_CHANGES)).encode(), False
    if r < 0.45 and path == "/api/power-limit":
        return json.dumps(rng.choice(LIMITS)).encode(), False
    if r < 0.55:
        n = rng.choice([9, 100, 1000, 1020])
        return rng.choice([b"[" * n + b"]" * n, b'{"a":' * (n // 5) + b"1" + b"}" * (n // 5),
                           b"[" * (n * 2)]), False
    if r < 0.65:
        return rng.choice([b'{"wifi.ssid": "\\ud800"}', b'{"password": "\\udfff"}', b'{"s": "\\ud83d\\ude00"}',
                           b'{"wifi.ssid": "\xed\xa0\x80"}', b'{"wifi.ssid": "\xff"}', b'{"a": "\xc0\xaf"}',
                           b'{"password": "' + PW.encode() + b'"}']), False
    if r < 0.75:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300))), False
    if r < 0.8:
        return b"x" * rng.choice([2048, 2049, 5000]), False
    return b"", False


def headers_for(rng, body, port):
    """[(name, value)] and whether the credentials are the right ones."""
    h = []
    if rng.random() < 0.9:
        h.append(("Host", rng.choice(["127.0.0.1:%d" % port, "evil.example", "", "a" * 300])))
    cl = rng.random()
    if cl < 0.8:
        h.append(("Content-Length", str(len(body))))
    elif cl < 0.8:
        h.append(("Content-Length", rng.choice(["-1", "-0", "+5", "1e3", "0x10", "", " ", "99999999999999999999",
                                                "\u0663", "\uff11", str(len(body) + rng.randrange(1, 50)),
                                                str(max(0, len(body) - rng.randrange(1, 10)))])))
    elif cl < 0.85:
        h += [("Content-Length", str(len(body))), ("Content-Length", str(len(body) + 1))]
    elif cl < 0.9:
        h.append(("Transfer-Encoding", rng.choice(["chunked", "gzip, chunked", "identity"])))
    good = False
    a = rng.random()
    if a < 0.25:
        h.append(("Authorization", AUTH))
        good = True
    elif a < 0.32:
        h.append(("Authorization", rng.choice(["Basic " + base64.b64encode(b"admin:nope").decode(),
                                               "Basic !!!", "Bearer " + PW, "Basic", "basic " + AUTH[6:],
                                               "Basic " + base64.b64encode(b"\xff\xfe:x").decode()])))
    if rng.random() < 0.2:
        h.append(("Cookie", rng.choice(["session=" + "0" * 32, "session=", "a=b; session", ";;;", "=\x7f"])))
    if rng.random() < 0.2:
        h.append(("Origin", rng.choice(["http://evil.example", "http://127.0.0.1:%d" % port, "null", ""])))
    if rng.random() < 0.1:
        h.append(("X-CSRF-Token", rng.choice(["", "x" * 32, "\x00"])))
    if rng.random() < 0.1:
        h.append(("Expect", "100-continue"))
    if rng.random() < 0.1:
        h.append(("Content-Type", rng.choice(["application/json", "text/plain", "multipart/form-data; b=x"])))
    junk = rng.choice([0] * 12 + [1, 2, 3, 35])
    for _ in range(junk):
        if rng.random() < 0.8:
            h.append(("X-Junk", rng.choice(["v", "", " v ", "\u00e4\u00f6", "v" * rng.choice([10, 300])])))
        else:
            h.append((rng.choice(["X J", "X:J", "\u00e4", "X-\x01", ""]),
                      rng.choice(["v", "\x00", "v" * rng.choice([1100, 2500])])))
    return h, good


def case(rng, port):
    """(request bytes, valid authenticated settings change?)."""
    path = rng.choice(ROUTES) if rng.random() < 0.85 else rng.choice(ODD_PATHS)
    method = rng.choice(METHODS) if rng.random() < 0.4 else rng.choice(["GET", "POST", "post"])
    body, valid = body_for(rng, path)
    headers, good = headers_for(rng, body, port)
    if good and path == "/api/factory-reset":   # it would wipe the password: the fuzzer stays out
        headers.remove(("Authorization", AUTH))
        good = False
    eol = rng.choice(["\r\n"] * 16 + ["\n", "\r"])
    line = "%s %s %s" % (method, path, rng.choice(VERSIONS))
    raw = (eol.join([line] + ["%s: %s" % kv for kv in headers]) + eol + eol).encode() + body
    valid = valid and good and method.upper() == "POST" and path == "/api/config" and \
        eol == "\r\n" and ("Content-Length", str(len(body))) in headers and \
        not any(k in ("Transfer-Encoding", "Origin") or k.lower() == "content-length" and v != str(len(body))
                for k, v in headers)
    if rng.random() < 0.1:                   # a few random flips, inserts and cuts
        b = bytearray(raw)
        for _ in range(rng.randrange(1, 6)):
            op, i = rng.random(), rng.randrange(0, max(1, len(b)))
            if op < 0.4 and b:
                b[i] = rng.getrandbits(8)
            elif op < 0.7:
                b[i:i] = bytes([rng.getrandbits(8)])
            else:
                del b[max(1, i):]              # (a client that sends nothing gets nothing)
        raw, valid = bytes(b), False
    return raw, valid


def settings_bytes(gw):
    with open(os.path.join(gw.data_dir, "settings.json"), "rb") as f:
        return f.read()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_generated_requests_get_2xx_or_4xx_and_change_nothing(runtime, tmp_path):
    if runtime == "micropython" and not micropython_bin():
        pytest.skip("no unix MicroPython")
    sim, gw = start_pair(runtime, str(tmp_path), {"min_gap": 0}, SETTINGS, first_poll=False)
    rng = random.Random(SEED)
    try:
        ref = settings_bytes(gw)
        statuses = {}
        for n in range(CASES[runtime]):
            raw, valid = case(rng, gw.port)
            status, _, answer = raw_http(gw.port, raw, timeout=20)
            statuses[status] = statuses.get(status, 0) + 1
            assert status is not None and (200 <= status < 300 or 400 <= status < 500), \
                "case %d (seed %d): %r\n-> %r\n%s" % (n, SEED, raw[:600], answer[:300], gw.log())
            now = settings_bytes(gw)
            if now != ref:
                assert valid and status == 200, \
                    "case %d changed the settings: %r -> %d\n%s" % (n, raw[:600], status, answer[:300])
                ref = now
            if n % 500 == 0:
                gw.assert_alive()
        gw.assert_alive()
        assert http_ok(gw)
        # a mix that really exercised the door, the auth and the API
        assert statuses.get(200, 0) > 0.05 * CASES[runtime] and statuses.get(400, 0) > 0.1 * CASES[runtime]
        assert statuses.get(401, 0) > 0 and statuses.get(404, 0) > 0 and statuses.get(413, 0) > 0, statuses
        print(runtime, sorted(statuses.items()))
    finally:
        gw.stop()
        sim.stop()
        PROCS.stop_all()


def http_ok(gw):
    status, body, _ = raw_http(gw.port, b"GET /api/data HTTP/1.1\r\nHost: x\r\n\r\n")
    return status == 200 and b'"inverter"' in body
