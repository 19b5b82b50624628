"""gateway.web.auth: the decisions, without HTTP. Factory mode is open; once
admin.password is set every write under /api/ needs Basic or a session with
its CSRF token; reading is open unless admin.protect_read; wrong passwords
answer 401 and lock an address out (429) for a growing time.

Board-side test: plain unittest, runs under pytest and the unix MicroPython.
(tests_host/e2e/test_first_boot_http.py checks the same through Microdot.)
"""
import binascii
import unittest

from support.fakes import Clock, FakeSettings
from gateway.web import auth as A
from gateway.web.auth import Auth, client_key, same

PW = "S3cret admin"
ME = ("192.168.1.20", 50000)
OTHER = ("192.168.1.21", 50001)


def basic(user, pw):
    return "Basic " + binascii.b2a_base64(("%s:%s" % (user, pw)).encode()).decode().strip()


def make(password=PW, protect_read=False):
    clock = Clock()
    s = FakeSettings()
    s.v["admin.password"] = password
    s.v["admin.protect_read"] = protect_read
    return clock, s, Auth(s, clock)


def login(a, client=ME, pw=PW):
    status, body, headers = a.login(pw, client)
    assert status == 200, (status, body)
    cookie = headers["Set-Cookie"][0]
    sid = cookie.split(";")[0].split("=", 1)[1]
    return sid, body["csrf"], cookie


class FactoryMode(unittest.TestCase):
    def test_nothing_needs_auth_without_a_password(self):
        clock, s, a = make(password="")
        for method, path in (("POST", "/api/config"), ("POST", "/api/factory-reset"),
                             ("DELETE", "/api/ota/x"), ("GET", "/api/data")):
            self.assertIsNone(a.check(method, path, {}, {}, ME))
        s.v["admin.protect_read"] = True
        self.assertIsNone(a.check("GET", "/api/data", {}, {}, ME))
        self.assertEqual(a.describe({}, {}, ME)[1],
                         {"auth_required": False, "logged_in": False, "protect_read": True})


class Basic(unittest.TestCase):
    def test_every_write_under_api_needs_it(self):
        clock, s, a = make()
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for path in ("/api/config", "/api/power-limit", "/api/ota/install", "/api/dtu/reboot",
                         "/api/factory-reset", "/api/anything/new"):
                r = a.check(method, path, {}, {}, ME)
                self.assertEqual(r[0], 401, (method, path))
                self.assertIn("error", r[1])
                self.assertIsNone(r[2])            # no challenge: no browser login box
                self.assertIsNone(a.check(method, path, {"Authorization": basic("admin", PW)}, {}, ME))

    def test_anything_but_a_read_is_a_write_on_any_path(self):
        # default deny: a method the gateway does not know, or a write to a
        # path outside /api/, needs the password all the same
        clock, s, a = make()
        for method in ("PROPFIND", "QUERY", "FOO", "MKCOL", "TRACE", "CONNECT"):
            for path in ("/api/config", "/api/power-limit", "/", "/app.js", "/nowhere"):
                self.assertEqual(a.check(method, path, {}, {}, ME)[0], 401, (method, path))
        for path in ("/", "/x", "/generate_204"):
            self.assertEqual(a.check("POST", path, {}, {}, ME)[0], 401, path)
        for method in ("GET", "HEAD", "OPTIONS"):
            self.assertIsNone(a.check(method, "/api/config", {}, {}, ME), method)

    def test_reads_and_pages_stay_open(self):
        clock, s, a = make()
        for path in ("/api/data", "/api/info", "/api/config", "/api/events", "/", "/app.js",
                     "/generate_204"):
            self.assertIsNone(a.check("GET", path, {}, {}, ME), path)
        self.assertIsNone(a.check("POST", "/api/login", {}, {}, ME))   # the way in is open

    def test_wrong_credentials(self):
        clock, s, a = make()
        for h in (basic("admin", "nope"), basic("root", PW), basic("admin", PW + " "),
                  "Basic !!!notbase64", "Bearer " + PW, "Basic ", basic("admin", ""), basic("", PW)):
            clock, s, a = make()
            r = a.check("POST", "/api/config", {"Authorization": h}, {}, ME)
            self.assertEqual(r[0], 401, h)
        clock, s, a = make()
        r = a.check("POST", "/api/config", {"Authorization": basic("admin", "nope")}, {}, ME)
        self.assertEqual(r[0], 401)
        self.assertEqual(r[2], {"WWW-Authenticate": 'Basic realm="DTU Gateway"'})
        self.assertNotIn(PW, str(r))

    def test_password_with_a_colon_and_unicode(self):
        clock, s, a = make(password="a:b:c ünï")
        self.assertIsNone(a.check("POST", "/api/config", {"Authorization": basic("admin", "a:b:c ünï")},
                                  {}, ME))

    def test_cross_site_write_is_refused(self):
        clock, s, a = make()
        h = {"Authorization": basic("admin", PW), "Host": "192.168.1.5", "Origin": "http://evil.example"}
        self.assertEqual(a.check("POST", "/api/config", h, {}, ME)[0], 403)
        h["Origin"] = "http://192.168.1.5"
        self.assertIsNone(a.check("POST", "/api/config", h, {}, ME))
        h["Origin"] = "null"
        self.assertEqual(a.check("POST", "/api/config", h, {}, ME)[0], 403)


