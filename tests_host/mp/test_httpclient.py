"""lib/httpclient.py's answer parser, as a kept-alive connection uses it
(openHAB) and as the update download does: framing, when the connection may
be reused, bodies cut or refused at a limit.

Board-side test: plain unittest, runs under pytest and the unix MicroPython
(tests_host/mp/run_all.py). The download over real sockets, TLS and
redirects is tested in test_ota.py and test_ota_stage.py.
"""
import asyncio
import unittest

from httpclient import HttpError, Response


class Stream:
    """A connection's reader that hands out `data` a few bytes at a time and
    fails if asked for more than there is (a parser that reads past an
    answer would hang on a kept-alive connection)."""

    def __init__(self, data, step=7):
        self.data, self.step = data, step

    async def read(self, n):
        if not self.data:
            raise AssertionError("read past the answer")
        out, self.data = self.data[:min(n, self.step)], self.data[min(n, self.step):]
        return out


def answer(raw, limit=64, cut=True):
    async def main():
        s = Stream(raw)
        r = Response(s, None, 5)
        await r.read_head()
        body = await r.read_all(limit, cut=cut)
        return r.status, body, r.keep_alive, s.data
    return asyncio.run(main())


class Framing(unittest.TestCase):
    def test_content_length_keeps_the_connection(self):
        self.assertEqual(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
                         (200, b"hello", True, b""))

    def test_connection_close_and_http_1_0(self):
        for raw in (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"):
            self.assertEqual(answer(raw)[2], False, raw)
        self.assertEqual(answer(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok"),
                         (200, b"ok", True, b""))

    def test_no_length_reads_to_the_close_and_is_not_reused(self):
        async def main():
            r = Response(Stream(b"HTTP/1.1 200 OK\r\n\r\nuntil the end"), None, 5)
            r.r.read = _then_eof(r.r.read)
            await r.read_head()
            return await r.read_all(64), r.keep_alive
        self.assertEqual(asyncio.run(main()), (b"until the end", False))

    def test_no_body_for_204_and_304_whatever_the_headers(self):
        for status in (204, 304):
            raw = b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status
            self.assertEqual(answer(raw), (status, b"", True, b""))

    def test_chunked_cut_at_the_limit_reads_the_rest(self):
        raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n")
        self.assertEqual(answer(raw, limit=8), (200, b"hello wo", True, b""))

    def test_over_the_limit_without_cut_is_refused(self):
        with self.assertRaises(HttpError):
            answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", limit=9, cut=False)
        self.assertEqual(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n012345678", limit=9, cut=False)[1],
                         b"012345678")

    def test_not_http_and_cut_short(self):
        with self.assertRaises(HttpError):
            answer(b"SSH-2.0-OpenSSH\r\n\r\n")
        async def short():
            r = Response(Stream(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), None, 5)
            r.r.read = _then_eof(r.r.read)
            await r.read_head()
            await r.read_all(64)
        with self.assertRaises(HttpError):
            asyncio.run(short())


def _then_eof(read):
    """The stream's read, then b"" (the server closed) instead of failing."""
    async def f(n):
        try:
            return await read(n)
        except AssertionError:
            return b""
    return f


if __name__ == "__main__":
    unittest.main()
