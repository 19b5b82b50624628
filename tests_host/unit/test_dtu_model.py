"""The simulated DTU's rules, driven by a fake clock (tools/dtu_model.py)."""
import pytest

from dtu import config_schemas as cs
from dtu import frame, messages, readings
from dtu import schemas as s
from dtu_faults import CloudRule
from dtu_model import DtuModel
from proto_min import decode, encode

DAY = 1717200000 - 1717200000 % 86400       # 2024-06-01 00:00 UTC
H = 3600


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t

    def at(self, hours):
        self.t = DAY + hours * H


class Gw:
    """A minimal gateway talking to the model without sockets."""

    def __init__(self, model, clock, ap=False):
        self.m = model
        self.clock = clock
        self.seq = 0
        self.ap = ap
        self.conn = model.connect(ap=ap)

    def send(self, built, cipher=None):
        tag, schema, msg = built
        self.seq += 1
        payload = encode(schema, msg)
        if cipher is not None and tag not in frame.PLAIN_TAGS:
            box = cipher.seal(tag, self.seq, payload)
            data = frame.build(tag, self.seq, box[:-16], box[-16:])
        else:
            data = frame.build(tag, self.seq, payload)
        if self.conn is None or self.conn.dead:
            self.conn = self.m.connect(ap=self.ap)
        return self.m.receive(self.conn, data)

    def reconnect(self):
        self.m.disconnect(self.conn)
        self.conn = self.m.connect(ap=self.ap)

    def ask(self, name, *args, reply_schema=None, cipher=None):
        """Send messages.<name>(*args, now); the decoded reply, or None for silence."""
        return self.exchange(getattr(messages, name)(*args, int(self.clock())),
                             reply_schema, cipher)

    def exchange(self, built, reply_schema=None, cipher=None):
        reply = self.send(built, cipher)
        if not reply.pieces:
            return None
        fr = frame.FrameReader(encrypted=cipher is not None)
        fr.feed(reply.data)
        tag, seq, body, mac = fr.next()
        assert tag == frame.reply_tag(built[0]) and seq == self.seq
        if cipher is not None and tag not in frame.PLAIN_TAGS:
            body = cipher.open(tag, seq, body + mac)
        schema = reply_schema or (s.BY_TAG.get(built[0]) or cs.BY_TAG[built[0]])[1]
        return decode(schema, body)


def make(hours=12.0, **options):
    clock = Clock(DAY + hours * H)
    options.setdefault("min_gap", 0)
    options.setdefault("cloud", False)
    model = DtuModel(clock, **options)
    return model, clock, Gw(model, clock)


def real(gw):
    return readings.real_data(gw.ask("real_data_new"))


# ---- physics -----------------------------------------------------------------

def test_noon_power_and_night_zeros():
    m, clock, gw = make(12.0)
    noon = real(gw)
    assert 600 < noon["grid"]["p"] <= 800
    assert noon["inverter"]["link"] == 1 and noon["inverter"]["limit"] == 100
    assert [p["port"] for p in noon["pv"]] == [1, 2]
    assert all(300 < p["p"] < 430 and 30 < p["v"] < 45 for p in noon["pv"])
    assert noon["grid"]["p"] == pytest.approx(0.96 * sum(p["p"] for p in noon["pv"]), abs=1.5)
    assert noon["dtu_serial"] == "4143A0123456"
    assert noon["inverter"]["serial"] == 0x116491234567
    clock.at(26.0)                       # 02:00 next day
    night = real(gw)
    assert night["timestamp"] == DAY + 26 * H      # the DTU answers, its clock runs
    assert night["grid"]["p"] == 0 and night["inverter"]["link"] == 0
    assert all(p["p"] == 0 and p["v"] == 0 for p in night["pv"])
    assert m.counters["unanswered"] == 0


def test_daylight_curve_follows_local_sunrise_and_sunset():
    m, clock, gw = make(0, tz_offset=2 * H, sunrise=7.0, sunset=19.0)
    power = {}
    for local in (6.5, 8, 10, 13, 16, 18.5, 19.5):
        clock.at(local - 2)
        power[local] = real(gw)["grid"]["p"]
    assert power[6.5] == 0 and power[19.5] == 0
    assert 0 < power[8] < power[10] < power[13]
    assert power[13] > power[16] > power[18.5] > 0


