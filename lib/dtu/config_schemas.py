"""GetConfig (A309) and SetConfig (A310): the DTU's network and limit settings.

Kept apart from schemas.py because they are large and only needed for a full
config read (the CLI, the simulator) and to re-send the home WiFi credentials;
the gateway's periodic read decodes schemas.GetConfigLimitView instead. SetConfig's
field numbers differ from GetConfig's from 11 on (checked against
hoymiles-wifi's descriptors by tests_host/test_oracle_schemas.py).
"""
from dtu.schemas import GetConfigResDTO  # noqa: F401 - the request (small) lives in schemas.py

try:
    from micropython import const
except ImportError:  # pragma: no cover - CPython
    def const(x):
        return x

# proto_min's kinds as compile-time constants (see schemas.py for why).
_I32 = const(0)
_U32 = const(2)
_STR = const(5)

GetConfigReqDTO = (
    1, "request_offset", _I32,
    2, "request_time", _U32,
    3, "lock_password", _I32,
    4, "lock_time", _I32,
    5, "limit_power_mypower", _I32,
    6, "zero_export_433_addr", _I32,
    7, "zero_export_enable", _I32,
    8, "netmode_select", _I32,
    9, "channel_select", _I32,
    10, "server_send_time", _I32,
    11, "wifi_rssi", _I32,
    12, "serverport", _I32,
    13, "apn_set", _STR,
    14, "meter_kind", _STR,
    15, "meter_interface", _STR,
    16, "wifi_ssid", _STR,
    17, "wifi_password", _STR,
    18, "server_domain_name", _STR,
    19, "inv_type", _I32,
    20, "dtu_sn", _STR,
    21, "access_model", _I32,
    22, "mac_0", _I32,
    23, "mac_1", _I32,
    24, "mac_2", _I32,
    25, "mac_3", _I32,
    26, "dhcp_switch", _I32,
    27, "ip_addr_0", _I32,
    28, "ip_addr_1", _I32,
    29, "ip_addr_2", _I32,
    30, "ip_addr_3", _I32,
    31, "subnet_mask_0", _I32,
    32, "subnet_mask_1", _I32,
    33, "subnet_mask_2", _I32,
    34, "subnet_mask_3", _I32,
    35, "default_gateway_0", _I32,
    36, "default_gateway_1", _I32,
    37, "default_gateway_2", _I32,
    38, "default_gateway_3", _I32,
    39, "ka_nub", _STR,
    40, "apn_name", _STR,
    41, "apn_password", _STR,
    42, "sub1g_sweep_switch", _I32,
    43, "sub1g_work_channel", _I32,
    44, "cable_dns_0", _I32,
    45, "cable_dns_1", _I32,
    46, "cable_dns_2", _I32,
    47, "cable_dns_3", _I32,
    48, "wifi_ip_addr_0", _I32,
    49, "wifi_ip_addr_1", _I32,
    50, "wifi_ip_addr_2", _I32,
    51, "wifi_ip_addr_3", _I32,
    52, "mac_4", _I32,
    53, "mac_5", _I32,
    54, "wifi_mac_0", _I32,
    55, "wifi_mac_1", _I32,
    56, "wifi_mac_2", _I32,
    57, "wifi_mac_3", _I32,
    58, "wifi_mac_4", _I32,
    59, "wifi_mac_5", _I32,
    60, "gprs_imei", _STR,
    61, "dtu_ap_ssid", _STR,
    62, "dtu_ap_pass", _STR,
)

SetConfigResDTO = (
    1, "offset", _I32,
    2, "time", _U32,
    3, "lock_password", _I32,
    4, "lock_time", _I32,
    5, "limit_power_mypower", _I32,
    6, "zero_export_433_addr", _I32,
    7, "zero_export_enable", _I32,
    8, "netmode_select", _I32,
    9, "channel_select", _I32,
    10, "server_send_time", _I32,
    11, "serverport", _I32,
    12, "apn_set", _STR,
    13, "meter_kind", _STR,
    14, "meter_interface", _STR,
    15, "wifi_ssid", _STR,
    16, "wifi_password", _STR,
    17, "server_domain_name", _STR,
    18, "inv_type", _I32,
    19, "dtu_sn", _STR,
    20, "access_model", _I32,
    21, "mac_0", _I32,
    22, "mac_1", _I32,
    23, "mac_2", _I32,
    24, "mac_3", _I32,
    25, "dhcp_switch", _I32,
    26, "ip_addr_0", _I32,
    27, "ip_addr_1", _I32,
    28, "ip_addr_2", _I32,
    29, "ip_addr_3", _I32,
    30, "subnet_mask_0", _I32,
    31, "subnet_mask_1", _I32,
    32, "subnet_mask_2", _I32,
    33, "subnet_mask_3", _I32,
    34, "default_gateway_0", _I32,
    35, "default_gateway_1", _I32,
    36, "default_gateway_2", _I32,
    37, "default_gateway_3", _I32,
    38, "apn_name", _STR,
    39, "apn_password", _STR,
    40, "sub1g_sweep_switch", _I32,
    41, "sub1g_work_channel", _I32,
    42, "cable_dns_0", _I32,
    43, "cable_dns_1", _I32,
    44, "cable_dns_2", _I32,
    45, "cable_dns_3", _I32,
    46, "mac_4", _I32,
    47, "mac_5", _I32,
    48, "dtu_ap_ssid", _STR,
    49, "dtu_ap_pass", _STR,
    50, "app_page", _I32,
)

SetConfigReqDTO = (
    1, "offset", _I32,
    2, "time", _U32,
    3, "error_code", _I32,
)
BY_TAG = {
    0xA309: (GetConfigResDTO, GetConfigReqDTO),
    0xA310: (SetConfigResDTO, SetConfigReqDTO),
}
