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
    if install and o.frozen and not o.image:
        return json_response({"error": "this firmware has the app built in: update by flashing the release's "
                              "dtu-gateway-esp32.bin (an update by files would not fit this board's memory)",
                              "state": o.state}, 409)
    if install and o.image:
        why = o.image_blocked()
        if why:
            return json_response({"error": why, "state": o.state}, 409)
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
    if o.image and sha is None:
        return error(400, "an app image needs its sha256 (?sha256=<hex>, from version.json)", "sha256")
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
    if o.image:
        gw.events.add("ota", "%s written to %s and checked; it starts at the next boot, the bootloader "
                      "goes back to %s unless it is kept" % (head["version"], head["slot"], o.slot),
                      persist=True)
        if reboot:
            asyncio.create_task(reboot_soon(o))
        return
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


def image_healthy(gw):
    """healthy(), not in safe mode, the settings read and the DTU asked once:
    a round answered, or ended without an answer for a reason outside the app
    (no DTU there, a timeout, the DTU asleep at night), or no DTU to ask."""
    s = gw.sched
    return healthy(gw) and not gw.safe_mode["active"] and gw.settings is not None and (
        s.last_ok is not None or s.fail_since is not None or not s.enabled)


async def healthy_for(o, ok, window):
    """True once ok(gw) has held for o.confirm_stable s; False when `window`
    s (None: no limit) passed first; None when the gateway stops."""
    start = since = mono()
    while o.running:
        now = mono()
        if not ok(o.gw):
            since = now
        elif now - since >= o.confirm_stable:
            return True
        if window is not None and now - start > window:
            return False
        await asyncio.sleep(1)
    return None


async def image_trial(o):
    """Every start of an image-updated board: once healthy for confirm_stable
    s, keep this app (gateway.ota.image.confirm: cancels the bootloader's
    rollback; nothing to do for an app already kept). A new app on trial
    that is not healthy within confirm_window resets the board: the
    bootloader then boots the old slot."""
    from gateway.ota import image
    kept = await healthy_for(o, image_healthy, o.confirm_window if o.trial else None)
    data = o.gw.board.data_dir
    if kept:
        try:
            done = image.confirm(data, o.slot, o.installed["version"])
        except Exception as e:  # never the end of the update task: the next start tries again
            o.gw.events.add("ota", "could not keep %s: %r" % (o.slot, e), "error", persist=True)
            return
        o.kept = done is not None
        if done:
            o.trial, o.last = False, image.read_mark(data)
            o.gw.events.add("ota", "updated to %s (%s): healthy, kept" % (o.installed["version"], o.slot),
                            persist=True)
    elif kept is False:
        try:
            image.resetting(data)
        except OSError:  # noqa: S110 - the reset matters more; the next start reports a trial again
            pass
        o.gw.events.add("ota", "new app not healthy within %d s: rebooting, the bootloader goes back "
                        "to the old slot" % o.confirm_window, "error", persist=True)
        await reboot_soon(o)


async def trial(o):
    """The new app on trial: confirm once healthy for confirm_stable s;
    roll back and reboot when that has not happened within confirm_window."""
    import ota_boot
    import ota_layout
    kept = await healthy_for(o, healthy, o.confirm_window)
    if kept:
        o.loader.confirm()
        ota_boot.disarm()
        o.trial, o.last = False, o.loader.read_json(ota_layout.LAST)
        o.gw.events.add("ota", "updated to %s: healthy, kept" % o.installed["version"], persist=True)
    elif kept is False:
        o.loader.rollback(o.loader.journal() or {}, "not healthy within %d s" % o.confirm_window)
        o.gw.events.add("ota", "new app not healthy: rolled back, rebooting", "error", persist=True)
        await reboot_soon(o)
