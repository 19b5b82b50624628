"""The board-side pieces of the updates that need no network: the archive
checker (gateway.ota.stage), the release-JSON picker (gateway.ota.releases), the
version rules (gateway.ota.names) and the URL/certificate helpers of
lib/httpclient.py.

Board-side test: plain unittest, runs under pytest and under the unix
MicroPython (tests_host/mp/run_all.py); the archives are made here with a
small ustar writer (MicroPython has no tarfile).
"""
import binascii
import hashlib
import io
import json
import unittest

import ota_layout

import ota_swap
from support.tmpfs import mkdtemp
from gateway.ota import names as ota_names
from httpclient import HttpError, split_url
from tlsctx import der_certs
from gateway.ota.releases import pick_release
from gateway.ota.stage import Stager, StageError, safe_path

FILES = [("app/gateway/a.mpy", b"A" * 700), ("app/lib/x/y.mpy", b"y"), ("app/version.json", b'{"version": "2.0.0"}'),
         ("app/www/empty.gz", b""), ("boot.py", b"# boot\n"), ("main.py", b"# main\n"), ("ota_boot.mpy", b"L" * 512)]


def sha(b):
    return binascii.hexlify(hashlib.sha256(b).digest()).decode()


def manifest(files, version="2.0.0", boards=("esp32", "esp8266", "host"), mp="1.25.0"):
    head = {"format": 1, "version": version, "boards": list(boards), "min_micropython": mp,
            "total": sum(len(d) for _, d in files)}
    first = json.dumps(head)[:-1] + ', "files": ['
    lines = [json.dumps({"path": p, "size": len(d), "sha256": sha(d)}) for p, d in files]
    return (first + "\n" + ",\n".join(lines) + "\n]}\n").encode()


def tar_header(name, size):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = ("%011o\0" % size).encode()
    h[136:148] = b"00000000000\0"
    h[156] = 48
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b"        "
    h[148:156] = ("%06o\0 " % sum(h)).encode()
    return bytes(h)


def tar(members):
    out = bytearray()
    for name, data in members:
        out += tar_header(name, len(data)) + data + b"\0" * (-len(data) % 512)
    out += b"\0" * 1024
    out += b"\0" * (-len(out) % 10240)
    return bytes(out)


def archive(files=FILES, man=None, **kw):
    man = manifest(files, **kw) if man is None else man
    return tar([("manifest.json", man)] + list(files)), man


class Base(unittest.TestCase):
    def setUp(self):
        self.root = mkdtemp()
        self.ld = ota_swap.Loader(self.root)

    def tearDown(self):
        self.ld.rmtree("")

    def stage(self, data, chunk=1000, **kw):
        st = Stager(self.ld, **kw)
        try:
            for i in range(0, len(data), chunk):
                st.feed(data[i:i + chunk])
            return st.finish()
        except Exception:
            st.abort()
            raise

    def staged_files(self):
        out = {}
        for p, d in FILES:
            with open(self.root + "/ota/new/" + p, "rb") as f:
                out[p] = f.read()
        return out

    def refused(self, data, text, **kw):
        with self.assertRaises(StageError) as cm:
            self.stage(data, **kw)
        self.assertIn(text, str(cm.exception))
        self.assertFalse(self.ld.exists("ota/new"))
        self.assertFalse(self.ld.exists(ota_layout.STAGED))


