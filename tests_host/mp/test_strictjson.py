"""lib/strictjson.py: JSON from an untrusted peer gives the same value, or the
same refusal, on MicroPython and CPython.

Board-side test: plain unittest, runs under pytest and the unix MicroPython.
"""
import unittest

import strictjson


class Strict(unittest.TestCase):
    def refused(self, b, text):
        with self.assertRaises(ValueError) as cm:
            strictjson.loads(b)
        self.assertIn(text, str(cm.exception))

    def test_ordinary_bodies(self):
        self.assertEqual(strictjson.loads(b'{"dtu": {"interval": 45}, "x": [1, 2.5, null, true]}'),
                         {"dtu": {"interval": 45}, "x": [1, 2.5, None, True]})
        self.assertEqual(strictjson.loads('{"limit": 50}'), {"limit": 50})
        # UTF-8 as such and as escapes, brackets and backslashes inside strings
        self.assertEqual(strictjson.loads('{"s": "K\u00fcche \\u00fc [{\\"\\\\"}'.encode()),
                         {"s": "K\u00fcche \u00fc [{\"\\"})

    def test_depth_is_bounded(self):
        ok = b"[" * strictjson.MAX_DEPTH + b"]" * strictjson.MAX_DEPTH
        self.assertEqual(strictjson.loads(ok), eval("[" * (strictjson.MAX_DEPTH - 1) + "[]" +
                                                    "]" * (strictjson.MAX_DEPTH - 1)))
        for n in (strictjson.MAX_DEPTH + 1, 1000, 20000):
            self.refused(b"[" * n + b"]" * n, "nested deeper")
            self.refused(b'{"a":' * n + b"1" + b"}" * n, "nested deeper")
        self.refused(b"[" * 2000, "nested deeper")          # unclosed: refused before parsing

    def test_surrogates(self):
        for b in (b'"\\ud800"', b'"\\udfff"', b'"\\uDBFF"', b'"\\ud83d"', b'"\\ud83dx"', b'"\\ud83d\\u0041"',
                  b'"\\ude00\\ud83d"', b'{"wifi.password": "abc\\ud800defgh"}'):
            self.refused(b, "lone surrogate")
        # a pair is the character itself, on both runtimes
        v = strictjson.loads(b'{"ssid": "Home \\ud83d\\ude00 \\uD83D\\uDE00!"}')["ssid"]
        self.assertEqual(v, "Home \U0001F600 \U0001F600!")
        self.assertEqual(v.encode(), b"Home \xf0\x9f\x98\x80 \xf0\x9f\x98\x80!")
        self.assertEqual(strictjson.loads(b'"a\\\\ud800"'), "a\\ud800")     # an escaped backslash

    def test_bytes_must_be_utf8(self):
        for b in (b'"\xff"', b'"\xc0\xaf"', b'"\xe0\x80\xaf"', b'"\xed\xa0\x80"', b'"\xed\xbf\xbf"',
                  b'"\xf4\x90\x80\x80"', b'"\xf8\x88\x80\x80\x80"', b'"\xc3"', b'"\xe2\x82"', b'"\x80"'):
            self.refused(b, "UTF-8")
        self.assertEqual(strictjson.loads(b'"\xf0\x9f\x98\x80\xe2\x82\xac"'), "\U0001F600\u20ac")

    def test_not_json(self):
        # (MicroPython's parser is lenient with commas: '[1,]', '[1 2]' and
        # '{"a": }' give values there. Harmless: what it builds is still JSON
        # values, checked by the route like any other)
        for b in (b"", b"{", b"{bad", b"'x'", b"\x00", b"tru"):
            self.refused(b, "not valid JSON")


if __name__ == "__main__":
    unittest.main()
