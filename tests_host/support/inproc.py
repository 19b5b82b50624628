"""For the tests that run the real Gateway in the test's own process
(CPython): one HTTP/1.0 request over a real socket to its server, or its
routes through Microdot's TestClient."""
import asyncio
import json


async def http(port, method="GET", path="/api/info", body=None):
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    data = b"" if body is None else json.dumps(body).encode()
    w.write(("%s %s HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
             % (method, path, len(data))).encode() + data)
    await w.drain()
    raw = await asyncio.wait_for(r.read(), 5)
    w.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def with_test_client(gw, fn):
    """gw's web app (gateway.web.api, as gw.run() makes it) and
    asyncio.run(fn(TestClient)); returns what fn returns."""
    async def main():
        from gateway.web.api import make_app
        from microdot.test_client import TestClient
        gw.api = make_app(gw)
        return await fn(TestClient(gw.api))
    return asyncio.run(main())
