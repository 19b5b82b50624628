"""Access control. While admin.password is empty (factory mode) nothing needs
it; once it is set, every request that is not a read (any method but GET,
HEAD and OPTIONS, on any path) does, whichever feature serves it. The method
arrives upper-cased (gateway.web.httpd): "post" is a POST here too.

  - HTTP Basic with user "admin": always accepted (scripts, smart-home
    systems). Send it with the request: a challenge (WWW-Authenticate) only
    comes back when wrong credentials were sent, so a browser page never
    pops up the browser's own login box.
  - The web page: POST /api/login {"password"} -> {"csrf": token} and a
    cookie `session` (HttpOnly, SameSite=Strict); a state-changing request
    made with that cookie must carry `X-CSRF-Token: <token>`, else 403.
    GET /api/session tells the page where it stands (and the token again
    after a reload). A few sessions at most, in RAM, expiring.
  - Reading stays open (static files, probes, GET /api/*), except with
    admin.protect_read: then GET /api/* other than /api/session needs it too.
  - A wrong password answers 401; 5 within a minute from one address lock
    that address out (429 with retry_after) for 30 s, doubling per lock-out
    up to 15 min. The table is small and bounded; a flood from many
    addresses locks out everyone for a minute.
  - A write whose Origin header names another site is refused (403): a
    browser that once sent Basic credentials would send them again for
    any page that asks.

Auth.check() decides, without Microdot (tested on both Pythons); routes()
wires it in as one before_request handler, plus the login endpoints and
POST /api/factory-reset.
"""
import binascii
import os

from gateway.mono import mono

from micropython import const

MAX_SESSIONS = const(4)
SESSION_IDLE = const(3600)       # s without a request before a session ends
SESSION_MAX = const(86400)       # s a session lasts at most
FAIL_LIMIT = const(5)            # wrong passwords ...
FAIL_WINDOW = const(60)          # ... within this many s lock the address out
LOCK_FIRST = const(30)           # s of the first lock-out; doubles each time
LOCK_MAX = const(900)
FORGET_AFTER = const(3600)       # s after which an address's record is dropped
MAX_CLIENTS = const(8)           # addresses tracked (bounded memory)
GLOBAL_LIMIT = const(30)         # wrong passwords per FAIL_WINDOW from all addresses
REALM = 'Basic realm="DTU Gateway"'
_READS = ("GET", "HEAD", "OPTIONS")
_OWN = ("/api/login", "/api/logout", "/api/session")


def same(a, b):
    """Constant-time comparison of two strings or byte strings."""
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    r = len(a) ^ len(b)
    n = len(a) or 1
    for i in range(len(b)):
        r |= (a[i % n] if a else 0) ^ b[i]
    return r == 0


def token():
    try:
        raw = os.urandom(16)
    except (AttributeError, NotImplementedError):  # pragma: no cover - ports without it
        import random
        raw = bytes(random.getrandbits(8) for _ in range(16))
    return binascii.hexlify(raw).decode()


def client_key(addr):
    """A hashable client address from Request.client_addr: ("ip", port) on
    CPython and the boards, a raw sockaddr on the unix MicroPython."""
    if isinstance(addr, (tuple, list)) and addr:
        return str(addr[0])
    if isinstance(addr, (bytes, bytearray)) and len(addr) >= 8:
        fam = addr[0] | addr[1] << 8
        if fam == 2:
            return bytes(addr[4:8])
        if fam == 10 and len(addr) >= 24:
            return bytes(addr[8:24])
        return bytes(addr)
    return str(addr)


class Limiter:
    """Wrong-password bookkeeping per address: key -> [fails, window start,
    locked until, lock-outs, last failure]."""

    def __init__(self):
        self.t = {}
        self._all = [0, 0.0, 0.0]     # failures, window start, everyone locked until

    def retry_after(self, key, now):
        e = self.t.get(key)
        left = max(e[2] if e else 0, self._all[2]) - now
        return int(left + 0.999) if left > 0 else 0

    def failure(self, key, now):
        g = self._all
        if now - g[1] > FAIL_WINDOW:
            g[0], g[1] = 0, now
        g[0] += 1
        if g[0] >= GLOBAL_LIMIT:
            g[0], g[2] = 0, now + FAIL_WINDOW
        e = self.t.get(key)
        if e is None:
            if len(self.t) >= MAX_CLIENTS:
                old = min(self.t, key=lambda k: (self.t[k][2] > now, self.t[k][4]))
                del self.t[old]
            e = self.t[key] = [0, now, 0, 0, now]
        if now - e[4] > FORGET_AFTER:
            e[3] = 0
        if now - e[1] > FAIL_WINDOW:
            e[0], e[1] = 0, now
        e[0] += 1
        e[4] = now
        if e[0] >= FAIL_LIMIT:
            e[3] += 1
            e[2] = now + min(LOCK_MAX, LOCK_FIRST << min(e[3] - 1, 10))
            e[0], e[1] = 0, now

    def success(self, key):
        self.t.pop(key, None)


