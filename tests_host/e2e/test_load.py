"""The web server under abuse, with fixed counts, under the unix MicroPython
at a board-sized heap (tools/run_host.py --micropython, as a board would run
it but on a PC), against the DTU simulator.

Board-sized: 320k. Host mode loads every module as .mpy into the heap (about
250 KB on this 64-bit port); at 320k about 60 KB stay free after the start,
what an ESP32 (110 KB heap) has left with the app frozen into its firmware
(about 33 KB held on the 32-bit board). 256k is the heap at which the issue
saw slowloris end the process, with 3-7 KB free after the start; the app has
grown since (too few KB are left there to start reliably), so the same
margin, ~7 KB, is run at TIGHT_HEAP (raised with the app: 264k until the
build profiles and the image update, 268k since). It is less than some answers need, so
answers are not promised (a 503, or a close when even that does not fit);
what must hold there through the slow phase is that nothing dies: the
process, the DTU link, every socket's close.

  slow phase: 60 slowloris connections held for 20 s (each reopened as soon
    as the gateway closes it, as the attack tool does) while a client polls
    /api/data once a second: at least 90 % of the polls answered within 2 s,
    the process alive, the DTU still polled, and no socket of the gateway in
    CLOSE-WAIT 10 s after the slow ones close;
  crowd phase: 40 concurrent clients x 25 requests (/api/data, /api/info,
    /api/config, /api/events, /metrics): every one answered, no 5xx.

The figures of each run go to tests_host/artifacts/load-<heap>.json; the
README's "Security" section quotes them.
"""
import json
import os
import socket
import threading
import time

import pytest

from support.env import ROOT, micropython_bin
from proc_util import child_pids, tcp_states
from support.gateway_proc import FAST, PROCS, raw_http, start_pair

BOARD_HEAP = "320k"
TIGHT_HEAP = "268k"          # a few KB free after the start (see above)
SLOW_CONNECTIONS, SLOW_SECONDS = 60, 20
CROWD_CLIENTS, CROWD_REQUESTS = 40, 25
CROWD_PATHS = ("/api/data", "/api/info", "/api/config", "/api/events", "/metrics")
ARTIFACTS = os.path.join(ROOT, "tests_host", "artifacts")

pytestmark = pytest.mark.skipif(not micropython_bin(), reason="no unix MicroPython")


def get(port, path, timeout):
    """(status, body) of GET path on a connection of its own; ConnectionError
    when it is closed without an answer."""
    status, body, _ = raw_http(port, b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode(), timeout)
    if status is None:
        raise ConnectionError("closed without an answer")
    return status, body


