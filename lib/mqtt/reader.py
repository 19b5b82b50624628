"""The reading half of the MQTT client: one preallocated buffer, packets
checked as untrusted input (mqtt.packet), dispatched to the client.

A mixin for mqtt.client.MQTTClient; it uses the client's _r, _buf/_mv,
_hdr, _inflight, _subs, _sub_pid, _write(), _call() and counters.
"""
import asyncio

from mqtt import packet as P
from mqtt.packet import MqttClosed, MqttError, MqttProtocolError

try:
    from time import ticks_ms
except ImportError:  # pragma: no cover - CPython
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000)


class Reader:
    async def _reader(self):
        try:
            while True:
                kind, b0, n = await self._read_packet()
                self._rx = ticks_ms()
                await self._handle(kind, b0, n)
        except asyncio.CancelledError:
            raise
        except MqttError as e:
            self._dead = e
        except OSError as e:
            self._dead = MqttClosed("read failed: %s" % e)
        except Exception as e:  # a bug must not leave a half-dead connection
            self._dead = MqttError("%s: %s" % (type(e).__name__, e))
        self._kick.set()

    async def _fill(self, mv):
        """Read exactly len(mv) bytes into mv."""
        r = self._r
        n = len(mv)
        pos = 0
        while pos < n:
            if r is None:
                raise MqttClosed("not connected")
            if hasattr(r, "readinto"):  # MicroPython: no allocation per read
                k = await r.readinto(mv[pos:] if pos else mv)
                if k is None:  # TLS: a record is not complete yet
                    continue
            else:  # CPython's StreamReader
                data = await r.read(n - pos)
                k = len(data)
                mv[pos:pos + k] = data
            if not k:
                raise MqttClosed("connection closed by the broker")
            pos += k

    async def _read_packet(self):
        """(type, first byte, bytes kept in the buffer) of the next packet."""
        h = self._hdr
        mv = self._mv
        await self._fill(h)
        b0 = h[0]
        n = shift = 0
        while True:
            await self._fill(h)
            n |= (h[0] & 0x7F) << shift
            if not h[0] & 0x80:
                break
            shift += 7
            if shift >= 28:
                raise MqttProtocolError("remaining length longer than 4 bytes")
        kind = P.check_header(b0, n)
        keep = min(n, len(mv))
        if keep < n and kind != P.PUBLISH:
            raise MqttProtocolError("packet type %d of %d bytes" % (kind, n))
        await self._fill(mv[:keep])
        if keep < n:
            await self._skip(b0, n, keep)
            return 0, b0, 0
        return kind, b0, n

    async def _skip(self, b0, n, keep):
        # Only a PUBLISH passes check_header with more than a few bytes.
        topic, start, qos, retain, pid = P.parse_publish(b0, self._mv[:keep], n)
        left = n - keep
        while left:
            k = min(left, len(self._mv))
            await self._fill(self._mv[:k])
            left -= k
        self.skipped += 1
        if qos == 1:
            await self._write(P.puback(pid))

    async def _handle(self, kind, b0, n):
        body = self._mv[:n]
        if kind == P.PUBLISH:
            topic, start, qos, retain, pid = P.parse_publish(b0, body)
            if qos == 2:
                raise MqttProtocolError("PUBLISH with QoS 2 (never subscribed with it)")
            self.received += 1
            if qos:
                await self._write(P.puback(pid))
            if self.on_message:
                self._call(self.on_message, topic, bytes(body[start:]), retain)
        elif kind == P.PUBACK:
            self._inflight.pop(P.parse_pid(body), None)
            self._kick.set()
        elif kind == P.SUBACK:
            pid, codes = P.parse_suback(body)
            if pid == self._sub_pid:
                self.refused_subs = [self._subs[i][0] for i, c in enumerate(codes)
                                     if c == 0x80 and i < len(self._subs)]
        elif kind == P.CONNACK:
            raise MqttProtocolError("a second CONNACK")
        # PINGRESP and UNSUBACK: being alive is all they say
