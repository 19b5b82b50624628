"""Updates from the project's GitHub releases: the feature that plugs into
the gateway (state, API, the 12-hour check, the new app's trial).

    GET  /api/ota          {"state": "idle|checking|available|downloading|
                            verifying|staged|applied|error", "error": ...,
                            "progress": 0..100 or null, "version", ...}
    POST /api/ota/check    check now (answers when done)
    POST /api/ota/update   {"reboot": true}: download, verify, stage, switch in at the reboot
    POST /api/ota/upload   the release archive (a frozen ESP32 with two app slots: the
                           app image, sha256 required) as the body (?sha256=<hex>&reboot=0):
                           verified file by file like a download; the 2 KB body
                           cap does not apply here, the body is streamed
Access control (admin) is gateway.web.auth's guard, which covers every POST under
/api/. Only this module stays in RAM: the work (gateway.ota.api, .check,
.stage, .releases, .image, lib/httpclient; ota_swap for the journal) is imported
when a check, an update or an upload runs and dropped again afterwards. The
switch and the rollback are done by the loader (ota_boot, ota_swap) at the next
boot, or, for an app image, by the bootloader (gateway.ota.image).
"""
import asyncio

import ota_layout

import ota_boot
from gateway.mono import mono

from micropython import const

CHECK_EVERY = const(43200)         # s between checks (12 h)
RETRY_AFTER_ERROR = const(3600)
UPLOAD = "/api/ota/upload"
MAX_UPLOAD = const(4194304)        # bytes of a manual upload at most
_WORK = ("gateway.ota.api", "gateway.ota.check", "gateway.ota.stage", "gateway.ota.releases", "httpclient",
         "tlsctx", "gateway.ota.image")
# The release's ESP32 image has the app frozen into the firmware (tools/
# bundle.py frozen-manifest). An update by files cannot replace it: the new
# .mpy files would come before the frozen modules and load the whole app into
# the heap, which is what freezing saves. Such a board is updated as a whole
# app image written into its other app slot (gateway.ota.image) when its
# partition table has two; else it checks and reports updates, and the update
# is flashing the release's new image (README).
# FROZEN: the firmware has the app frozen in, known by the module frozen_app
# that only that manifest freezes. __file__ cannot tell: MicroPython gives a
# frozen module's without the ".frozen/" prefix (gateway/ota/feature.py), and on the
# ESP8266 none at all. BUILT: the version the frozen build was made as (its
# filesystem's app/version.json is the first flash's, older after an image update).
from gateway.profiles import frozen as _frozen
_build = _frozen()                  # gateway.profiles reads the marker: one reader
FROZEN = _build is not None
BUILT = _build if _build and _build["version"] else None
del _frozen, _build


def running_slot():
    """The running app slot's label on an ESP32 whose partition table has a
    second app slot (an image update can be written there), else None."""
    try:
        from esp32 import Partition
        run = Partition(Partition.RUNNING)
        run.get_next_update()
        return run.info()[4]
    except (ImportError, OSError):
        return None


