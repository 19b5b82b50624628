"""Captive-portal DNS responder: every A query is answered with our AP address.

    ans = answer(packet, ip4)    # the reply bytes, or None to stay silent

A standard query (QR 0, opcode 0, one or more questions; only the first is
answered) gets a reply with that question, AA set, RD copied, and:
  - A (or ANY) in class IN: one answer, the AP address, TTL 10 s (short, so a
    phone asks again once the setup is done);
  - anything else (AAAA, MX, ...): no answer, NOERROR ("no such record", so
    phones fall back to IPv4 instead of waiting).
Silence for everything malformed: short or truncated packets, responses,
other opcodes, compressed or over-long names (a name is at most 253
characters: 255 bytes on the wire), labels over 63 bytes.

MicroPython's asyncio has no UDP: Responder polls a non-blocking socket and
the caller sleeps briefly between polls (portal.py). Memory: one reply
buffer, allocated once; a received packet is at most 512 bytes. An idle poll
allocates nothing (select.poll's ipoll), where a bare recvfrom() would throw
away a 512-byte buffer and an exception 20 times a second.
"""
import select
import socket

from micropython import const

MAX_PACKET = const(512)      # classic DNS over UDP
MAX_NAME = const(255)        # wire bytes of a name, root label included
TTL = const(10)
_ANSWER = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00" + bytes((TTL,)) + b"\x00\x04"


def _question_end(p):
    """Index just past the first question, or -1 if it is malformed."""
    n = len(p)
    i = 12
    while True:
        if i >= n:
            return -1
        ln = p[i]
        if ln == 0:
            break
        if ln > 63 or i + 1 + ln - 12 > MAX_NAME - 1:   # compressed or too long
            return -1
        i += 1 + ln
    i += 5                          # root label, QTYPE, QCLASS
    return i if i <= n else -1


def answer(p, ip4, out=None):
    """The reply to query p (bytes) with address ip4 (4 bytes), or None.
    `out`: a bytearray(MAX_PACKET) to build it in (a memoryview of it is
    returned); else a new bytes object."""
    if len(p) < 17 or len(p) > MAX_PACKET:
        return None
    if p[2] & 0xF8:                 # QR set (a response) or an opcode other than QUERY
        return None
    if p[4] == 0 and p[5] == 0:     # no question
        return None
    end = _question_end(p)
    if end < 0:
        return None
    qtype = (p[end - 4] << 8) | p[end - 3]
    qclass = (p[end - 2] << 8) | p[end - 1]
    a = 1 if qclass == 1 and qtype in (1, 255) else 0
    size = end + 16 * a
    buf = out if out is not None else bytearray(size)
    buf[0], buf[1] = p[0], p[1]                      # id
    buf[2] = 0x84 | (p[2] & 0x01)                    # QR, AA, RD copied
    for i in range(3, 12):                           # RA 0, NOERROR; counts 1, a, 0, 0
        buf[i] = 0
    buf[5], buf[7] = 1, a
    buf[12:end] = memoryview(p)[12:end]
    if a:
        buf[end:end + 12] = _ANSWER
        buf[end + 12:end + 16] = ip4
    if out is not None:
        return memoryview(buf)[:size]
    return bytes(buf)


def ip_bytes(ip):
    """'192.168.4.1' -> b'\\xc0\\xa8\\x04\\x01'."""
    parts = ip.split(".")
    if len(parts) != 4:
        raise ValueError("not an IPv4 address: %r" % ip)
    return bytes(int(x) for x in parts)


class Responder:
    """The socket side: open(), then poll() whenever convenient, close()."""

    def __init__(self, ip, host="0.0.0.0", port=53):
        self.ip4 = ip_bytes(ip)
        self.addr = (host, port)
        self.sock = None
        self.answered = 0
        self.ignored = 0
        self._buf = bytearray(MAX_PACKET)

    def open(self):
        ai = socket.getaddrinfo(self.addr[0], self.addr[1], 0, socket.SOCK_DGRAM)[0]
        s = socket.socket(ai[0], socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(ai[-1])
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        self.sock = s
        self._poller = select.poll()
        self._poller.register(s, select.POLLIN)
        self._ipoll = getattr(self._poller, "ipoll", None)   # MicroPython: allocation-free

    def _ready(self):
        if self._ipoll is None:  # CPython
            return bool(self._poller.poll(0))
        for _ in self._ipoll(0):
            return True
        return False

    def bound_port(self):
        """The port actually bound (for port 0 in tests), where the port can tell."""
        try:
            return self.sock.getsockname()[1]
        except (AttributeError, OSError, TypeError):  # pragma: no cover - MicroPython
            return self.addr[1]

    def poll(self, budget=8):
        """Answer up to `budget` waiting queries; returns how many packets came."""
        n = 0
        while n < budget and self._ready():
            try:
                data, peer = self.sock.recvfrom(MAX_PACKET)
            except OSError:         # EAGAIN: nothing waiting (or an ICMP error: ignore)
                break
            n += 1
            reply = answer(data, self.ip4, self._buf)
            if reply is None:
                self.ignored += 1
                continue
            try:
                self.sock.sendto(reply, peer)
                self.answered += 1
            except OSError:
                self.ignored += 1
        return n

    def close(self):
        if self.sock is not None:
            self._poller.unregister(self.sock)
            self.sock.close()
            self.sock = None
