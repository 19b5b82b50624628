"""Fuzzing the two parsers that see bytes from the network: dtu.frame.FrameReader
and proto_min.decode.

Random bytes (hypothesis) and a deterministic mutation loop over valid frames
and messages (bit flips, truncation, insertion, deletion, duplication,
splicing, length-field edits). Whatever comes in:
- only FrameError/CrcError (reader) or DecodeError (decoder) escape;
- the work is bounded by the input: next() calls <= len/2 + feeds, _varint
  calls <= len + 1, and no call takes long;
- what comes out is no bigger than what went in, and every frame the reader
  returns is a CRC-valid frame that was really in the stream;
- when both our decoder and Google's accept a message, they agree.
CPython only (pytest + hypothesis).
"""
import importlib
import random
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from proto_min import I32, I64, U32, U64, BOOL, STR, DecodeError, decode, encode
from proto_min import codec
from dtu import config_schemas, frame
from dtu import schemas as s
from dtu.frame import CrcError, FrameError, FrameReader
from support.pbview import fields, from_pb, normalize  # one Google-to-dict view for both oracles
from support.pbview import pb_class as google_class

importlib.import_module("hoymiles_wifi.protobuf.RealDataNew_pb2")   # the oracle: make setup installs it

# tag of the request -> reply schema
REPLIES = dict((tag, pair[1]) for table in (s.BY_TAG, config_schemas.BY_TAG)
               for tag, pair in table.items())
REPLY_SCHEMAS = []
for _sch in REPLIES.values():
    if not any(_sch is x for x in REPLY_SCHEMAS):
        REPLY_SCHEMAS.append(_sch)
SCHEMA_NAMES = {}
for _mod in (s, config_schemas):
    for _n in dir(_mod):
        _v = getattr(_mod, _n)
        if isinstance(_v, tuple) and _v and isinstance(_v[0], int):
            SCHEMA_NAMES[id(_v)] = _n
MAX_CASE_SECONDS = 0.25   # generous: a case takes well under a millisecond


def name_of(schema):
    return SCHEMA_NAMES[id(schema)]


# ---- measuring what comes out ---------------------------------------------------

def out_size(v, top=True):
    """A lower bound of the wire bytes `v` needs: every scalar and list item
    takes at least one byte, a string its UTF-8 length, a nested message two."""
    if isinstance(v, dict):
        return (0 if top else 2) + sum(out_size(x, False) for x in v.values())
    if isinstance(v, list):
        return sum(out_size(x, False) for x in v)
    if isinstance(v, (bytes, bytearray)):
        return len(v)
    if isinstance(v, str):
        return len(v.encode("utf-8"))
    assert isinstance(v, (int, bool)), type(v)
    return 1


class VarintCounter:
    """Counts codec._varint calls (each successful one consumes a byte)."""

    def __init__(self):
        self.calls = 0
        self._orig = codec._varint

    def __call__(self, buf, i, end):
        self.calls += 1
        return self._orig(buf, i, end)


@pytest.fixture
def varints(monkeypatch):
    counter = VarintCounter()
    monkeypatch.setattr(codec, "_varint", counter)
    return counter


def check_decode(schema, data, counter=None):
    """Decode under the invariants; returns the dict or None on DecodeError."""
    if counter is not None:
        counter.calls = 0
    t0 = time.perf_counter()
    try:
        out = decode(schema, data)
    except DecodeError:
        out = None
    except Exception as e:  # pragma: no cover - a finding
        raise AssertionError("%s escaped decode(%s, %s): %r"
                             % (type(e).__name__, name_of(schema), bytes(data).hex(), e))
    assert time.perf_counter() - t0 < MAX_CASE_SECONDS, bytes(data).hex()
    if counter is not None:
        assert counter.calls <= len(data) + 1, (counter.calls, bytes(data).hex())
    if out is not None:
        assert out_size(out) <= len(data), (out, bytes(data).hex())
    return out


# ---- the Google oracle (differential) ---------------------------------------------

def pb_class(schema):
    return google_class(name_of(schema))


class Differential:
    def __init__(self):
        self.agreed = 0
        self.google_only_failed = 0

    def check(self, schema, data, ours):
        if ours is None:
            return
        try:
            theirs = pb_class(schema).FromString(bytes(data))
        except Exception:
            # e.g. bad UTF-8 in a string field our schema leaves out
            self.google_only_failed += 1
            return
        assert normalize(ours, schema) == from_pb(theirs, schema), bytes(data).hex()
        self.agreed += 1


# ---- building valid inputs ---------------------------------------------------------

INT_RANGES = {I32: (-2 ** 31, 2 ** 31 - 1), I64: (-2 ** 63, 2 ** 63 - 1),
              U32: (0, 2 ** 32 - 1), U64: (0, 2 ** 64 - 1)}


