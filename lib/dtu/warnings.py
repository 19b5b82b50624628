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


def entries(warns):
    """[(code, active, count, start, end, data1, data2, raw code)] of the
    list, start and end as the DTU's Unix times (0: none). One function
    (each one is a few dozen bytes of RAM on the board, frozen or not)."""
    out = []
    for w in warns:
        raw, start, end = w.get("code", 0), w.get("s_time", 0), w.get("e_time", 0)
        out.append((raw & 0x0FFF, bool(start) and not end, w.get("num", 0), start, end,
                    w.get("w_data1", 0), w.get("w_data2", 0), raw))
    return out
