"""A local stand-in for GitHub's REST API and its release-asset host, for the
update tests. Loopback only, ephemeral ports, HTTP or HTTPS with a test CA.

What it does like GitHub (docs.github.com, REST "Releases" and "Rate limits"):
  - GET /repos/{owner}/{repo}/releases/latest  (newest non-prerelease, non-draft)
  - GET /repos/{owner}/{repo}/releases/tags/{tag}
    JSON with tag_name, name, draft, prerelease, published_at, body, author,
    assets [{url, id, name, label, uploader, content_type, state, size,
    digest "sha256:...", download_count, browser_download_url, ...}];
    chunked transfer encoding; ETag and If-None-Match -> 304 (not counted);
    x-ratelimit-limit/remaining/used/reset/resource on every answer, and when
    the budget is spent 403 with GitHub's message (or 429 with Retry-After);
    403 without a User-Agent; 404 {"message": "Not Found"}.
  - GET /{owner}/{repo}/releases/download/{tag}/{name} (browser_download_url,
    served by the API server, standing in for github.com): 302 to the asset
    host, another host name and port, with a signed, expiring query string.
  - The asset host serves the bytes with Content-Length; a missing or bad
    signature is 403, and any Authorization header is refused.
Faults for the tests: Standin.fault = {asset name: "tamper" | "truncate" |
"extra" | "404"}; Standin.rate_remaining; Standin.api_status.
"""
import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATE_LIMIT = 60


