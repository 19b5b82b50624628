"""What the DTU's warning list (dtu.warn_schemas.WarnReqDTO's WarnMO entries,
as DtuClient.get_warnings() returns them) means.

A warning is active while it has a start and no end (s_time != 0, e_time ==
0), as dtuGateway and the official app read it. Its code is in the low 12
bits of the raw code: the top bits are flags (the radio protocol's AM/PM
bits, and one seen on ended entries: dtuGateway logs 124 as 0x207C, 0x407C,
0x507C and 0x707C). The low byte alone (`code & 0xFF`, what dtuGateway
takes) gives the same for codes under 256, such as a raw 8333 -> 141, but
cannot express the hardware codes 301-314.
"""
from micropython import const

_CODE_BITS = const(0x0FFF)


def code_of(raw):
    return raw & _CODE_BITS


def active(w):
    return bool(w.get("s_time")) and not w.get("e_time")


def entries(warns):
    """[(code, active, count, start, end, data1, data2, raw code)] of the
    list, start and end as the DTU's Unix times (0: none)."""
    return [(code_of(w.get("code", 0)), active(w), w.get("num", 0), w.get("s_time", 0),
             w.get("e_time", 0), w.get("w_data1", 0), w.get("w_data2", 0), w.get("code", 0))
            for w in warns]
