"""Updates of a firmware with the app frozen in, as a whole app image, on
an ESP32 with an OTA partition table (two app slots, otadata, the
filesystem after them: MicroPython's ESP32_GENERIC OTA variant). Imported
only while an image update or the new app's trial runs.

The release's app image (names.ESP32_APP) is streamed into the slot that
does not run (esp32.Partition(RUNNING).get_next_update()) 4 KB block by
block, never whole in RAM, and hashed as it is written. Only an image of
the size and sha256 version.json gives gets set_boot(), which makes the
bootloader's own check of the image (magic, segments, appended SHA-256);
anything else leaves the running slot and the boot choice untouched.

After the reboot the bootloader runs the new app once "pending": if the
board resets before Partition.mark_app_valid_cancel_rollback(), the next
boot goes back to the old slot by itself (ESP-IDF's app rollback, on in
every MicroPython ESP32 build). The app confirms itself only once healthy
(gateway.ota.feature: web server up, settings read, a DTU round done or
failed for a reason outside the app); not healthy within the window, it
resets and so rolls back. MicroPython does not say whether the running app
is pending or which slot was given up, so MARK (in the data folder) says
what was asked: {"op": "set_boot" | "booting", "target", "from",
"version", "from_version"}, then {"op": "done", "result", ...} for
/api/info. Written before set_boot() and again after it, so that a power
cut between the two is told from a rollback.

The approach follows glenn20's micropython-esp32-ota (MIT): stream into
get_next_update(), check the sha256, set_boot(), confirm after the reboot.
"""
import hashlib
import json

BLOCK = 4096                 # the flash's erase unit, esp32.Partition's block size
MARK = "/ota_image.json"     # in the data folder: kept across updates (the filesystem is not in a slot)
MAGIC = 0xE9                 # the first byte of every ESP32 app image


class ImageError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def label(part):
    return part.info()[4]


def next_slot():
    """The Partition an update writes (the app slot that does not run)."""
    from esp32 import Partition
    return Partition(Partition.RUNNING).get_next_update()


class ImageWriter:
    """feed() chunks, finish() -> verified and set to boot; abort() on failure.
    The same shape as gateway.ota.stage.Stager (fed, feed, finish, abort)."""

    def __init__(self, part, size, sha256):
        room = part.ioctl(4, 0) * part.ioctl(5, 0)
        if not isinstance(size, int) or size <= 0:
            raise ImageError("the release gives no size for the app image")
        if size > room:
            raise ImageError("the app image (%d bytes) is larger than the slot %s (%d bytes)"
                             % (size, label(part), room))
        if not isinstance(sha256, str) or len(sha256) != 64:
            raise ImageError("the release gives no sha256 for the app image")
        self.part, self.size, self.want = part, size, sha256.lower()
        self.buf = bytearray(BLOCK)
        self.fill = 0                  # bytes of the current block in buf
        self.block = 0                 # the next block to write
        self.fed = 0
        self.h = hashlib.sha256()

    def feed(self, chunk):
        n = len(chunk)
        if not n:
            return
        if self.fed + n > self.size:
            raise ImageError("the app image is longer than the %d bytes the release gives" % self.size)
        if not self.fed and chunk[0] != MAGIC:
            raise ImageError("not an ESP32 app image (first byte 0x%02x)" % chunk[0])
        self.h.update(chunk)
        self.fed += n
        i = 0
        while i < n:
            k = min(BLOCK - self.fill, n - i)
            self.buf[self.fill:self.fill + k] = chunk[i:i + k]
            self.fill += k
            i += k
            if self.fill == BLOCK:
                self._write()

    def _write(self):
        for j in range(self.fill, BLOCK):      # the last block: erased flash reads 0xFF
            self.buf[j] = 0xFF
        self.part.writeblocks(self.block, self.buf)    # erases the block, then writes it
        self.block += 1
        self.fill = 0

    def finish(self):
        """Checks size and sha256, then set_boot(); returns the slot's label."""
        if self.fed != self.size:
            raise ImageError("the app image was cut short: %d of %d bytes" % (self.fed, self.size))
        if self.fill:
            self._write()
        got = "".join("%02x" % b for b in self.h.digest())
        if got != self.want:
            raise ImageError("the app image's sha256 does not match the release: not switched in")
        try:
            self.part.set_boot()
        except OSError as e:           # -5379 ESP_ERR_OTA_VALIDATE_FAILED: the bootloader would not run it
            raise ImageError("the bootloader refused the image (%s): not switched in" % (e,))
        return label(self.part)

    def abort(self):
        self.buf = None                # what was written stays in the idle slot, which nothing boots


