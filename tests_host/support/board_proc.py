"""A board's start under the unix MicroPython as a process, and how the
update tests talk to it (tests_host/e2e/test_ota.py, test_ota_image.py)."""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from proc_util import free_port, start, stop
from support.env import ROOT, micropython_bin


class BoardProc:
    """tests_host/support/SCRIPT (a board's start: its loader or bootloader,
    then the gateway) under the unix MicroPython; board.reset() ends the
    process with status 3, and start() again is the reboot."""

    def __init__(self, script, args, data, extra=()):
        self.script, self.args, self.data, self.extra = script, list(args), data, list(extra)
        self.port = free_port()
        self.p = None

    def start(self):
        self.p = start([micropython_bin(), "-X", "heapsize=512k",
                        os.path.join(ROOT, "tests_host", "support", self.script)] + self.args +
                       ["--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.data,
                        "--confirm-stable", "1"] + self.extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_exit(self, timeout=30):
        try:
            out, _ = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("the board did not reboot")
        return self.p.returncode, out.decode(errors="replace")

    def stop(self):
        stop(self.p)

    def http(self, method, path, body=None, timeout=30):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def upload(self, data, sha):
        req = urllib.request.Request("http://127.0.0.1:%d/api/ota/upload?sha256=%s" % (self.port, sha),
                                     method="POST", data=data,
                                     headers={"Content-Type": "application/octet-stream"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def wait_up(self, timeout=20):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.p.poll() is not None:
                raise AssertionError("board ended: %s" % self.p.stdout.read().decode(errors="replace"))
            try:
                return self.http("GET", "/api/info", timeout=2)[1]
            except OSError:
                time.sleep(0.1)
        raise AssertionError("board not up")

    def wait_ota(self, pred, timeout=20):
        t0 = time.time()
        while time.time() - t0 < timeout:
            st = self.http("GET", "/api/ota")[1]
            if pred(st):
                return st
            time.sleep(0.1)
        raise AssertionError("OTA state stayed %r" % st)
