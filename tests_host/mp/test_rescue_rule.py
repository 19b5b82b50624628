"""The scheduler's last rung (Scheduler._rescue_rule): wanted after
RESCUE_AFTER of unanswered rounds, only when possible, at most every
RESCUE_EVERY; rescue_done() books it like a reboot and a write.

Board-side test: plain unittest, runs under pytest and the unix MicroPython.
(tests_host/unit/test_rescue.py runs the whole rung against the DTU model.)
"""
import unittest

from gateway.link import scheduler as sc
from gateway.link.scheduler import Scheduler

T0 = 1718600000


def fail_for(s, start, seconds, step=None):
    """Unanswered rounds at the scheduler's own pace from start; returns the
    time the rescue was first wanted (or None) and the end time."""
    t = start
    wanted = None
    while t < start + seconds:
        s.plan_round(t)
        s.round_done(t, False)
        if s.want_rescue and wanted is None:
            wanted = t
        t = s.next_round(t + 1) if step is None else t + step
    return wanted, t


class RescueRule(unittest.TestCase):
    def sched(self):
        s = Scheduler(cloud_pause=False)
        s.round_done(T0, True, timestamp=T0)
        return s

    def test_defaults(self):
        s = Scheduler()
        self.assertTrue(s.net_up)
        self.assertFalse(s.rescue_possible or s.want_rescue)

    def test_not_without_the_means(self):
        s = self.sched()
        wanted, _ = fail_for(s, T0 + 31, 3 * 3600)
        self.assertIsNone(wanted)

    def test_wanted_after_twenty_minutes_of_silence(self):
        s = self.sched()
        s.rescue_possible = True
        first = T0 + 31
        wanted, t = fail_for(s, first, 3600)
        self.assertIsNotNone(wanted)
        self.assertGreaterEqual(wanted - first, sc.RESCUE_AFTER)
        self.assertLess(wanted - first, sc.RESCUE_AFTER + sc.MAX_BACKOFF + 1)
        self.assertTrue(any(k == "recovery" and "access point" in m for _, k, m in s.take_notes()))

    def test_an_answer_restarts_the_count(self):
        s = self.sched()
        s.rescue_possible = True
        _, t = fail_for(s, T0 + 31, sc.RESCUE_AFTER - 120, step=31)
        s.round_done(t, True, timestamp=t)
        wanted, _ = fail_for(s, t + 31, sc.RESCUE_AFTER - 60, step=31)
        self.assertIsNone(wanted)

    def test_done_then_not_again_for_hours(self):
        s = self.sched()
        s.rescue_possible = True
        wanted, t = fail_for(s, T0 + 31, 3600)
        s.rescue_done(t, True)
        self.assertFalse(s.want_rescue)
        self.assertEqual((s.conn, s.last_write, s.last_reboot, s.last_rescue), (sc.CONN_DTU_REBOOT, t, t, t))
        self.assertLessEqual(s.failures, 1)
        self.assertEqual(s.gap(), Scheduler().gap())   # polled at the interval again
        self.assertGreaterEqual(s.next_round(t) - t, 0)
        self.assertIsNone(s.pending)
        again, t2 = fail_for(s, t + 31, sc.RESCUE_EVERY - 600)
        self.assertIsNone(again)                   # still silent, but not within 3 h
        again, _ = fail_for(s, t2, 3600)
        self.assertIsNotNone(again)
        self.assertGreaterEqual(again - t, sc.RESCUE_EVERY)

    def test_failed_visit_also_counts_for_the_rate_limit(self):
        s = self.sched()
        s.rescue_possible = True
        wanted, t = fail_for(s, T0 + 31, 3600)
        s.rescue_done(t, False)
        self.assertFalse(s.want_rescue)
        self.assertIsNone(s.last_reboot)
        again, _ = fail_for(s, t + 31, 3600)
        self.assertIsNone(again)


if __name__ == "__main__":
    unittest.main()
