"""The HTTP API (Microdot). Contracts: /api/data and /api/info keep the seed's
JSON shape; errors are JSON {"error": ..., "field": ...} with 400/404/413;
passwords are never sent back."""
import json

from microdot import Microdot, Request, Response

from gateway.settings import SettingsError

MAX_BODY = 2048          # bytes; larger bodies get 413

# Caps for every request: the defaults (16 KB) are far too big for an ESP8266.
Request.max_content_length = MAX_BODY
Request.max_body_length = MAX_BODY
Request.max_readline = 1024

_JSON = {"Content-Type": "application/json"}


def _json(obj, status=200):
    return Response(json.dumps(obj), status, _JSON)


def error(status, message, field=None):
    body = {"error": message}
    if field is not None:
        body["field"] = field
    return _json(body, status)


def _body(req):
    """The request body as a JSON object, or an error response."""
    try:
        data = json.loads(req.body or b"")
    except (ValueError, UnicodeError):
        return None, error(400, "body is not valid JSON")
    if not isinstance(data, dict):
        return None, error(400, "body must be a JSON object")
    return data, None


def make_app(gw):
    """`gw` is the running gateway (gateway.app.Gateway)."""
    app = Microdot()

    @app.errorhandler(413)
    async def too_large(req):
        return error(413, "body larger than %d bytes" % MAX_BODY)

    @app.errorhandler(404)
    async def not_found(req):
        return error(404, "no such endpoint")

    @app.errorhandler(405)
    async def bad_method(req):
        return error(405, "method not allowed")

    @app.get("/api/data")
    async def data(req):
        return Response(gw.data_now(), 200, _JSON)

    @app.get("/api/info")
    async def info(req):
        return _json(gw.info())

    @app.get("/api/config")
    async def get_config(req):
        return _json(gw.settings.public())

    @app.post("/api/config")
    async def post_config(req):
        data, err = _body(req)
        if err:
            return err
        try:
            changed = gw.settings.update(data)
        except SettingsError as e:
            return error(400, e.message, e.field)
        except OSError as e:
            return error(500, "could not save settings: %s" % e)
        return _json({"ok": True, "changed": sorted(changed), "warnings": gw.settings.warnings()})

    @app.post("/api/power-limit")
    async def power_limit(req):
        data, err = _body(req)
        if err:
            return err
        v = data.get("limit")
        if isinstance(v, bool) or not isinstance(v, int):
            return error(400, "limit must be an integer percent", "limit")
        if not 0 <= v <= 100:
            return error(400, "limit must be 0..100", "limit")
        if len(data) != 1:
            return error(400, "unknown key", [k for k in data if k != "limit"][0])
        queued = gw.request_limit(v)
        return _json({"limit": queued, "pending": True}, 202)

    @app.post("/api/dtu/reboot")
    async def dtu_reboot(req):
        gw.sched.request_reboot()
        gw.link.wake()
        return _json({"queued": "dtu_reboot"}, 202)

    @app.post("/api/inverter/restart")
    async def inverter_restart(req):
        gw.sched.request_restart()
        gw.link.wake()
        return _json({"queued": "inverter_restart"}, 202)

    @app.get("/api/events")
    async def events(req):
        return Response(gw.events.to_json(), 200, _JSON)

    for f in gw.features:
        if hasattr(f, "routes"):
            f.routes(app)
    return app
