"""A simulated HMS-800W-2T DTU on a TCP port: asyncio around dtu_model.DtuModel.

    python3 tools/dtu_sim.py [--listen 127.0.0.1:10081] [--min-gap 31] [--no-cloud]
        [--encrypted] [--cloud-schedule 5min|15min] [--hang-seconds 1800] [--seed 1]
        [--getconfig-silent] [--packages N] [--time-offset S] [--tz-offset S]
        [--control 127.0.0.1:PORT] [--ap-listen HOST:PORT] [--dusk S] [--warning CODE@START[-END]]
        [--quiet]

--control serves a tiny HTTP API for out-of-process tests:
    GET  /counters                      counters, state and last_real_data (JSON)
    POST /fault   {"name": "drop", ...} switch a fault on (params as in set_fault)
    POST /clear   [{"name": "drop"}]    clear one fault, or all
    POST /reboot  [{"seconds": 40}]     reboot the DTU now
    POST /local-time {"at": 21600}      jump the DTU's local time to 06:00 (s of the day)
    POST /warning {"code": 141[, "end": true]}   the inverter raises (or ends) a warning

In tests:  sim = DtuSimulator(min_gap=0, cloud=False); await sim.start("127.0.0.1", 0)
           ... sim.port, sim.model ...; await sim.stop()

All behaviour lives in the model; this file only moves bytes. While the model
says the DTU is offline (rebooting) the listening socket is closed, so
connects are refused as with the real device.
"""
import asyncio
import json
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(_ROOT, "tools"), os.path.join(_ROOT, "tools", "host_shims"), _ROOT,
           os.path.join(_ROOT, "lib")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from dtu_model import DtuModel  # noqa: E402

WATCH_PERIOD = 0.05     # how often the server looks at the model's state


class DtuSimulator:
    def __init__(self, clock=time.time, log=None, **options):
        """`options` go to DtuModel; `log` is a callable(str) for one line per
        request (None: quiet)."""
        self.model = DtuModel(clock, **options)
        self.model.trace = log
        self.host = None
        self.port = None
        self.ap_port = None
        self.control_port = None
        self._listeners = {}        # ap flag -> [host, port, asyncio.Server or None]
        self._writers = {}          # model Conn -> StreamWriter
        self._control = None
        self._watch = None

    async def start(self, host="127.0.0.1", port=0, control=None, ap=None):
        """Listen on host:port (port 0: pick one, see .port). `control` and
        `ap` are optional (host, port) pairs for the control API and for the
        DTU's own access-point interface."""
        self.host = host
        self.port = await self._listen(False, host, port)
        if ap:
            self.ap_port = await self._listen(True, *ap)
        if control:
            self._control = await asyncio.start_server(self._serve_control, *control)
            self.control_port = self._control.sockets[0].getsockname()[1]
        self._watch = asyncio.ensure_future(self._watcher())
        return self

    async def stop(self):
        if self._watch:
            self._watch.cancel()
            try:
                await self._watch
            except asyncio.CancelledError:
                pass
        for entry in self._listeners.values():
            if entry[2] is not None:
                entry[2].close()
                entry[2] = None
        if self._control:
            self._control.close()
        for w in list(self._writers.values()):
            w.close()
        await asyncio.sleep(0)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.stop()

    # ---- listeners ------------------------------------------------------------

    async def _listen(self, ap, host, port):
        async def serve(reader, writer):
            await self._serve(reader, writer, ap)
        server = await asyncio.start_server(serve, host, port)
        port = server.sockets[0].getsockname()[1]
        self._listeners[ap] = [host, port, server]
        return port

    async def _watcher(self):
        # Mirror the model's state on the sockets: close the listeners while
        # the DTU reboots (connection refused), and drop the connections the
        # model has killed (reboot, a newer connection on a one-socket DTU).
        while True:
            offline = self.model.state() == "offline"
            for ap, entry in list(self._listeners.items()):
                if offline and entry[2] is not None:
                    entry[2].close()
                    entry[2] = None
                elif not offline and entry[2] is None:
                    try:
                        await self._listen(ap, entry[0], entry[1])
                    except OSError:
                        pass        # port still busy: try again next round
            for conn, writer in list(self._writers.items()):
                if conn.dead:
                    writer.close()
            await asyncio.sleep(WATCH_PERIOD)

    async def _serve(self, reader, writer, ap):
        conn = self.model.connect(ap=ap)
        if conn is None:            # rebooting; the listener is about to close
            writer.transport.abort()
            return
        self._writers[conn] = writer
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                reply = self.model.receive(conn, data)
                for delay, piece in reply.pieces:
                    if delay:
                        await asyncio.sleep(delay)
                    # hoymiles-wifi reads a reply with ONE read(1024): a
                    # normal reply must leave in one write.
                    writer.write(piece)
                    await writer.drain()
                if reply.close:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.pop(conn, None)
            self.model.disconnect(conn)
            writer.close()

    # ---- control API ------------------------------------------------------------

    async def _serve_control(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            status, result = self._control_call(method, path, json.loads(body) if body else {})
        except (ValueError, TypeError, asyncio.IncompleteReadError) as e:
            status, result = 400, {"error": str(e)}
        data = json.dumps(result).encode()
        writer.write(b"HTTP/1.0 %d %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (status, b"OK" if status == 200 else b"Error",
                                                     len(data)) + data)
        try:
            await writer.drain()
        finally:
            writer.close()

    def _control_call(self, method, path, args):
        m = self.model
        if method == "GET" and path == "/counters":
            st = m.status()
            # read-only: the last full RealDataNew sent, unscaled as on the wire
            st["last_real_data"] = m.last_real_data
            return 200, st
        if method == "POST" and path == "/fault":
            args = dict(args)
            m.set_fault(args.pop("name"), **args)
        elif method == "POST" and path == "/clear":
            m.clear_fault(args.get("name"))
        elif method == "POST" and path == "/reboot":
            m.set_fault("reboot", **args)
        elif method == "POST" and path == "/local-time":
            m.set_local_time(float(args["at"]))
        elif method == "POST" and path == "/warning":
            (m.end_warning if args.get("end") else m.start_warning)(int(args["code"]))
        else:
            return 404, {"error": "no such endpoint"}
        return 200, m.status()


