"""gateway.tz: zone strings, DST instants, calendar maths.

Board-side test: plain unittest, runs under pytest and under the unix
MicroPython (tests_host/mp/run_all.py). Expected instants come from tzdata.
"""
import unittest

from gateway import tz

BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"
NEW_YORK = "EST5EDT,M3.2.0,M11.1.0"
SYDNEY = "AEST-10AEDT,M10.1.0,M4.1.0/3"
LONDON = "GMT0BST,M3.5.0/1,M10.5.0"


class TestParse(unittest.TestCase):
    def test_utc(self):
        for s in ("UTC", "utc", "GMT", "Z", "UTC0", "GMT0", "+00:00", "UTC+0"):
            p = tz.parse(s)
            self.assertEqual(tz.offset(p, 1700000000), 0, s)
            self.assertEqual(p[2], None, s)

    def test_fixed_offsets_are_east_positive(self):
        cases = (("+01:00", 3600), ("-05:30", -19800), ("+0530", 19800), ("+2", 7200),
                 ("UTC+2", 7200), ("UTC-05:30", -19800), ("GMT+1", 3600), ("+14:00", 50400),
                 ("-12:00", -43200))
        for s, off in cases:
            self.assertEqual(tz.offset(tz.parse(s), 1700000000), off, s)

    def test_posix_fixed_is_west_positive(self):
        self.assertEqual(tz.offset(tz.parse("<+0530>-5:30"), 0), 19800)
        self.assertEqual(tz.offset(tz.parse("JST-9"), 0), 9 * 3600)
        self.assertEqual(tz.offset(tz.parse("EST5"), 0), -5 * 3600)
        self.assertEqual(tz.offset(tz.parse("<-03>3"), 0), -3 * 3600)
        self.assertEqual(tz.offset(tz.parse("<+1245>-12:45"), 0), 45900)

    def test_dst_parse(self):
        self.assertEqual(tz.parse(BERLIN), (3600, 7200, (3, 5, 0, 7200), (10, 5, 0, 10800)))
        self.assertEqual(tz.parse(NEW_YORK), (-18000, -14400, (3, 2, 0, 7200), (11, 1, 0, 7200)))
        # explicit DST offset, negative and >24 h transition times (tzdata 2018+)
        self.assertEqual(tz.parse("<-02>2<-01>1,M3.5.0/-1,M10.5.0/0"),
                         (-7200, -3600, (3, 5, 0, -3600), (10, 5, 0, 0)))
        self.assertEqual(tz.parse("IST-2IDT,M3.4.4/26,M10.5.0")[2], (3, 4, 4, 93600))
        self.assertEqual(tz.parse("XXX3YYY,M1.1.0/1:30:15,M2.1.0")[2], (1, 1, 0, 5415))

    def test_invalid(self):
        bad = ("", " ", "UTC ", "Europe/Berlin", "CET", "CET-1CEST", "CET-1CEST,M3.5.0",
               "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0",
               "CET-1CEST,J60,J300", "CET-1CEST,60,300", "CET-1CEST,M3.5.0,M10.5.0x",
               "CE-1", "<+05", "<ab>-1", "+15:00", "+01:60", "UTC+", "+1:00x", "CET-25",
               "CET-1:99", "M3.5.0", "+", "12", "CET-1CEST,M3.5.0/200,M10.5.0", "C3T-1")
        for s in bad:
            with self.assertRaises(ValueError):
                tz.parse(s)
        for s in (None, 1, b"UTC"):
            with self.assertRaises(ValueError):
                tz.parse(s)

    def test_error_messages_are_readable(self):
        try:
            tz.parse("CET-1CEST")
        except ValueError as e:
            self.assertIn("DST rules", str(e))
        else:
            self.fail("no error")


