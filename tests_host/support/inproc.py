"""For the tests that run the real Gateway in the test's own process
(CPython): one HTTP/1.0 request over a real socket to its server."""
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
