"""Calls the boards do not have (tools/check_board_stubs.py): mypy over the
board-side code against the ESP32's and the ESP8266's published stubs finds
nothing new, and the same check does find such a call in a small file written
here (a check that cannot fail proves nothing), passes a correct one, and sets
aside only what the board never runs (CPython fallbacks, host-only branches)."""
import importlib.metadata
import os
import subprocess
import sys
import textwrap

import pytest

from support.env import ROOT

sys.path.append(os.path.join(ROOT, "tools"))
import check_board_stubs as stubcheck  # noqa: E402  (tools/check_board_stubs.py)

TOOL = os.path.join(ROOT, "tools", "check_board_stubs.py")
BOARDS = stubcheck.BOARDS

# name -> (source, {board: findings' symbols}); a board left out expects none.
CASES = {
    # what the issue names
    "monotonic": ("import time\nt = time.monotonic()\n",
                  {"esp32": {"time.monotonic"}, "esp8266": {"time.monotonic"}}),
    "wlan_method": ("import network\nnetwork.WLAN(0).nosuchmethod()\n",
                    {"esp32": {"WLAN.nosuchmethod"}, "esp8266": {"WLAN.nosuchmethod"}}),
    "epoll": ("import select\np = select.epoll()\n",
              {"esp32": {"select.epoll"}, "esp8266": {"select.epoll"}}),
    "os_path": ("import os\nos.path.join('a', 'b')\n",
                {"esp32": {"os.path"}, "esp8266": {"os.path"}}),
    "no_module": ("import threading\n",
                  {"esp32": {"threading"}, "esp8266": {"threading"}}),
    "from_import": ("from time import monotonic\n",
                    {"esp32": {"time.monotonic"}, "esp8266": {"time.monotonic"}}),
    "alias": ("import time as t\nt.monotonic()\n",
              {"esp32": {"time.monotonic"}, "esp8266": {"time.monotonic"}}),
    # no annotations: the body of an unannotated function, a method, a coroutine
    "unannotated": (textwrap.dedent("""\
        import asyncio
        import time


        def age(t0):
            return time.monotonic() - t0


        class Link:
            def __init__(self, host):
                self.host = host

            async def run(self):
                await asyncio.get_running_loop().sock_connect(None, self.host)
        """), {"esp32": {"time.monotonic", "asyncio.get_running_loop"},
               "esp8266": {"time.monotonic", "asyncio.get_running_loop"}}),
    # one board has it, the other does not: each board has its own stubs
    "bluetooth": ("import bluetooth\nble = bluetooth.BLE()\n", {"esp8266": {"bluetooth"}}),
    "esp32_module": ("import esp32\np = esp32.Partition(esp32.Partition.RUNNING)\n",
                     {"esp8266": {"esp32"}}),
    # correct calls pass on both boards
    "correct": (textwrap.dedent("""\
        import asyncio
        import gc
        import machine
        import network
        import os
        import select
        import socket
        import sys
        import time
        from micropython import const

        N = const(4)


        def tick():
            t = time.ticks_ms()
            time.sleep_ms(1)
            gc.collect()
            return time.ticks_diff(time.ticks_ms(), t), gc.mem_free(), machine.reset_cause()


        def net():
            w = network.WLAN(network.STA_IF)
            w.active(True)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            p = select.poll()
            p.register(s, select.POLLIN)
            return w.isconnected(), p.ipoll(0), os.listdir("/"), sys.platform


        async def main():
            await asyncio.sleep_ms(10)
            asyncio.create_task(main())
        """), {}),
    # the CPython stand-ins the board never runs are set aside ...
    "fallbacks": (textwrap.dedent("""\
        import sys

        try:
            from time import ticks_diff, ticks_ms
        except ImportError:  # CPython
            import time

            def ticks_ms():
                return int(time.monotonic() * 1000)

        try:
            import frozen_marker
        except ImportError:
            frozen_marker = None


        def tls():
            if sys.implementation.name != "micropython":
                import ssl
                return ssl.create_default_context()
            return None
        """), {}),
    # ... but not when the board takes the fallback, nor under a broad except
    "fallback_taken": (textwrap.dedent("""\
        try:
            from time import monotonic
        except ImportError:
            import select
            p = select.epoll()
        """), {"esp32": {"select.epoll"}, "esp8266": {"select.epoll"}}),
    "broad_except": (textwrap.dedent("""\
        import time
        try:
            t = time.monotonic()
        except Exception:
            t = 0
        """), {"esp32": {"time.monotonic"}, "esp8266": {"time.monotonic"}}),
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    d = tmp_path_factory.mktemp("stubcase")
    files = {}
    for name, (text, _) in CASES.items():
        p = d / ("case_%s.py" % name)
        p.write_text(text)
        files[name] = str(p)
    # one mypy run per board for all the small files
    runs = {b: stubcheck.check(b, sorted(files.values()), [str(d)]) for b in BOARDS}
    return files, runs


def _by_file(run, path):
    return [it for it in run.items if it.path == path]


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_call_the_board_lacks_is_found_and_a_correct_one_passes(cases, name, board):
    files, runs = cases
    items = _by_file(runs[board], files[name])
    found = {it.symbol for it in items if it.kind == "finding"}
    assert found == CASES[name][1].get(board, set()), items


def test_what_is_set_aside_is_said_and_why(cases):
    files, runs = cases
    kinds = {(it.symbol, it.kind) for it in _by_file(runs["esp32"], files["fallbacks"])}
    assert kinds == {("time.monotonic", "fallback"), ("frozen_marker", "guarded"),
                     ("ssl.create_default_context", "host")}
    taken = {(it.symbol, it.kind) for it in _by_file(runs["esp32"], files["fallback_taken"])}
    assert taken == {("time.monotonic", "guarded"), ("select.epoll", "finding")}
    why = [it.why for it in _by_file(runs["esp32"], files["fallback_taken"]) if it.kind == "finding"]
    assert "the board takes this handler: time.monotonic" in why[0]


def test_the_tool_fails_on_a_finding_and_passes_correct_code(cases):
    files, _ = cases
    bad = subprocess.run([sys.executable, TOOL, "--board", "esp32", files["wlan_method"]],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "WLAN.nosuchmethod" in bad.stdout and "1 findings" in bad.stdout
    good = subprocess.run([sys.executable, TOOL, "--board", "esp8266", files["correct"]],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert good.returncode == 0, good.stdout + good.stderr


@pytest.mark.parametrize("board", BOARDS)
def test_the_board_side_code_has_no_call_the_board_lacks(board):
    """The real check, as `make test` runs it. A new finding: fix the code (README
    "How the protocol is proven"), or, if the board does have it (a gap in the stubs) or
    never gets there, add it to ALLOWED in tools/check_board_stubs.py with the reason."""
    r = subprocess.run([sys.executable, TOOL, "--board", board],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    print(r.stdout)     # "<board>: 0 findings ... in 1.2 s" (pytest -s shows it)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("%s: 0 findings, 0 stale" % board), r.stdout


def test_the_checked_files_are_the_board_side_code_without_the_host_only():
    files = stubcheck.board_files()
    assert {f.split("/")[0] for f in files} == {"firmware", "lib", "proto_min"}
    assert "firmware/board/host.py" not in files
    assert "firmware/main.py" in files and "lib/dtu/client.py" in files
    assert "proto_min/codec.py" in files
    # each board's check covers what its build carries (gateway/profiles.py)
    lean, full = stubcheck.board_files("esp8266"), stubcheck.board_files("esp32")
    assert "firmware/gateway/ota/image.py" in full and "firmware/gateway/ota/image.py" not in lean
    assert "firmware/gateway/integrations/openhab.py" not in lean and "lib/dtu/client.py" in lean
    assert set(lean) < set(full) == set(files)


def test_every_allowed_entry_names_a_file_a_verdict_and_a_reason():
    for boards, path, symbol, verdict, why in stubcheck.ALLOWED:
        assert set(boards.split()) <= set(BOARDS), boards
        assert os.path.exists(os.path.join(ROOT, path)), path
        assert verdict in (stubcheck.STUB_GAP, stubcheck.NOT_REACHED, stubcheck.BUG)
        assert "." in symbol and len(why) > 20


@pytest.mark.parametrize("board", BOARDS)
def test_each_board_has_its_own_pinned_stubs_outside_the_venv(board):
    pins = stubcheck.pins(board)
    assert all("==" in p for p in pins)
    assert any(p.startswith("micropython-%s-%s-generic-stubs==1.28." % (board, board))
               for p in pins), pins
    d = stubcheck.install(board)
    assert stubcheck.installed(board)
    assert os.path.exists(os.path.join(d, "machine.pyi"))
    assert os.path.exists(os.path.join(d, "stdlib", "VERSIONS"))   # the typeshed mypy is given
    assert os.path.exists(os.path.join(d, "esp32.pyi")) == (board == "esp32")
    # the marker in requirements-dev.txt keeps them out of .venv (they would clash there)
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("micropython-%s-%s-generic-stubs" % (board, board))
