"""Self-healing in the real gateway (CPython, in-process, real sockets on
127.0.0.1): safe mode keeps the DTU untouched, runs only the setup features
and says why in /api/info and on /safe-mode; the watchdog task is fed while
the real DTU link beats and the real web server answers, and not once the
link hangs."""
import asyncio
import json
import os
import sys

import pytest

from support.env import ROOT
from support.inproc import http
from proc_util import free_port

from board.host import Board
from gateway import health, profiles, safemode, selfheal
from gateway.app import Gateway


class WdtBoard(Board):
    """The host board plus a watchdog that records its feeds."""

    def watchdog(self, timeout_ms, on_expire=None):
        self.wdt = {"timeout": timeout_ms, "feeds": 0, "stopped": False}
        outer = self

        class W:
            def feed(self):
                outer.wdt["feeds"] += 1

            def stop(self):
                outer.wdt["stopped"] = True
        return W()


class FakeDtu:
    """A listening socket that only counts connections: the DTU must see none."""

    def __init__(self):
        self.connections = 0

    async def start(self):
        async def on(reader, writer):
            self.connections += 1
            writer.close()
        self.server = await asyncio.start_server(on, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    monkeypatch.setattr(health, "_default", health.Health())
    monkeypatch.setattr(safemode, "_path", None)
    monkeypatch.setattr(safemode, "last", None)
    yield


def run_gateway(board, safe, scenario, dtu=None):
    """Start the gateway on an ephemeral port, run `scenario(gw, port)`, stop."""
    async def main():
        port = free_port()
        gw = Gateway(board, dtu_override=dtu, safe_mode=safe)
        task = asyncio.create_task(gw.run("127.0.0.1", port))
        try:
            for _ in range(100):                          # the server is up within 5 s
                try:
                    await http(port, path="/api/data")
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            return await scenario(gw, port)
        finally:
            gw.stop()
            await asyncio.sleep(0.1)
            task.cancel()
    return asyncio.run(main())


def test_safe_mode_no_dtu_traffic_setup_only_and_says_why(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"dtu.cloud_pause": False}))
    board = Board(data_dir=str(tmp_path))
    dtu = FakeDtu()
    reason = "3 crashes in a row, each within 5 min of boot; last: MemoryError: x"

    async def scenario(gw, port):
        status, body = await http(port)
        info = json.loads(body)
        assert status == 200 and info["safeMode"] == {"active": True, "reason": reason}
        status, page = await http(port, path="/safe-mode")
        assert status == 200 and reason.encode() in page and b"does not talk to the DTU" in page
        # a settings change re-applies the settings: the DTU stays off
        status, _ = await http(port, "POST", "/api/config", {"dtu.interval": 45})
        assert status == 200
        await asyncio.sleep(1.5)
        assert gw.sched.enabled is False
        names = sorted(type(f).__module__ for f in gw.features)
        safe = {mod for name, mod, _ in profiles.FEATURES if name in profiles.SAFE}
        assert set(names) <= safe and "gateway.selfheal" in names
        events = json.loads((await http(port, path="/api/events"))[1])["events"]
        assert any(e["kind"] == "safemode" and e["msg"] == reason for e in events)
        return True

    async def main():
        dport = await dtu.start()
        gwapp_board = board
        return await asyncio.to_thread(run_gateway, gwapp_board, {"active": True, "reason": reason},
                                       scenario, "127.0.0.1:%d" % dport)
    assert asyncio.run(main())
    assert dtu.connections == 0


def test_normal_mode_reports_safe_mode_off_and_polls_the_dtu(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"dtu.cloud_pause": False}))
    board = Board(data_dir=str(tmp_path))
    dtu = FakeDtu()

    async def scenario(gw, port):
        info = json.loads((await http(port))[1])
        assert info["safeMode"] == {"active": False, "reason": ""}
        status, _ = await http(port, path="/safe-mode")
        assert status == 404                      # only in safe mode
        await asyncio.sleep(1.0)
        return gw.sched.enabled

    async def main():
        dport = await dtu.start()
        return await asyncio.to_thread(run_gateway, board, None, scenario, "127.0.0.1:%d" % dport)
    assert asyncio.run(main()) is True
    assert dtu.connections >= 1                   # the control: the link does reach it


