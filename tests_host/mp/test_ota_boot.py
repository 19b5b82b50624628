"""ota_boot (the loader): the swap, the trial and the rollback, with the
power cut at every filesystem operation, and once more during the recovery.

Board-side test: plain unittest, runs under pytest and under the unix
MicroPython (tests_host/mp/run_all.py). A small app (a few files) is used so
that every pair of cut points runs; tests_host/e2e/test_ota.py does the same
with the real bundle. After any cut, the next boot must leave a complete
app: exactly the old one (and its loader files) or exactly the new one.
"""
import hashlib
import os
import unittest

import ota_layout

import ota_boot
from support.otafs import CrashFs, loader, run_until_cut
from support.tmpfs import isdir, mkdtemp, rmtree

OLD = {"app/gateway/a.mpy": b"old a" * 40, "app/lib/x/x.mpy": b"old x", "app/version.json":
       b'{"version": "1.0.0"}', "boot.py": b"old boot", "main.py": b"old main", "ota_boot.mpy": b"old loader",
       "ota_swap.mpy": b"old swap"}
NEW = {"app/gateway/a.mpy": b"new a" * 50, "app/gateway/b.mpy": b"new b", "app/www/i.gz": b"new w",
       "app/version.json": b'{"version": "2.0.0"}', "boot.py": b"new boot", "main.py": b"new main",
       "ota_boot.mpy": b"new loader", "ota_swap.mpy": b"new swap"}


def put(root, files, prefix=""):
    for rel, data in files.items():
        path = root + "/" + prefix + rel
        parts = path.split("/")
        for i in range(2, len(parts)):
            d = "/".join(parts[:i])
            if not isdir(d):
                os.mkdir(d)
        with open(path, "wb") as f:
            f.write(data)


def tree(root):
    """The app and loader files now on the 'board' (what a boot would run)."""
    out = {}

    def walk(rel):
        p = root + "/" + rel
        if isdir(p):
            for name in os.listdir(p):
                walk(rel + "/" + name)
        else:
            with open(p, "rb") as f:
                out[rel] = f.read()
    if isdir(root + "/app"):
        walk("app")
    for name in ota_layout.LOADER:
        try:
            with open(root + "/" + name, "rb") as f:
                out[name] = f.read()
        except OSError:
            pass
    return out


def digest(snap):
    h = hashlib.sha256()
    for k in sorted(snap):
        h.update(k.encode() + b"\0" + (snap[k] or b"") + b"\0")
    return h.digest()


def staged(root):
    put(root, OLD)
    put(root, NEW, "ota/new/")
    with open(root + "/ota/staged.json", "w") as f:
        f.write('{"version": "2.0.0"}')


class Base(unittest.TestCase):
    def setUp(self):
        self.root = mkdtemp()

    def tearDown(self):
        rmtree(self.root)

    def fresh(self):
        rmtree(self.root)
        os.mkdir(self.root)
        staged(self.root)

    def journal(self):
        return loader(self.root).read_json(ota_layout.JOURNAL)

    def complete(self, msg=""):
        t = tree(self.root)
        if t == OLD:
            return "old"
        if t == NEW:
            return "new"
        self.fail("neither the old nor the new app %s: %r" % (msg, sorted(t)))


class TestSteps(Base):
    def test_apply_trial_confirm(self):
        self.fresh()
        ld = loader(self.root)
        ld.arm("2.0.0", "1.0.0")
        self.assertEqual(self.journal()["op"], "apply")
        self.assertEqual(tree(self.root), OLD)          # arming changes nothing yet
        st = ld.recover()
        self.assertEqual(st["op"], "trial")
        self.assertEqual(tree(self.root), NEW)
        self.assertFalse(isdir(self.root + "/ota/new"))
        self.assertTrue(ld.confirm())
        self.assertIsNone(self.journal())
        self.assertFalse(isdir(self.root + "/ota/old"))
        self.assertEqual(ld.read_json(ota_layout.LAST)["result"], "ok")
        self.assertEqual(ld.recover(), {"op": None})
        self.assertEqual(tree(self.root), NEW)

    def test_unconfirmed_trial_rolls_back_at_the_next_boot(self):
        self.fresh()
        ld = loader(self.root)
        ld.arm("2.0.0", "1.0.0")
        ld.recover()
        self.assertEqual(tree(self.root), NEW)
        st = ld.recover()                 # the new app never confirmed
        self.assertEqual(st["op"], "rolled back")
        self.assertEqual(tree(self.root), OLD)
        last = ld.read_json(ota_layout.LAST)
        self.assertEqual((last["result"], last["version"], last["from"]), ("rolled back", "2.0.0", "1.0.0"))
        self.assertFalse(ld.confirm())
        for d in ("ota/old", "ota/new", "ota/bad"):
            self.assertFalse(isdir(self.root + "/" + d))

    def test_app_side_rollback(self):
        self.fresh()
        ld = loader(self.root)
        ld.arm("2.0.0", "1.0.0")
        j = ld.recover()
        ld.rollback(j, "not healthy")
        self.assertEqual(tree(self.root), OLD)
        self.assertEqual(ld.read_json(ota_layout.LAST)["why"], "not healthy")

    def test_arm_needs_a_complete_staging(self):
        rmtree(self.root)
        os.mkdir(self.root)
        put(self.root, OLD)
        put(self.root, NEW, "ota/new/")           # no staged.json: not verified
        with self.assertRaises(OSError):
            loader(self.root).arm("2.0.0", "1.0.0")
        self.assertIsNone(self.journal())

    def test_unknown_or_corrupt_journal_leaves_the_app(self):
        for text in ('{"op": "dance"}', "{not json", ""):
            self.fresh()
            with open(self.root + "/" + ota_layout.JOURNAL, "w") as f:
                f.write(text)
            st = loader(self.root).recover()
            self.assertEqual(st["op"], None)
            self.assertEqual(tree(self.root), OLD)
            self.assertIsNone(self.journal())

    def test_first_install_without_an_old_app(self):
        rmtree(self.root)
        os.mkdir(self.root)
        put(self.root, NEW, "ota/new/")
        with open(self.root + "/ota/staged.json", "w") as f:
            f.write("{}")
        ld = loader(self.root)
        ld.arm("2.0.0", "")
        ld.recover()
        self.assertEqual(tree(self.root), NEW)
        ld.recover()                             # not confirmed: no app is left (ROM/flat fallback)
        self.assertFalse(isdir(self.root + "/app"))

    def test_paths_and_pending(self):
        self.fresh()
        self.assertEqual(ota_boot.paths(self.root + "/"), [self.root + "/app", self.root + "/app/lib"])
        self.assertTrue(ota_boot.pending(self.root + "/"))      # ota/new is there
        loader(self.root).recover()                            # not armed: cleared
        self.assertFalse(ota_boot.pending(self.root + "/"))
        self.assertEqual(tree(self.root), OLD)