def test_noise_is_seeded_and_stable_within_a_data_period():
    a, ca, ga = make(11.0, seed=5)
    b, cb, gb = make(11.0, seed=5)
    c, cc, gc = make(11.0, seed=6)
    assert real(ga)["pv"] == real(gb)["pv"] != real(gc)["pv"]
    ca.t += 10                           # same 30 s data period: same values
    assert real(ga)["pv"][0]["p"] == real(gb)["pv"][0]["p"]


def test_negative_temperature_on_a_cold_morning():
    m, clock, gw = make(6.3)
    r = real(gw)
    assert r["inverter"]["link"] == 1
    assert r["inverter"]["temp"] < 0         # sent as a 10-byte varint, decoded signed
    clock.at(14)
    assert real(gw)["inverter"]["temp"] > 10


def test_daily_energy_resets_at_local_midnight_and_total_grows():
    m, clock, gw = make(0.0, tz_offset=2 * H)
    inv = m.inverter
    total0 = sum(inv.energy_total)
    clock.at(21.9)                           # 23:54 local
    m.advance()
    day1 = sum(inv.energy_daily)
    assert 4000 < day1 < 7000                # Wh: a clear June day on 2 x 400 W
    assert sum(inv.energy_total) - total0 == pytest.approx(day1, abs=1)
    clock.at(22.1)                           # 00:06 local: a new day
    m.advance()
    assert inv.energy_daily == [0.0, 0.0]
    clock.at(36)                             # 14:00 local next day
    r = real(gw)
    assert 0 < r["grid"]["dE"] < day1 / 1000
    assert r["grid"]["tE"] > (total0 + day1) / 1000


def test_limit_caps_power_and_persists_across_reboot():
    m, clock, gw = make(12.0, apply_delay=3, reboot_seconds=40)
    reply = gw.ask("power_limit", 25)
    assert reply["action"] == s.ACTION_LIMIT_POWER and reply.get("err_code", 0) == 0
    assert m.limit == 25
    clock.t += 31                            # new data period, command applied
    r = real(gw)
    assert r["grid"]["p"] == pytest.approx(200, abs=0.2)
    assert r["inverter"]["limit"] == 25
    assert gw.ask("get_config")["limit_power_mypower"] == 250
    key = m.enc_rand
    assert gw.ask("dtu_reboot") is not None
    assert m.connect() is None               # refused while rebooting
    assert m.counters["refused"] == 1
    clock.t += 41
    gw.conn = m.connect()
    assert gw.conn is not None and m.enc_rand != key
    assert gw.ask("get_config")["limit_power_mypower"] == 250
    clock.t += 30
    assert real(gw)["grid"]["p"] == pytest.approx(200, abs=0.2)
    assert m.counters["reboots"] == 1 and m.counters["limit_writes"] == 1


def test_command_status_reports_progress_then_success():
    m, clock, gw = make(12.0, apply_delay=4)
    tid = int(clock())
    gw.ask("power_limit", 60)
    clock.t += 2
    st = gw.ask("command_status", s.ACTION_LIMIT_POWER, tid)
    assert "mi_sns_sucs" not in st
    assert st["mi_mOperatingStatus"][0]["mi_sn"] == m.inverter_serial
    assert 0 < st["mi_mOperatingStatus"][0]["progress_rate"] < 100
    assert m.inverter.limit == 100           # not applied yet
    clock.t += 2
    st = gw.ask("command_status", s.ACTION_LIMIT_POWER, tid)
    assert st["mi_sns_sucs"] == [m.inverter_serial] and st["tid"] == tid
    assert m.inverter.limit == 60


def test_bad_limit_is_refused():
    m, clock, gw = make(12.0)
    tag, schema, msg = messages.power_limit(50, int(clock()))
    msg["data"] = "A:1500,B:0,C:0\r"
    fr = frame.FrameReader()
    fr.feed(gw.send((tag, schema, msg)).data)
    assert decode(s.CommandReqDTO, fr.next()[2])["err_code"] == 1
    assert m.limit == 100


