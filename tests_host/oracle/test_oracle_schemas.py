"""Our hand-written schemas against hoymiles-wifi's generated descriptors.

Every field we declare must have the descriptor's number, name, repeated-ness
and type (nested messages compared recursively, by message name), repeated
scalars must be packed (our encoder always packs), and the command tags and
actions must be hoymiles-wifi's. Fields we leave out are allowed: the decoder
skips them. CPython only (pytest).
"""
import importlib

import pytest
from google.protobuf.descriptor import FieldDescriptor as FD

from proto_min import I32, I64, U32, U64, BOOL, STR, BYTES
from dtu import config_schemas, frame, schemas, warn_schemas

import hoymiles_wifi.const as hw_const

# Each of our schemas -> the .proto module (hoymiles_wifi.protobuf.<module>_pb2)
MODULE_OF = {
    "SGSMO": "RealDataNew",
    "PvMO": "RealDataNew",
    "RealDataNewReqDTO": "RealDataNew",
    "RealDataNewResDTO": "RealDataNew",
    "CommandResDTO": "CommandPB",
    "CommandReqDTO": "CommandPB",
    "CommandStatusResDTO": "CommandPB",
    "CommandStatusReqDTO": "CommandPB",
    "MIOperatingStatusMO": "CommandPB",
    "MIErrorStatusMO": "CommandPB",
    "HBResDTO": "APPHeartbeatPB",
    "HBReqDTO": "APPHeartbeatPB",
    "NetworkInfoResDTO": "NetworkInfo",
    "NetworkInfoReqDTO": "NetworkInfo",
    "APPDtuInfoMO": "APPInfomationData",
    "APPPvInfoMO": "APPInfomationData",
    "APPInfoDataReqDTO": "APPInfomationData",
    "APPInfoDataResDTO": "APPInfomationData",
    "GetConfigResDTO": "GetConfig",
    "GetConfigReqDTO": "GetConfig",
    "SetConfigResDTO": "SetConfig",
    "SetConfigReqDTO": "SetConfig",
    "WarnResDTO": "WarnData",
    "WarnReqDTO": "WarnData",
    "WarnMO": "WarnData",
}

KIND_OF_TYPE = {
    FD.TYPE_INT32: I32,
    FD.TYPE_INT64: I64,
    FD.TYPE_UINT32: U32,
    FD.TYPE_UINT64: U64,
    FD.TYPE_BOOL: BOOL,
    FD.TYPE_STRING: STR,
    FD.TYPE_BYTES: BYTES,
}


def _is_schema(v):
    return (isinstance(v, tuple) and v and len(v) % 3 == 0
            and all(isinstance(v[k], int) and isinstance(v[k + 1], str)
                    for k in range(0, len(v), 3)))


def our_schemas():
    """name -> schema for every schema tuple in schemas.py and config_schemas.py."""
    out = {}
    for mod in (schemas, config_schemas, warn_schemas):
        for name in dir(mod):
            v = getattr(mod, name)
            if not name.startswith("_") and _is_schema(v):
                assert out.get(name, v) is v, name    # one definition, imported elsewhere
                out[name] = v
    return out


# Views: a few fields of a big message, decoded where only those are needed
# (unlisted fields are skipped); checked against the full message's descriptor.
VIEW_OF = {"GetConfigLimitView": "GetConfigReqDTO", "APPInfoDataView": "APPInfoDataReqDTO",
           "APPDtuInfoView": "APPDtuInfoMO"}
OURS = our_schemas()
VIEWS = dict((name, OURS.pop(name)) for name in VIEW_OF)


def name_of(schema):
    """The message a schema decodes (a view: the message it is a view of)."""
    for name, v in OURS.items():
        if v is schema:
            return name
    for name, v in VIEWS.items():
        if v is schema:
            return VIEW_OF[name]
    return None


