"""A minimal protobuf (proto3) wire codec for MicroPython and CPython.

Schemas are flat tuples, three slots per field, in field-number order:

    (number, "name", kind,  number, "name", kind,  ...)

`kind` is one of the scalar kinds below or, for a nested message, that
message's schema tuple. A negative number marks a repeated field. There are no
per-field objects: a schema costs one tuple, which matters on an ESP8266.

Decoded messages are dicts keyed by field name. As in proto3, a field that is
absent on the wire is absent from the dict (read it with .get(name, 0)), and
the encoder leaves out zero, empty and missing values, so its output matches
Google's serializer byte for byte. Repeated scalars are written packed and read
packed or unpacked. Fields not in the schema are skipped, whatever their wire
type; a known field arriving with the wrong wire type is skipped likewise, as
Google's parser does.

Every malformed input raises DecodeError; nothing loops or allocates more than
the input's own size.
"""

from micropython import const

I32 = const(0)    # int32: negative values travel as 10-byte two's complement
I64 = const(1)    # int64
U32 = const(2)    # uint32
U64 = const(3)    # uint64
BOOL = const(4)
STR = const(5)
BYTES = const(6)

MAX_DEPTH = const(8)

_WT_VARINT = const(0)
_WT_I64 = const(1)
_WT_LEN = const(2)
_WT_I32 = const(5)
_MASK32 = const(0xFFFFFFFF)
_MASK64 = 0xFFFFFFFFFFFFFFFF
_MAX_FIELD = const(0x1FFFFFFF)


class DecodeError(ValueError):
    """The bytes are not a valid message for this schema."""


class EncodeError(ValueError):
    """The value cannot be encoded with this schema."""


# ---- decoding ---------------------------------------------------------------

def _varint(buf, i, end):
    # Returns (value, next index). At most 10 bytes, as in protobuf.
    result = 0
    shift = 0
    while i < end:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7
        if shift >= 70:
            raise DecodeError("varint longer than 10 bytes")
    raise DecodeError("truncated varint")


def _scalar(v, kind):
    if v < 0x80000000:  # fast path: small non-negative values, the usual case
        return (v != 0) if kind == BOOL else v
    if kind == I32:
        v &= _MASK32
        return v - 0x100000000 if v & 0x80000000 else v
    if kind == I64:
        v &= _MASK64
        return v - 0x10000000000000000 if v >> 63 else v
    if kind == U32:
        return v & _MASK32
    if kind == BOOL:
        return (v & _MASK64) != 0  # bits past 64 are dropped, as by Google
    return v & _MASK64


def _find(schema, num):
    # Linear scan: schemas are short and this keeps them a single tuple.
    n = len(schema)
    k = 0
    while k < n:
        f = schema[k]
        if f == num or f == -num:
            return k
        k += 3
    return -1


def _skip(buf, i, end, wt):
    if wt == _WT_VARINT:
        return _varint(buf, i, end)[1]
    if wt == _WT_I64:
        i += 8
    elif wt == _WT_I32:
        i += 4
    elif wt == _WT_LEN:
        n, i = _varint(buf, i, end)
        i += n
    else:
        raise DecodeError("bad wire type %d" % wt)
    if i > end:
        raise DecodeError("field runs past the end")
    return i


def _text(buf, i, j):
    try:
        return str(bytes(buf[i:j]), "utf-8")
    except UnicodeError:
        raise DecodeError("string is not UTF-8")


def _decode_into(schema, buf, i, end, out, depth):
    if depth > MAX_DEPTH:
        raise DecodeError("nesting too deep")
    while i < end:
        key, i = _varint(buf, i, end)
        num = key >> 3
        wt = key & 7
        if num == 0 or num > _MAX_FIELD:
            raise DecodeError("bad field number")
        k = _find(schema, num)
        if k < 0:
            i = _skip(buf, i, end, wt)
            continue
        name = schema[k + 1]
        kind = schema[k + 2]
        rep = schema[k] < 0
        is_msg = isinstance(kind, tuple)
        if wt == _WT_VARINT and not is_msg and kind < STR:
            v, i = _varint(buf, i, end)
            v = _scalar(v, kind)
            if rep:
                out.setdefault(name, []).append(v)
            else:
                out[name] = v
            continue
        if wt != _WT_LEN:
            i = _skip(buf, i, end, wt)  # wrong wire type for this field
            continue
        n, i = _varint(buf, i, end)
        j = i + n
        if j > end:
            raise DecodeError("length runs past the end")
        if is_msg:
            if rep:
                sub = {}
                out.setdefault(name, []).append(sub)
            else:
                sub = out.get(name)  # a repeated singular message merges
                if sub is None:
                    sub = out[name] = {}
            _decode_into(kind, buf, i, j, sub, depth + 1)
        elif kind == STR or kind == BYTES:
            v = _text(buf, i, j) if kind == STR else bytes(buf[i:j])
            if rep:
                out.setdefault(name, []).append(v)
            else:
                out[name] = v
        elif rep and i < j:  # packed repeated scalars
            lst = out.setdefault(name, [])
            while i < j:
                v, i = _varint(buf, i, j)
                lst.append(_scalar(v, kind))
        i = j
    if i != end:
        raise DecodeError("field runs past the end")
    return out


