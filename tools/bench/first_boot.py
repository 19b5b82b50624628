#!/usr/bin/env python3
"""`make bench` section: the heap cost of the first-boot features (WiFi
manager, captive portal + DNS responder, access control, power history, the
rescue rung, the button) under the unix MicroPython, from .mpy as a board
loads them (tools/run_host.py build_mpy_tree()).

For each module: bytes kept after import (gc.collect() before and after;
the core gateway imported first). Single figures include MicroPython's qstr
pools, which grow in doubling steps, so the total is the fairer number. Then
what the objects keep at run time, and what one request or query allocates
(transient: collected again). The unix port is 64-bit: expect ~2/3 on a board.

    python3 tools/bench/first_boot.py          # prints the figures
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Runs under MicroPython (argv[1] = the .mpy tree).
_MP_SCRIPT = r'''
import sys, gc
root = sys.argv[1]
sys.path[:0] = [root + "/firmware", root + "/lib", root, root + "/host_deps"]

def used():
    gc.collect()
    return gc.mem_alloc()

out = []
def note(name, n):
    out.append("%s: %d B" % (name, n))

import asyncio, json
import microdot
import gateway.app     # the core (client, scheduler, link, settings, ...) is there anyway
base = used()
total = 0
for mod in ("gateway.mono", "gateway.setup.wifi_manager", "gateway.web.auth", "gateway.setup.portal",
            "gateway.history", "gateway.setup.dns", "gateway.setup.button", "gateway.link.rescue"):
    a = used()
    __import__(mod)
    n = used() - a
    total += n
    note("import " + mod, n)
note("import all of them", total)

from gateway.link.scheduler import Scheduler
from gateway import history
from gateway.setup import wifi_manager
from gateway.web import auth
from gateway.setup import dns
from gateway.setup import portal

class Settings:
    v = {"wifi.ssid": "", "wifi.password": "", "dtu.via": "lan", "dtu.ap_ssid": "",
         "dtu.ap_password": "", "admin.password": "pw", "admin.protect_read": False}
    def get(self, k):
        return self.v[k]
class Wifi:
    fixed = False
    ap = None
    def connected(self): return False
    def ssid(self): return ""
    def rssi(self): return 0
    def ip(self): return ""
    def status(self): return "idle"
    def connect(self, s, p): pass
    def disconnect(self): pass
    def scan(self): return [(b"net%d" % i, b"\0" * 6, 1 + i % 11, -40 - i, 3, False) for i in range(20)]
    def ap_start(self, s, p=""): self.ap = s
    def ap_stop(self): self.ap = None
    def ap_active(self): return self.ap is not None
    def ap_ssid(self): return self.ap or ""
    def ap_ip(self): return "192.168.4.1"
class Board:
    name = "bench"
    dns_addr = None
    def __init__(self): self.wifi = Wifi()
    def chip_id(self): return "c0ffee"
    def time(self): return 1718600000
class Events:
    def add(self, *a, **k): pass
class Link:
    dtu_ap = None
    rescue = None
    def wake(self): pass
class Gw:
    dtu_override = None
    def __init__(self):
        self.board, self.settings, self.events = Board(), Settings(), Events()
        self.sched, self.link = Scheduler(), Link()
        class C: host = ""
        self.client = C()
        self.safe_mode = {"active": False, "reason": ""}
        self.wifi_manager = self.auth = self.ota = None
    def tz_offset(self, now): return 3600
gw = Gw()

a = used()
wm = wifi_manager.attach(gw)
wm.step(1000)
note("WifiManager, in factory mode", used() - a)
a = used()
wm.scan()
note("its last scan (20 networks)", used() - a)

a = used()
au = auth.attach(gw)
note("Auth", used() - a)
a = used()
for i in range(4):
    au.login("pw", ("10.0.0.%d" % i, 1))
for i in range(8):
    au.login("wrong", ("10.0.1.%d" % i, 1))
note("4 sessions + 8 addresses in the lock-out table", used() - a)
sid = au.sessions[0]
h = {"X-CSRF-Token": sid[1], "Host": "gw"}
c = {"session": sid[0]}
gc.collect()
a = gc.mem_alloc()
for i in range(100):
    au.check("POST", "/api/config", h, c, ("10.0.0.0", 1))
note("per check() of a write with a session (transient)", (gc.mem_alloc() - a) // 100)

a = used()
hi = history.attach(gw)
for i in range(288):
    hi.add(1718582400 + i * 300, 400 + i, 0)
note("History, a full day", used() - a)
gc.collect()
a = gc.mem_alloc()
peak = 0
for piece in hi.chunks(1718582400 + 86399, 0):
    peak = max(peak, len(piece))
note("GET /api/history body, allocated over all pieces (transient)", gc.mem_alloc() - a)
note("its largest piece", peak)

a = used()
r = dns.Responder("192.168.4.1", "127.0.0.1", 0)
r.open()
note("DNS responder, open", used() - a)
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
gc.collect()
a = gc.mem_alloc()
for i in range(100):
    dns.answer(q, r.ip4, r._buf)
note("per DNS answer (transient)", (gc.mem_alloc() - a) // 100)
gc.collect()
a = gc.mem_alloc()
for i in range(100):
    r.poll()
note("per idle poll of the DNS socket (transient)", (gc.mem_alloc() - a) // 100)
r.close()

a = used()
p = portal.attach(gw)
note("Portal", used() - a)
print("\n".join(out))
'''


def bench():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import run_host
    tree = run_host.build_mpy_tree()
    mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    script = os.path.join(ROOT, "build", "bench_first_boot_mp.py")
    os.makedirs(os.path.dirname(script), exist_ok=True)
    with open(script, "w") as f:
        f.write(_MP_SCRIPT)
    r = subprocess.run([mp, "-X", "heapsize=512k", script, tree], capture_output=True, text=True,
                       timeout=120)
    if r.returncode:
        return "(failed: %s)" % (r.stdout + r.stderr).strip()[-500:]
    return r.stdout


if __name__ == "__main__":
    print(bench())
