"""The update loader's filesystem (ota_swap.Fs) without fsync (QuickFs) and
one that loses power at its n-th change (CrashFs), for the power-cut tests
of the loader (mp/test_ota_boot.py) and of a whole update (e2e/test_ota.py).
Both Pythons."""
import os

import ota_swap
from support.tmpfs import PowerCut


class QuickFs(ota_swap.Fs):
    """The real filesystem without fsync: the power cuts are simulated
    (CrashFs), so the tests need no real durability, only speed."""

    def fsync(self, f):
        pass


def loader(root, fs=None):
    return ota_swap.Loader(root, fs or QuickFs())


class CrashFile:
    def __init__(self, fs, f):
        self.fs, self.f = fs, f

    def write(self, data):
        if self.fs.tick():
            if self.fs.after:
                self.f.write(data)
            else:
                self.f.write(bytes(data)[:len(data) // 2])  # a torn write
            self.f.close()
            raise PowerCut(5, "power cut")
        return self.f.write(data)

    def read(self, *a):
        self.fs.dead()
        return self.f.read(*a)

    def readinto(self, b):
        self.fs.dead()
        return self.f.readinto(b)

    def flush(self):
        self.fs.op()
        self.f.flush()

    def close(self):
        if self.fs.tick():
            self.f.close()
            raise PowerCut(5, "power cut")
        self.f.close()


class CrashFs(ota_swap.Fs):
    """Counts every operation that changes the flash; once armed with n,
    operation n fails (with after=True: it is carried out first) and every
    later operation of any kind fails, as if the power went."""

    def __init__(self, at=None, after=False, no_replace=False):
        self.at, self.after, self.no_replace = at, after, no_replace
        self.n = 0
        self.cut = False

    def dead(self):
        if self.cut:
            raise PowerCut(5, "no power")

    def tick(self):
        self.dead()
        hit = self.at is not None and self.n == self.at
        self.n += 1
        if hit:
            self.cut = True
        return hit

    def op(self, fn=None, *args):
        if self.tick():
            if self.after and fn is not None:
                fn(*args)
            raise PowerCut(5, "power cut")
        if fn is not None:
            return fn(*args)

    def open(self, path, mode="r"):
        if "w" in mode or "a" in mode:
            return CrashFile(self, self.op(open, path, mode))
        self.dead()
        return open(path, mode)

    def rename(self, a, b):
        if self.no_replace:
            self.dead()
            try:
                os.stat(b)
                raise OSError(17, "exists")
            except PowerCut:
                raise
            except OSError as e:
                if e.args and e.args[0] == 17:
                    raise
        self.op(os.rename, a, b)

    def remove(self, p):
        self.op(os.remove, p)

    def mkdir(self, p):
        self.op(os.mkdir, p)

    def rmdir(self, p):
        self.op(os.rmdir, p)

    def fsync(self, f):
        self.op()

    def stat(self, p):
        self.dead()
        return os.stat(p)

    def listdir(self, p):
        self.dead()
        return os.listdir(p)


def run_until_cut(fs, steps):
    """Run steps(fs) until the power goes; True when it went (the loader's
    recover() swallows the error: the boot goes on with what is there)."""
    try:
        steps(fs)
    except PowerCut:
        pass
    return fs.cut
