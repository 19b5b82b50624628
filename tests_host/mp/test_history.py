"""gateway.history: today's power in 5-minute slots (averages of the rounds in
each slot), empty slots as null, a new ring at local midnight, the JSON body
streamed in pieces.

Board-side test: plain unittest, runs under pytest and the unix MicroPython.
"""
import json
import unittest

from support.fakes import Clock, FakeWifi, Gw
from gateway import history as H
from gateway.history import History

DAY = 1718582400          # 2024-06-17 00:00 UTC


def body(h, now, off=0):
    pieces = list(h.chunks(now, off))
    for p in pieces:
        assert len(p) < 400, len(p)      # small pieces: no big string on the heap
    return json.loads("".join(pieces))


class Slots(unittest.TestCase):
    def test_average_per_slot_and_nulls(self):
        h = History()
        for t, w in ((600, 100), (631, 200), (662, 300),      # slot 2: avg 200
                     (900, 50.4),                              # slot 3
                     (1800 + 10, 700.6)):                      # slot 6; 4 and 5 empty
            h.add(DAY + t, w, 0)
        d = body(h, DAY + 1900)
        self.assertEqual(d["start"], DAY)
        self.assertEqual(d["step"], 300)
        self.assertEqual(d["power"], [None, None, 200, 50, None, None, 701])

    def test_up_to_now_and_full_day(self):
        h = History()
        d = body(h, DAY + 5)
        self.assertEqual(d["power"], [None])
        for i in range(288):
            h.add(DAY + i * 300 + 7, i, 0)
        d = body(h, DAY + 86399)
        self.assertEqual(len(d["power"]), 288)
        self.assertEqual(d["power"][:3] + d["power"][-1:], [0, 1, 2, 287])

    def test_midnight_starts_a_new_day(self):
        h = History()
        h.add(DAY + 86100, 123, 0)                 # 23:55
        self.assertEqual(body(h, DAY + 86390)["power"][-1], 123)
        d = body(h, DAY + 86400 + 400)             # the next day, nothing yet
        self.assertEqual((d["start"], d["power"]), (DAY + 86400, [None, None]))
        h.add(DAY + 86400 + 10, 5, 0)
        self.assertEqual(body(h, DAY + 86400 + 400)["power"], [5, None])
        self.assertEqual(h.ring[287], H.NO_DATA)   # yesterday's slots are gone

    def test_local_midnight_follows_the_time_zone(self):
        h = History()
        off = 7200                                 # CEST
        h.add(DAY - 7200 + 60, 42, off)            # 00:01 local = 22:01 UTC the day before
        d = body(h, DAY - 7200 + 100, off)
        self.assertEqual((d["start"], d["power"]), (DAY - 7200, [42]))
        # 23:59 UTC is 01:59 local: still the same local day
        d = body(h, DAY + 86399 - 7200 - 1, off)
        self.assertEqual(d["start"], DAY - 7200)
        off = -5 * 3600
        h2 = History()
        h2.add(DAY + 3600, 10, off)                # 20:00 the day before, in New York
        self.assertEqual(body(h2, DAY + 3600, off)["start"], DAY - 86400 + 5 * 3600)

    def test_values_are_clamped_to_16_bits(self):
        h = History()
        h.add(DAY, 10 ** 6, 0)
        self.assertEqual(body(h, DAY)["power"], [32767])

    def test_after_round_samples_each_answered_round_once(self):
        clock = Clock(DAY + 1000)
        gw = Gw(FakeWifi(clock), clock)

        class State:
            readings = None
            last_ok = 0
        gw.state = State()
        h = H.attach(gw)
        h.after_round()                            # nothing answered yet
        self.assertIsNone(h.day)
        gw.state.readings = {"grid": {"p": 400.0}}
        gw.state.last_ok = DAY + 1000
        h.after_round()
        gw.state.readings = {"grid": {"p": 0.0}}
        h.after_round()                            # same round again (a re-render): not counted
        gw.state.last_ok = DAY + 1031
        gw.state.readings = {"grid": {"p": 200.0}}
        h.after_round()
        self.assertEqual(body(h, DAY + 1100)["power"][3], 300)


if __name__ == "__main__":
    unittest.main()
