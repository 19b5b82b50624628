"""Small, crash-safe file helpers shared by the settings store and the event log.

Everything goes through an `fs` object with open/rename/remove/stat (and
optionally fsync(file)), so tests can pass a wrapper that "loses power" after
any number of operations. OsFs is the real one.
"""
import json
import os


class OsFs:
    """The real filesystem (CPython, unix MicroPython, the boards)."""

    def open(self, path, mode="r"):
        return open(path, mode)

    def rename(self, src, dst):
        os.rename(src, dst)

    def remove(self, path):
        os.remove(path)

    def stat(self, path):
        return os.stat(path)

    def fsync(self, f):
        # CPython: this file only; boards: os.sync() flushes the filesystem
        # (littlefs commits on close anyway); the unix port has neither.
        if hasattr(os, "fsync") and hasattr(f, "fileno"):
            os.fsync(f.fileno())
        elif hasattr(os, "sync"):  # pragma: no cover - board only
            os.sync()


def exists(fs, path):
    try:
        fs.stat(path)
        return True
    except OSError:
        return False


def remove_quiet(fs, path):
    """Remove path; a file that is not there is fine, any other failure raises."""
    try:
        fs.remove(path)
    except OSError:
        if exists(fs, path):
            raise


def write(fs, path, data):
    """Write a str (or an iterable of str chunks) to path, flushed to flash."""
    if isinstance(data, str):
        data = (data,)
    f = fs.open(path, "w")
    try:
        for chunk in data:
            f.write(chunk)
        f.flush()
        if hasattr(fs, "fsync"):
            fs.fsync(f)
    finally:
        f.close()


def replace(fs, src, dst):
    """Rename src over dst; where rename onto an existing file fails (some
    FAT drivers), remove dst first: dst then briefly does not exist."""
    try:
        fs.rename(src, dst)
    except OSError:
        if not exists(fs, src):
            raise
        remove_quiet(fs, dst)
        fs.rename(src, dst)


def read_json(fs, path, max_size, missing=None):
    """Decoded JSON of path; `missing` if the file does not exist. ValueError
    for a file over max_size bytes or bad JSON, OSError if it cannot be read."""
    try:
        size = fs.stat(path)[6]
    except OSError:
        return missing
    if size > max_size:
        raise ValueError("%d bytes, over the %d limit" % (size, max_size))
    f = fs.open(path, "r")
    try:
        text = f.read(max_size + 1)
    finally:
        f.close()
    if len(text) > max_size:
        raise ValueError("over the %d byte limit" % max_size)
    return json.loads(text)
