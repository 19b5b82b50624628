"""gateway.settings: defaults, validation, masking, atomic saves, power cuts.

Board-side test: plain unittest, runs under pytest and under the unix
MicroPython (tests_host/mp/run_all.py). Files go to a fresh directory under
/tmp; CrashFs "loses power" after N filesystem operations.
"""
import json
import os
import unittest

from gateway import fsutil
from support.fscrash import CrashFs, NoReplaceFs
from support.tmpfs import mkdtemp, read_text, rmtree, write_text
from gateway.settings import Settings, SettingsError, SCHEMA, check


DEFAULTS = {
    "wifi.ssid": "", "wifi.password": "", "dtu.host": "", "dtu.port": 10081,
    "dtu.interval": 31, "dtu.cloud_pause": True, "dtu.cloud_pause_seconds": 30,
    "dtu.cloud_schedule": "5min", "dtu.via": "lan", "dtu.ap_ssid": "",
    "dtu.ap_password": "", "admin.password": "", "timezone": "UTC",
}
# rows the feature issues added (mqtt.*, openhab.*, ota.*, ...): their defaults as declared
DEFAULTS.update({r[0]: r[2] for r in SCHEMA if r[0] not in DEFAULTS})

OLD = {"wifi.ssid": "home", "wifi.password": "old-secret-1", "dtu.host": "192.168.1.50",
       "dtu.interval": 60}
NEW = {"wifi.ssid": "home2", "wifi.password": "new-secret-2", "dtu.host": "dtu.lan",
       "dtu.interval": 45, "timezone": "CET-1CEST,M3.5.0,M10.5.0/3"}


def full(changes):
    v = dict(DEFAULTS)
    v.update(changes)
    return v


class Base(unittest.TestCase):
    def setUp(self):
        self.d = mkdtemp()
        self.main = self.d + "/settings.json"
        self.bak = self.d + "/settings.bak"

    def tearDown(self):
        rmtree(self.d)

    def fresh(self, fs=None):
        s = Settings(self.d, fs)
        notes = s.load()
        return s, notes

    def put(self, path, obj):
        write_text(path, obj if isinstance(obj, str) else json.dumps(obj))


class TestDefaultsAndTable(Base):
    def test_defaults(self):
        s, notes = self.fresh()
        self.assertEqual(s.values(), DEFAULTS)
        self.assertEqual(notes, [("info", "no settings saved yet: using defaults")])
        self.assertEqual(s.get("dtu.port"), 10081)
        self.assertEqual(s.warnings(), [])
        with self.assertRaises(KeyError):
            s.get("nope")

    def test_every_default_is_valid(self):
        for row in SCHEMA:
            self.assertEqual(check(row, row[2]), row[2])
            self.assertEqual(len(row), 6)

    def test_values_is_a_copy(self):
        s, _ = self.fresh()
        s.values()["dtu.port"] = 1
        self.assertEqual(s.get("dtu.port"), 10081)

    def test_path_dir_forms(self):
        for p in (self.d, self.d + "/"):
            s = Settings(p)
            s.load()
            s.update({"dtu.port": 1000 + len(p)})
            self.assertEqual(Settings(self.d)._main, self.main)
        self.assertEqual(Settings("")._main, "settings.json")

    def test_custom_schema_rows_extend_the_table(self):
        rows = SCHEMA + (("ext.port", "i", 1883, 1, 65535, False),
                         ("ext.ratio", "f", 0.5, 0, 1, False),
                         ("ext.password", "s", "", 0, 64, True))
        s = Settings(self.d, schema=rows)
        s.load()
        self.assertEqual(s.update({"ext": {"port": 8883, "ratio": 1}}), {"ext.port": 8883, "ext.ratio": 1.0})
        self.assertIsInstance(s.get("ext.ratio"), float)
        self.assertEqual(s.public()["ext.password_set"], False)
        # a file with the extra keys loaded by a firmware without them: dropped with a note
        s2, notes = self.fresh()
        self.assertIn(("info", "settings.json: dropped unknown settings ext.password, ext.port, "
                       "ext.ratio"), notes)
        self.assertEqual(s2.values(), DEFAULTS)


