"""The journal of the updates (see ota_boot for the layout): arm, switch,
trial, confirm, rollback; every step idempotent, so a power cut at any point
is finished (rolled forward, or back) by the next boot. A loader file like
ota_boot (imported only when there is something to do, and by gateway.ota.feature
when it stages, confirms or rolls back); it imports nothing from the app.

  apply     written by arm(). Loader files are copied to ota/old (then the
            marker ota/old/.saved), app/ -> ota/old/app, ota/new/app -> app/,
            each loader file renamed from ota/new over its old copy; then:
  trial     {"boots": n}: the new app runs and must call confirm() (web
            server up, scheduler running). A boot that finds a trial already
            booted MAX_TRIAL_BOOTS times rolls back. confirm() removes the
            journal and ota/old.
  rollback  app/ -> ota/bad, ota/old/app -> app/, saved loader files renamed
            back; then the journal goes and ota/last.json says why.
Renames of files and folders are atomic on littlefs (both boards) and POSIX;
where renaming onto an existing file fails, the target is removed first and
the boot code finds the loader files in ota/new or ota/old meanwhile.
"""
import json
import os

from ota_layout import APP, BAD, JOURNAL, LAST, LOADER, MAX_TRIAL_BOOTS, NEW, OLD, SAVED, STAGED


class Fs:
    """The real filesystem; tests pass a wrapper that loses power."""

    def __init__(self):
        self.open, self.rename, self.remove, self.stat = open, os.rename, os.remove, os.stat
        self.mkdir, self.rmdir, self.listdir = os.mkdir, os.rmdir, os.listdir

    def fsync(self, f):
        if hasattr(os, "fsync") and hasattr(f, "fileno"):
            os.fsync(f.fileno())
        elif hasattr(os, "sync"):  # pragma: no cover - board only
            os.sync()


