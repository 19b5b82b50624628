"""Picks the few fields the update check needs out of a GitHub release JSON
(10-30 KB, most of it release notes and user objects) without building the
whole document: a small pull parser over a file, 256 bytes buffered, that
keeps only the wanted keys and skips everything else as it reads.

    pick_release(f, wanted_assets) -> {"tag_name", "name", "published_at",
        "prerelease", "draft", "assets": {name: {"browser_download_url",
        "size", "digest"}}}   (only the assets named in wanted_assets)
"""
from micropython import const

_MAX_DEPTH = const(20)
_MAX_STR = const(400)     # longer strings that we keep are an error; skipped ones may be any size

TOP = ("tag_name", "name", "published_at", "prerelease", "draft", "message")
ASSET = ("name", "browser_download_url", "size", "digest")


class _Reader:
    def __init__(self, f):
        self.f = f
        self.buf = bytearray(256)
        self.n = 0
        self.i = 0
        self.pos = 0

    def peek(self):
        if self.i >= self.n:
            self.n = self.f.readinto(self.buf) or 0
            self.i = 0
            if not self.n:
                return -1
        return self.buf[self.i]

    def next(self):
        c = self.peek()
        if c < 0:
            raise ValueError("JSON ends early at byte %d" % self.pos)
        self.i += 1
        self.pos += 1
        return c

    def ws(self):
        while True:
            c = self.peek()
            if c not in (32, 9, 10, 13):
                return c
            self.i += 1
            self.pos += 1

    def expect(self, c):
        if self.ws() != c:
            raise ValueError("expected %r at byte %d" % (chr(c), self.pos))
        self.next()


def _string(r, keep):
    """The string at r (after its opening quote); None when not kept."""
    out = bytearray() if keep else None
    while True:
        c = r.next()
        if c == 34:  # "
            break
        if c == 92:  # backslash
            e = r.next()
            if e == 117:  # \\uXXXX
                code = 0
                for _ in range(4):
                    code = code * 16 + int(chr(r.next()), 16)
                if keep:
                    try:
                        out += chr(code).encode()
                    except (UnicodeError, ValueError):  # a lone surrogate
                        out.append(63)
                continue
            c = {110: 10, 116: 9, 114: 13, 98: 8, 102: 12}.get(e, e)
        if keep:
            if len(out) >= _MAX_STR:
                raise ValueError("string too long at byte %d" % r.pos)
            out.append(c)
    return out.decode() if keep else None


def _scalar(r, first):
    s = bytearray([first])
    while True:
        c = r.peek()
        if c < 0 or c in b",}] \t\r\n":
            break
        s.append(r.next())
        if len(s) > 32:
            raise ValueError("bad value at byte %d" % r.pos)
    s = bytes(s)
    if s == b"true":
        return True
    if s == b"false":
        return False
    if s == b"null":
        return None
    try:
        return float(s) if b"." in s or b"e" in s or b"E" in s else int(s)
    except ValueError:
        raise ValueError("bad value at byte %d" % r.pos)


def _value(r, depth, keep):
    """The value at r: kept (returned) when keep, else skipped (None)."""
    if depth > _MAX_DEPTH:
        raise ValueError("JSON nested too deeply")
    c = r.ws()
    if c < 0:
        raise ValueError("JSON ends early at byte %d" % r.pos)
    r.next()
    if c == 34:
        return _string(r, keep)
    if c == 123:  # {
        _members(r, depth, None, None)
        return None
    if c == 91:   # [
        _items(r, depth, None)
        return None
    v = _scalar(r, c)
    return v if keep else None


def _members(r, depth, wanted, out):
    """Reads an object (after its {): keys in wanted go into out; callbacks
    for keys whose wanted entry is a function."""
    if r.ws() == 125:
        r.next()
        return
    while True:
        r.expect(34)
        key = _string(r, True)
        r.expect(58)  # :
        w = wanted.get(key) if wanted else None
        if w is None:
            _value(r, depth + 1, False)
        elif w is True:
            out[key] = _value(r, depth + 1, True)
        else:
            w(r, depth + 1)
        c = r.ws()
        r.next()
        if c == 125:
            return
        if c != 44:
            raise ValueError("expected , or } at byte %d" % r.pos)


def _items(r, depth, each):
    if r.ws() == 93:
        r.next()
        return
    while True:
        if each is None:
            _value(r, depth + 1, False)
        else:
            each(r, depth + 1)
        c = r.ws()
        r.next()
        if c == 93:
            return
        if c != 44:
            raise ValueError("expected , or ] at byte %d" % r.pos)


def pick_release(f, wanted_assets):
    """The release fields from the JSON in file f (see the module doc)."""
    r = _Reader(f)
    out = {}
    assets = {}
    asset_keys = {k: True for k in ASSET}

    def one_asset(r, depth):
        if r.ws() != 123:
            _value(r, depth, False)
            return
        r.next()
        a = {}
        _members(r, depth, asset_keys, a)
        if a.get("name") in wanted_assets:
            assets[a.pop("name")] = a

    def asset_list(r, depth):
        if r.ws() != 91:
            _value(r, depth, False)
            return
        r.next()
        _items(r, depth, one_asset)

    wanted = {k: True for k in TOP}
    wanted["assets"] = asset_list
    r.expect(123)
    _members(r, 0, wanted, out)
    if r.ws() >= 0:
        raise ValueError("data after the JSON at byte %d" % r.pos)
    out["assets"] = assets
    return out
