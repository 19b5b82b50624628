"""Image updates of a firmware with the app frozen in (gateway.ota.image), end
to end against the local GitHub stand-in, on a file-backed stand-in of the
ESP32's two app slots and its bootloader (tests_host/support/esp32_standin.py:
esp32.Partition's methods and 4 KB blocks, set_boot()'s image check, the
rollback of an app that never confirmed itself).

What runs after a reboot is what the booted slot holds: the stand-in image's
payload gives the version the frozen build reports (gateway.ota.feature.BUILT)
and whether that app gets healthy."""
import asyncio
import hashlib
import json
import os
import sys
import time

import pytest

from support.env import ROOT
from support.inproc import with_test_client
from support.gh_standin import Standin
from support import esp32_standin as flash
from support.image_release import IMAGE_SIZE, image, release_assets
from proc_util import free_port

from gateway.ota import names as ota_names

REPO = "dtu-gateway/dtu-gateway"
SLOT_BLOCKS = 48                     # 192 KB slots: images of several blocks, tests stay quick


@pytest.fixture(scope="module")
def rel(tmp_path_factory):
    """Release 0.2.0 as tools/bundle.py makes it, with its ESP32 app image."""
    return release_assets(str(tmp_path_factory.mktemp("rel")), "0.2.0", image("0.2.0"))


@pytest.fixture
def gh(rel):
    s = Standin(REPO)
    s.add_release("v0.2.0", rel)
    yield s
    s.close()


class Board:
    """The flash (two slots, otadata) and the data folder of one ESP32, and
    the gateway that the booted slot runs."""

    def __init__(self, tmp, gh, monkeypatch):
        self.gh = gh
        self.flash = os.path.join(tmp, "flash")
        self.data = os.path.join(tmp, "data")
        os.makedirs(self.data)
        flash.format_flash(self.flash, SLOT_BLOCKS, image("0.1.0"))
        with open(os.path.join(self.data, "settings.json"), "w") as f:
            json.dump({"ota.api": gh.api_url, "ota.repo": REPO}, f)
        self.mp = monkeypatch
        monkeypatch.setitem(sys.modules, "esp32", flash)
        self.resets = []
        self.boot()

    def boot(self):
        """A reset: the bootloader picks the slot, the app in it starts."""
        from board.host import Board as HostBoard, HostWifi
        from gateway.app import Gateway
        from gateway.ota import feature
        self.slot = flash.boot(self.flash)
        run = json.loads(flash.payload_of(flash.slot_bytes(self.slot)))
        self.healthy = run["healthy"]
        self.mp.setattr(feature, "BUILT", {"version": run["version"], "date": "", "channel": "release"})
        self.mp.setattr(feature.Ota, "frozen", True)
        b = HostBoard(data_dir=self.data, chip_id="00c0ffee", wifi=HostWifi(fixed=True))
        b.reset = lambda: self.resets.append(time.time())
        self.gw = Gateway(b)
        o = self.gw.ota
        o.reboot_delay, o.confirm_stable = 0, 0.2
        return self.gw

    def otadata(self):
        with open(os.path.join(self.flash, "otadata.json")) as f:
            return json.load(f)

    def call(self, fn):
        return with_test_client(self.gw, fn)

    def keep(self):
        """The gateway runs until it has kept its app (an update waits for that)."""
        self.run_until(lambda: self.gw.ota.kept)

    def update(self):
        """POST /api/ota/check and /api/ota/update (once the running app is
        kept); the state it ends in."""
        if not self.gw.ota.kept and not self.gw.ota.trial:
            self.keep()
        async def go(c):
            r = await c.post("/api/ota/check")
            assert r.status_code == 200, r.json
            u = await c.post("/api/ota/update")
            t0 = time.time()
            while self.gw.ota.busy or self.gw.ota.state in ("downloading", "verifying"):
                assert time.time() - t0 < 20
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.05)
            return u, (await c.get("/api/ota")).json, (await c.get("/api/info")).json["firmware"]
        return self.call(go)

    def run_until(self, cond, seconds=10):
        """The gateway serving (healthy unless its image says otherwise) until cond()."""
        async def go():
            task = None
            if self.healthy:
                task = asyncio.create_task(self.gw.run("127.0.0.1", free_port()))
            else:                      # an app that never gets its web server up
                asyncio.create_task(self.gw.ota.run())
            t0 = time.time()
            while not cond():
                assert time.time() - t0 < seconds, "timed out"
                await asyncio.sleep(0.05)
            self.gw.stop()
            if task is not None:
                await asyncio.wait_for(task, 5)
        asyncio.run(go())


