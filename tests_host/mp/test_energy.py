"""gateway.energy: lifetime totals never fall and are never 0 once above 0;
today's energy resets at local midnight only; the figures survive a reboot.

Board-side test: plain unittest, runs under pytest and the unix MicroPython
(tests_host/mp/run_all.py). The whole gateway through a simulated dusk, night
and dawn is tests_host/unit/test_day.py."""
import unittest

from gateway import energy
from gateway.energy import Energy
from support.tmpfs import mkdtemp, rmtree

DAY = 19800          # a local day number (Unix days)


def reading(p=0.0, dE=(0.0, 0.0), tE=(0.0, 0.0)):
    pv = [{"v": 0.0, "c": 0.0, "p": p / 2, "dE": dE[i], "tE": tE[i], "port": i + 1} for i in (0, 1)]
    return {"grid": {"v": 0.0, "c": 0.0, "p": p, "f": 0.0, "dE": dE[0] + dE[1], "tE": tE[0] + tE[1]},
            "pv": pv, "inverter": {"temp": 0.0, "limit": 100.0, "link": 1 if p else 0}}


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = mkdtemp("energy")
        self.e = Energy(self.dir + "/energy.json")

    def tearDown(self):
        rmtree(self.dir)


class TestCounters(Base):
    def test_dusk_zeros_keep_the_totals_and_todays_harvest(self):
        e = self.e
        e.take(reading(500.0, (2.0, 1.5), (1000.0, 900.0)), DAY, 1000)
        r = reading(0.0)                                  # the dusk: every value 0
        self.assertIsNone(e.take(r, DAY, 2000))
        self.assertEqual((r["grid"]["tE"], r["pv"][0]["tE"], r["pv"][1]["tE"]), (1900.0, 1000.0, 900.0))
        self.assertEqual((r["grid"]["dE"], r["pv"][0]["dE"], r["pv"][1]["dE"]), (3.5, 2.0, 1.5))

    def test_a_smaller_total_is_logged_and_the_larger_kept(self):
        e = self.e
        e.take(reading(500.0, (2.0, 1.5), (1000.0, 900.0)), DAY, 1000)
        r = reading(400.0, (2.1, 1.6), (999.0, 901.0))
        warn = e.take(r, DAY, 1100)
        self.assertIn("less than", warn)
        self.assertEqual((r["pv"][0]["tE"], r["pv"][1]["tE"], r["grid"]["tE"]), (1000.0, 901.0, 1900.0))
        self.assertEqual(e.total, [1900.0, 1000.0, 901.0])

    def test_today_starts_again_at_local_midnight_only(self):
        e = self.e
        shown = reading(0.0, (2.0, 1.5), (1000.0, 900.0))
        e.take(shown, DAY, 1000)
        e.new_day(shown, DAY)                            # same day: nothing changes
        self.assertEqual(shown["grid"]["dE"], 3.5)
        e.new_day(shown, DAY + 1)                        # midnight, the DTU asleep
        self.assertEqual((shown["grid"]["dE"], shown["pv"][0]["dE"]), (0.0, 0.0))
        self.assertEqual(shown["grid"]["tE"], 1900.0)
        morning = reading(50.0, (0.1, 0.1), (1000.1, 900.1))
        e.take(morning, DAY + 1, 90000)
        self.assertAlmostEqual(morning["grid"]["dE"], 0.2)
        self.assertEqual(e.today, [morning["grid"]["dE"], 0.1, 0.1])

    def test_placeholder_before_the_first_answer(self):
        self.e.take(reading(500.0, (2.0, 1.5), (1000.0, 900.0)), DAY, 1000)
        grid, p0, p1 = self.e.placeholder()
        self.assertEqual((grid["tE"], p0["tE"], p1["tE"], grid["p"]), (1900.0, 1000.0, 900.0, 0.0))


class TestKept(Base):
    def test_the_figures_survive_a_reboot(self):
        self.e.take(reading(500.0, (2.0, 1.5), (1000.0, 900.0)), DAY, 1000)   # the first: written
        again = Energy(self.dir + "/energy.json")
        again.load()
        self.assertEqual((again.total, again.today, again.day), ([1900.0, 1000.0, 900.0], [3.5, 2.0, 1.5], DAY))

    def test_written_at_dusk_and_every_few_hours_not_every_round(self):
        e = self.e
        writes = []
        real = e.save

        def save(now):
            writes.append(now)
            real(now)
        e.save = save
        t, total = 1000, 1000.0
        for _ in range(400):                              # a sunny day, one answer a minute (6.7 h)
            total += 0.01
            e.take(reading(500.0, (1.0, 1.0), (total, 900.0)), DAY, t)
            t += 60
        self.assertEqual(len(writes), 2)                  # the first answer, then after SAVE_EVERY
        self.assertEqual(writes[1] - writes[0], energy.SAVE_EVERY)
        e.take(reading(0.0), DAY, t)                      # dusk: the totals stop growing
        self.assertEqual(len(writes), 3)
        e.take(reading(0.0), DAY, t + 60)                 # night: nothing new to write
        self.assertEqual(len(writes), 3)

    def test_whether_it_was_producing_is_kept_for_a_restart_at_night(self):
        # the app takes a DTU silent after a restart for asleep only when the
        # last answer before it had no power (gateway.app seeds the scheduler)
        fresh = Energy(self.dir + "/energy.json")
        fresh.load()
        self.assertIsNone(fresh.producing)                # no file: nothing known
        self.e.take(reading(500.0, (2.0, 1.5), (1000.0, 900.0)), DAY, 1000)
        self.e.take(reading(0.0), DAY, 2000)              # the dusk: written
        again = Energy(self.dir + "/energy.json")
        again.load()
        self.assertIs(again.producing, False)
        self.e.take(reading(300.0, (2.5, 1.5), (1000.5, 900.0)), DAY + 1, 30000)
        self.e.save(30000)                                # the gateway stops at noon
        again.load()
        self.assertIs(again.producing, True)

    def test_a_broken_file_is_no_error(self):
        with open(self.dir + "/energy.json", "w") as f:
            f.write('{"total": [1, 2')
        self.e.load()
        self.assertEqual(self.e.total, [0.0, 0.0, 0.0])


if __name__ == "__main__":
    unittest.main()
