"""The inverter's warnings (A304, after a Command with action 50 on A305).

Real DTUs answer A304 with the layout of hoymiles-wifi's WarnData.proto
(`WarnReqDTO`: the list at field 6, and package_nub/package_now for a list
in several packages, as RealDataNew). hoymiles-wifi also has
AlarmData.WInfoReqDTO with the list at field 3, but its own client never
decodes such a reply; dtuGateway decodes the A304 reply with a WInfoReqDTO
it changed to exactly this layout (its include/proto/AlarmData.proto:
package_count=3, package_idx=4, warn_device=5, mWInfo=6), and an empty reply
recorded from a real DTU (Nall-chan/HoymilesWiFi's tests) decodes cleanly
with it. The request is WarnData's `WarnResDTO`.

Kept apart from schemas.py: read at connect and when the warning count
changes, so it is loaded only then (tests_host/oracle checks it against
hoymiles-wifi's descriptors).
"""
from micropython import const

# proto_min's kinds as compile-time constants (see schemas.py for why).
_I32 = const(0)
_I64 = const(1)
_STR = const(5)

TAG_WARN_DATA = const(0xA304)
ACTION_ALARM_LIST = const(50)      # Command action that makes the DTU gather the list

WarnResDTO = (
    1, "ymd_hms", _STR,
    2, "package_now", _I32,
    3, "err_code", _I32,
    4, "offset", _I32,
    5, "time", _I32,
)
WarnMO = (
    1, "pv_sn", _I64,
    2, "code", _I32,
    3, "num", _I32,
    4, "s_time", _I32,
    5, "e_time", _I32,
    6, "w_data1", _I32,
    7, "w_data2", _I32,
)
WarnReqDTO = (
    1, "dtu_sn", _STR,
    2, "time", _I32,
    3, "package_nub", _I32,
    4, "package_now", _I32,
    5, "warn_device", _I32,
    -6, "warns", WarnMO,
)

BY_TAG = {TAG_WARN_DATA: (WarnResDTO, WarnReqDTO)}