class TestStager(Base):
    def test_good_archive_any_chunking(self):
        data, man = archive()
        for chunk in (1, 7, 512, 1000, len(data)):
            head = self.stage(data, chunk, expect_sha256=sha(data), expect_size=len(data),
                              manifest_sha256=sha(man), board="host", mp_version=(1, 28, 0))
            self.assertEqual(head["version"], "2.0.0")
            self.assertEqual(self.staged_files(), dict(FILES))
            staged = self.ld.read_json(ota_layout.STAGED)
            self.assertEqual((staged["version"], staged["files"]), ("2.0.0", len(FILES)))

    def test_tampered_file(self):
        files = list(FILES)
        files[0] = (files[0][0], b"B" + files[0][1][1:])
        data, _ = archive(files, man=manifest(FILES))
        self.refused(data, "sha256 mismatch for app/gateway/a.mpy")

    def test_tampered_manifest(self):
        data, man = archive()
        self.refused(data, "sha256 mismatch for manifest.json", manifest_sha256=sha(man + b" "))

    def test_wrong_sizes(self):
        data, _ = archive()
        self.refused(data, "wrong size", expect_size=len(data) - 512)
        self.refused(data, "wrong size", expect_size=len(data) + 1)
        files = list(FILES)
        files[1] = (files[1][0], b"yy")
        data, _ = archive(files, man=manifest(FILES))
        self.refused(data, "wrong size for app/lib/x/y.mpy")

    def test_truncated(self):
        data, _ = archive()
        for cut in (100, 600, 2000, len(data) - 10240):
            self.refused(data[:cut], "truncated")

    def test_whole_archive_hash(self):
        data, _ = archive()
        self.refused(data, "sha256 of the archive", expect_sha256="0" * 64)

    def test_missing_extra_and_reordered_files(self):
        self.refused(archive(FILES[:-1], man=manifest(FILES))[0], "missing")
        self.refused(archive(FILES, man=manifest(FILES[:-1]))[0], "not in the manifest")
        swapped = [FILES[1], FILES[0]] + FILES[2:]
        self.refused(archive(swapped, man=manifest(FILES))[0], "where the manifest has")

    def test_bad_paths_and_entries(self):
        for bad in ("../evil.mpy", "/abs.mpy", "app/../x", "settings.json", "app//x", "app/\x01"):
            self.assertFalse(safe_path(bad), bad)
            files = [(bad, b"x")]
            self.refused(tar([("manifest.json", manifest(files))] + files), "bad entry")
        self.assertTrue(safe_path("app/gateway/app.mpy"))
        self.refused(tar([("app/x.mpy", b"x")]), "does not start with manifest.json")
        data, man = archive()
        data = bytearray(data)
        data[512 + len(man) + (-len(man) % 512) + 20] ^= 1   # a name byte of the second header
        self.refused(bytes(data), "checksum")
        self.refused(archive()[0] + b"x", "after the end")

    def test_board_and_micropython_version(self):
        data, _ = archive(boards=("esp32",))
        self.refused(data, "not for esp8266", board="esp8266")
        data, _ = archive(mp="1.30.0")
        self.refused(data, "needs MicroPython 1.30.0", mp_version=(1, 28, 0))
        self.refused(tar([("manifest.json", b'{"version": "1", "files": [\n]}\n')]), "unknown format")

    def test_no_app_in_archive(self):
        files = [("boot.py", b"x")]
        self.refused(tar([("manifest.json", manifest(files))] + files), "no app")


RELEASE = {
    "url": "https://api.github.com/repos/o/r/releases/1", "id": 1, "tag_name": "v2.0.0",
    "name": "Release \u00e9 \"2.0.0\"", "draft": False, "prerelease": False,
    "author": {"login": "x", "id": 5, "site_admin": False, "nested": [[[{"a": [1, 2.5e3, -3]}]]]},
    "published_at": "2026-11-21T10:00:00Z", "body": "notes \\n " + "long " * 2000,
    "assets": [
        {"name": "version.json", "size": 400, "digest": "sha256:" + "a" * 64,
         "browser_download_url": "https://github.com/o/r/releases/download/v2.0.0/version.json",
         "uploader": {"login": "x"}, "label": None},
        {"name": "other.bin", "size": 1, "browser_download_url": "https://x/other.bin"},
        {"name": ota_names.ARCHIVE, "size": 1234, "digest": None,
         "browser_download_url": "https://github.com/o/r/releases/download/v2.0.0/" + ota_names.ARCHIVE},
    ],
}