@pytest.fixture
def esp(tmp_path, gh, monkeypatch):
    return Board(str(tmp_path), gh, monkeypatch)


def test_the_release_carries_the_app_image_and_its_digest(rel):
    info = json.loads(rel[ota_names.VERSION])
    app = rel[ota_names.ESP32_APP]
    assert info["esp32_app"] == {"name": ota_names.ESP32_APP, "size": len(app),
                                 "sha256": hashlib.sha256(app).hexdigest()}


def test_a_good_image_is_written_to_the_other_slot_booted_and_kept(esp):
    assert esp.slot == "ota_0" and esp.gw.ota.image and esp.gw.ota.installed["version"] == "0.1.0"
    old = flash.slot_bytes("ota_0")
    u, st, fw = esp.update()
    assert u.status_code == 202
    assert (st["state"], st["error"], st["progress"]) == ("staged", None, 100), st
    assert st["image"] is True and fw["slot"] == "ota_0"
    assert esp.resets, "no reboot after the image was set to boot"
    assert flash.slot_bytes("ota_0") == old                         # the running slot untouched
    assert flash.slot_bytes("ota_1")[:IMAGE_SIZE] == image("0.2.0")
    assert any(e and e["state"] == flash.NEW for e in esp.otadata()["entries"])

    esp.boot()                                                      # the new app, pending
    o = esp.gw.ota
    assert esp.slot == "ota_1" and o.trial and o.state == "applied" and o.installed["version"] == "0.2.0"
    assert flash.PENDING_VERIFY in [e["state"] for e in esp.otadata()["entries"] if e]
    esp.run_until(lambda: not o.trial)                              # healthy: keeps itself
    assert [e["state"] for e in esp.otadata()["entries"]] == [flash.VALID, flash.VALID]
    info = esp.gw.info()["firmware"]
    assert info["slot"] == "ota_1" and info["version"] == "0.2.0"
    assert info["lastUpdate"]["result"] == "ok" and info["lastUpdate"]["version"] == "0.2.0"
    esp.boot()                                                      # and it stays
    assert esp.slot == "ota_1" and not esp.gw.ota.trial and esp.gw.ota.state == "idle"


@pytest.mark.parametrize("fault, text", [
    ("tamper", "sha256 does not match"), ("extra", "wrong size"), ("truncate", "cut short"),
    ("404", "HTTP 404")])
def test_a_bad_download_is_refused_and_the_old_slot_still_boots(esp, fault, text):
    before = esp.otadata()
    old = flash.slot_bytes("ota_0")
    esp.gh.fault = {ota_names.ESP32_APP: fault}
    u, st, fw = esp.update()
    assert st["state"] == "error" and text in st["error"], st
    assert esp.otadata() == before and not esp.resets             # the boot choice unchanged
    assert flash.slot_bytes("ota_0") == old
    esp.boot()
    assert esp.slot == "ota_0" and esp.gw.ota.installed["version"] == "0.1.0"


def test_an_image_larger_than_the_slot_is_refused_before_a_block_is_written(esp, rel):
    gh = esp.gh
    big = image("0.2.0", size=(SLOT_BLOCKS + 1) * flash.BLOCK)
    info = json.loads(rel[ota_names.VERSION])
    info["esp32_app"] = {"name": ota_names.ESP32_APP, "size": len(big), "sha256": hashlib.sha256(big).hexdigest()}
    gh.add_release("v0.2.0", dict(rel, **{ota_names.ESP32_APP: big,
                                         ota_names.VERSION: json.dumps(info).encode()}))
    blank = flash.slot_bytes("ota_1")
    u, st, fw = esp.update()
    assert st["state"] == "error" and "larger than the slot" in st["error"], st
    assert flash.slot_bytes("ota_1") == blank and not esp.resets


def test_a_power_cut_after_every_block_leaves_the_old_slot_booting(esp):
    from gateway.ota import image as ota_image
    img = image("0.2.0")
    blocks = (len(img) + flash.BLOCK - 1) // flash.BLOCK
    old, before = flash.slot_bytes("ota_0"), esp.otadata()
    for k in range(blocks):
        flash.cut_after(k)
        w = ota_image.ImageWriter(ota_image.next_slot(), len(img), hashlib.sha256(img).hexdigest())
        with pytest.raises(flash.PowerCut):
            for i in range(0, len(img), 1000):
                w.feed(memoryview(img)[i:i + 1000])
            ota_image.install(w, esp.data, "0.2.0", "0.1.0")
        flash.cut_after(None)
        assert flash.boot(esp.flash) == "ota_0", k
        assert flash.slot_bytes("ota_0") == old and esp.otadata() == before, k
    # after all that, the update goes through
    u, st, fw = esp.update()
    assert st["state"] == "staged"
    assert esp.boot() and esp.slot == "ota_1"


