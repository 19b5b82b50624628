"""Updates end to end, against a local stand-in for GitHub (tests_host/support/gh_standin.py):
the API and the asset host on two loopback host names and ports, over HTTP
and over HTTPS with a test CA, with GitHub's 302 to the asset host, its
rate-limit answers and its 404s.

The releases are real bundles made by tools/bundle.py (0.1.0 installed,
0.2.0 released, 0.2.1-snapshot.7 on the snapshot channel). Most tests run the
gateway in this process (CPython) on a copy of the 0.1.0 bundle as the
board's filesystem; the last ones run the real bundle on the unix
MicroPython (tests_host/support/bundle_board.py), update it over HTTPS, reboot it
and check that 0.2.0 runs and confirms itself, and that a release whose app
crashes is rolled back.
"""
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from support.env import ROOT, micropython_bin
from support.board_proc import BoardProc
from support.inproc import with_test_client
from support.gh_standin import Standin, make_ca
from support.image_release import make_release
from proc_util import free_port

sys.path.insert(0, os.path.join(ROOT, "tools"))
import bundle  # noqa: E402
import ota_layout  # noqa: E402  (the layout)
import ota_swap  # noqa: E402
from gateway.ota import names as ota_names  # noqa: E402

REPO = "dtu-gateway/dtu-gateway"
IMAGES = {ota_names.ESP32_IMAGE: b"esp32 image", ota_names.ESP8266_ROMFS: b"romfs image"}


# ---- releases and the stand-in -----------------------------------------------------

def release_assets(d):
    out = dict(IMAGES)
    for name in (ota_names.ARCHIVE, ota_names.MANIFEST, ota_names.VERSION):
        with open(os.path.join(d, "release", name), "rb") as f:
            out[name] = f.read()
    return out


def files_of(root):
    """{path: sha256} of the app and the loader files on a 'board'."""
    out = {}
    for path, _, h in bundle.bundle_files(root):
        if path.startswith("app/") or path in ota_layout.LOADER:
            out[path] = h
    return out


@pytest.fixture(scope="module")
def rel(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("releases"))
    out = {"old": make_release(tmp, "0.1.0", "release"), "new": make_release(tmp, "0.2.0", "release"),
           "snap": make_release(tmp, "0.2.1-snapshot.7", "snapshot"), "certs": make_ca(tmp)}
    for k in ("old", "new", "snap"):
        out[k + "_files"] = files_of(os.path.join(out[k], "bundle"))
    return out


@pytest.fixture(params=["http", "https"])
def gh(request, rel):
    s = Standin(REPO, certs=rel["certs"] if request.param == "https" else None)
    s.add_release("v0.2.0", release_assets(rel["new"]))
    s.add_release(ota_names.SNAPSHOT_TAG, release_assets(rel["snap"]), prerelease=True)
    yield s
    s.close()


# ---- the gateway in this process ---------------------------------------------------

class Rig:
    """A 'board' (its filesystem a copy of a bundle) and a gateway on it."""

    def __init__(self, tmp, rel, gh, channel="release", installed="old"):
        self.tmp, self.rel, self.gh = tmp, rel, gh
        self.fs = os.path.join(tmp, "fs")
        self.data = os.path.join(tmp, "data")
        shutil.copytree(os.path.join(rel[installed], "bundle"), self.fs)
        os.makedirs(self.data)
        with open(os.path.join(self.data, "settings.json"), "w") as f:
            json.dump({"ota.api": gh.api_url, "ota.channel": channel, "ota.repo": REPO}, f)
        if gh.certs:
            shutil.copyfile(gh.certs["ca"], os.path.join(self.data, "ota_ca.pem"))
        self.resets = []
        self.boot()

    def boot(self):
        from board.host import Board, HostWifi
        from gateway.app import Gateway
        b = Board(data_dir=self.data, chip_id="00c0ffee", wifi=HostWifi(fixed=True))
        b.ota_root = self.fs
        b.reset = lambda: self.resets.append(time.time())
        self.gw = Gateway(b)
        self.gw.ota.reboot_delay = 0
        return self.gw

    def reboot(self):
        """What the board does at the next start: the loader, then the app."""
        st = ota_swap.Loader(self.fs).recover()
        self.boot()
        return st

    def files(self):
        return files_of(self.fs)

    def call(self, fn):
        return with_test_client(self.gw, fn)

    async def settle(self, states=("idle", "available", "staged", "error", "applied"), timeout=20):
        t0 = time.time()
        while self.gw.ota.state not in states or self.gw.ota.busy:
            assert time.time() - t0 < timeout, "OTA stuck in %s" % self.gw.ota.state
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)          # the reboot task (reboot_delay 0)


