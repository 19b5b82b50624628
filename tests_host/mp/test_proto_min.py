"""proto_min: the hand-written protobuf codec, byte by byte.

Board-side test: plain unittest, runs under pytest and under the unix
MicroPython (tests_host/mp/run_all.py). The expected bytes are written out or
built with the tiny independent encoder below, never with the codec itself;
tests_host/oracle/test_oracle_codec.py compares the codec with Google's.
"""
import unittest

import proto_min
from proto_min import (I32, I64, U32, U64, BOOL, STR, BYTES,
                       DecodeError, EncodeError, decode, encode)
from proto_min import codec
from dtu import schemas as s

M64 = 0xFFFFFFFFFFFFFFFF


def h(text):
    """bytes from spaced hex."""
    return bytes.fromhex(text.replace(" ", ""))


def vi(v):
    """Reference varint (v >= 0), independent of the codec."""
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num, wt):
    return vi(num << 3 | wt)


def fld(num, v):
    """A varint field; negative v as 10-byte two's complement."""
    return key(num, 0) + vi(v & M64)


def ld(num, body):
    """A length-delimited field."""
    return key(num, 2) + vi(len(body)) + bytes(body)


ONE = {}
for _n, _k in (("i32", I32), ("i64", I64), ("u32", U32), ("u64", U64), ("b", BOOL),
               ("s", STR), ("y", BYTES)):
    ONE[_n] = (1, "v", _k)

ALL = (
    1, "i32", I32,
    2, "i64", I64,
    3, "u32", U32,
    4, "u64", U64,
    5, "b", BOOL,
    6, "s", STR,
    7, "y", BYTES,
    -8, "ri", I64,
    -9, "rb", BOOL,
    -10, "rs", STR,
    -11, "ry", BYTES,
)
INNER = (1, "a", I32, -2, "r", I32, 3, "t", STR)
OUTER = (1, "x", I32, 2, "one", INNER, -3, "many", INNER, 4, "z", STR)


def chain(levels):
    """A self-similar schema nesting `levels` times through field 1 ("c")."""
    sch = (1, "c", I32, 2, "v", I32)
    for _ in range(levels):
        sch = (1, "c", sch, 2, "v", I32)
    return sch


def nested_bytes(levels, leaf=b""):
    """Raw bytes of `levels` messages nested through field 1."""
    body = leaf
    for _ in range(levels):
        body = ld(1, body)
    return body