class TestOffset(unittest.TestCase):
    def assertSwitch(self, zone, at, before, after):
        p = tz.parse(zone)
        self.assertEqual(tz.offset(p, at - 1), before, "%s before %d" % (zone, at))
        self.assertEqual(tz.offset(p, at), after, "%s at %d" % (zone, at))

    def test_berlin_2024(self):
        self.assertSwitch(BERLIN, 1711846800, 3600, 7200)   # 2024-03-31 01:00 UTC
        self.assertSwitch(BERLIN, 1729990800, 7200, 3600)   # 2024-10-27 01:00 UTC
        p = tz.parse(BERLIN)
        self.assertEqual(tz.offset(p, 1704067200), 3600)    # 2024-01-01
        self.assertEqual(tz.offset(p, 1719792000), 7200)    # 2024-07-01
        self.assertEqual(tz.offset(p, 1735603200), 3600)    # 2024-12-31

    def test_berlin_local_clock_at_switch(self):
        p = tz.parse(BERLIN)
        self.assertEqual(tz.localtime(p, 1711846799)[:6], (2024, 3, 31, 1, 59, 59))
        self.assertEqual(tz.localtime(p, 1711846800)[:6], (2024, 3, 31, 3, 0, 0))
        self.assertEqual(tz.localtime(p, 1729990799)[:6], (2024, 10, 27, 2, 59, 59))
        self.assertEqual(tz.localtime(p, 1729990800)[:6], (2024, 10, 27, 2, 0, 0))

    def test_new_york_2024(self):
        self.assertSwitch(NEW_YORK, 1710054000, -18000, -14400)  # 2024-03-10 07:00 UTC
        self.assertSwitch(NEW_YORK, 1730613600, -14400, -18000)  # 2024-11-03 06:00 UTC

    def test_london_2024(self):
        self.assertSwitch(LONDON, 1711846800, 0, 3600)
        self.assertSwitch(LONDON, 1729990800, 3600, 0)

    def test_sydney_2024_southern_hemisphere(self):
        self.assertSwitch(SYDNEY, 1712419200, 39600, 36000)  # 2024-04-06 16:00 UTC
        self.assertSwitch(SYDNEY, 1728144000, 36000, 39600)  # 2024-10-05 16:00 UTC
        p = tz.parse(SYDNEY)
        self.assertEqual(tz.offset(p, 1704067200), 39600)    # January: summer
        self.assertEqual(tz.offset(p, 1719792000), 36000)    # July: winter

    def test_week_five_means_last(self):
        # March 2026: the 29th is the last Sunday; Berlin switches 2026-03-29 01:00 UTC
        self.assertSwitch(BERLIN, 1774746000, 3600, 7200)
        # a leap February: "last Thursday" of Feb 2024 is the 29th
        self.assertEqual(tz._rule_local(2024, (2, 5, 4, 0)) // 86400,
                         tz.days_from_civil(2024, 2, 29))
        self.assertEqual(tz._rule_local(2023, (2, 5, 2, 0)) // 86400,
                         tz.days_from_civil(2023, 2, 28))


class TestCalendar(unittest.TestCase):
    def test_local_fields(self):
        self.assertEqual(tz.local_fields(0, 0), (1970, 1, 1, 0, 0, 0, 3))  # a Thursday
        self.assertEqual(tz.local_fields(951782400, 0), (2000, 2, 29, 0, 0, 0, 1))
        self.assertEqual(tz.local_fields(1711846800, 7200), (2024, 3, 31, 3, 0, 0, 6))
        self.assertEqual(tz.local_fields(1735689599, 0), (2024, 12, 31, 23, 59, 59, 1))
        self.assertEqual(tz.local_fields(1735689599, 1), (2025, 1, 1, 0, 0, 0, 2))
        self.assertEqual(tz.local_fields(-1, 0), (1969, 12, 31, 23, 59, 59, 2))
        self.assertEqual(tz.local_fields(4102444800, -3600), (2099, 12, 31, 23, 0, 0, 3))

    def test_days_round_trip(self):
        for days in range(-800, 80000, 97):
            y, m, d = tz.civil_from_days(days)
            self.assertEqual(tz.days_from_civil(y, m, d), days)
        self.assertEqual(tz.days_from_civil(2024, 3, 1) - tz.days_from_civil(2024, 2, 28), 2)
        self.assertEqual(tz.days_from_civil(2100, 3, 1) - tz.days_from_civil(2100, 2, 28), 1)

    def test_now_is_unix_time(self):
        t = tz.now()
        self.assertIsInstance(t, int)
        self.assertGreater(t, 1700000000)  # after 2023: the epoch fix-up works


if __name__ == "__main__":
    unittest.main()
