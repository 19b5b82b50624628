"""Takes a release archive in chunks of any size, checks every file against
the manifest and writes it into the staging folder (ota/new). Used for the
download from GitHub and for a manual upload alike; never holds more than
one 512-byte tar header and the caller's chunk in RAM.

The archive is a plain ustar file (tools/bundle.py): manifest.json first,
then every file in the manifest's order. manifest.json is written one file
per line so it can be read back one line at a time, in step with the archive:

    {"format": 1, "version": "0.2.0", ..., "files": [
    {"path": "app/board/__init__.mpy", "size": 191, "sha256": "..."},
    ...
    ]}

Any disagreement (name, order, size, sha256, a missing or extra file, a bad
header, a short archive) raises StageError; the caller then removes ota/new.
"""
import binascii
import hashlib
import json

import ota_layout


from micropython import const

_HEADER, _DATA, _PAD, _END = const(0), const(1), const(2), const(3)
MAX_MANIFEST = const(65536)
MAX_LINE = const(1024)


class StageError(Exception):
    """The archive is not what the manifest (or the release) says."""


def hexdigest(h):
    return binascii.hexlify(h.digest()).decode()


def safe_path(path):
    """True for a path the archive may write: app/... or a loader file."""
    if not isinstance(path, str) or not path or len(path) > 100:
        return False
    if path in ota_layout.LOADER:
        return True
    if not path.startswith(ota_layout.APP + "/") or "\\" in path or "//" in path:
        return False
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return False
    for c in path:
        if c < " " or c > "~":
            return False
    return True


def _octal(b):
    s = bytes(b).split(b"\0", 1)[0].strip()
    try:
        return int(s.decode(), 8) if s else 0
    except (ValueError, UnicodeError):
        raise StageError("bad number in a tar header")


