#!/usr/bin/env python3
"""Whole-gateway figures for `make bench`, on CPython and the unix MicroPython:

  - seconds from process start to the first fresh /api/data;
  - heap in use after boot + 10 polls + 200 API requests, and after 2000
    requests (MicroPython; flat means no leak);
  - /api/data latency p50/p99 with 20 concurrent clients.

The simulator runs with its rules relaxed (--min-gap 0 --no-cloud) and the
gateway polls every 5 s, so 10 polls take under a minute. Loopback only.
"""
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from proc_util import free_port, start, stop, wait_for  # noqa: E402
PY = sys.executable
# Host mode loads all code into the heap (boards freeze it or run it from ROMFS):
# the same heap as the host-mode tests (tests_host/conftest.py MP_HOST_HEAP).
HOST_HEAP = "512k"


async def http(port, method="GET", path="/api/data", body=None):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    data = b"" if body is None else json.dumps(body).encode()
    w.write(("%s %s HTTP/1.0\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (method, path, len(data))).encode() + data)
    await w.drain()
    raw = await r.read()
    w.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def get(port, path, timeout=10):
    return json.loads(asyncio.run(asyncio.wait_for(http(port, path=path), timeout))[1])


def wait_fresh(port, seconds, proc):
    def fresh():
        d = get(port, "/api/data")
        return d if d["inverter"]["uptodate"] == 1 else None
    d = wait_for(fresh, seconds, proc, retry=(OSError, ValueError, IndexError))
    if d is None:
        raise SystemExit("gateway never produced fresh data")
    return d


async def load(port, clients, each, path="/api/data"):
    lat = []

    async def one():
        for _ in range(each):
            t0 = time.perf_counter()
            status, _ = await http(port, path=path)
            lat.append(time.perf_counter() - t0)
            assert status == 200
    await asyncio.gather(*[one() for _ in range(clients)])
    lat.sort()
    return lat


def bench(micropython):
    tmp = tempfile.mkdtemp(prefix="gw-bench-")
    sim_port, gw_port = free_port(), free_port()
    with open(os.path.join(tmp, "settings.json"), "w") as f:
        json.dump({"dtu.interval": 5, "dtu.cloud_pause": False}, f)
    sim = start([PY, os.path.join(ROOT, "tools", "dtu_sim.py"), "--listen",
                 "127.0.0.1:%d" % sim_port, "--min-gap", "0", "--no-cloud", "--quiet",
                 "--tz-offset", str(12 * 3600 - int(time.time()) % 86400)])
    cmd = [PY, os.path.join(ROOT, "tools", "run_host.py"), "--dtu", "127.0.0.1:%d" % sim_port,
           "--listen", "127.0.0.1:%d" % gw_port, "--data-dir", tmp]
    if micropython:
        cmd += ["--micropython", "--heap", HOST_HEAP]
        subprocess.run([PY, "-c", "import sys; sys.path.insert(0, %r); import run_host; run_host.build_mpy_tree()"
                        % os.path.join(ROOT, "tools")], check=True)
    out = []
    t0 = time.time()
    # own session: the venv's micropython is a wrapper that starts the real binary
    gw = start(cmd, stdout=subprocess.DEVNULL)
    try:
        wait_fresh(gw_port, 30, gw)
        out.append("start_to_first_data: %.2f s" % (time.time() - t0))
        polls0 = get(gw_port, "/api/info")
        time.sleep(47)   # 10 polls at the 5 s interval
        asyncio.run(load(gw_port, 1, 200))
        h1 = get(gw_port, "/api/info")["heap"]
        asyncio.run(load(gw_port, 10, 180))
        h2 = get(gw_port, "/api/info")["heap"]
        if h1["used"] is not None:
            out.append("heap_used_after_boot_10polls_200req: %.1f KB" % (h1["used"] / 1024))
            out.append("heap_used_after_2000req: %.1f KB" % (h2["used"] / 1024))
            out.append("heap_free_after_2000req: %.1f KB" % (h2["free"] / 1024))
            out.append("heap_used_at_boot: %.1f KB" % (polls0["heap"]["used"] / 1024))
        lat = asyncio.run(load(gw_port, 20, 25))
        out.append("api_data_latency_20_clients_p50: %.1f ms" % (lat[len(lat) // 2] * 1000))
        out.append("api_data_latency_20_clients_p99: %.1f ms" % (lat[int(len(lat) * 0.99) - 1] * 1000))
    finally:
        for p in (gw, sim):
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    return "\n".join(out)


if __name__ == "__main__":
    print(bench("--micropython" in sys.argv))
