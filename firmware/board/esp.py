"""The board interface on an ESP8266 or ESP32 (-S3, -C3): see board/__init__.py.

What differs per board comes from board/boards.py (pins, watchdog kind, heap
class). `machine`, `network` and `ntptime` are imported here unless passed
in, so tests run this file on a PC with fakes.

Time: the ports count from 2000 or 1970 (time.gmtime(0) tells); time()
always answers Unix seconds, as an int: floats are single precision on these
boards and would round a Unix time to minutes.
"""
import gc
import os
import sys
import time

from board import boards

# Seconds from 1970 to the port's epoch: 946684800 when it counts from 2000.
EPOCH = 946684800 if time.gmtime(0)[0] == 2000 else 0

# network.STAT_* names -> the interface's status words; the numbers differ
# between the ports, so they are looked up by name.
_STATUS = (("STAT_GOT_IP", "connected"), ("STAT_CONNECTING", "connecting"),
           ("STAT_IDLE", "idle"), ("STAT_WRONG_PASSWORD", "wrong_password"),
           ("STAT_NO_AP_FOUND", "no_ap"), ("STAT_CONNECT_FAIL", "fail"),
           ("STAT_ASSOC_FAIL", "fail"), ("STAT_HANDSHAKE_TIMEOUT", "wrong_password"),
           ("STAT_BEACON_TIMEOUT", "connecting"))

# machine.*_RESET names -> reset_cause() words. ESP8266's exception reset (2)
# and soft-WDT reset (3) have no constant: anything unknown is a "crash".
_CAUSES = (("PWRON_RESET", "power"), ("HARD_RESET", "hard"), ("SOFT_RESET", "soft"),
           ("WDT_RESET", "watchdog"), ("DEEPSLEEP_RESET", "deepsleep"))


class EspWifi:
    """STA and AP over network.WLAN (see board/__init__.py)."""
    fixed = False

    def __init__(self, network, platform):
        self._net = network
        self._esp8266 = platform == "esp8266"
        self.sta = network.WLAN(network.STA_IF)
        self.ap = network.WLAN(network.AP_IF)
        self._status = {}
        for name, word in _STATUS:
            code = getattr(network, name, None)
            if code is not None:
                self._status[code] = word

    def connected(self):
        return self.sta.isconnected()

    def ssid(self):
        return _essid(self.sta) if self.sta.isconnected() else ""

    def rssi(self):
        try:
            return self.sta.status("rssi") if self.sta.isconnected() else 0
        except (OSError, ValueError, TypeError):
            return 0

    def ip(self):
        return self.sta.ifconfig()[0] if self.sta.isconnected() else ""

    def scan(self):
        if not self.sta.active():
            self.sta.active(True)
        try:
            return self.sta.scan()
        except OSError:  # busy connecting: no list this time
            return []

    def connect(self, ssid, password):
        self.sta.active(True)
        try:
            self.sta.disconnect()
        except OSError:
            pass
        self.sta.connect(ssid, password)

    def status(self):
        if self.sta.isconnected():
            return "connected"
        return self._status.get(self.sta.status(), "fail")

    def disconnect(self):
        try:
            self.sta.disconnect()
        except OSError:
            pass
        if self._esp8266:
            # the ESP8266 SDK keeps the last network in flash and joins it again
            # on its own at every boot: switching STA off stops that
            self.sta.active(False)

    def ap_start(self, ssid, password=""):
        net = self._net
        self.ap.active(True)
        if password:
            self.ap.config(essid=ssid, password=password, authmode=getattr(net, "AUTH_WPA2_PSK", 3))
        else:
            self.ap.config(essid=ssid, authmode=getattr(net, "AUTH_OPEN", 0))

    def ap_stop(self):
        self.ap.active(False)

    def ap_active(self):
        return bool(self.ap.active())

    def ap_ssid(self):
        return _essid(self.ap) if self.ap.active() else ""

    def ap_ip(self):
        return self.ap.ifconfig()[0]


def _essid(wlan):
    try:
        return wlan.config("ssid")
    except (ValueError, OSError):  # older ports know only "essid"
        return wlan.config("essid")


class _HwWatchdog:
    """machine.WDT with a timeout (ESP32 family). It cannot be switched off:
    stop() sets a timeout of a day, time enough to work at the REPL."""

    def __init__(self, machine, timeout_ms):
        self._machine = machine
        self._wdt = machine.WDT(timeout=timeout_ms)

    def feed(self):
        self._wdt.feed()

    def stop(self):
        self._wdt = self._machine.WDT(timeout=86400000)