class TestVarint(unittest.TestCase):
    VALUES = (0, 1, 127, 128, 300, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 63 - 1, 2 ** 64 - 1)

    def test_reference_varint(self):
        # The helper itself, against the textbook examples.
        self.assertEqual(vi(0), h("00"))
        self.assertEqual(vi(1), h("01"))
        self.assertEqual(vi(127), h("7f"))
        self.assertEqual(vi(128), h("8001"))
        self.assertEqual(vi(300), h("ac02"))
        self.assertEqual(vi(2 ** 31 - 1), h("ffffffff07"))
        self.assertEqual(vi(2 ** 32 - 1), h("ffffffff0f"))
        self.assertEqual(vi(2 ** 63 - 1), h("ffffffffffffffff7f"))
        self.assertEqual(vi(2 ** 64 - 1), h("ffffffffffffffffff01"))

    def test_uint64_round_trip(self):
        for v in self.VALUES:
            data = encode(ONE["u64"], {"v": v})
            self.assertEqual(data, b"" if v == 0 else fld(1, v))
            self.assertEqual(decode(ONE["u64"], data).get("v", 0), v)

    def test_uint64_exact_bytes(self):
        self.assertEqual(encode(ONE["u64"], {"v": 1}), h("08 01"))
        self.assertEqual(encode(ONE["u64"], {"v": 127}), h("08 7f"))
        self.assertEqual(encode(ONE["u64"], {"v": 128}), h("08 80 01"))
        self.assertEqual(encode(ONE["u64"], {"v": 2 ** 64 - 1}), h("08 ffffffffffffffffff01"))

    def test_int64_round_trip(self):
        for v in (0, 1, 127, 128, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 63 - 1, -1, -128,
                  -2 ** 31, -2 ** 63):
            data = encode(ONE["i64"], {"v": v})
            self.assertEqual(data, b"" if v == 0 else fld(1, v))
            self.assertEqual(decode(ONE["i64"], data).get("v", 0), v)

    def test_int32_round_trip(self):
        for v in (1, 127, 128, 2 ** 31 - 1, -1, -52, -2 ** 31):
            data = encode(ONE["i32"], {"v": v})
            self.assertEqual(data, fld(1, v))
            self.assertEqual(decode(ONE["i32"], data), {"v": v})

    def test_uint32_round_trip(self):
        for v in (1, 127, 128, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1):
            data = encode(ONE["u32"], {"v": v})
            self.assertEqual(data, fld(1, v))
            self.assertEqual(decode(ONE["u32"], data), {"v": v})

    def test_negative_is_ten_bytes(self):
        for kind in ("i32", "i64"):
            data = encode(ONE[kind], {"v": -1})
            self.assertEqual(data, h("08 ffffffffffffffffff01"))
            self.assertEqual(len(data), 11)

    def test_negative_temperature_protocol_example(self):
        # protocol.md: -5.2 degC arrives as 0xFFFFFFFFFFFFFFCC (SGSMO.temperature = 9)
        data = encode(s.SGSMO, {"temperature": -52})
        self.assertEqual(data, h("48 ccffffffffffffffff01"))
        self.assertEqual(vi(0xFFFFFFFFFFFFFFCC), data[1:])
        self.assertEqual(decode(s.SGSMO, data), {"temperature": -52})

    def test_int32_five_byte_negative_also_accepted(self):
        # Some encoders sign-extend to 32 bits only; the low 32 bits decide.
        self.assertEqual(decode(ONE["i32"], h("08 ccffffff0f")), {"v": -52})

    def test_int32_truncates_to_low_32_bits(self):
        self.assertEqual(decode(ONE["i32"], fld(1, 2 ** 32 + 5)), {"v": 5})
        self.assertEqual(decode(ONE["i32"], fld(1, 2 ** 32 - 1)), {"v": -1})
        self.assertEqual(decode(ONE["i32"], fld(1, 2 ** 31)), {"v": -2 ** 31})
        self.assertEqual(decode(ONE["i32"], fld(1, 2 ** 63)), {"v": 0})

    def test_int64_sign(self):
        self.assertEqual(decode(ONE["i64"], fld(1, 2 ** 63)), {"v": -2 ** 63})
        self.assertEqual(decode(ONE["i64"], fld(1, 2 ** 64 - 1)), {"v": -1})
        self.assertEqual(decode(ONE["i64"], fld(1, 2 ** 63 - 1)), {"v": 2 ** 63 - 1})

    def test_uint32_truncation(self):
        self.assertEqual(decode(ONE["u32"], fld(1, 2 ** 32)), {"v": 0})
        self.assertEqual(decode(ONE["u32"], fld(1, 2 ** 32 + 7)), {"v": 7})
        self.assertEqual(decode(ONE["u32"], fld(1, 2 ** 64 - 1)), {"v": 2 ** 32 - 1})
        # a negative int32 sent into a uint32 field reads as its 32-bit pattern
        self.assertEqual(decode(ONE["u32"], fld(1, -52)), {"v": 2 ** 32 - 52})

    def test_uint64_truncation_of_overlong_varint(self):
        # a 10-byte varint carries 70 bits; only the low 64 count
        data = h("08 ffffffffffffffffff7f")
        self.assertEqual(decode(ONE["u64"], data), {"v": 2 ** 64 - 1})
        self.assertEqual(decode(ONE["i64"], data), {"v": -1})
        self.assertEqual(decode(ONE["u32"], data), {"v": 2 ** 32 - 1})
        self.assertEqual(decode(ONE["i32"], data), {"v": -1})

    def test_non_canonical_varint(self):
        # padded with 0x80 continuation bytes: still the same value
        self.assertEqual(decode(ONE["i32"], h("08 8580808000")), {"v": 5})
        self.assertEqual(decode(ONE["u64"], h("08 81808080808080808000")), {"v": 1})

    def test_encode_range(self):
        good = (("i32", -2 ** 31), ("i32", 2 ** 31 - 1), ("i64", -2 ** 63), ("i64", 2 ** 63 - 1),
                ("u32", 2 ** 32 - 1), ("u64", 2 ** 64 - 1))
        for kind, v in good:
            self.assertEqual(decode(ONE[kind], encode(ONE[kind], {"v": v})), {"v": v})
        bad = (("i32", -2 ** 31 - 1), ("i32", 2 ** 31), ("i64", -2 ** 63 - 1), ("i64", 2 ** 63),
               ("u32", -1), ("u32", 2 ** 32), ("u64", -1), ("u64", 2 ** 64))
        for kind, v in bad:
            with self.assertRaises(EncodeError):
                encode(ONE[kind], {"v": v})