class Loader:
    def __init__(self, root="/", fs=None):
        self.root = root if root.endswith("/") else root + "/"
        self.fs = fs or Fs()

    # ---- small filesystem helpers (no import from the app) -------------------

    def p(self, rel):
        return self.root + rel

    def exists(self, rel):
        try:
            self.fs.stat(self.p(rel))
            return True
        except OSError:
            return False

    def isdir(self, rel):
        try:
            return self.fs.stat(self.p(rel))[0] & 0x4000 != 0
        except OSError:
            return False

    def mkdirs(self, rel):
        path = ""
        for part in rel.split("/"):
            path = path + "/" + part if path else part
            if not self.isdir(path):
                self.fs.mkdir(self.p(path))

    def rmtree(self, rel):
        if self.isdir(rel):
            for name in self.fs.listdir(self.p(rel)):
                self.rmtree(rel + "/" + name)
            self.fs.rmdir(self.p(rel))
        elif self.exists(rel):
            self.fs.remove(self.p(rel))

    def remove(self, rel):
        if self.exists(rel):
            self.fs.remove(self.p(rel))

    def rename(self, a, b):
        """Rename a over b (b replaced); where the filesystem refuses to
        rename onto an existing file, b is removed first."""
        try:
            self.fs.rename(self.p(a), self.p(b))
        except OSError:
            if not self.exists(a) or not self.exists(b):
                raise
            self.fs.remove(self.p(b))
            self.fs.rename(self.p(a), self.p(b))

    def write(self, rel, data):
        """Write data to rel atomically: rel.tmp, synced, renamed over rel."""
        f = self.fs.open(self.p(rel + ".tmp"), "w")
        try:
            f.write(data)
            f.flush()
            self.fs.fsync(f)
        finally:
            f.close()
        self.rename(rel + ".tmp", rel)

    def copy(self, a, b):
        src = self.fs.open(self.p(a), "rb")
        try:
            dst = self.fs.open(self.p(b + ".tmp"), "wb")
            try:
                buf = bytearray(512)
                while True:
                    n = src.readinto(buf)
                    if not n:
                        break
                    dst.write(buf if n == 512 else buf[:n])
                dst.flush()
                self.fs.fsync(dst)
            finally:
                dst.close()
        finally:
            src.close()
        self.rename(b + ".tmp", b)

    def read_json(self, rel):
        """The JSON object in rel, or None when it is missing or unreadable."""
        try:
            f = self.fs.open(self.p(rel), "r")
        except OSError:
            return None
        try:
            obj = json.loads(f.read(4096))
            return obj if isinstance(obj, dict) else None
        except (ValueError, OSError):
            return None
        finally:
            f.close()

    # ---- the journal ----------------------------------------------------------

    def journal(self):
        j = self.read_json(JOURNAL)
        if j is None and not self.exists(JOURNAL):
            # cut between removing the old journal and renaming the new one in
            # (filesystems without rename-over): the synced .tmp is complete
            j = self.read_json(JOURNAL + ".tmp")
            if j is not None:
                self.rename(JOURNAL + ".tmp", JOURNAL)
        return j

    def set_journal(self, j):
        self.mkdirs("ota")
        self.write(JOURNAL, json.dumps(j))

    def _done(self, result, j, why=None):
        last = {"result": result, "version": j.get("to"), "from": j.get("from")}
        if why:
            last["why"] = why
        self.write(LAST, json.dumps(last))
        self.remove(JOURNAL)

    # ---- the steps ------------------------------------------------------------

    def arm(self, to, frm):
        """Called by the running app once ota/new is complete and verified:
        the next boot switches it in."""
        if not self.exists(STAGED) or not self.isdir(NEW + "/" + APP):
            raise OSError("nothing staged")
        self.rmtree(OLD)
        self.rmtree(BAD)
        self.set_journal({"op": "apply", "to": to, "from": frm, "had_app": self.isdir(APP)})

    def _apply(self, j):
        new_app, old_app = NEW + "/" + APP, OLD + "/" + APP
        if not self.exists(SAVED):
            # nothing of the new release is in place yet: keep the loader files
            self.rmtree(OLD)
            self.mkdirs(OLD)
            for f in LOADER:
                if self.exists(f):
                    self.copy(f, OLD + "/" + f)
            self.write(SAVED, "1")
        if self.isdir(new_app):
            if self.isdir(APP):
                if self.isdir(old_app):
                    raise OSError("app, ota/old/app and ota/new/app all present")
                self.fs.rename(self.p(APP), self.p(old_app))
            self.fs.rename(self.p(new_app), self.p(APP))
        elif not self.isdir(APP):
            raise OSError("the staged app is missing")
        for f in LOADER:
            if self.exists(NEW + "/" + f):
                self.rename(NEW + "/" + f, f)
        j = {"op": "trial", "to": j.get("to"), "from": j.get("from"), "boots": 1,
             "had_app": j.get("had_app", True)}
        self.set_journal(j)
        self.rmtree(NEW)
        self.remove(STAGED)
        return j

    def rollback(self, j, why):
        """Put the previous app (and loader files) back; safe to repeat."""
        if j.get("op") != "rollback":
            j = {"op": "rollback", "to": j.get("to"), "from": j.get("from"), "why": why,
                 "had_app": j.get("had_app", True)}
            self.set_journal(j)
        old_app = OLD + "/" + APP
        if self.isdir(old_app) or not j.get("had_app", True):
            if self.isdir(APP):
                self.rmtree(BAD)
                self.fs.rename(self.p(APP), self.p(BAD))
            if self.isdir(old_app):
                self.fs.rename(self.p(old_app), self.p(APP))
        if self.exists(SAVED):
            for f in LOADER:
                if self.exists(OLD + "/" + f):
                    self.rename(OLD + "/" + f, f)
        self._done("rolled back", j, j.get("why") or why)
        for d in (BAD, OLD, NEW, STAGED):
            self.rmtree(d)

    def confirm(self):
        """The new app is healthy: keep it. False when nothing was on trial."""
        j = self.journal()
        if not j or j.get("op") != "trial":
            return False
        self._done("ok", j)
        self.rmtree(OLD)
        return True

    def recover(self):
        """Finish whatever the journal says; returns the boot state:
        {"op": None|"trial"|"rolled back"|"error", ...}."""
        try:
            j = self.journal()
            op = j.get("op") if j else None
            if op == "apply":
                try:
                    j = self._apply(j)
                except Exception as e:  # the swap cannot finish: go back
                    self.rollback(j, "apply failed: %r" % (e,))
                    return {"op": "rolled back", "why": "apply failed"}
                return j
            if op == "trial":
                if j.get("boots", 0) >= MAX_TRIAL_BOOTS:
                    self.rollback(j, "the new app did not confirm itself")
                    return {"op": "rolled back", "why": "not confirmed"}
                j["boots"] = j.get("boots", 0) + 1
                self.set_journal(j)
                return j
            if op == "rollback":
                self.rollback(j, j.get("why"))
                return {"op": "rolled back", "why": j.get("why")}
            if j is not None or self.exists(JOURNAL):
                self.remove(JOURNAL)       # unknown or unreadable: nothing to finish
            if not self.isdir(APP) and self.isdir(OLD + "/" + APP):
                self.fs.rename(self.p(OLD + "/" + APP), self.p(APP))
            for d in (BAD, OLD, NEW, STAGED):   # leftovers: a staging never armed is not wanted
                self.rmtree(d)
            return {"op": None}
        except Exception as e:  # never stop the boot: the old app may still run
            return {"op": "error", "error": repr(e)}
