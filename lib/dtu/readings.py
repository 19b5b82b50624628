"""Physical units from decoded DTU messages: the one place where scaling lives.

The codec hands over the wire's integers unscaled; these functions turn them
into volts, amperes, watts, kWh, degC and percent. Missing fields are 0, as
in proto3.
"""


def _pv(p):
    g = p.get
    return {
        "port": g("port_number", 0),
        "v": g("voltage", 0) / 10,
        "c": g("current", 0) / 100,
        "p": g("power", 0) / 10,
        "dE": g("energy_daily", 0) / 1000,   # Wh on the wire
        "tE": g("energy_total", 0) / 1000,
        "err": g("error_code", 0),
    }


def real_data(msg):
    """Readings from a (merged) RealDataNewReqDTO dict.

    grid.dE/grid.tE are the sums over the PV ports (the inverter reports no
    AC-side energy counter); pv is sorted by port number.
    """
    pvs = [_pv(p) for p in msg.get("pv_data", ())]
    pvs.sort(key=lambda p: p["port"])
    sgs = msg.get("sgs_data") or ({},)
    g = sgs[0].get
    inv = {
        "serial": g("serial_number", 0),
        "temp": g("temperature", 0) / 10,
        "limit": g("power_limit", 0) / 10,   # 0.1 % on the wire
        "link": g("link_status", 0),
        "warnings": g("warning_number", 0),
        "fw": g("firmware_version", 0),
    }
    grid = {
        "v": g("voltage", 0) / 10,
        "c": g("current", 0) / 100,
        "p": g("active_power", 0) / 10,
        "f": g("frequency", 0) / 100,
        "pf": g("power_factor", 0) / 1000,
        "q": g("reactive_power", 0) / 10,
        "dE": sum(p["dE"] for p in pvs),
        "tE": sum(p["tE"] for p in pvs),
    }
    return {
        "timestamp": msg.get("timestamp", 0),
        "dtu_serial": msg.get("device_serial_number", ""),
        "inverter": inv,
        "grid": grid,
        "pv": pvs,
    }


def limit_from_config(msg):
    """Percent from GetConfigReqDTO.limit_power_mypower (0.1 %)."""
    return msg.get("limit_power_mypower", 0) / 10


def dtu_version(v):
    """'V01.01.01' from AppInfoData's dtu_sw_version number."""
    return "V%02d.%02d.%02d" % (v // 4096, (v // 256) % 16, v % 256)


def merge_real_data(into, part):
    """Merge a follow-up package (cp > 0) into the first, like protobuf's
    MergeFrom: repeated fields are concatenated, set scalars overwrite."""
    for k, v in part.items():
        if isinstance(v, list):
            into.setdefault(k, []).extend(v)
        else:
            into[k] = v
    return into
