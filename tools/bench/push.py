#!/usr/bin/env python3
"""`make bench` figures for the push integrations (MQTT, Home Assistant
discovery, openHAB, /metrics), under the unix MicroPython (64-bit) from .mpy.

  - heap kept by each module once imported (what a feature costs while on;
    gateway.lazy is all that loads while they are off);
  - the MQTT client connected to a real Mosquitto, with Home Assistant
    discovery announced and a round of values published: heap kept, and
    the time to announce and to publish one round;
  - the whole gateway (host mode, against the simulator): heap in use after
    a few rounds with MQTT off and with MQTT + discovery on.

Run by tools/bench/run.py (bench()); this same file is the MicroPython side.
Mosquitto (Debian package) and the simulator listen on 127.0.0.1 only.
"""
import sys

MP = sys.implementation.name == "micropython"


# ---- the MicroPython side ------------------------------------------------------------------

def _mp_main(tree, port):
    import gc
    sys.path[:0] = [tree + "/firmware", tree + "/lib", tree, tree + "/host_deps"]
    import asyncio
    import json  # noqa: F401 - part of the baseline
    import time
    from gateway import app, state  # noqa: F401 - what the gateway has loaded anyway
    from gateway.web import api
    from gateway.link import scheduler
    for name in ("Event", "Lock", "wait_for", "open_connection", "sleep", "create_task"):
        getattr(asyncio, name)   # asyncio loads its parts on first use

    def used():
        gc.collect()
        gc.collect()
        return gc.mem_alloc()

    def cost(name):
        a = used()
        __import__(name)
        return used() - a

    out = []
    kb = {}
    for name in ("gateway.lazy", "mqtt.packet", "mqtt.client", "gateway.integrations.values", "gateway.integrations.mqtt_bridge",
                 "gateway.integrations.mqtt_ha", "gateway.integrations.openhab", "gateway.integrations.metrics"):
        kb[name] = cost(name) / 1024
        out.append("import_%s: %.1f KB" % (name, kb[name]))
    out.append("features_off_kept (gateway.lazy only): %.1f KB" % kb["gateway.lazy"])
    from gateway import lazy
    a = used()
    lazy.unload("gateway.integrations.mqtt_ha")
    out.append("discovery_tables_kept_after_unload (interned strings): %.1f KB"
               % (kb["gateway.integrations.mqtt_ha"] - (a - used()) / 1024))
    out.append("mqtt_on_code_kept (packet+client+values+bridge; discovery tables only while announcing): %.1f KB"
               % sum(kb[n] for n in ("mqtt.packet", "mqtt.client", "gateway.integrations.values", "gateway.integrations.mqtt_bridge")))

    from mqtt.client import MQTTClient
    from gateway.integrations import mqtt_ha
    from gateway.integrations import values
    st = state.LiveState(time.time())
    port_d = {"v": 35.1, "c": 8.25, "p": 290.4, "dE": 1.234, "tE": 1234.567}
    st.readings = {"grid": {"v": 230.1, "c": 2.5, "p": 575.2, "f": 50.01, "dE": 2.468, "tE": 2469.1},
                   "pv": [dict(port_d), dict(port_d)], "inverter": {"temp": 31.2, "limit": 100.0, "link": 1}}
    st.last_ok = time.time()
    sc = scheduler.Scheduler()
    b0 = used()

    async def go():
        c = MQTTClient("benchgw", "127.0.0.1", port, will=("bench/availability", b"offline", True, 1),
                       birth=("bench/availability", b"online", True, 1))
        c.subscribe("bench/set/+", 1)
        task = asyncio.create_task(c.run())
        for _ in range(500):
            if c.connected and not c.pending():
                break
            await asyncio.sleep(0.01)
        connected = used() - b0
        dev = mqtt_ha.device("00c0ffee", "0.1.0", "http://127.0.0.1/", "4143A0123456")
        t0 = time.ticks_ms()
        n = 0
        for topic, payload in mqtt_ha.configs("00c0ffee", "bench", dev):
            c.publish(topic, payload, True, 1)
            n += 1
            await c.room(4)
        while c.pending():
            await asyncio.sleep(0.005)
        announce = time.ticks_diff(time.ticks_ms(), t0)
        rounds = 50
        t0 = time.ticks_ms()
        for _ in range(rounds):
            for name, text in values.readings(st) + values.status(st, sc, time.time()):
                c.publish("bench/" + name, text, True)
            while c.pending():
                await asyncio.sleep(0.001)
        per_round = time.ticks_diff(time.ticks_ms(), t0) / rounds
        after = used() - b0
        await c.disconnect()
        await asyncio.wait_for(task, 5)
        return connected, n, announce, per_round, after, c

    connected, n, announce, per_round, after, c = asyncio.run(go())
    out.append("mqtt_client_connected_runtime: %.1f KB" % (connected / 1024))
    out.append("mqtt_after_discovery_and_%d_rounds_runtime: %.1f KB" % (50, after / 1024))
    out.append("discovery_configs: %d, announced_in: %d ms" % (n, announce))
    out.append("publish_one_round_of_24_values: %.1f ms" % per_round)
    out.append("mqtt_dropped: %d" % c.dropped)
    print("\n".join(out))