class TestValidate(Base):
    def setUp(self):
        Base.setUp(self)
        self.s, _ = self.fresh()

    def bad(self, changes, field, text=None):
        with self.assertRaises(SettingsError) as cm:
            self.s.validate(changes)
        self.assertEqual(cm.exception.field, field)
        if text:
            self.assertIn(text, cm.exception.message)
        self.assertEqual(str(cm.exception), cm.exception.message)
        self.assertIsInstance(cm.exception, ValueError)

    def test_dotted_and_nested(self):
        v = self.s.validate({"dtu.interval": 40, "dtu": {"port": 1}, "wifi": {"ssid": "x"},
                             "timezone": "UTC+1"})
        self.assertEqual(v, {"dtu.interval": 40, "dtu.port": 1, "wifi.ssid": "x",
                             "timezone": "UTC+1"})
        self.assertEqual(self.s.validate({}), {})
        self.assertEqual(self.s.validate({"dtu": {}}), {})

    def test_not_an_object(self):
        for body in ([], "x", 1, None):
            self.bad(body, None, "JSON object")

    def test_unknown_keys(self):
        self.bad({"dtu.nope": 1}, "dtu.nope", "unknown")
        self.bad({"dtu": {"nope": 1}}, "dtu.nope", "unknown")
        self.bad({"nope": {"a": {"b": 1}}}, "nope", "unknown")
        self.bad({"dtu": {"interval": {"x": 1}}}, "dtu.interval", "integer")
        self.bad({"dtu.interval.x": 1}, "dtu.interval.x", "unknown")
        self.bad({"wifi.password_set": True}, "wifi.password_set", "unknown")

    def test_given_twice(self):
        self.bad({"dtu.port": 1, "dtu": {"port": 2}}, "dtu.port", "twice")

    def test_integers(self):
        for v in ("31", 31.0, 31.5, True, False, None, [31], {"a": 1}):
            self.bad({"dtu.interval": v}, "dtu.interval", "integer")
        for v, ok in ((4, False), (5, True), (3600, True), (3601, False), (-1, False)):
            if ok:
                self.assertEqual(self.s.validate({"dtu.interval": v}), {"dtu.interval": v})
            else:
                self.bad({"dtu.interval": v}, "dtu.interval", "from 5 to 3600")
        self.bad({"dtu.port": 0}, "dtu.port", "from 1 to 65535")
        self.bad({"dtu.port": 65536}, "dtu.port")
        self.assertEqual(self.s.validate({"dtu.port": 65535}), {"dtu.port": 65535})
        self.bad({"dtu.cloud_pause_seconds": 121}, "dtu.cloud_pause_seconds")
        self.assertEqual(self.s.validate({"dtu.cloud_pause_seconds": 0}), {"dtu.cloud_pause_seconds": 0})

    def test_floats(self):
        row = ("x.f", "f", 1.0, 0, 10, False)
        self.assertEqual(check(row, 3), 3.0)
        self.assertIsInstance(check(row, 3), float)
        self.assertEqual(check(row, 2.5), 2.5)
        for v in (True, "3", None, 11, -0.1, float("nan"), float("inf")):
            with self.assertRaises(SettingsError):
                check(row, v)

    def test_bools(self):
        self.assertEqual(self.s.validate({"dtu.cloud_pause": False}), {"dtu.cloud_pause": False})
        for v in (0, 1, "true", None, "false"):
            self.bad({"dtu.cloud_pause": v}, "dtu.cloud_pause", "true or false")

    def test_choices(self):
        self.assertEqual(self.s.validate({"dtu.cloud_schedule": "15min", "dtu.via": "ap"}),
                         {"dtu.cloud_schedule": "15min", "dtu.via": "ap"})
        self.bad({"dtu.cloud_schedule": "10min"}, "dtu.cloud_schedule", "5min, 15min")
        self.bad({"dtu.via": "LAN"}, "dtu.via")
        self.bad({"dtu.via": 1}, "dtu.via", "string")

    def test_ssid_lengths_in_bytes(self):
        self.assertEqual(self.s.validate({"wifi.ssid": "x" * 32}), {"wifi.ssid": "x" * 32})
        self.bad({"wifi.ssid": "x" * 33}, "wifi.ssid", "at most 32 bytes")
        self.bad({"wifi.ssid": "\u00e9" * 17}, "wifi.ssid", "32 bytes")  # 34 bytes
        self.bad({"dtu.ap_ssid": "y" * 33}, "dtu.ap_ssid")
        self.bad({"wifi.ssid": 5}, "wifi.ssid", "string")
        self.bad({"wifi.ssid": "a\nb"}, "wifi.ssid", "control")

    def test_wpa_passwords(self):
        for key in ("wifi.password", "dtu.ap_password"):
            for v in ("", "12345678", "x" * 63):
                self.assertEqual(self.s.validate({key: v}), {key: v})
            for v in ("1234567", "x" * 64, 12345678):
                self.bad({key: v}, key)
            self.bad({key: "short"}, key, "empty or 8 to 63")

    def test_admin_password(self):
        self.assertEqual(self.s.validate({"admin.password": "x" * 64}), {"admin.password": "x" * 64})
        self.assertEqual(self.s.validate({"admin": {"password": "a"}}), {"admin.password": "a"})
        self.bad({"admin.password": "x" * 65}, "admin.password", "at most 64")

    def test_secrets_null_empty_value(self):
        self.assertEqual(self.s.validate({"wifi.password": None}), {})
        self.assertEqual(self.s.validate({"wifi": {"password": None, "ssid": "a"}}), {"wifi.ssid": "a"})
        self.assertEqual(self.s.validate({"admin.password": ""}), {"admin.password": ""})
        self.bad({"wifi.ssid": None}, "wifi.ssid", "string")  # null only for secrets
        self.s.update({"wifi.password": "secret-one", "admin.password": "adm"})
        self.assertEqual(self.s.update({"wifi.password": None, "admin.password": None}), {})
        self.assertEqual(self.s.get("wifi.password"), "secret-one")
        self.assertEqual(self.s.update({"admin.password": ""}), {"admin.password": ""})
        self.assertEqual(self.s.get("admin.password"), "")

    def test_hosts(self):
        good = ("", "192.168.1.50", "10.0.0.1", "dtu", "dtu.lan", "DTU-Pro.fritz.box",
                "my_dtu.local", "a" * 62 + ".b", "a" * 63)
        for h in good:
            self.assertEqual(self.s.validate({"dtu.host": h}), {"dtu.host": h})
        bad = ("dtu lan", " dtu", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.0004", "-dtu",
               "dtu-", "dtu..lan", ".dtu", "dtu.", "http://dtu", "dtu:10081", "d\u00e9u",
               "a" * 64, "a" * 30 + "." + "b" * 34)
        for h in bad:
            self.bad({"dtu.host": h}, "dtu.host")
        self.bad({"dtu.host": "x" * 65}, "dtu.host", "at most 64")

    def test_hosts_take_ascii_digits_only(self):
        # Arabic-Indic, Devanagari, fullwidth and superscript digits: CPython's
        # isdigit() and int() take some of them as 0-9
        for h in ("\u0661\u0669\u0662.\u0661\u0666\u0668.\u0661.\u0665\u0660",
                  "\u0967\u0968.1.1.1", "\uff11\uff19\uff12.168.1.50", "192.168.1.\u00b9",
                  "1.2.3.\u0664"):
            self.bad({"dtu.host": h}, "dtu.host")
            self.bad({"mqtt.host": h}, "mqtt.host")

    def test_update_address_is_an_http_url(self):
        good = ("https://api.github.com", "http://127.0.0.1:8123", "https://gh.example.org/api/v3",
                "http://mirror.lan:8080/github/", "https://a.b/c-d_e.f~g/%20")
        for u in good:
            self.assertEqual(self.s.validate({"ota.api": u}), {"ota.api": u})
        bad = ("javascript:alert(1)", "JavaScript://alert(1)", "data:text/html,x", "file:///etc/passwd",
               "ftp://api.github.com", "https://", "https://api.github.com?x=1", "https://a.b/#x",
               "https://user:pw@api.github.com", "https://api.github.com:0", "https://api.github.com:65536",
               "https://api.github.com:\u0668\u0660", "https://api github.com", "https://a.b/c d",
               "https://a.b/<script>", "//api.github.com", "api.github.com", "https:/api.github.com")
        for u in bad:
            self.bad({"ota.api": u}, "ota.api")

    def test_update_repository_is_owner_slash_name(self):
        for r in ("dtu-gateway/dtu-gateway", "ohAnd/dtuGateway", "a/b", "me-2/my.repo_x"):
            self.assertEqual(self.s.validate({"ota.repo": r}), {"ota.repo": r})
        for r in ("javascript:alert(1)", "nobody", "a/b/c", "/b", "a/", "a b/c", "a/../b", "a/..",
                  "../etc", "a_b/c", "a/b?x", "a/b#x", "x" * 40 + "/y", "\u00e4/b"):
            self.bad({"ota.repo": r}, "ota.repo")

    def test_text_that_cannot_be_stored_is_refused(self):
        for v in ("a\x7fb", "a\x00b", "tab\there"):
            self.bad({"wifi.ssid": v}, "wifi.ssid", "control")

    def test_timezone(self):
        for z in ("UTC", "+01:00", "CET-1CEST,M3.5.0,M10.5.0/3", "<+0530>-5:30"):
            self.assertEqual(self.s.validate({"timezone": z}), {"timezone": z})
        self.bad({"timezone": "Europe/Berlin"}, "timezone", "timezone: ")
        self.bad({"timezone": "CET-1CEST"}, "timezone", "DST rules")
        self.bad({"timezone": 1}, "timezone", "string")
        self.bad({"timezone": "CET-1CEST,M3.5.0,M10.5.0/3" + "x" * 40}, "timezone", "64")

    def test_whole_object_checked_before_anything_changes(self):
        calls = []
        self.s.on_change(calls.append)
        with self.assertRaises(SettingsError):
            self.s.update({"dtu.port": 1234, "dtu.interval": 2})
        self.assertEqual(self.s.values(), DEFAULTS)
        self.assertEqual(calls, [])
        self.assertFalse(fsutil.exists(self.s._fs, self.main))

    def test_warnings(self):
        self.s.update({"dtu.interval": 10})
        w = self.s.warnings()
        self.assertEqual(len(w), 1)
        self.assertTrue(w[0].startswith("dtu.interval 10 s is under 31 s"), w[0])
        self.s.update({"dtu.interval": 5})
        self.assertEqual(len(self.s.warnings()), 1)
        self.s.update({"dtu.interval": 31, "dtu.via": "ap"})
        w = self.s.warnings()
        self.assertEqual(len(w), 1)
        self.assertTrue(w[0].startswith("dtu.ap_ssid"), w[0])
        self.s.update({"dtu.ap_ssid": "DTUBI-1234"})
        self.assertEqual(self.s.warnings(), [])