class TestBool(unittest.TestCase):
    def test_encode(self):
        self.assertEqual(encode(ONE["b"], {"v": True}), h("08 01"))
        self.assertEqual(encode(ONE["b"], {"v": False}), b"")

    def test_decode(self):
        self.assertEqual(decode(ONE["b"], h("08 01")), {"v": True})
        self.assertEqual(decode(ONE["b"], h("08 00")), {"v": False})
        self.assertIs(decode(ONE["b"], h("08 01"))["v"], True)
        self.assertIs(decode(ONE["b"], h("08 00"))["v"], False)
        # any non-zero varint is true, as in Google's parser
        self.assertEqual(decode(ONE["b"], h("08 02")), {"v": True})
        self.assertEqual(decode(ONE["b"], fld(1, 2 ** 40)), {"v": True})
        self.assertEqual(decode(ONE["b"], fld(1, 2 ** 63)), {"v": True})

    def test_decode_bits_beyond_64_are_dropped(self):
        # Google reads the varint as a uint64 first: bit 64 alone is false.
        self.assertEqual(decode(ONE["b"], h("08 80808080808080808002")), {"v": False})

    def test_packed_repeated(self):
        data = encode(ALL, {"rb": [True, False, True]})
        self.assertEqual(data, h("4a 03 010001"))
        self.assertEqual(decode(ALL, data), {"rb": [True, False, True]})


class TestStringsAndBytes(unittest.TestCase):
    def test_ascii(self):
        self.assertEqual(encode(ONE["s"], {"v": "abc"}), h("0a 03 616263"))
        self.assertEqual(decode(ONE["s"], h("0a 03 616263")), {"v": "abc"})

    def test_utf8(self):
        text = "Gr\u00fc\u00dfe \u2600 \U0001f31e"
        raw = text.encode("utf-8")
        data = encode(ONE["s"], {"v": text})
        self.assertEqual(data, ld(1, raw))
        self.assertEqual(data[1], len(raw))  # the length counts bytes, not characters
        self.assertEqual(decode(ONE["s"], data), {"v": text})

    def test_not_utf8(self):
        for raw in (b"\xff", b"\xfe\xff", b"a\x80b", b"\xe2\x98", b"ab\xc3"):
            with self.assertRaises(DecodeError):
                decode(ONE["s"], ld(1, raw))

    def test_not_utf8_in_unknown_or_bytes_field_is_fine(self):
        self.assertEqual(decode(ONE["y"], ld(1, b"\xff\xfe")), {"v": b"\xff\xfe"})
        self.assertEqual(decode(ONE["i32"], ld(7, b"\xff\xfe")), {})

    def test_bytes(self):
        raw = bytes(range(256))
        data = encode(ONE["y"], {"v": raw})
        self.assertEqual(data, ld(1, raw))
        self.assertEqual(data[1:3], h("8002"))  # length 256 as a 2-byte varint
        out = decode(ONE["y"], data)
        self.assertEqual(out, {"v": raw})
        self.assertIsInstance(out["v"], bytes)

    def test_bytearray_value(self):
        self.assertEqual(encode(ONE["y"], {"v": bytearray(b"\x00\x01")}), h("0a 02 0001"))

    def test_empty_values_are_omitted(self):
        self.assertEqual(encode(ONE["s"], {"v": ""}), b"")
        self.assertEqual(encode(ONE["y"], {"v": b""}), b"")

    def test_empty_on_the_wire(self):
        self.assertEqual(decode(ONE["s"], h("0a 00")), {"v": ""})
        self.assertEqual(decode(ONE["y"], h("0a 00")), {"v": b""})

    def test_decode_accepts_bytearray_and_memoryview(self):
        data = h("0a 03 616263")
        self.assertEqual(decode(ONE["s"], bytearray(data)), {"v": "abc"})
        self.assertEqual(decode(ONE["s"], memoryview(data)), {"v": "abc"})
        out = decode(ONE["y"], memoryview(bytearray(data)))
        self.assertEqual(out, {"v": b"abc"})
        self.assertIsInstance(out["v"], bytes)

    def test_repeated_strings_and_bytes(self):
        msg = {"rs": ["a", "", "b"], "ry": [b"\x00", b""]}
        data = encode(ALL, msg)
        self.assertEqual(data, ld(10, b"a") + ld(10, b"") + ld(10, b"b")
                         + ld(11, b"\x00") + ld(11, b""))
        self.assertEqual(decode(ALL, data), msg)