def descriptor(name):
    mod = importlib.import_module("hoymiles_wifi.protobuf.%s_pb2" % MODULE_OF[name])
    return mod.DESCRIPTOR.message_types_by_name[name]


def fields(schema):
    for k in range(0, len(schema), 3):
        yield schema[k], schema[k + 1], schema[k + 2]


def compare(schema, desc, path, seen=None):
    """List of mismatches between `schema` and the message descriptor `desc`."""
    seen = set() if seen is None else seen
    if (id(schema), desc.full_name) in seen:
        return []
    seen.add((id(schema), desc.full_name))
    errors = []
    for num, name, kind in fields(schema):
        where = "%s.%s(%d)" % (path, name, abs(num))
        f = desc.fields_by_number.get(abs(num))
        if f is None:
            errors.append("%s: no field %d in %s" % (where, abs(num), desc.full_name))
            continue
        if f.name != name:
            errors.append("%s: the .proto calls it %s" % (where, f.name))
        if f.is_repeated != (num < 0):
            errors.append("%s: repeated is %s in the .proto" % (where, f.is_repeated))
        if isinstance(kind, tuple):
            if f.type != FD.TYPE_MESSAGE:
                errors.append("%s: a message here, type %d in the .proto" % (where, f.type))
                continue
            ours = name_of(kind)
            if ours != f.message_type.name:
                errors.append("%s: nested schema %s, the .proto has %s"
                              % (where, ours, f.message_type.name))
            errors.extend(compare(kind, f.message_type, where, seen))
        else:
            theirs = KIND_OF_TYPE.get(f.type)
            if theirs is None:
                errors.append("%s: .proto type %d has no proto_min kind" % (where, f.type))
            elif theirs != kind:
                errors.append("%s: kind %d, the .proto's type maps to %d" % (where, kind, theirs))
            elif num < 0 and kind not in (STR, BYTES) and not f.is_packed:
                errors.append("%s: repeated scalar not packed in the .proto" % where)
    return errors


def test_every_schema_is_mapped():
    assert set(OURS) == set(MODULE_OF)


@pytest.mark.parametrize("name", sorted(VIEW_OF))
def test_view_matches_its_message(name):
    full = VIEW_OF[name]
    assert compare(VIEWS[name], descriptor(full), name) == []
    whole = dict((num, (nm, kind)) for num, nm, kind in fields(OURS[full]))
    for num, nm, kind in fields(VIEWS[name]):
        assert whole[num][0] == nm, nm
        assert whole[num][1] is kind or name_of(kind) == name_of(whole[num][1]), nm
    assert name not in MODULE_OF


def test_map_points_at_real_messages():
    for name in MODULE_OF:
        assert descriptor(name).name == name


@pytest.mark.parametrize("name", sorted(MODULE_OF))
def test_schema_matches_descriptor(name):
    assert compare(OURS[name], descriptor(name), name) == []


@pytest.mark.parametrize("name", sorted(MODULE_OF))
def test_schema_shape(name):
    schema = OURS[name]
    nums = [abs(n) for n, _, _ in fields(schema)]
    names = [nm for _, nm, _ in fields(schema)]
    assert nums == sorted(nums), "fields must be in number order (the encoder relies on it)"
    assert len(set(nums)) == len(nums)
    assert len(set(names)) == len(names)
    assert all(0 < n < 2 ** 29 for n in nums)
    for num, nm, kind in fields(schema):
        assert isinstance(kind, tuple) or kind in (I32, I64, U32, U64, BOOL, STR, BYTES), nm


@pytest.mark.parametrize("name", sorted(MODULE_OF))
def test_packedness(name):
    """Repeated scalars packed on both sides; strings, bytes, messages never."""
    desc = descriptor(name)
    for num, nm, kind in fields(OURS[name]):
        if num > 0:
            continue
        f = desc.fields_by_number[-num]
        scalar = not isinstance(kind, tuple) and kind not in (STR, BYTES)
        assert f.is_packed == scalar, nm


