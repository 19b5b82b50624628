"""The work behind gateway.ota.feature, imported only when a check or an update runs.

check(o):    GET {ota.api}/repos/{ota.repo}/releases/latest (and, on the
             snapshot channel, /releases/tags/snapshot) with a User-Agent
             and If-None-Match; the answer is streamed to ota/api.json and
             only the needed fields are picked (gateway.ota.releases); then the
             release's version.json (checked against the asset's size and
             digest) says version, date, boards and the archive's sha256.
download(o): streams the archive through gateway.ota.stage.Stager, or on a
             frozen ESP32 with two app slots the app image into the idle
             slot (gateway.ota.image.ImageWriter).
upload(o, stream, n, sha256): the same for a body sent to the gateway.
A rate-limit answer (403/429 with x-ratelimit-remaining 0, or Retry-After)
blocks further API calls until GitHub's reset time.
"""
import hashlib
import sys

from gateway.ota import names
from gateway.mono import mono
from httpclient import get
from gateway.ota.stage import Stager, hexdigest

MAX_API = 524288              # bytes of a release JSON at most
MAX_VERSION_JSON = 4096
API_FILE = "ota/api.json"


class CheckError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def user_agent(o):
    return "dtu-gateway/%s (%s)" % (o.installed["version"], o.gw.board.name)


def ca(o):
    """The CA list for HTTPS: data/ota_ca.pem|der (private mirrors, tests),
    else the app's ca.der; None on CPython = the system's."""
    d = o.gw.board.data_dir
    for path in (d + "/ota_ca.pem", d + "/ota_ca.der", o.root + "app/ca.der"):
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            pass
    return None


def mp_version():
    impl = sys.implementation
    return tuple(impl.version[:3]) if impl.name == "micropython" else None


