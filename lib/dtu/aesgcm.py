"""AES-128-GCM (96-bit nonces, 128-bit tags) on top of cryptolib's AES-ECB.

ESP8266 and ESP32 MicroPython offer the AES block cipher (`cryptolib.aes(key, 1)`)
but no GCM, so CTR mode and GHASH are done here in plain Python that also runs
on CPython (tools/host_shims/cryptolib.py stands in for cryptolib there).

Written to leave almost no garbage: a decrypt allocates only its result (the
plaintext, as a bytearray and then as bytes). On an ESP8266 with ~30 KB free,
every kilobyte of garbage per frame means more GC runs and a more fragmented
heap. So no value above 2**30 is ever made per message (a larger int is a heap
bignum on the 31-bit small ints of 32-bit ports), no bytes are sliced, and all
state lives in 16-byte buffers of the AesGcm object. Hence an AesGcm object is
not reentrant; nothing in it yields, so asyncio tasks cannot interleave calls.

GHASH multiplies by H with Shoup's table method, one byte of input per step,
on five limbs (per key: the 16 multiples n*H and n*H*x^4 of a nibble n; shared:
a 256-entry table for the bits that a byte shift pushes past x^127).
Measured (300-byte decrypt, unix port): this code 0.15 ms and 704 bytes
allocated; the earlier version with 128-bit ints per block and one big-int XOR
per 128 bytes of keystream 0.14 ms but 23 KB of garbage. 4-bit steps were 1.4x
slower; an integer-multiplication GHASH left ~100 KB of garbage.

Limb layout of a 128-bit value v (bit 127 = x^0, GCM numbers bits from the left):
    a = v[127:112] (16 bits)  b = v[111:84]  c = v[83:56]  d = v[55:28]  e = v[27:0]
As bytes of v: a = 0-1, b = 2-4 + high nibble of 5, c = low nibble of 5 + 6-8,
d = 9-11 + high nibble of 12, e = low nibble of 12 + 13-15.
"""

from array import array

from cryptolib import aes

from micropython import const

TAG_LEN = const(16)
NONCE_LEN = const(12)
_MASK28 = const(0xFFFFFFF)
_ZERO = bytes(16)


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
    # Once per key, so 128-bit ints are fine here. n*H for each nibble n (its
    # top bit is x^0, so 8*H = H), then n*H*x^4.
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


def _ghash(y, tables, data, n):
    # y = (y ^ block) * H for each 16-byte block of data[:n], the last one
    # zero-padded; y is the 16-byte state, updated in place.
    r8 = _R8
    t0, t1, t2, t3, t4, u0, u1, u2, u3, u4 = tables
    for i in range(0, n, 16):
        src = data
        o = i
        if n - i < 16:                    # partial block: fold it into y now
            for j in range(n - i):
                y[j] ^= data[i + j]
            src = _ZERO
            o = 0
        a = b = c = d = e = 0
        for j in range(15, -1, -1):       # from the x^127 end: Z = Z*x^8 + byte*H
            hi = y[j] ^ src[o + j]
            lo = hi & 15                  # x^(8j+4)..x^(8j+7): the u (H*x^4) table
            hi >>= 4
            r = e & 255
            e = ((e >> 8) | ((d & 255) << 20)) ^ t4[hi] ^ u4[lo]
            d = ((d >> 8) | ((c & 255) << 20)) ^ t3[hi] ^ u3[lo]
            c = ((c >> 8) | ((b & 255) << 20)) ^ t2[hi] ^ u2[lo]
            b = ((b >> 8) | ((a & 255) << 20)) ^ t1[hi] ^ u1[lo]
            a = (a >> 8) ^ r8[r] ^ t0[hi] ^ u0[lo]
        y[0] = a >> 8
        y[1] = a & 255
        y[2] = b >> 20
        y[3] = b >> 12 & 255
        y[4] = b >> 4 & 255
        y[5] = (b & 15) << 4 | c >> 24
        y[6] = c >> 16 & 255
        y[7] = c >> 8 & 255
        y[8] = c & 255
        y[9] = d >> 20
        y[10] = d >> 12 & 255
        y[11] = d >> 4 & 255
        y[12] = (d & 15) << 4 | e >> 24
        y[13] = e >> 16 & 255
        y[14] = e >> 8 & 255
        y[15] = e & 255


