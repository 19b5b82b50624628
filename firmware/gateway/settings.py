"""Settings store: one JSON file with a last-good copy, validated by one table.

Files in path_dir: settings.json (current), settings.bak (the previous good
one), settings.tmp (only while saving). load() never raises: a missing or
corrupt settings.json falls back to settings.bak, then to the defaults, and
returns notes for the event log. update() validates a whole change set first,
then saves atomically, then applies it in memory and tells the listeners.
Nothing is written unless a value really changes (flash wears out).

SCHEMA has one row per key: (key, kind, default, a, b, secret)
  "i" integer a..b          "f" number a..b (an int is accepted)
  "b" true/false            "c" one of the strings in the tuple a
  "s" string of a..b bytes  "p" WPA passphrase: "" or a..b bytes
  "h" "" or a host name / IPv4 address of at most b chars
  "z" time zone (gateway.tz.parse), at most b chars
  "t" MQTT topic (prefix) of a..b bytes, without the wildcards + and #
  "n" name of a..b letters, digits or _ (openHAB item names)
  "u" http:// or https:// URL of a..b bytes: host[:port][/path], nothing else
  "r" GitHub repository "owner/name" of a..b bytes
Digits are ASCII digits: str.isdigit() and int() also take other scripts'.
Secrets are never returned by public(): "k": "" plus "k_set": true/false.
In a change set, a secret's null leaves it unchanged and "" clears it.
Later features add their keys (mqtt.*, openhab.*, ota.*) as rows here.
"""
import json

from gateway import fsutil, tz
from gateway.link.scheduler import SAFE_INTERVAL   # below it a warning: polling faster disturbs the cloud upload

SCHEMA = (
    ("wifi.ssid", "s", "", 0, 32, False),
    ("wifi.password", "p", "", 8, 63, True),
    ("dtu.host", "h", "", 0, 64, False),
    ("dtu.port", "i", 10081, 1, 65535, False),
    ("dtu.interval", "i", 31, 5, 3600, False),
    ("dtu.cloud_pause", "b", True, 0, 0, False),
    ("dtu.cloud_pause_seconds", "i", 30, 0, 120, False),
    ("dtu.cloud_schedule", "c", "5min", ("5min", "15min"), 0, False),
    ("dtu.via", "c", "lan", ("lan", "ap"), 0, False),
    ("dtu.ap_ssid", "s", "", 0, 32, False),
    ("dtu.ap_password", "p", "", 8, 63, True),
    ("admin.password", "s", "", 0, 64, True),
    ("admin.protect_read", "b", False, 0, 0, False),
    ("timezone", "z", "UTC", 0, 64, False),
    # push integrations; "" topic means dtu-gateway/<chip id>
    ("mqtt.enabled", "b", False, 0, 0, False),
    ("mqtt.host", "h", "", 0, 64, False),
    ("mqtt.port", "i", 1883, 1, 65535, False),
    ("mqtt.user", "s", "", 0, 64, False),
    ("mqtt.password", "s", "", 0, 64, True),
    ("mqtt.topic", "t", "", 0, 64, False),
    ("mqtt.tls", "b", False, 0, 0, False),
    ("mqtt.ha_discovery", "b", True, 0, 0, False),
    ("openhab.enabled", "b", False, 0, 0, False),
    ("openhab.host", "h", "", 0, 64, False),
    ("openhab.port", "i", 8080, 1, 65535, False),
    ("openhab.item_prefix", "n", "dtuGateway_", 0, 48, False),
    # updates
    ("ota.channel", "c", "release", ("release", "snapshot"), 0, False),
    ("ota.repo", "r", "dtu-gateway/dtu-gateway", 3, 100, False),
    ("ota.api", "u", "https://api.github.com", 8, 120, False),
)

_MISSING = object()


class SettingsError(ValueError):
    """A rejected value: .field is the dotted key (None for the whole body),
    .message a sentence for the user (the API's {"error", "field"})."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


def _digits(s):
    return s != "" and all("0" <= c <= "9" for c in s)


def _word(s, extra):
    return s != "" and all("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in extra for c in s)


def _host_ok(h):
    labels = h.lower().split(".")
    if all(_digits(lab) for lab in labels):  # looks numeric: must be IPv4
        return len(labels) == 4 and all(len(lab) <= 3 and int(lab) <= 255 for lab in labels)
    for lab in labels:
        if not 0 < len(lab) < 64 or lab[0] == "-" or lab[-1] == "-" or not _word(lab, "-_"):
            return False
    return True


def _url_ok(u):
    """http(s)://host[:port][/path]: no user, query, fragment or spaces."""
    scheme, sep, rest = u.partition("://")
    if not sep or scheme not in ("http", "https"):
        return False
    hostport, slash, path = rest.partition("/")
    host, colon, port = hostport.partition(":")
    if not _host_ok(host) or (colon and not (_digits(port) and 0 < int(port) < 65536)):
        return False
    return not slash or path == "" or _word(path, "-._~/%")


