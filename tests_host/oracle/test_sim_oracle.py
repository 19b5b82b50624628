"""The simulator checked against the independent oracle, hoymiles-wifi: its own
DTU client talks to our simulated DTU, and its generated protobuf classes
decode the simulator's replies to the same values as proto_min."""
import asyncio
import time

import pytest

from hoymiles_wifi.dtu import DTU  # noqa: E402
from hoymiles_wifi.protobuf import (  # noqa: E402
    APPHeartbeatPB_pb2, APPInfomationData_pb2, CommandPB_pb2, GetConfig_pb2,
    NetworkInfo_pb2, RealDataNew_pb2, SetConfig_pb2)

from dtu import config_schemas as cs  # noqa: E402
from dtu import frame, messages  # noqa: E402
from dtu import schemas as s  # noqa: E402
from dtu_model import DtuModel  # noqa: E402
from dtu_sim import DtuSimulator  # noqa: E402
from proto_min import decode, encode  # noqa: E402


def offset_to(hour):
    """time_offset that puts the DTU's clock (UTC) at `hour` today."""
    now = time.time()
    return now - now % 86400 + hour * 3600 - now


class OracleDTU(DTU):
    """hoymiles-wifi's client, pointed at the simulator's ephemeral port."""

    def __init__(self, port, **kw):
        DTU.__init__(self, "127.0.0.1", timeout=3, **kw)
        self.port = port

    async def async_send_request(self, command, request, response_type, dtu_port=None, **kw):
        self.last_request_time = 0      # skip its 2 s courtesy pause: the sim has min_gap 0
        return await DTU.async_send_request(self, command, request, response_type,
                                            dtu_port=self.port, **kw)


def same(pb, d, path="msg"):
    """The protobuf message `pb` carries exactly the fields and values of the
    proto_min dict `d`."""
    names = {f.name for f, _ in pb.ListFields()}
    assert names == set(d), "%s: %s" % (path, names ^ set(d))
    for k, v in d.items():
        got = getattr(pb, k)
        if isinstance(v, dict):
            same(got, v, path + "." + k)
        elif isinstance(v, list):
            assert len(got) == len(v), path + "." + k
            for i, (a, b) in enumerate(zip(got, v)):
                if isinstance(b, dict):
                    same(a, b, "%s.%s[%d]" % (path, k, i))
                else:
                    assert a == b, "%s.%s[%d]" % (path, k, i)
        else:
            assert got == v, "%s.%s: %r != %r" % (path, k, got, v)


def with_sim(test, **options):
    async def main():
        options.setdefault("min_gap", 0)
        options.setdefault("cloud", False)
        sim = DtuSimulator(**options)
        await sim.start("127.0.0.1", 0)
        try:
            await test(sim, OracleDTU(sim.port))
        finally:
            await sim.stop()
    asyncio.run(main())


@pytest.mark.parametrize("hour", [12.0, 6.3, 2.0])   # noon, cold morning, night
def test_oracle_reads_real_data(hour):
    async def test(sim, dtu):
        r = await dtu.async_get_real_data_new()
        assert r is not None
        same(r, sim.model.last_real_data)
        if hour == 6.3:
            assert r.sgs_data[0].temperature < 0
        if hour == 2.0:
            assert r.sgs_data[0].link_status == 0 and r.sgs_data[0].active_power == 0
        else:
            assert r.sgs_data[0].active_power > 0 and len(r.pv_data) == 2
    with_sim(test, time_offset=offset_to(hour))


def test_oracle_merges_packages():
    async def test(sim, dtu):
        r = await dtu.async_get_real_data_new()
        assert r.ap == 3 and [p.port_number for p in r.pv_data] == [1, 2]
        last = dict(sim.model.last_real_data, cp=2)      # MergeFrom keeps the last cp
        same(r, last)
        assert sim.model.counters["requests"] == 3
    with_sim(test, time_offset=offset_to(12), packages=3)


def test_oracle_reads_config_sets_limit_and_reboots():
    async def test(sim, dtu):
        m = sim.model
        cfg = await dtu.async_get_config()
        assert cfg.limit_power_mypower == 1000 and cfg.dtu_ap_ssid == "DTUBI-4143A0123456"
        reply = await dtu.async_set_power_limit(40)
        assert reply is not None and reply.action == s.ACTION_LIMIT_POWER and reply.err_code == 0
        assert m.limit == 40 and m.counters["limit_writes"] == 1
        assert (await dtu.async_get_config()).limit_power_mypower == 400
        info = await dtu.async_app_information_data()
        assert info.pv_info[0].pv_serial_number == m.inverter_serial
        assert (await dtu.async_heartbeat()).dtu_serial_number == m.dtu_serial
        assert (await dtu.async_network_info()).dtu_sn == m.dtu_serial
        assert await dtu.async_turn_off_inverter("116491234567") is not None
        assert await dtu.async_restart_dtu() is not None
        assert m.counters["reboots"] == 1 and m.state() == "offline"
        assert await dtu.async_get_real_data_new() is None          # refused while rebooting
        m.clear_fault("reboot")
        await asyncio.sleep(0.15)                                    # the listener reopens
        assert (await dtu.async_get_config()).limit_power_mypower == 400
        assert m.counters["writes_received"] == 3
    with_sim(test, time_offset=offset_to(12), apply_delay=0)


