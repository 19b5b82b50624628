"""The board interface on a PC (CPython or the unix MicroPython): the PC's
clock is trusted, settings live in a folder. WiFi is the PC's own network
(HostWifi(fixed=True), always connected: host mode with --dtu) or a simulated
one (fixed=False: factory mode, a fake scan list, joins that succeed or fail
as told)."""
import gc
import os
import sys
import time


class HostWifi:
    """See board/__init__.py for the interface. `networks`: the fake scan,
    [{"name", "rssi", "chan", "open"}]; `join`: "ok" or "fail" (wrong
    password) for every join; the result is there at once."""

    AP_IP = "192.168.4.1"

    def __init__(self, ssid="host", fixed=True, networks=(), join="ok"):
        self.fixed = fixed
        self.networks = list(networks)
        self.join = join
        self._sta = ssid if fixed else None     # the SSID joined (or being joined)
        self._status = "connected" if fixed else "idle"
        self._ap = None                         # the SSID of our AP while it is up
        self.joins = []                         # every connect() (ssid, password), for tests

    def connected(self):
        return self._status == "connected"

    def ssid(self):
        return self._sta or ""

    def rssi(self):
        return -50 if self.connected() else 0

    def ip(self):
        return "127.0.0.1" if self.connected() else ""

    def scan(self):
        return [(n.get("name", "").encode(), b"\0" * 6, n.get("chan", 1), n.get("rssi", -70),
                 0 if n.get("open") else 3, False) for n in self.networks]

    def connect(self, ssid, password):
        if self.fixed:
            return
        self.joins.append((ssid, password))
        self._sta = ssid
        self._status = "connected" if self.join == "ok" else "wrong_password"

    def disconnect(self):
        if not self.fixed:
            self._sta, self._status = None, "idle"

    def status(self):
        return self._status

    def ap_start(self, ssid, password=""):
        self._ap = ssid

    def ap_stop(self):
        self._ap = None

    def ap_active(self):
        return self._ap is not None

    def ap_ssid(self):
        return self._ap or ""

    def ap_ip(self):
        return self.AP_IP


def _default_www():
    """<repo>/build/web when this file is firmware/board/host.py of a repo
    that has a web build, else None."""
    d = __file__.rsplit("/", 3)[0] + "/build/web"
    try:
        os.stat(d)
        return d
    except OSError:
        return None


class Board:
    name = "host"
    # HTTP connections served at once, and how many more the OS keeps waiting
    # (gateway.web.httpd): a PC has room for both
    http_clients = 8
    http_backlog = 64

    def __init__(self, data_dir="data", chip_id="00000000", wifi=None, dns_addr=None, www_dir=None):
        self.data_dir = data_dir
        self._chip = chip_id
        self._offset = 0.0
        self.time_trusted = True
        self.wifi = wifi or HostWifi()
        self.dns_addr = dns_addr     # (host, port) for the captive DNS responder, or None
        self.www_dir = www_dir or _default_www()   # the built web app (tools/build_web.py), or None
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