def make_ca(out_dir):
    """A test CA and two server certificates (IP 127.0.0.1 for the API,
    DNS localhost for the asset host); returns {name: path}."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("DTU Gateway test CA")).issuer_name(name("DTU Gateway test CA"))
          .public_key(key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(key, hashes.SHA256()))
    paths = {"ca": os.path.join(out_dir, "ca.pem")}
    with open(paths["ca"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    for which, san in (("api", x509.IPAddress(ipaddress.ip_address("127.0.0.1"))),
                       ("assets", x509.DNSName("localhost"))):
        k = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(which)).issuer_name(ca.subject)
                .public_key(k.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        paths[which] = os.path.join(out_dir, which + ".pem")
        with open(paths[which], "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
            f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return paths


def tamper_offset(data):
    """A byte in the middle of the largest file of a tar archive (of the
    middle of anything else)."""
    import io
    import tarfile
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            m = max(t.getmembers(), key=lambda m: m.size)
            return m.offset_data + m.size // 2
    except tarfile.TarError:
        return len(data) // 2


class Standin:
    def __init__(self, repo="dtu-gateway/dtu-gateway", certs=None):
        self.repo = repo
        self.certs = certs            # make_ca() paths for HTTPS, None for HTTP
        self.releases = []            # [{"tag", "prerelease", "published_at", "assets": {name: bytes}}]
        self.fault = {}
        self.rate_remaining = RATE_LIMIT
        self.rate_reset = int(time.time()) + 3600
        self.limit_style = 403        # or 429 (secondary limit, with Retry-After)
        self.api_status = None        # force every API answer to this status
        self.log = []                 # (server, method, path, headers) of every request
        self.key = os.urandom(16)
        self.lock = threading.Lock()
        self.api = self._server("api")
        self.assets = self._server("assets")
        scheme = "https" if certs else "http"
        self.api_url = "%s://127.0.0.1:%d" % (scheme, self.api.server_address[1])
        self.asset_url = "%s://localhost:%d" % (scheme, self.assets.server_address[1])

    def _server(self, which):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "GitHub.com"

            def log_message(self, *a):
                pass

            def do_GET(self):
                with standin.lock:
                    standin.log.append((which, "GET", self.path, dict(self.headers)))
                try:
                    (standin._api if which == "api" else standin._asset)(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        if self.certs:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certs[which])
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return srv

    def close(self):
        for s in (self.api, self.assets):
            s.shutdown()
            s.server_close()

    # ---- content ------------------------------------------------------------------

    def add_release(self, tag, assets, prerelease=False, published_at="2026-11-20T10:00:00Z"):
        self.releases = [r for r in self.releases if r["tag"] != tag]
        self.releases.append({"tag": tag, "prerelease": prerelease, "published_at": published_at,
                              "assets": dict(assets), "id": 1000 + len(self.releases)})

    def release_json(self, rel):
        owner = self.repo.split("/")[0]
        user = {"login": owner, "id": 1, "node_id": "MDQ6VXNlcjE=", "type": "User", "site_admin": False,
                "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
                "url": "https://api.github.com/users/" + owner}
        assets = []
        for i, (name, data) in enumerate(sorted(rel["assets"].items())):
            assets.append({
                "url": "%s/repos/%s/releases/assets/%d" % (self.api_url, self.repo, rel["id"] * 100 + i),
                "id": rel["id"] * 100 + i, "node_id": "RA_kwDO%d" % i, "name": name, "label": "",
                "uploader": user, "content_type": "application/octet-stream", "state": "uploaded",
                "size": len(data), "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                "download_count": 3, "created_at": rel["published_at"], "updated_at": rel["published_at"],
                "browser_download_url": "%s/%s/releases/download/%s/%s" % (self.api_url, self.repo, rel["tag"], name)})
        return {"url": "%s/repos/%s/releases/%d" % (self.api_url, self.repo, rel["id"]),
                "html_url": "https://github.com/%s/releases/tag/%s" % (self.repo, rel["tag"]),
                "id": rel["id"], "author": user, "node_id": "RE_kwDO", "tag_name": rel["tag"],
                "target_commitish": "develop" if rel["prerelease"] else "main",
                "name": rel["tag"], "draft": False, "immutable": False, "prerelease": rel["prerelease"],
                "created_at": rel["published_at"], "published_at": rel["published_at"], "assets": assets,
                "tarball_url": "%s/repos/%s/tarball/%s" % (self.api_url, self.repo, rel["tag"]),
                "zipball_url": "%s/repos/%s/zipball/%s" % (self.api_url, self.repo, rel["tag"]),
                "body": "## What's changed\n" + "* a change \"quoted\" \\ \u00e9\n" * 200,
                "reactions": {"url": "x", "total_count": 0, "+1": 0}}

    # ---- the API server (api.github.com and github.com) ---------------------------

    def _rate_headers(self):
        return {"x-ratelimit-limit": str(RATE_LIMIT), "x-ratelimit-remaining": str(self.rate_remaining),
                "x-ratelimit-reset": str(self.rate_reset), "x-ratelimit-used": str(RATE_LIMIT - self.rate_remaining),
                "x-ratelimit-resource": "core", "x-github-api-version-selected": "2022-11-28"}

    def _send(self, h, status, body, headers=None, chunked=False):
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        if chunked:
            for i in range(0, len(body), 700):
                part = body[i:i + 700]
                h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            h.wfile.write(b"0\r\n\r\n")
        else:
            h.wfile.write(body)
        h.close_connection = True

    def _api(self, h):
        path = h.path.split("?", 1)[0]
        dl = "/%s/releases/download/" % self.repo
        if path.startswith(dl):
            return self._download(h, path[len(dl):])
        if not h.headers.get("User-Agent"):
            return self._send(h, 403, b"Request forbidden by administrative rules. Please make sure your "
                              b"request has a User-Agent header (https://docs.github.com/en/rest/overview/"
                              b"resources-in-the-rest-api#user-agent-required). Check "
                              b"https://developer.github.com for other possible causes.\n",
                              {"Content-Type": "text/plain"})
        js = {"Content-Type": "application/json; charset=utf-8"}
        with self.lock:
            if self.rate_remaining <= 0:
                if self.limit_style == 429:
                    hdr = dict(self._rate_headers(), **js)
                    hdr["retry-after"] = "120"
                    return self._send(h, 429, json.dumps({
                        "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                                   "before you try again.",
                        "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/"
                                             "rate-limits-for-the-rest-api#about-secondary-rate-limits",
                        "status": "429"}).encode(), hdr)
                return self._send(h, 403, json.dumps({
                    "message": "API rate limit exceeded for 127.0.0.1. (But here's the good news: "
                               "Authenticated requests get a higher rate limit. Check out the documentation "
                               "for more details.)",
                    "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api"
                                         "#rate-limiting"}).encode(), dict(self._rate_headers(), **js))
        base = "/repos/%s/releases/" % self.repo
        rel = None
        if self.api_status is None and path.startswith(base):
            which = path[len(base):]
            if which == "latest":
                cands = [r for r in self.releases if not r["prerelease"]]
                rel = cands[-1] if cands else None
            elif which.startswith("tags/"):
                rel = next((r for r in self.releases if r["tag"] == which[5:]), None)
        if rel is None:
            with self.lock:
                self.rate_remaining -= 1
            return self._send(h, self.api_status or 404, json.dumps({
                "message": "Not Found", "documentation_url": "https://docs.github.com/rest/releases/releases",
                "status": str(self.api_status or 404)}).encode(), dict(self._rate_headers(), **js))
        body = json.dumps(self.release_json(rel), indent=2).encode()
        etag = 'W/"%s"' % hashlib.sha256(body).hexdigest()
        if h.headers.get("If-None-Match") == etag:
            return self._send(h, 304, b"", dict(self._rate_headers(), ETag=etag))
        with self.lock:
            self.rate_remaining -= 1
        return self._send(h, 200, body, dict(self._rate_headers(), ETag=etag, **js), chunked=True)

    def _download(self, h, rest):
        tag, _, name = rest.partition("/")
        rel = next((r for r in self.releases if r["tag"] == tag), None)
        if rel is None or name not in rel["assets"]:
            return self._send(h, 404, b"Not Found", {"Content-Type": "text/plain"})
        exp = int(time.time()) + 300
        sig = self._sign(tag, name, exp)
        loc = "%s/github-production-release-asset/%d/%s/%s?sp=r&sv=2018-11-09&sr=b&spr=https&se=%d" \
              "&rscd=attachment%%3B+filename%%3D%s&rsct=application%%2Foctet-stream&skoid=%s&jwt=%s&sig=%s" % (
                  self.asset_url, rel["id"], tag, name, exp, name, "a" * 36, "eyJ" + "x" * 700, sig)
        self._send(h, 302, b"", {"Location": loc, "Content-Security-Policy": "default-src 'none'; " + "x" * 5000})

    def _sign(self, tag, name, exp):
        return hmac.new(self.key, ("%s/%s/%d" % (tag, name, exp)).encode(), "sha256").hexdigest()

    # ---- the asset host (release-assets.githubusercontent.com) ---------------------

    def _asset(self, h):
        path, _, query = h.path.partition("?")
        q = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        parts = path.split("/")
        if len(parts) != 5 or parts[1] != "github-production-release-asset":
            return self._send(h, 404, b"<Error><Code>BlobNotFound</Code></Error>", {"Content-Type": "application/xml"})
        tag, name = parts[3], parts[4]
        exp = int(q.get("se", "0"))
        if h.headers.get("Authorization") or exp < time.time() or \
                not hmac.compare_digest(q.get("sig", ""), self._sign(tag, name, exp)):
            return self._send(h, 403, b"<Error><Code>AuthenticationFailed</Code></Error>",
                              {"Content-Type": "application/xml"})
        rel = next((r for r in self.releases if r["tag"] == tag), None)
        fault = self.fault.get(name)
        if rel is None or name not in rel["assets"] or fault == "404":
            return self._send(h, 404, b"<Error><Code>BlobNotFound</Code></Error>", {"Content-Type": "application/xml"})
        data = rel["assets"][name]
        hdr = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes",
               "Content-Disposition": "attachment; filename=" + name, "ETag": '"0x8DC"'}
        if fault == "tamper":           # one byte of a file inside changes, the size stays
            i = tamper_offset(data)
            data = data[:i] + bytes([data[i] ^ 0x55]) + data[i + 1:]
        elif fault == "extra":          # more bytes than the release lists
            data = data + b"\0" * 512
        elif fault == "truncate":       # announces the full size, stops half-way
            h.send_response(200)
            for k, v in hdr.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[:len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        self._send(h, 200, data, hdr)
