"""The MQTT client (lib/mqtt): packet codec and connection behaviour.

Board-side: plain unittest, runs under pytest and under the unix MicroPython
(tests_host/mp/run_all.py test_mqtt_client). The connection tests use an
in-memory broker behind the client's `opener` (no sockets, no ports), so
every malformed packet, cut and silence is exact and fast; the same client
against a real Mosquitto is tests_host/e2e/test_mqtt_broker.py.
"""
import asyncio
import unittest

from mqtt import packet as P
from mqtt.client import MQTTClient
from mqtt.packet import MqttProtocolError, MqttRefused

# ---- the codec -----------------------------------------------------------------------

LENGTHS = [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (16383, b"\xff\x7f"),
           (16384, b"\x80\x80\x01"), (2097151, b"\xff\xff\x7f"), (2097152, b"\x80\x80\x80\x01"),
           (268435455, b"\xff\xff\xff\x7f")]


class PacketTest(unittest.TestCase):
    def test_remaining_length_edges(self):
        for n, enc in LENGTHS:
            self.assertEqual(P.encode_length(n), enc)
            self.assertEqual(P.decode_length(b"\x30" + enc + b"rest"), (n, 1 + len(enc)))
        for bad in (-1, 268435456):
            with self.assertRaises(ValueError):
                P.encode_length(bad)

    def test_remaining_length_incomplete_and_too_long(self):
        self.assertIsNone(P.decode_length(b"\x30"))
        self.assertIsNone(P.decode_length(b"\x30\x80"))
        self.assertIsNone(P.decode_length(b"\x30\xff\xff\xff"))
        with self.assertRaises(MqttProtocolError):
            P.decode_length(b"\x30\xff\xff\xff\xff\x01")
        with self.assertRaises(MqttProtocolError):
            P.decode_length(b"\x30\x80\x80\x80\x80")
        self.assertEqual(P.decode_length(b"\x30\x80\x00"), (0, 3))   # not minimal, but well-formed

    def test_connect_minimal(self):
        self.assertEqual(P.connect("c", 60),
                         b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01c")

    def test_connect_with_will_user_password(self):
        pkt = P.connect("id", 30, "u", "pw", ("a/b", b"off", True, 1))
        body = b"\x00\x04MQTT\x04\xee\x00\x1e" + b"\x00\x02id" + b"\x00\x03a/b" + b"\x00\x03off" \
            + b"\x00\x01u" + b"\x00\x02pw"
        self.assertEqual(pkt, b"\x10" + bytes((len(body),)) + body)
        # a password without a user is not sent (3.1.1 forbids it)
        self.assertEqual(P.connect("c", 60, None, "pw"), P.connect("c", 60))
        with self.assertRaises(ValueError):
            P.connect("c", 70000)

    def test_publish(self):
        self.assertEqual(P.publish("t/a", b"12.5", 0, True), b"\x31\x09\x00\x03t/a12.5")
        self.assertEqual(P.publish("t", b"x", 1, False, True, 0x1234), b"\x3a\x06\x00\x01t\x12\x34x")
        big = P.publish("t", b"x" * 200)
        self.assertEqual(big[:3], b"\x30\xcb\x01")             # 203 needs two length bytes
        self.assertEqual(len(big), 3 + 203)
        for bad in ("", "a/+", "a/#", "a\0b"):
            with self.assertRaises(ValueError):
                P.check_topic(bad)

    def test_subscribe_and_acks(self):
        self.assertEqual(P.subscribe(7, [("a/#", 1), ("b", 0)]),
                         b"\x82\x0c\x00\x07\x00\x03a/#\x01\x00\x01b\x00")
        self.assertEqual(P.puback(258), b"\x40\x02\x01\x02")
        self.assertEqual(P.parse_suback(b"\x00\x07\x01\x80"), (7, [1, 0x80]))
        self.assertEqual(P.parse_pid(b"\x01\x02"), 258)
        for bad in (b"\x00\x07\x03", b"\x00\x00\x01"):
            with self.assertRaises(MqttProtocolError):
                P.parse_suback(bad)

    def test_check_header(self):
        good = [(0x20, 2), (0x30, 2), (0x3b, 10), (0x40, 2), (0x90, 3), (0x90, 9), (0xb0, 2), (0xd0, 0)]
        for b0, n in good:
            self.assertEqual(P.check_header(b0, n), b0 >> 4)
        bad = [(0x00, 0), (0xf0, 0), (0x10, 12), (0x82, 6), (0xc0, 0), (0xe0, 0), (0x50, 2),
               (0x62, 2), (0x70, 2), (0xa2, 5), (0x21, 2), (0x20, 3), (0x41, 2), (0x40, 3),
               (0x90, 2), (0xd0, 1), (0xd1, 0), (0x36, 5), (0x30, 1), (0x30, 0)]
        for b0, n in bad:
            with self.assertRaises(MqttProtocolError):
                P.check_header(b0, n)

    def test_connack(self):
        self.assertFalse(P.parse_connack(b"\x00\x00"))
        self.assertTrue(P.parse_connack(b"\x01\x00"))
        for rc in range(1, 6):
            with self.assertRaises(MqttRefused) as cm:
                P.parse_connack(bytes((0, rc)))
            self.assertEqual(cm.exception.code, rc)
        for bad in (b"\x02\x00", b"\x00\x06", b"\x00", b"\x00\x00\x00"):
            with self.assertRaises(MqttProtocolError):
                P.parse_connack(bad)

    def test_parse_publish(self):
        self.assertEqual(P.parse_publish(0x31, b"\x00\x03a/b42"), ("a/b", 5, 0, True, 0))
        self.assertEqual(P.parse_publish(0x32, b"\x00\x01a\x00\x09x"), ("a", 5, 1, False, 9))
        for b0, body in ((0x30, b"\x00\x05abc"), (0x30, b"\x00\x00xy"), (0x30, b"\x00\x02\xff\xfe"),
                         (0x30, b"\x00\x03a/#"), (0x30, b"\x00\x03a/+"), (0x32, b"\x00\x01a\x00\x00"),
                         (0x32, b"\x00\x01a\x00")):
            with self.assertRaises(MqttProtocolError):
                P.parse_publish(b0, body)


# ---- an in-memory broker behind the client's opener ---------------------------------------

class Pipe:
    """One direction of a connection."""

    def __init__(self):
        self.buf = b""
        self.closed = False
        self.ev = asyncio.Event()

    def feed(self, data):
        if not self.closed:
            self.buf += bytes(data)
            self.ev.set()

    def close(self):
        self.closed = True
        self.ev.set()

    async def take(self, n):
        while not self.buf:
            if self.closed:
                return b""
            self.ev.clear()
            await self.ev.wait()
        d = self.buf[:n]
        self.buf = self.buf[len(d):]
        return d


class Reader:                      # like CPython's StreamReader: read() only
    def __init__(self, pipe):
        self.p = pipe

    async def read(self, n):
        return await self.p.take(n)


class IntoReader(Reader):          # like MicroPython's Stream: readinto() too
    async def readinto(self, mv):
        d = await self.p.take(len(mv))
        mv[:len(d)] = d
        return len(d)


class Writer:
    def __init__(self, conn):
        self.c = conn

    def write(self, data):
        if self.c.closed:
            raise OSError(32, "broken pipe")
        self.c.up.feed(data)

    async def drain(self):
        if self.c.closed:
            raise OSError(32, "broken pipe")

    def close(self):
        self.c.close()

    async def wait_closed(self):
        pass


class Conn:
    """The broker's end: packet() reads what the client sent, send() answers."""

    def __init__(self):
        self.up = Pipe()        # client -> broker
        self.down = Pipe()      # broker -> client
        self.closed = False
        self.got = []           # (b0, body) of every packet read

    def close(self):
        self.closed = True
        self.up.close()
        self.down.close()

    def send(self, data):
        self.down.feed(data)

    async def _exact(self, n):
        out = b""
        while len(out) < n:
            d = await self.up.take(n - len(out))
            if not d:
                return None
            out += d
        return out

    async def packet(self):
        """(first byte, body) of the client's next packet; None once closed."""
        h = await self._exact(1)
        if h is None:
            return None
        n = shift = 0
        while True:
            b = await self._exact(1)
            if b is None:
                return None
            n |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80:
                break
            shift += 7
        body = await self._exact(n) if n else b""
        if body is None:
            return None
        self.got.append((h[0], body))
        return h[0], body

    async def serve(self, ack=True):
        """Answer like a broker (PUBACK, SUBACK, PINGRESP) until closed."""
        while True:
            p = await self.packet()
            if p is None:
                return
            b0, body = p
            kind = b0 >> 4
            if kind == P.PUBLISH and (b0 >> 1) & 3 == 1 and ack:
                n = body[0] << 8 | body[1]
                self.send(P.puback(body[2 + n] << 8 | body[3 + n]))
            elif kind == P.SUBSCRIBE:
                codes = b""
                i = 2
                while i < len(body):
                    i += 2 + (body[i] << 8 | body[i + 1])
                    codes += bytes((body[i],))
                    i += 1
                self.send(b"\x90" + bytes((2 + len(codes),)) + body[:2] + codes)
            elif kind == P.PINGREQ:
                self.send(b"\xd0\x00")

    def publishes(self):
        """[(topic, payload, b0)] of the PUBLISH packets the client sent."""
        out = []
        for b0, body in self.got:
            if b0 >> 4 == P.PUBLISH:
                topic, start, qos, retain, pid = P.parse_publish(b0, body)
                out.append((topic, bytes(body[start:]), b0))
        return out


class FakeNet:
    """opener(host, port) for the client: each connect gets a Conn, handled
    by handler(conn, index) in a task of its own."""

    def __init__(self, handler, readinto=True):
        self.handler = handler
        self.readinto = readinto
        self.conns = []
        self.errors = []

    async def open(self, host, port, **kw):
        c = Conn()
        self.conns.append(c)
        asyncio.create_task(self._run(c, len(self.conns) - 1))
        return (IntoReader if self.readinto else Reader)(c.down), Writer(c)

    async def _run(self, c, i):
        try:
            await self.handler(c, i)
        except Exception as e:  # reported by the test
            self.errors.append(e)


CONNACK_OK = b"\x20\x02\x00\x00"


async def until(cond, seconds=3.0):
    for _ in range(int(seconds * 100)):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return cond()


def client(net, **kw):
    c = MQTTClient("tid", "broker", 1883, opener=net.open, **kw)
    c.backoff_min = 0.05
    c.ack_timeout = 0.3
    return c


def run(coro, seconds=15):
    return asyncio.run(asyncio.wait_for(coro, seconds))


async def stop(c, task):
    c.stop()
    await asyncio.wait_for(task, 2)


class ClientTest(unittest.TestCase):
    def _both(self, fn):
        """fn(readinto) on both reading paths (MicroPython's and CPython's)."""
        for readinto in (True, False):
            run(fn(readinto))

    def test_session(self):
        async def go(readinto):
            got = []

            async def broker(c, i):
                await c.packet()
                c.send(CONNACK_OK)
                c.send(P.publish("cmd/x", b"55", 1, False, False, 7))
                c.send(P.publish("cmd/y", b"r", 0, True))
                await c.serve()

            net = FakeNet(broker, readinto)
            cl = client(net, user="u", password="pw", keepalive=30,
                        will=("av", b"offline", True, 1), birth=("av", b"online", True, 1),
                        on_message=lambda t, p, r: got.append((t, p, r)))
            cl.subscribe("cmd/#", 1)
            cl.publish("v/a", "1", retain=True)
            cl.publish("v/b", b"2", qos=1)
            task = asyncio.create_task(cl.run())
            self.assertTrue(await until(lambda: len(got) == 2 and cl.pending() == 0))
            c = net.conns[0]
            b0, body = c.got[0]
            self.assertEqual(bytes((b0,)) + P.encode_length(len(body)) + body,
                             P.connect("tid", 30, "u", "pw", ("av", b"offline", True, 1)))
            kinds = [b >> 4 for b, body in c.got]
            self.assertTrue(kinds.index(P.SUBSCRIBE) < kinds.index(P.PUBLISH))   # subscribe first
            self.assertEqual(c.publishes(), [("av", b"online", 0x33), ("v/a", b"1", 0x31),
                                             ("v/b", b"2", 0x32)])
            self.assertEqual(got, [("cmd/x", b"55", False), ("cmd/y", b"r", True)])
            self.assertIn((0x40, b"\x00\x07"), c.got)                 # our PUBACK for pid 7
            self.assertTrue(cl.connected and cl.connects == 1 and cl.errors == 0)
            await stop(cl, task)
            self.assertTrue(c.closed and not cl.connected)
        self._both(go)

    def test_malformed_packets_close_the_connection(self):
        bad = [b"\xf0\x00", b"\x00\x00", b"\x10\x00", b"\x20\x02\x00\x00", b"\x40\x03\x00\x01\x00",
               b"\x41\x02\x00\x01", b"\x36\x05\x00\x01a\x00\x01", b"\x30\xff\xff\xff\xff\x01",
               b"\x30\x02\x00\x05", b"\x32\x05\x00\x01a\x00\x00", b"\x30\x04\x00\x02\xff\xfe",
               b"\x30\x05\x00\x03a/#", b"\x90\x03\x00\x01\x05", b"\x34\x05\x00\x01a\x00\x01",
               b"\xd0\x01\x00", b"\x50\x02\x00\x01", b"\x90\xd8\x04" + b"\x00" * 600]
        bad_connack = [b"\x20\x03\x00\x00\x00", b"\x20\x02\x02\x00", b"\x20\x02\x00\x09",
                       b"\x90\x03\x00\x01\x00", b"\x30\x03\x00\x01a"]

        async def go(readinto):
            for garbage in bad + bad_connack:
                first = garbage in bad

                async def broker(c, i):
                    await c.packet()
                    if i == 0:
                        c.send((CONNACK_OK if first else b"") + garbage)
                    else:
                        c.send(CONNACK_OK)
                    await c.serve()

                net = FakeNet(broker, readinto)
                cl = client(net)
                task = asyncio.create_task(cl.run())
                ok = await until(lambda: len(net.conns) == 2 and cl.connected)
                self.assertTrue(ok, (garbage, cl.last_error))
                self.assertTrue(net.conns[0].closed, garbage)
                self.assertIn("MqttProtocolError", cl.last_error, (garbage, cl.last_error))
                self.assertEqual(cl.errors, 1)
                self.assertFalse(task.done())
                await stop(cl, task)
                self.assertEqual(net.errors, [])
        self._both(go)

    def test_cut_mid_packet_then_reconnect(self):
        async def go(readinto):
            got = []
            whole = P.publish("a/b", b"x" * 40, 1, False, False, 3)

            async def broker(c, i):
                await c.packet()
                c.send(CONNACK_OK)
                if i == 0:
                    c.send(whole[:20])
                    await asyncio.sleep(0.05)
                    c.close()                  # cut inside the PUBLISH
                    return
                c.send(whole)
                await c.serve()

            net = FakeNet(broker, readinto)
            cl = client(net, on_message=lambda t, p, r: got.append(p))
            task = asyncio.create_task(cl.run())
            self.assertTrue(await until(lambda: got))
            self.assertEqual(got, [b"x" * 40])
            self.assertIn("MqttClosed", cl.last_error)
            self.assertEqual(cl.connects, 2)
            await stop(cl, task)
        self._both(go)

    def test_refused_then_backoff(self):
        async def go(readinto):
            async def broker(c, i):
                await c.packet()
                c.send(b"\x20\x02\x00\x05" if i < 2 else CONNACK_OK)
                await c.serve()

            net = FakeNet(broker, readinto)
            cl = client(net)
            task = asyncio.create_task(cl.run())
            self.assertTrue(await until(lambda: cl.connected))
            self.assertEqual(len(net.conns), 3)
            self.assertIn("not authorised", cl.last_error)
            self.assertIn("MqttRefused", cl.last_error)
            await stop(cl, task)
        self._both(go)

    def test_oversized_publish_is_skipped_and_acknowledged(self):
        async def go(readinto):
            got = []

            async def broker(c, i):
                await c.packet()
                c.send(CONNACK_OK)
                c.send(P.publish("big", b"B" * 300, 1, False, False, 9))
                c.send(P.publish("small", b"s", 0))
                await c.serve()

            net = FakeNet(broker, readinto)
            cl = MQTTClient("t", "h", opener=net.open, on_message=lambda t, p, r: got.append((t, p)))
            cl.max_packet = 64
            cl._buf = bytearray(64)
            cl._mv = memoryview(cl._buf)
            buf = cl._buf
            task = asyncio.create_task(cl.run())
            self.assertTrue(await until(lambda: got))
            self.assertEqual(got, [("small", b"s")])
            self.assertEqual((cl.skipped, cl.connects, cl.errors), (1, 1, 0))
            self.assertIn((0x40, b"\x00\x09"), net.conns[0].got)
            self.assertIs(cl._buf, buf)
            await stop(cl, task)
        self._both(go)

    def test_queue_drops_oldest(self):
        async def go(readinto):
            net = FakeNet(None, readinto)
            cl = client(net, birth=("av", b"online", True, 0))
            cl.queue_size = 5
            for i in range(12):
                cl.publish("m", str(i))
            self.assertEqual((cl.dropped, cl.pending()), (7, 5))

            async def broker(c, i):
                await c.packet()
                c.send(CONNACK_OK)
                await c.serve()
            net.handler = broker
            task = asyncio.create_task(cl.run())
            self.assertTrue(await until(lambda: cl.connected and cl.pending() == 0))
            await asyncio.sleep(0.05)
            self.assertEqual([p for t, p, b in net.conns[0].publishes()],
                             [b"online", b"7", b"8", b"9", b"10", b"11"])
            await stop(cl, task)
        self._both(go)

    def test_qos1_resent_with_dup_until_acknowledged(self):
        async def go(readinto):
            async def broker(c, i):
                await c.packet()
                c.send(CONNACK_OK)
                if i == 0:
                    await c.serve(ack=False)   # never acknowledges; then cut
                    return
                await c.serve()

            net = FakeNet(broker, readinto)
            cl = client(net)
            cl.max_retries = 2
            cl.publish("q", b"1", qos=1)
            task = asyncio.create_task(cl.run())
            self.assertTrue(await until(lambda: len(net.conns) == 2 and cl.pending() == 0, 5))
            first = net.conns[0].publishes()
            self.assertEqual(len(first), 3)                   # sent, then 2 re-sends
            self.assertEqual([b & 0x08 for t, p, b in first], [0, 8, 8])
            pids = set(body[3:5] for b0, body in net.conns[0].got if b0 >> 4 == 3)
            self.assertEqual(len(pids), 1)                    # same packet id
            self.assertIn("no PUBACK", cl.last_error)
            again = net.conns[1].publishes()
            self.assertEqual([(t, p, b & 0x08) for t, p, b in again], [("q", b"1", 8)])
            await stop(cl, task)
        self._both(go)

    def test_keepalive_pings_and_silent_broker(self):
        async def go(readinto):
            async def broker(c, i):
                await c.packet()
                c.send(CONNACK_OK)
                if i == 0:
                    while await c.packet() is not None:
                        pass                       # reads everything, answers nothing
                    return
                await c.serve()

            net = FakeNet(broker, readinto)
            cl = client(net, keepalive=1)
            cl.subscribe("s", 0)
            task = asyncio.create_task(cl.run())
            self.assertTrue(await until(lambda: len(net.conns) == 2 and cl.connected, 4))
            self.assertIn("MqttTimeout", cl.last_error)
            pings = [b for b, body in net.conns[0].got if b == 0xc0]
            self.assertTrue(pings)
            # re-subscribed on the new connection; pings answered: it stays up
            self.assertEqual(net.conns[1].got[1][0], 0x82)
            await asyncio.sleep(1.6)
            self.assertTrue(cl.connected and len(net.conns) == 2)
            self.assertTrue([b for b, body in net.conns[1].got if b == 0xc0])
            await stop(cl, task)
        run(go(True))

    def test_disconnect_says_offline_itself(self):
        async def go(readinto):
            async def broker(c, i):
                await c.packet()
                c.send(CONNACK_OK)
                await c.serve()

            net = FakeNet(broker, readinto)
            cl = client(net, will=("av", b"offline", True, 1), birth=("av", b"online", True, 1))
            task = asyncio.create_task(cl.run())
            self.assertTrue(await until(lambda: cl.connected and cl.pending() == 0))
            await cl.disconnect()
            await asyncio.wait_for(task, 2)
            c = net.conns[0]
            self.assertTrue(await until(lambda: c.got[-1][0] == 0xe0))
            self.assertEqual(c.publishes()[-1], ("av", b"offline", 0x31))
        run(go(True))

    def test_callback_error_keeps_the_connection(self):
        async def go(readinto):
            async def broker(c, i):
                await c.packet()
                c.send(CONNACK_OK)
                c.send(P.publish("x", b"1"))
                c.send(P.publish("y", b"2"))
                await c.serve()
            got = []

            def cb(t, p, r):
                got.append(t)
                if t == "x":
                    raise ValueError("app bug")
            net = FakeNet(broker, readinto)
            cl = client(net, on_message=cb)
            task = asyncio.create_task(cl.run())
            self.assertTrue(await until(lambda: got == ["x", "y"]))
            self.assertIn("app bug", cl.last_error)
            self.assertEqual((cl.connects, cl.errors), (1, 0))
            await stop(cl, task)
        run(go(True))


if __name__ == "__main__":
    unittest.main()
