"""Monotonic seconds for timeouts, back-off and rate limits.

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
    ticks_ms = None

if ticks_ms is None:  # CPython
    def mono():
        return time.monotonic()
else:
    _state = [ticks_ms(), 0]   # last ticks_ms(), milliseconds summed so far

    def mono():
        t = ticks_ms()
        _state[1] += ticks_diff(t, _state[0])
        _state[0] = t
        return _state[1] / 1000