def test_inverter_stop_start_and_temporary_limit():
    m, clock, gw = make(12.0, apply_delay=1)
    sn = m.inverter_serial
    gw.ask("inverter_command", s.ACTION_MI_SHUTDOWN, sn)
    clock.t += 30
    r = real(gw)
    assert r["grid"]["p"] == 0 and r["inverter"]["link"] == 1
    assert all(p["p"] == 0 and p["v"] > 30 for p in r["pv"])   # open-circuit voltage
    gw.ask("inverter_command", s.ACTION_MI_START, sn)
    tag, schema, msg = messages.power_limit(100, int(clock()))
    msg.update(action=s.ACTION_LIMIT_POWER_TEMPORARY, data="S:1,P:3000\r")
    gw.send((tag, schema, msg))
    clock.t += 30
    assert real(gw)["grid"]["p"] == pytest.approx(300, abs=0.2)
    assert m.limit == 100                    # the persistent limit is untouched
    m.set_fault("reboot", seconds=1)
    clock.t += 30
    assert real(gw)["grid"]["p"] > 600       # a reboot forgets the temporary limit


def test_packages_split_and_merge():
    m, clock, gw = make(12.0, packages=3)
    parts = [gw.exchange(messages.real_data_new(int(clock()), cp)) for cp in range(3)]
    assert [p["ap"] for p in parts] == [3, 3, 3]
    assert "sgs_data" in parts[0] and "pv_data" not in parts[0]
    assert [p["pv_data"][0]["port_number"] for p in parts[1:]] == [1, 2]
    merged = {}
    for p in parts:
        readings.merge_real_data(merged, p)
    assert merged["sgs_data"] == m.last_real_data["sgs_data"]
    assert merged["pv_data"] == m.last_real_data["pv_data"]


def test_other_messages_answer():
    m, clock, gw = make(12.0)
    info = gw.ask("app_info")
    assert info["dtu_serial_number"] == m.dtu_serial
    assert readings.dtu_version(info["dtu_info"]["dtu_sw_version"]) == "V00.03.02"
    assert not info["dtu_info"].get("dfs", 0) >> 25 & 1 and "enc_rand" not in info["dtu_info"]
    assert info["pv_info"][0]["pv_serial_number"] == m.inverter_serial
    hb = gw.ask("heartbeat")
    assert hb["time"] == int(clock()) and hb["dtu_serial_number"] == m.dtu_serial
    assert gw.ask("network_info")["dtu_sn"] == m.dtu_serial
    cfg = gw.ask("get_config")
    assert cfg["dtu_ap_ssid"] == "DTUBI-4143A0123456" and cfg["wifi_ssid"] == "HomeWiFi"
    assert cfg["dhcp_switch"] == 1 and cfg["netmode_select"] == 1 and cfg["wifi_rssi"] < 0


def test_set_config_stores_wifi_and_rejoins():
    m, clock, gw = make(12.0, rejoin_seconds=90)
    cfg = gw.ask("get_config")
    assert gw.ask("set_config_wifi", cfg, "NewNet", "pw123") == {
        "offset": messages.OFFSET, "time": int(clock())}
    assert (m.wifi_ssid, m.wifi_password) == ("NewNet", "pw123")
    assert m.counters["writes_received"] == 1
    assert m.state() == "offline" and m.connect() is None
    clock.t += 91
    assert m.state() == "online"


# ---- the hang rule -------------------------------------------------------------

def test_rounds_31s_apart_and_bursts_do_not_hang():
    m, clock, gw = make(12.0, min_gap=31)
    for _ in range(20):
        assert gw.ask("app_info") is not None
        clock.t += 0.4                   # a burst: one round
        assert gw.ask("real_data_new") is not None
        clock.t += 0.4
        assert gw.ask("get_config") is not None
        clock.t += 31 - 0.8
    c = m.counters
    assert c["hangs_induced"] == 0 and c["rounds"] == 20 and c["requests"] == 60


