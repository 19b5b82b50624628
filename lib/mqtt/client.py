"""An asyncio MQTT 3.1.1 client for MicroPython and CPython.

    c = MQTTClient("client-id", "192.168.0.10", user="u", password="p",
                   will=("base/availability", b"offline", True, 1),
                   birth=("base/availability", b"online", True, 1),
                   on_message=cb)          # cb(topic, payload bytes, retained)
    c.subscribe("base/set/+", 1)           # kept and sent again on every connect
    asyncio.create_task(c.run())           # connects, and reconnects for ever
    c.publish("base/grid/p", b"512.3", retain=True)   # queued, never blocks
    ...
    await c.disconnect()                   # publishes the will itself, then DISCONNECT

run() is a supervisor: connect (CONNACK within connect_timeout), subscribe,
publish the birth message, re-send unacknowledged QoS 1 messages, then serve
the connection until it fails; then wait (1, 2, 4 ... backoff_max s) and
start again. Every failure is a typed MqttError (mqtt.packet), recorded in
.last_error; nothing escapes run() but cancellation. A broker that sends a
malformed packet gets its connection closed.

Outgoing messages wait in a bounded queue (queue_size): when it is full the
oldest is dropped and counted in .dropped, so a dead broker never eats the
heap. QoS 1 messages stay "in flight" (at most max_inflight) until their
PUBACK, are re-sent with DUP after ack_timeout and after a reconnect.

Incoming packets are read into one preallocated buffer of max_packet bytes;
a bigger PUBLISH is acknowledged if needed and skipped (counted in .skipped).

TLS: pass ssl=tlsctx.context(ca) (certificate and host name checked);
the host name to check is server_hostname, by default the host. Reading and
dispatching incoming packets is in mqtt/reader.py.
"""
import asyncio

from mqtt import packet as P
from mqtt.packet import MqttClosed, MqttError, MqttProtocolError, MqttTimeout
from mqtt.reader import Reader

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # pragma: no cover - CPython
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b


