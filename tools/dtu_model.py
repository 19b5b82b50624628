"""A simulated Hoymiles HMS-800W-2T with its built-in WiFi DTU, as a pure model.

No sockets, no asyncio, no time.time(): every rule is a function of the
injected clock, so a test can run a simulated day in seconds, and the TCP
server around it (dtu_sim.py) stays thin:

    model = DtuModel(clock, min_gap=31, cloud_schedule="5min")
    conn = model.connect()             # None: refused (the DTU is rebooting)
    reply = model.receive(conn, data)  # a dtu_faults.Reply: timed pieces, maybe close
    model.disconnect(conn)

The DTU's clock is clock() + time_offset; its local time adds tz_offset.
Daylight, cloud windows and the midnight reset follow DTU local time.

Physics (dtu_inverter.py): two ports of ~400 W under a daylight curve with
seeded noise; AC = min(DC * 0.96, limit % of 800 W); daily energy resets at
local midnight. At night the inverter sleeps (zeros, link_status 0) but the
DTU answers with an advancing timestamp: night is not a fault.

Rules and faults (dtu_faults.py): the hang rule, the cloud windows, and
drop/garbage/badcrc/slow/reboot/silent/getconfig_silent, switched with
set_fault(name, **params) / clear_fault(name) or by constructor options
(`faults={"drop": {"times": 1}}`). `model.counters` counts what a gateway
must keep at zero (hangs_induced, uploads_disturbed) and what it must keep low
(limit_writes).

Writes are A305 Command, A310 SetConfig and 2305 cloud commands. Commands
take effect `apply_delay` s after they arrive; A306 CommandStatus reports
progress until then and the inverter serial in mi_sns_sucs after.

The DTU reboots on the 2305 reboot command, after SetConfig (it rejoins the
WiFi, `rejoin_seconds`), on the "reboot" fault, and by itself at the end of a
hang; every reboot drops the connections, refuses new ones for a while and
brings a new enc_rand. connect(ap=True) is a connection via the DTU's own
access point: exempt from hang, silence and cloud, so SetConfig sent there is
the quick way out of a hang, as in the field.
"""
import random

from proto_min import DecodeError, decode, encode
from dtu import config_schemas as cs
from dtu import frame
from dtu import schemas as s
from dtu import warn_schemas as ws
from dtu.messages import OFFSET, parse_limit_data
import dtu_faults as df
from dtu_inverter import Inverter

WRITE_TAGS = (s.TAG_COMMAND, s.TAG_SET_CONFIG, s.TAG_CLOUD_COMMAND)
_INVERTER_ACTIONS = {s.ACTION_MI_START: "start", s.ACTION_MI_SHUTDOWN: "stop",
                     s.ACTION_INV_REBOOT: "restart"}


class Conn:
    __slots__ = ("id", "ap", "frames", "dead")

    def __init__(self, cid, ap, encrypted):
        self.id = cid
        self.ap = ap            # via the DTU's own access point: exempt from the rules
        self.frames = frame.FrameReader(encrypted=encrypted)
        self.dead = False       # dropped by a reboot or a newer connection


