"""Our DtuClient against the in-process simulated DTU (tools/dtu_sim.py):
normal traffic, multi-package replies, encryption, and every fault turned into
the typed error the gateway acts on."""
import asyncio
import time

import pytest

from dtu import readings
from dtu import schemas as s
from dtu.client import DtuBadFrame, DtuClient, DtuClosed, DtuTimeout
from dtu_sim import DtuSimulator
from support.env import ROOT

TIMEOUT = 0.5


def clock():
    # The client's messages need whole seconds (see messages.py: `now` is encoded as an int).
    return int(time.time())


def offset_to(hour, minute=0, second=0):
    now = time.time()
    return now - now % 86400 + hour * 3600 + minute * 60 + second - now


def run(test, **options):
    """Run `await test(sim, client)` against a fresh simulator at noon."""
    async def main():
        options.setdefault("min_gap", 0)
        options.setdefault("cloud", False)
        options.setdefault("time_offset", offset_to(12))
        sim = DtuSimulator(**options)
        await sim.start("127.0.0.1", 0)
        client = DtuClient("127.0.0.1", sim.port, clock=clock, timeout=TIMEOUT,
                           connect_timeout=TIMEOUT)
        try:
            await test(sim, client)
        finally:
            await client.close()
            await sim.stop()
    asyncio.run(main())


def test_real_data_and_config():
    async def test(sim, client):
        data = await client.get_real_data()
        assert data == sim.model.last_real_data
        r = readings.real_data(data)
        assert 600 < r["grid"]["p"] <= 800 and len(r["pv"]) == 2
        assert r["dtu_serial"] == "4143A0123456" and r["inverter"]["serial"] == 0x116491234567
        assert client.cipher is None and client.app_info["dtu_serial_number"] == "4143A0123456"
        assert (await client.get_config())["limit_power_mypower"] == 1000
        assert (await client.heartbeat())["dtu_serial_number"] == "4143A0123456"
        assert (await client.get_network_info())["dtu_sn"] == "4143A0123456"
        c = sim.model.counters
        assert c["connections"] == 1 and c["requests"] == 5      # AppInfo once per connection
    run(test)


def test_set_limit_and_confirm_with_command_status():
    async def test(sim, client):
        tid = await client.set_power_limit(30)
        st = await client.command_status(s.ACTION_LIMIT_POWER, tid)
        assert "mi_sns_sucs" in st or st["mi_mOperatingStatus"][0].get("progress_rate", 0) < 100
        for _ in range(20):
            st = await client.command_status(s.ACTION_LIMIT_POWER, tid)
            if st.get("mi_sns_sucs"):
                break
            await asyncio.sleep(0.05)
        assert st["mi_sns_sucs"] == [sim.model.inverter_serial]
        assert sim.model.limit == 30 and sim.model.inverter.limit == 30
        assert sim.model.counters["limit_writes"] == 1
        assert (await client.get_config())["limit_power_mypower"] == 300
    run(test, apply_delay=0.3)


def test_reboot_refuses_then_comes_back():
    async def test(sim, client):
        await client.get_real_data()
        await client.reboot_dtu()
        with pytest.raises(DtuClosed):
            await client.get_real_data()        # the connection went down with the DTU
        with pytest.raises(DtuClosed):
            await client.get_real_data()        # and new ones are refused
        await asyncio.sleep(0.6)
        assert (await client.get_real_data())["timestamp"] > 0
        assert sim.model.counters["reboots"] == 1 and sim.model.counters["refused"] >= 1
    run(test, reboot_seconds=0.5)


def test_multi_package_reply_is_merged():
    async def test(sim, client):
        data = await client.get_real_data()
        assert data["ap"] == 3 and [p["port_number"] for p in data["pv_data"]] == [1, 2]
        assert data["sgs_data"] == sim.model.last_real_data["sgs_data"]
        assert data["pv_data"] == sim.model.last_real_data["pv_data"]
        assert sim.model.counters["requests"] == 4               # AppInfo + 3 packages
    run(test, packages=3)


@pytest.mark.parametrize("fault, params", [
    ("garbage", {}), ("badcrc", {})])
def test_garbage_and_bad_crc_are_bad_frames(fault, params):
    async def test(sim, client):
        await client.get_app_info()
        sim.model.set_fault(fault, times=1, **params)
        with pytest.raises(DtuBadFrame):
            await client.get_real_data()
        assert not client.connected
        assert (await client.get_real_data())["sgs_data"]      # reconnects, works again
    run(test)


def test_garbage_before_a_reply_is_skipped():
    async def test(sim, client):
        sim.model.set_fault("garbage", mode="before", size=50)
        assert (await client.get_real_data()) == sim.model.last_real_data
    run(test)


def test_drop_mid_frame_is_closed():
    async def test(sim, client):
        await client.get_app_info()
        sim.model.set_fault("drop", times=1)
        with pytest.raises(DtuClosed):
            await client.get_real_data()
        assert (await client.get_real_data())["sgs_data"]
    run(test)


def test_silence_times_out_within_the_client_timeout():
    async def test(sim, client):
        await client.get_app_info()
        sim.model.set_fault("silent", duration=60)
        t0 = time.monotonic()
        with pytest.raises(DtuTimeout):
            await client.get_real_data()
        assert time.monotonic() - t0 < TIMEOUT + 0.5
        sim.model.clear_fault("silent")
        assert (await client.get_real_data())["sgs_data"]
        assert sim.model.counters["hangs_induced"] == 0
    run(test)


