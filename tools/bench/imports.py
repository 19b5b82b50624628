"""Where the heap goes: the heap each module keeps once imported, one after
the other (a module's cost includes what it imports first), then the cost of
constructing the Gateway with every feature attached. Runs under the unix
MicroPython (64-bit) and the WebAssembly port (32-bit, tools/bench/wasm.mjs),
from the .mpy tree of tools/run_host.py, optionally from a ROMFS image of it
(code executed in place, as on an ESP8266 with the FLASH_2M_ROMFS firmware).

    micropython tools/bench/imports.py TREE ORDER_FILE [ROMFS_IMAGE]
    node tools/bench/wasm.mjs TREE tools/bench/imports.py     (BENCH_ROOT = /tree;
                                                  TREE/app.romfs, if there, is mounted)
ORDER_FILE (TREE/order.txt under wasm) lists the modules in import order; a
line "profile=lean" builds the Gateway with that profile (gateway/profiles.py).

Prints "module bytes" lines, the qstr pool, then "loaded - a,b,c": the
modules a gateway holds after start (tools/bench/memory.py reads them).
"""
import gc
import os
import sys

try:
    ROOT = BENCH_ROOT   # noqa: F821 - set by tools/bench/wasm.mjs
    ORDER = ROOT + "/order.txt"
    IMAGE = ROOT + "/app.romfs" if "app.romfs" in os.listdir(ROOT) else None
except NameError:
    ROOT, ORDER = sys.argv[1], sys.argv[2]
    IMAGE = sys.argv[3] if len(sys.argv) > 3 else None

_state = {"mod": None, "before": 0, "img": None, "profile": None}


def _mount():
    import vfs
    f = open(IMAGE, "rb")
    _state["img"] = f.read()
    f.close()
    vfs.mount(vfs.VfsRom(_state["img"]), "/rom")
    return "/rom"


def _paths(root):
    sys.path[:0] = [root + "/firmware", root + "/lib", root, root + "/host_deps"]


def _modules(path):
    """The import order (tools/bench/memory.py writes it, leaves first, so
    each line costs what that module adds by itself)."""
    f = open(path)
    names = [n.strip() for n in f.read().split() if n.strip()]
    f.close()
    for n in names:
        if n.startswith("profile="):
            _state["profile"] = n[8:]
    return [n for n in names if not n.startswith("profile=")]


def _settle():
    """Report the module measured in the previous step (garbage is freed now)."""
    gc.collect()
    now = gc.mem_alloc()
    if _state["mod"] is not None:
        print("%s %d" % (_state["mod"], now - _state["before"]))
    _state["before"] = now
    return now


def _import(name):
    def step():
        _settle()
        _state["mod"] = name
        try:
            __import__(name)
        except Exception as e:  # a module this port cannot load (no socket, ...)
            print("%s n/a %s" % (name, type(e).__name__))
            _state["mod"] = None
    return step


def _gateway():
    _settle()
    _state["mod"] = "Gateway()"
    import asyncio
    if not hasattr(asyncio, "open_connection"):   # the WebAssembly port: no streams
        asyncio.open_connection = None
    from board.host import Board
    from gateway.app import Gateway
    d = "/tmp/gwbench"
    for p in ("/tmp", d):
        try:
            os.mkdir(p)
        except OSError:
            pass
    gw = Gateway(Board(data_dir=d), dtu_override="127.0.0.1:1", profile=_state["profile"])
    from gateway.web.api import make_app
    gw.api = make_app(gw)            # the routes, as gw.run() adds them
    _state["gw"] = gw


def _done():
    _settle()
    print("total %d" % gc.mem_alloc())
    # the interned names of the loaded code ("qstr pool: ... n_total_bytes=N"):
    # in the heap with .mpy files or ROMFS, in flash when the code is frozen
    try:
        import micropython
        micropython.qstr_info()
    except (ImportError, AttributeError):
        pass
    # what a running gateway holds (features that are off stay unloaded)
    print("loaded - " + ",".join(sorted(k for k in sys.modules)))


def _steps():
    root = ROOT
    if IMAGE:
        root = _mount()
        print("image %d" % len(_state["img"]))
    _paths(root)
    return [_import(m) for m in _modules(ORDER)] + [_gateway, _done]


STEPS = _steps()

if "BENCH_ROOT" not in globals():
    for _s in STEPS:
        _s()