@pytest.fixture
def rig(tmp_path, rel, gh):
    return Rig(str(tmp_path), rel, gh)


def check(c):
    async def go():
        r = await c.post("/api/ota/check")
        info = await c.get("/api/info")
        return r.status_code, r.json, info.json["firmware"]
    return go()


def test_update_detected_on_each_channel(tmp_path, rel, gh):
    r = Rig(str(tmp_path / "a"), rel, gh)
    code, st, fw = r.call(check)
    assert code == 200, st
    assert (st["state"], st["error"], st["available"], st["version"]) == ("available", None, "0.2.0", "0.1.0")
    assert fw["version"] == "0.1.0" and fw["updateAvailable"] == 1 and fw["selectedUpdateChannel"] == "0"
    assert fw["versionServer"] == fw["versionServerRelease"] == "0.2.0"
    assert st["rateLimit"]["remaining"] == 59
    # GitHub's rules: a User-Agent on every API call, the API's media type; the
    # asset came from the other host after the 302, and no API call was spent on it
    api = [e for e in gh.log if e[0] == "api" and e[2].startswith("/repos/")]
    assert api and all(e[3].get("User-Agent", "").startswith("dtu-gateway/0.1.0") for e in api)
    assert all(e[3].get("Accept") == "application/vnd.github+json" for e in api)
    assert any(e[0] == "assets" and e[2].split("?")[0].endswith("/version.json") for e in gh.log)
    assert not any("Authorization" in e[3] for e in gh.log)

    s = Rig(str(tmp_path / "b"), rel, gh, channel="snapshot")
    code, st, fw = s.call(check)
    assert (st["state"], st["available"], st["snapshot"], st["release"]) == \
        ("available", "0.2.1-snapshot.7", "0.2.1-snapshot.7", "0.2.0")
    assert fw["selectedUpdateChannel"] == "1"
    assert (fw["versionServer"], fw["versionServerRelease"]) == ("0.2.1-snapshot.7", "0.2.0")
    assert fw["versiondateServer"] and fw["versiondateServerRelease"]


def test_snapshot_channel_before_the_first_release(tmp_path, rel, gh):
    gh.releases = [r for r in gh.releases if r["prerelease"]]     # /releases/latest: 404
    r = Rig(str(tmp_path), rel, gh, channel="snapshot")
    code, st, fw = r.call(check)
    assert (st["state"], st["available"], st["release"]) == ("available", "0.2.1-snapshot.7", None), st
    assert (fw["versionServer"], fw["versionServerRelease"]) == ("0.2.1-snapshot.7", "")


def test_up_to_date_and_etag(tmp_path, rel, gh):
    r = Rig(str(tmp_path), rel, gh, installed="new")
    code, st, fw = r.call(check)
    assert (st["state"], st["available"], fw["updateAvailable"], fw["version"]) == ("idle", None, 0, "0.2.0")
    left = gh.rate_remaining

    async def again(c):
        return (await c.post("/api/ota/check")).json
    st = r.call(again)                      # If-None-Match: a 304 costs nothing
    assert st["state"] == "idle" and gh.rate_remaining == left
    assert any(e[3].get("If-None-Match") for e in gh.log if e[0] == "api")