class Auth:
    def __init__(self, settings, clock=mono):
        self.settings = settings
        self.clock = clock
        self.sessions = []            # [sid, csrf, created, last used]
        self.limiter = Limiter()

    def required(self):
        return self.settings.get("admin.password") != ""

    # ---- sessions -----------------------------------------------------------------

    def session(self, sid, now):
        """The live session with this id (touched), or None."""
        if not sid:
            return None
        for s in self.sessions:
            if same(sid, s[0]):
                if now - s[3] > SESSION_IDLE or now - s[2] > SESSION_MAX:
                    self.sessions.remove(s)
                    return None
                s[3] = now
                return s
        return None

    def _new_session(self, now):
        live = [s for s in self.sessions if now - s[3] <= SESSION_IDLE and now - s[2] <= SESSION_MAX]
        live.sort(key=lambda s: s[3])
        while len(live) >= MAX_SESSIONS:
            live.pop(0)               # the least recently used one goes
        s = [token(), token(), now, now]
        live.append(s)
        self.sessions = live
        return s

    def clear(self):
        self.sessions = []

    # ---- decisions ----------------------------------------------------------------

    def _locked(self, key, now):
        left = self.limiter.retry_after(key, now)
        if left:
            return 429, {"error": "too many wrong passwords; try again in %d s" % left,
                         "retry_after": left}, {"Retry-After": str(left)}
        return None

    def _basic(self, authz, key, now):
        """None when authz is valid Basic for admin, else the refusal."""
        refusal = self._locked(key, now)
        if refusal:
            return refusal
        ok = False
        if authz[:6].lower() == "basic ":
            try:
                user, _, pw = binascii.a2b_base64(authz[6:].strip()).decode().partition(":")
                ok = user == "admin" and same(pw, self.settings.get("admin.password"))
            except (ValueError, UnicodeError):
                pass
        if ok:
            self.limiter.success(key)
            return None
        self.limiter.failure(key, now)
        return 401, {"error": "wrong user or password (user is admin)"}, {"WWW-Authenticate": REALM}

    def check(self, method, path, headers, cookies, client):
        """None: go ahead; else (status, body, headers) to answer instead."""
        if path in _OWN or not self.required():
            return None
        write = method not in _READS      # an unknown method is a write: refused unless allowed
        if not write and not (path.startswith("/api/") and self.settings.get("admin.protect_read")):
            return None
        now = self.clock()
        if write:
            origin = headers.get("Origin")
            if origin is not None and origin.split("://", 1)[-1] != headers.get("Host", ""):
                return 403, {"error": "cross-site request refused"}, None
        key = client_key(client)
        authz = headers.get("Authorization")
        if authz is not None:
            return self._basic(authz, key, now)
        s = self.session(cookies.get("session"), now)
        if s is not None:
            if write and not same(headers.get("X-CSRF-Token", ""), s[1]):
                return 403, {"error": "missing or wrong CSRF token"}, None
            return None
        return 401, {"error": "authentication required: log in, or use HTTP Basic with user admin"}, None

    def login(self, password, client):
        """(status, body, headers) for POST /api/login."""
        now = self.clock()
        key = client_key(client)
        if not isinstance(password, str):
            return 400, {"error": "password must be a string", "field": "password"}, None
        refusal = self._locked(key, now)
        if refusal:
            return refusal
        if self.required() and not same(password, self.settings.get("admin.password")):
            self.limiter.failure(key, now)
            return 401, {"error": "wrong password", "field": "password"}, None
        self.limiter.success(key)
        s = self._new_session(now)
        return 200, {"csrf": s[1]}, {
            "Set-Cookie": ["session=%s; HttpOnly; SameSite=Strict; Path=/" % s[0]]}

    def logout(self, cookies):
        sid = cookies.get("session")
        self.sessions = [s for s in self.sessions if not (sid and same(sid, s[0]))]
        return 200, {"ok": True}, {"Set-Cookie": ["session=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/"]}

    def describe(self, headers, cookies, client):
        """GET /api/session."""
        now = self.clock()
        s = self.session(cookies.get("session"), now)
        logged = s is not None
        authz = headers.get("Authorization")
        if not logged and authz is not None and self.required():
            logged = self._basic(authz, client_key(client), now) is None
        body = {"auth_required": self.required(), "logged_in": logged,
                "protect_read": self.settings.get("admin.protect_read")}
        if s is not None:
            body["csrf"] = s[1]
        return 200, body, None

    # ---- Microdot ------------------------------------------------------------------

    def settings_changed(self, changed):
        if "admin.password" in changed:
            self.clear()              # a new password ends every session

    def routes(self, app):
        from gateway.web.httpd import json_body, json_response

        def answer(r):
            status, body, headers = r
            return json_response(body, status, headers)

        async def guard(req):
            r = self.check(req.method, req.path, req.headers, req.cookies, req.client_addr)
            return answer(r) if r is not None else None
        app.before_request(guard)

        @app.post("/api/login")
        async def login(req):
            data, err = json_body(req)
            if err:
                return err
            return answer(self.login(data.get("password"), req.client_addr))

        @app.post("/api/logout")
        async def logout(req):
            return answer(self.logout(req.cookies))

        @app.get("/api/session")
        async def session(req):
            return answer(self.describe(req.headers, req.cookies, req.client_addr))

        gw = self.gw

        @app.post("/api/factory-reset")
        async def factory_reset(req):
            from gateway.setup.portal import factory_reset
            reboot = factory_reset(gw, "requested over the API")
            return answer((202, {"ok": True, "rebooting": reboot}, None))


def attach(gw):
    a = Auth(gw.settings)
    a.gw = gw
    gw.auth = a
    return a