def test_a_power_cut_between_set_boot_and_the_confirmation_rolls_back(esp):
    esp.update()
    esp.boot()
    assert esp.slot == "ota_1" and esp.gw.ota.trial                 # the power goes here
    esp.boot()
    o = esp.gw.ota
    assert esp.slot == "ota_0" and o.installed["version"] == "0.1.0" and not o.trial
    assert o.state == "error" and "rolled back" in o.error, o.error
    fw = esp.gw.info()["firmware"]
    assert fw["slot"] == "ota_0" and fw["lastUpdate"]["result"] == "rolled back"
    assert fw["lastUpdate"]["version"] == "0.2.0"
    assert any("rolled back" in e["msg"] for e in esp.gw.events.items())
    assert esp.boot() and esp.slot == "ota_0"                       # the old app stays


def test_a_new_image_that_never_gets_healthy_rolls_back(esp, rel):
    gh = esp.gh
    bad = image("0.2.0", healthy=False)
    info = json.loads(rel[ota_names.VERSION])
    info["esp32_app"] = {"name": ota_names.ESP32_APP, "size": len(bad), "sha256": hashlib.sha256(bad).hexdigest()}
    gh.add_release("v0.2.0", dict(rel, **{ota_names.ESP32_APP: bad, ota_names.VERSION: json.dumps(info).encode()}))
    esp.update()
    esp.boot()
    o = esp.gw.ota
    assert esp.slot == "ota_1" and o.trial and not esp.healthy
    o.confirm_window = 0.5
    esp.resets.clear()
    esp.run_until(lambda: esp.resets)                               # it resets itself ...
    assert esp.otadata()["entries"][1]["state"] == flash.PENDING_VERIFY   # ... never kept
    esp.boot()                                                      # ... and the bootloader goes back
    assert esp.slot == "ota_0" and esp.gw.ota.installed["version"] == "0.1.0"
    assert esp.gw.info()["firmware"]["lastUpdate"]["result"] == "rolled back"


def test_no_second_update_while_the_first_is_on_trial(esp):
    esp.update()
    esp.boot()

    async def go(c):
        return await c.post("/api/ota/update")
    r = esp.call(go)
    assert r.status_code == 409 and "not kept yet" in r.json["error"]


def test_an_image_set_to_boot_without_a_restart_is_neither_kept_nor_overwritten(esp):
    # ESP-IDF keeps the entry that boots next: the old app, still running, must
    # not keep the new image, and a second set_boot() would overwrite the old
    # slot's VALID entry, the only way back
    esp.keep()

    async def go(c):
        await c.post("/api/ota/check")
        u = await c.post("/api/ota/update", body={"reboot": False})
        t0 = time.time()
        while esp.gw.ota.busy:
            assert time.time() - t0 < 20
            await asyncio.sleep(0.02)
        again = await c.post("/api/ota/update")
        return u, again, (await c.post("/api/ota/check")).json
    u, again, st = esp.call(go)
    assert u.status_code == 202 and not esp.resets
    assert again.status_code == 409 and "already set to boot" in again.json["error"]
    assert st["state"] == "staged", st                           # a check does not offer it again
    from gateway.ota import image as ota_image
    assert ota_image.confirm(esp.data, "ota_0", "0.1.0") is None    # the old app, healthy, keeps nothing
    entries = esp.otadata()["entries"]
    assert sorted(e["state"] for e in entries) == [flash.NEW, flash.VALID], entries
    esp.boot()
    assert esp.slot == "ota_1" and esp.gw.ota.trial


def test_a_power_cut_between_keeping_the_new_app_and_writing_it_down(esp):
    esp.update()
    esp.boot()
    flash.Partition.mark_app_valid_cancel_rollback()             # kept; the power goes before the mark
    esp.boot()
    o = esp.gw.ota
    assert esp.slot == "ota_1" and o.trial                       # it cannot tell: on trial again
    esp.healthy, o.confirm_window = False, 0.3                   # and not healthy this time
    esp.resets.clear()
    esp.run_until(lambda: esp.resets)
    esp.boot()                                                   # no way back from a kept app: still ota_1
    assert esp.slot == "ota_1" and not esp.gw.ota.trial and esp.gw.ota.state == "idle"
    assert esp.gw.info()["firmware"]["lastUpdate"]["result"] == "ok"    # not a reset loop