def test_getconfig_silent_times_out_but_real_data_works():
    async def test(sim, client):
        with pytest.raises(DtuTimeout):
            await client.get_config()
        assert (await client.get_real_data())["sgs_data"]
    run(test, getconfig_silent=True)


def test_slow_reply_in_pieces_still_decodes():
    async def test(sim, client):
        sim.model.set_fault("slow", delay=0.2, piece=5, gap=0.005)
        t0 = time.monotonic()
        assert (await client.get_real_data()) == sim.model.last_real_data
        assert time.monotonic() - t0 >= 0.4          # AppInfo and RealData, each late
    run(test)


def test_writes_too_close_hang_the_dtu():
    async def test(sim, client):
        await client.set_power_limit(50)
        with pytest.raises(DtuTimeout):
            await client.set_power_limit(60)          # a second write right after the first
        with pytest.raises(DtuTimeout):
            await client.get_real_data()              # and now it is hung
        c = sim.model.counters
        assert c["hangs_induced"] == 1 and sim.model.limit == 50
    run(test, min_gap=31)


def test_talking_during_an_upload_window_is_counted():
    async def test(sim, client):
        await client.get_real_data()
        assert sim.model.counters["uploads_disturbed"] == 1
    run(test, cloud=True, time_offset=offset_to(12, 4, 52))


def test_two_connections_at_once():
    async def test(sim, client):
        other = DtuClient("127.0.0.1", sim.port, clock=clock, timeout=TIMEOUT)
        try:
            a, b = await asyncio.gather(client.get_real_data(), other.get_real_data())
            assert a["sgs_data"] == b["sgs_data"]
            assert sim.model.counters["connections"] == 2
        finally:
            await other.close()
    run(test)


def test_wifi_credentials_via_the_access_point_end_a_hang():
    async def main():
        sim = DtuSimulator(min_gap=31, cloud=False, rejoin_seconds=0.3)
        await sim.start("127.0.0.1", 0, ap=("127.0.0.1", 0))
        home = DtuClient("127.0.0.1", sim.port, clock=clock, timeout=TIMEOUT)
        ap = DtuClient("127.0.0.1", sim.ap_port, clock=clock, timeout=TIMEOUT)
        try:
            await home.set_power_limit(50)
            with pytest.raises(DtuTimeout):
                await home.set_power_limit(60)          # hung now, for 30 minutes
            await ap.set_wifi("HomeWiFi", "home-secret")  # the last rung of the ladder
            assert sim.model.state() == "offline"        # rejoining the WiFi
            await asyncio.sleep(0.5)
            assert (await home.get_real_data())["timestamp"] > 0
            assert sim.model.counters["hangs_induced"] == 1
        finally:
            await home.close()
            await ap.close()
            await sim.stop()
    asyncio.run(main())


def test_encrypted_dtu_detected_and_rekeyed_after_reboot():
    async def test(sim, client):
        data = await client.get_real_data()
        assert client.cipher is not None                     # found by itself via AppInfo
        assert data == sim.model.last_real_data
        key = sim.model.enc_rand
        assert client.app_info["dtu_info"]["enc_rand"] == key
        await client.set_power_limit(70)
        assert sim.model.limit == 70
        sim.model.set_fault("reboot", seconds=0.3)
        with pytest.raises(DtuClosed):
            await client.get_real_data()
        await asyncio.sleep(0.5)
        data = await client.get_real_data()                  # reconnects, new AppInfo, new key
        assert sim.model.enc_rand != key
        assert client.app_info["dtu_info"]["enc_rand"] == sim.model.enc_rand
        assert data == sim.model.last_real_data
        assert (await client.get_config())["limit_power_mypower"] == 700
        assert sim.model.counters["bad_frames_in"] == 0
    run(test, encrypted=True)


def test_command_line_simulator_and_its_control_api(tmp_path):
    import json
    import os
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    script = os.path.join(ROOT, "tools", "dtu_sim.py")
    proc = subprocess.Popen(
        [sys.executable, script, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
         "--min-gap", "0", "--no-cloud", "--time-offset", str(offset_to(12))],
        cwd=str(tmp_path), stderr=subprocess.PIPE, text=True)    # from another cwd
    try:
        banner = proc.stderr.readline()
        port, control = map(int, re.search(r"on 127.0.0.1:(\d+), control on 127.0.0.1:(\d+)",
                                           banner).groups())
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def call(path, body=None):
            data = json.dumps(body).encode() if body is not None else None
            with opener.open("http://127.0.0.1:%d%s" % (control, path), data, timeout=5) as r:
                return json.loads(r.read())

        async def fetch():
            client = DtuClient("127.0.0.1", port, clock=clock, timeout=TIMEOUT)
            try:
                return await client.get_real_data()
            finally:
                await client.close()

        assert asyncio.run(fetch())["sgs_data"][0]["active_power"] > 0
        assert call("/counters")["counters"]["requests"] == 2
        call("/fault", {"name": "badcrc", "times": 1})
        with pytest.raises(DtuBadFrame):
            asyncio.run(fetch())
        assert call("/reboot", {"seconds": 30})["state"] == "offline"
        with pytest.raises(DtuClosed):
            asyncio.run(fetch())
        assert call("/clear", {})["state"] == "online"
        asyncio.run(asyncio.sleep(0.15))                 # the listener reopens
        assert asyncio.run(fetch())["timestamp"] > 0
        status = call("/counters")
        assert status["counters"]["reboots"] == 1 and status["limit"] == 100
    finally:
        proc.send_signal(signal.SIGINT)                  # Ctrl-C
        rest = proc.communicate(timeout=5)[1]
    assert proc.returncode == 0
    assert "A311" in rest and "stopped" in rest
