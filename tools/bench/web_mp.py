"""Runs under the unix MicroPython for tools/bench/web.py: Microdot plus the
web-app feature (gateway/web/webui.mpy) from the .mpy tree, serving build/web on
127.0.0.1:PORT, with three measuring endpoints:

    GET /bench/start   gc.collect(), gc off, note gc.mem_alloc()
    GET /bench/stop    bytes allocated since /bench/start; gc back on
    GET /bench/mem     heap in use after gc.collect()
    GET /bench/quit    stop the server

    micropython -X heapsize=512k tools/bench/web_mp.py TREE WWW_DIR PORT
Prints one JSON line (heap after each import step) once it listens.
"""
import gc
import sys

tree, www, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path[:0] = [tree + "/firmware", tree + "/lib", tree, tree + "/host_deps"]

gc.collect()
m0 = gc.mem_alloc()
import asyncio  # noqa: E402
import json  # noqa: E402

from microdot import Microdot  # noqa: E402

gc.collect()
m1 = gc.mem_alloc()
from gateway.web import webui  # noqa: E402


class _Board:
    www_dir = www


class _Gw:
    board = _Board()


app = Microdot()
ui = webui.attach(_Gw())
ui.routes(app)
gc.collect()
m2 = gc.mem_alloc()
_mark = [0]


@app.get("/bench/start")
async def start(req):
    gc.collect()
    gc.disable()
    _mark[0] = gc.mem_alloc()
    return "ok"


@app.get("/bench/stop")
async def stop(req):
    n = gc.mem_alloc() - _mark[0]
    gc.enable()
    return json.dumps({"alloc": n})


@app.get("/bench/mem")
async def mem(req):
    gc.collect()
    return json.dumps({"used": gc.mem_alloc(), "free": gc.mem_free()})


@app.get("/bench/quit")
async def quit_(req):
    app.shutdown()
    return "bye"


async def main():
    server = asyncio.create_task(app.start_server(host="127.0.0.1", port=port))
    await asyncio.sleep(0.2)
    print(json.dumps({"microdot": m1 - m0, "webui": m2 - m1, "files": len(ui.files)}))
    await server

asyncio.run(main())