class TestPublic(Base):
    def test_secrets_are_masked(self):
        s, _ = self.fresh()
        p = s.public()
        self.assertEqual(p["wifi.password"], "")
        self.assertIs(p["wifi.password_set"], False)
        self.assertNotIn("dtu.host_set", p)
        s.update({"wifi.password": "hunter2hunter2", "dtu.ap_password": "apsecret99",
                  "admin.password": "adminpw", "wifi.ssid": "net"})
        p = s.public()
        text = json.dumps(p)
        for secret in ("hunter2hunter2", "apsecret99", "adminpw"):
            self.assertNotIn(secret, text)
        for key in ("wifi.password", "dtu.ap_password", "admin.password"):
            self.assertEqual(p[key], "")
            self.assertIs(p[key + "_set"], True)
        self.assertEqual(p["wifi.ssid"], "net")
        self.assertEqual(len(p), len(SCHEMA) + sum(1 for r in SCHEMA if r[5]))  # one _set per secret
        self.assertEqual(s.mask({"admin.password": "x", "dtu.port": 1}),
                         {"admin.password": "", "admin.password_set": True, "dtu.port": 1})


class TestUpdate(Base):
    def test_update_persists_and_reloads(self):
        s, _ = self.fresh()
        self.assertEqual(s.update(OLD), OLD)
        s2, notes = self.fresh()
        self.assertEqual(s2.values(), full(OLD))
        self.assertEqual(notes, [])
        self.assertFalse(fsutil.exists(s._fs, self.d + "/settings.tmp"))
        self.assertFalse(fsutil.exists(s._fs, self.bak))  # nothing older yet
        s2.update(NEW)
        self.assertEqual(json.loads(read_text(self.bak)), full(OLD))
        self.assertEqual(json.loads(read_text(self.main)), full(dict(OLD, **NEW)))

    def test_changed_keys_only_and_listeners(self):
        s, _ = self.fresh()
        got, got2 = [], []
        s.on_change(got.append)
        s.on_change(got2.append)
        self.assertEqual(s.update({"dtu.port": 10081, "dtu.interval": 40}), {"dtu.interval": 40})
        self.assertEqual(got, [{"dtu.interval": 40}])
        self.assertEqual(got2, [{"dtu.interval": 40}])
        self.assertEqual(s.update({"dtu": {"interval": 40}}), {})
        self.assertEqual(len(got), 1)

    def test_failing_listener_does_not_stop_the_others(self):
        s, _ = self.fresh()
        got = []

        def boom(changed):
            raise RuntimeError("listener failed")
        s.on_change(boom)
        s.on_change(got.append)
        with self.assertRaises(RuntimeError):
            s.update({"dtu.interval": 40})
        self.assertEqual(got, [{"dtu.interval": 40}])
        self.assertEqual(s.get("dtu.interval"), 40)
        self.assertEqual(self.fresh()[0].get("dtu.interval"), 40)

    def test_no_change_no_write(self):
        fs = CrashFs()
        s = Settings(self.d, fs)
        s.load()
        s.update({"dtu.interval": 40})
        fs.log = []
        self.assertEqual(s.update({"dtu.interval": 40, "wifi.password": None}), {})
        self.assertEqual(fs.log, [])

    def test_write_failure_keeps_old_values(self):
        fs = CrashFs()
        s = Settings(self.d, fs)
        s.load()
        s.update(OLD)
        got = []
        s.on_change(got.append)
        fs.arm(0)
        with self.assertRaises(OSError):
            s.update(NEW)
        self.assertEqual(s.values(), full(OLD))
        self.assertEqual(got, [])
        self.assertEqual(self.fresh()[0].values(), full(OLD))

    def test_file_deleted_behind_our_back(self):
        s, _ = self.fresh()
        s.update(OLD)
        s.update(NEW)
        os.remove(self.main)
        self.assertEqual(s.update({"dtu.port": 2}), {"dtu.port": 2})
        self.assertEqual(self.fresh()[0].get("dtu.port"), 2)
        self.assertEqual(json.loads(read_text(self.bak)), full(OLD))

    def test_rename_that_cannot_replace(self):
        fs = NoReplaceFs()
        s = Settings(self.d, fs)
        s.load()
        s.update(OLD)
        s.update(NEW)
        s.update({"dtu.port": 1})
        s2 = Settings(self.d, fs)
        self.assertEqual(s2.load(), [])
        self.assertEqual(s2.values(), full(dict(OLD, **dict(NEW, **{"dtu.port": 1}))))
        self.assertEqual(json.loads(read_text(self.bak)), full(dict(OLD, **NEW)))

    def test_factory_reset(self):
        s, _ = self.fresh()
        s.update(OLD)
        s.update(NEW)
        got = []
        s.on_change(got.append)
        changed = s.factory_reset()
        self.assertEqual(s.values(), DEFAULTS)
        self.assertEqual(sorted(changed), sorted(dict(OLD, **NEW)))
        self.assertEqual(got, [changed])
        self.assertEqual(os.listdir(self.d), [])
        self.assertEqual(self.fresh()[0].values(), DEFAULTS)
        self.assertEqual(s.factory_reset(), {})