# ---- the CPython side ------------------------------------------------------------------------

def _host_side():
    import json
    import os
    import shutil
    import subprocess
    import tempfile
    import time
    from urllib.request import urlopen

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.join(root, "tools"))
    import run_host
    from proc_util import free_port, start, stop, wait_for, wait_port

    def mosquitto(folder):
        exe = next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if os.path.exists(p)),
                   shutil.which("mosquitto"))
        if exe is None:
            raise SystemExit("bench: mosquitto is not installed (make setup)")
        port = free_port()
        conf = os.path.join(folder, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n%s" % (
                port, "user root\n" if os.getuid() == 0 else ""))
        p = start([exe, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_port(port, 10, p):
            return p, port
        stop(p)
        raise SystemExit("bench: mosquitto did not start")

    def get(port, path):
        with urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return json.loads(r.read())

    def gateway_heap(tmp, sim_port, settings, heap="512k"):
        d = tempfile.mkdtemp(dir=tmp)
        with open(os.path.join(d, "settings.json"), "w") as f:
            json.dump(settings, f)
        port = free_port()
        # a group of its own: run_host.py starts the interpreter as a child
        gw = start([sys.executable, os.path.join(root, "tools", "run_host.py"), "--dtu",
                    "127.0.0.1:%d" % sim_port, "--listen", "127.0.0.1:%d" % port,
                    "--data-dir", d, "--micropython", "--heap", heap],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not wait_for(lambda: get(port, "/api/data")["inverter"]["uptodate"], 30, gw, step=0.1):
                raise SystemExit("bench: the gateway produced no data")
            time.sleep(12)     # a few rounds at 5 s
            return min(get(port, "/api/info")["heap"]["used"] for _ in range(5))
        finally:
            stop(gw)

    tree = run_host.build_mpy_tree()
    mp = os.environ.get("MICROPYTHON") or os.path.join(root, ".venv", "bin", "micropython")
    tmp = tempfile.mkdtemp(prefix="bench-mqtt-")
    broker, port = mosquitto(tmp)
    sim = None
    try:
        r = subprocess.run([mp, "-X", "heapsize=1m", os.path.abspath(__file__), tree, str(port)],
                           capture_output=True, text=True, timeout=300)
        if r.returncode:
            raise SystemExit("bench_mqtt failed:\n" + r.stdout + r.stderr)
        lines = r.stdout.strip().splitlines()
        sim_port = free_port()
        sim = start([sys.executable, os.path.join(root, "tools", "dtu_sim.py"), "--listen",
                     "127.0.0.1:%d" % sim_port, "--min-gap", "0", "--no-cloud", "--quiet",
                     "--tz-offset", str((12 * 3600 - int(time.time()) % 86400) // 900 * 900)])
        if not wait_port(sim_port, 15, sim):
            raise SystemExit("bench: the simulator did not start")
        base = {"dtu.cloud_pause": False, "dtu.interval": 5}
        off = gateway_heap(tmp, sim_port, base)
        on = gateway_heap(tmp, sim_port, dict(base, **{"mqtt.enabled": True, "mqtt.host": "127.0.0.1",
                                                       "mqtt.port": port}))
        lines.append("gateway_heap_used_mqtt_off: %.1f KB" % (off / 1024))
        lines.append("gateway_heap_used_mqtt_on_with_discovery: %.1f KB" % (on / 1024))
        lines.append("gateway_heap_cost_of_mqtt_with_discovery: %.1f KB" % ((on - off) / 1024))
        return "\n".join(lines)
    finally:
        stop(sim)
        stop(broker)
        shutil.rmtree(tmp, ignore_errors=True)


def bench():
    return _host_side()


if __name__ == "__main__":
    if MP:
        _mp_main(sys.argv[1], int(sys.argv[2]))
    else:
        print(bench())
