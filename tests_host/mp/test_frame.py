"""dtu.frame: CRC, building, header parsing and stream reassembly.

Board-side test: plain unittest, runs under pytest and under the unix
MicroPython (tests_host/mp/run_all.py). Random chunking uses the small
xorshift generator below, not `random`, so both runtimes see the same cases.
"""
import unittest

from proto_min import encode
from dtu import frame, messages
from dtu.frame import FrameReader, FrameError, CrcError

WORKED = ("484da3050001326d002a0880e2cfaa06100820013080e2cfaa063a0e413a3530302c423a302c"
          "433a300d")


class Prng:
    """xorshift32: the same numbers on CPython and MicroPython."""

    def __init__(self, seed):
        self.x = (seed & 0xFFFFFFFF) or 1

    def next(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x

    def below(self, n):
        return self.next() % n

    def bytes(self, n):
        return bytes(self.below(256) for _ in range(n))


def crc_bitwise(data):
    # The textbook CRC-16/MODBUS, one bit at a time.
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def payload(n, fill=0x61):
    # payloads without 'H' (0x48) so that they never hold a false magic
    return bytes((fill + i) % 26 + 0x61 for i in range(n))


def drain(reader, limit=10000):
    """(frames, errors) from next() until it returns None."""
    frames = []
    errors = []
    for _ in range(limit):
        try:
            f = reader.next()
        except FrameError as e:
            errors.append(e)
            continue
        if f is None:
            return frames, errors
        frames.append(f)
    raise AssertionError("next() did not settle")


def feed_all(reader, chunks):
    frames = []
    errors = []
    for c in chunks:
        reader.feed(c)
        f, e = drain(reader)
        frames.extend(f)
        errors.extend(e)
    return frames, errors


def bad_length_frame(length, tag=0xA211, seq=7):
    return bytes((0x48, 0x4D, tag >> 8, tag & 255, 0, seq, 0x12, 0x34, length >> 8, length & 255))


class TestCrc(unittest.TestCase):
    def test_check_value(self):
        self.assertEqual(frame.crc16(b"123456789"), 0x4B37)

    def test_empty_is_init(self):
        self.assertEqual(frame.crc16(b""), 0xFFFF)

    def test_incremental(self):
        self.assertEqual(frame.crc16(b"6789", frame.crc16(b"12345")), 0x4B37)

    def test_buffer_types(self):
        self.assertEqual(frame.crc16(bytearray(b"123456789")), 0x4B37)
        self.assertEqual(frame.crc16(memoryview(b"xx123456789")[2:]), 0x4B37)

    def test_matches_bitwise_reference(self):
        rng = Prng(1)
        for n in (1, 2, 3, 15, 16, 17, 100, 255):
            data = rng.bytes(n)
            self.assertEqual(frame.crc16(data), crc_bitwise(data))
        self.assertEqual(frame.crc16(bytes(range(256))), crc_bitwise(bytes(range(256))))

    def test_worked_example_crc(self):
        body = bytes.fromhex(WORKED)[10:]
        self.assertEqual(frame.crc16(body), 0x326D)


class TestBuild(unittest.TestCase):
    def test_worked_example(self):
        # protocol.md: set power limit 50 %, seq 1, time 1700000000
        tag, schema, msg = messages.power_limit(50, 1700000000)
        data = frame.build(tag, 1, encode(schema, msg))
        self.assertEqual(data.hex(), WORKED)
        self.assertEqual(len(data), 42)

    def test_layout(self):
        data = frame.build(0xA311, 0x1234, b"\x08\x01")
        crc = frame.crc16(b"\x08\x01")
        self.assertEqual(data, bytes((0x48, 0x4D, 0xA3, 0x11, 0x12, 0x34, crc >> 8, crc & 255,
                                      0, 12, 8, 1)))
        self.assertIsInstance(data, bytes)

    def test_empty_payload(self):
        data = frame.build(0xA302, 0, b"")
        self.assertEqual(data, bytes.fromhex("484da3020000ffff000a"))

    def test_accepts_bytearray_payload(self):
        self.assertEqual(frame.build(0xA311, 1, bytearray(b"ab")), frame.build(0xA311, 1, b"ab"))

    def test_seq_wraps(self):
        self.assertEqual(frame.header(frame.build(0xA311, 0xFFFF, b""))[1], 0xFFFF)
        self.assertEqual(frame.header(frame.build(0xA311, 0x10000, b""))[1], 0)
        self.assertEqual(frame.header(frame.build(0xA311, 0x10005, b""))[1], 5)

    def test_mac_follows_and_is_not_counted(self):
        mac = bytes(range(16))
        data = frame.build(0xA311, 3, b"cipher", mac)
        self.assertEqual(len(data), 10 + 6 + 16)
        tag, seq, crc, length = frame.header(data)
        self.assertEqual(length, 16)
        self.assertEqual(crc, frame.crc16(b"cipher"))
        self.assertEqual(data[16:], mac)

    def test_longest_payload(self):
        big = bytes(0xFFFF - 10)
        data = frame.build(0xA311, 1, big)
        self.assertEqual(frame.header(data)[3], 0xFFFF)
        with self.assertRaises(FrameError):
            frame.build(0xA311, 1, bytes(0xFFFF - 9))


class TestHeader(unittest.TestCase):
    def test_worked_example(self):
        data = bytes.fromhex(WORKED)
        self.assertEqual(frame.header(data), (0xA305, 1, 0x326D, 42))
        self.assertEqual(frame.header(data[:10]), (0xA305, 1, 0x326D, 42))
        self.assertEqual(frame.header(bytearray(data)), (0xA305, 1, 0x326D, 42))
        self.assertEqual(frame.header(memoryview(data)), (0xA305, 1, 0x326D, 42))

    def test_round_trip(self):
        for tag, seq in ((0xA211, 0), (0xA201, 65535), (0x2205, 258)):
            data = frame.build(tag, seq, b"xyz")
            self.assertEqual(frame.header(data), (tag, seq, frame.crc16(b"xyz"), 13))

    def test_too_short(self):
        for n in range(10):
            with self.assertRaises(FrameError):
                frame.header(bytes.fromhex(WORKED)[:n])

    def test_no_magic(self):
        for bad in (b"HN", b"hm", b"MH", b"\x00\x00"):
            with self.assertRaises(FrameError):
                frame.header(bad + bytes.fromhex(WORKED)[2:])


class TestTags(unittest.TestCase):
    def test_reply_tag(self):
        self.assertEqual(frame.reply_tag(0xA311), 0xA211)
        self.assertEqual(frame.reply_tag(0xA301), 0xA201)
        self.assertEqual(frame.reply_tag(0xA302), 0xA202)
        self.assertEqual(frame.reply_tag(0xA305), 0xA205)
        self.assertEqual(frame.reply_tag(0xA310), 0xA210)
        self.assertEqual(frame.reply_tag(0x2305), 0x2205)

    def test_reply_tag_of_a_reply_is_itself(self):
        self.assertEqual(frame.reply_tag(0xA211), 0xA211)
        self.assertEqual(frame.reply_tag(0x2205), 0x2205)

    def test_wire_len(self):
        self.assertEqual(frame.wire_len(0xA211, 100, False), 100)
        self.assertEqual(frame.wire_len(0xA211, 100, True), 116)
        self.assertEqual(frame.wire_len(0xA311, 10, True), 26)
        for tag in (0xA301, 0xA201, 0xA302, 0xA202):
            self.assertIn(tag, frame.PLAIN_TAGS)
            self.assertEqual(frame.wire_len(tag, 100, True), 100)
            self.assertEqual(frame.wire_len(tag, 100, False), 100)
        self.assertEqual(frame.MAC_LEN, 16)
        self.assertEqual(frame.HEADER_LEN, 10)


class TestReader(unittest.TestCase):
    def stream(self):
        """Three frames and what next() should return for them."""
        specs = ((0xA211, 1, payload(30)), (0xA201, 2, b""), (0xA214, 65535, payload(700, 3)))
        data = b"".join(frame.build(t, q, p) for t, q, p in specs)
        return data, [(t, q, p, b"") for t, q, p in specs]

    def test_whole(self):
        data, want = self.stream()
        r = FrameReader()
        self.assertEqual(feed_all(r, [data]), (want, []))
        self.assertEqual(r.pending(), 0)
        self.assertEqual(r.skipped, 0)

    def test_one_byte_at_a_time(self):
        data, want = self.stream()
        r = FrameReader()
        got = []
        for i in range(len(data)):
            r.feed(data[i:i + 1])
            f, e = drain(r)
            self.assertEqual(e, [])
            got.extend(f)
            # a frame comes out exactly when its last byte is in
            if f:
                self.assertEqual(r.pending(), 0)
        self.assertEqual(got, want)
        self.assertEqual(r.skipped, 0)

    def test_random_chunks(self):
        data, want = self.stream()
        for seed in range(1, 40):
            rng = Prng(seed)
            chunks = []
            i = 0
            while i < len(data):
                n = 1 + rng.below(1 + rng.below(300))
                chunks.append(data[i:i + n])
                i += n
            r = FrameReader()
            self.assertEqual(feed_all(r, chunks), (want, []), "seed %d" % seed)
            self.assertEqual(r.pending(), 0)

    def test_partial_header_and_payload(self):
        data = frame.build(0xA211, 9, b"abcdef")
        r = FrameReader()
        for n in (1, 2, 9, 10, 15):
            r.clear()
            r.feed(data[:n])
            self.assertIsNone(r.next())
            self.assertEqual(r.pending(), n)
        r.feed(data[15:])
        self.assertEqual(r.next(), (0xA211, 9, b"abcdef", b""))
        self.assertIsNone(r.next())

    def test_several_frames_in_one_chunk_with_split_tail(self):
        a = frame.build(0xA211, 1, b"one")
        b = frame.build(0xA211, 2, b"two")
        c = frame.build(0xA211, 3, b"three")
        r = FrameReader()
        r.feed(a + b + c[:5])
        self.assertEqual(r.next(), (0xA211, 1, b"one", b""))
        self.assertEqual(r.next(), (0xA211, 2, b"two", b""))
        self.assertIsNone(r.next())
        r.feed(c[5:])
        self.assertEqual(r.next(), (0xA211, 3, b"three", b""))
        self.assertIsNone(r.next())

    def test_payload_is_bytes(self):
        r = FrameReader()
        r.feed(bytearray(frame.build(0xA211, 1, b"xy")))
        tag, seq, body, mac = r.next()
        self.assertIsInstance(body, bytes)
        self.assertIsInstance(mac, bytes)

    def test_garbage_before_a_frame(self):
        good = frame.build(0xA211, 5, b"data")
        for junk in (b"x", b"\x00\x01\x02", b"MMMM", b"HHHH", b"H", b"xxH", b"MH",
                     b"\xff" * 300):
            r = FrameReader()
            frames, errors = feed_all(r, [junk + good])
            self.assertEqual(frames, [(0xA211, 5, b"data", b"")], repr(junk))
            self.assertEqual(errors, [])
            self.assertEqual(r.skipped, len(junk), repr(junk))
            self.assertEqual(r.pending(), 0)

    def test_garbage_byte_by_byte(self):
        good = frame.build(0xA211, 5, b"data")
        data = b"noise H M HxH" + good + b"tail"
        r = FrameReader()
        got = []
        for i in range(len(data)):
            r.feed(data[i:i + 1])
            f, e = drain(r)
            self.assertEqual(e, [])
            got.extend(f)
        self.assertEqual(got, [(0xA211, 5, b"data", b"")])
        self.assertEqual(r.skipped, len(data) - len(good))
        self.assertEqual(r.pending(), 0)

    def test_only_garbage(self):
        r = FrameReader()
        r.feed(b"abc")
        self.assertIsNone(r.next())
        self.assertEqual(r.skipped, 3)
        self.assertEqual(r.pending(), 0)
        r.feed(b"abH")              # a trailing 'H' may start a magic: kept
        self.assertIsNone(r.next())
        self.assertEqual(r.skipped, 5)
        self.assertEqual(r.pending(), 1)

    def test_bad_length_then_resync(self):
        good = frame.build(0xA211, 5, b"data")
        for length in (0, 1, 9, 4097, 0xFFFF):
            r = FrameReader()
            frames, errors = feed_all(r, [bad_length_frame(length) + good])
            self.assertEqual(frames, [(0xA211, 5, b"data", b"")])
            self.assertEqual(len(errors), 1)
            self.assertIsInstance(errors[0], FrameError)
            self.assertFalse(isinstance(errors[0], CrcError))
            self.assertEqual(r.skipped, 10)

    def test_bad_length_byte_by_byte(self):
        good = frame.build(0xA211, 5, b"data")
        data = bad_length_frame(3) + good
        r = FrameReader()
        got = []
        errors = []
        for i in range(len(data)):
            r.feed(data[i:i + 1])
            f, e = drain(r)
            got.extend(f)
            errors.extend(e)
        self.assertEqual(got, [(0xA211, 5, b"data", b"")])
        self.assertEqual(len(errors), 1)

    def test_length_limits(self):
        r = FrameReader(max_len=64)
        edge = frame.build(0xA211, 1, payload(54))       # exactly max_len
        empty = frame.build(0xA211, 2, b"")              # exactly the header
        frames, errors = feed_all(r, [edge + empty])
        self.assertEqual(errors, [])
        self.assertEqual(frames, [(0xA211, 1, payload(54), b""), (0xA211, 2, b"", b"")])

    def test_too_long_frame_then_resync(self):
        r = FrameReader(max_len=64)
        long_ = frame.build(0xA211, 1, payload(55))      # 65 bytes > max_len
        good = frame.build(0xA211, 2, b"ok")
        frames, errors = feed_all(r, [long_ + good])
        self.assertEqual(frames, [(0xA211, 2, b"ok", b"")])
        self.assertEqual(len(errors), 1)
        self.assertEqual(r.skipped, len(long_))
        self.assertEqual(r.pending(), 0)

    def test_default_max_frame(self):
        self.assertEqual(FrameReader().max_len, frame.MAX_FRAME)
        big = frame.build(0xA211, 1, payload(frame.MAX_FRAME - 10))
        r = FrameReader()
        want = [(0xA211, 1, payload(frame.MAX_FRAME - 10), b"")]
        self.assertEqual(feed_all(r, [big]), (want, []))
        r.feed(frame.build(0xA211, 1, payload(frame.MAX_FRAME - 9)))
        with self.assertRaises(FrameError):
            r.next()

    def test_wrong_crc_then_next_frame(self):
        bad = bytearray(frame.build(0xA211, 1, b"payload"))
        bad[12] ^= 0x01                                   # flip a payload bit
        good = frame.build(0xA211, 2, b"fine")
        r = FrameReader()
        r.feed(bytes(bad) + good)
        with self.assertRaises(CrcError):
            r.next()
        self.assertEqual(r.next(), (0xA211, 2, b"fine", b""))
        self.assertIsNone(r.next())
        self.assertEqual(r.skipped, 0)

    def test_wrong_crc_field(self):
        bad = bytearray(frame.build(0xA211, 1, b""))
        bad[7] ^= 0x80
        r = FrameReader()
        r.feed(bad)
        with self.assertRaises(CrcError):
            r.next()
        self.assertEqual(r.pending(), 0)
        self.assertTrue(issubclass(CrcError, FrameError))
        self.assertTrue(issubclass(FrameError, ValueError))

    def test_encrypted_frames(self):
        mac = bytes(range(100, 116))
        sealed = frame.build(0xA211, 4, b"ciphertext", mac)
        plain = frame.build(0xA201, 5, b"appinfo")         # never encrypted
        hb = frame.build(0xA202, 6, b"")
        r = FrameReader(encrypted=True)
        data = sealed + plain + hb + sealed
        want = [(0xA211, 4, b"ciphertext", mac), (0xA201, 5, b"appinfo", b""),
                (0xA202, 6, b"", b""), (0xA211, 4, b"ciphertext", mac)]
        self.assertEqual(feed_all(r, [data]), (want, []))
        # and byte by byte: nothing comes out before the GCM tag is in
        r = FrameReader(encrypted=True)
        got = []
        for i in range(len(data)):
            r.feed(data[i:i + 1])
            f, e = drain(r)
            self.assertEqual(e, [])
            if f and f[0][0] == 0xA211:
                self.assertTrue(i + 1 in (len(sealed), len(data)))
            got.extend(f)
        self.assertEqual(got, want)

    def test_encrypted_frame_waits_for_mac(self):
        mac = bytes(16)
        sealed = frame.build(0xA211, 4, b"ct", mac)
        r = FrameReader(encrypted=True)
        r.feed(sealed[:-1])
        self.assertIsNone(r.next())
        r.feed(sealed[-1:])
        self.assertEqual(r.next(), (0xA211, 4, b"ct", mac))

    def test_encrypted_crc_covers_ciphertext_only(self):
        mac = bytearray(range(16))
        data = bytearray(frame.build(0xA211, 4, b"ct", bytes(mac)))
        data[-1] ^= 0xFF                                   # a MAC byte: CRC still fine
        r = FrameReader(encrypted=True)
        r.feed(data)
        self.assertEqual(r.next()[2], b"ct")

    def test_encrypted_flag_can_change(self):
        r = FrameReader()
        r.feed(frame.build(0xA201, 1, b"info"))
        self.assertEqual(r.next()[2], b"info")
        r.encrypted = True
        mac = bytes(range(16))
        r.feed(frame.build(0xA211, 2, b"ct", mac))
        self.assertEqual(r.next(), (0xA211, 2, b"ct", mac))

    def test_buffer_overflow_guard(self):
        r = FrameReader(max_len=64)
        limit = 2 * (64 + frame.MAC_LEN)
        r.feed(bytes(limit))           # at the limit: accepted
        with self.assertRaises(FrameError):
            r.feed(b"H")               # one more without reading: refused
        r.clear()
        self.assertEqual(r.pending(), 0)
        r.feed(frame.build(0xA211, 1, b"again"))
        self.assertEqual(r.next(), (0xA211, 1, b"again", b""))

    def test_feed_and_drain_never_overflows(self):
        # chunks up to one maximal frame, drained after each feed: never too much
        r = FrameReader(max_len=64, encrypted=True)
        rng = Prng(7)
        data = b""
        want = []
        for k in range(60):
            n = rng.below(55)
            f = frame.build(0xA211, k, payload(n, k), bytes(16))
            data += f
            want.append((0xA211, k, payload(n, k), bytes(16)))
        got = []
        i = 0
        while i < len(data):
            n = 1 + rng.below(64 + frame.MAC_LEN)
            r.feed(data[i:i + n])
            i += n
            f, e = drain(r)
            self.assertEqual(e, [])
            got.extend(f)
            self.assertLess(r.pending(), 64 + frame.MAC_LEN)
        self.assertEqual(got, want)

    def test_garbage_with_false_magic(self):
        # an "HM" inside garbage whose length is out of range costs one
        # FrameError; the real frame behind it still comes out
        good = frame.build(0xA211, 5, b"data")
        junk = b"..HM\x00\x00\x00\x00\x00\x00\x00\x03.."
        r = FrameReader()
        frames, errors = feed_all(r, [junk + good])
        self.assertEqual(frames, [(0xA211, 5, b"data", b"")])
        self.assertEqual(len(errors), 1)
        self.assertEqual(r.skipped, len(junk))