class DtuModel:
    """Options (all keywords): see the module docstring for the behaviour.

    DTU: seed, encrypted, time_offset, tz_offset, dtu_serial, inverter_serial,
      packages (RealDataNew split into `ap` packages), apply_delay,
      reboot_seconds, rejoin_seconds (after SetConfig), single_connection
      (a new connection drops the old one, as some HMS-W DTUs do), limit.
    Rules: min_gap (0 = no hang rule), burst_window, max_round, hang_seconds,
      cloud, cloud_schedule ("5min"/"15min"), cloud_counts_connections (an
      idle open connection during an upload window spoils it too).
    Faults: getconfig_silent, faults={name: params}.
    Warnings: warnings=[(code, start, end)] (seconds after the model's start;
      end None: still active), warn_per_package (entries per A304 package),
      count_ends (an end raises warning_number too: not confirmed on real DTUs);
      start_warning()/end_warning() at any time. A start raises RealDataNew's
      warning_number; the list is gathered at Command action 50 and paged
      with A304 (WarnData.WarnReqDTO), as real DTUs do.
    The field's dusk: dusk_seconds (None: the DTU stays on the network all
      night, answering zeros). The DTU is powered by the panels: for
      dusk_seconds after sunset it answers with every value 0, the lifetime
      energy counters included, then it is off the network until sunrise
      (connections refused, open ones dropped).
    Inverter (dtu_inverter.Inverter): sunrise, sunset, peak_w, rated_w,
      efficiency, ambient_min, ambient_max, data_period, energy_total,
      night_zero_energy, restart_seconds.
    """

    def __init__(self, clock, seed=1, encrypted=False, time_offset=0.0, tz_offset=0,
                 dtu_serial="4143A0123456", inverter_serial=0x116491234567, limit=100,
                 packages=1, apply_delay=3.0, reboot_seconds=40.0, rejoin_seconds=90.0,
                 single_connection=False,
                 min_gap=31.0, burst_window=5.0, max_round=15.0, hang_seconds=1800.0,
                 cloud=True, cloud_schedule="5min", cloud_counts_connections=True,
                 getconfig_silent=False, faults=None, dusk_seconds=None, warnings=(),
                 warn_per_package=10, count_ends=False,
                 wifi_ssid="HomeWiFi", wifi_password="home-secret", **inverter_options):
        self.clock = clock
        self.encrypted = encrypted
        self.time_offset = time_offset
        self.tz_offset = tz_offset
        self.dtu_serial = dtu_serial
        self.inverter_serial = inverter_serial
        self.packages = max(1, packages)
        self.apply_delay = apply_delay
        self.reboot_seconds = reboot_seconds
        self.rejoin_seconds = rejoin_seconds
        self.single_connection = single_connection
        self.cloud_counts_connections = cloud_counts_connections
        self.dusk_seconds = dusk_seconds
        self.wifi_ssid, self.wifi_password = wifi_ssid, wifi_password
        self.dtu_sw_version = 0x1101 if encrypted else 0x0302    # V01.01.01 / V00.03.02
        self.csq = 72
        self.limit = limit              # the last limit received (percent), persistent
        self.performance_mode = False
        self.last_real_data = None      # the last full RealDataNew sent (all packages)
        self.warns = []                 # WarnMO dicts, the newest last
        self.warning_number = 0         # RealDataNew's count: raised when a warning starts
        self.warn_per_package = max(1, warn_per_package)
        self.count_ends = count_ends
        self._gathered = []             # the list as of the last action 50
        start = self.clock() + time_offset
        self._warn_plan = sorted([(start + a, "start", code) for code, a, _ in warnings] +
                                 [(start + b, "end", code) for code, _, b in warnings if b is not None])

        self._counters = dict.fromkeys((
            "requests", "replies", "unanswered", "rounds", "connections", "refused",
            "hangs_induced", "uploads_disturbed", "writes_received", "limit_writes",
            "reboots", "bad_frames_in"), 0)
        self.hang_reasons = []
        self.trace = None               # callable(str): one line per request (the server logs it)
        self.hang = df.HangRule(min_gap, burst_window, max_round, hang_seconds)
        self.cloud = df.CloudRule(cloud_schedule) if cloud else None
        self.faults = df.Faults()
        self._rng = random.Random(seed)
        self._key_rng = random.Random(seed * 7919 + 17)
        self._conns = []
        self._next_id = 1
        self._commands = {}             # tid -> [action, arrived, ok]
        self._snapshot = None
        self._after = None              # set by a handler: reboot after this reply, in s
        self._disturbed = set()
        now = self.now()
        self.inverter = Inverter(now, seed=seed, serial=inverter_serial, tz_offset=tz_offset,
                                 limit=limit, **inverter_options)
        self._t = now                   # accounted up to here
        self._offline_until = 0.0
        self._hung_until = 0.0
        self._silent_until = 0.0
        self._new_key()
        if getconfig_silent:
            self.faults.set("getconfig_silent", now)
        for name, params in (faults or {}).items():
            self.set_fault(name, **params)

    # ---- time -------------------------------------------------------------

    def now(self):
        return self.clock() + self.time_offset

    def local(self, t):
        return t + self.tz_offset

    def advance(self):
        """Bring the model up to the clock: energy, commands that took
        effect, hangs that ended, uploads spoilt by open connections."""
        now = self.now()
        if now < self._t:
            return self._t              # the clock never runs backwards for the DTU
        if self.cloud and self.cloud_counts_connections and any(
                not c.ap and not c.dead for c in self._conns):
            for k in self.cloud.windows_between(self.local(self._t), self.local(now)):
                self._disturb(k)
        if self._hung_until and now >= self._hung_until:
            # a hung DTU comes back by rebooting itself
            self._reboot(self._hung_until, 0)
        if self.asleep(now):
            for c in self._conns:
                c.dead = True           # the panels no longer power the DTU
        self.inverter.advance(now)
        while self._warn_plan and self._warn_plan[0][0] <= now:
            when, what, code = self._warn_plan.pop(0)
            (self.start_warning if what == "start" else self.end_warning)(code, when)
        self._t = now
        return now

    @property
    def counters(self):
        self.advance()
        return self._counters

    def asleep(self, now):
        """Off the network for the night (option dusk_seconds): from
        dusk_seconds after sunset until sunrise, DTU local time."""
        if self.dusk_seconds is None:
            return False
        inv = self.inverter
        h = (self.local(now) % 86400) / 3600.0
        return h < inv.sunrise or (h >= inv.sunset and (h - inv.sunset) * 3600 >= self.dusk_seconds)

    def state(self, now=None):
        now = self.advance() if now is None else now
        if now < self._offline_until or self.asleep(now):
            return "offline"
        if now < self._hung_until:
            return "hung"
        if now < self._silent_until:
            return "silent"
        return "online"

    # ---- connections --------------------------------------------------------

    def connect(self, ap=False):
        """A new TCP connection; None when refused (rebooting)."""
        now = self.advance()
        if self.state(now) == "offline":
            self._counters["refused"] += 1
            return None
        if self.single_connection:
            for c in self._conns:
                c.dead = True           # a new connection closes the old one
        conn = Conn(self._next_id, ap, self.encrypted)
        self._next_id += 1
        self._conns.append(conn)
        self._counters["connections"] += 1
        return conn

    def disconnect(self, conn):
        self.advance()
        if conn in self._conns:
            self._conns.remove(conn)

    def receive(self, conn, data):
        """Bytes that arrived on `conn`; returns the Reply to send."""
        now = self.advance()
        if conn is None or conn.dead or conn not in self._conns:
            return df.Reply(close=True)
        out = df.Reply()
        try:
            conn.frames.feed(data)
        except frame.FrameError:
            self._counters["bad_frames_in"] += 1
            return df.Reply(close=True)
        while not out.close:
            try:
                f = conn.frames.next()
            except frame.FrameError:
                self._counters["bad_frames_in"] += 1   # dropped, the stream goes on
                continue
            if f is None:
                break
            out.extend(self._request(conn, now, *f))
        return out

    def set_local_time(self, at):
        """Jump the DTU's local time to `at` s after midnight (its Unix clock
        runs on): "skip to the morning" for tests and demos. Energy is kept
        as it was (no midnight is passed on the way)."""
        now = self.advance()
        self.tz_offset = int(at - now % 86400)
        self.inverter.tz_offset = self.tz_offset

    # ---- warnings -------------------------------------------------------------

    def start_warning(self, code, now=None, data1=0, data2=0):
        """The inverter raises warning `code` (the raw code, flags included)."""
        now = self.now() if now is None else now
        same = [w for w in self.warns if w["code"] == code]
        self.warns.append({"pv_sn": self.inverter_serial, "code": code,
                           "num": len(same) + 1, "s_time": int(now), "e_time": 0,
                           "w_data1": data1, "w_data2": data2})
        self.warns = self.warns[-20:]
        self.warning_number += 1

    def end_warning(self, code, now=None):
        """Every active warning with `code` ends."""
        now = self.now() if now is None else now
        for w in self.warns:
            if w["code"] == code and not w["e_time"]:
                w["e_time"] = int(now)
                if self.count_ends:
                    self.warning_number += 1

    # ---- faults -------------------------------------------------------------

    def set_fault(self, name, **params):
        now = self.advance()
        if name == "hang":
            h = self.hang
            if not h.min_gap:
                h.min_gap = 31.0
            for k in ("min_gap", "burst_window", "max_round", "hang_seconds"):
                if k in params:
                    setattr(h, k, float(params[k]))
            if params.get("now"):
                self._start_hang(now, "forced")
        elif name == "cloud":
            self.cloud = df.CloudRule(params.get("schedule", "5min"))
        elif name == "reboot":
            self._reboot(now, params.get("seconds", self.reboot_seconds))
        elif name == "silent":
            self._silent_until = now + params.get("duration", 1800.0)
        elif name in df.REPLY_FAULTS:
            self.faults.set(name, now, **params)
        else:
            raise ValueError("unknown fault %r (known: %s)" % (name, ", ".join(df.NAMES)))

    def clear_fault(self, name=None):
        """Switch a fault or rule off (all faults when name is None; the
        rules stay). Clearing "hang" also ends a hang in progress."""
        now = self.advance()
        if name == "hang":
            self.hang.min_gap = 0
            self._hung_until = 0.0
        elif name == "cloud":
            self.cloud = None
        elif name in ("reboot", None) and now < self._offline_until:
            self._offline_until = now
        if name in ("silent", None):
            self._silent_until = 0.0
        if name is None or name in df.REPLY_FAULTS:
            self.faults.clear(name)
        elif name not in df.NAMES:
            raise ValueError("unknown fault %r" % name)

    def status(self):
        """Counters and state as plain data (the simulator's /counters)."""
        now = self.advance()
        inv = self.inverter
        return {
            "time": now, "state": self.state(now), "counters": dict(self._counters),
            "limit": self.limit, "applied_limit": inv.limit,
            "temp_limit_w": inv.temp_limit_w, "inverter_on": inv.on,
            "encrypted": self.encrypted, "enc_rand": self.enc_rand.hex(),
            "min_gap": self.hang.min_gap, "cloud": self.cloud.schedule if self.cloud else None,
            "faults": self.faults.describe(now), "hang_reasons": self.hang_reasons[-5:],
            "energy_daily": [round(e, 3) for e in inv.energy_daily],
            "energy_total": [round(e, 3) for e in inv.energy_total],
            "wifi_ssid": self.wifi_ssid, "connections_open": len(self._conns),
            "warnings": [dict(w) for w in self.warns], "warning_number": self.warning_number,
        }

    # ---- one request ----------------------------------------------------------

    def _request(self, conn, now, tag, seq, body, mac):
        sealed = self.encrypted and tag not in frame.PLAIN_TAGS
        if sealed:
            try:
                body = self._cipher.open(tag, seq, body + mac)
            except ValueError:          # AuthError, wrong key: the DTU hangs up
                self._counters["bad_frames_in"] += 1
                return self.note(conn, now, tag, seq, "bad GCM tag, closing",
                                  df.Reply(close=True))
        schemas = s.BY_TAG.get(tag) or cs.BY_TAG.get(tag) or ws.BY_TAG.get(tag)
        try:
            req = decode(schemas[0], body) if schemas else {}
        except DecodeError:
            self._counters["bad_frames_in"] += 1
            return self.note(conn, now, tag, seq, "undecodable, ignored", df.Reply())
        c = self._counters
        c["requests"] += 1
        write = tag in WRITE_TAGS
        # action 50 only asks the DTU to gather its warnings; the hang rule
        # still takes it for a write (a Command), so a gateway must space it so
        gathers = tag == s.TAG_COMMAND and req.get("action") == ws.ACTION_ALARM_LIST
        if write and not gathers:
            c["writes_received"] += 1
            if tag == s.TAG_COMMAND and req.get("action") in (
                    s.ACTION_LIMIT_POWER, s.ACTION_LIMIT_POWER_TEMPORARY):
                c["limit_writes"] += 1
        if not conn.ap:
            if self.cloud:
                k = self.cloud.window(self.local(now))
                if k is not None:
                    self._disturb(k)
            if self.state(now) == "online":
                new_round, reason = self.hang.check(now, write)
                c["rounds"] += new_round
                if reason:
                    self._start_hang(now, reason)
            state = self.state(now)
            if state != "online":
                c["unanswered"] += 1
                return self.note(conn, now, tag, seq, "no answer (%s)" % state, df.Reply())
        if tag == s.TAG_GET_CONFIG and self.faults.get("getconfig_silent", now) is not None:
            c["unanswered"] += 1
            return self.note(conn, now, tag, seq, "no answer (getconfig_silent)", df.Reply())
        self._after = None
        handler = self._HANDLERS.get(tag)
        msg = handler(self, req, now) if handler else {}
        reply_schema = schemas[1] if schemas else ()
        rtag = frame.reply_tag(tag)
        payload = encode(reply_schema, msg)
        if sealed:
            box = self._cipher.seal(rtag, seq, payload)
            data = frame.build(rtag, seq, box[:-frame.MAC_LEN], box[-frame.MAC_LEN:])
        else:
            data = frame.build(rtag, seq, payload)
        reply, used = df.shape(data, self.faults, now, self._rng)
        c["replies"] += 1
        if self._after:
            self._reboot(now, self._after)   # after the reply is on its way
            used.append("rebooting for %gs" % self._after)
        return self.note(conn, now, tag, seq, "reply %d B%s%s" % (
            len(data), " (alarm list)" if gathers else "", " [%s]" % ", ".join(used) if used else ""), reply)

    def note(self, conn, now, tag, seq, outcome, reply):
        if self.trace is not None:
            self.trace("%s #%d%s %04X seq=%d -> %s" % (
                self._hms(now), conn.id, " (AP)" if conn.ap else "", tag, seq, outcome))
        return reply

    def _hms(self, t):
        t = int(self.local(t)) % 86400
        return "%02d:%02d:%02d" % (t // 3600, t // 60 % 60, t % 60)

    # ---- handlers: request dict -> reply dict ----------------------------------

    def _app_info(self, req, now):
        info = {"device_kind": 1, "dtu_sw_version": self.dtu_sw_version,
                "dtu_hw_version": 0x0100, "dtu_step_time": 15, "communication_time": 30,
                "signal_strength": self.csq, "access_model": 1}
        if self.encrypted:
            info["dfs"] = 1 << 25
            info["enc_rand"] = self.enc_rand
        return {"dtu_serial_number": self.dtu_serial, "timestamp": int(now),
                "device_number": 1, "pv_number": 2, "package_number": 1,
                "dtu_info": info,
                "pv_info": [{"device_kind": 3, "pv_serial_number": self.inverter_serial,
                             "pv_sw_version": 10008, "pv_hw_version": 0x0400,
                             "pv_grid_profile_code": 1}]}

    def _heartbeat(self, req, now):
        return {"offset": req.get("offset", OFFSET), "time": int(now), "csq": self.csq,
                "dtu_serial_number": self.dtu_serial,
                "device_serial_number": "%X" % self.inverter_serial}

    def _network_info(self, req, now):
        return {"dtu_sn": self.dtu_serial, "time": int(now), "net_set_mod": 1,
                "net_work_mod": 1, "csq": self.csq, "net_work_state": 1}

    def _real_data_new(self, req, now):
        cp = req.get("cp", 0)
        if cp == 0 or self._snapshot is None:
            sgs, pvs, ac = self.inverter.readings(now)
            awake = sgs.get("link_status", 0)
            if self.warning_number:
                sgs["warning_number"] = self.warning_number
            full = {"device_serial_number": self.dtu_serial, "timestamp": int(now),
                    "ap": self.packages, "cp": 0, "firmware_version": 1,
                    "sgs_data": [sgs], "pv_data": pvs, "dtu_power": round(ac * 10),
                    "dtu_daily_energy": int(sum(self.inverter.energy_daily)) if awake else 0}
            # kept as the wire has it (zero fields absent), for tests to compare
            schema = s.RealDataNewReqDTO
            self._snapshot = self.last_real_data = decode(schema, encode(schema, full))
        full = self._snapshot
        ap = self.packages
        part = {k: full[k] for k in ("device_serial_number", "timestamp", "firmware_version")}
        part.update(ap=ap, cp=cp)
        if cp == 0:
            for k in ("sgs_data", "dtu_power", "dtu_daily_energy"):
                if k in full:
                    part[k] = full[k]
        pvs = [p for i, p in enumerate(full.get("pv_data", ()))
               if (1 + i % (ap - 1) if ap > 1 else 0) == cp]
        if pvs:
            part["pv_data"] = pvs
        return part

    def _get_config(self, req, now):
        serial = self.dtu_serial
        return {"request_offset": OFFSET, "request_time": int(now),
                "limit_power_mypower": self.limit * 10, "netmode_select": 1,
                "server_send_time": self.cloud.period // 60 if self.cloud else 5,
                "wifi_rssi": -62, "serverport": 10081, "wifi_ssid": self.wifi_ssid,
                "server_domain_name": "dataeu.hoymiles.com", "dtu_sn": serial,
                "access_model": 1, "dhcp_switch": 1,
                "wifi_ip_addr_0": 192, "wifi_ip_addr_1": 168, "wifi_ip_addr_2": 0,
                "wifi_ip_addr_3": 249, "default_gateway_0": 192, "default_gateway_1": 168,
                "default_gateway_3": 1, "subnet_mask_0": 255, "subnet_mask_1": 255,
                "subnet_mask_2": 255, "wifi_mac_0": 0x48, "wifi_mac_1": 0x31, "wifi_mac_2": 0xB7,
                "wifi_mac_3": 0x12, "wifi_mac_4": 0x34, "wifi_mac_5": 0x56,
                "dtu_ap_ssid": "DTUBI-" + serial, "dtu_ap_pass": "12345678"}

    def _set_config(self, req, now):
        if req.get("wifi_ssid"):
            self.wifi_ssid = req["wifi_ssid"]
            self.wifi_password = req.get("wifi_password", "")
        # The DTU rejoins the WiFi with the credentials: ~1.5 min away, and
        # the way out of a hang (sent via its own access point).
        self._after = self.rejoin_seconds
        return {"offset": OFFSET, "time": int(now), "error_code": 0}

    def _command(self, req, now):
        action = req.get("action", 0)
        tid = req.get("tid", 0)
        err = 0
        ok = True
        if action == s.ACTION_LIMIT_POWER:
            try:
                pct = parse_limit_data(req.get("data", ""))
            except ValueError:
                pct = -1
            if 0 <= pct <= 100:
                self.limit = pct
                self.inverter.schedule(now + self.apply_delay, "limit", pct)
            else:
                err = 1
        elif action == s.ACTION_LIMIT_POWER_TEMPORARY:
            fields = dict(kv.split(":", 1) for kv in req.get("data", "").strip().split(",")
                          if ":" in kv)
            try:
                watts = int(fields.get("P", "")) / 10 if fields.get("S", "1") == "1" else None
                self.inverter.schedule(now + self.apply_delay, "temp_limit", watts)
            except ValueError:
                err = 1
        elif action == s.ACTION_PERFORMANCE_DATA_MODE:
            self.performance_mode = True
        elif action == s.ACTION_DTU_REBOOT:
            self._after = self.reboot_seconds
        elif action == ws.ACTION_ALARM_LIST:
            self._gathered = [dict(w) for w in self.warns]
        elif action in _INVERTER_ACTIONS:
            ok = self.inverter_serial in req.get("mi_to_sn", ())
            if ok:
                self.inverter.schedule(now + self.apply_delay, _INVERTER_ACTIONS[action])
        if not err:
            self._commands[tid] = [action, now, ok]
            while len(self._commands) > 32:
                del self._commands[next(iter(self._commands))]
        return {"dtu_sn": self.dtu_serial, "time": int(now), "action": action,
                "package_now": req.get("package_now", 0), "err_code": err, "tid": tid}

    def _command_status(self, req, now):
        tid = req.get("tid", 0)
        msg = {"dtu_sn": self.dtu_serial, "time": int(now), "action": req.get("action", 0),
               "package_nub": 1, "package_now": req.get("package_now", 0), "tid": tid}
        cmd = self._commands.get(tid)
        if cmd is None:
            return msg
        action, arrived, ok = cmd
        sn = self.inverter_serial
        if not ok:
            msg["mi_sns_failds"] = [sn]
        elif now >= arrived + self.apply_delay:
            msg["mi_sns_sucs"] = [sn]
        else:
            rate = int(100 * (now - arrived) / self.apply_delay) if self.apply_delay else 100
            msg["mi_mOperatingStatus"] = [{"mi_sn": sn, "progress_rate": rate}]
        return msg

    def _warn_data(self, req, now):
        n = self.warn_per_package
        nub = (len(self._gathered) + n - 1) // n
        i = req.get("package_now", 0)
        msg = {"dtu_sn": self.dtu_serial, "time": int(now), "package_nub": nub, "package_now": i,
               "warn_device": 15}
        part = self._gathered[i * n:(i + 1) * n]
        if part:
            msg["warns"] = part
        return msg

    _HANDLERS = {
        s.TAG_APP_INFO: _app_info,
        s.TAG_HEARTBEAT: _heartbeat,
        s.TAG_NETWORK_INFO: _network_info,
        s.TAG_REAL_DATA_NEW: _real_data_new,
        s.TAG_GET_CONFIG: _get_config,
        s.TAG_SET_CONFIG: _set_config,
        s.TAG_COMMAND: _command,
        s.TAG_CLOUD_COMMAND: _command,
        s.TAG_COMMAND_STATUS: _command_status,
        ws.TAG_WARN_DATA: _warn_data,
    }

    # ---- state changes ----------------------------------------------------------

    def _disturb(self, k):
        if k not in self._disturbed:
            self._disturbed.add(k)
            self._counters["uploads_disturbed"] += 1
            if len(self._disturbed) > 64:
                self._disturbed = {x for x in self._disturbed if x > k - 8}

    def _start_hang(self, now, reason):
        self._hung_until = now + self.hang.hang_seconds
        self._counters["hangs_induced"] += 1
        self.hang_reasons.append("%.0f: %s" % (now, reason))

    def _new_key(self):
        self.enc_rand = self._key_rng.randbytes(16)
        self._cipher = None
        if self.encrypted:
            from dtu.crypto import DtuCipher
            self._cipher = DtuCipher(self.enc_rand)

    def _reboot(self, now, seconds):
        """The DTU restarts: connections drop, it refuses new ones for
        `seconds`, then comes back with a new enc_rand. The persistent limit
        stays; the temporary one is gone."""
        self._offline_until = now + seconds
        self._hung_until = self._silent_until = 0.0
        for c in self._conns:
            c.dead = True
        self._new_key()
        self.inverter.temp_limit_w = None
        self.hang.reset()
        self._snapshot = None
        self.performance_mode = False
        self._counters["reboots"] += 1