class MQTTClient(Reader):
    queue_size = 32        # outgoing messages kept while the broker is slow or away
    max_packet = 512       # bytes of an incoming packet kept (one buffer, reused)
    max_inflight = 4       # QoS 1 messages awaiting PUBACK
    ack_timeout = 10       # s before a QoS 1 message is re-sent (DUP)
    max_retries = 3        # re-sends before the connection counts as dead
    connect_timeout = 10   # s for TCP (+TLS) connect and the CONNACK
    write_timeout = 10     # s for one packet to leave
    backoff_min = 1        # s before the first reconnect ...
    backoff_max = 60       # ... doubling up to this
    stable_after = 30      # s a connection must last to reset the backoff

    def __init__(self, client_id, host, port=1883, user="", password="", keepalive=60,
                 ssl=None, server_hostname=None, will=None, birth=None, clean=True,
                 on_message=None, on_connect=None, on_disconnect=None, opener=None):
        self.client_id = client_id
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.ssl = ssl
        self.server_hostname = server_hostname or host
        self.will = will                 # (topic, message, retain, qos)
        self.birth = birth               # published at every connect
        self.clean = clean
        self.on_message = on_message     # (topic, payload, retained)
        self.on_connect = on_connect     # (client)
        self.on_disconnect = on_disconnect   # (client, error, was connected)
        self._open = opener or asyncio.open_connection
        self._buf = bytearray(self.max_packet)
        self._mv = memoryview(self._buf)
        self._hdr = memoryview(bytearray(1))
        self._q = []                     # (topic, payload, qos, retain), oldest first
        self._inflight = {}              # pid -> [topic, payload, retain, sent ms, tries]
        self._subs = []                  # [(filter, qos)]
        self._sub_due = False
        self._sub_pid = 0
        self._pid = 0
        self._r = self._w = None
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self._dead = None
        self._running = False
        self._rx = self._tx = self._ping = 0
        self.connected = False
        # counters and the last error, for the app's health view
        self.connects = 0
        self.dropped = 0
        self.sent = 0
        self.received = 0
        self.skipped = 0
        self.errors = 0
        self.last_error = ""
        self.refused_subs = []

    # ---- what the app calls -----------------------------------------------------

    def publish(self, topic, payload, retain=False, qos=0):
        """Queue a message (payload bytes or str); never blocks. A full queue
        drops its oldest message (counted in .dropped)."""
        P.check_topic(topic)
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        if isinstance(payload, str):
            payload = payload.encode()
        q = self._q
        if len(q) >= self.queue_size:
            q.pop(0)
            self.dropped += 1
        q.append((topic, payload, qos, retain))
        self._kick.set()

    def subscribe(self, topic, qos=0):
        """Subscribe now (if connected) and at every later connect."""
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        self._subs = [s for s in self._subs if s[0] != topic] + [(topic, qos)]
        self._sub_due = True
        self._kick.set()

    def pending(self):
        """Messages queued or awaiting their PUBACK."""
        return len(self._q) + len(self._inflight)

    async def room(self, n, timeout=30):
        """Wait until at most n messages are queued or awaiting their PUBACK
        (a sender of many big messages keeps the heap they take small);
        False if the connection is down or it took longer than timeout s."""
        t0 = ticks_ms()
        while self.pending() > n:
            if not self.connected or ticks_diff(ticks_ms(), t0) > timeout * 1000:
                return False
            await asyncio.sleep(0.02)
        return self.connected

    async def run(self):
        """Connect and keep connected until stop()."""
        self._running = True
        delay = self.backoff_min
        while self._running:
            started = ticks_ms()
            err = None
            try:
                await self._connect()
                await self._session()
            except asyncio.CancelledError:
                self._abort()
                raise
            except MqttError as e:
                err = e
            except OSError as e:  # connect refused, reset, TLS failures ...
                err = MqttClosed("%s: %s" % (type(e).__name__, e))
            except Exception as e:  # MicroPython's TLS reports a bad certificate as ValueError
                err = MqttClosed("%s: %s" % (type(e).__name__, str(e).strip()))
            was = self.connected
            self._abort()
            if err is not None:
                self.errors += 1
                self.last_error = "%s: %s" % (type(err).__name__, err)
                if self.on_disconnect:
                    self._call(self.on_disconnect, self, err, was)
            if not self._running:
                break
            if ticks_diff(ticks_ms(), started) > self.stable_after * 1000:
                delay = self.backoff_min
            await self._nap(delay)
            delay = min(delay * 2, self.backoff_max)

    def stop(self):
        """End run() and drop the connection at once (the broker then sends
        the will); see disconnect() for a clean goodbye."""
        self._running = False
        self._abort()
        self._kick.set()

    async def disconnect(self, timeout=3):
        """Publish the will message ourselves (a clean DISCONNECT makes the
        broker forget it), send DISCONNECT, stop."""
        self._running = False
        if self.connected:
            try:
                if self.will is not None:
                    t, m, retain, _ = self.will
                    pkt = P.publish(t, m, 0, retain)
                else:
                    pkt = b""
                await asyncio.wait_for(self._write(pkt, P.DISCONNECT_PACKET), timeout)
            except (MqttError, OSError, asyncio.TimeoutError):
                pass
        self.stop()

    # ---- connection --------------------------------------------------------------

    async def _connect(self):
        kw = {}
        if self.ssl is not None:
            kw = {"ssl": self.ssl, "server_hostname": self.server_hostname}
        try:
            self._r, self._w = await asyncio.wait_for(self._open(self.host, self.port, **kw),
                                                      self.connect_timeout)
        except asyncio.TimeoutError:
            raise MqttTimeout("connect to %s:%d timed out" % (self.host, self.port))
        now = ticks_ms()
        self._rx = self._tx = now
        self._ping = 0
        await self._write(P.connect(self.client_id, self.keepalive, self.user or None,
                                    self.password or None, self.will, self.clean))
        try:
            kind, b0, n = await asyncio.wait_for(self._read_packet(), self.connect_timeout)
        except asyncio.TimeoutError:
            raise MqttTimeout("no CONNACK within %d s" % self.connect_timeout)
        if kind != P.CONNACK:
            raise MqttProtocolError("expected CONNACK, got packet type %d" % kind)
        P.parse_connack(self._mv[:n])
        self.connected = True
        self.connects += 1
        self._sub_due = bool(self._subs)
        if self.birth is not None:
            t, m, retain, qos = self.birth
            if not self._q or self._q[0][:2] != (t, m):
                self._q.insert(0, (t, m, qos, retain))
        for pid, m in list(self._inflight.items()):
            await self._send(m[0], m[1], 1, m[2], pid, True)
        if self.on_connect:
            self._call(self.on_connect, self)

    def _abort(self):
        w = self._w
        self._r = self._w = None
        self.connected = False
        if w is not None:
            try:
                w.close()
            except Exception:  # a dead socket may fail to close; it is gone all the same
                pass

    def _call(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # the app's callback must not take the connection down
            self.last_error = "callback: %r" % (e,)

    async def _nap(self, seconds):
        self._kick.clear()
        try:
            await asyncio.wait_for(self._kick.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    # ---- serving a connection ----------------------------------------------------

    async def _session(self):
        self._dead = None
        reader = asyncio.create_task(self._reader())
        ka = self.keepalive * 1000
        try:
            while self._running:
                if self._dead is not None:
                    raise self._dead
                now = ticks_ms()
                if ka:
                    quiet = ticks_diff(now, self._rx)
                    if quiet > ka:
                        raise MqttTimeout("nothing from the broker for %d s" % (quiet // 1000))
                    if (quiet > ka // 4 and (not self._ping or ticks_diff(now, self._ping) > ka // 4)) \
                            or ticks_diff(now, self._tx) > ka // 2:
                        self._ping = now
                        await self._write(P.PINGREQ_PACKET)
                for pid, m in list(self._inflight.items()):
                    if ticks_diff(now, m[3]) > self.ack_timeout * 1000:
                        if m[4] > self.max_retries:
                            raise MqttTimeout("no PUBACK for packet %d" % pid)
                        await self._send(m[0], m[1], 1, m[2], pid, True)
                if self._sub_due:
                    self._sub_due = False
                    self._sub_pid = self._next_pid()
                    await self._write(P.subscribe(self._sub_pid, self._subs))
                while self._q and len(self._inflight) < self.max_inflight and self._dead is None:
                    topic, payload, qos, retain = self._q.pop(0)
                    await self._send(topic, payload, qos, retain)
                if self._q and len(self._inflight) < self.max_inflight:
                    continue
                nap = 1 if not ka else min(1, ka / 8000)
                await self._nap(min(nap, self.ack_timeout / 2) if self._inflight else nap)
        finally:
            reader.cancel()
            try:
                await reader
            except BaseException:  # cancelled (or already dead): nothing to keep
                pass

    def _next_pid(self):
        pid = self._pid
        while True:
            pid = pid % 65535 + 1
            if pid not in self._inflight and pid != self._sub_pid:
                self._pid = pid
                return pid

    async def _send(self, topic, payload, qos, retain, pid=0, dup=False):
        if qos:
            if not pid:
                pid = self._next_pid()
                self._inflight[pid] = [topic, payload, retain, 0, 0]
            m = self._inflight[pid]
            m[3] = ticks_ms()
            m[4] += 1
        await self._write(P.publish_head(topic, len(payload), qos, retain, dup, pid), payload)
        self.sent += 1

    async def _write(self, *parts):
        async with self._lock:
            w = self._w
            if w is None:
                raise MqttClosed("not connected")
            try:
                for p in parts:
                    if p:
                        w.write(p)
                await asyncio.wait_for(w.drain(), self.write_timeout)
            except asyncio.TimeoutError:
                raise MqttTimeout("write timed out")
            except OSError as e:
                raise MqttClosed("write failed: %s" % e)
            except ValueError as e:  # MicroPython: TLS handshake failed (certificate)
                raise MqttClosed("TLS: %s" % str(e).strip())
            self._tx = ticks_ms()