def test_rounds_too_close_hang_the_dtu_for_hang_seconds():
    m, clock, gw = make(12.0, min_gap=31, hang_seconds=1800)
    assert gw.ask("real_data_new") is not None
    clock.t += 20
    assert gw.ask("real_data_new") is None          # hung: no answer
    assert m.counters["hangs_induced"] == 1 and m.state() == "hung"
    clock.t += 600
    gw2 = Gw(m, clock)
    assert gw2.conn is not None                     # accepts connections...
    assert gw2.ask("real_data_new") is None         # ...but never answers
    assert m.counters["hangs_induced"] == 1         # no new hang while hung
    clock.t += 1200
    assert m.state() == "online"                    # it rebooted itself
    assert m.counters["reboots"] == 1
    assert gw.ask("real_data_new") is not None      # the old connection died; a new one works


def test_writes_too_close_hang_even_inside_one_round():
    m, clock, gw = make(12.0, min_gap=31)
    gw.ask("power_limit", 50)
    clock.t += 2
    assert gw.ask("power_limit", 60) is None
    assert m.counters["hangs_induced"] == 1
    assert m.limit == 50 and m.counters["limit_writes"] == 2
    m2, clock2, gw2 = make(12.0, min_gap=31)
    for pct in (50, 60, 70):
        assert gw2.ask("power_limit", pct) is not None
        clock2.t += 32
    assert m2.counters["hangs_induced"] == 0 and m2.limit == 70


def test_polling_in_a_chain_of_short_gaps_is_not_one_round():
    m, clock, gw = make(12.0, min_gap=31)
    for _ in range(6):                   # every 4 s: each "burst" gap is < 5 s
        gw.ask("real_data_new")
        clock.t += 4
    assert m.counters["hangs_induced"] == 1


def test_min_gap_zero_turns_the_hang_model_off():
    m, clock, gw = make(12.0, min_gap=0)
    for _ in range(50):
        assert gw.ask("power_limit", 50) is not None
        clock.t += 6
    assert m.counters["hangs_induced"] == 0 and m.counters["rounds"] == 50


def test_hang_rule_switchable_at_runtime():
    m, clock, gw = make(12.0, min_gap=0)
    m.set_fault("hang", min_gap=31, hang_seconds=100)
    gw.ask("real_data_new")
    clock.t += 10
    assert gw.ask("real_data_new") is None
    m.clear_fault("hang")
    assert m.state() == "online"
    assert gw.ask("real_data_new") is not None


def test_setconfig_via_the_access_point_ends_a_hang():
    m, clock, gw = make(12.0, min_gap=31, rejoin_seconds=90)
    gw.ask("real_data_new")
    clock.t += 5.5
    assert gw.ask("real_data_new") is None and m.state() == "hung"
    ap = Gw(m, clock, ap=True)                    # the DTU's own access point still works
    cfg = ap.ask("get_config")
    assert ap.ask("set_config_wifi", cfg, "HomeWiFi", "home-secret") is not None
    clock.t += 91                                 # ~1.5 min instead of 30
    assert m.state() == "online"
    assert gw.ask("real_data_new") is not None


# ---- the cloud windows ---------------------------------------------------------

def test_cloud_window_arithmetic():
    five, fifteen = CloudRule("5min"), CloudRule("15min")
    hms = lambda h, mi, se: DAY + h * H + mi * 60 + se     # noqa: E731
    assert five.window(hms(10, 4, 49)) is None
    assert five.window(hms(10, 4, 50)) == five.window(hms(10, 5, 19)) is not None
    assert five.window(hms(10, 5, 20)) is None
    assert five.window(hms(10, 9, 50)) is not None and five.window(hms(10, 7, 0)) is None
    assert fifteen.window(hms(10, 4, 50)) is None
    assert fifteen.window(hms(10, 14, 50)) is not None
    assert fifteen.window(hms(10, 59, 55)) == fifteen.window(hms(11, 0, 10))
    ws = list(five.windows_between(hms(10, 0, 20), hms(10, 9, 50)))
    assert len(ws) == 2 and five.start(ws[0]) == hms(10, 4, 50)


@pytest.mark.parametrize("schedule, inside, outside", [
    ("5min", (4, 50), (2, 0)), ("15min", (29, 55), (4, 55))])
