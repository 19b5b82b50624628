"""A filesystem for gateway.fsutil that loses power after N operations
(CrashFs) and one whose rename refuses an existing name (NoReplaceFs, old
FAT): the settings store and the event log must survive both. Both Pythons."""
import os

from gateway import fsutil
from support.tmpfs import PowerCut


class CrashFile:
    def __init__(self, fs, f):
        self.fs, self.f = fs, f

    def write(self, data):
        self.fs.log.append("write")
        if self.fs.tick():
            self.f.write(data[:len(data) // 2])  # a torn write
            self.f.close()
            raise PowerCut(5, "power cut")
        return self.f.write(data)

    def read(self, *a):
        return self.f.read(*a)

    def __iter__(self):
        return iter(self.f)

    def flush(self):
        self.fs.op("flush")
        self.f.flush()

    def close(self):
        if self.fs.tick():
            self.f.close()  # the data may or may not be there: keep it
            raise PowerCut(5, "power cut")
        self.f.close()


class CrashFs:
    """Counts every filesystem operation; once armed with n, operation n
    (0-based) and every later one fail, as if the power went."""

    def __init__(self, real=None):
        self.real = real or fsutil.OsFs()
        self.budget = None
        self.ops = 0
        self.log = []

    def arm(self, n):
        self.budget, self.ops = n, 0

    def tick(self):
        self.ops += 1
        return self.crashed()

    def crashed(self):
        return self.budget is not None and self.ops > self.budget

    def op(self, name=""):
        if self.tick():
            raise PowerCut(5, "power cut")
        self.log.append(name)

    def open(self, path, mode="r"):
        self.op("open " + mode)
        return CrashFile(self, self.real.open(path, mode))

    def rename(self, a, b):
        self.op("rename")
        self.real.rename(a, b)

    def remove(self, p):
        self.op("remove")
        self.real.remove(p)

    def stat(self, p):
        self.op("stat")
        return self.real.stat(p)

    def fsync(self, f):
        self.op("fsync")


class NoReplaceFs(fsutil.OsFs):
    """A filesystem whose rename refuses an existing destination (old FAT)."""

    def rename(self, a, b):
        if fsutil.exists(self, b):
            raise OSError(17, "EEXIST")
        os.rename(a, b)
