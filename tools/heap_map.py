"""Where a started gateway's heap goes, step by step (run under MicroPython:
the unix port, or a build with the app frozen in).

    <micropython> -X heapsize=100k tools/heap_map.py ROOT --dtu H:P --listen H:P --data-dir D
        [--without FEATURE]      (gateway.app's feature list without that one: what it costs)
        [--profile full|lean]    (gateway/profiles.py; default: the one the build carries)

tools/bench/memory.py runs it (--frozen BIN) and reads what it prints: for
each step a line "== step NAME free=N" followed by micropython.mem_info(1),
whose heap map marks each object's first block with its kind (T tuple,
L list, D dict, S str/bytes, A bytearray/array, F float, B function,
M module, h anything else; = the blocks that follow a head). ROOT as for
tools/host_main.py: an empty folder when the app is frozen into the binary.

The steps, each after gc.collect(): the interpreter alone; the imports of
gateway.app; Gateway() with each feature's attach() measured apart; the web
app (routes); the server and tasks started and the first DTU round done
(and MQTT connected with its discovery published when it is on); then the
first request of each kind, and 200 more requests.
Bench only: it starts the gateway the way tools/host_main.py does.
"""
import gc
import sys

import micropython


def opts(argv):
    o = {"--dtu": None, "--listen": "127.0.0.1:8080", "--data-dir": "data", "--without": None,
         "--profile": None}
    for i in range(0, len(argv), 2):
        o[argv[i]] = argv[i + 1]
    return o


def step(name):
    gc.collect()
    print("== step %s free=%d" % (name, gc.mem_free()))
    micropython.mem_info(1)
    print("== end")


def main():
    root = sys.argv[1]
    o = opts(sys.argv[2:])
    sys.path[:0] = [root + "/firmware", root + "/lib", root, root + "/host_deps", root + "/tools/host_shims"]
    step("interpreter")
    from gateway.selfheal import gc_while_loading
    gc_while_loading()
    import asyncio
    from board.host import Board, HostWifi
    from gateway import app as gwapp
    step("imports")

    # each feature's attach() measured apart
    costs = []
    features = gwapp.feature_modules

    class Measured:
        def __init__(self, mod):
            self.mod = mod
            self.__name__ = mod.__name__

        def attach(self, gw):
            gc.collect()
            a = gc.mem_free()
            f = self.mod.attach(gw)
            gc.collect()
            costs.append((self.__name__.split(".")[-1], a - gc.mem_free()))
            return f
    gwapp.feature_modules = lambda profile: [(n, Measured(m)) for n, m in features(profile)
                                             if n != o["--without"]]

    board = Board(data_dir=o["--data-dir"], chip_id="00c0ffee", wifi=HostWifi(fixed=True))
    from gateway import profiles
    profile = o["--profile"] or profiles.current()
    gwapp.feature_modules(profile)          # the feature modules' imports, apart from their objects
    step("feature imports")
    gw = gwapp.Gateway(board, dtu_override=o["--dtu"], profile=profile)
    for name, n in costs:
        print("== feature %s %d" % (name, n))
    step("gateway")
    from gateway.web.api import make_app
    gw.api = make_app(gw)
    step("routes")
    host, port = gwapp.split_host(o["--listen"], 8080)

    async def request(path):
        r, w = await asyncio.open_connection(host, port)
        w.write(b"GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path.encode())
        await w.drain()
        data = await r.read()
        await w.aclose()
        return data[9:12]

    async def scenario():
        gw.events.add("boot", "heap map")
        asyncio.create_task(gw.api.start_server(host=host, port=port))
        await asyncio.sleep(0.2)
        step("server listening")
        asyncio.create_task(gw.link.run())
        for _ in range(600):
            await asyncio.sleep(0.05)
            if gw.state.polls >= 1:
                break
        step("first DTU round")
        mqtt = gw.settings.get("mqtt.enabled")
        for f in gw.features:                    # each feature's run(), one after the other
            if not hasattr(f, "run"):
                continue
            asyncio.create_task(f.run())
            name = getattr(getattr(f, "spec", None), "name", None) or type(f).__module__
            is_mqtt = getattr(getattr(f, "spec", None), "key", None) == "mqtt.enabled"
            for _ in range(600 if is_mqtt and mqtt else 6):   # MQTT: connected and announced
                await asyncio.sleep(0.05)
                impl = getattr(f, "impl", None)
                if is_mqtt and impl is not None and impl.client is not None and impl.client.connected \
                        and not impl._announce and not impl._announcing:
                    break
            step("run " + name.split(".")[-1])
        step("running")
        for path in ("/api/data", "/api/info", "/api/config", "/metrics", "/api/events"):
            status = await request(path)
            step("first %s %s" % (path, status.decode()))
        for i in range(200):
            await request(("/api/data", "/api/info", "/api/config", "/metrics")[i % 4])
        step("after 200 requests")
        gw.stop()

    asyncio.run(scenario())


main()
