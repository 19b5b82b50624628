"""The MQTT client (lib/mqtt) against a real Mosquitto (the Debian package),
on CPython and on the unix MicroPython.

The broker is started per test on a loopback port with a mosquitto.conf
written into tmp_path: anonymous, with a password file (mosquitto_passwd),
and with a TLS listener whose CA and server certificate (127.0.0.1 and
localhost) are made here with `cryptography`. The client runs as a process
of its own (tests_host/support/mqtt_live.py, an echo client) under either runtime;
paho-mqtt is the independent client on the other side. A TCP proxy in
between cuts connections in the middle of a packet.

The broker, the clients and the proxy are in tests_host/support/broker.py.
"""
import socket
import time

import pytest

from support.broker import STARTED, Live, Mosquitto, Proxy, Watcher, make_ca

@pytest.fixture(scope="module", autouse=True)
def _no_leftovers():
    yield
    for x in STARTED:
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
