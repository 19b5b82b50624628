"""A small persistent ring of health events for GET /api/events.

    ev = Events("/events.jsonl")
    ev.load()
    ev.add("dtu", "connect timeout", "warn")  # repeats fold into one entry
    ev.add("limit", "power limit set to 600 W", persist=True)
    ev.flush()        # call from a periodic task: writes at most every 60 s

A repeat of the same kind and message within the newest few entries bumps
that entry's count and time and makes it the newest, so a DTU that times out
every 31 s for an hour (with a reconnect note each time) leaves two entries,
not 232. The file holds one JSON list [t, level, kind, msg, count] per line,
oldest first, written to a .tmp file then renamed over the old one.
"""
import json

from gateway import fsutil, tz

from micropython import const

_COALESCE = const(4)  # how many of the newest entries a repeat may fold into


class Events:
    max_kind = 24   # characters kept of a kind
    max_msg = 100   # characters kept of a message

    def __init__(self, path, size=40, clock=None, min_flush_interval=60, fs=None):
        self.path = path
        self._tmp = path + ".tmp"
        self.size = size
        self.min_flush_interval = min_flush_interval
        self._clock = clock or tz.now
        self._fs = fs or fsutil.OsFs()
        self._ring = []  # [t, level, kind, msg, count], oldest first
        self._dirty = False
        self._last = None  # clock() of the last write attempt

    def __len__(self):
        return len(self._ring)

    def add(self, kind, message, level="info", persist=False):
        """Record an event; persist=True writes the file now (important ones)."""
        t = int(self._clock())
        kind, msg = str(kind), str(message)
        if len(kind) > self.max_kind:  # slicing always copies: only when needed
            kind = kind[:self.max_kind]
        if len(msg) > self.max_msg:
            msg = msg[:self.max_msg]
        ring = self._ring
        n = len(ring)
        for i in range(n - 1, max(n - _COALESCE, 0) - 1, -1):
            e = ring[i]
            if e[2] == kind and e[3] == msg:
                e[0], e[1], e[4] = t, level, e[4] + 1
                if i != n - 1:
                    ring.append(ring.pop(i))
                break
        else:
            ring.append([t, level, kind, msg, 1])
            if len(ring) > self.size:
                del ring[:len(ring) - self.size]
        self._dirty = True
        if persist:
            self.flush(True)

    def clear(self):
        self._ring = []
        self._dirty = True

    def items(self):
        """Newest first, as dicts {"t", "level", "kind", "msg", "count"}."""
        return [{"t": e[0], "level": e[1], "kind": e[2], "msg": e[3], "count": e[4]}
                for e in reversed(self._ring)]

    def json_chunks(self):
        """The body of GET /api/events, {"events": [...]} newest first, in
        pieces: one event's JSON in the heap at a time, not the whole ring's
        (up to 40 x ~150 B, twice: a board's largest answer)."""
        ring = list(self._ring)     # as it is now: an event added meanwhile shows next time
        yield b'{"events": ['
        for i in range(len(ring) - 1, -1, -1):
            e = ring[i]
            s = json.dumps({"t": e[0], "level": e[1], "kind": e[2], "msg": e[3], "count": e[4]})
            yield (s if i == len(ring) - 1 else ", " + s).encode()
        yield b"]}"

    def load(self):
        """Read the file (or the .tmp left by a cut between remove and rename
        on FAT); a corrupt file starts an empty log with a note. -> entries."""
        ring = []
        try:
            for path in (self.path, self._tmp):
                if fsutil.exists(self._fs, path):
                    ring = self._read(path)
                    break
        except Exception as e:  # never let a bad file stop the boot
            self._ring = []
            self.add("events", "event log was unreadable, started anew (%s)" % e, "warn")
            return 0
        self._ring = ring[-self.size:] if self.size else []
        self._dirty = False
        return len(self._ring)

    def _read(self, path):
        fs = self._fs
        if fs.stat(path)[6] > self.size * 640 + 640:
            raise ValueError("file too big")
        ring = []
        f = fs.open(path, "r")
        try:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                e = json.loads(line)
                if not (isinstance(e, list) and len(e) == 5 and isinstance(e[0], int)
                        and isinstance(e[1], str) and isinstance(e[2], str)
                        and isinstance(e[3], str) and isinstance(e[4], int) and e[4] > 0):
                    raise ValueError("bad entry")
                ring.append(e)
        finally:
            f.close()
        return ring

    def flush(self, force=False):
        """Write the log if it changed, at most every min_flush_interval seconds
        unless forced. -> True if written; a failed write is retried later."""
        if not self._dirty:
            return False
        now = self._clock()
        last = self._last
        if not force and last is not None and 0 <= now - last < self.min_flush_interval:
            return False
        self._last = now
        fs = self._fs
        try:
            fsutil.write(fs, self._tmp, (json.dumps(e) + "\n" for e in self._ring))
            fsutil.replace(fs, self._tmp, self.path)
        except OSError:
            return False
        self._dirty = False
        return True