def test_watchdog_fed_while_link_and_api_progress_not_once_the_link_hangs(tmp_path, monkeypatch):
    monkeypatch.setattr(selfheal, "FEED_EVERY", 0.1)
    monkeypatch.setattr(health, "LINK_SLACK", 1)   # the link (no DTU set) promises 5 + 1 s
    (tmp_path / "settings.json").write_text(json.dumps({"dtu.cloud_pause": False}))
    board = WdtBoard(data_dir=str(tmp_path))

    async def scenario(gw, port):
        sh = [f for f in gw.features if isinstance(f, selfheal.SelfHeal)][0]
        await asyncio.sleep(1.0)
        assert board.wdt["timeout"] == selfheal.WDT_TIMEOUT_MS
        fed = board.wdt["feeds"]
        assert fed >= 5 and sh.starving is None
        assert "link" in health.default().names()
        # requests beat for the web server
        health.default().forget("api")
        assert (await http(port, path="/api/data"))[0] == 200
        assert "api" in health.default().names()

        async def hang(seconds):                  # the link's loop stops making progress
            await asyncio.sleep(3600)
        gw.link._pause = hang
        gw.link.wake()
        deadline = asyncio.get_running_loop().time() + 15
        while sh.starving is None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert sh.starving == "link"
        before = board.wdt["feeds"]
        await asyncio.sleep(1.0)
        assert board.wdt["feeds"] == before       # no feed: the board would reset now
        events = json.loads((await http(port, path="/api/events"))[1])["events"]
        assert any(e["kind"] == "watchdog" and "link" in e["msg"] for e in events)
        return True

    assert run_gateway(board, None, scenario)
    assert board.wdt["stopped"]                  # gw.stop() disarms it (Ctrl-C on a board)


# ---- firmware/main.py: how the board's entry point ends ----------------------------

class _MainBoard:
    def __init__(self, data_dir, cause="soft", button=1):
        self.data_dir = data_dir
        self.cause = cause
        self.button = button

    def reset_cause(self):
        return self.cause

    def button_level(self):
        return self.button

    def reset(self):
        raise AssertionError("main.py resets through machine.reset()")


def run_main(monkeypatch, board, outcome):
    """Run firmware/main.py with the board and the Gateway replaced: the
    gateway's run() ends with `outcome` (an exception, or None to return).
    -> (SystemExit code of machine.reset() or None, the fake gateway)."""
    import types
    fake_board = types.ModuleType("board.current")
    fake_board.load = lambda: board
    made = []

    class FakeGateway:
        def __init__(self, b, safe_mode=None):
            self.safe_mode = safe_mode
            self.stopped = 0
            made.append(self)

        async def run(self, host, port):
            if outcome is not None:
                raise outcome

        def stop(self):
            self.stopped += 1
    fake_app = types.ModuleType("gateway.app")
    fake_app.Gateway = FakeGateway
    fake_machine = types.ModuleType("machine")

    def reset():
        raise SystemExit(99)
    fake_machine.reset = reset
    monkeypatch.setitem(sys.modules, "board.current", fake_board)
    monkeypatch.setitem(sys.modules, "gateway.app", fake_app)
    monkeypatch.setitem(sys.modules, "machine", fake_machine)
    monkeypatch.setattr("time.sleep", lambda s: None)
    with open(os.path.join(ROOT, "firmware", "main.py")) as f:
        code = compile(f.read(), "main.py", "exec")
    try:
        exec(code, {"__name__": "__main__"})
        rc = None
    except SystemExit as e:
        rc = e.code
    return rc, made[0] if made else None


def boot_record(tmp_path):
    return json.loads((tmp_path / "boot.json").read_text())


def test_main_records_a_crash_and_resets(monkeypatch, tmp_path):
    rc, gw = run_main(monkeypatch, _MainBoard(str(tmp_path)), MemoryError("memory allocation failed"))
    assert rc == 99                                   # machine.reset()
    assert boot_record(tmp_path) == {"n": 0, "run": True, "why": "MemoryError: memory allocation failed"}
    assert gw.stopped >= 1 and gw.safe_mode == {"active": False, "reason": ""}


def test_main_three_crashes_then_safe_mode(monkeypatch, tmp_path):
    board = _MainBoard(str(tmp_path), cause="power")
    for i in range(3):
        rc, gw = run_main(monkeypatch, board, OSError(12, "ENOMEM"))
        assert rc == 99 and not gw.safe_mode["active"]
        board.cause = "crash"
    rc, gw = run_main(monkeypatch, board, None)       # the 4th boot: safe mode ...
    assert gw.safe_mode["active"] and "3 crashes in a row" in gw.safe_mode["reason"]
    assert "ENOMEM" in gw.safe_mode["reason"]
    assert rc == 99 and "the app ended" in boot_record(tmp_path)["why"]   # ... whose run returned


def test_main_ctrl_c_is_a_clean_stop(monkeypatch, tmp_path, capsys):
    rc, gw = run_main(monkeypatch, _MainBoard(str(tmp_path)), KeyboardInterrupt())
    assert rc is None and gw.stopped == 1             # no reset; the prompt is free
    assert boot_record(tmp_path)["run"] is False
    assert "gateway stopped" in capsys.readouterr().out


def test_main_button_held_forces_safe_mode(monkeypatch, tmp_path):
    rc, gw = run_main(monkeypatch, _MainBoard(str(tmp_path), cause="power", button=0), KeyboardInterrupt())
    assert gw.safe_mode == {"active": True, "reason": "the button was held at boot"}
