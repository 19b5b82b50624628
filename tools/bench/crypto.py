"""Heap and speed of dtu.aesgcm / dtu.crypto, run BY MicroPython (CPython works too).

    micropython -X heapsize=96k tools/bench/crypto.py <repo_root>
    node tools/bench/wasm.mjs <tree> tools/bench/crypto.py
    python tools/bench/crypto.py <repo_root>

<tree> is any folder holding lib/dtu/, e.g. the .mpy build tools/bench/run.py makes.
Prints `name: value unit` lines. Heap figures are what stays allocated after a
gc.collect() (64-bit unix reads ~1.5x the 32-bit boards; a .py import keeps
more than a .mpy). alloc_per_* is the garbage one decrypt leaves for the GC
(the returned plaintext included). The WebAssembly port has no cryptolib: there
AES-ECB is a bench-only stand-in (named in the output), never anything under lib/.
Under tools/bench/wasm.mjs each function in STEPS runs as its own top-level call.
"""
import gc
import sys

MP = sys.implementation.name == "micropython"
try:
    ROOT = BENCH_ROOT  # noqa: F821 - set by tools/bench/wasm.mjs (no sys.argv there)
except NameError:
    ROOT = sys.argv[1] if len(sys.argv) > 1 else "."
sys.path.insert(0, ROOT + "/lib")
if not MP:
    sys.path.insert(0, ROOT + "/tools/host_shims")   # CPython cryptolib stand-in

if MP:
    from time import ticks_diff, ticks_us

    def heap():
        gc.collect()
        return gc.mem_alloc()
