"""Monotonic time: mono() in seconds for timeouts, back-off and rate limits;
ticks_ms()/ticks_diff() (MicroPython's, or a CPython stand-in) for the parts
that count wrapping milliseconds (health.py, button.py).

board.time() is wall-clock time and jumps when it is set (NTP, the DTU's
clock after a boot in 2000): a session or a lock-out measured with it would
end early or never. mono() never jumps. On MicroPython it sums ticks_diff()
steps, which is right as long as it is called at least every few days (the
WiFi manager calls it every second).
"""
import time

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # pragma: no cover - CPython
    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def mono():
        return time.monotonic()
else:
    _state = [ticks_ms(), 0]   # last ticks_ms(), milliseconds summed so far

    def mono():
        t = ticks_ms()
        _state[1] += ticks_diff(t, _state[0])
        _state[0] = t
        return _state[1] / 1000