def random_value(rng, kind, depth):
    if isinstance(kind, tuple):
        return random_message(rng, kind, depth + 1)
    if kind in INT_RANGES:
        lo, hi = INT_RANGES[kind]
        r = rng.random()
        if r < 0.5:
            return rng.randint(max(lo, -100), 5000)
        if r < 0.8:
            return rng.randint(lo, hi)
        return rng.choice((lo, hi, 0, 1))
    if kind == BOOL:
        return rng.random() < 0.5
    if kind == STR:
        return "".join(rng.choice("abcXYZ019 .:-\u00e4\u20ac\U0001f31e")
                       for _ in range(rng.randint(0, 20)))
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 24)))


def random_message(rng, schema, depth=0):
    msg = {}
    for num, name, kind in fields(schema):
        if rng.random() < 0.4:
            continue
        if num < 0:
            msg[name] = [random_value(rng, kind, depth) for _ in range(rng.randint(0, 3))]
        else:
            msg[name] = random_value(rng, kind, depth)
    return msg


def message_corpus(seed=1, per_schema=12):
    rng = random.Random(seed)
    out = []
    for schema in REPLY_SCHEMAS:
        for _ in range(per_schema):
            out.append((schema, encode(schema, random_message(rng, schema))))
    # a realistic RealDataNew reply
    real = {"device_serial_number": "414393132164", "timestamp": 1742542601, "ap": 1,
            "sgs_data": [{"serial_number": 0x1164A0012345, "voltage": 2389, "frequency": 4999,
                          "active_power": 741, "temperature": -52, "power_factor": 1000}],
            "pv_data": [{"serial_number": 0x1164A0012345, "port_number": p, "voltage": 330,
                         "power": 371, "energy_total": 1234567} for p in (1, 2)],
            "dtu_power": 741, "dtu_daily_energy": 4645}
    out.append((s.RealDataNewReqDTO, encode(s.RealDataNewReqDTO, real)))
    return out


def mutate(rng, data, corpus_bytes=None):
    """One or more random edits of `data`."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(9)
        n = len(b)
        if op == 0 and n:                       # bit flips
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:                     # truncation
            del b[rng.randrange(n):]
        elif op == 2:                           # insertion
            pos = rng.randint(0, n)
            b[pos:pos] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8)))
        elif op == 3 and n:                     # deletion
            pos = rng.randrange(n)
            del b[pos:pos + rng.randint(1, 8)]
        elif op == 4 and n:                     # interesting byte values
            b[rng.randrange(n)] = rng.choice((0x00, 0x7F, 0x80, 0xFF, 0x48, 0x4D, 0x0A))
        elif op == 5 and n:                     # duplicate a slice
            pos = rng.randrange(n)
            b[pos:pos] = b[pos:pos + rng.randint(1, 16)]
        elif op == 6 and corpus_bytes:          # splice with another input
            other = rng.choice(corpus_bytes)
            cut = rng.randint(0, n)
            b = b[:cut] + bytearray(other[rng.randint(0, len(other)):])
        elif op == 7 and n:                     # a long varint run
            pos = rng.randint(0, n)
            b[pos:pos] = b"\xff" * rng.randint(1, 12)
        elif op == 8 and n:                     # swap two bytes
            i, j = rng.randrange(n), rng.randrange(n)
            b[i], b[j] = b[j], b[i]
    return bytes(b)


def length_edit(rng, data):
    """Rewrite the first length-delimited field's length."""
    i = 0
    n = len(data)
    while i < n:
        try:
            key, j = codec._varint(data, i, n)
        except DecodeError:
            return data
        wt = key & 7
        if wt == 2:
            try:
                ln, k = codec._varint(data, j, n)
            except DecodeError:
                return data
            new = rng.choice((0, 1, ln - 1, ln + 1, ln + 100, 0x7F, 0x80, 2 ** 31, 2 ** 63))
            return bytes(data[:j]) + vi(max(new, 0)) + bytes(data[k:])
        try:
            i = codec._skip(data, j, n, wt)
        except DecodeError:
            return data
    return data


def vi(v):
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


# ---- proto_min.decode -------------------------------------------------------------

@pytest.mark.parametrize("schema", REPLY_SCHEMAS, ids=[name_of(x) for x in REPLY_SCHEMAS])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300))
def test_decode_random_bytes(schema, data):
    check_decode(schema, data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 7), st.binary(max_size=12)),
                      max_size=12))
def test_decode_random_fields(parts):
    # structured noise: plausible keys of every wire type followed by junk
    data = b"".join(vi(num << 3 | wt) + junk for num, wt, junk in parts)
    for schema in REPLY_SCHEMAS:
        check_decode(schema, data)


