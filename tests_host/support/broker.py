"""A real Mosquitto (the Debian package) on a loopback port, a test CA, paho
as the independent client (Watcher), our MQTT client as a process of its own
under either runtime (Live, support/mqtt_live.py), and a TCP proxy that cuts
connections in the middle of a packet. Used by test_mqtt_broker.py and
test_integrations_e2e.py."""
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

from proc_util import free_port, start, stop, wait_port
from support.env import ROOT, micropython_bin

LIVE = os.path.join(ROOT, "tests_host", "support", "mqtt_live.py")
STARTED = []      # every Mosquitto and Live started: the safety net stops what is left


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
        STARTED.append(self)
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

class Live:
    """tests_host/support/mqtt_live.py under a runtime; its JSON lines arrive in .events."""

    def __init__(self, runtime, port, name, *opts):
        py = micropython_bin() if runtime == "micropython" else sys.executable
        cmd = [py] + (["-X", "heapsize=256k"] if runtime == "micropython" else []) + [
            LIVE, ROOT, "127.0.0.1", str(port), name] + [str(o) for o in opts]
        self.name = name
        self.events = queue.Queue()
        self.seen = []
        self.err = []
        self.proc = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        STARTED.append(self)
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