class TestLoad(Base):
    def check_fallback(self, main_text, note):
        self.put(self.main, main_text)
        self.put(self.bak, full(OLD))
        s, notes = self.fresh()
        self.assertEqual(s.values(), full(OLD))
        self.assertEqual(notes[-1], ("warn", "settings restored from the last good copy (settings.bak)"))
        self.assertIn(note, notes[0][1])
        self.assertEqual(notes[0][0], "warn")
        # without a .bak: defaults, and it says so
        os.remove(self.bak)
        s, notes = self.fresh()
        self.assertEqual(s.values(), DEFAULTS)
        self.assertEqual(notes[-1], ("error", "no usable settings file: using defaults"))

    def test_corrupt_json(self):
        self.check_fallback("{not json", "settings.json is unreadable")

    def test_half_written(self):
        text = json.dumps(full(NEW))
        self.check_fallback(text[:len(text) // 2], "unreadable")

    def test_empty_file(self):
        self.check_fallback("", "unreadable")

    def test_not_an_object(self):
        self.check_fallback("[1, 2]", "not a JSON object")
        self.check_fallback("null", "not a JSON object")

    def test_too_big(self):
        self.check_fallback(json.dumps({"wifi.ssid": "x" * 5000}), "limit")

    def test_binary_garbage(self):
        with open(self.main, "wb") as f:
            f.write(b"\xff\xfe\x00\x01{")
        self.put(self.bak, full(OLD))
        s, notes = self.fresh()
        self.assertEqual(s.values(), full(OLD))

    def test_missing_main_uses_bak(self):
        self.put(self.bak, full(OLD))
        s, notes = self.fresh()
        self.assertEqual(s.values(), full(OLD))
        self.assertEqual(notes, [("warn", "settings restored from the last good copy (settings.bak)")])

    def test_invalid_value_prefers_valid_bak(self):
        self.put(self.main, dict(full(NEW), **{"dtu.interval": 1}))
        self.put(self.bak, full(OLD))
        s, notes = self.fresh()
        self.assertEqual(s.values(), full(OLD))
        self.assertEqual(notes[0], ("warn", "settings.json has invalid values: dtu.interval"))

    def test_invalid_value_without_bak_keeps_the_rest(self):
        self.put(self.main, dict(full(NEW), **{"dtu.interval": "fast", "dtu.port": True}))
        s, notes = self.fresh()
        self.assertEqual(s.values(), dict(full(NEW), **{"dtu.interval": 31, "dtu.port": 10081}))
        self.assertEqual(notes[-1], ("error", "using settings.json with defaults for dtu.interval, dtu.port"))

    def test_unknown_keys_dropped_with_a_note(self):
        self.put(self.main, dict(full(OLD), old_key=1))
        s, notes = self.fresh()
        self.assertEqual(s.values(), full(OLD))
        self.assertEqual(notes, [("info", "settings.json: dropped unknown settings old_key")])

    def test_missing_keys_take_defaults(self):
        self.put(self.main, {"dtu.port": 1})
        s, notes = self.fresh()
        self.assertEqual(s.values(), full({"dtu.port": 1}))
        self.assertEqual(notes, [])

    def test_load_never_raises_on_io_errors(self):
        class BadFs(fsutil.OsFs):
            def open(self, path, mode="r"):
                raise OSError(5, "EIO")
        self.put(self.main, full(OLD))
        s = Settings(self.d, BadFs())
        notes = s.load()
        self.assertEqual(s.values(), DEFAULTS)
        self.assertEqual(notes[-1][0], "error")


class Prng:
    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x % n


class TestPowerCut(Base):
    """A cut at every filesystem step of update() leaves files that load() turns
    into the old or the new settings, whatever state the files were in."""

    def start_states(self):
        # name -> function preparing the files; OLDER is a still older good state
        older = full({"wifi.ssid": "older"})
        return (
            ("main+bak", lambda: (self.put(self.main, full(OLD)), self.put(self.bak, older))),
            ("main only", lambda: self.put(self.main, full(OLD))),
            ("bak only", lambda: self.put(self.bak, full(OLD))),
            ("corrupt main", lambda: (self.put(self.main, "{\"wifi"), self.put(self.bak, full(OLD)))),
            ("invalid main", lambda: (self.put(self.main, dict(full(OLD), **{"dtu.port": 0})),
                                      self.put(self.bak, older))),
            ("corrupt main, invalid bak", lambda: (self.put(self.main, "[]"),
                                                   self.put(self.bak, dict(full(OLD), **{"dtu.via": 3})))),
            ("stale tmp", lambda: (self.put(self.main, full(OLD)), self.put(self.d + "/settings.tmp", "{"))),
            ("nothing", lambda: None),
        )

    def clear(self):
        for name in os.listdir(self.d):
            os.remove(self.d + "/" + name)

    def run_cuts(self, real_fs):
        for label, prepare in self.start_states():
            n = 0
            while True:
                self.clear()
                prepare()
                fs = CrashFs(real_fs)
                s = Settings(self.d, fs)
                s.load()
                old = s.values()
                new = dict(old)
                new.update(NEW)
                if label != "nothing":
                    self.assertNotEqual(old, DEFAULTS, label)
                fs.arm(n)
                try:
                    s.update(NEW)
                    done = True
                except OSError:  # the cut, or what the code saw of it
                    self.assertTrue(fs.crashed(), label)
                    done = False
                    self.assertEqual(s.values(), old, "%s: memory after cut at %d" % (label, n))
                after = Settings(self.d)
                after.load()
                got = after.values()
                self.assertTrue(got == old or got == new,
                                "%s, cut at op %d (%s): loaded %r" % (label, n, fs.log, got))
                if done:
                    self.assertEqual(got, new, label)
                    self.assertGreater(n, 3, label)
                    break
                n += 1

    def test_cut_at_every_step(self):
        self.run_cuts(fsutil.OsFs())

    def test_cut_at_every_step_without_replacing_rename(self):
        self.run_cuts(NoReplaceFs())

    def test_random_chains_of_cuts(self):
        # The state a cut leaves behind is the start of the next save.
        rnd = Prng(12345)
        expect = dict(DEFAULTS)
        for i in range(60):
            fs = CrashFs(NoReplaceFs() if i % 2 else fsutil.OsFs())
            s = Settings(self.d, fs)
            s.load()
            self.assertEqual(s.values(), expect, "round %d" % i)
            change = {"dtu.interval": 100 + i, "wifi.ssid": "net%d" % i}
            fs.arm(rnd.below(24))
            try:
                s.update(change)
            except OSError:
                self.assertTrue(fs.crashed())
            s2 = Settings(self.d)
            s2.load()
            new = dict(expect)
            new.update(change)
            self.assertTrue(s2.values() in (expect, new), "round %d" % i)
            expect = s2.values()
        self.assertNotEqual(expect, DEFAULTS)


if __name__ == "__main__":
    unittest.main()