def test_compare_catches_mistakes():
    # the checker itself: a wrong name, number, kind, repeated-ness, nesting
    desc = descriptor("PvMO")
    assert compare((1, "serial_number", I64), desc, "x") == []
    assert compare((1, "serial", I64), desc, "x")
    assert compare((1, "serial_number", U64), desc, "x")
    assert compare((-1, "serial_number", I64), desc, "x")
    assert compare((99, "nope", I32), desc, "x")
    rd = descriptor("RealDataNewReqDTO")
    assert compare((-9, "sgs_data", schemas.PvMO), rd, "x")
    assert compare((-9, "sgs_data", (3, "voltage", U32)), rd, "x")
    assert compare((9, "sgs_data", schemas.SGSMO), rd, "x")


def test_by_tag_pairs_request_and_reply():
    # gateway sends ...ResDTO, the DTU answers ...ReqDTO (Hoymiles' naming)
    for table in (schemas.BY_TAG, config_schemas.BY_TAG, warn_schemas.BY_TAG):
        for tag, (req, rep) in table.items():
            rq, rp = name_of(req), name_of(rep)
            assert rq.endswith("ResDTO") and rp.endswith("ReqDTO"), (hex(tag), rq, rp)
            assert rq[:-6] == rp[:-6]
            assert MODULE_OF[rq] == MODULE_OF[rp]


def _tag(b):
    return (b[0] << 8) | b[1]


def test_tags_match_hoymiles_wifi():
    c = hw_const
    assert schemas.TAG_APP_INFO == _tag(c.CMD_APP_INFO_DATA_RES_DTO)
    assert schemas.TAG_HEARTBEAT == _tag(c.CMD_HB_RES_DTO)
    assert schemas.TAG_COMMAND == _tag(c.CMD_COMMAND_RES_DTO)
    assert schemas.TAG_COMMAND_STATUS == _tag(c.CMD_COMMAND_STATUS_RES_DTO)
    assert schemas.TAG_GET_CONFIG == _tag(c.CMD_GET_CONFIG)
    assert schemas.TAG_SET_CONFIG == _tag(c.CMD_SET_CONFIG)
    assert schemas.TAG_REAL_DATA_NEW == _tag(c.CMD_REAL_RES_DTO)
    assert schemas.TAG_NETWORK_INFO == _tag(c.CMD_NETWORK_INFO_RES)
    assert schemas.TAG_CLOUD_COMMAND == _tag(c.CMD_CLOUD_COMMAND_RES_DTO)
    assert warn_schemas.TAG_WARN_DATA == _tag(c.CMD_W_INFO_RES_DTO)
    assert frame.reply_tag(schemas.TAG_APP_INFO) == _tag(c.CMD_APP_INFO_DATA_REQ_DTO)


def test_plain_tags_cover_hoymiles_wifi():
    for b in hw_const.NOT_ENCRYPTED_COMMANDS:
        assert _tag(b) in frame.PLAIN_TAGS


def test_actions_match_hoymiles_wifi():
    c = hw_const
    assert schemas.ACTION_DTU_REBOOT == c.CMD_ACTION_DTU_REBOOT
    assert schemas.ACTION_MI_START == c.CMD_ACTION_MI_START
    assert schemas.ACTION_MI_SHUTDOWN == c.CMD_ACTION_MI_SHUTDOWN
    assert schemas.ACTION_LIMIT_POWER == c.CMD_ACTION_LIMIT_POWER
    assert schemas.ACTION_LIMIT_POWER_TEMPORARY == c.CMD_ACTION_LIMIT_POWER_TEMPORARY
    assert schemas.ACTION_PERFORMANCE_DATA_MODE == c.CMD_ACTION_PERFORMANCE_DATA_MODE
    assert schemas.ACTION_INV_REBOOT == c.CMD_ACTION_INV_REBOOT
    assert warn_schemas.ACTION_ALARM_LIST == c.CMD_ACTION_ALARM_LIST