class TestMessages(unittest.TestCase):
    def test_nested(self):
        msg = {"x": 1, "one": {"a": -1, "t": "hi"}, "z": "end"}
        data = encode(OUTER, msg)
        inner = fld(1, -1) + ld(3, b"hi")
        self.assertEqual(data, fld(1, 1) + ld(2, inner) + ld(4, b"end"))
        self.assertEqual(decode(OUTER, data), msg)

    def test_repeated_messages(self):
        msg = {"many": [{"a": 1}, {}, {"r": [1, 2, 3]}]}
        data = encode(OUTER, msg)
        self.assertEqual(data, ld(3, fld(1, 1)) + ld(3, b"") + ld(3, ld(2, h("010203"))))
        self.assertEqual(decode(OUTER, data), msg)

    def test_empty_singular_message_is_sent(self):
        # a sub-message has presence: an empty one is sent, and decodes back
        self.assertEqual(encode(OUTER, {"one": {}}), h("12 00"))
        self.assertEqual(decode(OUTER, h("12 00")), {"one": {}})
        self.assertEqual(encode(OUTER, {"one": {"a": 0}}), h("12 00"))

    def test_real_data_like(self):
        msg = {
            "device_serial_number": "414393132164",
            "timestamp": 1742542601,
            "ap": 1,
            "sgs_data": [{"serial_number": 0x1A2B3C4D5E6F, "voltage": 2389, "temperature": -52}],
            "pv_data": [{"serial_number": 0x1A2B3C4D5E6F, "port_number": 1, "power": 371},
                        {"serial_number": 0x1A2B3C4D5E6F, "port_number": 2, "power": 370}],
            "dtu_power": 741,
        }
        data = encode(s.RealDataNewReqDTO, msg)
        self.assertEqual(decode(s.RealDataNewReqDTO, data), msg)

    def test_singular_message_twice_merges(self):
        first = ld(2, fld(1, 5) + ld(2, h("0102")) + ld(3, b"old"))
        second = ld(2, ld(2, h("03")) + ld(3, b"new"))
        out = decode(OUTER, first + fld(1, 9) + second)
        self.assertEqual(out, {"x": 9, "one": {"a": 5, "r": [1, 2, 3], "t": "new"}})

    def test_singular_message_twice_merges_real_schema(self):
        a = ld(8, fld(2, 0x1001) + fld(3, 0x100))
        b = ld(8, fld(2, 0x1102) + ld(27, b"\x01\x02"))
        out = decode(s.APPInfoDataReqDTO, a + b)
        self.assertEqual(out, {"dtu_info": {"dtu_sw_version": 0x1102, "dtu_hw_version": 0x100,
                                            "enc_rand": b"\x01\x02"}})

    def test_repeated_message_twice_appends(self):
        data = ld(3, fld(1, 1)) + fld(1, 2) + ld(3, fld(1, 3))
        self.assertEqual(decode(OUTER, data), {"many": [{"a": 1}, {"a": 3}], "x": 2})

    def test_scalar_twice_last_wins(self):
        self.assertEqual(decode(OUTER, fld(1, 1) + fld(1, 2)), {"x": 2})
        self.assertEqual(decode(OUTER, ld(4, b"a") + ld(4, b"b")), {"z": "b"})

    def test_empty_input(self):
        self.assertEqual(decode(OUTER, b""), {})
        self.assertEqual(decode(OUTER, bytearray()), {})

    def test_field_order_does_not_matter_on_the_wire(self):
        self.assertEqual(decode(OUTER, ld(4, b"z") + fld(1, 1)), {"x": 1, "z": "z"})


