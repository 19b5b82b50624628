"""The same DtuClient under the unix MicroPython, against the simulator running
in this process (in a background thread with its own event loop)."""
import asyncio
import json
import subprocess
import threading
import time

import pytest

from dtu_sim import DtuSimulator
from support.env import ROOT, micropython_bin

MICROPYTHON = micropython_bin()     # make setup installs it: its absence fails the test


class SimThread:
    """A DtuSimulator serving from a thread, so a subprocess can talk to it
    while the test waits."""

    def __init__(self, **options):
        options.setdefault("min_gap", 0)
        options.setdefault("cloud", False)
        self.options = options
        self.sim = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self.sim = DtuSimulator(**self.options)
        self._loop.run_until_complete(self.sim.start("127.0.0.1", 0))
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(5)
        return self.sim

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


SCRIPT = r"""
import sys
sys.path.insert(0, %(root)r)
sys.path.insert(0, %(root)r + "/lib")
import asyncio
import json
import time
from dtu.client import DtuClient, DtuTimeout

def clock():
    return int(time.time())

async def main():
    out = {}
    c = DtuClient("127.0.0.1", %(port)d, clock=clock, timeout=2)
    out["real"] = await c.get_real_data()
    out["encrypted"] = c.cipher is not None
    out["limit_before"] = (await c.get_config()).get("limit_power_mypower", 0)
    out["tid"] = await c.set_power_limit(40)
    out["limit_after"] = (await c.get_config()).get("limit_power_mypower", 0)
    await c.close()
    silent = DtuClient("127.0.0.1", %(silent_port)d, clock=clock, timeout=0.5,
                       connect_timeout=0.5)
    try:
        await silent.get_real_data()
        out["silent"] = "answered"
    except DtuTimeout:
        out["silent"] = "timeout"
    await silent.close()
    print(json.dumps(out))

asyncio.run(main())
"""


@pytest.mark.parametrize("encrypted", [False, True])
def test_client_under_micropython(tmp_path, encrypted):
    now_offset = -(time.time() % 86400) + 12 * 3600    # the DTU at noon
    with SimThread(encrypted=encrypted, time_offset=now_offset) as sim, \
            SimThread(faults={"silent": {"duration": 3600}}) as silent:
        script = tmp_path / "client_mp.py"
        script.write_text(SCRIPT % {"root": ROOT, "port": sim.port,
                                    "silent_port": silent.port})
        proc = subprocess.run([MICROPYTHON, str(script)], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        m = sim.model
        assert out["real"] == m.last_real_data
        assert out["real"]["sgs_data"][0]["active_power"] > 0
        assert out["encrypted"] is encrypted
        assert (out["limit_before"], out["limit_after"]) == (1000, 400)
        assert m.limit == 40 and m.counters["limit_writes"] == 1
        assert m.counters["bad_frames_in"] == 0
        assert out["silent"] == "timeout"
        assert silent.model.counters["unanswered"] == 1