def test_decode_mutation_loop(varints):
    rng = random.Random(20240229)
    corpus = message_corpus()
    blobs = [b for _, b in corpus]
    diff = Differential()
    cases = 0
    for schema, good in corpus:
        assert check_decode(schema, good, varints) is not None
        for _ in range(24):
            bad = mutate(rng, good, blobs)
            ours = check_decode(schema, bad, varints)
            diff.check(schema, bad, ours)
            bad = length_edit(rng, good)
            ours = check_decode(schema, bad, varints)
            diff.check(schema, bad, ours)
            cases += 2
    # nested-message bytes fed as the wrong schema, too
    for schema in REPLY_SCHEMAS:
        for _, blob in corpus[::5]:
            diff.check(schema, blob, check_decode(schema, blob, varints))
            cases += 1
    assert cases > 4000
    assert diff.agreed > 500


def test_decode_huge_length_claims_allocate_nothing():
    cases = [
        b"\x0a" + vi(2 ** 62) + b"x",           # a string longer than the universe
        b"\x4a" + vi(2 ** 31) + b"\x00",        # packed list
        b"\x4a" + vi(0x7FFFFFFF) + b"\x0a\x01",  # message
        b"\xfa\x01" + vi(2 ** 40),               # unknown field
        b"\x0a\x05abc",
    ]
    tracemalloc.start()
    try:
        for data in cases:
            for schema in REPLY_SCHEMAS:
                tracemalloc.reset_peak()
                before = tracemalloc.get_traced_memory()[0]
                with pytest.raises(DecodeError):
                    decode(schema, data)
                peak = tracemalloc.get_traced_memory()[1]
                assert peak - before < 16384, (name_of(schema), data.hex(), peak - before)
    finally:
        tracemalloc.stop()


def test_decode_deep_nesting_bounded():
    sch = (1, "v", I32)
    for _ in range(codec.MAX_DEPTH + 3):
        sch = (1, "c", sch)
    body = b""
    for _ in range(3000):
        body = b"\x0a" + vi(len(body)) + body
    t0 = time.perf_counter()
    with pytest.raises(DecodeError):
        decode(sch, body)
    assert time.perf_counter() - t0 < MAX_CASE_SECONDS


# ---- FrameReader -------------------------------------------------------------------

def valid_stream(rng, encrypted, count=6):
    """Frames of assorted tags and sizes, as one byte string."""
    msgs = message_corpus(seed=rng.randrange(1 << 30), per_schema=1)
    tags = [frame.reply_tag(t) for t in REPLIES]
    out = bytearray()
    for _ in range(count):
        tag = rng.choice(tags)
        schema, body = rng.choice(msgs)
        mac = bytes(rng.getrandbits(8) for _ in range(16)) \
            if encrypted and tag not in frame.PLAIN_TAGS else b""
        out += frame.build(tag, rng.randrange(0x10000), body, mac)
    return bytes(out)


def frame_mutate(rng, data):
    """Mutations that target the header as well as the body."""
    b = bytearray(data)
    starts = [i for i in range(len(b) - 1) if b[i] == 0x48 and b[i + 1] == 0x4D]
    for _ in range(rng.randint(1, 3)):
        if not starts or rng.random() < 0.4:
            b = bytearray(mutate(rng, bytes(b)))
            continue
        p = rng.choice(starts)
        if p + 10 > len(b):
            continue
        op = rng.randrange(4)
        if op == 0:                              # the length field
            old = (b[p + 8] << 8) | b[p + 9]
            new = rng.choice((0, 1, 9, 10, 11, old - 1, old + 1, old + 16, old - 16, 0xFFFF,
                              rng.randrange(0x10000)))
            new &= 0xFFFF
            b[p + 8], b[p + 9] = new >> 8, new & 255
        elif op == 1:                            # the CRC
            b[p + 6 + rng.randrange(2)] ^= 1 << rng.randrange(8)
        elif op == 2:                            # the magic
            b[p + rng.randrange(2)] ^= 1 << rng.randrange(8)
        else:                                    # the tag (plain <-> encrypted)
            b[p + 2], b[p + 3] = rng.choice(((0xA2, 0x11), (0xA2, 0x01), (0xA2, 0x02),
                                             (0x22, 0x05)))
    return bytes(b)


