#!/usr/bin/env python3
"""Talk to a Hoymiles HMS-W-2T DTU from a PC, with the gateway's own protocol code.

    dtu_cli.py get-data    --host 192.168.0.249 [--json]
    dtu_cli.py get-config  --host ...
    dtu_cli.py set-limit 80 --host ...
    dtu_cli.py reboot-dtu  --host ...
    dtu_cli.py info        --host ...
    dtu_cli.py decode 484da305...        (one frame, request or reply; no DTU needed)

Exit status: 0 ok, 2 the DTU did not answer (timeout, refused, closed),
3 bad reply (garbage, CRC, decode), 4 the DTU answered with an error code,
1 usage or other errors. Be gentle with a real DTU: it hangs for ~30 minutes
when written to more often than every 31 s.
"""
import argparse
import asyncio
import binascii
import json
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(_ROOT, "tools", "host_shims"), os.path.join(_ROOT, "lib"), _ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from proto_min import DecodeError, decode  # noqa: E402
from dtu import frame, readings  # noqa: E402
from dtu import schemas as s  # noqa: E402
from dtu.client import (DtuBadFrame, DtuClient, DtuClosed, DtuError,  # noqa: E402
                        DtuErrorCode, DtuTimeout)

EXIT_NO_ANSWER = 2
EXIT_BAD_REPLY = 3
EXIT_DTU_ERROR = 4


def jsonable(v):
    """Bytes as hex strings, recursively; everything else as it is."""
    if isinstance(v, (bytes, bytearray)):
        return binascii.hexlify(v).decode()
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    return v


def schema_for(tag):
    """The schema of a frame's payload: requests (0xA3nn, 0x23nn) carry the
    ...ResDTO, replies (0xA2nn, 0x22nn) the ...ReqDTO of the same command."""
    from dtu import config_schemas
    table = dict(s.BY_TAG)
    table.update(config_schemas.BY_TAG)
    is_request = (tag >> 8) & 1
    pair = table.get(tag if is_request else tag + 0x100)
    if pair is None:
        return None
    return pair[0] if is_request else pair[1]


def decode_frame(hexstr, enc_rand=None):
    """The JSON-able description of one frame, for `decode`."""
    data = binascii.unhexlify("".join(hexstr.split()))
    tag, seq, crc, length = frame.header(data)
    if length < frame.HEADER_LEN or length > len(data):
        raise frame.FrameError("length field %d does not fit %d bytes" % (length, len(data)))
    payload = data[frame.HEADER_LEN:length]
    out = {"tag": tag, "seq": seq, "crc_ok": frame.crc16(payload) == crc}
    mac = data[length:length + frame.MAC_LEN]
    if enc_rand is not None and tag not in frame.PLAIN_TAGS:
        if len(mac) != frame.MAC_LEN:
            raise frame.FrameError("encrypted frame without its 16-byte GCM tag")
        from dtu.crypto import DtuCipher
        payload = DtuCipher(enc_rand).open(tag, seq, payload + mac)
    schema = schema_for(tag)
    out["fields"] = jsonable(decode(schema, payload)) if schema else {}
    if schema is None:
        out["error"] = "unknown tag %04X" % tag
    return out


def _print(args, obj, text):
    if args.json:
        print(json.dumps(jsonable(obj), sort_keys=True))
    else:
        print(text)


async def _confirm(client, action, tid, tries=5, pause=2.0):
    """Poll CommandStatus until the inverter shows up as done."""
    for _ in range(tries):
        await asyncio.sleep(pause)
        st = await client.command_status(action, tid)
        if st.get("mi_sns_sucs"):
            return True
        if st.get("mi_sns_failds"):
            return False
    return False


