"""Message schemas of the DTU protocol (proto_min format), with the .proto's
own message and field names.

Hoymiles names messages from the cloud's point of view: a `...ResDTO` is what
the gateway SENDS, a `...ReqDTO` is what the DTU ANSWERS. Field numbers and
types are checked against hoymiles-wifi's generated descriptors by
tests_host/oracle/test_oracle_schemas.py; fields a gateway never reads (meters,
repeaters, three-phase inverters, storage) are left out and skipped on decode.
GetConfig/SetConfig live in config_schemas.py: they are big and rarely used.
"""
from micropython import const

# proto_min's kinds, repeated here as compile-time constants so that mpy-cross
# turns each schema into one constant tuple (in flash with ROMFS/frozen code)
# instead of bytecode that builds it in RAM. test_schema_kinds checks they match.
_I32 = const(0)
_I64 = const(1)
_U32 = const(2)
_U64 = const(3)
_STR = const(5)
_BYTES = const(6)

# Command tags (gateway -> DTU); the reply carries tag - 0x100 (frame.reply_tag).
TAG_APP_INFO = const(0xA301)
TAG_HEARTBEAT = const(0xA302)
TAG_COMMAND = const(0xA305)
TAG_COMMAND_STATUS = const(0xA306)
TAG_GET_CONFIG = const(0xA309)
TAG_SET_CONFIG = const(0xA310)
TAG_REAL_DATA_NEW = const(0xA311)
TAG_NETWORK_INFO = const(0xA314)
TAG_CLOUD_COMMAND = const(0x2305)

# Command actions (CommandResDTO.action)
ACTION_DTU_REBOOT = const(1)
ACTION_MI_START = const(6)
ACTION_MI_SHUTDOWN = const(7)
ACTION_LIMIT_POWER = const(8)
ACTION_PERFORMANCE_DATA_MODE = const(33)
ACTION_LIMIT_POWER_TEMPORARY = const(211)
ACTION_INV_REBOOT = const(8195)

# ---- RealDataNew (A311) -------------------------------------------------------
SGSMO = (
    1, "serial_number", _I64,
    2, "firmware_version", _I32,
    3, "voltage", _I32,
    4, "frequency", _I32,
    5, "active_power", _I32,
    6, "reactive_power", _I32,
    7, "current", _I32,
    8, "power_factor", _I32,
    9, "temperature", _I32,
    10, "warning_number", _I32,
    11, "crc_checksum", _I32,
    12, "link_status", _I32,
    13, "power_limit", _I32,
    20, "modulation_index_signal", _I32,
)
PvMO = (
    1, "serial_number", _I64,
    2, "port_number", _I32,
    3, "voltage", _I32,
    4, "current", _I32,
    5, "power", _I32,
    6, "energy_total", _I32,
    7, "energy_daily", _I32,
    8, "error_code", _I32,
)
RealDataNewReqDTO = (
    1, "device_serial_number", _STR,
    2, "timestamp", _I32,
    3, "ap", _I32,
    4, "cp", _I32,
    5, "firmware_version", _I32,
    -9, "sgs_data", SGSMO,
    -11, "pv_data", PvMO,
    12, "dtu_power", _U64,
    13, "dtu_daily_energy", _U64,
)
RealDataNewResDTO = (
    1, "time_ymd_hms", _BYTES,
    2, "cp", _I32,
    3, "error_code", _I32,
    4, "offset", _I32,
    5, "time", _I32,
)

# ---- Command (A305, cloud 2305) and CommandStatus (A306) ----------------------
CommandResDTO = (
    1, "time", _I32,
    2, "action", _I32,
    3, "dev_kind", _I32,
    4, "package_nub", _I32,
    5, "package_now", _I32,
    6, "tid", _I64,
    7, "data", _STR,
    -8, "es_to_sn", _STR,
    -9, "mi_to_sn", _I64,
)
CommandReqDTO = (
    1, "dtu_sn", _STR,
    2, "time", _I32,
    3, "action", _I32,
    4, "package_now", _I32,
    5, "err_code", _I32,
    6, "tid", _I64,
)
CommandStatusResDTO = (
    1, "time", _I32,
    2, "action", _I32,
    3, "package_now", _I32,
    4, "tid", _I64,
    5, "err_code", _I32,
)
MIOperatingStatusMO = (
    1, "mi_sn", _I64,
    2, "progress_rate", _I32,
)
MIErrorStatusMO = (
    1, "mi_sn", _I64,
    2, "error_code", _I64,
)
CommandStatusReqDTO = (
    1, "dtu_sn", _STR,
    2, "time", _I32,
    3, "action", _I32,
    4, "package_nub", _I32,
    5, "package_now", _I32,
    6, "tid", _I64,
    -8, "mi_sns_sucs", _I64,
    -10, "mi_sns_failds", _I64,
    -12, "mi_mOperatingStatus", MIOperatingStatusMO,
    -13, "mi_mErrorStatus", MIErrorStatusMO,
)