class TestRepeatedScalars(unittest.TestCase):
    def test_packed_encoding(self):
        # CommandResDTO.mi_to_sn = 9, repeated int64, packed
        vals = [1, 0x1A2B3C4D5E6F, 0, -1]
        body = b"".join(vi(v & M64) for v in vals)
        data = encode(s.CommandResDTO, {"mi_to_sn": vals})
        self.assertEqual(data, ld(9, body))
        self.assertEqual(decode(s.CommandResDTO, data), {"mi_to_sn": vals})

    def test_unpacked_decodes(self):
        vals = [1, 0x1A2B3C4D5E6F, 0, -1]
        data = b"".join(fld(9, v) for v in vals)
        self.assertEqual(decode(s.CommandResDTO, data), {"mi_to_sn": vals})

    def test_mixed_packed_and_unpacked_concatenate(self):
        data = fld(9, 1) + ld(9, h("0203")) + fld(9, 4) + ld(9, h("05"))
        self.assertEqual(decode(s.CommandResDTO, data), {"mi_to_sn": [1, 2, 3, 4, 5]})

    def test_empty_list_omitted(self):
        self.assertEqual(encode(s.CommandResDTO, {"mi_to_sn": []}), b"")
        self.assertEqual(encode(ALL, {"ri": [], "rs": [], "rb": []}), b"")

    def test_zeros_are_kept_in_lists(self):
        self.assertEqual(encode(ALL, {"ri": [0, 0]}), ld(8, h("0000")))

    def test_tuple_accepted_as_list(self):
        self.assertEqual(encode(ALL, {"ri": (1, 2)}), ld(8, h("0102")))

    def test_packed_truncated_varint(self):
        with self.assertRaises(DecodeError):
            decode(s.CommandResDTO, ld(9, h("0180")))


class TestSkipping(unittest.TestCase):
    SCH = (2, "b", I32, 3, "m", INNER, 4, "t", STR)

    def unknown_of_every_type(self, num):
        return (fld(num, 150) + key(num, 1) + bytes(range(8)) + ld(num, b"abc")
                + key(num, 5) + bytes(4))

    def test_unknown_fields_of_every_wire_type(self):
        for num in (1, 5, 15, 16, 2047, 2 ** 29 - 1):
            data = self.unknown_of_every_type(num) + fld(2, 7) + self.unknown_of_every_type(num)
            self.assertEqual(decode(self.SCH, data), {"b": 7})

    def test_unknown_fields_inside_nested(self):
        inner = self.unknown_of_every_type(9) + fld(1, 3)
        self.assertEqual(decode(self.SCH, ld(3, inner)), {"m": {"a": 3}})

    def test_unknown_negative_varint(self):
        self.assertEqual(decode(self.SCH, fld(9, -1) + fld(2, 1)), {"b": 1})

    def test_known_field_with_wrong_wire_type(self):
        # int32 field 2 arriving as fixed64, fixed32, length-delimited
        for bad in (key(2, 1) + bytes(8), key(2, 5) + bytes(4), ld(2, h("05"))):
            self.assertEqual(decode(self.SCH, bad + fld(4, 0)), {})
            self.assertEqual(decode(self.SCH, bad + ld(4, b"ok")), {"t": "ok"})
        # string and message fields arriving as a varint or fixed
        for bad in (fld(4, 5), key(4, 5) + bytes(4), fld(3, 1), key(3, 1) + bytes(8)):
            self.assertEqual(decode(self.SCH, bad + fld(2, 1)), {"b": 1})

    def test_wrong_wire_type_then_right_one(self):
        data = key(2, 5) + bytes(4) + fld(2, 8)
        self.assertEqual(decode(self.SCH, data), {"b": 8})


