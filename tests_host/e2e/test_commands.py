"""Every command to the DTU, whoever asks (the HTTP API, MQTT, openHAB),
enters through Gateway.command(): a typed command, queued with the
scheduler, logged as an event of its source, the link woken. One test per
caller, on the real Gateway (CPython, in-process, the API over a real
socket on 127.0.0.1)."""
import asyncio
import json

import pytest

from proc_util import free_port
from support.inproc import http

from board.host import Board
from gateway.app import Gateway
from gateway.integrations.mqtt_bridge import MqttBridge
from gateway.integrations.openhab import OpenHab
from gateway.link import commands

NAMES = {commands.SET_LIMIT: "SetLimit", commands.REBOOT_DTU: "RebootDtu",
         commands.RESTART_INVERTER: "RestartInverter"}


class Spy:
    """The gateway with its command path and the link's wake-up recorded."""

    def __init__(self, tmp_path):
        # a DTU address nothing listens on: the link's rounds fail, which is no matter here
        self.gw = gw = Gateway(Board(data_dir=str(tmp_path)), dtu_override="127.0.0.1:9")
        self.calls, self.wakes = [], 0
        real_command, real_wake = gw.command, gw.link.wake

        def command(cmd, source):
            self.calls.append((NAMES[cmd.kind], source))
            return real_command(cmd, source)

        def wake():
            self.wakes += 1
            real_wake()
        gw.command, gw.link.wake = command, wake

    def events(self, source):
        """The messages of `source`'s events, oldest first (the ring lists the newest first)."""
        return [e["msg"] for e in json.loads(b"".join(self.gw.events.json_chunks()))["events"]
                if e["kind"] == source][::-1]


def test_the_range_check_is_one_and_strict():
    assert [commands.percent(v) for v in (0, 1, 55, 100)] == [0, 1, 55, 100]
    for bad in (-1, 101, 55.0, True, "55", None):
        with pytest.raises(ValueError):
            commands.percent(bad)
    with pytest.raises(ValueError):
        commands.Command(commands.SET_LIMIT, 101)
    with pytest.raises(ValueError):
        commands.Command(7)


def test_the_api_sends_every_command_through_the_one_path(tmp_path):
    spy = Spy(tmp_path)
    gw = spy.gw
    port = free_port()

    async def main():
        task = asyncio.create_task(gw.run("127.0.0.1", port))
        for _ in range(100):
            if gw.api is not None and gw.api.server is not None:
                break
            await asyncio.sleep(0.05)
        try:
            status, body = await http(port, "POST", "/api/power-limit", {"limit": 55})
            assert (status, json.loads(body)) == (202, {"limit": 55, "pending": True})
            assert spy.calls == [("SetLimit", "api")] and gw.sched.want_limit == 55
            assert spy.wakes >= 1 and spy.events("api") == ["power limit 55 % requested"]
            # bad input never reaches the path
            for bad in ({"limit": 101}, {"limit": "55"}, {"limit": 55, "x": 1}, {}):
                status, body = await http(port, "POST", "/api/power-limit", bad)
                assert status == 400 and "error" in json.loads(body), bad
            assert spy.calls == [("SetLimit", "api")] and gw.sched.want_limit == 55
            wakes = spy.wakes
            assert (await http(port, "POST", "/api/dtu/reboot", {}))[0] == 202
            assert (await http(port, "POST", "/api/inverter/restart", {}))[0] == 202
            assert spy.calls[1:] == [("RebootDtu", "api"), ("RestartInverter", "api")]
            assert gw.sched.want_reboot and gw.sched.want_restart and spy.wakes >= wakes + 2
            assert spy.events("api")[1:] == ["DTU reboot requested", "inverter restart requested"]
        finally:
            gw.stop()
            await asyncio.wait_for(task, 10)
    asyncio.run(main())


def test_mqtt_sends_every_command_through_the_one_path(tmp_path):
    spy = Spy(tmp_path)
    gw = spy.gw
    bridge = MqttBridge(gw)
    bridge.base = "dtu"
    bridge._publish = lambda *a: None           # no broker here: what the bridge sends is not the point
    bridge._on_message("dtu/set/power_limit", b"60", False)
    assert spy.calls == [("SetLimit", "mqtt")] and gw.sched.want_limit == 60 and spy.wakes == 1
    bridge._on_message("dtu/set/power_limit", b"160", False)     # refused before the path
    bridge._on_message("dtu/set/power_limit", b"30", True)       # a retained command is ignored
    assert spy.calls == [("SetLimit", "mqtt")] and gw.sched.want_limit == 60
    bridge._on_message("dtu/set/dtu_reboot", b"PRESS", False)
    bridge._on_message("dtu/set/inverter_restart", b"PRESS", False)
    assert spy.calls[1:] == [("RebootDtu", "mqtt"), ("RestartInverter", "mqtt")] and spy.wakes == 3
    assert spy.events("mqtt")[0] == "power limit 60 % requested"
    assert spy.events("mqtt")[-2:] == ["DTU reboot requested", "inverter restart requested"]


def test_openhab_sends_the_limit_through_the_one_path(tmp_path):
    spy = Spy(tmp_path)
    gw = spy.gw
    oh = OpenHab(gw)
    answers = [(200, b"40"), (200, b"40"), (200, b"NULL"), (200, b"70 %")]

    async def call(method, path, body=None):
        assert (method, path) == ("GET", "/rest/items/dtuGateway_power_limit_set/state")
        return answers.pop(0)
    oh._call = call

    async def main():
        for _ in range(4):
            await oh._read_limit()
    asyncio.run(main())
    # 40 once (not again while the item keeps it), NULL ignored, then 70
    assert spy.calls == [("SetLimit", "openhab")] * 2 and gw.sched.want_limit == 70
    assert spy.wakes == 2
    assert spy.events("openhab") == ["power limit 40 % requested", "power limit 70 % requested"]