def test_an_uploaded_image_needs_its_sha256_and_is_checked(esp, rel):
    esp.keep()
    img = rel[ota_names.ESP32_APP]
    good = hashlib.sha256(img).hexdigest()

    async def go(c):
        out = [await c.post("/api/ota/upload?reboot=0", body=img)]
        out.append(await c.post("/api/ota/upload?reboot=0&sha256=" + "0" * 64, body=img))
        before = esp.otadata()
        out.append(await c.post("/api/ota/upload?reboot=0&sha256=" + good, body=img))
        return out, before
    (nosha, wrong, ok), before = esp.call(go)
    assert nosha.status_code == 400 and "sha256" in nosha.json["error"]
    assert wrong.status_code == 400 and "sha256" in wrong.json["error"]
    assert ok.status_code == 200 and ok.json["state"] == "staged", ok.json
    assert esp.otadata() != before and not esp.resets
    esp.boot()
    assert esp.slot == "ota_1" and esp.gw.ota.installed["version"] == "0.2.0"


# ---- the same on the unix MicroPython, one process per boot ---------------------------

@pytest.mark.usefixtures("micropython")
def test_micropython_writes_the_image_reboots_into_it_and_keeps_it(tmp_path, gh):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import run_host
    from support.board_proc import BoardProc
    fl, data = str(tmp_path / "flash"), str(tmp_path / "data")
    os.makedirs(data)
    flash.format_flash(fl, SLOT_BLOCKS, image("0.1.0"))
    with open(os.path.join(data, "settings.json"), "w") as f:
        json.dump({"ota.api": gh.api_url, "ota.repo": REPO}, f)
    b = BoardProc("image_board.py", [run_host.build_mpy_tree(), fl], data)
    try:
        b.start()
        fw = b.wait_up()["firmware"]
        assert (fw["version"], fw["slot"]) == ("0.1.0", "ota_0"), fw
        b.wait_ota(lambda s: s["kept"])                # the running app keeps itself first
        code, st = b.http("POST", "/api/ota/check")
        assert code == 200 and st["available"] == "0.2.0" and st["image"] is True, st
        code, st = b.http("POST", "/api/ota/update")
        assert code == 202, st
        rc, out = b.wait_exit()                        # written, set to boot, board.reset()
        assert rc == 3, out
        assert flash.slot_bytes("ota_1")[:IMAGE_SIZE] == image("0.2.0")

        b.start()                                      # the bootloader boots ota_1, pending
        fw = b.wait_up()["firmware"]
        assert (fw["version"], fw["slot"], fw["updateState"]) == ("0.2.0", "ota_1", "applied"), fw
        st = b.wait_ota(lambda s: not s["trial"])
        fw = b.http("GET", "/api/info")[1]["firmware"]
        assert fw["lastUpdate"]["result"] == "ok" and st["state"] == "applied"
        with open(os.path.join(fl, "otadata.json")) as f:
            assert [e["state"] for e in json.load(f)["entries"]] == [flash.VALID, flash.VALID]
    finally:
        b.stop()


def test_the_new_app_is_kept_only_after_the_dtu_was_asked(esp, monkeypatch):
    # "healthy" for an image also means the DTU link did its job once: a round
    # answered, or failed for a reason outside the app, or no DTU to ask
    from gateway.ota import api as ota_api
    monkeypatch.setattr(ota_api, "healthy", lambda gw: True)
    s = esp.gw.sched
    s.enabled, s.last_ok, s.fail_since = True, None, None
    assert not ota_api.image_healthy(esp.gw)
    s.fail_since = 1.0                          # no answer (a timeout, nothing there, asleep at night)
    assert ota_api.image_healthy(esp.gw)
    esp.gw.safe_mode = {"active": True, "reason": "3 crashes"}
    assert not ota_api.image_healthy(esp.gw)    # an app in safe mode is not kept
    esp.gw.safe_mode = {"active": False, "reason": ""}
    s.fail_since, s.last_ok = None, 1.0         # an answer
    assert ota_api.image_healthy(esp.gw)
    s.last_ok, s.enabled = None, False          # no DTU configured
    assert ota_api.image_healthy(esp.gw)
    monkeypatch.setattr(ota_api, "healthy", lambda gw: False)
    assert not ota_api.image_healthy(esp.gw)