def _repo_ok(r):
    """GitHub's owner/name: owner letters, digits and -, name also . and _."""
    owner, slash, name = r.partition("/")
    return (bool(slash) and len(owner) <= 39 and _word(owner, "-") and len(name) <= 100
            and _word(name, "-._") and name not in (".", ".."))


def check(row, v):
    """The value v for a SCHEMA row, normalised; SettingsError if invalid."""
    key, kind, _, a, b, _ = row
    if kind == "b":
        if v is True or v is False:
            return v
        raise SettingsError(key, key + " must be true or false")
    if kind == "i" or kind == "f":
        if type(v) is bool or not isinstance(v, (int, float)) or (kind == "i" and not isinstance(v, int)):
            raise SettingsError(key, key + (" must be an integer" if kind == "i" else " must be a number"))
        if not a <= v <= b:  # NaN fails this too
            raise SettingsError(key, "%s must be from %s to %s" % (key, a, b))
        return float(v) if kind == "f" else v
    if not isinstance(v, str):
        raise SettingsError(key, key + " must be a string")
    if kind == "c":
        if v not in a:
            raise SettingsError(key, "%s must be one of: %s" % (key, ", ".join(a)))
        return v
    for c in v:
        if c < " " or c == "\x7f":
            raise SettingsError(key, key + " must not contain control characters")
    try:
        n = len(v.encode())
    except UnicodeError:  # a lone surrogate (CPython): text that cannot be stored
        raise SettingsError(key, key + " must be valid text")
    if kind == "p":
        if n and not a <= n <= b:
            raise SettingsError(key, "%s must be empty or %d to %d characters" % (key, a, b))
    elif not a <= n <= b:
        raise SettingsError(key, "%s must be at most %d bytes long" % (key, b) if n > b
                            else "%s must be at least %d bytes long" % (key, a))
    if kind == "t" and ("+" in v or "#" in v):
        raise SettingsError(key, key + " must not contain the MQTT wildcards + or #")
    if kind == "n" and not all("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c == "_" for c in v):
        raise SettingsError(key, key + " may hold only letters, digits and _")
    if kind == "h" and v and not _host_ok(v):
        raise SettingsError(key, key + " must be a host name or IPv4 address (no spaces)")
    if kind == "u" and not _url_ok(v):
        raise SettingsError(key, key + " must be an http:// or https:// address (host, port, path)")
    if kind == "r" and not _repo_ok(v):
        raise SettingsError(key, key + " must be a GitHub repository: owner/name")
    if kind == "z":
        try:
            tz.parse(v)
        except ValueError as e:
            raise SettingsError(key, "%s: %s" % (key, e))
    return v


class Settings:
    max_file = 4096  # bytes; a bigger settings file counts as corrupt

    def __init__(self, path_dir, fs=None, schema=SCHEMA):
        p = path_dir if not path_dir or path_dir.endswith("/") else path_dir + "/"
        self._main, self._bak, self._tmp = p + "settings.json", p + "settings.bak", p + "settings.tmp"
        self._fs = fs or fsutil.OsFs()
        self._schema = schema
        self._rows = {r[0]: r for r in schema}
        self._v = self.defaults()
        self._main_ok = False  # settings.json holds what is in memory: keep it as .bak
        self._cbs = []

    def defaults(self):
        return {r[0]: r[2] for r in self._schema}

    # -- reading -------------------------------------------------------------

    def load(self):
        """Read the settings; returns [(level, message)] for the event log."""
        notes = []
        self._main_ok = False
        salvage = None
        for path in (self._main, self._bak):
            name = path[path.rfind("/") + 1:]
            try:
                obj = fsutil.read_json(self._fs, path, self.max_file, _MISSING)
                if obj is _MISSING:
                    continue
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except Exception as e:  # whatever is in the file, never stop the boot
                notes.append(("warn", "%s is unreadable (%s)" % (name, e)))
                continue
            vals, bad, unknown = self.defaults(), [], []
            for k, v in obj.items():
                row = self._rows.get(k)
                if row is None:
                    unknown.append(k)
                    continue
                try:
                    vals[k] = check(row, v)
                except SettingsError:
                    bad.append(k)
            if unknown:
                notes.append(("info", "%s: dropped unknown settings %s" % (name, ", ".join(sorted(unknown)))))
            if not bad:
                if path == self._bak:
                    notes.append(("warn", "settings restored from the last good copy (%s)" % name))
                self._use(vals, path)
                return notes
            notes.append(("warn", "%s has invalid values: %s" % (name, ", ".join(sorted(bad)))))
            if salvage is None:
                salvage = (vals, path, name, bad)
        if salvage is not None:
            vals, path, name, bad = salvage
            notes.append(("error", "using %s with defaults for %s" % (name, ", ".join(sorted(bad)))))
            self._use(vals, path)
        else:
            self._v = self.defaults()
            notes.append(("error", "no usable settings file: using defaults") if notes
                         else ("info", "no settings saved yet: using defaults"))
        return notes

    def _use(self, vals, path):
        self._v = vals
        self._main_ok = path == self._main

    def get(self, key):
        return self._v[key]

    def values(self):
        """A copy of every value, secrets included (for the firmware only)."""
        return dict(self._v)

    def mask(self, d):
        """d with secret values replaced: "k": "" and "k_set": bool."""
        out = {}
        for k, v in d.items():
            if self._rows[k][5]:
                out[k] = ""
                out[k + "_set"] = v != ""
            else:
                out[k] = v
        return out

    def public(self):
        """Every value for GET /api/config, secrets masked."""
        return self.mask(self._v)

    def warnings(self):
        """[message] for settings that are allowed but unwise (each message
        starts with the key it is about)."""
        w = []
        v = self._v
        if v["dtu.interval"] < SAFE_INTERVAL:
            w.append("dtu.interval %d s is under %d s: polling this often can disturb the DTU's "
                     "cloud upload; use it for testing only" % (v["dtu.interval"], SAFE_INTERVAL))
        if v["dtu.via"] == "ap" and not v["dtu.ap_ssid"]:
            w.append("dtu.ap_ssid is empty but dtu.via is 'ap'")
        return w

    # -- changing ------------------------------------------------------------

    def validate(self, changes):
        """The change set (dotted and/or nested keys) as {dotted key: value};
        SettingsError for the first bad key. Secrets set to null are dropped."""
        if not isinstance(changes, dict):
            raise SettingsError(None, "expected a JSON object")
        flat = {}
        self._flatten("", changes, flat)
        out = {}
        for k, v in flat.items():
            row = self._rows[k]
            if v is None and row[5]:
                continue
            out[k] = check(row, v)
        return out

    def _flatten(self, prefix, d, out):
        for k, v in d.items():
            key = prefix + k
            if isinstance(v, dict) and key not in self._rows:
                sub = key + "."
                if not any(r.startswith(sub) for r in self._rows):
                    raise SettingsError(key, "unknown setting " + key)
                self._flatten(sub, v, out)
            elif key not in self._rows:
                raise SettingsError(key, "unknown setting " + key)
            elif key in out:
                raise SettingsError(key, key + " is given twice")
            else:
                out[key] = v

    def on_change(self, callback):
        """callback(changed) after each update/factory_reset that changes values."""
        self._cbs.append(callback)
        return callback

    def update(self, changes):
        """Validate, save atomically, apply; returns {key: new value} of the
        keys that changed (secrets in clear: use mask() before showing it).
        SettingsError: nothing changed. OSError: not saved, old values kept."""
        new = self.validate(changes)
        changed = {}
        for k, v in new.items():
            if v != self._v[k]:
                changed[k] = v
        if changed:
            vals = dict(self._v)
            vals.update(changed)
            self._save(vals)
            self._v = vals
            self._notify(changed)
        return changed

    def _save(self, vals):
        # Each step leaves settings.json or settings.bak holding the old or the
        # new values: tmp written and synced; the current file becomes .bak (or
        # is removed when it is not what is in memory); tmp becomes the file.
        fs = self._fs
        try:
            fsutil.write(fs, self._tmp, json.dumps(vals))
            if self._main_ok:
                try:
                    fsutil.replace(fs, self._main, self._bak)
                except OSError:
                    if fsutil.exists(fs, self._main):
                        raise  # else someone deleted it: nothing to keep
            else:
                fsutil.remove_quiet(fs, self._main)
            self._main_ok = False
            fsutil.replace(fs, self._tmp, self._main)
            self._main_ok = True
        except OSError:
            try:
                fsutil.remove_quiet(fs, self._tmp)
            except OSError:
                pass
            raise

    def factory_reset(self):
        """Delete the files and go back to the defaults; returns what changed."""
        for p in (self._tmp, self._bak, self._main):
            fsutil.remove_quiet(self._fs, p)
        self._main_ok = False
        old, self._v = self._v, self.defaults()
        changed = {}
        for k, v in self._v.items():
            if old[k] != v:
                changed[k] = v
        if changed:
            self._notify(changed)
        return changed

    def _notify(self, changed):
        err = None
        for cb in self._cbs:
            try:
                cb(dict(changed))
            except Exception as e:  # run every listener, then report the first failure
                if err is None:
                    err = e
        if err is not None:
            raise err