class TestPicker(unittest.TestCase):
    def pick(self, obj_or_text):
        text = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text)
        return pick_release(io.BytesIO(text.encode()), ota_names.DEVICE_ASSETS)

    def test_picks_only_what_is_needed(self):
        r = self.pick(RELEASE)
        self.assertEqual(r["tag_name"], "v2.0.0")
        self.assertEqual(r["name"], "Release \u00e9 \"2.0.0\"")
        self.assertEqual(r["prerelease"], False)
        self.assertEqual(sorted(r["assets"]), sorted([ota_names.ARCHIVE, ota_names.VERSION]))
        self.assertEqual(r["assets"]["version.json"]["size"], 400)
        self.assertEqual(r["assets"]["version.json"]["digest"], "sha256:" + "a" * 64)
        self.assertIsNone(r["assets"][ota_names.ARCHIVE]["digest"])
        self.assertTrue("body" not in r and "author" not in r)

    def test_pretty_printed_and_escapes(self):
        text = json.dumps(RELEASE).replace(", ", ",\n   ").replace(": ", " :\t").replace('"v2.0.0"', '"v2.\\u0030.0"')
        self.assertEqual(self.pick(text)["tag_name"], "v2.0.0")

    def test_bad_json(self):
        good = json.dumps(RELEASE)
        for bad in (good[:5000], good + "x", "[1, 2]", '{"tag_name": tru}', '{"a" 1}',
                    "[" * 50 + "]" * 50, '{"tag_name": "' + "x" * 500 + '"}'):
            with self.assertRaises(ValueError):
                self.pick(bad)


class TestVersions(unittest.TestCase):
    def test_order(self):
        seq = ["0.0.9", "0.1.0-snapshot.2", "0.1.0-snapshot.10", "0.1.0", "v0.1.1-snapshot.1",
               "0.1.1-snapshot.1.1", "0.1.1", "0.2", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0"]
        for i in range(len(seq) - 1):
            self.assertTrue(ota_names.newer(seq[i + 1], seq[i]), "%s > %s" % (seq[i + 1], seq[i]))
            self.assertFalse(ota_names.newer(seq[i], seq[i + 1]))
        self.assertFalse(ota_names.newer("1.0.0+build5", "1.0.0"))
        self.assertFalse(ota_names.newer("1.0.0", "1.0.0"))
        self.assertEqual(ota_names.parse_version("v1.2.3-rc.1+x"), (1, 2, 3, ("rc", 1)))

    def test_garbage(self):
        for bad in ("", "x", "1.2.3.4", "1..2", "1.a", None, 5):
            with self.assertRaises(ValueError):
                ota_names.parse_version(bad)
        self.assertFalse(ota_names.newer("garbage", "1.0.0"))
        self.assertTrue(ota_names.newer("1.0.0", "garbage"))


class TestFetchHelpers(unittest.TestCase):
    def test_split_url(self):
        self.assertEqual(split_url("https://api.github.com"), ("https", "api.github.com", 443, "/"))
        self.assertEqual(split_url("http://127.0.0.1:8080/a/b?c=1"), ("http", "127.0.0.1", 8080, "/a/b?c=1"))
        for bad in ("ftp://x/", "api.github.com", "https://:80/", "https://u@h/", "http://h:x/"):
            with self.assertRaises(HttpError):
                split_url(bad)

    def test_der_certs(self):
        a = b"\x30\x03\x02\x01\x05"
        b = b"\x30\x82\x01\x00" + b"\x00" * 256
        self.assertEqual(der_certs(a + b), [a, b])
        pem = b"-----BEGIN CERTIFICATE-----\n" + binascii.b2a_base64(b) + b"-----END CERTIFICATE-----\n"
        self.assertEqual(der_certs(pem + pem), [b, b])
        with self.assertRaises(ValueError):
            der_certs(b"junk")

    def test_names_are_distinct_and_device_assets_are_released(self):
        self.assertEqual(len(set(ota_names.RELEASE_ASSETS)), len(ota_names.RELEASE_ASSETS))
        for n in ota_names.DEVICE_ASSETS:
            self.assertIn(n, ota_names.RELEASE_ASSETS)
