"""tools/bundle.py: the bundle is exactly the board's filesystem, builds are
reproducible, the manifest, the archive and version.json agree with the
files, and the board images hold exactly the bundle (the ROMFS image and the
ESP32 littlefs image are mounted by the unix MicroPython's own VfsRom and
VfsLfs2 drivers and read back)."""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from support.env import ROOT, micropython_bin

sys.path.insert(0, os.path.join(ROOT, "tools"))
import bundle  # noqa: E402
import ota_layout  # noqa: E402  (the layout)
import ota_swap  # noqa: E402
from gateway.ota import names as ota_names  # noqa: E402
from gateway import VERSION  # noqa: E402
from gateway import profiles  # noqa: E402

EPOCH = "1700000000"


def build(tmp, name, channel="release", env=None):
    old = dict(os.environ)
    os.environ.update(env or {"SOURCE_DATE_EPOCH": EPOCH})
    try:
        d = os.path.join(tmp, name)
        meta = bundle.build_bundle(os.path.join(d, "bundle"), channel)
        v = bundle.build_release(os.path.join(d, "bundle"), os.path.join(d, "release"), meta)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return d, v


def read(path):
    with open(path, "rb") as f:
        return f.read()


def tree_bytes(d):
    out = {}
    for base, _, files in os.walk(d):
        for f in files:
            p = os.path.join(base, f)
            out[os.path.relpath(p, d)] = read(p)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("bundles"))
    return build(tmp, "a"), build(tmp, "b"), tmp


def test_reproducible(built):
    (a, va), (b, vb), _ = built
    assert tree_bytes(os.path.join(a, "bundle")) == tree_bytes(os.path.join(b, "bundle"))
    assert tree_bytes(os.path.join(a, "release")) == tree_bytes(os.path.join(b, "release"))
    assert va == vb
    for path, data in tree_bytes(os.path.join(a, "bundle")).items():
        assert ROOT.encode() not in data, path      # no build path in any .mpy
    assert va["date"] == "2023-11-14T22:13:20Z"        # from SOURCE_DATE_EPOCH


def test_reproducible_without_source_date_epoch(built, tmp_path):
    # the date then comes from the commit: two builds still agree
    (a, _), _, _ = built
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    c, vc = build(str(tmp_path), "c", env=env)
    d, vd = build(str(tmp_path), "d", env=env)
    assert tree_bytes(os.path.join(c, "release")) == tree_bytes(os.path.join(d, "release"))
    assert vc["date"] == vd["date"]


def test_layout_is_the_boards_filesystem(built):
    (a, v), _, _ = built
    b = os.path.join(a, "bundle")
    paths = [p for p, _, _ in bundle.bundle_files(b)]
    for p in paths:
        assert p in ota_layout.LOADER or p.startswith("app/"), p
        assert len(p) <= 100
    assert read(os.path.join(b, "boot.py")) == read(os.path.join(ROOT, "firmware", "boot.py"))
    assert read(os.path.join(b, "main.py")) == read(os.path.join(ROOT, "firmware", "main.py"))
    assert b"ota_boot.boot()" in read(os.path.join(b, "boot.py"))     # boot.py runs the loader
    assert read(os.path.join(b, "ota_boot.mpy"))[:1] == b"M"         # .mpy magic
    # every board source has its .mpy, Microdot from the pinned package is there
    for src, dst, _ in bundle.code_sources():
        assert dst in paths, dst
        assert read(os.path.join(b, dst))[:1] == b"M"
    for f in ("app/gateway/app.mpy", "app/gateway/ota/feature.mpy", "app/lib/dtu/client.mpy",
              "app/lib/proto_min/codec.mpy", "app/lib/microdot/microdot.mpy"):
        assert f in paths, f
    assert not any(p.endswith(".py") for p in paths if p.startswith("app/"))
    # web assets: gzipped, one per web_static source when there is a web app
    www = [p for p in paths if p.startswith("app/www/")]
    if os.path.isdir(os.path.join(ROOT, "web_static")) and os.listdir(os.path.join(ROOT, "web_static")):
        assert www
    for p in www:
        assert p.endswith(".gz") and gzip.decompress(read(os.path.join(b, p)))
    info = json.loads(read(os.path.join(b, "app", "version.json")))
    assert (info["version"], info["channel"]) == (VERSION, "release")


def test_ca_list_is_the_github_roots(built):
    from cryptography import x509
    from tlsctx import der_certs
    (a, _), _, _ = built
    certs = der_certs(read(os.path.join(a, "bundle", "app", "ca.der")))
    names = [x509.load_der_x509_certificate(c).subject.rfc4514_string() for c in certs]
    assert len(names) == len(bundle.CA_LABELS)
    assert any("USERTrust ECC" in n for n in names) and any("DigiCert Global Root G2" in n for n in names)


