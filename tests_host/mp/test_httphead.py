"""lib/httphead.py: the request head from an untrusted client, parsed strictly.

Board-side test: plain unittest, runs under pytest and the unix MicroPython
(tests_host/mp/run_all.py). The server around it is tested over real
sockets in test_security.py.
"""
import unittest

import httphead
from httphead import HeadError


def parse(raw):
    h = {}
    end = httphead.end(raw)
    assert end > 0, raw
    return httphead.parse(raw[:end], h), h


class End(unittest.TestCase):
    def test_crlf_lf_and_mixed(self):
        for head in (b"GET / HTTP/1.1\r\nA: b\r\n\r\n", b"GET / HTTP/1.1\nA: b\n\n",
                     b"GET / HTTP/1.1\r\nA: b\n\r\n", b"GET / HTTP/1.1\n\n"):
            self.assertEqual(httphead.end(head + b"body\r\n\r\n"), len(head), head)
        for partial in (b"", b"GET / HTTP/1.1", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nA: b\r\n",
                        b"GET / HTTP/1.1\r\nA: b\r\n\r"):
            self.assertEqual(httphead.end(partial), -1, partial)

    def test_start_skips_what_was_searched(self):
        raw = b"GET / HTTP/1.1\r\nA: b\r\n\r\n"
        self.assertEqual(httphead.end(raw, len(raw) - 4), len(raw))


class Parse(unittest.TestCase):
    def test_a_plain_request(self):
        r, h = parse(b"POST /api/config?x=1 HTTP/1.1\r\nHost: 192.168.4.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 12\r\n\r\n")
        self.assertEqual(r, ("POST", "/api/config?x=1", "1.1", 12))
        self.assertEqual(h, {"Host": "192.168.4.1", "Content-Type": "application/json",
                             "Content-Length": "12"})

    def test_the_method_has_one_spelling(self):
        for m in (b"post", b"Post", b"pOST", b"POST"):
            self.assertEqual(parse(m + b" /api/config HTTP/1.0\r\n\r\n")[0][0], "POST")
        self.assertEqual(parse(b"propfind / HTTP/1.1\r\n\r\n")[0][0], "PROPFIND")

    def test_no_length_is_zero_and_zeros_are_fine(self):
        self.assertEqual(parse(b"GET / HTTP/1.1\r\n\r\n")[0][3], 0)
        self.assertEqual(parse(b"GET / HTTP/1.1\r\nContent-Length: 007\r\n\r\n")[0][3], 7)
        self.assertEqual(parse(b"GET / HTTP/1.1\r\ncontent-length: 5\r\nCONTENT-LENGTH: 5\r\n\r\n")[0][3], 5)

    def test_a_huge_length_is_huge_not_a_big_int(self):
        for v in (b"1000000000", b"99999999999999999999999999999999"):
            self.assertEqual(parse(b"POST / HTTP/1.1\r\nContent-Length: " + v + b"\r\n\r\n")[0][3],
                             httphead.HUGE)

    def test_values_are_stripped_and_may_hold_utf8(self):
        r, h = parse("GET / HTTP/1.1\r\nX-Name:  \tK\u00fcche \t\r\n\r\n".encode())
        self.assertEqual(h["X-Name"], "K\u00fcche")

    def refused(self, raw, status=400):
        with self.assertRaises(HeadError) as cm:
            httphead.parse(raw, {})
        self.assertEqual(cm.exception.status, status, raw)
        self.assertTrue(cm.exception.message)

    def test_bad_content_length(self):
        for v in (b"-1", b"-0", b"+5", b"5 5", b"0x10", b"1e3", b"", b"5.0", b"\xd9\xa3",
                  b"\xef\xbc\x95", b"\xc2\xb9"):
            self.refused(b"POST / HTTP/1.1\r\nContent-Length: " + v + b"\r\n\r\n")
        self.refused(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")

    def test_transfer_encoding_wants_a_length(self):
        self.refused(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411)
        self.refused(b"POST / HTTP/1.1\r\nContent-Length: 3\r\ntransfer-encoding: x\r\n\r\n", 411)

    def test_bad_request_lines(self):
        for line in (b"GET /", b"GET / HTTP/1.1 x", b"GET  / HTTP/1.1", b" GET / HTTP/1.1", b"GET / HTTP/2.0",
                     b"GET / http/1.1", b"GET / HTTP/1.1x", b"GET http://x/ HTTP/1.1", b"GET * HTTP/1.1",
                     b"GET x HTTP/1.1", b"G(T / HTTP/1.1", b"GE\x00T / HTTP/1.1", b"GET /\x01 HTTP/1.1",
                     b"GET /\x7f HTTP/1.1", b"G" * 17 + b" / HTTP/1.1", b"\xff / HTTP/1.1", b"",
                     b"GET /a\rb HTTP/1.1", b"GET\t/\tHTTP/1.1"):
            self.refused(line + b"\r\n\r\n")

    def test_bad_header_lines(self):
        for line in (b"NoColon", b": novalue", b"Bad Name: x", b" Folded: x", b"\tFolded: x",
                     b"X(y): z", b"X: a\x00b", b"X: a\x1bb", b"X: a\rb", b"X: \xff\xfe"):
            self.refused(b"GET / HTTP/1.1\r\n" + line + b"\r\n\r\n")

    def test_header_count_is_bounded(self):
        ok = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(httphead.MAX_HEADERS)) + b"\r\n"
        self.assertEqual(len(parse(ok)[1]), httphead.MAX_HEADERS)
        self.refused(ok[:-2] + b"X-last: y\r\n\r\n", 431)


class AsciiInt(unittest.TestCase):
    def test_only_ascii_digits(self):
        self.assertEqual(httphead.ascii_int("0"), 0)
        self.assertEqual(httphead.ascii_int("2048"), 2048)
        for s in ("", "-1", "+1", " 1", "1 ", "1_000", "\u0663", "\uff11", "\u00b2", "1.0"):
            self.assertIsNone(httphead.ascii_int(s), s)


if __name__ == "__main__":
    unittest.main()
