"""pytest set-up: the board-side code is imported the way the board sees it,
the shared helpers as the `support` package; one `runtime` fixture for every
test that runs the gateway (or a client) under both Pythons."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (os.path.join(ROOT, "tools", "host_shims"), os.path.join(ROOT, "tools"),
          os.path.join(ROOT, "firmware"), os.path.join(ROOT, "lib"), ROOT, HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

import pytest  # noqa: E402

from support.env import micropython_bin  # noqa: E402

RUNTIMES = ["cpython", "micropython"]


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(request):
    """"cpython" or "micropython": the suite runs each such test under both.
    The unix MicroPython is part of the set-up, so its absence fails."""
    if request.param == "micropython" and not micropython_bin():
        pytest.fail("no unix MicroPython: run `make setup`")
    return request.param


@pytest.fixture(scope="session")
def micropython():
    """The unix MicroPython's path, for tests that run only under it."""
    mp = micropython_bin()
    if not mp:
        pytest.fail("no unix MicroPython: run `make setup`")
    return mp