async def run(args):
    client = DtuClient(args.host, args.port, clock=lambda: int(time.time()),
                       timeout=args.timeout, connect_timeout=args.timeout)
    try:
        if args.cmd == "get-data":
            raw = await client.get_real_data()
            r = readings.real_data(raw)
            lines = ["DTU %s  time %d" % (r["dtu_serial"], r["timestamp"])]
            g = r["grid"]
            lines.append("grid  %6.1f V %6.2f A %7.1f W  %5.2f Hz  today %.3f kWh  total %.3f kWh"
                         % (g["v"], g["c"], g["p"], g["f"], g["dE"], g["tE"]))
            for p in r["pv"]:
                lines.append("pv%d   %6.1f V %6.2f A %7.1f W  today %.3f kWh  total %.3f kWh"
                             % (p["port"], p["v"], p["c"], p["p"], p["dE"], p["tE"]))
            inv = r["inverter"]
            lines.append("inverter %x  %.1f degC  limit %.1f %%" % (inv["serial"], inv["temp"], inv["limit"]))
            _print(args, {"readings": r, "raw": raw}, "\n".join(lines))
        elif args.cmd == "get-config":
            cfg = await client.get_config()
            text = "limit %.1f %%  wifi %r  rssi %s  dtu %s  ap %r" % (
                readings.limit_from_config(cfg), cfg.get("wifi_ssid", ""), cfg.get("wifi_rssi", 0),
                cfg.get("dtu_sn", ""), cfg.get("dtu_ap_ssid", ""))
            _print(args, cfg, text)
        elif args.cmd == "set-limit":
            tid = await client.set_power_limit(args.percent)
            ok = await _confirm(client, s.ACTION_LIMIT_POWER, tid, pause=args.confirm_pause)
            _print(args, {"limit": args.percent, "tid": tid, "confirmed": ok},
                   "limit %d %% sent (tid %d), %s" % (args.percent, tid,
                                                      "confirmed" if ok else "not confirmed yet"))
        elif args.cmd == "reboot-dtu":
            reply = await client.reboot_dtu()
            _print(args, reply, "DTU reboot requested")
        elif args.cmd == "info":
            info = await client.get_app_info()
            d = info.get("dtu_info", {})
            pv = (info.get("pv_info") or [{}])[0]
            summary = {
                "dtu_serial": info.get("dtu_serial_number", ""),
                "dtu_sw": readings.dtu_version(d.get("dtu_sw_version", 0)),
                "dtu_hw": d.get("dtu_hw_version", 0),
                "signal": d.get("signal_strength", 0),
                "encrypted": client.cipher is not None,
                "inverter_serial": "%x" % pv.get("pv_serial_number", 0),
                "inverter_sw": pv.get("pv_sw_version", 0),
            }
            _print(args, {"summary": summary, "raw": info},
                   "\n".join("%-16s %s" % kv for kv in summary.items()))
        return 0
    finally:
        await client.close()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="dtu_cli.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def with_dtu(p):
        p.add_argument("--host", required=True, help="DTU address")
        p.add_argument("--port", type=int, default=10081)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
        return p

    with_dtu(sub.add_parser("get-data", help="real-time values"))
    with_dtu(sub.add_parser("get-config", help="the DTU's config (limit, WiFi)"))
    p = with_dtu(sub.add_parser("set-limit", help="persistent power limit in percent"))
    p.add_argument("percent", type=int)
    p.add_argument("--confirm-pause", type=float, default=2.0, help=argparse.SUPPRESS)
    with_dtu(sub.add_parser("reboot-dtu", help="restart the DTU"))
    with_dtu(sub.add_parser("info", help="serials, versions, encryption"))
    p = sub.add_parser("decode", help="decode one frame given as hex")
    p.add_argument("hex")
    p.add_argument("--enc-rand", help="hex enc_rand, to decrypt an encrypted frame")
    args = ap.parse_args(argv)

    if args.cmd == "decode":
        try:
            out = decode_frame(args.hex, binascii.unhexlify(args.enc_rand) if args.enc_rand else None)
        except (ValueError, binascii.Error) as e:  # FrameError, DecodeError, AuthError, bad hex
            print(json.dumps({"error": str(e) or type(e).__name__}))
            return EXIT_BAD_REPLY
        print(json.dumps(out, sort_keys=True))  # a wrong CRC is reported, not fatal
        return 0
    if args.cmd == "set-limit" and not (args.percent == 0 or 2 <= args.percent <= 100):
        ap.error("percent must be 0 or 2..100")
    try:
        return asyncio.run(run(args))
    except (DtuTimeout, DtuClosed) as e:
        print("error: the DTU did not answer: %s" % e, file=sys.stderr)
        return EXIT_NO_ANSWER
    except (DtuBadFrame, DecodeError) as e:
        print("error: bad reply: %s" % e, file=sys.stderr)
        return EXIT_BAD_REPLY
    except DtuErrorCode as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_DTU_ERROR
    except DtuError as e:  # pragma: no cover - every subclass is handled above
        print("error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
