"""gateway.events: coalescing, ring size, throttled atomic persistence.

Board-side test: plain unittest, runs under pytest and under the unix
MicroPython (tests_host/mp/run_all.py).
"""
import json
import unittest

from gateway import fsutil
from gateway.events import Events
from support.fscrash import CrashFs, NoReplaceFs
from support.tmpfs import mkdtemp, rmtree, write_text


class Clock:
    def __init__(self, t=1700000000):
        self.t = t

    def __call__(self):
        return self.t


class Base(unittest.TestCase):
    def setUp(self):
        self.d = mkdtemp()
        self.path = self.d + "/events.jsonl"
        self.clock = Clock()

    def tearDown(self):
        rmtree(self.d)

    def ev(self, fs=None, **kw):
        return Events(self.path, clock=self.clock, fs=fs, **kw)


class TestRing(Base):
    def test_add_and_items(self):
        e = self.ev()
        e.add("dtu", "connected")
        self.clock.t += 5
        e.add("limit", "limit 600 W", "warn")
        self.assertEqual(e.items(), [
            {"t": 1700000005, "level": "warn", "kind": "limit", "msg": "limit 600 W", "count": 1},
            {"t": 1700000000, "level": "info", "kind": "dtu", "msg": "connected", "count": 1}])
        self.assertEqual(len(e), 2)

    def test_repeats_coalesce(self):
        e = self.ev()
        e.add("dtu", "connected")
        for i in range(116):  # an hour of timeouts every 31 s
            self.clock.t += 31
            e.add("dtu", "timeout", "warn")
        items = e.items()
        self.assertEqual(len(items), 2)
        self.assertEqual(items[0], {"t": 1700000000 + 116 * 31, "level": "warn", "kind": "dtu",
                                    "msg": "timeout", "count": 116})

    def test_alternating_repeats_coalesce(self):
        e = self.ev()
        e.add("limit", "limit 600 W")
        for i in range(50):
            self.clock.t += 31
            e.add("dtu", "timeout", "warn")
            e.add("recovery", "reconnect")
        items = e.items()
        self.assertEqual([(i["kind"], i["count"]) for i in items],
                         [("recovery", 50), ("dtu", 50), ("limit", 1)])

    def test_repeat_becomes_newest(self):
        e = self.ev()
        e.add("a", "x")
        self.clock.t += 1
        e.add("b", "y")
        self.clock.t += 1
        e.add("a", "x", "error")
        self.assertEqual([(i["kind"], i["count"], i["level"], i["t"]) for i in e.items()],
                         [("a", 2, "error", 1700000002), ("b", 1, "info", 1700000001)])

    def test_old_entries_do_not_coalesce(self):
        e = self.ev()
        e.add("a", "x")
        for k in "bcde":
            e.add(k, "x")
        e.add("a", "x")
        self.assertEqual([i["kind"] for i in e.items()], list("aedcba"))

    def test_same_kind_other_message_is_new(self):
        e = self.ev()
        e.add("dtu", "timeout")
        e.add("dtu", "refused")
        e.add("other", "timeout")
        self.assertEqual(len(e.items()), 3)

    def test_ring_size(self):
        e = self.ev(size=5)
        for i in range(12):
            e.add("k", "m%d" % i)
        self.assertEqual([i["msg"] for i in e.items()], ["m11", "m10", "m9", "m8", "m7"])

    def test_long_text_is_cut(self):
        e = self.ev()
        e.add("k" * 100, "m" * 1000)
        it = e.items()[0]
        self.assertEqual(len(it["kind"]), Events.max_kind)
        self.assertEqual(len(it["msg"]), Events.max_msg)
        e.add("k" * 100, "m" * 2000)  # the cut text still coalesces
        self.assertEqual(e.items()[0]["count"], 2)

    def test_json_chunks(self):
        e = self.ev()
        self.assertEqual(json.loads(b"".join(e.json_chunks())), {"events": []})
        e.add("dtu", 'quote " and \u00e9')
        e.add("dtu", "second")
        chunks = list(e.json_chunks())
        self.assertTrue(all(isinstance(c, bytes) for c in chunks))
        self.assertEqual(len(chunks), 2 + 2)               # one piece per event
        self.assertEqual(json.loads(b"".join(chunks)), {"events": e.items()})
        # an event added while the answer streams shows in the next one
        it = e.json_chunks()
        head = next(it)
        e.add("late", "x")
        body = json.loads(head + b"".join(it))
        self.assertEqual([x["kind"] for x in body["events"]], ["dtu", "dtu"])

    def test_clear(self):
        e = self.ev()
        e.add("a", "b")
        e.flush()
        e.clear()
        self.assertEqual(e.items(), [])
        self.assertTrue(e.flush(force=True))
        self.assertEqual(self.ev().load(), 0)


