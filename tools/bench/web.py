#!/usr/bin/env python3
"""The web app's figures for `make bench`:

  - its size, each file gzipped as served and the total (target < 30 KB);
  - under the unix MicroPython (64-bit, .mpy; boards read ~1.5x lower): the
    heap kept by the web-app feature (gateway/web/webui + its routes), the bytes
    allocated to serve one whole page load (index.html + app.js + app.css,
    gc off, the measuring requests subtracted) and a 304 revalidation, and
    the heap in use after 100 page loads against after one (no leak).

The server is tools/bench/web_mp.py (Microdot + webui only, no gateway), the
client this CPython process, on 127.0.0.1.
"""
import json
import os
import re
import select
import subprocess
import sys
from http.client import HTTPConnection, HTTPException

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from proc_util import free_port, start, stop, wait_for  # noqa: E402
TARGET = 30 * 1024


def _get(port, path, headers=None):
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def sizes():
    import build_web
    built = build_web.build()
    return {name: (fname, raw, z) for name, (fname, raw, z) in built.items()}


def serve_figures(built, heap="512k"):
    import build_web
    import run_host
    tree = run_host.build_mpy_tree()
    mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    port = free_port()
    # a group of its own: the venv's micropython is a wrapper that starts the real binary
    p = start([mp, "-X", "heapsize=" + heap, os.path.join(ROOT, "tools", "bench", "web_mp.py"),
               tree, build_web.OUT, str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        ready = select.select([p.stdout], [], [], 30)[0]       # its first line: the import costs
        first = json.loads(p.stdout.readline() or b"{}") if ready else None
        if first is None or not wait_for(lambda: _get(port, "/bench/mem"), 10, p, retry=(OSError,)):
            stop(p)
            raise SystemExit("bench_web_mp did not start: %s" % p.stderr.read().decode()[-500:])
        urls = ["/"] + ["/" + built[n][0][:-3] for n in ("app.js", "app.css")]

        def measured(fn):
            _get(port, "/bench/start")
            fn()
            return json.loads(_get(port, "/bench/stop")[1])["alloc"]

        def page_load():
            for u in urls:
                status, body = _get(port, u)
                assert status == 200 and body[:2] == b"\x1f\x8b", (u, status)

        etag = '"%s"' % re.match(r"index\.([0-9a-f]{8})\.", built["index.html"][0]).group(1)
        base = min(measured(lambda: None) for _ in range(3))
        page = min(measured(page_load) for _ in range(3)) - base
        reval = min(measured(lambda: _get(port, "/", {"If-None-Match": etag})) for _ in range(3)) - base
        miss = min(measured(lambda: _get(port, "/nothing-here")) for _ in range(3)) - base
        page_load()
        after_1 = json.loads(_get(port, "/bench/mem")[1])["used"]
        for _ in range(100):
            page_load()
        after_100 = json.loads(_get(port, "/bench/mem")[1])["used"]
        try:
            _get(port, "/bench/quit")
        except (OSError, HTTPException):
            pass              # the server may close before its answer is out
        p.wait(10)
        return first, page, reval, after_1, after_100, miss
    finally:
        stop(p)


def bench():
    built = sizes()
    lines = []
    total = 0
    for name in ("index.html", "app.js", "app.css"):
        fname, raw, z = built[name]
        total += z
        lines.append("web_%s_gzipped: %d B (%d B before gzip)" % (name.replace(".", "_"), z, raw))
    lines.append("web_total_gzipped: %d B (target < %d B: %s)" % (total, TARGET, "ok" if total < TARGET else "OVER"))
    first, page, reval, after_1, after_100, miss = serve_figures(built)
    lines += [
        "unix MicroPython (64-bit), .mpy, heap 512k:",
        "webui_heap_kept: %d B (gateway/web/webui + %d routes; Microdot itself %d B)"
        % (first["webui"], first["files"] + 1, first["microdot"]),
        "page_load_alloc: %d B allocated serving index+js+css (%d B on the wire; gc off)" % (page, total),
        "revalidate_304_alloc: %d B (Microdot answering a 404, for scale: %d B)" % (reval, miss),
        "heap_after_1_page_load: %d B" % after_1,
        "heap_after_101_page_loads: %d B (%+d B)" % (after_100, after_100 - after_1),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(bench())
