"""The factory-reset button: a debounced long-press detector, pure logic.

    lp = LongPress(hold_ms=10000)
    if lp.feed(pin.value(), time.ticks_ms()):     # call every ~50 ms
        portal.factory_reset(gw, "button")

feed(level, t_ms) is True exactly once per press, when the button has been
down, steadily, for hold_ms. A level counts only after it held for
debounce_ms. A press counts only after the button was seen released once, so
a button held at power-on (the BOOT button selects the ROM bootloader) or a
pin stuck low never resets the board. Active low by default (BOOT/FLASH
buttons pull to GND). t_ms may wrap (time.ticks_ms): differences go through
ticks_diff where the port has it.

watch(read, action) is the polling task the board code starts.
"""
import asyncio

from gateway.mono import ticks_diff, ticks_ms


class LongPress:
    def __init__(self, hold_ms=10000, debounce_ms=50, active_low=True):
        self.hold_ms = hold_ms
        self.debounce_ms = debounce_ms
        self.active_low = active_low
        self.pressed = False     # the debounced state
        self.armed = False       # seen released (debounced) at least once
        self._raw = None
        self._raw_since = 0
        self._since = 0          # when the debounced press began
        self._fired = False

    def feed(self, level, t):
        down = (not level) if self.active_low else bool(level)
        if down != self._raw:
            self._raw, self._raw_since = down, t
        if ticks_diff(t, self._raw_since) >= self.debounce_ms:   # a settled level
            if not down:
                self.armed = True
            if down != self.pressed:
                self.pressed = down
                if down:
                    self._since, self._fired = self._raw_since, False
        if (self.pressed and self.armed and not self._fired
                and ticks_diff(t, self._since) >= self.hold_ms):
            self._fired = True
            return True
        return False

    def held_ms(self, t):
        """How long the current press has lasted (0 when released), e.g. for an LED."""
        return ticks_diff(t, self._since) if self.pressed and self.armed else 0


async def watch(read, action, hold_ms=10000, period_ms=50):
    """Poll read() (a pin's value) every period_ms; call action() on a long press."""
    lp = LongPress(hold_ms)
    while True:
        if lp.feed(read(), ticks_ms()):
            action()
        await asyncio.sleep(period_ms / 1000)