def untouched(r):
    assert r.files() == r.rel["old_files"]
    ld = ota_swap.Loader(r.fs)
    assert ld.journal() is None and not ld.exists(ota_layout.NEW) and not ld.exists(ota_layout.STAGED)


@pytest.mark.parametrize("fault, text", [
    ("tamper", "sha256 mismatch"), ("extra", "wrong size"), ("truncate", "cut short"), ("404", "HTTP 404")])
def test_download_faults_end_in_error_with_the_old_app_untouched(rig, fault, text):
    async def go(c):
        assert (await c.post("/api/ota/check")).json["state"] == "available"
        rig.gh.fault[ota_names.ARCHIVE] = fault
        r = await c.post("/api/ota/update", body={"reboot": True})
        assert r.status_code == 202 and r.json["state"] == "downloading"
        await rig.settle()
        return (await c.get("/api/ota")).json
    st = rig.call(go)
    assert st["state"] == "error" and text in st["error"], st
    assert st["progress"] is None
    untouched(rig)
    assert not rig.resets
    assert text.encode() in b"".join(rig.gw.events.json_chunks())


@pytest.mark.parametrize("fault, text", [
    ("api404", "no release found"), ("rate403", "rate limit"), ("rate429", "rate limit"),
    ("version404", "version.json: HTTP 404"), ("status500", "GitHub answered 500")])
def test_check_faults_end_in_error(rig, fault, text):
    gh = rig.gh
    if fault == "api404":
        gh.releases = []
    elif fault.startswith("rate"):
        gh.rate_remaining, gh.limit_style = 0, int(fault[4:])
    elif fault == "version404":
        gh.fault[ota_names.VERSION] = "404"
    else:
        gh.api_status = 500
    def api_calls():
        return len([e for e in gh.log if e[0] == "api" and e[2].startswith("/repos/")])
    n_api = api_calls()

    async def go(c):
        first = await c.post("/api/ota/check")
        second = await c.post("/api/ota/check")
        return first.json, second.status_code, second.json
    st, code2, st2 = rig.call(go)
    assert st["state"] == "error" and text in st["error"], st
    untouched(rig)
    calls = api_calls() - n_api
    if fault.startswith("rate"):
        # blocked until GitHub's reset / Retry-After: the second check never reaches GitHub
        assert code2 == 429 and st2["retry_after"] > 60 and calls == 1
        assert rig.gw.ota.next_check - time.monotonic() > 60
    else:
        assert code2 == 200 and calls == 2


def test_good_update_staged_applied_and_confirmed(rig):
    gh = rig.gh

    async def go(c):
        await c.post("/api/ota/check")
        r = await c.post("/api/ota/update")
        assert r.status_code == 202
        await rig.settle()
        return (await c.get("/api/ota")).json
    st = rig.call(go)
    assert (st["state"], st["error"], st["progress"]) == ("staged", None, 100), st
    assert rig.resets, "no reboot after staging"
    assert rig.files() == rig.rel["old_files"]              # nothing switched before the reboot
    assert ota_swap.Loader(rig.fs).journal()["op"] == "apply"
    assert any(e[0] == "assets" and ota_names.ARCHIVE in e[2] for e in gh.log)

    boot = rig.reboot()                                      # the loader switches, the new app starts
    assert boot["op"] == "trial"
    assert rig.files() == rig.rel["new_files"]
    o = rig.gw.ota
    assert (o.state, o.trial, o.installed["version"]) == ("applied", True, "0.2.0")
    o.confirm_stable = 0.3

    async def run_until_confirmed():
        port = free_port()
        task = asyncio.create_task(rig.gw.run("127.0.0.1", port))
        t0 = time.time()
        while o.trial:
            assert time.time() - t0 < 10, "the new app never confirmed itself"
            await asyncio.sleep(0.05)
        rig.gw.stop()
        await asyncio.wait_for(task, 5)
    asyncio.run(run_until_confirmed())
    assert o.last["result"] == "ok" and o.last["version"] == "0.2.0"
    assert ota_swap.Loader(rig.fs).journal() is None
    assert o.status()["state"] == "applied"
    assert rig.reboot() == {"op": None}
    assert rig.files() == rig.rel["new_files"]
    assert rig.gw.ota.firmware()["version"] == "0.2.0"


