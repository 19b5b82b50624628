"""A file-backed stand-in of MicroPython's esp32.Partition (v1.28.0,
ports/esp32/esp32_partition.c) and of the ESP-IDF bootloader's choice of the
app slot with rollback (CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE, on in every
MicroPython ESP32 build), for the image update tests. Runs on CPython and
on the unix MicroPython (imported as `esp32`).

The flash is a folder (configure(path), or the ESP32_FLASH environment
variable): ota_0.bin and ota_1.bin (the two app slots of the OTA partition
table, blocks of 4096 bytes) and otadata.json, the two otadata sectors
{"entries": [{"seq", "state"} or null, ...], "running": label}.

Like the real ones:
  - Partition(RUNNING | BOOT | label), info(), ioctl(4/5/6), readblocks();
    writeblocks(n, buf) erases first and needs whole 4 KB blocks (else
    OSError(-260), ESP_ERR_INVALID_SIZE); writeblocks(n, buf, offset) does
    not erase, and flash only clears bits (new = old & data); a write to
    the running slot aborts (IDF's CONFIG_SPI_FLASH_DANGEROUS_WRITE_ABORTS:
    a panic, here RuntimeError).
  - set_boot() checks the image first (OSError(-5379),
    ESP_ERR_OTA_VALIDATE_FAILED, and otadata untouched), then writes the
    other otadata sector with the next sequence number, state NEW.
  - boot(): at a reset an entry still PENDING_VERIFY (a new app that did not
    confirm itself) becomes ABORTED; the highest valid sequence number
    boots; a NEW one becomes PENDING_VERIFY.
    Partition.mark_app_valid_cancel_rollback() makes the running one VALID.
  - cut_after(n): the n+1-th block write never happens (a power cut):
    PowerCut is raised instead, the flash stays as it was.

The stand-in's app image (make_image()): byte 0 is 0xE9, bytes 4..8 the
image's length, the last 32 bytes the SHA-256 of the rest; set_boot()
checks those, as ESP-IDF's esp_image_verify checks the magic byte, the
segments' extent and the appended SHA-256. The payload is what the tests
let the image "run": JSON {"version", "healthy"}.
"""
import hashlib
import json
import os

BLOCK = 4096
NEW, PENDING_VERIFY, VALID, INVALID, ABORTED = 0, 1, 2, 3, 4
SLOTS = ("ota_0", "ota_1")
_state = {"dir": None, "cut": None}


class PowerCut(Exception):
    """The board lost power in the middle of a write."""


def configure(path):
    _state["dir"] = path
    _state["running"] = None


def cut_after(n):
    _state["cut"] = n


def _dir():
    return _state["dir"] or os.getenv("ESP32_FLASH")


def _load():
    with open(_dir() + "/otadata.json") as f:
        return json.load(f)


def _save(st):
    with open(_dir() + "/otadata.json", "w") as f:
        json.dump(st, f)


def make_image(payload, size=None):
    """An app image of the stand-in's format around `payload` (bytes),
    padded to `size` bytes when given."""
    n = max(size or 0, 8 + len(payload) + 32)
    body = bytes([0xE9, 0, 0, 0]) + n.to_bytes(4, "little") + payload
    body += b"\0" * (n - 32 - len(body))
    return body + hashlib.sha256(body).digest()


def payload_of(data):
    """The payload of an image (bytes of a slot), or None when it is not one."""
    if len(data) < 40 or data[0] != 0xE9:
        return None
    n = int.from_bytes(data[4:8], "little")
    if n < 40 or n > len(data) or hashlib.sha256(data[:n - 32]).digest() != data[n - 32:n]:
        return None
    return data[8:n - 32].rstrip(b"\0")


def format_flash(path, slot_blocks, image):
    """A freshly flashed board: `image` in ota_0, otadata as the bootloader
    writes it at the first boot (ota_0, VALID)."""
    os.mkdir(path)
    for s in SLOTS:
        with open(path + "/" + s + ".bin", "wb") as f:
            f.write(b"\xff" * (slot_blocks * BLOCK))
    with open(path + "/ota_0.bin", "r+b") as f:
        f.write(image)
    configure(path)
    _save({"entries": [{"seq": 1, "state": VALID}, None], "running": "ota_0"})


def _running():
    """The slot that runs (fixed from one boot() to the next)."""
    if _state.get("running") is None:
        _state["running"] = _load()["running"]
    return _state["running"]


def _valid(e):
    return e is not None and e["state"] not in (INVALID, ABORTED)


def _choice(entries):
    best = None
    for e in entries:
        if _valid(e) and (best is None or e["seq"] > best["seq"]):
            best = e
    return best


