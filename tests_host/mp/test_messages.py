"""dtu.messages (request builders, ymd_hms, parse_limit_data) and dtu.readings.

Board-side test: plain unittest, runs under pytest and under the unix
MicroPython (tests_host/mp/run_all.py). The byte-level comparison with
hoymiles-wifi is in test_oracle_codec.py.
"""
import unittest

from proto_min import STR, decode, encode, EncodeError
from dtu import config_schemas as c
from dtu import messages, readings
from dtu import schemas as s

NOW = 1700000000          # 2023-11-14 22:13:20 UTC
SERIAL = 0x1164A0012345   # an HMS inverter serial as an int64


def names(schema):
    return [schema[k] for k in range(1, len(schema), 3)]


class TestYmdHms(unittest.TestCase):
    KNOWN = (
        (0, "1970-01-01 00:00:00"),
        (59, "1970-01-01 00:00:59"),
        (86399, "1970-01-01 23:59:59"),
        (86400, "1970-01-02 00:00:00"),
        (946684799, "1999-12-31 23:59:59"),
        (946684800, "2000-01-01 00:00:00"),
        (951825600, "2000-02-29 12:00:00"),      # 2000 is a leap year (divisible by 400)
        (1677628799, "2023-02-28 23:59:59"),
        (1700000000, "2023-11-14 22:13:20"),
        (1704067199, "2023-12-31 23:59:59"),
        (1709251199, "2024-02-29 23:59:59"),     # leap day, last second
        (1709251200, "2024-03-01 00:00:00"),
        (2147483647, "2038-01-19 03:14:07"),     # the last int32 second
        (2147483648, "2038-01-19 03:14:08"),
        (4107542399, "2100-02-28 23:59:59"),     # 2100 is not a leap year
        (4107542400, "2100-03-01 00:00:00"),
        (4294967295, "2106-02-07 06:28:15"),     # the last uint32 second
        (13574563200, "2400-02-29 00:00:00"),
    )

    def test_known_dates(self):
        for t, want in self.KNOWN:
            self.assertEqual(messages.ymd_hms(t), want, "t=%d" % t)

    def test_float_seconds_truncate(self):
        self.assertEqual(messages.ymd_hms(1700000000.9), "2023-11-14 22:13:20")

    def test_every_day_of_a_leap_cycle(self):
        # walk day by day through 1999..2101 at noon: the calendar must be
        # continuous, months of the right length, Feb 29 only in leap years
        mdays = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
        y, m, d = 1999, 1, 1
        t = 915192000  # 1999-01-01 12:00:00
        while y < 2102:
            self.assertEqual(messages.ymd_hms(t), "%04d-%02d-%02d 12:00:00" % (y, m, d))
            leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
            last = 29 if (m == 2 and leap) else mdays[m - 1]
            d += 1
            if d > last:
                d = 1
                m += 1
                if m > 12:
                    m = 1
                    y += 1
            t += 86400

    def test_against_datetime(self):
        try:
            import datetime
        except ImportError:
            self.skipTest("no datetime on this port")
        epoch = datetime.datetime(1970, 1, 1)
        t = 1
        while t < 2 ** 34:
            want = (epoch + datetime.timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M:%S")
            self.assertEqual(messages.ymd_hms(t), want)
            t = t * 3 + 12345

    def test_length(self):
        for t, _ in self.KNOWN:
            self.assertEqual(len(messages.ymd_hms(t)), 19)


class TestBuilders(unittest.TestCase):
    def check(self, built, tag, schema, msg):
        self.assertEqual(built[0], tag)
        self.assertIs(built[1], schema)
        self.assertEqual(built[2], msg)
        # every builder's message must encode and decode back unchanged
        # (zero values drop out, as in proto3)
        wire = dict((k, v) for k, v in msg.items() if v)
        self.assertEqual(decode(schema, encode(schema, msg)), wire)

    def test_real_data_new(self):
        self.check(messages.real_data_new(NOW), 0xA311, s.RealDataNewResDTO,
                   {"time_ymd_hms": b"2023-11-14 22:13:20", "cp": 0, "offset": 28800,
                    "time": NOW})
        self.check(messages.real_data_new(NOW, cp=2), 0xA311, s.RealDataNewResDTO,
                   {"time_ymd_hms": b"2023-11-14 22:13:20", "cp": 2, "offset": 28800,
                    "time": NOW})

    def test_real_data_new_time_is_bytes(self):
        self.assertIsInstance(messages.real_data_new(NOW)[2]["time_ymd_hms"], bytes)

    def test_app_info(self):
        self.check(messages.app_info(NOW), 0xA301, s.APPInfoDataResDTO,
                   {"time_ymd_hms": b"2023-11-14 22:13:20", "offset": 28800, "time": NOW})

    def test_heartbeat(self):
        self.check(messages.heartbeat(NOW), 0xA302, s.HBResDTO,
                   {"offset": 28800, "time": NOW, "time_ymd_hms": b"2023-11-14 22:13:20"})

    def test_network_info(self):
        self.check(messages.network_info(NOW), 0xA314, s.NetworkInfoResDTO,
                   {"offset": 28800, "time": NOW})

    def test_get_config(self):
        self.check(messages.get_config(NOW), 0xA309, c.GetConfigResDTO,
                   {"offset": 28800, "time": NOW})

    def test_power_limit(self):
        self.check(messages.power_limit(50, NOW), 0xA305, s.CommandResDTO,
                   {"time": NOW, "action": 8, "package_nub": 1, "tid": NOW,
                    "data": "A:500,B:0,C:0\r"})
        self.assertEqual(messages.power_limit(80, NOW)[2]["data"], "A:800,B:0,C:0\r")
        self.assertEqual(messages.power_limit(0, NOW)[2]["data"], "A:0,B:0,C:0\r")
        self.assertEqual(messages.power_limit(100, NOW)[2]["data"], "A:1000,B:0,C:0\r")
        self.assertEqual(messages.power_limit(2, NOW)[2]["data"], "A:20,B:0,C:0\r")

    def test_power_limit_range(self):
        for bad in (-1, 101, 1000, -100):
            with self.assertRaises(ValueError):
                messages.power_limit(bad, NOW)

    def test_power_limit_needs_an_int(self):
        for bad in (50.0, 50.5, "50", None, [50]):
            with self.assertRaises(ValueError):
                messages.power_limit(bad, NOW)

    def test_command_status(self):
        self.check(messages.command_status(8, NOW - 5, NOW), 0xA306, s.CommandStatusResDTO,
                   {"time": NOW, "action": 8, "package_now": 0, "tid": NOW - 5})

    def test_dtu_reboot(self):
        self.check(messages.dtu_reboot(NOW), 0x2305, s.CommandResDTO,
                   {"action": 1, "package_nub": 1, "tid": NOW})

    def test_inverter_commands(self):
        for action in (6, 7, 8195):
            self.check(messages.inverter_command(action, SERIAL, NOW), 0x2305, s.CommandResDTO,
                       {"action": action, "package_nub": 1, "dev_kind": 1, "tid": NOW,
                        "mi_to_sn": [SERIAL]})

    def test_inverter_command_rejects_other_actions(self):
        for bad in (0, 1, 8, 33, 211, 8194):
            with self.assertRaises(ValueError):
                messages.inverter_command(bad, SERIAL, NOW)

    def test_action_constants(self):
        self.assertEqual((s.ACTION_DTU_REBOOT, s.ACTION_MI_START, s.ACTION_MI_SHUTDOWN,
                          s.ACTION_LIMIT_POWER, s.ACTION_PERFORMANCE_DATA_MODE,
                          s.ACTION_LIMIT_POWER_TEMPORARY, s.ACTION_INV_REBOOT),
                         (1, 6, 7, 8, 33, 211, 8195))

    def test_tags(self):
        self.assertEqual((s.TAG_APP_INFO, s.TAG_HEARTBEAT, s.TAG_COMMAND, s.TAG_COMMAND_STATUS,
                          s.TAG_GET_CONFIG, s.TAG_SET_CONFIG, s.TAG_REAL_DATA_NEW,
                          s.TAG_NETWORK_INFO, s.TAG_CLOUD_COMMAND),
                         (0xA301, 0xA302, 0xA305, 0xA306, 0xA309, 0xA310, 0xA311, 0xA314,
                          0x2305))

    def test_by_tag(self):
        for tag, pair in s.BY_TAG.items():
            self.assertEqual(len(pair), 2)
        self.assertEqual(c.BY_TAG[0xA309], (c.GetConfigResDTO, c.GetConfigReqDTO))
        self.assertEqual(c.BY_TAG[0xA310], (c.SetConfigResDTO, c.SetConfigReqDTO))
        builders = (messages.real_data_new(NOW), messages.app_info(NOW), messages.heartbeat(NOW),
                    messages.network_info(NOW), messages.power_limit(5, NOW),
                    messages.command_status(8, NOW, NOW), messages.dtu_reboot(NOW))
        for tag, schema, _ in builders:
            self.assertIs(s.BY_TAG[tag][0], schema)

    def test_y2038(self):
        # ymd_hms goes on, but the .proto's `time` fields are int32: the
        # encoder refuses instead of sending a wrapped value
        later = 2 ** 31
        tag, schema, msg = messages.real_data_new(later)
        self.assertEqual(msg["time_ymd_hms"], b"2038-01-19 03:14:08")
        with self.assertRaises(EncodeError):
            encode(schema, msg)
        tag, schema, msg = messages.network_info(later)  # uint32 there: fine
        self.assertEqual(decode(schema, encode(schema, msg))["time"], later)


def full_config():
    """A GetConfigReqDTO as decoded, every field set to a distinct value."""
    cfg = {}
    sch = c.GetConfigReqDTO
    for k in range(0, len(sch), 3):
        num, name, kind = sch[k], sch[k + 1], sch[k + 2]
        cfg[name] = ("v%d" % num) if kind == STR else num * 11
    return cfg


class TestSetConfigWifi(unittest.TestCase):
    def test_copies_every_common_field(self):
        cfg = full_config()
        tag, schema, msg = messages.set_config_wifi(cfg, "home", "secret", NOW)
        self.assertEqual(tag, 0xA310)
        self.assertIs(schema, c.SetConfigResDTO)
        set_names = names(c.SetConfigResDTO)
        overridden = ("offset", "time", "app_page", "netmode_select", "wifi_ssid",
                      "wifi_password")
        copied = 0
        for name in names(c.GetConfigReqDTO):
            if name in set_names and name not in overridden:
                self.assertEqual(msg[name], cfg[name], name)
                copied += 1
            elif name not in set_names:
                self.assertNotIn(name, msg)
        # everything SetConfig has, except what the app sets itself, is in GetConfig
        self.assertEqual(copied, len(set_names) - len(overridden))
        for name in msg:
            self.assertIn(name, set_names)

    def test_sets_wifi_and_mode(self):
        cfg = full_config()
        tag, schema, msg = messages.set_config_wifi(cfg, "my \u00fcnicode ssid", "pw", NOW)
        self.assertEqual(msg["netmode_select"], 1)
        self.assertEqual(msg["wifi_ssid"], "my \u00fcnicode ssid")
        self.assertEqual(msg["wifi_password"], "pw")
        self.assertEqual(msg["offset"], 28800)
        self.assertEqual(msg["time"], NOW)
        self.assertEqual(msg["app_page"], 1)
        # the config's own values of these are not sent
        self.assertNotEqual(cfg["netmode_select"], 1)
        self.assertNotEqual(cfg["wifi_ssid"], msg["wifi_ssid"])

    def test_numbers_shift_from_11_on(self):
        cfg = {"wifi_rssi": -60, "serverport": 10081, "wifi_ssid": "old", "dtu_ap_pass": "ap"}
        tag, schema, msg = messages.set_config_wifi(cfg, "new", "pw", NOW)
        self.assertNotIn("wifi_rssi", msg)
        out = decode(schema, encode(schema, msg))
        self.assertEqual(out["serverport"], 10081)
        self.assertEqual(out["dtu_ap_pass"], "ap")
        # on the wire: SetConfig numbers, not GetConfig's
        data = encode(schema, {"serverport": 10081})
        self.assertEqual(data[0], 11 << 3)
        self.assertEqual(encode(c.GetConfigReqDTO, {"serverport": 10081})[0], 12 << 3)

    def test_round_trip_from_the_wire(self):
        # what the DTU sends, decoded, re-encoded as SetConfig
        cfg = decode(c.GetConfigReqDTO, encode(c.GetConfigReqDTO, full_config()))
        tag, schema, msg = messages.set_config_wifi(cfg, "home", "secret", NOW)
        back = decode(schema, encode(schema, msg))
        self.assertEqual(back, msg)

    def test_empty_config(self):
        tag, schema, msg = messages.set_config_wifi({}, "a", "b", NOW)
        self.assertEqual(msg, {"offset": 28800, "time": NOW, "app_page": 1, "netmode_select": 1,
                               "wifi_ssid": "a", "wifi_password": "b"})

    def test_config_not_modified(self):
        cfg = full_config()
        before = dict(cfg)
        messages.set_config_wifi(cfg, "a", "b", NOW)
        self.assertEqual(cfg, before)


class TestParseLimitData(unittest.TestCase):
    def test_values(self):
        self.assertEqual(messages.parse_limit_data("A:800,B:0,C:0\r"), 80)
        self.assertEqual(messages.parse_limit_data("A:500,B:0,C:0\r"), 50)
        self.assertEqual(messages.parse_limit_data("A:0,B:0,C:0\r"), 0)
        self.assertEqual(messages.parse_limit_data("A:1000,B:0,C:0\r"), 100)
        self.assertEqual(messages.parse_limit_data("A:1000"), 100)
        self.assertEqual(messages.parse_limit_data("A:1000\r"), 100)
        self.assertEqual(messages.parse_limit_data("A: 250 ,B:0"), 25)
        self.assertEqual(messages.parse_limit_data("A:805,B:0,C:0\r"), 80)   # 0.1 % rounds down

    def test_round_trip(self):
        for p in range(0, 101):
            data = messages.power_limit(p, NOW)[2]["data"]
            self.assertEqual(messages.parse_limit_data(data), p)

    def test_not_a_limit(self):
        for bad in ("", "S:1,P:8000\r", "B:0,A:800", "a:800", "A:", "A:,B:0", "A:x,B:0",
                    "A:8 0,B:0", " A:800"):
            with self.assertRaises(ValueError):
                messages.parse_limit_data(bad)


def real_msg():
    return {
        "device_serial_number": "414393132164",
        "timestamp": 1742542601,
        "ap": 1,
        "sgs_data": [{
            "serial_number": SERIAL, "firmware_version": 1, "voltage": 2389,
            "frequency": 4999, "active_power": 741, "reactive_power": -12, "current": 31,
            "power_factor": 1000, "temperature": 112, "warning_number": 3, "link_status": 1,
            "power_limit": 1000,
        }],
        "pv_data": [
            {"serial_number": SERIAL, "port_number": 2, "voltage": 331, "current": 116,
             "power": 383, "energy_total": 1234567, "energy_daily": 2345},
            {"serial_number": SERIAL, "port_number": 1, "voltage": 330, "current": 113,
             "power": 372, "energy_total": 1200000, "energy_daily": 2300, "error_code": 5},
        ],
    }


class TestReadings(unittest.TestCase):
    def close(self, a, b):
        self.assertAlmostEqual(a, b, places=6)

    def test_scaling(self):
        r = readings.real_data(real_msg())
        self.assertEqual(r["timestamp"], 1742542601)
        self.assertEqual(r["dtu_serial"], "414393132164")
        inv = r["inverter"]
        self.assertEqual(inv["serial"], SERIAL)
        self.close(inv["temp"], 11.2)
        self.close(inv["limit"], 100.0)
        self.assertEqual((inv["link"], inv["warnings"], inv["fw"]), (1, 3, 1))
        g = r["grid"]
        self.close(g["v"], 238.9)
        self.close(g["c"], 0.31)
        self.close(g["p"], 74.1)
        self.close(g["f"], 49.99)
        self.close(g["pf"], 1.0)
        self.close(g["q"], -1.2)

    def test_pv_ports_sorted_and_scaled(self):
        pv = readings.real_data(real_msg())["pv"]
        self.assertEqual([p["port"] for p in pv], [1, 2])
        p1, p2 = pv
        self.close(p1["v"], 33.0)
        self.close(p1["c"], 1.13)
        self.close(p1["p"], 37.2)
        self.close(p1["dE"], 2.3)        # kWh from Wh
        self.close(p1["tE"], 1200.0)
        self.assertEqual(p1["err"], 5)
        self.close(p2["v"], 33.1)
        self.close(p2["c"], 1.16)
        self.close(p2["p"], 38.3)
        self.close(p2["dE"], 2.345)
        self.close(p2["tE"], 1234.567)
        self.assertEqual(p2["err"], 0)

    def test_grid_energy_is_sum_of_ports(self):
        g = readings.real_data(real_msg())["grid"]
        self.close(g["dE"], 2.3 + 2.345)
        self.close(g["tE"], 1200.0 + 1234.567)

    def test_negative_temperature(self):
        msg = {"sgs_data": [{"temperature": -52}]}
        self.close(readings.real_data(msg)["inverter"]["temp"], -5.2)
        # straight from the wire (protocol.md example)
        wire = bytes.fromhex("4a0b48ccffffffffffffffff01")
        decoded = decode(s.RealDataNewReqDTO, wire)
        self.close(readings.real_data(decoded)["inverter"]["temp"], -5.2)

    def test_from_the_wire(self):
        msg = real_msg()
        decoded = decode(s.RealDataNewReqDTO, encode(s.RealDataNewReqDTO, msg))
        self.assertEqual(readings.real_data(decoded), readings.real_data(msg))

    def test_missing_fields_are_zero(self):
        r = readings.real_data({})
        self.assertEqual(r["timestamp"], 0)
        self.assertEqual(r["dtu_serial"], "")
        self.assertEqual(r["pv"], [])
        for v in r["grid"].values():
            self.assertEqual(v, 0)
        for v in r["inverter"].values():
            self.assertEqual(v, 0)
        r = readings.real_data({"sgs_data": [{}], "pv_data": [{}]})
        self.assertEqual(r["pv"], [{"port": 0, "v": 0, "c": 0, "p": 0, "dE": 0, "tE": 0,
                                    "err": 0}])
        self.assertEqual(r["grid"]["v"], 0)

    def test_empty_sgs_list(self):
        self.assertEqual(readings.real_data({"sgs_data": []})["inverter"]["serial"], 0)

    def test_does_not_modify_input(self):
        msg = real_msg()
        before = repr(msg)
        readings.real_data(msg)
        self.assertEqual(repr(msg), before)

    def test_limit_from_config(self):
        self.close(readings.limit_from_config({"limit_power_mypower": 1000}), 100.0)
        self.close(readings.limit_from_config({"limit_power_mypower": 505}), 50.5)
        self.assertEqual(readings.limit_from_config({}), 0)

    def test_merge_real_data(self):
        first = {"device_serial_number": "dtu", "timestamp": 100, "ap": 2,
                 "sgs_data": [{"voltage": 2300}], "pv_data": [{"port_number": 1}]}
        part = {"timestamp": 101, "cp": 1, "ap": 2, "pv_data": [{"port_number": 2}]}
        out = readings.merge_real_data(first, part)
        self.assertIs(out, first)
        self.assertEqual(out, {"device_serial_number": "dtu", "timestamp": 101, "ap": 2, "cp": 1,
                               "sgs_data": [{"voltage": 2300}],
                               "pv_data": [{"port_number": 1}, {"port_number": 2}]})
        self.assertEqual([p["port"] for p in readings.real_data(out)["pv"]], [1, 2])

    def test_merge_into_empty(self):
        part = {"pv_data": [{"port_number": 2}], "cp": 1}
        out = readings.merge_real_data({}, part)
        self.assertEqual(out, part)
        # the part's list is copied, not shared
        out["pv_data"].append({})
        self.assertEqual(len(part["pv_data"]), 1)

    def test_dtu_version(self):
        self.assertEqual(readings.dtu_version(0x1101), "V01.01.01")
        self.assertEqual(readings.dtu_version(0x0302), "V00.03.02")
        self.assertEqual(readings.dtu_version(0x1000), "V01.00.00")
        self.assertEqual(readings.dtu_version(0), "V00.00.00")
        self.assertEqual(readings.dtu_version(4353), "V01.01.01")
        self.assertEqual(readings.dtu_version(0x2F0A), "V02.15.10")
        self.assertEqual(readings.dtu_version(0x10F0A), "V16.15.10")