# ---- command line ---------------------------------------------------------------

def _warning(text):
    code, _, when = text.partition("@")
    start, _, end = when.partition("-")
    return int(code), float(start or 0), float(end) if end else None


def _addr(text):
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def parse_args(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Simulated Hoymiles HMS-800W-2T DTU")
    p.add_argument("--listen", type=_addr, default=("127.0.0.1", 10081), metavar="HOST:PORT")
    p.add_argument("--min-gap", type=float, default=31.0,
                   help="seconds between request rounds and between writes; 0: no hang model")
    p.add_argument("--no-cloud", action="store_true", help="no cloud upload windows")
    p.add_argument("--cloud-schedule", choices=("5min", "15min"), default="5min")
    p.add_argument("--hang-seconds", type=float, default=1800.0)
    p.add_argument("--encrypted", action="store_true", help="firmware V01.01.x: AES-GCM payloads")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--getconfig-silent", action="store_true", help="never answer GetConfig")
    p.add_argument("--packages", type=int, default=1, help="split RealDataNew into N packages")
    p.add_argument("--time-offset", type=float, default=0.0, help="shift the DTU clock (s)")
    p.add_argument("--tz-offset", type=int, default=0, help="DTU local time minus UTC (s)")
    p.add_argument("--reboot-seconds", type=float, default=40.0)
    p.add_argument("--apply-delay", type=float, default=3.0)
    p.add_argument("--control", type=_addr, metavar="HOST:PORT", help="HTTP control API")
    p.add_argument("--ap-listen", type=_addr, metavar="HOST:PORT",
                   help="the DTU's own access-point interface (exempt from the rules)")
    p.add_argument("--dusk", type=float, default=None, metavar="SECONDS",
                   help="the field's dusk: every value 0 (lifetime counters too) for SECONDS after "
                        "sunset, then off the network until sunrise")
    p.add_argument("--warning", type=_warning, action="append", default=[], metavar="CODE@START[-END]",
                   help="the inverter raises warning CODE START s after the start (and ends it at END s); "
                        "repeatable, e.g. --warning 141@60-300")
    p.add_argument("--quiet", action="store_true", help="no per-request log on stderr")
    return p.parse_args(argv)


async def _main(args):
    def log(line):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    sim = DtuSimulator(
        log=None if args.quiet else log, seed=args.seed, encrypted=args.encrypted,
        min_gap=args.min_gap, hang_seconds=args.hang_seconds, cloud=not args.no_cloud,
        cloud_schedule=args.cloud_schedule, getconfig_silent=args.getconfig_silent,
        packages=args.packages, time_offset=args.time_offset, tz_offset=args.tz_offset,
        reboot_seconds=args.reboot_seconds, apply_delay=args.apply_delay, dusk_seconds=args.dusk,
        warnings=args.warning)
    await sim.start(*args.listen, control=args.control, ap=args.ap_listen)
    log("dtu_sim: DTU %s on %s:%d%s%s, min_gap %gs, cloud %s" % (
        sim.model.dtu_serial, args.listen[0], sim.port,
        " (encrypted)" if args.encrypted else "",
        ", control on %s:%d" % (args.control[0], sim.control_port) if args.control else "",
        args.min_gap, "off" if args.no_cloud else args.cloud_schedule))
    stop = asyncio.Event()
    try:
        import signal
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    except (ImportError, NotImplementedError, RuntimeError):  # pragma: no cover - Windows
        pass
    try:
        await stop.wait()
    finally:
        await sim.stop()
        log("dtu_sim: stopped; counters %s" % json.dumps(sim.model.counters))


def main(argv=None):
    args = parse_args(argv)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
