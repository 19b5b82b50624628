"""gateway.setup.dns: the captive-portal DNS responder. answer() on hand-built
packets (A, AAAA, ANY, malformed, names up to and over 253 characters), and
the Responder with real UDP queries on 127.0.0.1.

Board-side test: plain unittest, runs under pytest and the unix MicroPython.
"""
import os
import socket
import struct
import time
import unittest

from gateway.setup import dns

AP = dns.ip_bytes("192.168.4.1")


def query(name, qtype=1, qclass=1, qid=0x1234, flags=0x0100, qdcount=1, extra=b""):
    q = struct.pack(">HHHHHH", qid, flags, qdcount, 0, 0, 0)
    for label in name.split(".") if name else []:
        q += bytes((len(label),)) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, qclass) + extra


def parse(r):
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", r[:12])
    return qid, flags, qd, an, ns, ar


def long_name(chars):
    """A name of exactly `chars` characters, labels of at most 63 bytes."""
    parts = []
    left = chars
    while left > 63:
        parts.append("a" * 62)          # 62 characters and a dot
        left -= 63
    parts.append("b" * left)
    return ".".join(parts)


class Answer(unittest.TestCase):
    def test_a_query_gets_the_ap_address(self):
        q = query("connectivitycheck.gstatic.com")
        r = dns.answer(q, AP)
        qid, flags, qd, an, ns, ar = parse(r)
        self.assertEqual((qid, qd, an, ns, ar), (0x1234, 1, 1, 0, 0))
        self.assertEqual(flags & 0x8000, 0x8000)      # a response
        self.assertEqual(flags & 0x0400, 0x0400)      # authoritative
        self.assertEqual(flags & 0x0100, 0x0100)      # RD copied
        self.assertEqual(flags & 0x000F, 0)           # NOERROR
        self.assertEqual(r[12:len(q)], q[12:])        # the question, unchanged
        ans = r[len(q):]
        self.assertEqual(ans[:2], b"\xc0\x0c")        # a pointer to the question's name
        typ, cls, ttl, rdlen = struct.unpack(">HHIH", ans[2:12])
        self.assertEqual((typ, cls, rdlen), (1, 1, 4))
        self.assertTrue(0 < ttl <= 60)
        self.assertEqual(bytes(ans[12:16]), AP)
        self.assertEqual(len(r), len(q) + 16)

    def test_any_query_gets_the_address_aaaa_and_others_get_no_record(self):
        self.assertEqual(parse(dns.answer(query("x.y", qtype=255), AP))[3], 1)
        for qtype in (28, 15, 16, 33, 65):              # AAAA, MX, TXT, SRV, HTTPS
            r = dns.answer(query("example.com", qtype=qtype), AP)
            qid, flags, qd, an, ns, ar = parse(r)
            self.assertEqual((an, flags & 0x000F, flags & 0x8000), (0, 0, 0x8000), qtype)
            self.assertEqual(len(r), len(query("example.com", qtype=qtype)))
        self.assertEqual(parse(dns.answer(query("example.com", qclass=3), AP))[3], 0)   # CHAOS

    def test_only_the_first_question_is_answered_and_edns_is_dropped(self):
        opt = b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"
        q = query("a.example", flags=0x0120) + b""
        q = q[:11] + b"\x01" + q[12:] + opt             # ARCOUNT 1: an EDNS OPT record
        r = dns.answer(q, AP)
        self.assertEqual(parse(r)[2:], (1, 1, 0, 0))
        two = query("a.b", qdcount=2) + query("c.d")[12:]
        self.assertEqual(parse(dns.answer(two, AP))[2:4], (1, 1))

    def test_names_up_to_253_characters(self):
        for n in (1, 63, 64, 200, 252, 253):
            name = long_name(n)
            self.assertEqual(len(name), n)
            r = dns.answer(query(name), AP)
            self.assertIsNotNone(r, n)
            self.assertEqual(parse(r)[3], 1)
        self.assertIsNone(dns.answer(query(long_name(254)), AP))
        self.assertIsNone(dns.answer(query(long_name(300)), AP))
        self.assertIsNone(dns.answer(query("a" * 64 + ".com"), AP))    # a label over 63

    def test_root_name(self):
        self.assertEqual(parse(dns.answer(query(""), AP))[3], 1)

    def test_malformed_packets_are_ignored(self):
        good = query("example.com")
        bad = [
            b"", b"\x12", good[:11], good[:12], good[:-1], good[:-4], good[:14],
            query("example.com", flags=0x8100),          # a response
            query("example.com", flags=0x2800),          # opcode UPDATE
            query("example.com", flags=0x1000),          # opcode STATUS
            query("example.com", qdcount=0),
            good[:12] + b"\xc0\x0c\x00\x01\x00\x01",     # a compressed name in the question
            good[:12] + b"\x05abc",                      # the label runs off the end
            good[:12] + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01",
            bytes(513),                                  # bigger than a DNS/UDP packet
        ]
        for p in bad:
            self.assertIsNone(dns.answer(p, AP), p[:20])

    def test_random_garbage_never_raises(self):
        seed = 12345
        for i in range(3000):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            n = seed % 80
            p = bytearray()
            s = seed
            for _ in range(n):
                s = (s * 1103515245 + 12345) & 0x7FFFFFFF
                p.append(s >> 16 & 0xFF)
            if i % 3 == 0 and len(p) > 3:
                p[2] &= 0x01                              # a query header, random body
                p[4:6] = b"\x00\x01" if len(p) > 6 else p[4:6]
            r = dns.answer(bytes(p), AP)
            if r is not None:
                self.assertTrue(len(r) >= 17 and r[2] & 0x80)

    def test_reply_buffer_is_reused(self):
        buf = bytearray(dns.MAX_PACKET)
        r1 = dns.answer(query("one.example"), AP, buf)
        self.assertEqual(bytes(r1), dns.answer(query("one.example"), AP))
        r2 = dns.answer(query("two.example", qtype=28), AP, buf)
        self.assertEqual(bytes(r2), dns.answer(query("two.example", qtype=28), AP))

    def test_ip_bytes(self):
        self.assertEqual(dns.ip_bytes("10.10.100.254"), b"\x0a\x0a\x64\xfe")
        with self.assertRaises(ValueError):
            dns.ip_bytes("10.10.100")