class AuthError(ValueError):
    """The tag does not match: wrong key, nonce or AAD, or altered data."""


class AesGcm:
    """AES-128-GCM with one key; reusable for any number of messages."""

    def __init__(self, key):
        if len(key) != 16:
            raise ValueError("AES-128 key must be 16 bytes")
        self._aes = aes(bytes(key), 1)
        self._ctr = bytearray(16)    # counter block: nonce || 32-bit big-endian counter
        self._ks = bytearray(16)     # its encryption: keystream, or the tag mask E(J0)
        self._y = bytearray(16)      # GHASH state, then the tag
        h = int.from_bytes(self._aes.encrypt(_ZERO), "big")
        self._tables = _tables(h)

    def encrypt(self, nonce, plaintext, aad=b""):
        """Return ciphertext + 16-byte tag."""
        self._nonce(nonce)
        n = len(plaintext)
        out = bytearray(n + TAG_LEN)
        self._xor_keystream(plaintext, out, n)
        out[n:] = self._tag(aad, out, n)
        return bytes(out)

    def decrypt(self, nonce, data, aad=b""):
        """Return the plaintext of ciphertext + tag, or raise AuthError."""
        self._nonce(nonce)
        n = len(data) - TAG_LEN
        if n < 0:
            raise ValueError("data shorter than the tag")
        tag = self._tag(aad, data, n)
        diff = 0
        for k in range(16):               # no early exit: timing says nothing
            diff |= tag[k] ^ data[n + k]
        if diff:
            raise AuthError("GCM tag mismatch")
        # Decrypted only once authenticated: forged plaintext never exists.
        out = bytearray(n)
        self._xor_keystream(data, out, n)
        return bytes(out)

    def _nonce(self, nonce):
        if len(nonce) != NONCE_LEN:
            raise ValueError("nonce must be 12 bytes")
        self._ctr[:NONCE_LEN] = nonce

    def _encrypt_counter(self, c):
        # ks = E(nonce || c)
        ctr = self._ctr
        ctr[12] = c >> 24 & 255
        ctr[13] = c >> 16 & 255
        ctr[14] = c >> 8 & 255
        ctr[15] = c & 255
        self._aes.encrypt(ctr, self._ks)
        return self._ks

    def _tag(self, aad, ct, n):
        # GHASH(aad, ct[:n], bit lengths) ^ E(nonce || 1), left in self._y
        y = self._y
        y[:] = _ZERO
        tables = self._tables
        _ghash(y, tables, aad, len(aad))
        _ghash(y, tables, ct, n)
        la = len(aad) << 3
        lc = n << 3
        for k in range(8):                # the lengths block: two 64-bit big-endian
            y[7 - k] ^= la >> (k << 3) & 255
            y[15 - k] ^= lc >> (k << 3) & 255
        _ghash(y, tables, _ZERO, 16)
        ks = self._encrypt_counter(1)
        for k in range(16):
            y[k] ^= ks[k]
        return y

    def _xor_keystream(self, src, dst, n):
        # dst[:n] = src[:n] ^ keystream, counters from 2 (1 masks the tag); 2**32
        # blocks (64 GiB) would wrap, far beyond any frame. A byte loop and one
        # ECB call per block: an int XOR per chunk would be fast, but garbage.
        c = 2
        for p in range(0, n, 16):
            ks = self._encrypt_counter(c)
            for k in range(min(16, n - p)):
                dst[p + k] = src[p + k] ^ ks[k]
            c += 1
