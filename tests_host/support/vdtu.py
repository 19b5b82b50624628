"""A virtual DTU for gateway tests: the simulator's model behind an in-memory
transport, on a virtual clock, so the real gateway (client, link, scheduler,
state) runs a simulated day in seconds.

Only one task ever waits (the gateway's DTU link), so virtual time simply
advances whenever it sleeps, sends, or waits for an answer that never comes.
"""
import asyncio
import errno
import os
import shutil
import tempfile

from dtu_model import DtuModel


class StopSim(BaseException):
    """The simulated time is over (a BaseException: it must pass the
    gateway's own `except Exception`, which keeps the link going)."""


class VClock:
    def __init__(self, t, until):
        self.t = float(t)
        self.until = until
        self.events = []        # [(time, callable)], run in order as time passes

    def __call__(self):
        return self.t

    def at(self, when, fn):
        self.events.append((when, fn))
        self.events.sort(key=lambda e: e[0])

    def advance(self, seconds):
        end = self.t + seconds
        while self.events and self.events[0][0] <= end:
            when, fn = self.events.pop(0)
            self.t = max(self.t, when)
            fn()
        self.t = end
        if self.t >= self.until:
            raise StopSim()

    async def sleep(self, seconds):
        self.advance(max(0.0, seconds))


class ModelStream:
    """Reader and writer of one TCP connection to the model."""

    def __init__(self, model, conn, clock, wait_timeout, latency):
        self.model, self.conn, self.clock = model, conn, clock
        self.wait_timeout = wait_timeout
        self.latency = latency
        self.pieces = []
        self.closed = False

    def write(self, data):
        reply = self.model.receive(self.conn, bytes(data))
        self.pieces.extend(reply.pieces)
        if reply.close:
            self.pieces.append((0.0, None))

    async def drain(self):
        self.clock.advance(self.latency)

    async def read(self, n):
        if not self.pieces:
            if self.closed:
                return b""
            # silence: the client's wait_for would fire after its timeout
            self.clock.advance(self.wait_timeout)
            raise asyncio.TimeoutError()
        delay, data = self.pieces.pop(0)
        self.clock.advance(delay + self.latency)
        if data is None:
            self.closed = True
            return b""
        if len(data) > n:
            self.pieces.insert(0, (0.0, data[n:]))
            data = data[:n]
        return data

    def close(self):
        self.closed = True
        if self.conn is not None:   # also after the DTU hung up: the socket is gone
            self.model.disconnect(self.conn)
            self.conn = None

    async def wait_closed(self):
        pass


def opener_for(model, clock, wait_timeout, latency=0.05):
    async def opener(host, port):
        clock.advance(latency)
        conn = model.connect()
        if conn is None:
            raise OSError(errno.ECONNREFUSED, "connection refused")
        s = ModelStream(model, conn, clock, wait_timeout, latency)
        return s, s
    return opener


class VirtualRun:
    """The real Gateway on a virtual DTU. `model_options` go to DtuModel."""

    def __init__(self, start, hours=24.0, settings=None, **model_options):
        from board.host import Board
        from gateway.app import Gateway

        self.clock = VClock(start, start + hours * 3600)
        self.model = DtuModel(self.clock, **model_options)
        self.dir = tempfile.mkdtemp(prefix="dtu-day-")
        clock = self.clock

        class VBoard(Board):
            def time(self):
                return clock()

        self.board = VBoard(data_dir=self.dir)
        self.gw = Gateway(self.board, dtu_override="dtu.sim:10081")
        if settings:
            self.gw.settings.update(settings)
        self.gw.client._open = opener_for(self.model, self.clock, self.gw.client.timeout)
        self.gw.link.sleep = self.clock.sleep
        self.ok_times = []          # gateway time of every answered round
        self.round_times = []
        self.crashes = []
        inner = self.gw.link.on_round

        def on_round(link):
            inner(link)
            self.round_times.append(self.gw.sched.last_round)  # round starts
            if self.gw.state.last_ok and (not self.ok_times or self.ok_times[-1] != self.gw.state.last_ok):
                self.ok_times.append(self.gw.state.last_ok)
            self.after_round()
        self.gw.link.on_round = on_round

    def after_round(self):
        pass

    def run(self):
        async def main():
            try:
                await self.gw.link.run()
            except StopSim:
                pass
        asyncio.run(main())
        return self

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def data_age_p95(self, start, end):
        """p95 of the data age over [start, end], sampled every second."""
        ages = []
        ok = [t for t in self.ok_times]
        j = 0
        last = None
        t = start
        while t < end:
            while j < len(ok) and ok[j] <= t:
                last = ok[j]
                j += 1
            ages.append(t - last if last is not None else float("inf"))
            t += 1.0
        ages.sort()
        return ages[int(0.95 * (len(ages) - 1))]


def day_start(year_day_unix=1718582400):
    """2024-06-17 00:00 UTC: a summer day, sunrise 06:00, sunset 20:00 (model)."""
    return float(year_day_unix)


__all__ = ["VirtualRun", "VClock", "StopSim", "day_start", "os"]
