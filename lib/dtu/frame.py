"""Hoymiles DTU frames: build, check, and reassemble them from a TCP stream.

    0      2      4      6      8      10                      10+len-10
    +------+------+------+------+------+-----------------------+-----------+
    | "HM" | tag  | seq  | crc  | len  | payload (protobuf)    | GCM tag   |
    +------+------+------+------+------+-----------------------+-----------+
    header fields are big-endian uint16; crc = CRC-16/MODBUS of the payload;
    len = 10 + payload length. Encrypted frames carry a 16-byte GCM tag after
    the payload that neither len nor crc covers (AppInfo and Heartbeat, the
    tags in PLAIN_TAGS, are never encrypted).

Replies answer tag 0xA3nn with 0xA2nn and echo the sequence number. A reply
is read by its length field, never by one fixed-size read: replies arrive in
pieces and can exceed 1 KB.
"""

from micropython import const

HEADER_LEN = const(10)
MAC_LEN = const(16)
MAX_FRAME = const(4096)   # the largest frame we accept (header and payload)
# Tags that are never encrypted: AppInfoData and Heartbeat, requests and replies.
PLAIN_TAGS = (0xA301, 0xA201, 0xA302, 0xA202)


class FrameError(ValueError):
    """The bytes are not a valid frame."""


class CrcError(FrameError):
    """A complete frame whose CRC does not match its payload."""


def _crc_table():
    # CRC-16/MODBUS processed a nibble at a time: a 16-entry table is small
    # enough for an ESP8266 and twice as fast as the bitwise loop.
    t = []
    for i in range(16):
        c = i
        for _ in range(4):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        t.append(c)
    return tuple(t)


_T = _crc_table()


def crc16(data, crc=0xFFFF):
    t = _T
    for b in data:
        crc = (crc >> 4) ^ t[(crc ^ b) & 15]
        crc = (crc >> 4) ^ t[(crc ^ (b >> 4)) & 15]
    return crc


def reply_tag(tag):
    """The tag a reply to `tag` carries (0xA311 -> 0xA211)."""
    return tag - 0x100 if (tag >> 8) & 1 else tag


def build(tag, seq, payload, mac=b""):
    """One frame; for an encrypted frame `payload` is the ciphertext and `mac`
    the 16-byte GCM tag that follows it."""
    n = len(payload)
    if HEADER_LEN + n > 0xFFFF:
        raise FrameError("payload too long")
    crc = crc16(payload)
    head = bytes((0x48, 0x4D, tag >> 8, tag & 255, (seq >> 8) & 255, seq & 255,
                  crc >> 8, crc & 255, (n + HEADER_LEN) >> 8, (n + HEADER_LEN) & 255))
    return head + bytes(payload) + bytes(mac)


def header(data):
    """(tag, seq, crc, length) of the 10-byte header at the start of `data`."""
    if len(data) < HEADER_LEN:
        raise FrameError("shorter than a header")
    if data[0] != 0x48 or data[1] != 0x4D:
        raise FrameError("no 'HM' magic")
    return ((data[2] << 8) | data[3], (data[4] << 8) | data[5],
            (data[6] << 8) | data[7], (data[8] << 8) | data[9])


def wire_len(tag, length, encrypted):
    """Bytes the frame occupies on the wire, GCM tag included."""
    return length + MAC_LEN if encrypted and tag not in PLAIN_TAGS else length


class FrameReader:
    """Reassembles frames from arbitrary chunks of a byte stream.

    feed() the bytes as they come; next() returns (tag, seq, payload, mac)
    once a whole frame is buffered, else None. Bytes before an "HM" magic are
    skipped (counted in `skipped`). A frame with a bad length or CRC is
    dropped and reported by FrameError/CrcError, so the stream can go on.
    The buffer never holds more than one maximal frame plus one chunk.
    """

    def __init__(self, max_len=MAX_FRAME, encrypted=False):
        self.max_len = max_len
        self.encrypted = encrypted
        self.skipped = 0
        self._buf = bytearray()

    def feed(self, data):
        if len(self._buf) + len(data) > 2 * (self.max_len + MAC_LEN):
            raise FrameError("buffer overflow")  # feeding faster than reading
        self._buf.extend(data)

    def pending(self):
        return len(self._buf)

    def clear(self):
        self._buf = bytearray()

    def _resync(self, start):
        buf = self._buf
        i = start
        n = len(buf)
        while i < n - 1 and not (buf[i] == 0x48 and buf[i + 1] == 0x4D):
            i += 1
        if i == n - 1 and buf[i] != 0x48:
            i = n  # a trailing byte that cannot start a magic
        self.skipped += i
        buf[:i] = b""  # MicroPython has no del on bytearray slices

    def next(self):
        buf = self._buf
        if len(buf) >= 2 and not (buf[0] == 0x48 and buf[1] == 0x4D):
            self._resync(0)
        if len(buf) < HEADER_LEN:
            return None
        tag, seq, crc, length = header(buf)
        if length < HEADER_LEN or length > self.max_len:
            self._resync(2)  # drop this magic, look for the next one
            raise FrameError("bad frame length %d" % length)
        total = wire_len(tag, length, self.encrypted)
        if len(buf) < total:
            return None
        payload = bytes(buf[HEADER_LEN:length])
        mac = bytes(buf[length:total])
        buf[:total] = b""
        if crc16(payload) != crc:
            raise CrcError("CRC mismatch in frame %04X" % tag)
        return tag, seq, payload, mac