def decode(schema, data):
    """Decode `data` (bytes, bytearray or memoryview) into a dict."""
    return _decode_into(schema, data, 0, len(data), {}, 0)


# ---- encoding ---------------------------------------------------------------

def _put_varint(out, v):
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _int(v, kind, name):
    if not isinstance(v, int) or isinstance(v, bool):  # bool is an int on CPython only
        raise EncodeError("%s: not an integer" % name)
    if kind == I32:
        ok = -0x80000000 <= v <= 0x7FFFFFFF
    elif kind == I64:
        ok = -0x8000000000000000 <= v <= 0x7FFFFFFFFFFFFFFF
    elif kind == U32:
        ok = 0 <= v <= _MASK32
    else:
        ok = 0 <= v <= _MASK64
    if not ok:
        raise EncodeError("%s: out of range" % name)
    return v & _MASK64 if v < 0 else v


def _encode_value(out, num, kind, v, name, depth):
    if isinstance(kind, tuple):
        body = _encode(kind, v, depth + 1)
        _put_varint(out, num << 3 | _WT_LEN)
        _put_varint(out, len(body))
        out.extend(body)
    elif kind == STR or kind == BYTES:
        if kind == STR:
            if not isinstance(v, str):
                raise EncodeError("%s: not a string" % name)
            v = v.encode()
        elif not isinstance(v, (bytes, bytearray)):
            raise EncodeError("%s: not bytes" % name)
        _put_varint(out, num << 3 | _WT_LEN)
        _put_varint(out, len(v))
        out.extend(v)
    else:
        _put_varint(out, num << 3)
        _put_varint(out, 1 if (kind == BOOL and v) else _int(v, kind, name))


def _encode(schema, msg, depth):
    if depth > MAX_DEPTH:
        raise EncodeError("nesting too deep")
    if not isinstance(msg, dict):
        raise EncodeError("message must be a dict")
    out = bytearray()
    used = 0
    for k in range(0, len(schema), 3):
        num = schema[k]
        name = schema[k + 1]
        kind = schema[k + 2]
        v = msg.get(name)
        if v is None:
            continue
        used += 1
        if num > 0:
            # proto3 sends no zero values; type errors are reported all the same
            if v or isinstance(kind, tuple) or not _is_kind(v, kind):
                _encode_value(out, num, kind, v, name, depth)
            continue
        num = -num
        if not isinstance(v, (list, tuple)):
            raise EncodeError("%s: repeated field needs a list" % name)
        if isinstance(kind, tuple) or kind == STR or kind == BYTES:
            for item in v:
                _encode_value(out, num, kind, item, name, depth)
        elif v:
            packed = bytearray()
            for item in v:
                _put_varint(packed, (1 if item else 0) if kind == BOOL else _int(item, kind, name))
            _put_varint(out, num << 3 | _WT_LEN)
            _put_varint(out, len(packed))
            out.extend(packed)
    if used != len(msg):
        for key in msg:
            if _find_name(schema, key) < 0:
                raise EncodeError("unknown field %r" % (key,))
    return out


def _is_kind(v, kind):
    if kind == STR:
        return isinstance(v, str)
    if kind == BYTES:
        return isinstance(v, (bytes, bytearray))
    if kind == BOOL:
        return isinstance(v, bool) or isinstance(v, int)
    return isinstance(v, int) and not isinstance(v, bool)


def _find_name(schema, name):
    for k in range(1, len(schema), 3):
        if schema[k] == name:
            return k
    return -1


def encode(schema, msg):
    """Encode the dict `msg` with `schema`; returns bytes."""
    return bytes(_encode(schema, msg, 0))
