"""gateway.setup.button: the factory-reset long press, fed with pin readings and
times as a board would (every 50 ms), bounce and all.

Board-side test: plain unittest, runs under pytest and the unix MicroPython.
"""
import unittest

from gateway.setup.button import LongPress

UP, DOWN = 1, 0          # active low: pressed reads 0


def feed(lp, samples, t0=0, step=50):
    """samples: [(level, duration_ms)]; returns (fired times, end time)."""
    fired = []
    t = t0
    for level, dur in samples:
        end = t + dur
        while t < end:
            if lp.feed(level, t):
                fired.append(t)
            t += step
    return fired, t


class LongPressTest(unittest.TestCase):
    def test_ten_seconds_fires_once(self):
        lp = LongPress(hold_ms=10000)
        fired, t = feed(lp, [(UP, 500), (DOWN, 15000), (UP, 500)])
        self.assertEqual(len(fired), 1)
        self.assertTrue(500 + 10000 <= fired[0] <= 500 + 10000 + 100, fired)

    def test_short_presses_do_nothing(self):
        lp = LongPress(hold_ms=10000)
        fired, t = feed(lp, [(UP, 500), (DOWN, 9000), (UP, 500), (DOWN, 3000), (UP, 1000)])
        self.assertEqual(fired, [])

    def test_bounce_does_not_restart_or_fake_a_press(self):
        lp = LongPress(hold_ms=2000, debounce_ms=50)
        # contact bounce on press and release: 10 ms blips, sampled every 10 ms
        samples = [(UP, 200)] + [(DOWN, 10), (UP, 10)] * 5 + [(DOWN, 2500)] + [(UP, 10), (DOWN, 10)] * 3 + [(UP, 500)]
        fired, _ = feed(lp, samples, step=10)
        self.assertEqual(len(fired), 1)
        # a single glitch during a long hold is no release
        lp = LongPress(hold_ms=2000, debounce_ms=50)
        fired, _ = feed(lp, [(UP, 200), (DOWN, 1000), (UP, 20), (DOWN, 1500), (UP, 100)], step=10)
        self.assertEqual(len(fired), 1)
        # noise alone never fires
        lp = LongPress(hold_ms=200, debounce_ms=50)
        fired, _ = feed(lp, [(UP, 100)] + [(DOWN, 30), (UP, 30)] * 100, step=10)
        self.assertEqual(fired, [])

    def test_held_at_power_on_or_stuck_never_fires(self):
        lp = LongPress(hold_ms=1000)
        fired, t = feed(lp, [(DOWN, 60000)])
        self.assertEqual(fired, [])
        self.assertFalse(lp.armed)
        # released, then a real long press works
        fired, t = feed(lp, [(UP, 300), (DOWN, 1500)], t0=t)
        self.assertEqual(len(fired), 1)

    def test_a_second_long_press_fires_again(self):
        lp = LongPress(hold_ms=1000)
        fired, t = feed(lp, [(UP, 200), (DOWN, 1500), (UP, 300), (DOWN, 1500), (UP, 100)])
        self.assertEqual(len(fired), 2)

    def test_active_high_and_held_ms(self):
        lp = LongPress(hold_ms=1000, active_low=False)
        fired, t = feed(lp, [(0, 200), (1, 600)])
        self.assertTrue(400 <= lp.held_ms(t) <= 700, lp.held_ms(t))
        fired, t = feed(lp, [(1, 600)], t0=t)
        self.assertEqual(len(fired), 1)
        fired, t = feed(lp, [(0, 200)], t0=t)
        self.assertEqual(lp.held_ms(t), 0)


if __name__ == "__main__":
    unittest.main()