def test_manifest_archive_and_version_agree_with_the_files(built):
    (a, v), _, _ = built
    b, r = os.path.join(a, "bundle"), os.path.join(a, "release")
    files = bundle.bundle_files(b)
    man_bytes = read(os.path.join(r, ota_names.MANIFEST))
    man = json.loads(man_bytes)                                     # plain JSON as a whole
    assert [(f["path"], f["size"], f["sha256"]) for f in man["files"]] == files
    assert (man["format"], man["version"], man["channel"]) == (1, VERSION, "release")
    assert man["total"] == sum(s for _, s, _ in files)
    assert man["min_micropython"] == bundle.MIN_MICROPYTHON and man["boards"] == list(bundle.BOARDS)
    assert man["date"] == v["date"]
    lines = man_bytes.decode().splitlines()                         # one file per line
    assert lines[0].endswith('"files": [') and lines[-1] == "]}" and len(lines) == len(files) + 2
    archive = read(os.path.join(r, ota_names.ARCHIVE))
    with tarfile.open(fileobj=io.BytesIO(archive)) as t:
        members = t.getmembers()
        assert members[0].name == ota_names.MANIFEST
        assert t.extractfile(members[0]).read() == man_bytes
        assert [m.name for m in members[1:]] == [p for p, _, _ in files]
        for m in members[1:]:
            assert m.isreg() and m.mtime == int(EPOCH) and (m.uid, m.gid, m.uname) == (0, 0, "")
            data = t.extractfile(m).read()
            assert hashlib.sha256(data).hexdigest() == dict((p, h) for p, _, h in files)[m.name]
    ver = json.loads(read(os.path.join(r, ota_names.VERSION)))
    assert ver["archive"] == {"name": ota_names.ARCHIVE, "size": len(archive),
                              "sha256": hashlib.sha256(archive).hexdigest()}
    assert ver["manifest"]["sha256"] == hashlib.sha256(man_bytes).hexdigest()
    assert ver["version"] == VERSION and ver["boards"] == man["boards"]


def test_archive_passes_the_device_check(built, tmp_path):
    from gateway.ota.stage import Stager
    (a, v), _, _ = built
    archive = read(os.path.join(a, "release", ota_names.ARCHIVE))
    ld = ota_swap.Loader(str(tmp_path))
    st = Stager(ld, expect_sha256=v["archive"]["sha256"], expect_size=v["archive"]["size"],
                manifest_sha256=v["manifest"]["sha256"], board="esp32", mp_version=(1, 28, 0))
    for i in range(0, len(archive), 1024):
        st.feed(archive[i:i + 1024])
    assert st.finish()["version"] == VERSION
    assert tree_bytes(str(tmp_path / "ota" / "new")) == dict(
        tree_bytes(os.path.join(a, "bundle")), **{"manifest.json": read(os.path.join(a, "release", "manifest.json"))})


def test_versions(monkeypatch):
    assert bundle.version_for("release") == VERSION
    assert bundle.version_for("release", "v" + VERSION) == VERSION
    with pytest.raises(bundle.BuildError):
        bundle.version_for("release", "v99.0.0")
    snap = bundle.version_for("snapshot")
    a, b, c, pre = ota_names.parse_version(snap)
    assert pre[0] == "snapshot" and isinstance(pre[1], int)
    assert ota_names.newer(snap, VERSION) == bool(bundle._git("tag", "-l", "v" + VERSION))
    monkeypatch.setattr(bundle, "_git", lambda *a: "v" + VERSION if a[0] == "tag" else "12")
    snap = bundle.version_for("snapshot")
    assert ota_names.newer(snap, VERSION) and snap.endswith("-snapshot.12")
    nxt = "%d.%d.%d" % ota_names.parse_version(snap)[:3]
    assert ota_names.newer(nxt, snap)