else:
    import time
    import tracemalloc

    tracemalloc.start()

    def ticks_us():
        return int(time.perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b

    def heap():
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

RUNS = 100
ENC_RAND = bytes(range(0x40, 0x50))
PAYLOAD = bytes((i * 29 + 7) & 0xFF for i in range(300))
# DTU known answer from tests_host/mp/test_aesgcm.py (hoymiles_wifi crypt_data)
KAT = ("00112233445566778899aabbccddeeff", 0xA311, 0x1234, "0a0c3131363138303530323032311064180a",
       "37ac7561e650cf3ec4f102bc24f9babfa473e5f6f8f3ca12d295eaa9e9fd4b034517")


class PyAes:
    """AES-128 encryption (ECB) in plain Python: bench-only, for ports without cryptolib."""

    sbox = x2 = None

    def __init__(self, key, mode):
        if PyAes.sbox is None:
            PyAes._tables()
        sbox, x2 = PyAes.sbox, PyAes.x2
        w = bytearray(176)
        w[:16] = key
        rcon = 1
        for i in range(16, 176, 4):
            t = w[i - 4:i]
            if i % 16 == 0:
                t = (sbox[t[1]] ^ rcon, sbox[t[2]], sbox[t[3]], sbox[t[0]])
                rcon = x2[rcon]
            for j in range(4):
                w[i + j] = w[i - 16 + j] ^ t[j]
        self.rk = w
        # ShiftRows as an index map on the column-major state
        self.sr = bytes((i % 4) + 4 * ((i // 4 + i % 4) % 4) for i in range(16))

    @staticmethod
    def _tables():
        sbox = bytearray(256)
        p = q = 1
        while True:   # walk the multiplicative group with generator 3 and its inverse
            p = (p ^ (p << 1) ^ (0x1B if p & 0x80 else 0)) & 0xFF
            q ^= q << 1
            q ^= q << 2
            q ^= q << 4
            q &= 0xFF
            if q & 0x80:
                q ^= 0x09
            x = q
            for s in (1, 2, 3, 4):
                x ^= ((q << s) | (q >> (8 - s))) & 0xFF
            sbox[p] = x ^ 0x63
            if p == 1:
                break
        sbox[0] = 0x63
        PyAes.sbox = sbox
        PyAes.x2 = bytes(((a << 1) ^ (0x1B if a & 0x80 else 0)) & 0xFF for a in range(256))

    def _block(self, blk, out, o):
        sbox, x2, rk, sr = self.sbox, self.x2, self.rk, self.sr
        s = bytearray(blk[i] ^ rk[i] for i in range(16))
        for r in range(16, 160, 16):
            t = bytes(sbox[s[sr[i]]] for i in range(16))
            for c in range(0, 16, 4):
                a0, a1, a2, a3 = t[c], t[c + 1], t[c + 2], t[c + 3]
                e = a0 ^ a1 ^ a2 ^ a3
                s[c] = a0 ^ e ^ x2[a0 ^ a1] ^ rk[r + c]
                s[c + 1] = a1 ^ e ^ x2[a1 ^ a2] ^ rk[r + c + 1]
                s[c + 2] = a2 ^ e ^ x2[a2 ^ a3] ^ rk[r + c + 2]
                s[c + 3] = a3 ^ e ^ x2[a3 ^ a0] ^ rk[r + c + 3]
        for i in range(16):
            out[o + i] = sbox[s[sr[i]]] ^ rk[160 + i]

    def encrypt(self, inbuf, outbuf=None):
        out = bytearray(len(inbuf)) if outbuf is None else outbuf
        for o in range(0, len(inbuf), 16):
            self._block(inbuf[o:o + 16], out, o)
        return bytes(out) if outbuf is None else outbuf


class ConstAes:
    """Not a cipher: E(x) = key for every block. Costs one call and no garbage, so
    the time and allocation that remain are our CTR + GHASH code alone."""

    def __init__(self, key, mode):
        self.k = bytes(key)

    def encrypt(self, inbuf, outbuf=None):
        out = bytearray(len(inbuf)) if outbuf is None else outbuf
        for o in range(0, len(inbuf), 16):
            out[o:o + 16] = self.k
        return bytes(out) if outbuf is None else outbuf


def ms_per_open(cipher, sealed):
    for _ in range(10):                       # warm-up (and the wasm JIT tiers)
        cipher.open(0xA311, 7, sealed)
    t0 = ticks_us()
    for _ in range(RUNS):
        cipher.open(0xA311, 7, sealed)
    return ticks_diff(ticks_us(), t0) / RUNS / 1000


def alloc(fn, *args):
    # Bytes one call allocates, GC off so nothing is reclaimed while counting.
    gc.collect()
    gc.disable()
    try:
        a0 = gc.mem_alloc()
        fn(*args)
        return "%d bytes" % (gc.mem_alloc() - a0)
    except MemoryError:
        return "more than the free heap"
    finally:
        gc.enable()


_m = {}


# Each step runs in its own top-level call under the WebAssembly port (see
# tools/bench/wasm.mjs): only there does gc.collect() free what a finished
# call allocated, so heap figures are taken between steps. Even so, the first
# collection after a busy step still finds ~2 KB of its garbage reachable
# (stale references), so a step that only collects comes before each figure.
def settle():
    heap()


def step_platform():
    try:
        import cryptolib  # noqa: F401
        _m["real"] = True
    except ImportError:
        _m["real"] = False
        print("cryptolib: missing on this port, AES-ECB below is a bench-only stand-in")

        class Stub:
            aes = ConstAes
        sys.modules["cryptolib"] = Stub
    print("platform: %s %s %d-bit" % (sys.implementation.name, sys.platform,
                                      64 if sys.maxsize > 2 ** 32 else 32))
    _m["h"] = heap()
    junk = [bytearray(100) for _ in range(40)]   # garbage for the next step's check
    junk = None


def step_gc_check():
    if heap() - _m["h"] > 2000:
        print("heap_figures: include garbage, gc.collect() did not reclaim a finished step's")
    _m["h0"] = heap()


def step_import():
    import dtu.aesgcm  # noqa: F401
    import dtu.crypto  # noqa: F401


def step_imported():
    _m["h1"] = heap()


def step_cipher():
    import dtu.crypto
    _m["cipher"] = dtu.crypto.DtuCipher(ENC_RAND)


def step_heap():
    h0, h1, h2 = _m["h0"], _m["h1"], heap()
    print("heap_import: %d bytes" % (h1 - h0))
    print("heap_cipher: %d bytes" % (h2 - h1))
    print("heap_kept: %d bytes" % (h2 - h0))
    if not MP:
        tracemalloc.stop()   # it slows CPython down several-fold


def step_alloc():
    from dtu.aesgcm import AesGcm
    cipher = _m["cipher"]
    _m["sealed"] = sealed = cipher.seal(0xA311, 7, PAYLOAD)
    gcm, nonce, aad = AesGcm(ENC_RAND), bytes(12), b"\x11\xa3\x07\x00"
    sealed2 = gcm.encrypt(nonce, PAYLOAD, aad)
    if MP:   # (CPython's gc has no mem_alloc)
        print("alloc_per_open_300B: %s (DtuCipher.open: nonce derivation + GCM)"
              % alloc(cipher.open, 0xA311, 7, sealed))
        print("alloc_per_decrypt_300B: %s (AesGcm.decrypt alone)"
              % alloc(gcm.decrypt, nonce, sealed2, aad))


def step_times():
    cipher, sealed = _m["cipher"], _m["sealed"]
    if _m["real"]:
        print("open_300B: %.3f ms" % ms_per_open(cipher, sealed))
        return
    print("open_300B_gcm_only: %.3f ms" % ms_per_open(cipher, sealed))
    import dtu.aesgcm
    import dtu.crypto
    dtu.aesgcm.aes = PyAes      # AesGcm objects made from here on use it
    cipher = dtu.crypto.DtuCipher(ENC_RAND)
    sealed = cipher.seal(0xA311, 7, PAYLOAD)
    print("open_300B_pure_python_aes: %.3f ms" % ms_per_open(cipher, sealed))


def step_selfcheck():
    import dtu.aesgcm
    import dtu.crypto
    from binascii import hexlify, unhexlify
    if not _m["real"]:
        dtu.aesgcm.aes = PyAes      # the known answer needs a real AES
    rand, tag, seq, pt, expect = KAT
    got = dtu.crypto.DtuCipher(unhexlify(rand)).seal(tag, seq, unhexlify(pt))
    print("selfcheck: %s" % ("ok" if hexlify(got).decode() == expect else "FAILED"))


STEPS = [step_platform, settle, step_gc_check, step_import, settle, step_imported,
         step_cipher, settle, step_heap, step_alloc, step_times, step_selfcheck]

if __name__ == "__main__":
    for _step in STEPS:
        _step()