def test_oracle_sets_wifi():
    async def test(sim, dtu):
        assert await dtu.async_set_wifi("NewNet", "pw-12345") is not None
        assert (sim.model.wifi_ssid, sim.model.wifi_password) == ("NewNet", "pw-12345")
    with_sim(test)


# Every reply the model makes, decoded by hoymiles-wifi's generated classes.
_PB = {
    s.TAG_APP_INFO: APPInfomationData_pb2.APPInfoDataReqDTO,
    s.TAG_HEARTBEAT: APPHeartbeatPB_pb2.HBReqDTO,
    s.TAG_NETWORK_INFO: NetworkInfo_pb2.NetworkInfoReqDTO,
    s.TAG_REAL_DATA_NEW: RealDataNew_pb2.RealDataNewReqDTO,
    s.TAG_GET_CONFIG: GetConfig_pb2.GetConfigReqDTO,
    s.TAG_SET_CONFIG: SetConfig_pb2.SetConfigReqDTO,
    s.TAG_COMMAND: CommandPB_pb2.CommandReqDTO,
    s.TAG_CLOUD_COMMAND: CommandPB_pb2.CommandReqDTO,
    s.TAG_COMMAND_STATUS: CommandPB_pb2.CommandStatusReqDTO,
}


@pytest.mark.parametrize("encrypted", [False, True])
def test_every_reply_decodes_the_same_with_the_generated_classes(encrypted):
    clock = [time.time() - time.time() % 86400 + 6.4 * 3600]
    m = DtuModel(lambda: clock[0], min_gap=0, cloud=False, packages=2, apply_delay=2,
                 encrypted=encrypted)
    conn = m.connect()
    cipher = None
    now = int(clock[0])
    sn = m.inverter_serial
    requests = [messages.app_info(now), messages.heartbeat(now), messages.network_info(now),
                messages.real_data_new(now), messages.real_data_new(now, 1),
                messages.get_config(now), messages.power_limit(30, now),
                messages.command_status(s.ACTION_LIMIT_POWER, now, now),
                messages.inverter_command(s.ACTION_MI_SHUTDOWN, sn, now),
                messages.command_status(s.ACTION_MI_SHUTDOWN, now, now + 5),
                messages.set_config_wifi({"dtu_sn": m.dtu_serial}, "Net", "pw", now)]
    for seq, (tag, schema, msg) in enumerate(requests, 1):
        payload = encode(schema, msg)
        if cipher and tag not in frame.PLAIN_TAGS:
            box = cipher.seal(tag, seq, payload)
            data = frame.build(tag, seq, box[:-16], box[-16:])
        else:
            data = frame.build(tag, seq, payload)
        if tag == s.TAG_COMMAND_STATUS and msg["time"] > now:
            clock[0] += 5                               # let the command take effect
        fr = frame.FrameReader(encrypted=encrypted)
        fr.feed(m.receive(conn, data).data)
        rtag, rseq, body, mac = fr.next()
        assert (rtag, rseq) == (frame.reply_tag(tag), seq)
        if cipher and tag not in frame.PLAIN_TAGS:
            body = cipher.open(rtag, rseq, body + mac)
        ours = decode((s.BY_TAG.get(tag) or cs.BY_TAG[tag])[1], body)
        same(_PB[tag].FromString(body), ours, "%04X" % tag)
        if tag == s.TAG_APP_INFO and encrypted:
            from dtu.crypto import DtuCipher
            cipher = DtuCipher(ours["dtu_info"]["enc_rand"])
        if tag == s.TAG_COMMAND_STATUS:
            assert ("mi_sns_sucs" in ours) == (msg["time"] > now)


def test_oracle_encrypted():
    async def test(sim, dtu):
        info = await dtu.async_app_information_data()          # never encrypted
        assert info.dtu_info.dfs >> 25 & 1
        assert info.dtu_info.enc_rand == sim.model.enc_rand
        enc = OracleDTU(sim.port, is_encrypted=True, enc_rand=info.dtu_info.enc_rand)
        r = await enc.async_get_real_data_new()
        assert r is not None
        same(r, sim.model.last_real_data)
        assert (await enc.async_set_power_limit(55)).err_code == 0
        assert sim.model.limit == 55
        assert (await enc.async_get_config()).limit_power_mypower == 550
    with_sim(test, encrypted=True, time_offset=offset_to(12))