class TestPersistence(Base):
    def test_round_trip(self):
        e = self.ev()
        e.add("dtu", "connected")
        e.add("dtu", "timeout", "warn")
        e.add("dtu", "timeout", "warn")
        self.assertTrue(e.flush())
        e2 = self.ev()
        self.assertEqual(e2.load(), 2)
        self.assertEqual(e2.items(), e.items())
        self.assertFalse(e2.flush(force=True))  # nothing new: no write
        e2.add("dtu", "timeout", "warn")  # coalesces with the loaded entry
        self.assertEqual(e2.items()[0]["count"], 3)
        self.assertFalse(fsutil.exists(fsutil.OsFs(), self.path + ".tmp"))

    def test_missing_file(self):
        e = self.ev()
        self.assertEqual(e.load(), 0)
        self.assertEqual(e.items(), [])
        self.assertFalse(e.flush())

    def test_load_keeps_the_newest(self):
        e = self.ev(size=10)
        for i in range(10):
            e.add("k", "m%d" % i)
        e.flush()
        e2 = self.ev(size=3)
        self.assertEqual(e2.load(), 3)
        self.assertEqual([i["msg"] for i in e2.items()], ["m9", "m8", "m7"])

    def check_corrupt(self, text):
        write_text(self.path, text)
        e = self.ev()
        self.assertEqual(e.load(), 0)
        items = e.items()
        self.assertEqual(len(items), 1)
        self.assertEqual((items[0]["kind"], items[0]["level"]), ("events", "warn"))
        self.assertIn("unreadable", items[0]["msg"])
        self.assertTrue(e.flush())  # the note is saved, replacing the bad file
        self.assertEqual(self.ev().load(), 1)

    def test_corrupt_json(self):
        self.check_corrupt('[1700000000, "info", "a", "b", 1]\n[1700000001, "info", "a"')

    def test_wrong_shapes(self):
        for text in ('{"a": 1}\n', '[1, "info", "a", "b"]\n', '[1, "info", "a", "b", 0]\n',
                     '["1", "info", "a", "b", 1]\n', '[1, "info", 2, "b", 1]\n', 'null\n'):
            self.check_corrupt(text)

    def test_too_big(self):
        self.check_corrupt("\n" * (40 * 640 + 641))

    def test_blank_lines_are_fine(self):
        write_text(self.path, '\n[1700000000, "info", "a", "b", 2]\n\n')
        e = self.ev()
        self.assertEqual(e.load(), 1)
        self.assertEqual(e.items()[0]["count"], 2)


class TestFlush(Base):
    def test_throttled(self):
        fs = CrashFs()
        e = self.ev(fs, min_flush_interval=60)
        e.add("a", "1")
        self.assertTrue(e.flush())
        writes = fs.log.count("rename")
        for step in range(5):  # a poll every 10 s: no writes within the minute
            self.clock.t += 10
            e.add("dtu", "timeout")
            self.assertFalse(e.flush())
        self.assertEqual(fs.log.count("rename"), writes)
        self.clock.t += 10
        self.assertTrue(e.flush())
        self.assertFalse(e.flush())  # not dirty
        self.clock.t += 100
        self.assertFalse(e.flush())  # still not dirty
        self.assertEqual(self.ev().load(), 2)

    def test_force_and_persist(self):
        e = self.ev()
        e.add("a", "1")
        self.assertTrue(e.flush())
        e.add("a", "2")
        self.assertFalse(e.flush())
        self.assertTrue(e.flush(force=True))
        e.add("limit", "set to 600 W", persist=True)
        self.assertEqual(self.ev().load(), 3)

    def test_clock_going_back_does_not_block_writes(self):
        e = self.ev()
        e.add("a", "1")
        e.flush()
        self.clock.t -= 10 ** 6  # NTP corrected the clock
        e.add("a", "2")
        self.assertTrue(e.flush())

    def test_failed_write_is_kept_for_later(self):
        fs = CrashFs()
        e = self.ev(fs)
        e.add("a", "1")
        fs.arm(0)
        self.assertFalse(e.flush(force=True))
        self.assertEqual(self.ev().load(), 0)
        fs.budget = None
        self.assertFalse(e.flush())  # throttled: the failed attempt counts
        self.clock.t += 60
        self.assertTrue(e.flush())
        self.assertEqual(self.ev().load(), 1)

    def check_cuts(self, real):
        old = self.ev()
        old.add("a", "old")
        old.flush()
        old_items = old.items()
        n = 0
        while True:
            for p in (self.path, self.path + ".tmp"):
                fsutil.remove_quiet(fsutil.OsFs(), p)
            write_text(self.path, '[1700000000, "info", "a", "old", 1]\n')
            fs = CrashFs(real)
            e = self.ev(fs)
            e.load()
            self.assertEqual(e.items(), old_items)
            e.add("b", "new")
            new_items = e.items()
            fs.arm(n)
            ok = e.flush(force=True)
            e2 = self.ev()
            e2.load()
            self.assertTrue(e2.items() in (old_items, new_items),
                            "cut at %d (%s): %r" % (n, fs.log, e2.items()))
            if ok:
                self.assertEqual(e2.items(), new_items)
                break
            n += 1
        self.assertGreater(n, 3)

    def test_cut_at_every_step(self):
        self.check_cuts(fsutil.OsFs())

    def test_cut_at_every_step_without_replacing_rename(self):
        self.check_cuts(NoReplaceFs())


if __name__ == "__main__":
    unittest.main()
