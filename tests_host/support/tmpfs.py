"""Scratch folders for the board-side tests, on both Pythons (MicroPython has
no tempfile or shutil): a fresh folder under /tmp, removed with all it holds."""
import os


class PowerCut(OSError):
    """The power went: what the crash-simulating filesystems raise."""


def mkdtemp(prefix="gwtest"):
    n = 0
    while True:
        d = "/tmp/%s_%d_%d" % (prefix, int.from_bytes(os.urandom(4), "big"), n)
        try:
            os.mkdir(d)
            return d
        except OSError:
            n += 1


def isdir(p):
    try:
        return os.stat(p)[0] & 0x4000 != 0
    except OSError:
        return False


def rmtree(d):
    if isdir(d):
        for name in os.listdir(d):
            rmtree(d + "/" + name)
        os.rmdir(d)
    else:
        try:
            os.remove(d)
        except OSError:
            pass


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


def read_text(path):
    with open(path) as f:
        return f.read()
