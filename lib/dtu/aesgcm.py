"""AES-128-GCM (96-bit nonces, 128-bit tags) on top of cryptolib's AES-ECB.

ESP8266 and ESP32 MicroPython offer the AES block cipher (`cryptolib.aes(key, 1)`)
but no GCM, so CTR mode and GHASH are done here in plain Python that also runs
on CPython (tools/host_shims/cryptolib.py stands in for cryptolib there).

GHASH multiplies by H with Shoup's table method, one byte of input per step,
on five limbs that stay small ints on the 32-bit boards (31-bit small ints: a
128-bit Python int would be a heap bignum, and every operation on it a new
allocation). Per key: the 16 multiples n*H and n*H*x^4 of a nibble n; shared:
a 256-entry table for the bits that a byte shift pushes past x^127.

Measured alternatives (300-byte decrypt on the unix and 32-bit WebAssembly
ports): 4-bit Shoup steps were 1.4x slower; an integer-multiplication GHASH
(coefficients spread into 8-bit slots, one 1024x1024-bit multiply per block)
was 1.8x faster on WebAssembly but left ~100 KB of bignum garbage per decrypt
(this code: ~20 KB) and was 2x slower on unix once free heap was ESP8266-sized.

Limb layout of a 128-bit value v (bit 127 = x^0, GCM numbers bits from the left):
    a = v[127:112] (16 bits)  b = v[111:84]  c = v[83:56]  d = v[55:28]  e = v[27:0]
"""

from array import array

from cryptolib import aes

try:
    from micropython import const
except ImportError:  # pragma: no cover - CPython
    def const(x):
        return x

TAG_LEN = const(16)
NONCE_LEN = const(12)
_MASK28 = const(0xFFFFFFF)
_BLOCKS = const(8)   # counter blocks per ECB call, so 128 bytes of keystream per call
_CHUNK = const(128)
# Counter blocks c, c+1, ..., c+7 back to back, as one int: c * _REP + _STAIR
_REP = ((1 << (128 * _BLOCKS)) - 1) // ((1 << 128) - 1)
_STAIR = sum(j << (128 * (_BLOCKS - 1 - j)) for j in range(_BLOCKS))


def _reduction_table():
    # Shifting Z by 8 (Z * x^8) pushes out a byte r holding x^120..x^127; bit k
    # of r becomes x^(135-k) = x^(7-k) * (1 + x + x^2 + x^7) mod the GCM polynomial,
    # which lands in the top 16 bits (limb a).
    t = array("H", bytes(512))
    for r in range(256):
        v = 0
        for k in range(8):
            if r >> k & 1:
                v ^= 0xE100 >> (7 - k)
        t[r] = v
    return t


_R8 = _reduction_table()