class Stager:
    """feed(chunk) ... finish() -> the manifest's header dict; abort() on failure.

    expect_sha256 / expect_size: of the whole archive (from the release's
    version.json or the asset's digest), checked in finish().
    manifest_sha256: of manifest.json (from version.json), checked before
    any other file is written. board / mp_version: checked against the
    manifest's "boards" and "min_micropython"."""

    def __init__(self, loader, expect_sha256=None, expect_size=None, manifest_sha256=None,
                 board=None, mp_version=None):
        self.ld = loader
        self.fs = loader.fs
        self.expect_sha256 = expect_sha256
        self.expect_size = expect_size
        self.manifest_sha256 = manifest_sha256
        self.board = board
        self.mp_version = mp_version
        self.hdr = bytearray(512)
        self.hn = 0
        self.state = _HEADER
        self.left = 0          # data bytes left of the current member
        self.pad = 0
        self.f = None          # the file being written
        self.h = None          # its sha256
        self.entry = None      # its manifest entry (path, size, sha256)
        self.man = None        # the manifest file, read one line at a time
        self.header = None     # the manifest's header fields
        self.archive = hashlib.sha256()
        self.fed = 0
        self.files = 0
        self.made = set()      # folders already created
        loader.rmtree(ota_layout.NEW)
        loader.remove(ota_layout.STAGED)
        loader.mkdirs(ota_layout.NEW)

    # ---- input ------------------------------------------------------------------

    def feed(self, chunk):
        mv = memoryview(chunk)
        n = len(mv)
        self.fed += n
        if self.expect_size is not None and self.fed > self.expect_size:
            raise StageError("wrong size: more than the %d bytes announced" % self.expect_size)
        self.archive.update(mv)
        i = 0
        while i < n:
            st = self.state
            if st == _HEADER:
                k = min(512 - self.hn, n - i)
                self.hdr[self.hn:self.hn + k] = mv[i:i + k]
                self.hn += k
                i += k
                if self.hn == 512:
                    self.hn = 0
                    self._header()
            elif st == _DATA:
                k = min(self.left, n - i)
                part = mv[i:i + k]
                self.f.write(part)
                self.h.update(part)
                self.left -= k
                i += k
                if self.left == 0:
                    self._member_done()
            elif st == _PAD:
                k = min(self.pad, n - i)
                self.pad -= k
                i += k
                if self.pad == 0:
                    self.state = _HEADER
            else:  # after the end marker only zero padding may follow
                for j in range(i, n):
                    if mv[j]:
                        raise StageError("data after the end of the archive")
                i = n

    def _header(self):
        h = self.hdr
        if not any(h):
            self.state = _END
            return
        total = 0
        for i in range(512):
            total += 32 if 148 <= i < 156 else h[i]
        if total != _octal(h[148:156]):
            raise StageError("bad tar header checksum")
        name = bytes(h[0:100]).split(b"\0", 1)[0]
        if bytes(h[257:262]) == b"ustar" and h[345]:
            name = bytes(h[345:500]).split(b"\0", 1)[0] + b"/" + name
        try:
            name = name.decode()
        except UnicodeError:
            raise StageError("bad file name in the archive")
        if h[156] not in (0, 48):  # "0" or NUL: a regular file; nothing else is expected
            raise StageError("unexpected entry %s in the archive" % name)
        size = _octal(h[124:136])
        if self.header is None:
            if name != "manifest.json" or size > MAX_MANIFEST:
                raise StageError("the archive does not start with manifest.json")
            self.entry = ("manifest.json", size, self.manifest_sha256)
        else:
            self.entry = self._next_entry()
            if self.entry is None:
                raise StageError("%s is in the archive but not in the manifest" % name)
            if self.entry[0] != name:
                raise StageError("the archive has %s where the manifest has %s" % (name, self.entry[0]))
            if self.entry[1] != size:
                raise StageError("wrong size for %s: %d, manifest says %d" % (name, size, self.entry[1]))
        self._open(ota_layout.NEW + "/" + name)
        self.left = size
        self.pad = -size % 512
        self.state = _DATA
        if size == 0:
            self._member_done()

    def _open(self, rel):
        d = rel.rsplit("/", 1)[0]
        if d not in self.made:
            self.ld.mkdirs(d)
            self.made.add(d)
        self.f = self.fs.open(self.ld.p(rel), "wb")
        self.h = hashlib.sha256()

    def _member_done(self):
        f, self.f = self.f, None
        try:
            f.flush()
        finally:
            f.close()
        got = hexdigest(self.h)
        path, _, want = self.entry
        if want is not None and got != want:
            raise StageError("sha256 mismatch for %s" % path)
        if self.header is None:
            self._read_manifest_header()
        else:
            self.files += 1
        self.state = _PAD if self.pad else _HEADER

    # ---- the manifest -------------------------------------------------------------

    def _line(self):
        line = self.man.readline(MAX_LINE)
        if line and line[-1:] != b"\n" and len(line) >= MAX_LINE:
            raise StageError("manifest line too long")
        return line.strip()

    def _read_manifest_header(self):
        self.man = self.fs.open(self.ld.p(ota_layout.NEW + "/manifest.json"), "rb")
        first = self._line()
        try:
            head = json.loads(first + b"]}")
        except ValueError:
            raise StageError("manifest.json is not in the one-file-per-line form")
        if not isinstance(head, dict) or head.get("format") != 1 or not isinstance(head.get("version"), str):
            raise StageError("manifest.json: unknown format")
        boards = head.get("boards") or ()
        if self.board is not None and self.board not in boards:
            raise StageError("this release is not for %s boards (only %s)" % (self.board, ", ".join(boards)))
        need = head.get("min_micropython")
        if self.mp_version is not None and need:
            from gateway.ota.names import parse_version
            try:
                too_old = tuple(parse_version(need)[:3]) > tuple(self.mp_version[:3])
            except ValueError:
                raise StageError("manifest.json: bad min_micropython")
            if too_old:
                raise StageError("this release needs MicroPython %s or later" % need)
        self.header = head
        self._free_space(head.get("total"))

    def _free_space(self, total):
        import os
        if not isinstance(total, int) or not hasattr(os, "statvfs"):
            return
        try:
            st = os.statvfs(self.ld.p(ota_layout.NEW))
        except OSError:  # pragma: no cover
            return
        if st[0] * st[4] < total + 8192:
            raise StageError("not enough flash: %d bytes free, %d needed" % (st[0] * st[4], total))

    def _next_entry(self):
        line = self._line()
        if line.endswith(b","):
            line = line[:-1]
        if line in (b"]}", b"]"):
            return None
        try:
            e = json.loads(line)
            path, size, sha = e["path"], e["size"], e["sha256"]
        except (ValueError, KeyError, TypeError):
            raise StageError("manifest.json: bad file line")
        if not safe_path(path) or not isinstance(size, int) or size < 0 or \
                not isinstance(sha, str) or len(sha) != 64:
            raise StageError("manifest.json: bad entry %r" % (path,))
        return path, size, sha

    # ---- the end ------------------------------------------------------------------

    def finish(self):
        """Check that everything arrived and agreed, mark the staging
        complete; returns the manifest's header."""
        if self.state != _END or self.header is None:
            raise StageError("truncated archive: %d bytes received" % self.fed)
        if self._next_entry() is not None:
            raise StageError("truncated archive: files of the manifest are missing")
        self.man.close()
        self.man = None
        if self.expect_size is not None and self.fed != self.expect_size:
            raise StageError("wrong size: %d bytes, expected %d" % (self.fed, self.expect_size))
        got = hexdigest(self.archive)
        if self.expect_sha256 is not None and got != self.expect_sha256:
            raise StageError("sha256 of the archive does not match the release")
        if not self.ld.isdir(ota_layout.NEW + "/" + ota_layout.APP):
            raise StageError("the archive holds no app")
        self.ld.write(ota_layout.STAGED, json.dumps({"version": self.header["version"],
                                                    "files": self.files, "sha256": got}))
        return self.header

    def abort(self):
        for f in (self.f, self.man):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self.f = self.man = None
        try:
            self.ld.rmtree(ota_layout.NEW)
            self.ld.remove(ota_layout.STAGED)
        except OSError:
            pass