def read_mark(data_dir):
    try:
        with open(data_dir + MARK) as f:
            m = json.load(f)
        return m if isinstance(m, dict) else None
    except (OSError, ValueError):
        return None


def write_mark(data_dir, mark):
    tmp = data_dir + MARK + ".tmp"
    with open(tmp, "w") as f:
        json.dump(mark, f)
    import os
    os.rename(tmp, data_dir + MARK)


def install(writer, data_dir, version, from_version):
    """The verified image becomes the next boot's (MARK around set_boot())."""
    mark = {"op": "set_boot", "target": label(writer.part), "from": running_label(),
            "version": version, "from_version": from_version}
    write_mark(data_dir, mark)
    try:
        writer.finish()
    except Exception:
        write_mark(data_dir, {"op": "done", "result": "refused", "version": version})
        raise
    mark["op"] = "booting"
    try:
        write_mark(data_dir, mark)
    except OSError:  # noqa: S110 - set to boot all the same: "set_boot" tells the next start what it needs
        pass


def running_label():
    from esp32 import Partition
    return label(Partition(Partition.RUNNING))


def armed():
    """True when the next boot is not the running slot: an image is set to
    boot and waits for the restart."""
    from esp32 import Partition
    return label(Partition(Partition.BOOT)) != running_label()


def at_boot(data_dir, slot):
    """What the last image update came to, read at the start (slot: the
    running one): "trial" (the new app runs, still pending), "rolled back",
    "not switched in", or None (nothing under way). Writes the outcome for
    /api/info."""
    m = read_mark(data_dir)
    if m is None or m.get("op") not in ("set_boot", "booting"):
        return None
    if slot == m.get("target"):
        if not m.get("reset"):
            return "trial"
        # it reset itself at the end of its trial and still runs: the bootloader
        # would have gone back from a pending app, so it had been kept (a power
        # cut between keeping it and writing that down)
        write_mark(data_dir, {"op": "done", "result": "ok", "version": m.get("version"), "slot": slot})
        return None
    if m["op"] == "booting":
        why = "the new app did not confirm itself: it crashed, hung or lost power first"
        result = "rolled back"
    else:                          # cut while set_boot() ran, or refused then: never switched in
        why = "the update was cut off before it was switched in"
        result = "not switched in"
    write_mark(data_dir, {"op": "done", "result": result, "version": m.get("version"), "why": why,
                          "slot": slot})
    return result


def resetting(data_dir):
    """The trial's end without keeping the app: noted in MARK before the reset."""
    m = read_mark(data_dir)
    if m is not None and m.get("op") in ("set_boot", "booting"):
        m["reset"] = True
        write_mark(data_dir, m)


def confirm(data_dir, slot, version):
    """The running app is healthy: keep it. ESP-IDF keeps the otadata entry
    that boots next, so only while that is the running slot: after an
    update set to boot without a restart, that entry is the new image's,
    and keeping it would end its rollback before it ever ran. Returns None
    then (not kept), True when this finished a trial, else False."""
    from esp32 import Partition
    if armed():
        return None
    try:
        Partition.mark_app_valid_cancel_rollback()
    except OSError as e:
        if not e.args or e.args[0] != -261:   # -261: no otadata, nothing to cancel
            raise
    m = read_mark(data_dir)
    if m is not None and m.get("op") in ("set_boot", "booting") and m.get("target") == slot:
        write_mark(data_dir, {"op": "done", "result": "ok", "version": version, "slot": slot})
        return True
    return False