def boot(path=None):
    """The bootloader at a reset; returns the label of the slot that runs."""
    if path:
        configure(path)
    st = _load()
    for e in st["entries"]:
        if e is not None and e["state"] == PENDING_VERIFY:
            e["state"] = ABORTED            # it ran and never confirmed itself: roll back
    e = _choice(st["entries"])
    if e is None:
        st["running"] = SLOTS[0]
    else:
        if e["state"] == NEW:
            e["state"] = PENDING_VERIFY
        st["running"] = SLOTS[(e["seq"] - 1) % len(SLOTS)]
    _save(st)
    _state["running"] = st["running"]
    return st["running"]


def slot_bytes(label):
    with open(_dir() + "/" + label + ".bin", "rb") as f:
        return f.read()


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=BLOCK):
        st = _load()
        if id == Partition.RUNNING:
            label = _running()
        elif id == Partition.BOOT:
            e = _choice(st["entries"])
            label = SLOTS[(e["seq"] - 1) % len(SLOTS)] if e else SLOTS[0]
        elif id in SLOTS:
            label = id
        else:
            raise OSError(2, "ENOENT")
        self.label = label
        self.block_size = block_size
        self.path = _dir() + "/" + label + ".bin"
        self.size = os.stat(self.path)[6]

    def info(self):
        i = SLOTS.index(self.label)
        return (0, 0x10 + i, 0x10000 + i * self.size, self.size, self.label, False)

    def ioctl(self, op, arg):
        if op == 4:
            return self.size // self.block_size
        if op == 5:
            return self.block_size
        if op == 6:
            self._check_writable()
            self._put(arg * BLOCK, b"\xff" * BLOCK, erase=True)
            return 0
        if op in (1, 2, 3):
            return 0
        return None

    def readblocks(self, n, buf, offset=0):
        with open(self.path, "rb") as f:
            f.seek(n * self.block_size + offset)
            data = f.read(len(buf))
        buf[:len(data)] = data

    def _check_writable(self):
        if self.label == _running():
            raise RuntimeError("abort(): flash write to the running app")

    def _put(self, at, data, erase):
        with open(self.path, "r+b") as f:
            f.seek(at)
            if not erase:              # NOR flash: a write only clears bits
                old = f.read(len(data))
                data = bytes(a & b for a, b in zip(old, data))
                f.seek(at)
            f.write(data)

    def writeblocks(self, n, buf, offset=None):
        self._check_writable()
        if _state["cut"] is not None:
            if _state["cut"] <= 0:
                raise PowerCut("power cut before block %d" % n)
            _state["cut"] -= 1
        at = n * self.block_size
        if offset is None:             # erase, then write: the flash holds exactly buf
            if len(buf) % BLOCK:
                raise OSError(-260, "ESP_ERR_INVALID_SIZE")
            self._put(at, buf, erase=True)
        else:
            self._put(at + offset, bytes(buf), erase=False)

    def _image_ok(self):
        """The bootloader's check, block by block (the board's RAM holds no whole slot)."""
        with open(self.path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head[4:8], "little")
            if head[:1] != b"\xe9" or n < 40 or n > self.size:
                return False
            h = hashlib.sha256(head)
            left = n - 32 - 8
            buf = bytearray(256)          # the bootloader's check costs the app no heap: keep this small
            while left:
                k = f.readinto(buf) if left >= 256 else f.readinto(memoryview(buf)[:left])
                h.update(memoryview(buf)[:k])
                left -= k
            return h.digest() == f.read(32)

    def set_boot(self):
        if not self._image_ok():
            raise OSError(-5379, "ESP_ERR_OTA_VALIDATE_FAILED")
        # esp_rewrite_ota_data(): the other sector than the active entry (the
        # highest valid one) gets the smallest sequence number >= the active one
        # that selects this slot; none valid: sector 0
        st = _load()
        entries = st["entries"]
        active = _choice(entries)
        idx = SLOTS.index(self.label)
        if active is None:
            entries[0] = {"seq": idx + 1, "state": NEW}
        else:
            seq = active["seq"]
            while (seq - 1) % len(SLOTS) != idx:
                seq += 1
            entries[1 - entries.index(active)] = {"seq": seq, "state": NEW}
        _save(st)

    def get_next_update(self):
        return Partition(SLOTS[(SLOTS.index(self.label) + 1) % len(SLOTS)])

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        # esp_ota_current_ota_is_workable(true): the ACTIVE entry (the highest
        # valid one, whichever slot it selects: after a set_boot() that is the
        # new image's, NEW) becomes VALID
        st = _load()
        e = _choice(st["entries"])
        if e is None:
            raise OSError(-1, "ESP_FAIL")
        if e["state"] != VALID:
            e["state"] = VALID
            _save(st)