def _headers_rate(o, r):
    rem, reset = r.headers.get("x-ratelimit-remaining"), r.headers.get("x-ratelimit-reset")
    if rem is not None and rem.isdigit():
        o.rate = {"remaining": int(rem), "reset": int(reset) if reset and reset.isdigit() else None}
    limited = r.status in (403, 429) and (rem == "0" or "retry-after" in r.headers)
    if not limited:
        return
    ra = r.headers.get("retry-after", "")
    if ra.isdigit():
        wait = int(ra)
    elif reset and reset.isdigit():
        wait = int(reset) - int(o.gw.board.time())
    else:
        wait = 3600
    wait = min(max(wait, 60), 86400) + 5
    o.blocked_until = mono() + wait
    raise CheckError("GitHub rate limit reached: no check for %d min" % ((wait + 59) // 60))


async def _release(o, which, missing_ok=False):
    g = o.gw.settings.get
    url = "%s/repos/%s/releases/%s" % (g("ota.api").rstrip("/"), g("ota.repo"), which)
    hdrs = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    cached = o.etags.get(url)
    if cached:
        hdrs["If-None-Match"] = cached[0]
    r = await get(url, hdrs, ca(o), user_agent(o))
    ld = o.loader
    try:
        _headers_rate(o, r)
        if r.status == 304 and cached:
            return cached[1]
        if r.status == 404:
            if missing_ok:
                return None
            raise CheckError("no %s found in %s (404)" % (
                "snapshot" if "tags/" in which else "release", g("ota.repo")))
        if r.status != 200:
            raise CheckError("GitHub answered %d to %s" % (r.status, url))
        from gateway.ota.releases import pick_release
        ld.mkdirs("ota")
        f = ld.fs.open(ld.p(API_FILE), "wb")
        try:
            buf = memoryview(bytearray(512))
            total = 0
            while True:
                n = await r.readinto(buf)
                if not n:
                    break
                total += n
                if total > MAX_API:
                    raise CheckError("release JSON larger than %d bytes" % MAX_API)
                f.write(buf[:n])
        finally:
            f.close()
        f = ld.fs.open(ld.p(API_FILE), "rb")
        try:
            rel = pick_release(f, names.DEVICE_ASSETS)
        except ValueError as e:
            raise CheckError("bad release JSON: %s" % e)
        finally:
            f.close()
    finally:
        await r.close()
        ld.remove(API_FILE)
    if not isinstance(rel.get("tag_name"), str) or rel.get("draft"):
        raise CheckError("bad release JSON: no tag_name")
    info = await _version_json(o, rel)
    out = {"version": info["version"], "date": info.get("date") or rel.get("published_at") or "",
           "tag": rel["tag_name"], "assets": rel["assets"], "info": info}
    etag = r.headers.get("etag")
    if etag:
        o.etags[url] = (etag, out)
    return out


def _digest(asset):
    d = asset.get("digest")
    if isinstance(d, str) and d.startswith("sha256:"):
        return d[7:].lower()
    return None


async def _version_json(o, rel):
    a = rel["assets"].get(names.VERSION)
    if not a or not isinstance(a.get("browser_download_url"), str):
        raise CheckError("release %s has no %s" % (rel["tag_name"], names.VERSION))
    r = await get(a["browser_download_url"], None, ca(o), user_agent(o))
    try:
        if r.status != 200:
            raise CheckError("%s: HTTP %d" % (names.VERSION, r.status))
        body = await r.read_all(MAX_VERSION_JSON)
    finally:
        await r.close()
    if isinstance(a.get("size"), int) and len(body) != a["size"]:
        raise CheckError("%s: %d bytes, the release says %d" % (names.VERSION, len(body), a["size"]))
    want = _digest(a)
    if want is not None and hexdigest(hashlib.sha256(body)) != want:
        raise CheckError("%s: sha256 does not match the release" % names.VERSION)
    import json
    try:
        info = json.loads(body)
        names.parse_version(info["version"])
        arch = info["archive"]
        if not isinstance(arch["sha256"], str) or not isinstance(arch["size"], int):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise CheckError("%s of %s is not valid" % (names.VERSION, rel["tag_name"]))
    return info


def _app_image(info):
    """version.json's {"size", "sha256"} of the ESP32 app image, or None."""
    a = info.get("esp32_app")
    if isinstance(a, dict) and isinstance(a.get("size"), int) and isinstance(a.get("sha256"), str):
        return a
    return None


def compatible(o, info):
    """None when this board can run the release, else why not."""
    boards = info.get("boards") or ()
    if o.gw.board.name not in boards:
        return "not for %s boards" % o.gw.board.name
    if o.image and _app_image(info) is None:
        return "it has no app image (%s) for an update in place" % names.ESP32_APP
    need, have = info.get("min_micropython"), mp_version()
    if need and have is not None:
        try:
            if tuple(names.parse_version(need)[:3]) > have:
                return "needs MicroPython %s" % need
        except ValueError:
            return "bad min_micropython"
    return None


async def check(o):
    o.state, o.error, o.progress = "checking", None, None
    snapshot = o.gw.settings.get("ota.channel") == "snapshot"
    rel = await _release(o, "latest", missing_ok=snapshot)
    snap = await _release(o, "tags/" + names.SNAPSHOT_TAG) if snapshot else None
    best = rel
    if snap is not None and (best is None or names.newer(snap["version"], best["version"])):
        best = snap
    was = o.best["version"] if o.best and o.available else None
    o.rel, o.snap, o.best = rel, snap, best
    o.checked = int(o.gw.board.time())
    why = compatible(o, best["info"]) if best else None
    o.available = best is not None and why is None and names.newer(best["version"], o.installed["version"])
    o.state = "available" if o.available else "idle"
    if o.image:
        from gateway.ota.image import armed
        if armed():                         # set to boot, waiting for the restart
            o.state = "staged"
    else:
        j = o.loader.journal()
        if j and j.get("op") == "apply":    # staged, waiting for the reboot
            o.state = "staged"
    if why and names.newer(best["version"], o.installed["version"]):
        o.error = "%s is out but %s" % (best["version"], why)
    if o.available and best["version"] != was:
        o.gw.events.add("ota", "update available: %s" % best["version"], persist=True)


def _stager(o, sha256, size, manifest_sha256=None):
    return Stager(o.loader, expect_sha256=sha256, expect_size=size, manifest_sha256=manifest_sha256,
                  board=o.gw.board.name, mp_version=mp_version())


def _sink(o, sha256, size, manifest_sha256=None):
    """Where the download goes: the idle app slot (an image update) or the staging folder."""
    if o.image:
        from gateway.ota.image import ImageWriter, next_slot
        return ImageWriter(next_slot(), size, sha256)
    return _stager(o, sha256, size, manifest_sha256)


def _done(o, sink, version):
    """Verified: an image is set to boot (gateway.ota.image.install), an archive staged."""
    if not o.image:
        return sink.finish()
    from gateway.ota.image import install, label
    install(sink, o.gw.board.data_dir, version, o.installed["version"])
    return {"version": version, "slot": label(sink.part)}


async def download(o):
    best = o.best
    name = names.ESP32_APP if o.image else names.ARCHIVE
    a = best["assets"].get(name)
    if not a or not isinstance(a.get("browser_download_url"), str):
        raise CheckError("release %s has no %s" % (best["tag"], name))
    want = _app_image(best["info"]) if o.image else best["info"]["archive"]
    if want is None:
        raise CheckError("version.json of %s gives no %s" % (best["tag"], name))
    sha, size = want["sha256"].lower(), want["size"]
    d = _digest(a)
    if d is not None and d != sha:
        raise CheckError("GitHub's digest and version.json disagree about %s" % name)
    if isinstance(a.get("size"), int) and a["size"] != size:
        raise CheckError("wrong size: the release lists %d bytes, version.json %d" % (a["size"], size))
    man = best["info"].get("manifest") or {}
    o.state, o.error, o.progress = "downloading", None, 0
    st = _sink(o, sha, size, man.get("sha256"))
    r = None
    try:
        r = await get(a["browser_download_url"], None, ca(o), user_agent(o), timeout=30)
        if r.status != 200:
            raise CheckError("download failed: HTTP %d" % r.status)
        if r.length is not None and r.length != size:
            raise CheckError("wrong size: the server sends %d bytes, the release says %d" % (r.length, size))
        buf = memoryview(bytearray(1024))
        while True:
            n = await r.readinto(buf)
            if not n:
                break
            st.feed(buf[:n])
            o.progress = st.fed * 100 // size if size else None
        o.state = "verifying"
        head = _done(o, st, best["version"])
        if head["version"] != best["version"]:
            raise CheckError("the archive holds %s, not %s" % (head["version"], best["version"]))
        return head
    except Exception:
        st.abort()
        raise
    finally:
        if r is not None:
            await r.close()


async def upload(o, stream, n, sha256=None):
    import asyncio
    o.state, o.error, o.progress = "downloading", None, 0
    st = _sink(o, sha256, n)
    try:
        left = n
        while left:
            k = min(left, 1024)
            data = await asyncio.wait_for(stream.read(k), 30)
            if not data:
                raise CheckError("upload cut short: %d of %d bytes" % (n - left, n))
            st.feed(data)
            left -= len(data)
            o.progress = (n - left) * 100 // n
        o.state = "verifying"
        return _done(o, st, "an uploaded image (sha256 %s...)" % sha256[:12] if o.image else None)
    except Exception:
        st.abort()
        raise