def test_app_that_never_gets_healthy_is_rolled_back(rig):
    async def go(c):
        await c.post("/api/ota/check")
        await c.post("/api/ota/update")
        await rig.settle()
    rig.call(go)
    rig.reboot()
    o = rig.gw.ota
    assert o.trial
    o.confirm_window, o.confirm_stable = 0.5, 0.1
    rig.resets.clear()
    from gateway.ota import api as ota_api
    asyncio.run(asyncio.wait_for(ota_api.trial(o), 10))     # no web server: never healthy
    assert rig.resets
    assert rig.files() == rig.rel["old_files"]
    assert rig.reboot() == {"op": None}
    assert rig.gw.ota.installed["version"] == "0.1.0"


def test_unconfirmed_app_rolled_back_by_the_next_boot(rig):
    async def go(c):
        await c.post("/api/ota/check")
        await c.post("/api/ota/update")
        await rig.settle()
    rig.call(go)
    assert rig.reboot()["op"] == "trial"                      # it crashes before confirming ...
    st = rig.reboot()                                          # ... so the next boot rolls back
    assert st["op"] == "rolled back"
    assert rig.files() == rig.rel["old_files"]
    o = rig.gw.ota
    assert o.state == "error" and "rolled back" in o.error and o.installed["version"] == "0.1.0"