def _open_responder():
    """A Responder on 127.0.0.1 at a free port (port 0 where the port can
    tell which one it got; else random high ports until one is free)."""
    for attempt in range(50):
        port = 0 if attempt == 0 else 20000 + int.from_bytes(os.urandom(2), "big") % 40000
        r = dns.Responder("192.168.4.1", "127.0.0.1", port)
        try:
            r.open()
        except OSError:
            continue
        port = r.bound_port()
        if port:
            return r, port
        r.close()
    raise AssertionError("no free UDP port")


class Udp(unittest.TestCase):
    def setUp(self):
        self.r, self.port = _open_responder()
        ai = socket.getaddrinfo("127.0.0.1", self.port, 0, socket.SOCK_DGRAM)[0]
        self.addr = ai[-1]
        self.c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.c.settimeout(0.05)

    def tearDown(self):
        self.c.close()
        self.r.close()

    def ask(self, packet, wait=2.0):
        """Send, let the responder poll, return the reply or None (bounded)."""
        self.c.sendto(packet, self.addr)
        deadline = time.time() + wait
        while time.time() < deadline:
            self.r.poll()
            try:
                return self.c.recv(512)
            except OSError:       # timeout
                pass
        return None

    def test_real_queries(self):
        r = self.ask(query("captive.apple.com", qid=7))
        self.assertEqual(parse(r)[:1] + parse(r)[3:4], (7, 1))
        self.assertEqual(r[-4:], AP)
        r = self.ask(query("captive.apple.com", qtype=28, qid=8))
        self.assertEqual((parse(r)[0], parse(r)[3]), (8, 0))
        r = self.ask(query(long_name(253), qid=9))
        self.assertEqual((parse(r)[0], parse(r)[3], r[-4:]), (9, 1, AP))
        self.assertIsNone(self.ask(b"\x00\x01garbage", wait=0.3))
        self.assertIsNone(self.ask(query(long_name(254)), wait=0.3))
        self.assertIsNone(self.ask(query("x.y", flags=0x8000), wait=0.3))
        # still answering after the garbage
        r = self.ask(query("after.garbage", qid=10))
        self.assertEqual((parse(r)[0], r[-4:]), (10, AP))
        self.assertEqual(self.r.answered, 4)
        self.assertEqual(self.r.ignored, 3)

    def test_a_burst_is_answered(self):
        for i in range(20):
            self.c.sendto(query("n%d.example" % i, qid=100 + i), self.addr)
        got = set()
        deadline = time.time() + 3
        while len(got) < 20 and time.time() < deadline:
            self.r.poll()
            try:
                got.add(parse(self.c.recv(512))[0])
            except OSError:
                pass
        self.assertEqual(got, set(range(100, 120)))


if __name__ == "__main__":
    unittest.main()