class Ota:
    first_check = 60               # s after the start (tests make it shorter)
    confirm_stable = 30            # s the new app must be healthy before it confirms
    confirm_window = ota_boot.CONFIRM_WINDOW
    reboot_delay = 2               # s between "staged" and the reboot (the page sees it)
    frozen = FROZEN

    def __init__(self, gw, root=None, fs=None):
        self.gw = gw
        b = gw.board
        root = root or getattr(b, "ota_root", None) or ota_boot.ROOT
        # False: a gateway run from its source tree (host mode): it checks only
        # when asked, and stages into its data folder without switching anything
        self.can_apply = root is not None
        root = root or b.data_dir
        self.root = root if root.endswith("/") else root + "/"
        self.fs = fs
        self._loader = None
        self.state, self.error, self.progress = "idle", None, None
        self.rel = self.snap = self.best = None    # what the last check found
        self.available = False
        self.checked = 0                # board.time() of the last good check
        self.next_check = mono() + self.first_check
        self.blocked_until = 0          # mono(): GitHub's rate limit
        self.rate = None                # {"remaining", "reset"} from the last API answer
        self.etags = {}                 # url -> (etag, result): 304s cost no rate limit
        self.busy = False
        self.running = True
        self._wake = asyncio.Event()
        # image updates (gateway.ota.image): a frozen app on a board with two app slots
        self.slot = running_slot() if self.frozen else None
        self.image = self.slot is not None
        self.kept = False              # image updates: this start kept its app (api.image_trial)
        if self.image:
            self.can_apply = True          # set_boot() switches: no loader, no source tree
        v = BUILT if self.frozen else None
        if v is None and self.can_apply:
            v = ota_boot.read_json(self.root + ota_layout.APP + "/version.json")
        if v is None or not isinstance(v.get("version"), str):
            from gateway import VERSION, VERSION_DATE
            v = {"version": VERSION, "date": VERSION_DATE}
        self.installed = {"version": v["version"], "date": v.get("date", ""), "channel": v.get("channel", "")}
        if self.image:
            self._image_at_boot(b.data_dir)
            return
        self.last = last = ota_boot.read_json(self.root + ota_layout.LAST)
        j = ota_boot.read_json(self.root + ota_layout.JOURNAL)
        self.trial = bool(j and j.get("op") == "trial")
        if self.trial:
            self.state = "applied"
            gw.events.add("ota", "running %s on trial" % self.installed["version"], persist=True)
        elif last and last.get("result") == "rolled back" and not last.get("shown"):
            # the loader rolled an update back at this boot: say so, once
            self.state, self.error = "error", "update to %s rolled back: %s" % (
                last.get("version"), last.get("why"))
            gw.events.add("ota", self.error, "error", persist=True)
            last["shown"] = True
            try:
                import json
                self.loader.write(ota_layout.LAST, json.dumps(last))
            except OSError:
                pass

    def _image_at_boot(self, data_dir):
        from gateway.ota import image
        try:
            outcome = image.at_boot(data_dir, self.slot)
        except OSError as e:           # the filesystem: the gateway starts all the same
            outcome = None
            self.gw.events.add("ota", "could not read or write %s: %r" % (image.MARK, e), "error")
        self.trial = outcome == "trial"
        m = image.read_mark(data_dir)
        self.last = m if m and m.get("op") == "done" else None
        self.unload()
        gw = self.gw
        if self.trial:
            self.state = "applied"
            gw.events.add("ota", "running %s from %s on trial" % (self.installed["version"], self.slot),
                          persist=True)
        elif outcome:
            self.state, self.error = "error", "update to %s %s: %s" % (
                self.last.get("version"), outcome, self.last.get("why"))
            gw.events.add("ota", self.error, "error", persist=True)

    def image_blocked(self):
        """Why an image update cannot start now, or None. A set_boot() while the
        running app is not kept, or while another image waits for the
        restart, would overwrite the otadata entry that is the way back."""
        if self.trial or not self.kept:
            return "the running app is not kept yet (it is once healthy): try again then"
        from gateway.ota import image
        if image.armed():
            return "an update is already set to boot: restart the gateway to run it"
        return None

    @property
    def loader(self):
        """ota_swap.Loader on this root (imported on first use)."""
        if self._loader is None:
            self._loader = ota_boot.swap_module(self.root).Loader(self.root, self.fs)
        return self._loader

    def can_check(self):
        """None when this board can reach ota.api now, else the reason."""
        gw = self.gw
        if not gw.settings.get("ota.api").startswith("https://"):
            return None
        try:
            from board import boards
            tls = boards.get(gw.board.name)["tls"]
        except (ImportError, KeyError):
            tls = True
        if not tls:
            return "this board cannot check GitHub over HTTPS: the web page fetches the release and uploads it"
        if not gw.board.time_trusted:
            return "the clock is not set yet (HTTPS needs it)"
        return None

    def firmware(self):
        """The seed's /api/info "firmware" object."""
        sel, rel = self.best, self.rel
        return {"version": self.installed["version"], "versiondate": self.installed["date"],
                "versionServer": sel["version"] if sel else "",
                "versiondateServer": sel["date"] if sel else "",
                "versionServerRelease": rel["version"] if rel else "",
                "versiondateServerRelease": rel["date"] if rel else "",
                "selectedUpdateChannel": "1" if self.gw.settings.get("ota.channel") == "snapshot" else "0",
                "updateAvailable": 1 if self.available else 0,
                "updateState": self.state,
                # the app slot that runs (image updates), and how the last update ended
                "slot": self.slot, "lastUpdate": self.last}

    def status(self):
        best = self.best
        return {"state": self.state, "error": self.error, "progress": self.progress,
                "version": self.installed["version"], "channel": self.gw.settings.get("ota.channel"),
                "available": best["version"] if best and self.available else None,
                "release": self.rel["version"] if self.rel else None,
                "snapshot": self.snap["version"] if self.snap else None,
                "checked": self.checked or None, "trial": self.trial, "canApply": self.can_apply,
                "frozen": self.frozen, "image": self.image, "slot": self.slot, "kept": self.kept,
                "cannotCheck": self.can_check(), "rateLimit": self.rate, "last": self.last}

    def fail(self, e):
        self.state, self.progress = "error", None
        self.error = getattr(e, "message", None) or str(e) or type(e).__name__
        self.gw.events.add("ota", self.error, "error")

    def unload(self):
        """Drop the work modules from RAM (they come back on the next use)."""
        from gateway.lazy import unload
        for m in _WORK:
            unload(m)

    async def check(self):
        if self.busy:
            return
        self.busy = True
        try:
            from gateway.ota import check as ota_check
            await ota_check.check(self)
            self.next_check = mono() + CHECK_EVERY
        except Exception as e:  # every failure ends in "error", never in a dead task
            self.fail(e)
            self.next_check = mono() + RETRY_AFTER_ERROR
        finally:
            self.busy = False
            if self.blocked_until > mono():
                self.next_check = max(self.next_check, self.blocked_until)
            self.unload()

    async def run(self):
        if self.image:
            # every start: keep this app once healthy (a new one's trial has a window)
            from gateway.ota import api as ota_api
            await ota_api.image_trial(self)
            self.unload()
        elif self.trial:
            from gateway.ota import api as ota_api
            await ota_api.trial(self)
            self.unload()
        if not self.can_apply:
            return
        while self.running:
            wait = self.next_check - mono()
            if wait <= 0:
                if self.can_check() is None:
                    await self.check()
                else:
                    self.next_check = mono() + 600
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(wait, 60))
            except asyncio.TimeoutError:
                pass

    def stop(self):
        self.running = False
        self._wake.set()

    def settings_changed(self, changed):
        if any(k.startswith("ota.") for k in changed):
            self.rel = self.snap = self.best = None
            self.available = False
            self.etags = {}
            if self.state in ("available", "idle", "error"):
                self.state, self.error = "idle", None
            self.next_check = mono() + 2
            self._wake.set()

    def routes(self, app):
        o = self
        # the upload's body is streamed to the staging folder, past the 2 KB
        # that every other request may send (gateway.web.httpd)
        app.body_limits[UPLOAD] = MAX_UPLOAD

        @app.get("/api/ota")
        async def status(req):
            from gateway.web.httpd import json_response
            return json_response(o.status())

        @app.post("/api/ota/check")
        async def check(req):
            from gateway.ota import api as ota_api
            return await ota_api.check(o, req)

        @app.post("/api/ota/update")
        async def update(req):
            from gateway.ota import api as ota_api
            return await ota_api.update(o, req)

        @app.post(UPLOAD)
        async def upload(req):
            from gateway.ota import api as ota_api
            return await ota_api.upload(o, req)


def attach(gw):
    o = Ota(gw)
    gw.ota = o
    return o