class TestEncoder(unittest.TestCase):
    def test_zero_values_omitted(self):
        msg = {"i32": 0, "i64": 0, "u32": 0, "u64": 0, "b": False, "s": "", "y": b"",
               "ri": [], "rb": [], "rs": [], "ry": []}
        self.assertEqual(encode(ALL, msg), b"")
        self.assertEqual(encode(ALL, {}), b"")

    def test_field_number_order(self):
        # whatever order the dict has, fields go out in schema (= number) order
        a = encode(ALL, {"y": b"\x01", "i32": 1, "s": "x"})
        b = encode(ALL, {"s": "x", "y": b"\x01", "i32": 1})
        self.assertEqual(a, b)
        self.assertEqual(a, fld(1, 1) + ld(6, b"x") + ld(7, b"\x01"))

    def test_returns_bytes(self):
        self.assertIsInstance(encode(ALL, {"i32": 1}), bytes)
        self.assertIsInstance(encode(ALL, {}), bytes)

    def test_unknown_key(self):
        with self.assertRaises(EncodeError):
            encode(ALL, {"nope": 1})
        with self.assertRaises(EncodeError):
            encode(ALL, {"i32": 1, "nope": 0})
        with self.assertRaises(EncodeError):
            encode(OUTER, {"one": {"nope": 1}})

    def test_wrong_types(self):
        cases = (
            (ALL, {"i32": "5"}), (ALL, {"i64": 1.5}), (ALL, {"u32": b"1"}),
            (ALL, {"s": 5}), (ALL, {"s": b"bytes"}), (ALL, {"y": "text"}), (ALL, {"y": 5}),
            (ALL, {"ri": 5}), (ALL, {"ri": [1, "2"]}), (ALL, {"rs": "abc"}), (ALL, {"rs": [1]}),
            (ALL, {"ry": ["x"]}), (OUTER, {"one": 5}), (OUTER, {"one": [{"a": 1}]}),
            (OUTER, {"many": {"a": 1}}), (OUTER, {"many": [5]}),
        )
        for sch, msg in cases:
            with self.assertRaises(EncodeError):
                encode(sch, msg)

    def test_not_a_dict(self):
        for msg in (None, [], (1, 2), "x", 5):
            with self.assertRaises(EncodeError):
                encode(ALL, msg)

    def test_out_of_range_in_lists(self):
        with self.assertRaises(EncodeError):
            encode(ALL, {"ri": [1, 2 ** 63]})
        with self.assertRaises(EncodeError):
            encode(s.CommandStatusReqDTO, {"mi_mOperatingStatus": [{"progress_rate": 2 ** 31}]})

    def test_errors_are_value_errors(self):
        self.assertTrue(issubclass(EncodeError, ValueError))
        self.assertTrue(issubclass(DecodeError, ValueError))
        self.assertIs(proto_min.EncodeError, codec.EncodeError)

    def test_encoding_too_deep(self):
        sch = chain(codec.MAX_DEPTH + 3)
        ok = {}
        for _ in range(codec.MAX_DEPTH):
            ok = {"c": ok}
        self.assertEqual(decode(sch, encode(sch, ok)), ok)
        with self.assertRaises(EncodeError):
            encode(sch, {"c": ok})