class TestPowerCuts(Base):
    def count(self, steps, **kw):
        """Operations the whole sequence takes without a cut."""
        self.fresh()
        fs = CrashFs(**kw)
        steps(fs)
        return fs.n

    def every_cut(self, steps, end, **kw):
        """Cut at every operation (before and after it is done), boot, and
        check; `end(state)` then finishes and checks the final state."""
        total = self.count(steps, **kw)
        self.assertTrue(total > 10)
        for after in (False, True):
            for n in range(total):
                self.fresh()
                self.assertTrue(run_until_cut(CrashFs(at=n, after=after, **kw), steps), "no cut at %d" % n)
                loader(self.root).recover()       # the next boot
                state = self.complete("after a cut at %d" % n)
                end(state, n)
        return total

    def swap_and_confirm(self, fs):
        """Arm an update, boot into it, confirm it (the cuts fall anywhere)."""
        ld = loader(self.root, fs)
        ld.arm("2.0.0", "1.0.0")
        ld.recover()
        ld.confirm()

    def test_swap_then_confirm(self):
        def end(state, n):
            if state == "new":
                loader(self.root).confirm()
                self.assertEqual(loader(self.root).recover(), {"op": None})
                self.assertEqual(tree(self.root), NEW)
            else:
                self.assertIsNone(self.journal(), "cut %d" % n)
        self.every_cut(self.swap_and_confirm, end)

    def test_swap_without_rename_over(self):
        # a filesystem that refuses to rename onto an existing file: the
        # loader removes first, so a cut can fall between the two
        def end(state, n):
            if state == "new":
                loader(self.root).confirm()
        self.every_cut(self.swap_and_confirm, end, no_replace=True)

    def test_never_confirmed_ends_old(self):
        def steps(fs):
            ld = loader(self.root, fs)
            ld.arm("2.0.0", "1.0.0")
            ld.recover()          # boot: switched, on trial
            ld.recover()          # boot again, not confirmed: roll back

        def end(state, n):
            ld = loader(self.root)
            for _ in range(3):    # boots until nothing is pending, never confirming
                if ld.journal() is None:
                    break
                ld.recover()
            self.assertIsNone(ld.journal())
            self.assertEqual(tree(self.root), OLD, "cut %d" % n)
        self.every_cut(steps, end)

    def test_a_second_cut_during_the_recovery(self):
        def first(fs):
            ld = loader(self.root, fs)
            ld.arm("2.0.0", "1.0.0")
            ld.recover()

        total = self.count(first)
        seen = set()
        pairs = 0
        for n in range(total):
            self.fresh()
            self.assertTrue(run_until_cut(CrashFs(at=n), first))
            fs = CrashFs()
            snap = self.snapshot()
            key = digest(snap)
            if key in seen:      # the same flash contents as after an earlier cut
                continue
            seen.add(key)
            loader(self.root, fs).recover()
            second = fs.n
            for m in range(second):
                self.restore(snap)
                self.assertTrue(run_until_cut(CrashFs(at=m), lambda fs: loader(self.root, fs).recover()))
                loader(self.root).recover()
                self.complete("after cuts at %d and %d" % (n, m))
                pairs += 1
        self.assertTrue(len(seen) > 10 and pairs > 200, (len(seen), pairs))

    def snapshot(self):
        out = {}

        def walk(rel):
            p = self.root + ("/" + rel if rel else "")
            if isdir(p):
                out[rel + "/"] = None
                for name in os.listdir(p):
                    walk(rel + "/" + name if rel else name)
            else:
                with open(p, "rb") as f:
                    out[rel] = f.read()
        walk("")
        return out

    def restore(self, snap):
        rmtree(self.root)
        os.mkdir(self.root)
        for rel in sorted(snap):
            if rel.endswith("/"):
                if rel != "/":
                    os.mkdir(self.root + "/" + rel[:-1])
            else:
                with open(self.root + "/" + rel, "wb") as f:
                    f.write(snap[rel])