def test_requests_inside_an_upload_window_disturb_it_once(schedule, inside, outside):
    m, clock, gw = make(10 + 1 / 60, cloud=True, cloud_schedule=schedule)
    clock.t = DAY + 10 * H + outside[0] * 60 + outside[1]
    gw.ask("real_data_new")
    assert m.counters["uploads_disturbed"] == 0
    m.disconnect(gw.conn)                # no idle connection across windows
    gw.conn = None
    clock.t = DAY + 10 * H + inside[0] * 60 + inside[1]
    for _ in range(3):
        assert gw.ask("real_data_new") is not None     # the DTU answers, the upload suffers
        clock.t += 5
    assert m.counters["uploads_disturbed"] == 1


def test_a_poller_that_avoids_the_windows_disturbs_nothing_for_a_day():
    m, clock, gw = make(0.01, cloud=True, min_gap=31)    # 00:00:36, after a window
    rule = CloudRule("5min")
    polls = 0
    m.disconnect(gw.conn)
    while clock() < DAY + 24 * H:
        if rule.window(clock()) is None and rule.window(clock() + 2) is None:
            gw.conn = m.connect()
            assert gw.ask("app_info") is not None
            clock.t += 0.5
            assert gw.ask("real_data_new") is not None
            m.disconnect(gw.conn)        # no idle connection through an upload
            polls += 1
            clock.t += 31
        else:
            clock.t += 1
    c = m.counters
    assert polls > 2500
    assert c["uploads_disturbed"] == 0 and c["hangs_induced"] == 0 and c["rounds"] == polls


def test_an_idle_open_connection_through_a_window_disturbs_it():
    m, clock, gw = make(10 + 1 / 60, cloud=True)    # 10:01:00, connected
    gw.ask("real_data_new")              # and stays connected
    clock.t += 600                       # two windows pass
    assert m.counters["uploads_disturbed"] == 2
    m2, clock2, gw2 = make(10 + 1 / 60, cloud=True, cloud_counts_connections=False)
    gw2.ask("real_data_new")
    clock2.t += 600
    assert m2.counters["uploads_disturbed"] == 0


def test_cloud_off():
    m, clock, gw = make(10.0, cloud=False)
    clock.t = DAY + 10 * H + 4 * 60 + 55
    gw.ask("real_data_new")
    assert m.counters["uploads_disturbed"] == 0
    m.set_fault("cloud", schedule="5min")
    gw.ask("real_data_new")
    assert m.counters["uploads_disturbed"] == 1


# ---- faults --------------------------------------------------------------------

def _frame_of(reply):
    fr = frame.FrameReader()
    fr.feed(reply.data)
    return fr.next()


def test_drop_sends_part_then_closes():
    m, clock, gw = make(12.0, faults={"drop": {"times": 1}})
    reply = gw.send(messages.real_data_new(int(clock())))
    assert reply.close and reply.pieces
    assert _frame_of(reply) is None                   # incomplete
    assert gw.ask("real_data_new") is not None        # times=1: gone after one reply


def test_garbage_instead_and_before():
    m, clock, gw = make(12.0)
    m.set_fault("garbage")
    with pytest.raises(frame.FrameError):
        _frame_of(gw.send(messages.real_data_new(int(clock()))))
    m.set_fault("garbage", mode="before", size=40)
    reply = gw.send(messages.real_data_new(int(clock())))
    assert reply.data[:2] != b"HM" and _frame_of(reply)[0] == 0xA211
    m.clear_fault("garbage")
    assert gw.send(messages.real_data_new(int(clock()))).data[:2] == b"HM"


def test_bad_crc():
    m, clock, gw = make(12.0, faults={"badcrc": {}})
    with pytest.raises(frame.CrcError):
        _frame_of(gw.send(messages.real_data_new(int(clock()))))


def test_slow_reply_comes_late_and_in_pieces():
    m, clock, gw = make(12.0)
    m.set_fault("slow", delay=1.5, piece=5, gap=0.1)
    reply = gw.send(messages.real_data_new(int(clock())))
    assert len(reply.pieces) > 5 and reply.pieces[0][0] == 1.5
    assert all(len(p) <= 5 for _, p in reply.pieces)
    assert _frame_of(reply)[0] == 0xA211


