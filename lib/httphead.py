"""The head of an HTTP/1.x request from an untrusted client, parsed strictly.

    end = httphead.end(buf)                 # index just past the empty line, or -1
    method, target, version, length = httphead.parse(buf[:end], headers)

parse() fills `headers` (any mapping; the server passes Microdot's
case-insensitive dict) and returns:
  method   the method token, upper-cased: the one spelling every later rule
           sees ("post" and "pOST" are POST)
  target   the request target as sent, origin-form ("/path?query")
  version  "1.0" or "1.1"
  length   Content-Length as an int, 0 without one
Anything else raises HeadError(status, message): 400 for a malformed head
(bad request line, bad header line, control characters, not UTF-8, a
Content-Length that is not ASCII digits or that disagrees with another one),
411 for Transfer-Encoding (bodies need a Content-Length), 431 for more than
MAX_HEADERS header lines. How large a head may be is the caller's cap.

Pure and synchronous, for MicroPython and CPython alike; no Microdot.
"""
from micropython import const

MAX_HEADERS = const(32)
MAX_METHOD = const(16)
HUGE = const(1000000000)           # any Content-Length from here on (no big ints)
# RFC 9110 token characters besides letters and digits
_TCHAR = "!#$%&'*+-.^_`|~"
_DIGITS = "0123456789"


class HeadError(ValueError):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def end(buf, start=0):
    """The index just past the empty line that ends the head in buf, or -1.
    Lines may end in CRLF or a bare LF. `start`: where to begin looking."""
    i = buf.find(b"\n", start)
    while i >= 0:
        if buf[i + 1:i + 2] == b"\n":
            return i + 2
        if buf[i + 1:i + 3] == b"\r\n":
            return i + 3
        i = buf.find(b"\n", i + 1)
    return -1


def is_token(s):
    if not s:
        return False
    for c in s:
        if not ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in _TCHAR):
            return False
    return True


def ascii_int(s):
    """The non-negative integer written in ASCII digits s, at most HUGE;
    else None ("-1", "+1", " 1", "1e3", "٣" and "" are not numbers here:
    int() takes some of them)."""
    if not s:
        return None
    for c in s:
        if c not in _DIGITS:
            return None
    s = s.lstrip("0") or "0"
    return HUGE if len(s) > 9 else int(s)


def _plain(s):
    """No control characters (tab aside) and no DEL."""
    for c in s:
        if (c < " " and c != "\t") or c == "\x7f":
            return False
    return True


def parse(head, headers):
    try:
        text = head.decode()
    except UnicodeError:
        raise HeadError(400, "request head is not UTF-8")
    lines = text.split("\n")
    line = lines[0].rstrip("\r")
    parts = line.split(" ")
    if len(parts) != 3 or not _plain(line):
        raise HeadError(400, "malformed request line")
    method, target, version = parts
    if len(method) > MAX_METHOD or not is_token(method):
        raise HeadError(400, "malformed method")
    if not target.startswith("/"):
        raise HeadError(400, "the request target must be a path")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HeadError(400, "HTTP/1.0 or HTTP/1.1 only")
    length = None
    n = 0
    for line in lines[1:]:
        line = line.rstrip("\r")
        if not line:
            continue                  # the empty line(s) that end the head
        n += 1
        if n > MAX_HEADERS:
            raise HeadError(431, "more than %d header lines" % MAX_HEADERS)
        name, colon, value = line.partition(":")
        if not colon or not is_token(name) or not _plain(value):
            raise HeadError(400, "malformed header line")
        value = value.strip(" \t")
        low = name.lower()
        if low == "content-length":
            v = ascii_int(value)
            if v is None or (length is not None and v != length):
                raise HeadError(400, "malformed Content-Length")
            length = v
        elif low == "transfer-encoding":
            raise HeadError(411, "send the body with a Content-Length (no Transfer-Encoding)")
        headers[name] = value
    return method.upper(), target, version[5:], length or 0
