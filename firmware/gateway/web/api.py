"""The HTTP API (Microdot, behind gateway.web.httpd's door). Contracts: /api/data
and /api/info keep the seed's JSON shape; errors are JSON {"error": ...,
"field": ...} with 400/404/405/413; passwords are never sent back."""
from microdot import Response

from gateway.web.httpd import JSON_HEADERS, Server, error, json_body, json_response
from gateway.link.commands import REBOOT_DTU, RESTART_INVERTER, SET_LIMIT, Command
from gateway.settings import SettingsError


def make_app(gw):
    """`gw` is the running gateway (gateway.app.Gateway)."""
    app = Server(gw.board.http_clients, gw.board.http_backlog)

    @app.errorhandler(413)
    async def too_large(req):
        return error(413, "body larger than %d bytes" % app.body_limit(req.path))

    @app.errorhandler(404)
    async def not_found(req):
        return error(404, "no such endpoint")

    @app.errorhandler(405)
    async def bad_method(req):
        return error(405, "method not allowed")

    @app.get("/api/data")
    async def data(req):
        return Response(gw.data_now(), 200, JSON_HEADERS)

    @app.get("/api/info")
    async def info(req):
        return json_response(gw.info())

    @app.get("/api/config")
    async def get_config(req):
        return json_response(gw.settings.public())

    @app.post("/api/config")
    async def post_config(req):
        data, err = json_body(req)
        if err:
            return err
        try:
            changed = gw.settings.update(data)
        except SettingsError as e:
            return error(400, e.message, e.field)
        except OSError as e:
            return error(500, "could not save settings: %s" % e)
        return json_response({"ok": True, "changed": sorted(changed), "warnings": gw.settings.warnings()})

    @app.post("/api/power-limit")
    async def power_limit(req):
        data, err = json_body(req)
        if err:
            return err
        for k in data:
            if k != "limit":
                return error(400, "unknown key", k)
        try:
            queued = gw.command(Command(SET_LIMIT, data.get("limit")), "api")
        except ValueError as e:
            return error(400, str(e), "limit")
        return json_response({"limit": queued, "pending": True}, 202)

    @app.post("/api/dtu/reboot")
    async def dtu_reboot(req):
        gw.command(Command(REBOOT_DTU), "api")
        return json_response({"queued": "dtu_reboot"}, 202)

    @app.post("/api/inverter/restart")
    async def inverter_restart(req):
        gw.command(Command(RESTART_INVERTER), "api")
        return json_response({"queued": "inverter_restart"}, 202)

    @app.get("/api/alarms")
    async def alarms(req):
        return json_response(gw.alarms_body())

    @app.get("/api/events")
    async def events(req):
        return Response(gw.events.json_chunks(), 200, JSON_HEADERS)

    for f in gw.features:
        if hasattr(f, "routes"):
            f.routes(app)
    return app