def test_silent_for_a_while_is_not_a_hang():
    m, clock, gw = make(12.0)
    m.set_fault("silent", duration=1800)
    assert gw.ask("real_data_new") is None
    clock.t += 1799
    assert gw.ask("real_data_new") is None
    clock.t += 2
    assert gw.ask("real_data_new") is not None
    assert m.counters["hangs_induced"] == 0 and m.counters["unanswered"] == 2


def test_reboot_fault_refuses_then_returns_with_a_new_key():
    m, clock, gw = make(12.0)
    key = m.enc_rand
    m.set_fault("reboot", seconds=60)
    assert gw.m.receive(gw.conn, b"").close      # open connections are dropped
    assert m.connect() is None
    clock.t += 30
    assert m.connect() is None
    m.clear_fault("reboot")                      # or wait
    assert m.connect() is not None and m.enc_rand != key


def test_getconfig_silent():
    m, clock, gw = make(12.0, getconfig_silent=True)
    assert gw.ask("get_config") is None
    assert gw.ask("real_data_new") is not None
    m.clear_fault("getconfig_silent")
    assert gw.ask("get_config") is not None


def test_fault_duration_expires():
    m, clock, gw = make(12.0)
    m.set_fault("badcrc", duration=10)
    assert "badcrc" in m.status()["faults"]
    clock.t += 11
    assert m.status()["faults"] == {}
    assert _frame_of(gw.send(messages.real_data_new(int(clock()))))[0] == 0xA211


def test_unknown_fault_is_an_error():
    m, clock, gw = make(12.0)
    with pytest.raises(ValueError):
        m.set_fault("meteor")


def test_single_connection_dtu_drops_the_older_one():
    m, clock, gw = make(12.0, single_connection=True)
    other = m.connect()
    assert gw.conn.dead and not other.dead


# ---- encryption ------------------------------------------------------------------

def test_encrypted_dtu():
    from dtu.crypto import DtuCipher, is_encrypted
    m, clock, gw = make(12.0, encrypted=True)
    info = gw.ask("app_info")["dtu_info"]            # AppInfo is never encrypted
    assert is_encrypted(info["dfs"]) and info["enc_rand"] == m.enc_rand
    assert readings.dtu_version(info["dtu_sw_version"]) == "V01.01.01"
    cipher = DtuCipher(info["enc_rand"])
    r = gw.ask("real_data_new", cipher=cipher)
    assert r["sgs_data"] == m.last_real_data["sgs_data"]
    wrong = DtuCipher(bytes(16))
    reply = gw.send(messages.real_data_new(int(clock())), cipher=wrong)
    assert reply.close and not reply.pieces and m.counters["bad_frames_in"] == 1


# ---- the field's dusk (option dusk_seconds) ----------------------------------

def test_dusk_zeros_then_offline_until_sunrise():
    # sunset at 20:00 local: 20 min of zeros (the lifetime counters too), then gone
    m, clock, gw = make(19.5, dusk_seconds=1200)
    evening = real(gw)
    assert evening["grid"]["p"] > 0 and evening["grid"]["tE"] > 1000
    clock.at(20.1)
    dusk = real(gw)
    assert dusk["timestamp"] == DAY + int(20.1 * H)          # it answers, its clock runs
    assert dusk["grid"]["p"] == 0 and dusk["grid"]["tE"] == 0 and dusk["grid"]["dE"] == 0
    assert all(p["tE"] == 0 and p["dE"] == 0 for p in dusk["pv"])
    assert m.state() == "online"
    clock.at(20.0 + 1201 / H)
    assert m.state() == "offline"
    assert gw.conn.dead or m.receive(gw.conn, b"").close      # the open connection is gone
    assert m.connect() is None and m.counters["refused"] == 1
    clock.at(24 + 5.9)                                        # 05:54 next day: still off
    assert m.state() == "offline" and m.connect() is None
    clock.at(24 + 6.5)                                        # after sunrise: back
    assert m.state() == "online"
    gw.reconnect()
    morning = real(gw)
    assert morning["grid"]["p"] > 0 and morning["grid"]["tE"] > evening["grid"]["tE"] - 1


