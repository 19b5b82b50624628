"""The MQTT client (lib/mqtt) against a real Mosquitto (the Debian package),
on CPython and on the unix MicroPython.

The broker is started per test on a loopback port with a mosquitto.conf
written into tmp_path: anonymous, with a password file (mosquitto_passwd),
and with a TLS listener whose CA and server certificate (127.0.0.1 and
localhost) are made here with `cryptography`. The client runs as a process
of its own (tests_host/mqtt_live.py, an echo client) under either runtime;
paho-mqtt is the independent client on the other side. A TCP proxy in
between cuts connections in the middle of a packet.

Mosquitto, Live, Watcher and make_ca are also used by test_integrations_e2e.py.
"""
import datetime
import ipaddress
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, micropython_bin
from proc_util import free_port, start, stop, wait_port

LIVE = os.path.join(ROOT, "tests_host", "mqtt_live.py")
_STARTED = []      # every Mosquitto and Live started: the safety net stops what is left


def _tool(name):
    for d in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return shutil.which(name)


# ---- a test CA ------------------------------------------------------------------------

def make_ca(folder, names=("localhost",), ips=("127.0.0.1",)):
    """{ca, ca_der, cert, key, other_ca}: paths of a CA, a server certificate
    it signed for `names` and `ips`, and an unrelated CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = ca("dtu-gateway test CA")
    _, other = ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(name(names[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    out = {}
    for k, data in (("ca", ca_cert.public_bytes(pem)), ("ca_der", ca_cert.public_bytes(serialization.Encoding.DER)),
                    ("cert", cert.public_bytes(pem)), ("other_ca", other.public_bytes(pem)),
                    ("key", key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                              serialization.NoEncryption()))):
        out[k] = os.path.join(folder, k + (".der" if k == "ca_der" else ".pem"))
        with open(out[k], "wb") as f:
            f.write(data)
    return out


# ---- the broker --------------------------------------------------------------------------

class Mosquitto:
    """mosquitto -c <folder>/mosquitto.conf on 127.0.0.1:<port> (and a TLS
    listener on .tls_port when tls=make_ca(...)); users = {name: password}."""

    def __init__(self, folder, users=None, tls=None):
        self.bin = _tool("mosquitto")
        if self.bin is None:
            pytest.fail("mosquitto is not installed: run `make setup` (requirements-apt.txt)")
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.conf = os.path.join(folder, "mosquitto.conf")
        self.log = os.path.join(folder, "mosquitto.log")
        lines = ["persistence false", "per_listener_settings false", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice", "log_type information"]
        if os.getuid() == 0:
            lines.append("user root")      # else it drops to 'mosquitto', who cannot read tmp_path
        if users:
            pw = os.path.join(folder, "passwd")
            open(pw, "w").close()
            for u, p in users.items():
                subprocess.run([_tool("mosquitto_passwd"), "-b", pw, u, p], check=True,
                               capture_output=True, timeout=10)
            lines += ["allow_anonymous false", "password_file " + pw]
        else:
            lines.append("allow_anonymous true")
        lines.append("listener %d 127.0.0.1" % self.port)
        if tls:
            lines += ["listener %d 127.0.0.1" % self.tls_port, "cafile " + tls["ca"],
                      "certfile " + tls["cert"], "keyfile " + tls["key"]]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        _STARTED.append(self)
        self.start()

    def start(self):
        self._log = open(self.log, "ab")
        self.proc = start([self.bin, "-c", self.conf], stdout=self._log, stderr=self._log)
        if not wait_port([self.port] + ([self.tls_port] if self.tls_port else []), 10, self.proc):
            self.stop()
            pytest.fail("mosquitto did not start:\n" + self.text())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        p, self.proc = self.proc, None
        if p is not None:
            stop(p)
            self._log.close()

    def restart(self):
        self.stop()
        self.start()

    def text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""


@pytest.fixture(scope="module", autouse=True)
def _no_leftovers():
    yield
    for x in _STARTED:
        try:
            x.kill() if isinstance(x, Live) else x.stop()
        except Exception:  # keep stopping the rest
            pass


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(str(tmp_path / "broker"))
    try:
        yield b
        assert b.alive(), "the broker died:\n" + b.text()
    finally:
        b.stop()


# ---- the independent side: paho ------------------------------------------------------------

class Watcher:
    """A paho-mqtt client that records every message on `topics`."""

    def __init__(self, port, topics=("#",), user=None, password=None, qos=1):
        import paho.mqtt.client as mqtt
        self.msgs = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher-%d" % time.monotonic_ns())
        if user:
            self.c.username_pw_set(user, password)
        self.c.on_message = self._on
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        self.c.subscribe([(t, qos) for t in topics])
        assert subscribed.wait(5), "paho could not subscribe"

    def _on(self, c, u, m):
        with self.lock:
            self.msgs.append((m.topic, m.payload, m.retain, m.qos, m.dup if hasattr(m, "dup") else 0))

    def publish(self, topic, payload, qos=1, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)

    def wait(self, pred, seconds=10, what="a message"):
        deadline = time.monotonic() + seconds
        while True:
            with self.lock:
                hits = [m for m in self.msgs if pred(m)]
            if hits:
                return hits
            assert time.monotonic() < deadline, "timed out waiting for %s; got %s" % (
                what, [(t, p[:40]) for t, p, *_ in self.msgs][-20:])
            time.sleep(0.02)

    def until(self, cond, seconds=10, what="a condition"):
        """Poll cond() (which may call last()) until true."""
        deadline = time.monotonic() + seconds
        while not cond():
            assert time.monotonic() < deadline, "timed out waiting for %s; last messages %s" % (
                what, [(t, p[:40]) for t, p, *_ in list(self.msgs)][-20:])
            time.sleep(0.05)

    def count(self, pred):
        with self.lock:
            return sum(1 for m in self.msgs if pred(m))

    def last(self, topic):
        with self.lock:
            for m in reversed(self.msgs):
                if m[0] == topic:
                    return m
        return None

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


# ---- our client as a process ----------------------------------------------------------------

RUNTIMES = ["cpython", "micropython"]


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    if request.param == "micropython" and not micropython_bin():
        pytest.fail("no unix MicroPython: run `make setup`")
    return request.param


class Live:
    """tests_host/mqtt_live.py under a runtime; its JSON lines arrive in .events."""

    def __init__(self, runtime, port, name, *opts):
        py = micropython_bin() if runtime == "micropython" else sys.executable
        cmd = [py] + (["-X", "heapsize=256k"] if runtime == "micropython" else []) + [
            LIVE, ROOT, "127.0.0.1", str(port), name] + [str(o) for o in opts]
        self.name = name
        self.events = queue.Queue()
        self.seen = []
        self.err = []
        self.proc = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _STARTED.append(self)
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"ev": "junk", "line": line.decode("utf-8", "replace")})

    def wait(self, ev, pred=lambda e: True, seconds=10):
        for e in self.seen:
            if e["ev"] == ev and pred(e) and not e.get("_used"):
                e["_used"] = True
                return e
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            try:
                e = self.events.get(timeout=max(0.01, left))
            except queue.Empty:
                e = None
            if e is not None:
                self.seen.append(e)
                if e["ev"] == ev and pred(e):
                    e["_used"] = True
                    return e
            assert left > 0, "no %r from the client; saw %s\n%s" % (ev, self.seen[-10:], self.stderr())
            assert e is not None or self.proc.poll() is None, "client exited %s\n%s" % (
                self.proc.returncode, self.stderr())

    def stderr(self):
        return b"".join(self.err).decode("utf-8", "replace")[-3000:]

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        stop(self.proc, signal.SIGKILL)

    def finish(self, watcher, seconds=10):
        """in/stop: a clean goodbye; returns the final stats."""
        watcher.publish("live/%s/in/stop" % self.name, b"")
        stats = self.wait("stats", seconds=seconds)
        assert self.proc.wait(5) == 0, self.stderr()
        assert "Traceback" not in self.stderr(), self.stderr()
        return stats


def _avail(name, value):
    return lambda m: m[0] == "live/%s/availability" % name and m[1] == value


def _online(w, name, n, seconds=10):
    """Wait for the n-th "online" of the client: it comes after its SUBSCRIBE."""
    w.until(lambda: w.count(_avail(name, b"online")) >= n, seconds, "online #%d" % n)


def _echo(w, live, sub, payload, qos=1, seconds=10):
    w.publish("live/%s/in/%s" % (live.name, sub), payload, qos=qos)
    return w.wait(lambda m: m[0] == "live/%s/out/%s" % (live.name, sub) and m[1] == payload,
                  seconds, "the echo of " + sub)


# ---- tests ---------------------------------------------------------------------------------

def test_echo_qos_retain_will(broker, runtime):
    w = Watcher(broker.port)
    live = Live(runtime, broker.port, "a")
    try:
        live.wait("connected")
        w.wait(_avail("a", b"online"), what="online")
        assert w.last("live/a/availability")[2] in (False, True)
        m = _echo(w, live, "x", b"hello", qos=0)[0]
        assert m[3] == 0
        m = _echo(w, live, "y", b"q1 with qos 1")[0]
        assert m[3] == 1                                    # our QoS 1 publish, PUBACKed
        _echo(w, live, "keep/r", b"retained value")
        late = Watcher(broker.port, ("live/a/#",))          # a late subscriber sees retained values
        try:
            late.wait(lambda m: m[0] == "live/a/out/keep/r" and m[1] == b"retained value" and m[2])
            late.wait(lambda m: m == ("live/a/availability", b"online", True, 1, False)
                      or (m[0] == "live/a/availability" and m[1] == b"online" and m[2]))
            assert late.last("live/a/out/x") is None        # not retained
        finally:
            late.close()
        stats = live.finish(w)
        assert stats["connects"] == 1 and stats["errors"] == 0 and stats["dropped"] == 0
        w.wait(_avail("a", b"offline"), what="offline after a clean goodbye")
    finally:
        live.kill()
        w.close()


def test_will_when_the_client_dies(broker, runtime):
    w = Watcher(broker.port)
    live = Live(runtime, broker.port, "k")
    try:
        live.wait("connected")
        w.wait(_avail("k", b"online"))
        live.kill()                                          # no DISCONNECT: the broker sends the will
        w.wait(_avail("k", b"offline"), 10, "the last will")
        late = Watcher(broker.port, ("live/k/availability",))
        try:
            late.wait(lambda m: m[1] == b"offline" and m[2], what="the will, retained")
        finally:
            late.close()
    finally:
        live.kill()
        w.close()


def test_password(tmp_path, runtime):
    b = Mosquitto(str(tmp_path / "broker"), users={"gw": "S3cret pw", "watch": "w"})
    try:
        w = Watcher(b.port, user="watch", password="w")
        good = Live(runtime, b.port, "p", "--user", "gw", "--password", "S3cret pw")
        bad = Live(runtime, b.port, "q", "--user", "gw", "--password", "wrong")
        anon = Live(runtime, b.port, "r")
        try:
            good.wait("connected")
            w.wait(_avail("p", b"online"))          # subscribed (the birth follows the SUBSCRIBE)
            _echo(w, good, "x", b"authenticated")
            for live in (bad, anon):
                e = live.wait("down", lambda e: "MqttRefused" in e["err"])
                assert not e["was"]
                live.wait("down", lambda e: "MqttRefused" in e["err"])   # retries, no crash
                assert live.alive()
            good.finish(w)
        finally:
            for live in (good, bad, anon):
                live.kill()
            w.close()
        assert b.alive()
    finally:
        b.stop()


def test_tls_checks_the_certificate(tmp_path, runtime):
    ca = make_ca(str(tmp_path))
    b = Mosquitto(str(tmp_path / "broker"), tls=ca)
    try:
        w = Watcher(b.port)
        lives = []
        try:
            ok = Live(runtime, b.tls_port, "t", "--ca", ca["ca"])
            der = Live(runtime, b.tls_port, "d", "--ca", ca["ca_der"])
            lives += [ok, der]
            for live in (ok, der):
                live.wait("connected")
                w.wait(_avail(live.name, b"online"))
                _echo(w, live, "x", b"over TLS")   # the watcher is on the plain listener
            wrong_ca = Live(runtime, b.tls_port, "u", "--ca", ca["other_ca"])
            wrong_name = Live(runtime, b.tls_port, "v", "--ca", ca["ca"], "--hostname", "mqtt.example")
            plain = Live(runtime, b.tls_port, "w")            # no TLS at a TLS port
            lives += [wrong_ca, wrong_name, plain]
            for live in (wrong_ca, wrong_name, plain):
                live.wait("down", lambda e: not e["was"])
                live.wait("down", lambda e: not e["was"])     # retries, never connects
                assert live.alive()
                assert not any(e["ev"] == "connected" for e in live.seen), live.seen
            err = " ".join(e["err"] for e in wrong_ca.seen if e["ev"] == "down")
            assert "TLS" in err or "CERTIFICATE" in err or "SSL" in err, err
            for live in (ok, der):
                live.finish(w)
        finally:
            for live in lives:
                live.kill()
            w.close()
        assert b.alive()
    finally:
        b.stop()


def test_broker_restart_reconnects_resubscribes_republishes(broker, runtime):
    live = Live(runtime, broker.port, "b")
    try:
        live.wait("connected", lambda e: e["n"] == 1)
        w = Watcher(broker.port)
        w.wait(_avail("b", b"online"))
        _echo(w, live, "x", b"before")
        w.close()
        broker.restart()                                      # same port; retained state is gone
        w = Watcher(broker.port)
        live.wait("down", lambda e: e["was"])
        live.wait("connected", lambda e: e["n"] == 2, 15)
        w.wait(_avail("b", b"online"), 10, "availability republished")
        _echo(w, live, "y", b"after")                         # re-subscribed
        stats = live.finish(w)
        assert stats["connects"] == 2
    finally:
        live.kill()
        w.close()


def test_queue_drops_oldest_before_connecting(broker, runtime):
    w = Watcher(broker.port)
    live = Live(runtime, broker.port, "q", "--prefill", 30, "--queue", 8)
    try:
        e = live.wait("start")
        assert (e["dropped"], e["pending"]) == (22, 8)
        live.wait("connected")
        w.wait(lambda m: m[0] == "live/q/out/pre/29")
        time.sleep(0.2)
        got = [int(m[1]) for m in w.msgs if m[0].startswith("live/q/out/pre/")]
        assert got == list(range(22, 30)), got
        stats = live.finish(w)
        assert stats["dropped"] == 22
    finally:
        live.kill()
        w.close()


class Proxy:
    """127.0.0.1:<port> -> the broker; cut(direction) lets `keep` more bytes
    through in that direction ("up": client to broker), then kills both
    sockets: a connection lost in the middle of a packet."""

    def __init__(self, target):
        self.target = target
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.armed = {}
        self.cuts = 0
        self.lock = threading.Lock()
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, direction, keep=100):
        with self.lock:
            self.armed[direction] = keep

    def _accept(self):
        while True:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [a, b]
            threading.Thread(target=self._pump, args=(a, b, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a, "down"), daemon=True).start()

    def _pump(self, src, dst, direction):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    keep = self.armed.get(direction)
                    if keep is not None:
                        if len(data) < keep:
                            self.armed[direction] = keep - len(data)
                        else:
                            del self.armed[direction]
                            data = data[:keep]
                            self.cuts += 1
                            dst.sendall(data)
                            raise OSError("cut")
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.srv.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def test_connection_cut_mid_packet(broker, runtime):
    proxy = Proxy(broker.port)
    w = Watcher(broker.port)
    live = Live(runtime, proxy.port, "c")
    try:
        live.wait("connected", lambda e: e["n"] == 1)
        w.wait(_avail("c", b"online"))
        # client -> broker: our QoS 1 echo is cut after 100 bytes; it is sent
        # again (DUP) after the reconnect
        big = b"q1" + b"U" * 400            # fits the client's 512-byte buffer
        proxy.cut("up")
        w.publish("live/c/in/up", big)
        live.wait("down", lambda e: e["was"])
        live.wait("connected", lambda e: e["n"] == 2)
        w.wait(lambda m: m[0] == "live/c/out/up" and m[1] == big, 10, "the cut message, re-sent")
        # broker -> client: a PUBLISH cut after 100 bytes (once subscribed again:
        # a QoS 0 message before that is dropped by the broker and cuts nothing)
        _online(w, "c", 2)
        proxy.cut("down")
        w.publish("live/c/in/down", b"D" * 3000, qos=0)
        live.wait("down", lambda e: e["was"])
        live.wait("connected", lambda e: e["n"] == 3)
        _online(w, "c", 3)
        _echo(w, live, "after", b"still working")
        assert proxy.cuts == 2
        stats = live.finish(w)
        assert stats["connects"] == 3
    finally:
        live.kill()
        w.close()
        proxy.close()


def test_other_clients_dying_mid_packet_do_not_disturb(broker, runtime):
    """Raw clients that send half a CONNECT, or a valid CONNECT and half a
    PUBLISH to our command topic, then vanish: the broker stays up, our
    client stays connected and sees none of it."""
    w = Watcher(broker.port)
    live = Live(runtime, broker.port, "h")
    try:
        live.wait("connected")
        w.wait(_avail("h", b"online"))
        for raw in (b"\x10\x20\x00\x04MQ",
                    b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02zz" + b"\x30\x40\x00\x0elive/h/in/evil"):
            s = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
            s.sendall(raw)
            time.sleep(0.1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()                                        # RST
        _echo(w, live, "ok", b"unaffected")
        assert not any(e["ev"] == "msg" and "evil" in e["topic"] for e in live.seen)
        stats = live.finish(w)
        assert stats["connects"] == 1 and stats["errors"] == 0
    finally:
        live.kill()
        w.close()