def served(gw, path, seconds=15):
    """The JSON of GET path once it is answered 200 in full (at TIGHT_HEAP a 503
    may come first, or an answer cut off where the heap ran out)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            status, body = get(gw.port, path, 5)
            if status == 200:
                return json.loads(body)
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, "no %s within %d s\n%s" % (path, seconds, gw.log())
        time.sleep(0.5)


def info_if_served(gw):
    """/api/info, or None when it is not answered within 15 s: at TIGHT_HEAP the
    heap may hold no answer this big (a few KB stay free after the start,
    and a DTU round in flight takes some of them)."""
    try:
        return served(gw, "/api/info")
    except AssertionError:
        return None


class Slowloris:
    """n connections that each send a request line and then a header line a
    second, never the end of the head; one the gateway closes is reopened."""

    def __init__(self, port, n):
        self.port, self.n = port, n
        self.stop = threading.Event()
        self.opened = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._one, daemon=True) for _ in range(n)]

    def start(self):
        for t in self._threads:
            t.start()

    def _one(self):
        while not self.stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            except OSError:
                time.sleep(0.1)
                continue
            with self._lock:
                self.opened += 1
            try:
                s.sendall(b"GET /api/data HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                while not self.stop.wait(1):
                    s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                pass                     # closed by the gateway: open the next one
            finally:
                s.close()

    def close(self):
        self.stop.set()
        for t in self._threads:
            t.join(35)


def dtu_connections(sim):
    return sim.counters()["counters"]["connections"]


def slow_phase(gw, sim):
    pids = child_pids(gw.proc.pid)
    c0 = dtu_connections(sim)
    attack = Slowloris(gw.port, SLOW_CONNECTIONS)
    attack.start()
    time.sleep(1)                         # every slow connection is open (or waiting) before the polls
    polls = []                            # seconds to an answer, or None
    t_end = time.monotonic() + SLOW_SECONDS - 1
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        try:
            status, body = get(gw.port, "/api/data", 10)
            polls.append(time.monotonic() - t0 if status == 200 and b'"inverter"' in body else None)
        except OSError:
            polls.append(None)
        time.sleep(max(0.0, 1 - (time.monotonic() - t0)))
    alive = gw.alive()
    attack.close()
    time.sleep(10)
    close_wait = tcp_states(gw.port, pids).get("CLOSE_WAIT", 0)
    answered = sorted(p for p in polls if p is not None)
    return {"polls": len(polls), "within_2s": sum(p <= 2 for p in answered),
            "answered": len(answered), "p50_s": round(answered[len(answered) // 2], 3) if answered else None,
            "max_s": round(answered[-1], 3) if answered else None, "slow_opened": attack.opened,
            "alive": alive, "close_wait_after_10s": close_wait,
            "dtu_rounds": dtu_connections(sim) - c0}


def crowd_phase(gw):
    results, lat, lock = [], [], threading.Lock()

    def client(i):
        for j in range(CROWD_REQUESTS):
            path = CROWD_PATHS[(i + j) % len(CROWD_PATHS)]
            t0 = time.monotonic()
            try:
                status, _ = get(gw.port, path, 30)
            except OSError as e:
                status = type(e).__name__
            with lock:
                results.append(status)
                lat.append(time.monotonic() - t0)
    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CROWD_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    lat.sort()
    counts = {}
    for r in results:
        counts[str(r)] = counts.get(str(r), 0) + 1
    return {"requests": len(results), "statuses": counts, "seconds": round(time.monotonic() - t0, 1),
            "p50_s": round(lat[len(lat) // 2], 3), "p99_s": round(lat[int(len(lat) * 0.99)], 3),
            "alive": gw.alive()}


def wait_rounds(sim, since, n, seconds=60):
    """DTU rounds (simulator connections) since `since`, once there are n (or
    the time is up)."""
    deadline = time.monotonic() + seconds
    while dtu_connections(sim) - since < n and time.monotonic() < deadline:
        time.sleep(0.5)
    return dtu_connections(sim) - since


def run_load(heap, workdir, crowd):
    """The figures of one heap (also written to tests_host/artifacts/), and
    the gateway's log."""
    sim, gw = start_pair("micropython", workdir, {"min_gap": 0},
                         {"dtu.cloud_pause": False, "dtu.interval": FAST}, heap=heap)
    try:
        idle = info_if_served(gw)
        fig = {"heap": heap, "free_after_start": idle and idle["heap"]["free"], "slow": slow_phase(gw, sim)}
        if crowd:
            c0 = dtu_connections(sim)
            fig["crowd"] = crowd_phase(gw)
            fig["dtu_rounds_after_crowd"] = wait_rounds(sim, c0, 2)
        fig["alive_at_end"] = gw.alive()
        info = info_if_served(gw)
        fig["http"], fig["free_after"] = (info["http"], info["heap"]["free"]) if info else (None, None)
        os.makedirs(ARTIFACTS, exist_ok=True)
        with open(os.path.join(ARTIFACTS, "load-%s.json" % heap), "w") as f:
            json.dump(fig, f, indent=1)
        print(json.dumps(fig))
        return fig, gw.log()
    finally:
        gw.stop()
        sim.stop()


_RUNS = {}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both heaps at once, each in a thread of its own (the slow phases
    overlap: the file takes one scenario's time, not two)."""
    def one(heap, crowd):
        try:
            _RUNS[heap] = run_load(heap, str(tmp_path_factory.mktemp("load-" + heap)), crowd)
        except BaseException as e:  # reported by the test that reads it
            _RUNS[heap] = e
    threads = [threading.Thread(target=one, args=(BOARD_HEAP, True)), threading.Thread(target=one, args=(TIGHT_HEAP, False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    yield _RUNS
    PROCS.stop_all()


def result(runs, heap):
    r = runs.get(heap)
    if isinstance(r, BaseException):
        raise r
    assert r is not None, "the %s run did not finish" % heap
    return r


def test_a_board_sized_heap_serves_through_slowloris_and_a_crowd(runs):
    fig, log = result(runs, BOARD_HEAP)
    slow, crowd = fig["slow"], fig["crowd"]
    assert slow["alive"] and crowd["alive"] and fig["alive_at_end"], (fig, log)
    assert slow["polls"] >= SLOW_SECONDS - 3, fig
    assert slow["within_2s"] >= 0.9 * slow["polls"], fig
    assert slow["slow_opened"] > SLOW_CONNECTIONS, fig        # the gateway closed slow ones (and they came back)
    assert slow["close_wait_after_10s"] == 0, fig
    # the DTU link went on: rounds every FAST s through the ~30 s of the slow phase, and after the crowd
    assert slow["dtu_rounds"] >= 3 and fig["dtu_rounds_after_crowd"] >= 2, fig
    assert crowd["requests"] == CROWD_CLIENTS * CROWD_REQUESTS
    assert crowd["statuses"] == {"200": CROWD_CLIENTS * CROWD_REQUESTS}, fig
    assert fig["http"]["noMemory"] == 0, fig


def test_the_heap_that_crashed_it_no_longer_does(runs):
    # the margin of 256k, where the issue saw 25-31 slowloris connections end
    # the process (see the docstring): the process, the DTU link and the closing of every
    # socket survive the slow phase; answers are not promised at this heap
    fig, log = result(runs, TIGHT_HEAP)
    slow = fig["slow"]
    assert slow["alive"] and fig["alive_at_end"], (fig, log)
    assert slow["slow_opened"] > SLOW_CONNECTIONS, fig        # slow ones were closed (and came back)
    assert slow["close_wait_after_10s"] == 0, fig
    assert slow["dtu_rounds"] >= 3, fig