def test_the_dusk_starts_at_sunset_not_at_the_next_data_period():
    # local time 15 s ahead of the 30 s data periods: 20:00:05 lies in a period
    # whose sample (19:59:50) still had sun
    m, clock, gw = make(19.9 - 15 / H, dusk_seconds=20, tz_offset=15)
    assert real(gw)["grid"]["tE"] > 0
    clock.at(20.0 + (5 - 15) / H)
    assert m.local(m.now()) % 86400 == 20 * H + 5
    assert real(gw)["grid"]["tE"] == 0


def test_a_jump_to_the_morning_ends_the_night():
    m, clock, gw = make(21.0, dusk_seconds=600)
    assert m.state() == "offline"
    total = m.inverter.energy_total[:]
    m.set_local_time(7 * H)
    assert m.state() == "online" and m.local(m.now()) % 86400 == 7 * H
    assert m.inverter.energy_total == total                   # the jump produced nothing
    clock.at(21.5)
    gw.reconnect()
    r = real(gw)
    assert r["grid"]["p"] > 0 and r["timestamp"] == DAY + int(21.5 * H)   # its Unix clock ran on


def test_warnings_start_gather_page_and_end():
    from dtu import warn_schemas as ws
    # 141 from 12:01 to 12:05; 216 (raw, with a flag bit) from 12:02, still active
    m, clock, gw = make(12.0, warnings=[(8333, 60, 300), (0x20D8, 120, None)], warn_per_package=1)
    assert "warning_number" not in gw.ask("real_data_new", reply_schema=s.RealDataNewReqDTO)["sgs_data"][0]
    clock.at(12.0 + 150 / H)
    raw = gw.ask("real_data_new", reply_schema=s.RealDataNewReqDTO)
    assert raw["sgs_data"][0]["warning_number"] == 2
    ack = gw.ask("alarm_list", reply_schema=s.CommandReqDTO)
    assert ack["action"] == ws.ACTION_ALARM_LIST
    first = gw.exchange(messages.warn_data(int(clock()), 0), ws.WarnReqDTO)
    assert first["package_nub"] == 2 and first.get("package_now", 0) == 0
    second = gw.exchange(messages.warn_data(int(clock()), 1), ws.WarnReqDTO)
    warns = first["warns"] + second["warns"]
    assert [(w["code"], w["s_time"] > 0, w.get("e_time", 0)) for w in warns] == [(8333, True, 0), (0x20D8, True, 0)]
    clock.at(12.0 + 400 / H)
    gw.ask("alarm_list", reply_schema=s.CommandReqDTO)
    warns = gw.exchange(messages.warn_data(int(clock()), 0), ws.WarnReqDTO)["warns"]
    assert warns[0]["e_time"] == int(DAY + 12 * H + 300)            # 141 ended at 12:05
    c = m.status()["counters"]
    assert c["writes_received"] == 0 and c["requests"] >= 7          # gathering is not a write


def test_without_the_dusk_option_the_dtu_answers_all_night():
    m, clock, gw = make(23.0)
    assert m.state() == "online" and real(gw)["grid"]["p"] == 0
    clock.at(27.0)
    assert m.state() == "online" and m.connect() is not None


def test_the_simulator_takes_the_dusk_option():
    import json
    import subprocess
    import sys
    import time
    import urllib.request

    from support.env import ROOT
    # the DTU's clock at 23:00: three hours after sunset, so with --dusk it is off the network
    offset = -(time.time() % 86400) + 23 * H
    proc = subprocess.Popen(
        [sys.executable, ROOT + "/tools/dtu_sim.py", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
         "--no-cloud", "--min-gap", "0", "--time-offset", str(offset), "--dusk", "900"],
        stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()
        control = int(banner.split("control on 127.0.0.1:")[1].split(",")[0])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open("http://127.0.0.1:%d/counters" % control, timeout=5) as r:
            assert json.loads(r.read())["state"] == "offline"
    finally:
        proc.terminate()
        proc.communicate(timeout=5)