class RateLimit(unittest.TestCase):
    def wrong(self, a, client=ME):
        return a.check("POST", "/api/config", {"Authorization": basic("admin", "guess")}, {}, client)

    def test_lock_out_after_five_and_growing(self):
        clock, s, a = make()
        for i in range(A.FAIL_LIMIT):
            self.assertEqual(self.wrong(a)[0], 401, i)
            clock.advance(1)
        r = self.wrong(a)
        self.assertEqual(r[0], 429)
        self.assertTrue(0 < r[1]["retry_after"] <= A.LOCK_FIRST)
        self.assertEqual(r[2]["Retry-After"], str(r[1]["retry_after"]))
        # even the right password waits: no guessing through the lock
        ok = {"Authorization": basic("admin", PW)}
        self.assertEqual(a.check("POST", "/api/config", ok, {}, ME)[0], 429)
        self.assertEqual(a.login(PW, ME)[0], 429)
        # another address is not affected
        self.assertIsNone(a.check("POST", "/api/config", ok, {}, OTHER))
        clock.advance(A.LOCK_FIRST + 1)
        self.assertIsNone(a.check("POST", "/api/config", ok, {}, ME))   # success clears the record
        # a persistent guesser waits longer each time
        locks = []
        for k in range(4):
            for i in range(A.FAIL_LIMIT):
                self.wrong(a)
            locks.append(self.wrong(a)[1]["retry_after"])
            clock.advance(locks[-1] + 1)
        self.assertEqual(locks, [30, 60, 120, 240])
        for k in range(4):
            for i in range(A.FAIL_LIMIT):
                self.wrong(a)
            locks.append(self.wrong(a)[1]["retry_after"])
            clock.advance(locks[-1] + 1)
        self.assertEqual(locks[-1], A.LOCK_MAX)

    def test_slow_guessing_is_not_locked(self):
        clock, s, a = make()
        for i in range(20):
            self.assertEqual(self.wrong(a)[0], 401)
            clock.advance(A.FAIL_WINDOW / (A.FAIL_LIMIT - 1) + 1)

    def test_login_failures_count_too(self):
        clock, s, a = make()
        for i in range(A.FAIL_LIMIT):
            self.assertEqual(a.login("guess", ME)[0], 401)
        self.assertEqual(a.login(PW, ME)[0], 429)
        self.assertEqual(self.wrong(a)[0], 429)

    def test_memory_is_bounded(self):
        clock, s, a = make()
        for i in range(200):
            self.wrong(a, ("10.0.%d.%d" % (i // 250, i % 250), 1))
            clock.advance(1)
        self.assertLessEqual(len(a.limiter.t), A.MAX_CLIENTS)

    def test_a_flood_from_many_addresses_locks_everyone_for_a_while(self):
        clock, s, a = make()
        for i in range(A.GLOBAL_LIMIT):
            self.wrong(a, ("10.1.0.%d" % i, 1))
        r = self.wrong(a, ("10.2.0.1", 1))
        self.assertEqual(r[0], 429)
        clock.advance(A.FAIL_WINDOW + 1)
        self.assertEqual(self.wrong(a, ("10.2.0.1", 1))[0], 401)


class Sessions(unittest.TestCase):
    def test_cookie_needs_the_csrf_token_for_writes(self):
        clock, s, a = make()
        sid, csrf, cookie = login(a)
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertIn("Path=/", cookie)
        self.assertEqual(len(sid), 32)
        self.assertNotEqual(sid, csrf)
        c = {"session": sid}
        r = a.check("POST", "/api/config", {}, c, ME)
        self.assertEqual(r[:2], (403, {"error": "missing or wrong CSRF token"}))
        wrong = csrf[:-1] + ("1" if csrf[-1] == "0" else "0")       # differs in its last digit
        self.assertEqual(a.check("POST", "/api/config", {"X-CSRF-Token": wrong}, c, ME)[0], 403)
        self.assertIsNone(a.check("POST", "/api/config", {"X-CSRF-Token": csrf}, c, ME))
        self.assertIsNone(a.check("DELETE", "/api/ota/x", {"X-CSRF-Token": csrf}, c, ME))
        # a made-up session is no session
        self.assertEqual(a.check("POST", "/api/config", {"X-CSRF-Token": csrf}, {"session": "0" * 32}, ME)[0], 401)
        d = a.describe({}, c, ME)[1]
        self.assertEqual(d, {"auth_required": True, "logged_in": True, "protect_read": False, "csrf": csrf})
        self.assertEqual(a.describe({}, {}, ME)[1]["logged_in"], False)
        self.assertTrue(a.describe({"Authorization": basic("admin", PW)}, {}, ME)[1]["logged_in"])

    def test_logout_and_password_change_end_sessions(self):
        clock, s, a = make()
        sid, csrf, _ = login(a)
        sid2, csrf2, _ = login(a)
        h = {"X-CSRF-Token": csrf}
        status, body, headers = a.logout({"session": sid})
        self.assertEqual(status, 200)
        self.assertIn("Max-Age=0", headers["Set-Cookie"][0])
        self.assertEqual(a.check("POST", "/api/config", h, {"session": sid}, ME)[0], 401)
        self.assertIsNone(a.check("POST", "/api/config", {"X-CSRF-Token": csrf2}, {"session": sid2}, ME))
        a.settings_changed({"admin.password": "new-one"})
        self.assertEqual(a.check("POST", "/api/config", {"X-CSRF-Token": csrf2}, {"session": sid2}, ME)[0], 401)

    def test_sessions_expire_and_are_few(self):
        clock, s, a = make()
        sid, csrf, _ = login(a)
        h, c = {"X-CSRF-Token": csrf}, {"session": sid}
        clock.advance(A.SESSION_IDLE - 10)
        self.assertIsNone(a.check("POST", "/api/config", h, c, ME))       # used: idle time restarts
        clock.advance(A.SESSION_IDLE - 10)
        self.assertIsNone(a.check("POST", "/api/config", h, c, ME))
        clock.advance(A.SESSION_IDLE + 1)
        self.assertEqual(a.check("POST", "/api/config", h, c, ME)[0], 401)
        # an absolute limit, however busy
        sid, csrf, _ = login(a)
        for i in range(A.SESSION_MAX // 1800 + 1):
            clock.advance(1800)
            r = a.check("POST", "/api/config", {"X-CSRF-Token": csrf}, {"session": sid}, ME)
        self.assertEqual(r[0], 401)
        # at most MAX_SESSIONS: the least recently used goes
        logins = []
        for _ in range(A.MAX_SESSIONS + 2):
            clock.advance(1)
            logins.append(login(a))
        self.assertEqual(len(a.sessions), A.MAX_SESSIONS)
        first, last = logins[0], logins[-1]
        self.assertEqual(a.check("GET", "/x", {}, {}, ME), None)
        self.assertEqual(a.check("POST", "/api/config", {"X-CSRF-Token": first[1]}, {"session": first[0]}, ME)[0], 401)
        self.assertIsNone(a.check("POST", "/api/config", {"X-CSRF-Token": last[1]}, {"session": last[0]}, ME))

    def test_login_input(self):
        clock, s, a = make()
        self.assertEqual(a.login(None, ME)[0], 400)
        self.assertEqual(a.login(5, ME)[0], 400)
        r = a.login("wrong", ME)
        self.assertEqual((r[0], r[1]["error"]), (401, "wrong password"))
        self.assertNotIn("Set-Cookie", r[2] or {})


class ProtectRead(unittest.TestCase):
    def test_reads_under_api_need_auth(self):
        clock, s, a = make(protect_read=True)
        self.assertEqual(a.check("GET", "/api/data", {}, {}, ME)[0], 401)
        self.assertEqual(a.check("GET", "/api/config", {}, {}, ME)[0], 401)
        self.assertIsNone(a.check("GET", "/api/data", {"Authorization": basic("admin", PW)}, {}, ME))
        sid, csrf, _ = login(a)
        self.assertIsNone(a.check("GET", "/api/data", {}, {"session": sid}, ME))   # no token needed to read
        self.assertIsNone(a.check("GET", "/api/session", {}, {}, ME))
        self.assertIsNone(a.check("GET", "/", {}, {}, ME))                          # the page loads
        self.assertIsNone(a.check("GET", "/hotspot-detect.html", {}, {}, ME))


class Helpers(unittest.TestCase):
    def test_same(self):
        self.assertTrue(same("abc", "abc"))
        self.assertTrue(same(b"", ""))
        for x, y in (("abc", "abd"), ("abc", "ab"), ("", "a"), ("a", ""), ("abc", "abcd")):
            self.assertFalse(same(x, y), (x, y))

    def test_client_key(self):
        self.assertEqual(client_key(("10.0.0.1", 5)), "10.0.0.1")
        self.assertEqual(client_key(b"\x02\x00\x1f\x90\x7f\x00\x00\x01" + bytes(8)), b"\x7f\x00\x00\x01")
        v6 = b"\x0a\x00\x1f\x90" + bytes(4) + bytes(15) + b"\x01" + bytes(4)
        self.assertEqual(client_key(v6), bytes(15) + b"\x01")
        self.assertEqual(client_key(None), "None")


if __name__ == "__main__":
    unittest.main()