def run_mp(script, heap="8m"):
    r = subprocess.run([micropython_bin(), "-X", "heapsize=" + heap, "-c", script],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


WALK = """
import os, hashlib, binascii, json
def walk(top, rel, out):
    for e in os.ilistdir(top + ("/" + rel if rel else "")):
        p = rel + "/" + e[0] if rel else e[0]
        if e[1] & 0x4000:
            walk(top, p, out)
        else:
            with open(top + "/" + p, "rb") as f:
                out[p] = binascii.hexlify(hashlib.sha256(f.read()).digest()).decode()
    return out
"""


@pytest.mark.usefixtures("micropython")
def test_esp8266_romfs_image_mounts_in_micropython(built, tmp_path):
    (a, _), _, _ = built
    img = str(tmp_path / ota_names.ESP8266_ROMFS)
    size = bundle.make_romfs(os.path.join(a, "bundle"), img)
    assert 0 < size <= bundle.ROMFS_MAX
    got = run_mp(WALK + """
import vfs, sys
with open(%r, "rb") as f:
    data = f.read()
vfs.mount(vfs.VfsRom(data), "/rom")
files = walk("/rom", "", {})
sys.path[:0] = ["/rom/app", "/rom/app/lib", "/rom"]
from gateway.ota import names as ota_names
import dtu.frame, gateway.ota.feature
print(json.dumps({"files": files, "archive": ota_names.ARCHIVE, "frozen": gateway.ota.feature.FROZEN}))
""" % img)
    want = {p: h for p, _, h in bundle.bundle_files(os.path.join(a, "bundle")) if p.endswith(".mpy")}
    assert got["files"] == want
    assert got["archive"] == ota_names.ARCHIVE           # code imports from the image
    assert got["frozen"] is False                        # ROMFS is not frozen: update by files


def partition_table(rows):
    out = b""
    for label, typ, sub, off, size in rows:
        out += b"\xaa\x50" + bytes([typ, sub]) + off.to_bytes(4, "little") + size.to_bytes(4, "little") + \
            label.encode().ljust(16, b"\0") + b"\0" * 4
    return out + b"\xff" * 32


# MicroPython's partitions-4MiB-ota.csv (ESP32_GENERIC, variant OTA): no vfs row,
# the firmware makes the filesystem from 0x310000 to the end of the flash
OTA_TABLE = [("nvs", 1, 2, 0x9000, 0x4000), ("otadata", 1, 0, 0xD000, 0x2000), ("phy_init", 1, 1, 0xF000, 0x1000),
             ("ota_0", 0, 0x10, 0x10000, 0x180000), ("ota_1", 0, 0x11, 0x190000, 0x180000)]


def esp32_build_folder(fw, app_bytes=50000, ota=False):
    """A stand-in of ports/esp32/build-ESP32_GENERIC (-OTA with ota): flash_args
    and the parts it names; -> {part: bytes}."""
    (fw / "bootloader").mkdir(parents=True)
    (fw / "partition_table").mkdir()
    parts = {"bootloader/bootloader.bin": os.urandom(3000), "micropython.bin": os.urandom(app_bytes),
             "partition_table/partition-table.bin": partition_table(OTA_TABLE if ota else [
                 ("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000),
                 ("factory", 0, 0, 0x10000, 0x1F0000), ("vfs", 1, 0x81, 0x200000, 0x200000)])}
    for name, data in parts.items():
        (fw / name).write_bytes(data)
    (fw / "flash_args").write_text("--flash_mode dio --flash_freq 40m --flash_size 4MB\n"
                                   "0x1000 bootloader/bootloader.bin\n0x10000 micropython.bin\n"
                                   "0x8000 partition_table/partition-table.bin\n")
    return parts


@pytest.mark.usefixtures("micropython")
@pytest.mark.parametrize("frozen, ota", [(False, False), (True, False), (True, True)],
                         ids=["files", "frozen", "frozen-ota"])
def test_esp32_image_holds_the_bundle_as_littlefs(built, tmp_path, frozen, ota):
    (a, _), _, _ = built
    fw = tmp_path / "build-ESP32_GENERIC"
    parts = esp32_build_folder(fw, ota=ota)
    out = str(tmp_path / ota_names.ESP32_IMAGE)
    off, size = bundle.make_esp32_image(os.path.join(a, "bundle"), str(fw), out, frozen=frozen)
    assert (off, size) == ((0x310000, 0xF0000) if ota else (0x200000, 0x200000))
    img = read(out)
    assert len(img) == off + size
    for addr, name in ((0x1000, "bootloader/bootloader.bin"), (0x8000, "partition_table/partition-table.bin"),
                       (0x10000, "micropython.bin")):
        assert img[addr:addr + len(parts[name])] == parts[name]
    fsimg = tmp_path / "vfs.img"
    fsimg.write_bytes(img[off:off + size])
    got = run_mp(WALK + """
import vfs
class Dev:
    def __init__(self, data):
        self.d = data
    def readblocks(self, n, buf, off=0):
        i = n * 4096 + off
        buf[:] = self.d[i:i + len(buf)]
    def writeblocks(self, n, buf, off=0):
        i = n * 4096 + off
        self.d[i:i + len(buf)] = buf
    def ioctl(self, op, arg):
        return {4: len(self.d) // 4096, 5: 4096}.get(op, 0)
with open(%r, "rb") as f:
    dev = Dev(bytearray(f.read()))
vfs.mount(vfs.VfsLfs2(dev, readsize=32, progsize=32, lookahead=32), "/flash", readonly=True)
print(json.dumps(walk("/flash", "", {})))
""" % str(fsimg), heap="8m")
    want = {p: h for p, _, h in bundle.bundle_files(os.path.join(a, "bundle"))}
    if frozen:     # the code is in the firmware: a file would shadow it
        want = {p: h for p, h in want.items() if not p.endswith(".mpy")}
        assert "boot.py" in want and "main.py" in want and "app/version.json" in want
    assert got == want


def test_esp32_image_refuses_a_firmware_larger_than_its_partition(built, tmp_path):
    (a, _), _, _ = built
    fw = tmp_path / "build-ESP32_GENERIC"
    esp32_build_folder(fw, app_bytes=0x1F0000 + 1)
    with pytest.raises(bundle.BuildError, match="micropython.bin is 2031617 bytes, the factory partition"):
        bundle.make_esp32_image(os.path.join(a, "bundle"), str(fw), str(tmp_path / "x.bin"), frozen=True)


def test_esp32_app_goes_into_the_release_with_its_size_and_digest(tmp_path):
    rel = tmp_path / "release"
    rel.mkdir()
    (rel / ota_names.VERSION).write_text(json.dumps({"version": "0.2.0", "archive": {"size": 1, "sha256": "x"}}))
    app = b"\xe9" + os.urandom(9000)
    (tmp_path / "micropython.bin").write_bytes(app)
    assert bundle.main(["esp32-app", "--fw-dir", str(tmp_path), "--out", str(rel)]) == 0
    assert read(str(rel / ota_names.ESP32_APP)) == app
    v = json.loads(read(str(rel / ota_names.VERSION)))
    assert v["esp32_app"] == {"name": ota_names.ESP32_APP, "size": len(app), "sha256": hashlib.sha256(app).hexdigest()}
    assert v["version"] == "0.2.0" and v["archive"] == {"size": 1, "sha256": "x"}
    (tmp_path / "micropython.bin").write_bytes(b"PK" + app)
    assert bundle.main(["esp32-app", "--fw-dir", str(tmp_path), "--out", str(rel)]) == 2


def manifest_entries(text):
    """Runs a FROZEN_MANIFEST the way MicroPython's tools/manifestfile.py
    does for these two calls: include() of another manifest, module(path,
    base_path) freezing base_path/path as the module file `path`."""
    got = {"include": [], "module": []}
    exec(text, {"include": got["include"].append,
                "module": lambda path, base_path=".", opt=None: got["module"].append((base_path, path))})
    return got


def bundle_modules(bundle_dir):
    """Every .mpy of the bundle, by the name it imports as there (/app, /app/lib, /)."""
    names = set()
    for p, _, _ in bundle.bundle_files(bundle_dir):
        if p.endswith(".mpy"):
            for prefix in ("app/lib/", "app/", ""):
                if p.startswith(prefix):
                    names.add(p[len(prefix):-4].replace("/", "."))
                    break
    return names


# what each port's firmware includes besides the app (MicroPython v1.28.0)
PORT_INCLUDES = {
    "esp32": ["$(PORT_DIR)/boards/manifest.py"],                                  # asyncio & co.
    "esp8266": ["$(PORT_DIR)/boards/manifest.py", "$(MPY_DIR)/extmod/asyncio"],   # the port's has none
    "unix": ["$(PORT_DIR)/variants/standard/manifest.py"],                        # asyncio & co.
}


@pytest.mark.parametrize("board,port", [("esp32", "esp32"), ("esp32c3", "esp32"), ("esp8266", "esp8266"),
                                        ("host", "unix")])
def test_frozen_manifest_freezes_the_bundles_code_for_each_port(built, tmp_path, board, port):
    (a, _), _, _ = built
    out = tmp_path / "manifest.py"
    assert bundle.main(["frozen-manifest", "--board", board, "--port", port, "--out", str(out)]) == 0
    text = out.read_text()
    assert text.splitlines()[0].startswith("# generated by tools/bundle.py frozen-manifest --board %s --port %s:"
                                           % (board, port))
    got = manifest_entries(text)
    assert got["include"] == PORT_INCLUDES[port]
    # exactly the bundle's code of the board's profile (gateway/profiles.py) under
    # the names it imports as, plus the marker that tells gateway.ota.feature the
    # app is frozen in (no bundle has it)
    frozen = [m[:-3].replace("/", ".") for _, m in got["module"]]
    names = bundle_modules(os.path.join(a, "bundle"))
    assert bundle.FROZEN_MARKER not in names
    profile = bundle.board_profile(board)
    kept = {n for n in names if profiles.carries(profile, bundle.module_name(n.replace(".", "/") + ".py"))}
    assert sorted(frozen) == sorted(kept | {bundle.FROZEN_MARKER})
    assert (kept == names) == (profile == "full")
    for base, mod in got["module"]:
        assert os.path.isabs(base) and os.path.isfile(os.path.join(base, mod)), (base, mod)
    marker = [b for b, m in got["module"] if m == bundle.FROZEN_MARKER + ".py"][0]
    assert marker == str(tmp_path / "manifest_modules")
    text = read(os.path.join(marker, "frozen_app.py")).decode()
    assert "BOARD = %r\nPORT = %r\nPROFILE = %r\n" % (board, port, profile) in text
    # the version the build is made as (gateway.ota.feature.BUILT)
    assert "VERSION = %r\n" % bundle.version_for("release") in text and "CHANNEL = 'release'\n" in text


def test_frozen_manifest_refuses_an_unknown_board_or_the_wrong_port(tmp_path, capsys):
    out = str(tmp_path / "m.py")
    with pytest.raises(bundle.BuildError, match="unknown board 'esp33'"):
        bundle.frozen_manifest("esp33", "esp32", str(tmp_path))
    for board, port in (("esp8266", "esp32"), ("host", "esp32"), ("esp32s3", "esp8266")):
        assert bundle.main(["frozen-manifest", "--board", board, "--port", port, "--out", out]) == 2
        assert "is built with the" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bundle.main(["frozen-manifest", "--board", "esp32", "--port", "rp2", "--out", out])
    with pytest.raises(SystemExit):                  # one generator: the old command is gone
        bundle.main(["esp32-manifest", "-o", out])
    assert not os.path.exists(out)


@pytest.mark.usefixtures("micropython")
def test_the_app_imports_from_only_what_the_manifest_names_and_knows_it_is_frozen(built, tmp_path):
    """A stand-in of the frozen table: only what the manifest names, each
    file from its base_path, imported under MicroPython from the cwd, so
    that every module's __file__ is what a real frozen build gives it
    (gateway/ota/feature.py: no ".frozen/" prefix; checked on a real frozen unix
    build, README "Updates"). gateway.ota.feature.FROZEN must say True there: the
    old rule, __file__.startswith(".frozen/"), said False."""
    man = tmp_path / "manifest.py"
    bundle.write_frozen_manifest(str(man), "host", "unix")
    got = manifest_entries(man.read_text())
    tree = tmp_path / "frozen"
    for base, mod in got["module"]:
        dst = tree / mod
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(read(os.path.join(base, mod)))
    r = subprocess.run([micropython_bin(), "-X", "heapsize=8m", "-c", """
import sys, json
sys.path[:] = [""] + [p for p in sys.path if p]    # "": the stand-in; asyncio stays
import ota_boot, microdot, gateway.app, gateway.web.api, gateway.ota.feature, board.host
print(json.dumps({"frozen": gateway.ota.feature.FROZEN, "file": gateway.ota.feature.__file__, "marker": "frozen_app" in sys.modules,
                  "mods": sorted(m for m in sys.modules if m.startswith(("gateway.", "dtu.", "proto_min")))}))
"""], cwd=str(tree), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert "gateway.link.scheduler" in out["mods"] and "dtu.client" in out["mods"] and "proto_min.codec" in out["mods"]
    assert out["file"] == "gateway/ota/feature.py"
    assert out["frozen"] is True and out["marker"] is False


def test_esp32_image_errors(built, tmp_path):
    (a, _), _, _ = built
    with pytest.raises(bundle.BuildError, match="not a MicroPython ESP32 build folder"):
        bundle.make_esp32_image(os.path.join(a, "bundle"), str(tmp_path), str(tmp_path / "x.bin"))
    (tmp_path / "partition-table.bin").write_bytes(partition_table([("factory", 0, 0, 0x10000, 0x3F0000)]))
    (tmp_path / "flash_args").write_text("0x8000 partition-table.bin\n")
    with pytest.raises(bundle.BuildError, match="no room for the filesystem"):
        bundle.make_esp32_image(os.path.join(a, "bundle"), str(tmp_path), str(tmp_path / "x.bin"))
