"""Our protobuf dicts next to Google's generated messages (hoymiles-wifi's
*_pb2 classes): one view for every oracle test (tests_host/oracle/) and the
decoder fuzz (tests_host/unit/test_fuzz.py)."""
import importlib

from google.protobuf.descriptor import FieldDescriptor as FD

# our message name -> the hoymiles-wifi module that has Google's class for it
MODULE_OF = {
    "SGSMO": "RealDataNew", "PvMO": "RealDataNew",
    "RealDataNewReqDTO": "RealDataNew", "RealDataNewResDTO": "RealDataNew",
    "CommandResDTO": "CommandPB", "CommandReqDTO": "CommandPB",
    "CommandStatusResDTO": "CommandPB", "CommandStatusReqDTO": "CommandPB",
    "MIOperatingStatusMO": "CommandPB", "MIErrorStatusMO": "CommandPB",
    "HBResDTO": "APPHeartbeatPB", "HBReqDTO": "APPHeartbeatPB",
    "NetworkInfoResDTO": "NetworkInfo", "NetworkInfoReqDTO": "NetworkInfo",
    "APPDtuInfoMO": "APPInfomationData", "APPPvInfoMO": "APPInfomationData",
    "APPInfoDataReqDTO": "APPInfomationData", "APPInfoDataResDTO": "APPInfomationData",
    "GetConfigResDTO": "GetConfig", "GetConfigReqDTO": "GetConfig",
    "SetConfigResDTO": "SetConfig", "SetConfigReqDTO": "SetConfig",
    "WarnResDTO": "WarnData", "WarnReqDTO": "WarnData", "WarnMO": "WarnData",
}


def fields(schema):
    for k in range(0, len(schema), 3):
        yield schema[k], schema[k + 1], schema[k + 2]


def is_repeated(f):
    if hasattr(f, "is_repeated"):
        return f.is_repeated
    return f.label == FD.LABEL_REPEATED  # pragma: no cover - older protobuf


def to_pb(msg, d):
    """Fill the generated message `msg` from the dict `d` (our format)."""
    for name, v in d.items():
        f = msg.DESCRIPTOR.fields_by_name[name]
        if f.type == FD.TYPE_MESSAGE:
            if is_repeated(f):
                for item in v:
                    to_pb(getattr(msg, name).add(), item)
            else:
                sub = getattr(msg, name)
                sub.SetInParent()
                to_pb(sub, v)
        elif is_repeated(f):
            getattr(msg, name).extend(v)
        else:
            setattr(msg, name, v)
    return msg


def from_pb(msg, schema):
    """What our decoder should make of Google's `msg`: the schema's fields
    that are on the wire (proto3: non-zero scalars, non-empty lists, set
    sub-messages)."""
    out = {}
    for num, name, kind in fields(schema):
        v = getattr(msg, name)
        if isinstance(kind, tuple):
            if num < 0:
                if len(v):
                    out[name] = [from_pb(x, kind) for x in v]
            elif msg.HasField(name):
                out[name] = from_pb(v, kind)
        elif num < 0:
            if len(v):
                out[name] = list(v)
        elif v:
            out[name] = v
    return out


def pb_module(name):
    return importlib.import_module("hoymiles_wifi.protobuf.%s_pb2" % MODULE_OF[name])


def pb_class(name):
    return getattr(pb_module(name), name)


def normalize(d, schema):
    """Our dict as it will come back from the wire: zeros and empty lists gone."""
    out = {}
    for num, name, kind in fields(schema):
        if name not in d:
            continue
        v = d[name]
        if isinstance(kind, tuple):
            if num < 0:
                if v:
                    out[name] = [normalize(x, kind) for x in v]
            else:
                out[name] = normalize(v, kind)
        elif num < 0:
            if v:
                out[name] = list(v)
        elif v:
            out[name] = v
    return out
