"""Requests a gateway sends to the DTU, as (tag, schema, message dict).

Every builder takes `now`, Unix seconds from the caller's clock: the protocol
layer has no clock of its own (boards may count from 2000, see platform.md).
"""
from civil import civil_from_days
from dtu import schemas as s

OFFSET = 28800  # what the official app sends in every request (UTC+8, in s)
MIN_LIMIT = 0
MAX_LIMIT = 100


def ymd_hms(t):
    """'YYYY-MM-DD HH:MM:SS' of Unix time t (UTC), without time.gmtime, whose
    epoch differs between ports."""
    days, rem = divmod(int(t), 86400)
    y, m, d = civil_from_days(days)
    return "%04d-%02d-%02d %02d:%02d:%02d" % (y, m, d, rem // 3600, rem // 60 % 60, rem % 60)


def real_data_new(now, cp=0):
    """RealDataNew; ask again with cp=1..ap-1 when the reply says ap > 1."""
    return s.TAG_REAL_DATA_NEW, s.RealDataNewResDTO, {
        "time_ymd_hms": ymd_hms(now).encode(), "cp": cp, "offset": OFFSET, "time": now}


def app_info(now):
    return s.TAG_APP_INFO, s.APPInfoDataResDTO, {
        "time_ymd_hms": ymd_hms(now).encode(), "offset": OFFSET, "time": now}


def heartbeat(now):
    return s.TAG_HEARTBEAT, s.HBResDTO, {
        "offset": OFFSET, "time": now, "time_ymd_hms": ymd_hms(now).encode()}


def network_info(now):
    return s.TAG_NETWORK_INFO, s.NetworkInfoResDTO, {"offset": OFFSET, "time": now}


def get_config(now):
    return s.TAG_GET_CONFIG, s.GetConfigResDTO, {"offset": OFFSET, "time": now}


def set_config_wifi(config, ssid, password, now):
    """SetConfig that re-sends the home WiFi credentials: every field of the
    DTU's current config (a decoded GetConfigReqDTO) is copied by name, then
    WiFi mode, SSID and password are set, as the official app does."""
    from dtu import config_schemas as c
    schema = c.SetConfigResDTO
    msg = {}
    for k in range(1, len(schema), 3):
        name = schema[k]
        if name in config:
            msg[name] = config[name]
    msg.update({"offset": OFFSET, "time": now, "app_page": 1, "netmode_select": 1,
                "wifi_ssid": ssid, "wifi_password": password})
    return s.TAG_SET_CONFIG, schema, msg


def power_limit(percent, now):
    """Persistent power limit in whole percent (stored by the inverter: the
    caller must coalesce writes, see the gateway's scheduler)."""
    if not isinstance(percent, int) or not MIN_LIMIT <= percent <= MAX_LIMIT:
        raise ValueError("limit must be an integer 0..100")
    return s.TAG_COMMAND, s.CommandResDTO, {
        "time": now, "action": s.ACTION_LIMIT_POWER, "package_nub": 1, "tid": now,
        "data": "A:%d,B:0,C:0\r" % (percent * 10)}


def command_status(action, tid, now):
    """Asks whether the command `action` sent with `tid` has been carried out."""
    return s.TAG_COMMAND_STATUS, s.CommandStatusResDTO, {
        "time": now, "action": action, "package_now": 0, "tid": tid}


def alarm_list(now):
    """Command action 50: the DTU gathers the inverter's warnings, then
    warn_data() pages through them (as dtuGateway and the official app do)."""
    from dtu import warn_schemas as w
    return s.TAG_COMMAND, s.CommandResDTO, {
        "time": now, "action": w.ACTION_ALARM_LIST, "package_nub": 1, "tid": now}


def warn_data(now, package_now=0):
    """One package (0-based) of the warning list; the reply says how many."""
    from dtu import warn_schemas as w
    return w.TAG_WARN_DATA, w.WarnResDTO, {
        "ymd_hms": ymd_hms(now), "package_now": package_now, "offset": OFFSET, "time": now}


def dtu_reboot(now):
    return s.TAG_CLOUD_COMMAND, s.CommandResDTO, {
        "action": s.ACTION_DTU_REBOOT, "package_nub": 1, "tid": now}


def inverter_command(action, inverter_serial, now):
    """Start (ACTION_MI_START), stop (ACTION_MI_SHUTDOWN) or reboot
    (ACTION_INV_REBOOT) the inverter with the given int64 serial."""
    if action not in (s.ACTION_MI_START, s.ACTION_MI_SHUTDOWN, s.ACTION_INV_REBOOT):
        raise ValueError("not an inverter action")
    return s.TAG_CLOUD_COMMAND, s.CommandResDTO, {
        "action": action, "package_nub": 1, "dev_kind": 1, "tid": now,
        "mi_to_sn": [inverter_serial]}


def parse_limit_data(data):
    """Percent from a limit command's data 'A:800,B:0,C:0\\r' (used by the
    simulator and the decoder); ValueError when it is not one."""
    if not data.startswith("A:"):
        raise ValueError("not a limit command")
    end = data.find(",")
    return int(data[2:end if end > 0 else len(data)].strip()) // 10
