"""The MQTT client (lib/mqtt) against a real broker, as a process of its own,
under CPython or the unix MicroPython (tests_host/e2e/test_mqtt_broker.py runs it).

    <python> tests_host/support/mqtt_live.py ROOT HOST PORT NAME [--user U] [--password P]
        [--ca FILE] [--hostname H] [--queue N] [--prefill N] [--keepalive S]

An echo client: availability at live/NAME/availability (will "offline",
birth "online", both retained); every message on live/NAME/in/<rest> comes
back on live/NAME/out/<rest> with the same payload, QoS 1 if the payload
starts with "q1", retained if <rest> ends with "/r". in/stop says goodbye
cleanly and exits 0. --prefill N queues N messages (out/pre/<i>) before the
first connect. One JSON object per line on stdout: {"ev": "connected", "n":
connects}, {"ev": "down", "err": ...}, {"ev": "msg", ...}, {"ev": "stats", ...}.
"""
import sys


def say(**kw):
    import json
    sys.stdout.write(json.dumps(kw) + "\n")
    try:
        sys.stdout.flush()
    except AttributeError:  # pragma: no cover - MicroPython's stdout is unbuffered
        pass


def main():
    root, host, port, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    opts = {"--user": "", "--password": "", "--ca": None, "--hostname": None, "--queue": "32",
            "--prefill": "0", "--keepalive": "60"}
    rest = sys.argv[5:]
    for i in range(0, len(rest), 2):
        opts[rest[i]] = rest[i + 1]
    sys.path[:0] = [root + "/lib", root + "/tools/host_shims"]   # micropython.const on CPython
    import asyncio
    from mqtt.client import MQTTClient
    from tlsctx import context as tls_context

    base = "live/" + name
    avail = base + "/availability"
    done = asyncio.Event()

    def on_message(topic, payload, retained):
        say(ev="msg", topic=topic, n=len(payload), retained=retained)
        sub = topic[len(base) + 4:]
        if sub == "stop":
            done.set()
            return
        c.publish(base + "/out/" + sub, payload, retain=sub.endswith("/r"),
                  qos=1 if payload[:2] == b"q1" else 0)

    def on_connect(cl):
        say(ev="connected", n=cl.connects)

    def on_disconnect(cl, err, was):
        say(ev="down", err="%s: %s" % (type(err).__name__, err), was=was)

    ssl = None
    if opts["--ca"]:
        with open(opts["--ca"], "rb") as f:
            ssl = tls_context(f.read())
    c = MQTTClient("live-" + name, host, port, opts["--user"], opts["--password"],
                   int(opts["--keepalive"]), ssl=ssl, server_hostname=opts["--hostname"],
                   will=(avail, b"offline", True, 1), birth=(avail, b"online", True, 1),
                   on_message=on_message, on_connect=on_connect, on_disconnect=on_disconnect)
    c.backoff_min = 0.2
    c.backoff_max = 1
    c.queue_size = int(opts["--queue"])
    c.subscribe(base + "/in/#", 1)
    for i in range(int(opts["--prefill"])):
        c.publish(base + "/out/pre/%d" % i, str(i))
    say(ev="start", dropped=c.dropped, pending=c.pending())

    async def run():
        task = asyncio.create_task(c.run())
        await done.wait()
        await c.disconnect()
        await asyncio.wait_for(task, 5)

    asyncio.run(run())
    say(ev="stats", connects=c.connects, dropped=c.dropped, sent=c.sent, received=c.received,
        errors=c.errors, skipped=c.skipped, last_error=c.last_error)


main()