def run_reader(data, chunks, encrypted=False, max_len=frame.MAX_FRAME):
    """Feed `data` in the given chunk sizes, draining after each feed; check
    the invariants; returns (frames, errors)."""
    reader = FrameReader(max_len=max_len, encrypted=encrypted)
    frames, errors = [], []
    calls = feeds = 0
    limit = 2 * (max_len + frame.MAC_LEN)
    i = 0
    t0 = time.perf_counter()
    for n in chunks:
        if i >= len(data):
            break
        reader.feed(data[i:i + n])
        i += n
        feeds += 1
        while True:
            calls += 1
            assert calls <= len(data) // 2 + feeds, "next() does not settle: %s" % data.hex()
            try:
                f = reader.next()
            except FrameError as e:  # CrcError included
                errors.append(e)
                continue
            except Exception as e:  # pragma: no cover - a finding
                raise AssertionError("%s escaped next(): %r on %s" % (type(e).__name__, e,
                                                                       data.hex()))
            if f is None:
                break
            frames.append(f)
        assert reader.pending() <= limit
    assert time.perf_counter() - t0 < MAX_CASE_SECONDS * 4
    assert i >= len(data)
    # what came out was really in the stream, CRC-valid and no bigger than it
    for tag, seq, payload, mac in frames:
        assert frame.build(tag, seq, payload, mac) in data
        assert len(mac) == (frame.MAC_LEN if encrypted and tag not in frame.PLAIN_TAGS else 0)
        assert 10 + len(payload) <= max_len
    assert sum(10 + len(p) + len(m) for _, _, p, m in frames) <= len(data)
    assert reader.skipped <= len(data)
    return frames, errors


def chunking(rng, total, biggest):
    out = []
    while total > 0:
        n = rng.randint(1, biggest)
        out.append(n)
        total -= n
    return out


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400), sizes=st.lists(st.integers(1, 64), min_size=1, max_size=20),
       encrypted=st.booleans())
def test_reader_random_bytes(data, sizes, encrypted):
    chunks = list(sizes)
    chunks.append(len(data) + 1)   # the rest in one go
    run_reader(data, chunks, encrypted)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk=st.lists(st.sampled_from([b"H", b"M", b"HM", b"HMHM", b"\x00", b"\xff",
                                      b"HM\xa2\x11\x00\x01\x00\x00\x00\x0a",
                                      b"HM\xa2\x11\x00\x01\x00\x00\x00\x05",
                                      b"HM\xa2\x11\x00\x01\xff\xff\x00\x0a",
                                      b"HM\x00\x00\x00\x00\x00\x00\xff\xff"]), max_size=30),
       sizes=st.lists(st.integers(1, 16), min_size=1, max_size=30))
def test_reader_magic_soup(junk, sizes):
    data = b"".join(junk)
    run_reader(data, list(sizes) + [len(data) + 1])


def test_reader_mutation_loop():
    rng = random.Random(31)
    cases = 0
    recovered = 0
    for k in range(2500):
        encrypted = k % 3 == 0
        max_len = rng.choice((frame.MAX_FRAME, 256))   # 256: some frames too long
        good = valid_stream(rng, encrypted, count=rng.randint(1, 6))
        bad = frame_mutate(rng, good)
        frames, errors = run_reader(bad, chunking(rng, len(bad), max_len + frame.MAC_LEN),
                                    encrypted, max_len)
        recovered += len(frames)
        cases += 1
        # the unmutated stream comes out whole, in any chunking
        if k % 10 == 0:
            frames, errors = run_reader(good, chunking(rng, len(good), 50), encrypted)
            assert errors == []
            cases += 1
    assert cases >= 2700
    assert recovered > 2500


def test_reader_payload_flips_cost_exactly_their_frame():
    # a bit flip inside one payload: CrcError for that frame, all others intact
    rng = random.Random(5)
    for _ in range(300):
        encrypted = rng.random() < 0.5
        frames = []
        for k in range(rng.randint(2, 6)):
            tag = rng.choice((0xA211, 0xA201, 0xA205, 0xA202))
            body = bytes(rng.getrandbits(8) & 0x3F for _ in range(rng.randint(1, 60)))
            mac = bytes(16) if encrypted and tag not in frame.PLAIN_TAGS else b""
            frames.append((tag, k, body, mac))
        victim = rng.randrange(len(frames))
        stream = bytearray()
        for k, (tag, seq, body, mac) in enumerate(frames):
            raw = bytearray(frame.build(tag, seq, body, mac))
            if k == victim:
                raw[10 + rng.randrange(len(body))] ^= 1 << rng.randrange(6)
            stream += raw
        got, errors = run_reader(bytes(stream), chunking(rng, len(stream), 40), encrypted)
        assert got == [f for k, f in enumerate(frames) if k != victim]
        assert len(errors) == 1 and isinstance(errors[0], CrcError)


def test_reader_payloads_into_decoder(varints):
    # what the reader lets through goes to the decoder: the whole pipeline
    rng = random.Random(77)
    for _ in range(300):
        good = valid_stream(rng, False, count=3)
        bad = frame_mutate(rng, good) if rng.random() < 0.7 else good
        frames, _ = run_reader(bad, chunking(rng, len(bad), 256))
        for tag, seq, payload, mac in frames:
            schema = REPLIES.get(tag | 0x100) or REPLIES[0xA311]
            check_decode(schema, payload, varints)
