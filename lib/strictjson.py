"""JSON from an untrusted peer, the same on MicroPython and CPython.

    value = strictjson.loads(body)       # ValueError with a sentence for the user

Before json.loads sees the text, one pass over the bytes checks what the two
json modules get wrong or differently:
  - the bytes are UTF-8: MicroPython's decoder lets encoded surrogates
    (ED A0 80) through, and a string that cannot be encoded again breaks
    whatever stores or sends it later;
  - nesting stays within max_depth: a body nested a thousand deep exhausts
    the parser (RecursionError on CPython, MemoryError on MicroPython);
  - every \\u escape is a character: a lone surrogate (\\ud800) is refused;
    a pair (\\ud83d\\ude00) is replaced by the character's UTF-8 bytes, since
    MicroPython's json keeps its halves as two invalid characters.
"""
import json

from micropython import const

MAX_DEPTH = const(8)
_HEX = b"0123456789abcdefABCDEF"


def _utf8_len(b, i, n):
    """Length of the valid UTF-8 sequence at b[i] (b[i] >= 0x80), else 0."""
    c = b[i]
    if 0xC2 <= c <= 0xDF:
        k, lo, hi = 2, 0x80, 0xBF
    elif c == 0xE0:
        k, lo, hi = 3, 0xA0, 0xBF          # no overlong forms
    elif c == 0xED:
        k, lo, hi = 3, 0x80, 0x9F          # no surrogates
    elif 0xE1 <= c <= 0xEF:
        k, lo, hi = 3, 0x80, 0xBF
    elif c == 0xF0:
        k, lo, hi = 4, 0x90, 0xBF
    elif 0xF1 <= c <= 0xF3:
        k, lo, hi = 4, 0x80, 0xBF
    elif c == 0xF4:
        k, lo, hi = 4, 0x80, 0x8F          # nothing above U+10FFFF
    else:
        return 0
    if i + k > n or not lo <= b[i + 1] <= hi:
        return 0
    for j in range(i + 2, i + k):
        if not 0x80 <= b[j] <= 0xBF:
            return 0
    return k


def _hex4(b, i):
    """The 4 hex digits at b[i:i+4] as a number, or -1."""
    if i + 4 > len(b):
        return -1
    for j in range(i, i + 4):
        if b[j] not in _HEX:
            return -1
    return int(bytes(b[i:i + 4]), 16)


def _utf8(cp):
    """A code point above U+FFFF as its 4 UTF-8 bytes."""
    return bytes((0xF0 | cp >> 18, 0x80 | (cp >> 12) & 0x3F, 0x80 | (cp >> 6) & 0x3F, 0x80 | cp & 0x3F))


def check(b, max_depth=MAX_DEPTH):
    """b (bytes) checked as described above; returns the bytes to parse
    (b itself, or a copy with surrogate pairs replaced). ValueError if not."""
    n = len(b)
    i = depth = last = 0
    in_str = False
    out = None
    while i < n:
        c = b[i]
        if c >= 0x80:
            k = _utf8_len(b, i, n)
            if not k:
                raise ValueError("body is not valid UTF-8")
            i += k
            continue
        if in_str:
            if c == 0x22:                   # "
                in_str = False
            elif c == 0x5C:                 # backslash
                if b[i + 1:i + 2] == b"u":
                    v = _hex4(b, i + 2)
                    if 0xD800 <= v <= 0xDBFF and b[i + 6:i + 8] == b"\\u":
                        lo = _hex4(b, i + 8)
                        if 0xDC00 <= lo <= 0xDFFF:
                            if out is None:
                                out = bytearray()
                            out += b[last:i]
                            out += _utf8(0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00))
                            i += 12
                            last = i
                            continue
                    if 0xD800 <= v <= 0xDFFF:
                        raise ValueError("body has a lone surrogate (\\u%04x) in a string" % v)
                    i += 6
                    continue
                i += 2
                continue
        elif c == 0x22:
            in_str = True
        elif c == 0x5B or c == 0x7B:        # [ {
            depth += 1
            if depth > max_depth:
                raise ValueError("body is nested deeper than %d levels" % max_depth)
        elif c == 0x5D or c == 0x7D:        # ] }
            depth -= 1
        i += 1
    if out is None:
        return b
    out += b[last:]
    return bytes(out)


def loads(b, max_depth=MAX_DEPTH):
    """The JSON value in b (bytes or str); ValueError with a sentence if b
    is not strict JSON as described above."""
    if isinstance(b, str):
        b = b.encode()
    b = check(b, max_depth)
    try:
        return json.loads(b.decode())
    except (ValueError, TypeError, IndexError):  # MicroPython's parser raises these too
        raise ValueError("body is not valid JSON")
