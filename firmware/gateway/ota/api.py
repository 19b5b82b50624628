"""The update work that is not a download: the POST endpoints (see
gateway.ota.feature for the contract), staging done -> arm the loader and reboot,
and the new app's trial. Imported when needed, dropped afterwards
(Ota.unload)."""
import asyncio

from gateway.web.httpd import error, json_body, json_response
from gateway.mono import mono

_HEX = "0123456789abcdef"


def _locked(o, install=False):
    gw = o.gw
    # gateway.web.auth's guard runs first for every POST under /api/; without it
    # a set admin password must still not be bypassed
    if gw.auth is None and gw.settings.get("admin.password"):
        return error(503, "access control is not available")
    if o.busy:
        return json_response({"error": "busy: " + o.state, "state": o.state}, 409)
    if install and o.frozen:
        return json_response({"error": "this firmware has the app built in: update by flashing the release's "
                              "dtu-gateway-esp32.bin (an update by files would not fit this board's memory)",
                              "state": o.state}, 409)
    return None


async def check(o, req):
    refused = _locked(o)
    if refused:
        return refused
    why = o.can_check()
    if why:
        return json_response({"error": why, "state": o.state}, 409)
    left = o.blocked_until - mono()
    if left > 0:
        return json_response({"error": "GitHub rate limit: next check possible in %d s" % (left + 1),
                              "retry_after": int(left) + 1}, 429)
    await o.check()
    return json_response(o.status())


async def update(o, req):
    refused = _locked(o, install=True)
    if refused:
        return refused
    data = {}
    if req.body:
        data, err = json_body(req)
        if err:
            return err
    reboot = data.get("reboot", True)
    if reboot is not True and reboot is not False:
        return error(400, "reboot must be true or false", "reboot")
    for k in data:
        if k != "reboot":
            return error(400, "unknown key", k)
    if not o.available:
        return json_response({"error": "no update available: POST /api/ota/check first", "state": o.state}, 409)
    o.busy = True
    o.state, o.error, o.progress = "downloading", None, 0
    asyncio.create_task(_update(o, reboot))
    return json_response(o.status(), 202)


async def _update(o, reboot):
    try:
        from gateway.ota import check as ota_check
        head = await ota_check.download(o)
        await staged(o, head, reboot)
    except Exception as e:  # every failure ends in "error", never in a dead task
        o.fail(e)
    finally:
        o.busy = False
        o.unload()


async def upload(o, req):
    refused = _locked(o, install=True)
    if refused:
        return refused
    n = req.content_length     # over MAX_UPLOAD: the door (gateway.web.httpd, body_limits) said 413
    if not n:
        return error(411, "send the archive as the body, with a Content-Length")
    sha = req.args.get("sha256")
    if sha is not None:
        sha = sha.lower()
        if sha.startswith("sha256:"):
            sha = sha[7:]
        if len(sha) != 64 or any(c not in _HEX for c in sha):
            return error(400, "sha256 must be 64 hex digits", "sha256")
    reboot = req.args.get("reboot", "1") not in ("0", "false", "no")
    o.busy = True
    try:
        from gateway.ota import check as ota_check
        head = await ota_check.upload(o, req.stream, n, sha)
        await staged(o, head, reboot)
        return json_response(o.status())
    except Exception as e:
        o.fail(e)
        return json_response({"error": o.error, "state": o.state}, 400)
    finally:
        o.busy = False
        o.unload()


async def staged(o, head, reboot):
    gw = o.gw
    o.state, o.progress = "staged", 100
    if not o.can_apply:
        gw.events.add("ota", "%s verified and staged (not switched in: run from a source tree)"
                      % head["version"], persist=True)
        return
    o.loader.arm(head["version"], o.installed["version"])
    gw.events.add("ota", "%s verified and staged; it starts at the next boot" % head["version"],
                  persist=True)
    if reboot:
        asyncio.create_task(reboot_soon(o))


async def reboot_soon(o):
    await asyncio.sleep(o.reboot_delay)
    o.gw.events.flush(force=True)
    o.gw.board.reset()


def healthy(gw):
    """The web server listens, the DTU link's loop runs, and no part of the
    app has broken its heartbeat promise (gateway.health)."""
    api = gw.api
    if api is None or getattr(api, "server", None) is None or not gw.link.running:
        return False
    try:
        from gateway import health
    except ImportError:  # pragma: no cover - an app without heartbeats
        return True
    return not health.stale()


async def trial(o):
    """The new app on trial: confirm once healthy for confirm_stable s;
    roll back and reboot when that has not happened within confirm_window."""
    import ota_boot
    import ota_layout
    start = since = mono()
    while o.running:
        now = mono()
        if not healthy(o.gw):
            since = now
        elif now - since >= o.confirm_stable:
            o.loader.confirm()
            ota_boot.disarm()
            o.trial, o.last = False, o.loader.read_json(ota_layout.LAST)
            o.gw.events.add("ota", "updated to %s: healthy, kept" % o.installed["version"], persist=True)
            return
        if now - start > o.confirm_window:
            o.loader.rollback(o.loader.journal() or {}, "not healthy within %d s" % o.confirm_window)
            o.gw.events.add("ota", "new app not healthy: rolled back, rebooting", "error", persist=True)
            await reboot_soon(o)
            return
        await asyncio.sleep(1)
