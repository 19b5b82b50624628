"""tools/proc_util.py, the process and port helpers of the tests and the
benchmarks: stopping reaches the whole process group (a wrapper and the
child it starts, as .venv/bin/micropython does), ends a process that ignores
SIGTERM, and every wait ends by its deadline or when the process is gone."""
import signal
import socket
import subprocess
import sys
import time

import pytest

from proc_util import Procs, free_port, port_open, start, stop, tail, wait_for, wait_port

PY = sys.executable
# a wrapper that starts a child and prints its pid, then waits (as the venv's micropython)
WRAPPER = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', "
           "'import time; time.sleep(60)']); print(c.pid, flush=True); time.sleep(60)")


def gone(pid):
    """No such process, or only its zombie (reparented, not reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_gone(pid, seconds=5):
    return wait_for(lambda: gone(pid), seconds, step=0.02)


def test_stop_ends_the_wrapper_and_its_child():
    p = start([PY, "-c", WRAPPER], stdout=subprocess.PIPE)
    child = int(p.stdout.readline())
    assert not gone(child)
    t0 = time.monotonic()
    assert stop(p) == -signal.SIGTERM
    assert time.monotonic() - t0 < 5
    assert wait_gone(child), "the wrapper's child outlived stop()"
    p.stdout.close()


def test_a_process_that_ignores_sigterm_is_killed_in_bounded_time():
    p = start([PY, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                         "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    t0 = time.monotonic()
    assert stop(p, wait=0.3) == -signal.SIGKILL
    assert time.monotonic() - t0 < 3
    assert stop(p) == -signal.SIGKILL          # again: nothing left, no error
    assert stop(None) is None
    p.stdout.close()


def test_leftovers_of_an_ended_leader_are_killed():
    """The wrapper is gone already (killed alone); its child still holds the group."""
    p = start([PY, "-c", WRAPPER], stdout=subprocess.PIPE)
    child = int(p.stdout.readline())
    p.kill()
    p.wait(5)
    assert not gone(child)
    stop(p)
    assert wait_gone(child)
    p.stdout.close()


def test_log_gets_stdout_and_stderr_and_tail_reads_its_end(tmp_path):
    log = str(tmp_path / "x.log")
    p = start([PY, "-c", "import sys; print('out' * 2000); print('ERR-END', file=sys.stderr)"], log=log)
    assert p.log == log and p.wait(10) == 0
    text = tail(log, 100)
    assert len(text) <= 100 and text.rstrip().endswith("ERR-END") and "out" in text
    assert "outout" in tail(log) and tail(str(tmp_path / "none")) == ""


def test_procs_stop_all_stops_what_is_left():
    procs = Procs()
    a = procs.start([PY, "-c", "import time; time.sleep(60)"])
    b = procs.start([PY, "-c", "import time; time.sleep(60)"])
    assert procs.stop(a) == -signal.SIGTERM
    procs.stop_all(signal.SIGKILL)
    assert b.returncode == -signal.SIGKILL
    procs.stop_all()                                  # empty: nothing to do


def test_free_ports_and_waiting_for_one():
    tcp, udp = free_port(), free_port(socket.SOCK_DGRAM)
    assert 0 < tcp < 65536 and 0 < udp < 65536
    assert not port_open(tcp)
    t0 = time.monotonic()
    assert wait_port(tcp, 0.3) is False                # nobody listens: the deadline ends it
    assert 0.3 <= time.monotonic() - t0 < 2
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    try:
        assert wait_port([srv.getsockname()[1]], 2) is True
    finally:
        srv.close()


def test_wait_for_returns_the_value_or_none():
    calls = []

    def third_time():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("not yet")
        return {"ok": 1}
    assert wait_for(third_time, 5, step=0.01) == {"ok": 1}
    with pytest.raises(KeyError):                     # not in retry: raised at once
        wait_for(lambda: {}["x"], 5)
    p = start([PY, "-c", "pass"])
    p.wait(10)
    t0 = time.monotonic()
    assert wait_for(lambda: None, 30, p) is None       # the process ended: no 30 s wait
    assert time.monotonic() - t0 < 1
    assert wait_for(lambda: 0, 0.1, step=0.01) is None
    stop(p)
