"""Home Assistant MQTT discovery for the gateway (loaded only while announcing).

One device, identified by the board's chip id; its entities read the plain
value topics the bridge publishes (gateway/integrations/values.py) and share the bridge's
availability topic (the MQTT last will):

    homeassistant/<component>/dtu_gateway_<chip id>/<object id>/config

Energy counters are total_increasing (the daily one restarts at midnight,
which that class allows), so the energy dashboard accepts them. The limit is
a `number` whose commands go to <topic>/set/power_limit; two buttons send
PRESS to <topic>/set/dtu_reboot and <topic>/set/inverter_restart. An empty
retained config removes an entity (clear()).
"""
import json

from gateway.link.scheduler import CONN_WORDS, ERROR_WORDS

PREFIX = "homeassistant"

# (object id, name, value, unit, device_class, state_class, diagnostic)
_M = "measurement"
_T = "total_increasing"
SENSORS = (
    ("grid_p", "Grid power", "grid/p", "W", "power", _M, 0),
    ("grid_v", "Grid voltage", "grid/v", "V", "voltage", _M, 0),
    ("grid_c", "Grid current", "grid/c", "A", "current", _M, 0),
    ("grid_f", "Grid frequency", "grid/f", "Hz", "frequency", _M, 0),
    ("grid_dE", "Energy today", "grid/dE", "kWh", "energy", _T, 0),
    ("grid_tE", "Energy total", "grid/tE", "kWh", "energy", _T, 0),
    ("pv0_v", "PV0 voltage", "pv0/v", "V", "voltage", _M, 0),
    ("pv0_c", "PV0 current", "pv0/c", "A", "current", _M, 0),
    ("pv0_p", "PV0 power", "pv0/p", "W", "power", _M, 0),
    ("pv0_dE", "PV0 energy today", "pv0/dE", "kWh", "energy", _T, 0),
    ("pv0_tE", "PV0 energy total", "pv0/tE", "kWh", "energy", _T, 0),
    ("pv1_v", "PV1 voltage", "pv1/v", "V", "voltage", _M, 0),
    ("pv1_c", "PV1 current", "pv1/c", "A", "current", _M, 0),
    ("pv1_p", "PV1 power", "pv1/p", "W", "power", _M, 0),
    ("pv1_dE", "PV1 energy today", "pv1/dE", "kWh", "energy", _T, 0),
    ("pv1_tE", "PV1 energy total", "pv1/tE", "kWh", "energy", _T, 0),
    ("inverter_temp", "Inverter temperature", "inverter/temp", "\u00b0C", "temperature", _M, 0),
    ("inverter_limit", "Power limit", "inverter/limit", "%", None, _M, 0),
    ("dtu_rssi", "DTU signal", "dtu/rssi", "%", None, _M, 1),
    ("inverter_warnings", "Active warnings", "inverter/warnings", None, None, _M, 0),
)
# object id -> its JSON attributes topic
ATTRIBUTES = {"inverter_warnings": "inverter/warnings/list"}
# (object id, name, value, options)
ENUMS = (
    ("dtu_connection", "DTU connection", "dtu/connection", CONN_WORDS),
    ("dtu_error", "DTU error", "dtu/error", ERROR_WORDS),
)
# (object id, name, value)
BINARY = (
    ("inverter_uptodate", "Data up to date", "inverter/uptodate"),
    ("inverter_active", "Inverter on", "inverter/active"),
)
# (object id, name, command)
BUTTONS = (
    ("dtu_reboot", "Reboot DTU", "dtu_reboot"),
    ("inverter_restart", "Restart inverter", "inverter_restart"),
)


def node_id(chip_id):
    return "dtu_gateway_" + chip_id


def _topic(component, node, obj):
    return "%s/%s/%s/%s/config" % (PREFIX, component, node, obj)


def topics(chip_id):
    """Every config topic of the device, as (component, object id, topic)."""
    node = node_id(chip_id)
    out = [("sensor", r[0], _topic("sensor", node, r[0])) for r in SENSORS]
    out += [("sensor", r[0], _topic("sensor", node, r[0])) for r in ENUMS]
    out += [("binary_sensor", r[0], _topic("binary_sensor", node, r[0])) for r in BINARY]
    out.append(("number", "power_limit", _topic("number", node, "power_limit")))
    out += [("button", r[0], _topic("button", node, r[0])) for r in BUTTONS]
    return out


def device(chip_id, version, url, serial=""):
    d = {"identifiers": [node_id(chip_id)], "name": "DTU Gateway " + chip_id,
         "manufacturer": "Hoymiles", "model": "HMS-800W-2T (DTU Gateway)",
         "sw_version": version, "configuration_url": url}
    if serial:
        d["serial_number"] = serial
    return d


def configs(chip_id, base, dev):
    """(topic, payload bytes) of every entity, one at a time (little RAM)."""
    node = node_id(chip_id)

    def common(obj, name):
        return {"name": name, "unique_id": node + "_" + obj, "device": dev,
                "availability_topic": base + "/availability",
                "payload_available": "online", "payload_not_available": "offline"}

    for obj, name, val, unit, dc, sc, diag in SENSORS:
        c = common(obj, name)
        c["state_topic"] = base + "/" + val
        if unit:
            c["unit_of_measurement"] = unit
        c["state_class"] = sc
        if obj in ATTRIBUTES:
            c["json_attributes_topic"] = base + "/" + ATTRIBUTES[obj]
        if dc:
            c["device_class"] = dc
        if diag:
            c["entity_category"] = "diagnostic"
        yield _topic("sensor", node, obj), json.dumps(c).encode()
    for obj, name, val, opts in ENUMS:
        c = common(obj, name)
        c["state_topic"] = base + "/" + val
        c["device_class"] = "enum"
        c["options"] = list(opts)
        c["entity_category"] = "diagnostic"
        yield _topic("sensor", node, obj), json.dumps(c).encode()
    for obj, name, val in BINARY:
        c = common(obj, name)
        c["state_topic"] = base + "/" + val
        c["payload_on"] = "1"
        c["payload_off"] = "0"
        c["entity_category"] = "diagnostic"
        yield _topic("binary_sensor", node, obj), json.dumps(c).encode()
    c = common("power_limit", "Power limit setting")
    c.update({"command_topic": base + "/set/power_limit", "state_topic": base + "/inverter/limit_set",
              "min": 0, "max": 100, "step": 1, "unit_of_measurement": "%", "mode": "box"})
    yield _topic("number", node, "power_limit"), json.dumps(c).encode()
    for obj, name, cmd in BUTTONS:
        c = common(obj, name)
        c.update({"command_topic": base + "/set/" + cmd, "payload_press": "PRESS",
                  "device_class": "restart", "entity_category": "config"})
        yield _topic("button", node, obj), json.dumps(c).encode()
