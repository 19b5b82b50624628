"""Process and network helpers for the host side: the tests in tests_host/
and the benchmark scripts (tools/bench_*.py). Plain CPython; never on a board.

  - free_port(): a loopback port the kernel just handed out;
  - tail(): the end of a log file, for an assertion message;
  - start() / stop(): a child in a session (process group) of its own, and
    stopping that whole group: SIGTERM, a bounded wait, then SIGKILL for
    whatever is left. The group matters: .venv/bin/micropython is a Python
    wrapper that starts the real binary, and tools/run_host.py starts the
    interpreter as a child, so stopping only the first process would leave
    the one that holds the port;
  - Procs: the processes a test module started, so its safety net can stop
    what a failing test left;
  - wait_for() / port_open() / wait_port(): polling with a deadline.

Every wait here is bounded.
"""
import os
import signal
import socket
import subprocess
import threading
import time

LOOPBACK = "127.0.0.1"


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that is free right now (TCP, or UDP with
    kind=socket.SOCK_DGRAM): bound to port 0, the kernel's pick, released."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def tail(path, n=3000):
    """The last n bytes of the file at path as text ("" if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---- processes -----------------------------------------------------------------------------

def start(cmd, log=None, stdout=None, stderr=None, cwd=None, env=None):
    """Popen(cmd) in a new session (its own process group, see stop()), stdin
    from /dev/null. log: a file path that gets stdout and stderr (truncated
    first; the Popen's .log is that path); else stdout and stderr as for Popen."""
    f = None
    if log is not None:
        f = open(log, "wb")
        stdout, stderr = f, subprocess.STDOUT
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                             cwd=cwd, env=env, start_new_session=True)
    finally:
        if f is not None:
            f.close()          # the child has its own descriptor
    p.log = log
    return p


def _signal_group(p, sig):
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        # no such group: not started by start(), or gone already
        if p.poll() is None:
            p.send_signal(sig)
    except PermissionError:      # the pid was reused by a process that is not ours
        pass


def stop(p, sig=signal.SIGTERM, wait=5.0):
    """Stop the process group of p (started by start()): sig to the group,
    up to `wait` s for p to end, then SIGKILL to whatever is left of the group
    (also when p itself had already ended). -> p's exit status (None for p None)."""
    if p is None:
        return None
    if p.poll() is None:
        _signal_group(p, sig)
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(p, signal.SIGKILL)
    if p.poll() is None:
        p.wait(5)
    return p.returncode


class Procs:
    """The processes one test module started (thread-safe): start() them
    here, stop() each where it is done with, and stop_all() in the module's
    safety net for whatever a failing test left running."""

    def __init__(self):
        self._live = set()
        self._lock = threading.Lock()

    def start(self, cmd, **kw):
        p = start(cmd, **kw)
        with self._lock:
            self._live.add(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, wait=5.0):
        try:
            return stop(p, sig, wait)
        finally:
            with self._lock:
                self._live.discard(p)

    def stop_all(self, sig=signal.SIGTERM):
        with self._lock:
            left = list(self._live)
        for p in left:
            self.stop(p, sig)


# ---- waiting -------------------------------------------------------------------------------

def wait_for(fn, seconds, proc=None, step=0.05, retry=(OSError, ValueError)):
    """Call fn() until it returns something true and return that; an exception
    in `retry` counts as "not yet". None once `seconds` have passed or proc
    (a Popen) has ended first. fn itself must be bounded (socket timeouts)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            got = fn()
            if got:
                return got
        except retry:
            pass
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            return None
        time.sleep(step)


def port_open(port, host=LOOPBACK, timeout=0.5):
    """True when host:port accepts a TCP connection now."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def wait_port(ports, seconds=10, proc=None, host=LOOPBACK):
    """True once every port in `ports` (one port or several) accepts a TCP
    connection; False when `seconds` pass or proc ends first."""
    ports = [ports] if isinstance(ports, int) else list(ports)
    return bool(wait_for(lambda: all(port_open(p, host) for p in ports), seconds, proc, step=0.02))


# ---- what a process holds (Linux /proc) --------------------------------------------------------

_TCP = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
        "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN",
        "0B": "CLOSING"}


def child_pids(pid):
    """pid and every process below it (tools/run_host.py starts the
    interpreter that holds the gateway's sockets as a child)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass                      # ended meanwhile
    return out


def _socket_inodes(pids):
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    return inodes


def tcp_states(port, pids=None):
    """{state: count} of the TCP sockets on local port `port` (only those
    that the processes `pids` hold open, when given; a connection still
    waiting in a listen backlog belongs to no process), from /proc/net/tcp*."""
    inodes = _socket_inodes(pids) if pids else None
    out, seen = {}, set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) != port:
                continue
            if inodes is not None and cols[9] not in inodes:
                continue
            # the kernel hands the table out a page per read; when sockets come
            # and go between two reads (another test's hundreds of them), a
            # line can come twice: each connection is counted once
            key = (cols[1], cols[2], cols[9])
            if key in seen:
                continue
            seen.add(key)
            state = _TCP.get(cols[3], cols[3])
            out[state] = out.get(state, 0) + 1
    return out