class TestMalformed(unittest.TestCase):
    def bad(self, sch, data):
        with self.assertRaises(DecodeError):
            decode(sch, data)

    def test_truncated_varint(self):
        self.bad(ONE["i32"], h("08"))
        self.bad(ONE["i32"], h("08 80"))
        self.bad(ONE["i32"], h("08 ffffffff"))
        self.bad(ONE["i32"], h("80"))            # the key itself
        self.bad(ONE["i32"], h("88"))
        self.bad(ONE["s"], h("0a 80"))           # a length
        self.bad(ONE["i32"], h("10 80"))         # an unknown field's value

    def test_varint_longer_than_ten_bytes(self):
        self.assertEqual(decode(ONE["u64"], h("08 ffffffffffffffffff01")), {"v": 2 ** 64 - 1})
        self.bad(ONE["u64"], h("08 ffffffffffffffffff8101"))
        self.bad(ONE["u64"], h("08 8080808080808080808000"))
        self.bad(ONE["u64"], h("08") + b"\xff" * 64)
        self.bad(ONE["u64"], b"\x80" * 11 + b"\x00")    # as a key
        self.bad(ONE["u64"], h("10") + b"\xff" * 11 + b"\x01")  # unknown field

    def test_length_past_end(self):
        self.bad(ONE["s"], h("0a 05 616263"))
        self.bad(ONE["y"], h("0a 01"))
        self.bad(ONE["i32"], h("12 05 616263"))          # unknown LEN field
        self.bad(OUTER, h("12 05 0801"))                 # sub-message
        self.bad(ONE["s"], h("0a ffffffff0f 61"))        # huge length
        self.bad(ONE["s"], h("0a ffffffffffffffffff01 61"))

    def test_fixed_past_end(self):
        self.bad(ONE["i32"], key(2, 1) + bytes(7))
        self.bad(ONE["i32"], key(2, 5) + bytes(3))
        self.bad(ONE["i32"], key(1, 1) + bytes(7))      # known field, wrong wire type
        self.bad(ONE["i32"], key(1, 5))

    def test_bad_wire_types(self):
        for wt in (3, 4, 6, 7):
            self.bad(ONE["i32"], key(1, wt))                 # known field
            self.bad(ONE["i32"], key(9, wt) + h("00"))       # unknown field
            self.bad(OUTER, ld(2, key(1, wt)))               # inside a sub-message

    def test_field_number_zero(self):
        for wt in (0, 1, 2, 5):
            self.bad(ONE["i32"], key(0, wt) + h("00000000 00000000"))
        self.bad(ONE["i32"], fld(1, 1) + h("00"))

    def test_field_number_too_big(self):
        self.bad(ONE["i32"], key(2 ** 29, 0) + h("01"))
        self.bad(ONE["i32"], vi(2 ** 63) + h("01"))
        self.assertEqual(decode(ONE["i32"], key(2 ** 29 - 1, 0) + h("01")), {})

    def test_nesting_deeper_than_max_depth(self):
        depth = codec.MAX_DEPTH
        sch = chain(depth + 4)
        # MAX_DEPTH nested levels decode ...
        out = decode(sch, nested_bytes(depth, fld(2, 1)))
        for _ in range(depth):
            out = out["c"]
        self.assertEqual(out, {"v": 1})
        # ... one more does not
        self.bad(sch, nested_bytes(depth + 1))
        self.bad(sch, nested_bytes(depth + 1, fld(2, 1)))

    def test_very_deep_nesting_is_an_error_not_a_crash(self):
        # a self-similar chain deeper than the recursion limit of a small board
        sch = chain(codec.MAX_DEPTH + 2)
        self.bad(sch, nested_bytes(500))

    def test_deep_nesting_in_unknown_fields_is_skipped_flat(self):
        # unknown sub-messages are skipped as opaque bytes, without recursion
        self.assertEqual(decode(ONE["i32"], ld(5, nested_bytes(200))), {})

    def test_truncated_nested_message(self):
        # the inner varint runs past the sub-message's end though the outer
        # buffer has bytes left
        self.bad(OUTER, ld(2, h("08")) + h("01"))
        self.bad(OUTER, ld(2, h("0a 02 05")) + h("06"))
        self.bad(OUTER, ld(3, h("1a 03 6162")) + h("63"))
        self.bad(s.RealDataNewReqDTO, ld(9, h("18 96")) + h("01"))
        # and an outer message cut in the middle of a sub-message
        full = encode(OUTER, {"one": {"a": 300, "t": "text"}})
        for n in range(1, len(full)):
            self.bad(OUTER, full[:n])

    def test_truncation_of_real_message(self):
        msg = {"device_serial_number": "x", "sgs_data": [{"voltage": 2300, "temperature": -52}],
               "pv_data": [{"port_number": 1, "power": 100}]}
        full = encode(s.RealDataNewReqDTO, msg)
        for n in range(1, len(full)):
            cut = full[:n]
            try:
                out = decode(s.RealDataNewReqDTO, cut)
            except DecodeError:
                continue
            # a cut at a field boundary is a valid (shorter) message
            self.assertNotEqual(out, msg)