def test_manual_upload(rig):
    with open(os.path.join(rig.rel["new"], "release", ota_names.ARCHIVE), "rb") as f:
        archive = f.read()
    digest = hashlib.sha256(archive).hexdigest()

    async def go(c):
        big = await c.post("/api/config", body={"timezone": "x" * 3000})
        bad = await c.post("/api/ota/upload?sha256=" + "0" * 64 + "&reboot=0", body=archive)
        bad_files = rig.files()
        short = await c.post("/api/ota/upload?reboot=0", body=archive[:len(archive) // 2])
        good = await c.post("/api/ota/upload?reboot=0&sha256=sha256:" + digest, body=archive)
        return big.status_code, bad, bad_files, short, good
    big, bad, bad_files, short, good = rig.call(go)
    assert big == 413                                          # the 2 KB cap stays for the rest
    assert bad.status_code == 400 and "sha256 of the archive" in bad.json["error"]
    assert bad_files == rig.rel["old_files"]
    assert short.status_code == 400 and "truncated" in short.json["error"]
    assert good.status_code == 200 and good.json["state"] == "staged", good.json
    assert not rig.resets
    assert rig.reboot()["op"] == "trial" and rig.files() == rig.rel["new_files"]


def test_upload_needs_the_admin_password(rig):
    rig.gw.settings.update({"admin.password": "secret-pw"})

    async def go(c):
        r = await c.post("/api/ota/upload", body=b"x" * 3000)
        u = await c.post("/api/ota/update")
        k = await c.post("/api/ota/check")
        g = await c.get("/api/ota")
        return r.status_code, u.status_code, k.status_code, g.status_code
    assert rig.call(go) == (401, 401, 401, 200)
    untouched(rig)


def test_power_cut_at_every_step_of_the_real_swap(tmp_path, rel):
    """The 0.2.0 bundle staged over the 0.1.0 one; the power goes at every
    filesystem operation of arm, switch and confirm (see test_ota_boot for
    the fault-injecting filesystem); the next boot has one complete app."""
    from support.otafs import CrashFs, QuickFs, run_until_cut
    root = str(tmp_path / "fs")

    def fresh():
        # hard links: the loader never writes into a file, it writes new ones and renames
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(os.path.join(rel["old"], "bundle"), root, copy_function=os.link)
        shutil.copytree(os.path.join(rel["new"], "bundle"), os.path.join(root, "ota", "new"),
                        copy_function=os.link)
        with open(os.path.join(root, ota_layout.STAGED), "w") as f:
            f.write('{"version": "0.2.0"}')

    def steps(fs):
        ld = ota_swap.Loader(root, fs)
        ld.arm("0.2.0", "0.1.0")
        ld.recover()
        ld.confirm()
    fresh()
    fs = CrashFs()
    steps(fs)
    total = fs.n
    assert total > 20
    seen = set()
    for after in (False, True):
        for n in range(total):
            fresh()
            assert run_until_cut(CrashFs(at=n, after=after), steps)
            ota_swap.Loader(root, QuickFs()).recover()
            got = files_of(root)
            which = "old" if got == rel["old_files"] else "new" if got == rel["new_files"] else None
            assert which, "cut at %d left a mixed app" % n
            seen.add(which)
    assert seen == {"old", "new"}


# ---- the real bundle on the unix MicroPython ------------------------------------------

class Board(BoardProc):
    """The bundle in ROOT run by the unix MicroPython as a board would."""

    def __init__(self, root, data):
        super().__init__("bundle_board.py", [root], data)


def broken_release(tmp, rel, version):
    """A release whose app raises at start (gateway/app.mpy replaced)."""
    d = os.path.join(tmp, version)
    b = os.path.join(d, "bundle")
    shutil.copytree(os.path.join(rel["new"], "bundle"), b)
    src = os.path.join(d, "app.py")
    with open(src, "w") as f:
        f.write("raise RuntimeError('this release is broken')\n")
    bundle._compile(src, os.path.join(b, "app", "gateway", "app.mpy"), "gateway/app.py")
    meta = {"version": version, "channel": "release", "date": "2026-11-22T00:00:00Z", "commit": "", "epoch": 0}
    with open(os.path.join(b, "app", "version.json"), "w") as f:
        json.dump({k: meta[k] for k in ("version", "channel", "date", "commit")}, f)
    bundle.build_release(b, os.path.join(d, "release"), meta)
    return d


@pytest.mark.usefixtures("micropython")
def test_micropython_bundle_updates_over_https_and_rolls_back_a_broken_release(tmp_path, rel):
    gh = Standin(REPO, certs=rel["certs"])
    gh.add_release("v0.2.0", release_assets(rel["new"]))
    fs, data = str(tmp_path / "fs"), str(tmp_path / "data")
    shutil.copytree(os.path.join(rel["old"], "bundle"), fs)
    os.makedirs(data)
    with open(os.path.join(data, "settings.json"), "w") as f:
        json.dump({"ota.api": gh.api_url, "ota.repo": REPO}, f)
    shutil.copyfile(rel["certs"]["ca"], os.path.join(data, "ota_ca.pem"))
    b = Board(fs, data)
    try:
        b.start()
        assert b.wait_up()["firmware"]["version"] == "0.1.0"
        code, st = b.http("POST", "/api/ota/check")
        assert code == 200 and st["state"] == "available" and st["available"] == "0.2.0", st
        code, st = b.http("POST", "/api/ota/update", {"reboot": True})
        assert code == 202, st
        rc, out = b.wait_exit()                     # staged, then board.reset()
        assert rc == 3, out
        assert files_of(fs) == rel["old_files"]

        b.start()                                   # the reboot: the loader switches to 0.2.0
        fw = b.wait_up()["firmware"]
        assert fw["version"] == "0.2.0" and fw["updateState"] == "applied"
        st = b.wait_ota(lambda s: not s["trial"])
        assert st["last"]["result"] == "ok" and st["state"] == "applied"
        assert files_of(fs) == rel["new_files"]

        # a broken release: it is switched in, crashes, and the next boot rolls it back
        broken = broken_release(str(tmp_path), rel, "0.3.0")
        gh.add_release("v0.3.0", release_assets(broken))
        code, st = b.http("POST", "/api/ota/check")
        assert st["available"] == "0.3.0", st
        b.http("POST", "/api/ota/update")
        assert b.wait_exit()[0] == 3
        b.start()
        rc, out = b.wait_exit()
        assert rc != 0 and "this release is broken" in out
        b.start()
        fw = b.wait_up()["firmware"]
        assert fw["version"] == "0.2.0"
        st = b.http("GET", "/api/ota")[1]
        assert st["state"] == "error" and "rolled back" in st["error"], st
        assert files_of(fs) == rel["new_files"]

        # a manual upload (the ESP8266 path) to the MicroPython gateway's real
        # server: streamed past the 2 KB cap, refused with a wrong digest,
        # staged and switched in with the right one
        with open(os.path.join(rel["old"], "release", ota_names.ARCHIVE), "rb") as f:
            archive = f.read()
        code, st = b.upload(archive, "0" * 64)
        assert code == 400 and "sha256 of the archive" in st["error"], st
        assert files_of(fs) == rel["new_files"]
        code, st = b.upload(archive, hashlib.sha256(archive).hexdigest())
        assert code == 200 and st["state"] == "staged", st
        assert b.wait_exit()[0] == 3
        b.start()
        assert b.wait_up()["firmware"]["version"] == "0.1.0"
        assert files_of(fs) == rel["old_files"]
    finally:
        b.stop()
        gh.close()


def test_https_with_an_unknown_ca_is_refused(tmp_path, rel):
    """Strict TLS on the update path: the stand-in's test CA is not among
    the roots the bundle ships, so without data/ota_ca.pem the check fails."""
    gh = Standin(REPO, certs=rel["certs"])
    gh.add_release("v0.2.0", release_assets(rel["new"]))
    try:
        r = Rig(str(tmp_path), rel, gh)
        os.remove(os.path.join(r.data, "ota_ca.pem"))
        code, st, fw = r.call(check)
        assert st["state"] == "error" and "CERTIFICATE_VERIFY_FAILED" in st["error"], st
        assert not [e for e in gh.log if e[0] == "api"]        # no request got through
        untouched(r)
    finally:
        gh.close()


MP_TLS = """
import sys, asyncio
sys.path[:0] = [%r, %r]
from httpclient import get, HttpError
async def one(url, ca):
    try:
        r = await get(url, {"Accept": "application/vnd.github+json"}, ca, "t")
        body = await r.read_all(200000)
        await r.close()
        return "%%d %%d" %% (r.status, len(body))
    except HttpError as e:
        return "error " + e.message
async def main():
    with open(%r, "rb") as f:
        ca = f.read()
    with open(%r, "rb") as f:
        other = f.read()
    for url in (%r, %r):
        print(await one(url, ca))
        print(await one(url, other))
asyncio.run(main())
"""


@pytest.mark.usefixtures("micropython")
def test_micropython_tls_is_strict(tmp_path, rel):
    """The unix MicroPython's SSLContext defaults to no certificate checks;
    lib/tlsctx.py sets CERT_REQUIRED: the stand-in answers with the test CA, and
    is refused with GitHub's roots (app/ca.der), on the API host (IP
    certificate) and after the 302 on the asset host (DNS name)."""
    gh = Standin(REPO, certs=rel["certs"])
    gh.add_release("v0.2.0", release_assets(rel["new"]))
    try:
        api = gh.api_url + "/repos/%s/releases/latest" % REPO
        asset = "%s/%s/releases/download/v0.2.0/%s" % (gh.api_url, REPO, ota_names.VERSION)
        script = MP_TLS % (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "lib"), rel["certs"]["ca"],
                           os.path.join(rel["old"], "bundle", "app", "ca.der"), api, asset)
        r = subprocess.run([micropython_bin(), "-X", "heapsize=512k", "-c", script],
                           capture_output=True, text=True, timeout=60)
        lines = r.stdout.strip().splitlines()
        assert r.returncode == 0 and len(lines) == 4, r.stdout + r.stderr
        assert lines[0].startswith("200 ") and lines[2].startswith("200 "), lines
        for refused in (lines[1], lines[3]):      # mbedTLS: the chain does not end at a trusted root
            assert refused.startswith("error ") and ("CA" in refused or "signed" in refused), lines
        assert int(lines[2].split()[1]) == len(release_assets(rel["new"])[ota_names.VERSION])
    finally:
        gh.close()


def test_esp8266_cannot_check_github_but_takes_an_upload(rig):
    """ESP8266: no HTTPS with certificate checks (axTLS), so the gateway does
    not call GitHub at all; the page fetches the release and uploads it."""
    rig.gw.board.name = "esp8266"
    rig.gw.settings.update({"ota.api": "https://api.github.com"})
    with open(os.path.join(rig.rel["new"], "release", ota_names.ARCHIVE), "rb") as f:
        archive = f.read()

    async def go(c):
        k = await c.post("/api/ota/check")
        st = (await c.get("/api/ota")).json
        up = await c.post("/api/ota/upload?reboot=0&sha256=" + hashlib.sha256(archive).hexdigest(), body=archive)
        return k, st, up
    k, st, up = rig.call(go)
    assert k.status_code == 409 and "cannot check GitHub over HTTPS" in k.json["error"]
    assert "cannot check" in st["cannotCheck"]
    assert not [e for e in rig.gh.log if e[0] == "api"]
    assert up.status_code == 200 and up.json["state"] == "staged", up.json


@pytest.mark.parametrize("python", ["cpython", "micropython"])
def test_frozen_is_known_by_the_frozen_manifests_marker(tmp_path, python):
    """gateway.ota.feature.FROZEN is True where the module frozen_app can be imported,
    which only a firmware built from tools/bundle.py frozen-manifest has, and
    False for the app from files (host mode, .mpy files, ROMFS: see
    test_bundle.py). Not from __file__: a real frozen build gives
    gateway/ota/feature.py, without the ".frozen/" prefix (test_bundle.py's stand-in
    and README "Updates"), and the ESP8266 gives none."""
    exe = sys.executable if python == "cpython" else micropython_bin()
    if not exe:
        pytest.skip("unix MicroPython not installed")
    bundle.write_frozen_manifest(str(tmp_path / "m.py"), "host", "unix")
    script = """
import sys
sys.path[:0] = %r
import gateway.ota.feature
b = gateway.ota.feature.BUILT
print(gateway.ota.feature.FROZEN, "frozen_app" in sys.modules, b["version"] if b else None)
"""
    paths = [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "lib"), os.path.join(ROOT, "tools", "host_shims")]
    built = bundle.version_for("release")          # the version the frozen build says it is
    for extra, want in (([], "False False None"), ([str(tmp_path / "m_modules")], "True False " + built)):
        r = subprocess.run([exe, "-c", script % (extra + paths)], cwd=str(tmp_path),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == want.split(), (extra, r.stdout)


def test_an_app_frozen_into_the_firmware_is_not_updated_by_files(rig):
    """The release's ESP32 image (app frozen in): update files would shadow
    the frozen modules and load the app into the heap. The check still
    reports the new version; installing it is refused, nothing is written."""
    assert rig.gw.ota.frozen is False                # a gateway run from files
    rig.gw.ota.frozen = True
    with open(os.path.join(rig.rel["new"], "release", ota_names.ARCHIVE), "rb") as f:
        archive = f.read()

    async def go(c):
        k = await c.post("/api/ota/check")
        u = await c.post("/api/ota/update")
        up = await c.post("/api/ota/upload?reboot=0", body=archive)
        return k, u, up, (await c.get("/api/ota")).json
    k, u, up, st = rig.call(go)
    assert k.status_code == 200 and st["available"] == "0.2.0" and st["frozen"] is True
    for r in (u, up):
        assert r.status_code == 409 and "flashing the release's dtu-gateway-esp32.bin" in r.json["error"]
    untouched(rig)
    assert not rig.resets and not [e for e in rig.gh.log if e[0] == "assets" and ota_names.ARCHIVE in e[2]]
