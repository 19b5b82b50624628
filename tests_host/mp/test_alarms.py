"""The inverter's warnings: what an entry means (dtu.warnings), its text
(dtu.warn_texts), the gateway's list with its starts and ends
(gateway.alarms), and when the scheduler reads it (Scheduler.warnings_now).

Board-side test: plain unittest, runs under pytest and the unix MicroPython.
(tests_host/unit/test_day.py and tests_host/e2e/test_integrations_e2e.py run
it against the DTU model.)
"""
import unittest

from dtu import warn_texts, warnings
from gateway import alarms
from gateway.link import scheduler as sc
from gateway.link.scheduler import Scheduler

T0 = 1718600000


def warn(code, s_time, e_time=0, num=1, d1=0, d2=0):
    w = {"pv_sn": 0x116491234567, "code": code, "num": num, "w_data1": d1, "w_data2": d2}
    if s_time:
        w["s_time"] = s_time
    if e_time:
        w["e_time"] = e_time           # proto3: a 0 is absent on the wire
    return w


class Meaning(unittest.TestCase):
    def test_code_and_activity(self):
        code = [(e[0], e[1]) for e in warnings.entries(
            [warn(8333, T0), warn(0x707C, T0, T0 + 60), warn(301, T0), warn(141, 0)])]
        self.assertEqual(code, [(141, True),          # the example
                                (124, False),         # an ended one, as dtuGateway logs it
                                (301, True),          # beyond the low byte
                                (141, False)])        # never started
        e = warnings.entries([warn(8333, T0, num=3, d1=2530, d2=7)])[0]
        self.assertEqual(e, (141, True, 3, T0, 0, 2530, 7, 8333))

    def test_texts(self):
        self.assertEqual(warn_texts.text(141), "Grid overvoltage")
        self.assertEqual(warn_texts.text(124), "Shut down by remote control")
        self.assertEqual(warn_texts.text(309), "Hardware error code 309")
        self.assertEqual(warn_texts.text(999), "code 999")
        named = [warn_texts.TEXTS[k] for k in range(0, len(warn_texts.TEXTS), 2)]
        for code in [121, 124, 125, 127, 130] + list(range(141, 150)) + list(range(205, 219)) + \
                list(range(301, 315)):
            self.assertIn(code, named)
        self.assertEqual(len(named), len(set(named)))


class Gateway(unittest.TestCase):
    def test_starts_and_ends_between_two_lists(self):
        a = alarms.Alarms()
        started, ended = a.take([warn(8333, T0, d1=2530), warn(209, T0 - 3600, T0 - 60)])
        self.assertEqual([e[0] for e in started], [141])
        self.assertEqual(ended, [])
        self.assertEqual(a.by_code(), {141: 1})
        self.assertEqual(a.take([warn(8333, T0, d1=2530), warn(209, T0 - 3600, T0 - 60)]),
                         ([], []))                                 # the same list: nothing new
        started, ended = a.take([warn(8333, T0, T0 + 100, d1=2530), warn(216, T0 + 90)])
        self.assertEqual(([e[0] for e in started], [e[0] for e in ended]), ([216], [141]))
        self.assertEqual(ended[0][4], T0 + 100)                    # the end as the new list has it
        self.assertEqual(a.by_code(), {216: 1})

    def test_the_api_body(self):
        a = alarms.Alarms()
        a.take([warn(8333, 1718618400, d1=2530, d2=7), warn(209, 1718611200, 1718614800, num=3)])
        body = alarms.body(a, lambda t: 7200, 1718618460)          # UTC+2
        self.assertEqual(body["active"], [{"code": 141, "text": "Grid overvoltage", "count": 1,
                                           "start": "2024-06-17T12:00:00+02:00", "end": None,
                                           "data": [2530, 7], "raw": 8333}])
        ended = body["ended"][0]
        self.assertEqual((ended["code"], ended["count"], ended["start"], ended["end"]),
                         (209, 3, "2024-06-17T10:00:00+02:00", "2024-06-17T11:00:00+02:00"))
        self.assertEqual(body["read"], "2024-06-17T12:01:00+02:00")
        self.assertEqual(alarms.iso(1718618400, lambda t: -16200), "2024-06-17T05:30:00-04:30")
        self.assertEqual(alarms.body(None, lambda t: 0, None), {"active": [], "ended": [], "read": None})


WARNINGS = "warnings"


def data_round(s, t, warnings_count=0):
    """One answered round as the link runs it: the planned steps, plus
    WARNINGS when the scheduler wants the list read after the data."""
    steps = s.plan_round(t)
    read = s.warnings_now(t, warnings_count, steps)
    s.round_done(t, True, timestamp=t)
    return [k[0] for k in steps] + ([WARNINGS] if read else [])


class WhenRead(unittest.TestCase):
    def sched(self):
        s = Scheduler(cloud_pause=False)
        s.config_supported = False          # GetConfig aside: its rounds carry nothing else
        return s

    def test_at_connect_on_a_change_and_while_active(self):
        s = self.sched()
        self.assertIn(WARNINGS, data_round(s, T0))             # at connect
        s.warnings_read(T0, 0)
        t = T0 + 32
        self.assertNotIn(WARNINGS, data_round(s, t))           # nothing new, none active
        t += 32
        self.assertIn(WARNINGS, data_round(s, t, 1))           # the count changes: read at once
        s.warnings_read(t, 1)
        reads = []
        for _ in range(40):                                            # one active: every WARN_ROUNDS
            t += 32
            if WARNINGS in data_round(s, t, 1):
                reads.append(t)
                s.warnings_read(t, 1)
        gaps = [b - a for a, b in zip(reads, reads[1:])]
        self.assertTrue(gaps and min(gaps) >= sc.WARN_ROUNDS * s.interval, gaps)
        self.assertLessEqual(len(reads), 40 * 32 // (sc.WARN_ROUNDS * s.interval) + 1)

    def test_kept_apart_from_writes(self):
        s = self.sched()
        s.request_limit(50, T0 - 60)
        steps = data_round(s, T0)
        self.assertIn(sc.STEP_WRITE, steps)
        self.assertNotIn(WARNINGS, steps)                      # never in a write's round
        s.wrote(T0, "limit", 50, 8, T0)
        s.confirmed(True)
        self.assertNotIn(WARNINGS, data_round(s, T0 + 20))    # nor within 31 s of one
        self.assertIn(WARNINGS, data_round(s, T0 + sc.MIN_WRITE_GAP + sc.SLACK))
        s.warnings_read(T0 + 32, 0)
        self.assertEqual(s.last_write, T0 + 32)                        # and the next write waits

    def test_a_dtu_that_does_not_answer_is_not_asked_every_round(self):
        s = self.sched()
        self.assertIn(WARNINGS, data_round(s, T0))
        s.warnings_read(T0, None)
        t, asked = T0, []
        for _ in range(30):
            t += 32
            if WARNINGS in data_round(s, t):
                asked.append(t)
                s.warnings_read(t, None)
        self.assertTrue(asked and asked[0] - T0 >= sc.WARN_ROUNDS * s.interval, asked)

    def test_back_after_an_absence(self):
        s = self.sched()
        data_round(s, T0)
        s.warnings_read(T0, 0)
        s.plan_round(T0 + 32)
        s.round_done(T0 + 32, False)
        t = s.next_round(T0 + 33)
        data_round(s, t)                                   # the first answer after it...
        self.assertIn(WARNINGS, data_round(s, s.next_round(t + 1)))   # ...and the list next


if __name__ == "__main__":
    unittest.main()
