"""The scheduler's night (Scheduler._failed): a DTU that stops answering
after an answer without power and without sun on the panels is asleep, not
failing; one that stops after answers with power is a fault, as before.

Board-side test: plain unittest, runs under pytest and the unix MicroPython.
(tests_host/unit/test_day.py runs a whole dusk, night and dawn against the
DTU model.)
"""
import unittest

from gateway.link import scheduler as sc
from gateway.link.scheduler import Scheduler

T0 = 1718650000


def answered(s, t, dark):
    s.plan_round(t)
    s.round_done(t, True, timestamp=t, dark=dark)
    return s.next_round(t + 1)


def silent(s, start, seconds):
    """Unanswered rounds at the scheduler's own pace; the times they started."""
    t, times = start, []
    while t < start + seconds:
        s.plan_round(t)
        s.round_done(t, False)
        times.append(t)
        t = s.next_round(t + 1)
    return times


class NightRule(unittest.TestCase):
    def sched(self, dark):
        s = Scheduler(cloud_pause=False)
        s.rescue_possible = True
        t = answered(s, T0, False)          # the afternoon
        t = answered(s, t, dark)            # the last answer: the dusk's zeros, or power
        s.take_notes()
        return s, t

    def test_silent_after_the_dusk_is_night(self):
        s, t = self.sched(dark=True)
        times = silent(s, t, 8 * 3600)
        self.assertEqual(s.conn, sc.CONN_NIGHT)
        self.assertEqual(s.error, sc.ERR_OK)        # no "no answer for long"
        self.assertEqual(s.failures, 0)
        self.assertFalse(s.want_rescue)             # no recovery ladder
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertTrue(gaps and min(gaps) >= 5 * 60, gaps)     # minutes, not seconds
        self.assertLessEqual(len(times), 8 * 3600 // (5 * 60) + 1)
        notes = s.take_notes()
        self.assertEqual(len(notes), 1, notes)      # one event when it goes, none per try
        self.assertIn("night", notes[0][2])

    def test_back_with_the_first_answer_in_the_morning(self):
        s, t = self.sched(dark=True)
        times = silent(s, t, 10 * 3600)
        s.take_notes()
        t = s.next_round(times[-1] + 1)             # the first look after the DTU woke up
        answered(s, t, True)
        self.assertEqual(s.conn, sc.CONN_CONNECTED)
        self.assertFalse(s.night)
        self.assertEqual(s.gap(), sc.SAFE_INTERVAL + sc.SLACK)   # the day's pace at once
        notes = s.take_notes()
        self.assertEqual(len(notes), 1, notes)
        self.assertIn("awake again after the night", notes[0][2])

    def test_silent_after_answers_with_power_is_a_fault(self):
        s, t = self.sched(dark=False)               # noon: it drops off while producing
        silent(s, t, 3600)
        self.assertIn(s.conn, (sc.CONN_RECONNECTING, sc.CONN_ERROR))
        self.assertEqual(s.error, sc.ERR_NO_ANSWER)
        self.assertTrue(s.want_rescue)              # the ladder's last rung came
        self.assertGreater(s.failures, 3)

    def test_a_night_longer_than_any_is_a_fault_after_all(self):
        s, t = self.sched(dark=True)
        times = silent(s, t, sc.NIGHT_LONGEST + 3600)
        self.assertNotEqual(s.conn, sc.CONN_NIGHT)
        self.assertGreater(s.failures, 0)
        self.assertTrue(s.want_rescue)
        self.assertTrue(any("no longer taken for the night" in m for _, _, m in s.take_notes()))
        self.assertGreater(times[-1] - t, sc.NIGHT_LONGEST)

    def test_restarted_in_the_night(self):
        # the app seeds `dark` from before the restart (gateway.energy keeps it)
        s = Scheduler(cloud_pause=False)
        s.dark = True
        silent(s, T0, 3600)
        self.assertEqual(s.conn, sc.CONN_NIGHT)
        fresh = Scheduler(cloud_pause=False)        # nothing known: a DTU never seen is a fault
        silent(fresh, T0, 600)
        self.assertNotEqual(fresh.conn, sc.CONN_NIGHT)

    def test_a_rebooting_dtu_is_not_asleep(self):
        s, t = self.sched(dark=True)
        s.last_reboot = t
        s.plan_round(t + 10)
        s.round_done(t + 10, False)
        self.assertEqual(s.conn, sc.CONN_DTU_REBOOT)

    def test_words(self):
        self.assertEqual(sc.word(sc.CONN_WORDS, sc.CONN_NIGHT), "night")
        self.assertEqual(sc.word(sc.CONN_WORDS, 42), "42")
        self.assertEqual(len(sc.CONN_WORDS), sc.CONN_NIGHT + 1)


if __name__ == "__main__":
    unittest.main()