# ---- Heartbeat (A302) and NetworkInfo (A314) ----------------------------------
HBResDTO = (
    1, "offset", _I32,
    2, "time", _I32,
    3, "time_ymd_hms", _BYTES,
)
HBReqDTO = (
    1, "offset", _I32,
    2, "time", _I32,
    3, "csq", _I32,
    4, "dtu_serial_number", _STR,
    5, "device_serial_number", _STR,
)
NetworkInfoResDTO = (
    1, "offset", _I32,
    2, "time", _U32,
)
NetworkInfoReqDTO = (
    1, "dtu_sn", _STR,
    2, "time", _U32,
    3, "net_set_mod", _I32,
    4, "net_set_time", _I32,
    5, "net_set_state", _I32,
    6, "net_work_mod", _I32,
    7, "net_work_time", _I32,
    8, "csq", _I32,
    9, "net_work_state", _I32,
    10, "ap_set_state", _I32,
)

# ---- AppInfoData (A301): versions, and the encryption flag and key seed ------
APPDtuInfoMO = (
    1, "device_kind", _I32,
    2, "dtu_sw_version", _I32,
    3, "dtu_hw_version", _I32,
    4, "dtu_step_time", _I32,
    5, "dtu_rf_hw_version", _I32,
    6, "dtu_rf_sw_version", _I32,
    7, "access_model", _I32,
    8, "communication_time", _I32,
    9, "signal_strength", _I32,
    10, "gprs_version", _STR,
    11, "wifi_version", _STR,
    12, "ka_number", _STR,
    13, "dtu_rule_id", _I32,
    14, "dtu_error_code", _I32,
    22, "gprs_imei", _STR,
    23, "dtu_swb_time", _I32,
    24, "dfs", _I64,
    26, "type", _I32,
    27, "enc_rand", _BYTES,
)
APPPvInfoMO = (
    1, "device_kind", _I32,
    2, "pv_serial_number", _I64,
    3, "pv_usfw", _I32,
    4, "pv_sw_version", _I32,
    5, "pv_hw_part_number", _I32,
    6, "pv_hw_version", _I32,
    7, "pv_grid_profile_code", _I32,
    8, "pv_grid_profile", _I32,
    9, "pv_rf_hw_version", _I32,
    10, "pv_rf_sw_version", _I32,
    11, "mi_rule_id", _I32,
)
APPInfoDataReqDTO = (
    1, "dtu_serial_number", _STR,
    2, "timestamp", _U32,
    3, "device_number", _I32,
    4, "pv_number", _I32,
    5, "package_number", _I32,
    6, "current_package", _I32,
    7, "channel", _I32,
    8, "dtu_info", APPDtuInfoMO,
    -11, "pv_info", APPPvInfoMO,
)
# What a connection learns from AppInfoData (the client asks for it first on
# every connection): the encryption flag and key seed, the DTU's serial,
# firmware and signal. Decoded with these views, the ~30 other fields and the
# pv_info list are neither garbage each round nor held between rounds
# (client.app_info); get_app_info() still decodes the whole message.
APPDtuInfoView = (
    2, "dtu_sw_version", _I32,
    9, "signal_strength", _I32,
    24, "dfs", _I64,
    27, "enc_rand", _BYTES,
)
APPInfoDataView = (
    1, "dtu_serial_number", _STR,
    8, "dtu_info", APPDtuInfoView,
)
APPInfoDataResDTO = (
    1, "time_ymd_hms", _BYTES,
    2, "offset", _I32,
    3, "current_package", _I32,
    4, "error_code", _I32,
    5, "time", _U32,
)

# GetConfig as the gateway's periodic read does it: the request is small, and of
# the DTU's ~60-field reply (config_schemas.GetConfigReqDTO) only these three
# are used; a decoder skips the fields its schema does not list, so the big
# table stays unloaded (heap) and the reply decodes into a 3-key dict.
GetConfigResDTO = (
    1, "offset", _I32,
    2, "time", _U32,
)
GetConfigLimitView = (
    5, "limit_power_mypower", _I32,
    61, "dtu_ap_ssid", _STR,
    62, "dtu_ap_pass", _STR,
)

# tag -> (request schema, reply schema); GetConfig/SetConfig are in config_schemas.
BY_TAG = {
    TAG_APP_INFO: (APPInfoDataResDTO, APPInfoDataReqDTO),
    TAG_HEARTBEAT: (HBResDTO, HBReqDTO),
    TAG_COMMAND: (CommandResDTO, CommandReqDTO),
    TAG_CLOUD_COMMAND: (CommandResDTO, CommandReqDTO),
    TAG_COMMAND_STATUS: (CommandStatusResDTO, CommandStatusReqDTO),
    TAG_REAL_DATA_NEW: (RealDataNewResDTO, RealDataNewReqDTO),
    TAG_NETWORK_INFO: (NetworkInfoResDTO, NetworkInfoReqDTO),
}
