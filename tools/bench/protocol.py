"""Protocol benchmark; runs under MicroPython (unix or WebAssembly) and CPython.

    micropython -X heapsize=256k tools/bench/protocol.py <repo_root>

Prints `name: value unit` lines: heap kept by importing the protocol modules,
and the time to decode a full two-port RealDataNew reply (protobuf only, and
frame + protobuf + scaling to physical units). tools/bench/run.py runs it on the
.mpy files, as the board loads them.
"""
import gc
import sys
import time

try:
    ROOT = BENCH_ROOT  # noqa: F821 - set by tools/bench/wasm.mjs (no sys.argv there)
except NameError:
    ROOT = sys.argv[1] if len(sys.argv) > 1 else "."
sys.path[:0] = [ROOT + "/lib", ROOT, ROOT + "/tools/host_shims"]

try:
    _ticks = time.ticks_us

    def _elapsed_us(t0):
        return time.ticks_diff(time.ticks_us(), t0)
except AttributeError:  # CPython
    def _ticks():
        return time.perf_counter()

    def _elapsed_us(t0):
        return (time.perf_counter() - t0) * 1e6


def _heap():
    gc.collect()
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0


# What a real HMS-800W-2T answers around noon (values as on the wire).
SAMPLE = {
    "device_serial_number": "4143A0123456", "timestamp": 1718618400, "ap": 1, "cp": 0,
    "firmware_version": 1,
    "sgs_data": [{"serial_number": 0x116491234567, "firmware_version": 10005, "voltage": 2312,
                  "frequency": 4999, "active_power": 6123, "reactive_power": -12, "current": 265,
                  "power_factor": 1000, "temperature": 382, "warning_number": 2,
                  "link_status": 1, "power_limit": 1000, "modulation_index_signal": 23}],
    "pv_data": [{"serial_number": 0x116491234567, "port_number": 1, "voltage": 372,
                 "current": 851, "power": 3166, "energy_total": 1234567, "energy_daily": 2345},
                {"serial_number": 0x116491234567, "port_number": 2, "voltage": 368,
                 "current": 845, "power": 3110, "energy_total": 1198765, "energy_daily": 2301}],
    "dtu_power": 6123, "dtu_daily_energy": 4646,
}


def sample_frame():
    from proto_min import encode
    from dtu import frame, schemas
    return frame.build(0xA211, 7, encode(schemas.RealDataNewReqDTO, SAMPLE))


_m = {}


# Each step runs in its own top-level call under the WebAssembly port (see
# tools/bench/wasm.mjs): only there does gc.collect() free what a finished
# call allocated, so heap figures are taken between steps.
def step_base():
    _m["base"] = _heap()


def step_import():
    import proto_min  # noqa: F401
    from dtu import frame, schemas, messages, readings  # noqa: F401


def step_import_done():
    print("protocol_import_heap: %d bytes" % (_heap() - _m["base"]))


def step_import_client():
    import dtu.client  # noqa: F401  (brings asyncio in)


def step_client_done():
    print("protocol_import_heap_with_client: %d bytes" % (_heap() - _m["base"]))


def step_times():
    from proto_min import decode
    from dtu import frame, schemas, readings
    data = sample_frame()
    print("realdata_frame_size: %d bytes" % len(data))
    n = 200
    t0 = _ticks()
    for _ in range(n):
        decode(schemas.RealDataNewReqDTO, memoryview(data)[frame.HEADER_LEN:])
    print("realdata_decode: %.1f us" % (_elapsed_us(t0) / n))
    t0 = _ticks()
    for _ in range(n):
        r = frame.FrameReader()
        r.feed(data)
        tag, seq, payload, mac = r.next()
        readings.real_data(decode(schemas.RealDataNewReqDTO, payload))
    print("realdata_frame_decode_scale: %.1f us" % (_elapsed_us(t0) / n))


STEPS = [step_base, step_import, step_import_done, step_import_client, step_client_done, step_times]

if __name__ == "__main__":
    for _step in STEPS:
        _step()
