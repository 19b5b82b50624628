"""Captive portal: make a phone on our AP open the setup page by itself.

While the portal is captive (our AP is up and the station is not joined:
factory mode, or a failed join; WifiManager.captive()):
  - the OS connectivity probes get a 302 to the setup page: Android
    /generate_204, Apple /hotspot-detect.html, Windows /connecttest.txt and
    /ncsi.txt, Firefox /success.txt;
  - any other GET outside /api/ that would be a 404 is redirected there too
    (paths that exist, "/" and the web app's files, are never caught);
  - the DNS responder (dns.py) answers every name with the AP address.
Once joined, the probes get their "online" answers so the popup can close.

The redirect goes to "/" when the request named us by address (Host is an
IPv4 literal or localhost), else to http://<AP address>/: a probe for
connectivitycheck.gstatic.com must leave that name for ours.

factory_reset(gw, why) is shared by POST /api/factory-reset and the button.
"""
import asyncio

from microdot import Response

_ONLINE = {
    "/generate_204": (204, "", None),
    "/gen_204": (204, "", None),
    "/hotspot-detect.html": (200, "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
                             "text/html"),
    "/library/test/success.html": (200, "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
                                   "text/html"),
    "/connecttest.txt": (200, "Microsoft Connect Test", "text/plain"),
    "/ncsi.txt": (200, "Microsoft NCSI", "text/plain"),
    "/success.txt": (200, "success\n", "text/plain"),
}
REBOOT_DELAY = 1.5   # s between the answer to a factory reset and the board's reset


def _named_by_address(host):
    h = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if h == "localhost" or h.startswith("["):
        return True
    parts = h.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


class Portal:
    def __init__(self, gw):
        self.gw = gw
        self.dns = None
        self.running = False

    def captive(self):
        wm = self.gw.wifi_manager
        return wm is not None and wm.captive()

    def _setup_url(self, req):
        if _named_by_address(req.headers.get("Host", "")):
            return "/"
        return "http://%s/" % self.gw.board.wifi.ap_ip()

    def redirect(self, req):
        return Response(status_code=302, reason="Found",
                        headers={"Location": self._setup_url(req), "Cache-Control": "no-store"})

    def probe(self, req):
        if self.captive():
            return self.redirect(req)
        status, body, ctype = _ONLINE[req.path]
        headers = {"Cache-Control": "no-store"}
        if ctype:
            headers["Content-Type"] = ctype
        return Response(body, status, headers, "No Content" if status == 204 else None)

    def routes(self, app):
        # The probes are answered here, on the way out of a 404, not as routes
        # of their own: a Microdot route keeps ~450 B of heap for good, plus
        # its pattern compiled at the first request that passes it.
        async def not_found(req, res):
            if (res.status_code != 404 or req is None or req.method not in ("GET", "HEAD")
                    or req.path == "/" or req.path.startswith("/api/")):
                return res
            if req.path in _ONLINE:
                return self.probe(req)
            # any other 404 outside /api/ while captive: to the setup page instead
            return self.redirect(req) if self.captive() else res
        app.after_request(not_found)
        app.after_error_request(not_found)

    # ---- the DNS responder's life: only while our AP is up ------------------------

    async def run(self):
        addr = getattr(self.gw.board, "dns_addr", None)
        if addr is None:
            return
        self.running = True
        wifi = self.gw.board.wifi
        while self.running:
            want = not wifi.fixed and wifi.ap_active()
            if want and self.dns is None:
                self._open(addr, wifi.ap_ip())
            elif not want and self.dns is not None:
                self.dns.close()
                self.dns = None
            if self.dns is None:
                await asyncio.sleep(1)
                continue
            n = self.dns.poll()
            await asyncio.sleep(0.005 if n else 0.05)

    def _open(self, addr, ip):
        from gateway.setup.dns import Responder
        r = Responder(ip, addr[0], addr[1])
        try:
            r.open()
        except OSError as e:
            self.gw.events.add("portal", "DNS responder on %s:%d failed: %s" % (addr[0], addr[1], e),
                               "error")
            self.running = False
            return
        self.dns = r
        self.gw.events.add("portal", "DNS responder on %s:%d answers %s" % (addr[0], addr[1], ip))

    def stop(self):
        self.running = False
        if self.dns is not None:
            self.dns.close()
            self.dns = None


def factory_reset(gw, why):
    """Settings back to the defaults (files deleted), then the board restarts
    into factory mode. On a PC (host mode) the process keeps running and is
    in factory mode at once. Returns True when a restart is scheduled."""
    gw.events.add("factory", "factory reset (%s)" % why, "warn", persist=True)
    gw.settings.factory_reset()
    if gw.board.name == "host":
        return False

    async def later():
        await asyncio.sleep(REBOOT_DELAY)     # let the answer leave first
        gw.events.flush(force=True)
        gw.board.reset()
    asyncio.create_task(later())
    return True


def attach(gw):
    return Portal(gw)