def _times_x(v):
    return (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1


def _limbs(values):
    return (tuple(v >> 112 for v in values), tuple(v >> 84 & _MASK28 for v in values),
            tuple(v >> 56 & _MASK28 for v in values), tuple(v >> 28 & _MASK28 for v in values),
            tuple(v & _MASK28 for v in values))


def _tables(h):
    # n*H for each nibble n (its top bit is x^0, so 8*H = H), then n*H*x^4
    m = [0] * 16
    m[8] = v = h
    for i in (4, 2, 1):
        v = _times_x(v)
        m[i] = v
    for i in (2, 4, 8):
        for j in range(1, i):
            m[i + j] = m[i] ^ m[j]
    m4 = []
    for v in m:
        for _ in range(4):
            v = _times_x(v)
        m4.append(v)
    return _limbs(m) + _limbs(m4)


def _ghash_update(y, tables, data):
    # y = (y ^ block) * H for each 16-byte block of data, the last one
    # zero-padded. y is a plain int between blocks, limbs inside the loop.
    r8 = _R8
    t0, t1, t2, t3, t4, u0, u1, u2, u3, u4 = tables
    n = len(data)
    for i in range(0, n, 16):
        x = int.from_bytes(data[i:i + 16], "big")
        if n - i < 16:
            x <<= (16 + i - n) << 3
        blk = (x ^ y).to_bytes(16, "big")
        a = b = c = d = e = 0
        for j in range(15, -1, -1):      # from the x^127 end: Z = Z*x^8 + byte*H
            hi = blk[j]
            lo = hi & 15                  # x^(8j+4)..x^(8j+7): the u (H*x^4) table
            hi >>= 4
            r = e & 255
            e = ((e >> 8) | ((d & 255) << 20)) ^ t4[hi] ^ u4[lo]
            d = ((d >> 8) | ((c & 255) << 20)) ^ t3[hi] ^ u3[lo]
            c = ((c >> 8) | ((b & 255) << 20)) ^ t2[hi] ^ u2[lo]
            b = ((b >> 8) | ((a & 255) << 20)) ^ t1[hi] ^ u1[lo]
            a = (a >> 8) ^ r8[r] ^ t0[hi] ^ u0[lo]
        y = (a << 112) | (b << 84) | (c << 56) | (d << 28) | e
    return y


class AuthError(ValueError):
    """The tag does not match: wrong key, nonce or AAD, or altered data."""


class AesGcm:
    """AES-128-GCM with one key; reusable for any number of messages."""

    def __init__(self, key):
        if len(key) != 16:
            raise ValueError("AES-128 key must be 16 bytes")
        self._aes = aes(bytes(key), 1)
        self._ks = bytearray(_CHUNK)             # keystream buffer, reused by every call
        self._ksmv = memoryview(self._ks)
        self._tables = _tables(int.from_bytes(self._aes.encrypt(bytes(16)), "big"))

    def encrypt(self, nonce, plaintext, aad=b""):
        """Return ciphertext + 16-byte tag."""
        base = self._base(nonce)
        n = len(plaintext)
        out = bytearray(n + TAG_LEN)
        mv = memoryview(out)
        self._ctr(base, memoryview(plaintext), mv, n)
        mv[n:] = self._tag(base, aad, mv[:n]).to_bytes(TAG_LEN, "big")
        return bytes(out)

    def decrypt(self, nonce, data, aad=b""):
        """Return the plaintext of ciphertext + tag, or raise AuthError."""
        base = self._base(nonce)
        n = len(data) - TAG_LEN
        if n < 0:
            raise ValueError("data shorter than the tag")
        mv = memoryview(data)
        if self._tag(base, aad, mv[:n]) != int.from_bytes(mv[n:], "big"):
            raise AuthError("GCM tag mismatch")
        # Decrypted only once authenticated: forged plaintext never exists.
        out = bytearray(n)
        self._ctr(base, mv, memoryview(out), n)
        return bytes(out)

    def _base(self, nonce):
        if len(nonce) != NONCE_LEN:
            raise ValueError("nonce must be 12 bytes")
        return int.from_bytes(nonce, "big") << 32     # nonce || 32-bit counter 0

    def _tag(self, base, aad, ct):
        tables = self._tables
        y = _ghash_update(_ghash_update(0, tables, aad), tables, ct)
        lens = (len(aad) << 67) | (len(ct) << 3)      # bit lengths, 64 bits each
        y = _ghash_update(y, tables, lens.to_bytes(16, "big"))
        return y ^ int.from_bytes(self._aes.encrypt((base | 1).to_bytes(16, "big")), "big")

    def _ctr(self, base, src, dst, n):
        # Counters from 2 (1 masks the tag); 2**32 blocks (64 GiB) would wrap,
        # far beyond any frame. One ECB call and one bignum XOR per 128 bytes,
        # not a Python loop per byte.
        ks = self._ks
        ksmv = self._ksmv
        enc = self._aes.encrypt
        c = base | 2
        for p in range(0, n, _CHUNK):
            enc((c * _REP + _STAIR).to_bytes(_CHUNK, "big"), ks)
            m = min(_CHUNK, n - p)
            x = int.from_bytes(src[p:p + m], "big") ^ int.from_bytes(ksmv[:m], "big")
            dst[p:p + m] = x.to_bytes(m, "big")
            c += _BLOCKS