class _SoftWatchdog:
    """ESP8266: machine.WDT takes no timeout and the system feeds it while
    Python runs, so a hung asyncio loop would never reset the board. A
    machine.Timer counts down instead; its callback runs between bytecodes
    even while a task spins, and resets the board at zero."""

    def __init__(self, machine, timeout_ms, on_expire=None):
        self._machine = machine
        self._left = self._full = max(1, timeout_ms // 1000)
        self._on_expire = on_expire
        self._timer = machine.Timer(-1)
        self._timer.init(period=1000, mode=machine.Timer.PERIODIC, callback=self._tick)

    def _tick(self, _t):
        self._left -= 1
        if self._left <= 0:
            self._timer.deinit()
            if self._on_expire is not None:
                try:
                    self._on_expire()
                except Exception:  # noqa: the reset below matters more
                    pass
            self._machine.reset()

    def feed(self):
        self._left = self._full

    def stop(self):
        self._timer.deinit()


class Board:
    data_dir = "/data"
    www_dir = "/app/www"    # the bundle's layout (tools/bundle.py); the active app's, see below
    dns_addr = ("0.0.0.0", 53)
    console = True          # aiorepl runs when installed (`make deploy` installs it)

    def __init__(self, machine=None, network=None, platform=None, model=None, data_dir=None):
        if machine is None:  # pragma: no cover - on the board
            import machine
        if network is None:  # pragma: no cover - on the board
            import network
        self._machine = machine
        platform = platform or sys.platform
        self.name = platform                        # "esp8266" | "esp32"
        if model is None:  # pragma: no cover - on the board
            try:
                model = boards.detect(platform, os.uname().machine)
            except AttributeError:
                model = boards.detect(platform)
        self.model = model                          # a row of board/boards.py
        self.row = boards.get(model)
        self.http_clients, self.http_backlog = self.row["http"]
        if data_dir:
            self.data_dir = data_dir
        try:  # the active app's web files (ota_boot.py put that app on sys.path)
            import ota_boot
            self.www_dir = ota_boot.app_path("www") or self.www_dir
        except ImportError:
            pass
        self.time_trusted = False
        self.wifi = EspWifi(network, platform)
        self._pins = {}
        try:
            os.mkdir(self.data_dir)
        except OSError:
            pass  # exists

    def chip_id(self):
        return "".join("%02x" % b for b in self._machine.unique_id())

    # ---- time -----------------------------------------------------------------

    def time(self):
        return int(time.time()) + EPOCH

    def set_time(self, unix):
        t = time.gmtime(int(unix) - EPOCH)
        # RTC.datetime: (year, month, day, weekday, hours, minutes, seconds, subseconds)
        self._machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))

    def ntp_sync(self, ntptime=None):
        """One NTP query (blocks up to ntptime.timeout, 1 s); True on success."""
        try:
            if ntptime is None:  # pragma: no cover - on the board
                import ntptime
            ntptime.settime()
        except (OSError, OverflowError, IndexError):
            return False
        self.time_trusted = True
        return True

    # ---- memory and reset -------------------------------------------------------

    def mem_free(self):
        return gc.mem_free()

    def mem_alloc(self):
        return gc.mem_alloc()

    def reset(self):
        self._machine.reset()

    def reset_cause(self):
        """Why the board started: "power", "hard" (the RESET button), "soft"
        (machine.reset()), "watchdog", "deepsleep", or "crash" (an exception
        or panic reset the chip)."""
        cause = self._machine.reset_cause()
        for name, word in _CAUSES:
            if getattr(self._machine, name, None) == cause:
                return word
        return "crash"

    # ---- self-healing and the little hardware -----------------------------------

    def watchdog(self, timeout_ms, on_expire=None):
        """A started watchdog with .feed() and .stop(); see boards.py "wdt"."""
        if self.row["wdt"] == "soft":
            return _SoftWatchdog(self._machine, timeout_ms, on_expire)
        return _HwWatchdog(self._machine, timeout_ms)

    def _pin(self, n, out):
        p = self._pins.get(n)
        if p is None:
            Pin = self._machine.Pin
            p = Pin(n, Pin.OUT) if out else Pin(n, Pin.IN, Pin.PULL_UP)
            self._pins[n] = p
        return p

    def button_level(self):
        """The factory-reset button's pin level (1 = released: it pulls to GND)."""
        return self._pin(self.row["button"], False).value()

    def led(self, on):
        kind, n = self.row["led_kind"], self.row["led"]
        if kind == "rgb":
            import neopixel
            np = neopixel.NeoPixel(self._pin(n, True), 1)
            np[0] = (0, 6, 0) if on else (0, 0, 0)
            np.write()
        else:
            self._pin(n, True).value(1 if bool(on) == (kind == "high") else 0)
