"""The board interface on a PC (CPython or the unix MicroPython): the PC's
clock is trusted, WiFi is reported as connected, settings live in a folder."""
import gc
import os
import sys
import time


class HostWifi:
    def __init__(self, ssid="host"):
        self._ssid = ssid
        self.networks = []   # a fake scan list: [{"name":..., "rssi":..., "chan":...}]

    def connected(self):
        return True

    def ssid(self):
        return self._ssid

    def rssi(self):
        return -50

    def ip(self):
        return "127.0.0.1"

    def scan(self):
        return list(self.networks)


class Board:
    name = "host"

    def __init__(self, data_dir="data", chip_id="00000000"):
        self.data_dir = data_dir
        self._chip = chip_id
        self._offset = 0.0
        self.time_trusted = True
        self.wifi = HostWifi()
        try:
            os.mkdir(data_dir)
        except OSError:
            pass  # exists

    def chip_id(self):
        return self._chip

    def time(self):
        return time.time() + self._offset

    def set_time(self, unix):
        self._offset = unix - time.time()

    def ntp_sync(self):
        return True

    def mem_free(self):
        return gc.mem_free() if hasattr(gc, "mem_free") else None

    def mem_alloc(self):
        return gc.mem_alloc() if hasattr(gc, "mem_alloc") else None

    def reset(self):
        sys.exit(3)
