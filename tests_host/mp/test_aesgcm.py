"""AES-128-GCM and the DTU encryption scheme: known answers, tamper checks.

Board-side tests: plain unittest, run under pytest and under the unix
MicroPython (tests_host/mp/run_all.py). Imports only board code.
"""
import unittest
from binascii import hexlify, unhexlify

from dtu.aesgcm import AesGcm, AuthError
from dtu.crypto import DtuCipher, derive_key, derive_nonce, is_encrypted


def h(s):
    return unhexlify(s.replace(" ", ""))


_TC3_PT = ("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
           "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
_TC3_CT = ("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
           "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985")

# (name, key, iv, plaintext, aad, ciphertext, tag), all hex
VECTORS = (
    # McGrew & Viega, "The Galois/Counter Mode of Operation", AES-128 test cases 1-4
    ("gcm-spec TC1 empty", "00000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "58e2fccefa7e3061367f1d57a4e7455a"),
    ("gcm-spec TC2 one block", "00000000000000000000000000000000", "000000000000000000000000",
     "00000000000000000000000000000000", "", "0388dace60b6a392f328c2b971b2fe78",
     "ab6e47d42cec13bdf53a67b21257bddf"),
    ("gcm-spec TC3 four blocks", "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     _TC3_PT, "", _TC3_CT, "4d5c2af327cd64a62cf35abd2ba6fab4"),
    ("gcm-spec TC4 60 bytes + 20-byte AAD", "feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", _TC3_PT[:120], "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     _TC3_CT[:120], "5bc94fbc3221a5db94fae95ae7121a47"),
    # NIST CAVP gcmEncryptExtIV128.rsp, IVlen 96, Taglen 128
    ("cavp PT0 AAD0", "11754cd72aec309bf52f7687212e8957", "3c819d9a9bed087615030b65",
     "", "", "", "250327c674aaf477aef2675748cf6971"),
    ("cavp AAD only", "77be63708971c4e240d1cb79e8d77feb", "e0e00f19fed7ba0136a797f3",
     "", "7a43ec1d9c0a5a78a0b16533a6213cab", "", "209fcc8d3675ed938e9c7166709dd946"),
    ("cavp PT128 AAD0", "7fddb57453c241d03efbed3ac44e371c", "ee283a3fc75575e33efd4887",
     "d5de42b461646c255c87bd2962d3b9a2", "", "2ccda4a5415cb91e135c2a0f78c9b2fd",
     "b36d1df9b9d5e596f83e8b7f52971cb3"),
    ("cavp PT128 AAD128", "c939cc13397c1d37de6ae0e1cb7c423c", "b3d8cc017cbb89b39e0f67e2",
     "c3b3c41f113a31b73d9a5cd432103069", "24825602bd12a984e0092d3e448eda5f",
     "93fe7d9e9bfd10348a5606e5cafa7354", "0032a1dc85f1c9786925a2e71d8272dd"),
    ("cavp PT408 AAD160 (partial blocks)", "fe47fcce5fc32665d2ae399e4eec72ba",
     "5adb9609dbaeb58cbd6e7275",
     "7c0e88c88899a779228465074797cd4c2e1498d259b54390b85e3eef1c02df60"
     "e743f1b840382c4bccaf3bafb4ca8429bea063",
     "88319d6e1d3ffa5f987199166c8a9b56c2aeba5a",
     "98f4826f05a265e6dd2be82db241c0fbbbf9ffb1c173aa83964b7cf5393043736"
     "365253ddbc5db8778371495da76d269e5db3e",
     "291ef1982e4defedaa2249f898556b47"),
    # NIST CAVP gcmDecrypt128.rsp, IVlen 96, PTlen 0, Taglen 128, Count 0 (valid)
    ("cavp decrypt valid", "cf063a34d4a9a76c2c86787d3f96db71", "113b9785971864c83b01c787",
     "", "", "", "72ac8493e3a5228b5d130a69d2510e42"),
)

# gcmDecrypt128.rsp, same section: a vector marked FAIL
CAVP_FAIL = ("a49a5e26a2f8cb63d05546c2a62f5343", "907763b19b9b4ab6bd4f0281",
             "a2be08210d8c470a8df6e8fbd79ec5cf")


def flip(data, index, bit=1):
    b = bytearray(data)
    b[index] ^= bit
    return bytes(b)


class TestAesGcmVectors(unittest.TestCase):
    def test_encrypt_known_answers(self):
        for name, key, iv, pt, aad, ct, tag in VECTORS:
            out = AesGcm(h(key)).encrypt(h(iv), h(pt), h(aad))
            self.assertEqual(hexlify(out).decode(), ct + tag, name)

    def test_decrypt_known_answers(self):
        for name, key, iv, pt, aad, ct, tag in VECTORS:
            out = AesGcm(h(key)).decrypt(h(iv), h(ct + tag), h(aad))
            self.assertEqual(hexlify(out).decode(), pt, name)

    def test_cavp_fail_vector_is_rejected(self):
        key, iv, tag = CAVP_FAIL
        with self.assertRaises(AuthError):
            AesGcm(h(key)).decrypt(h(iv), h(tag))

    def test_returns_bytes_and_accepts_buffers(self):
        name, key, iv, pt, aad, ct, tag = VECTORS[3]
        g = AesGcm(h(key))
        out = g.encrypt(bytearray(h(iv)), memoryview(h(pt)), bytearray(h(aad)))
        self.assertIsInstance(out, bytes)
        back = g.decrypt(h(iv), bytearray(out), memoryview(h(aad)))
        self.assertIsInstance(back, bytes)
        self.assertEqual(back, h(pt))

    def test_one_instance_many_messages(self):
        g = AesGcm(h("feffe9928665731c6d6a8f9467308308"))
        for n in (0, 1, 15, 16, 17, 127, 128, 129, 300, 700):
            pt = bytes((i * 7 + n) & 0xFF for i in range(n))
            nonce = bytes((n + i) & 0xFF for i in range(12))
            sealed = g.encrypt(nonce, pt, b"hdr")
            self.assertEqual(len(sealed), n + 16)
            self.assertEqual(g.decrypt(nonce, sealed, b"hdr"), pt)

    def test_state_is_clean_after_a_rejected_message(self):
        # The object keeps its work buffers between calls: a failed decrypt, or
        # a longer message before, must not leak into the next result.
        g = AesGcm(h("feffe9928665731c6d6a8f9467308308"))
        iv, aad = h("cafebabefacedbaddecaf888"), h("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        good = g.encrypt(iv, h(_TC3_PT[:120]), aad)
        self.assertEqual(hexlify(good).decode(), _TC3_CT[:120] + "5bc94fbc3221a5db94fae95ae7121a47")
        for bad in (flip(good, 3), flip(good, 70), bytes(17), good[:-1] + b"\x00"):
            with self.assertRaises(AuthError):
                g.decrypt(iv, bad, aad)
            self.assertEqual(g.decrypt(iv, good, aad), h(_TC3_PT[:120]))
        g.encrypt(bytes(12), bytes(700), bytes(33))
        self.assertEqual(g.encrypt(iv, h(_TC3_PT[:120]), aad), good)

    def test_decrypt_allocates_little_more_than_its_result(self):
        # MicroPython only (gc.mem_alloc): on an ESP8266 every KB of garbage
        # per frame costs GC runs and fragmentation. The result is made twice
        # (bytearray, then bytes); anything beyond is bignum or slice garbage.
        import gc
        if not hasattr(gc, "mem_alloc"):
            self.skipTest("needs MicroPython's gc.mem_alloc")
        g = AesGcm(bytes(range(16)))
        for n in (0, 17, 300):
            nonce, aad = bytes(12), b"\x11\xa3\x07\x00"
            sealed = g.encrypt(nonce, bytes((i * 7) & 0xFF for i in range(n)), aad)
            g.decrypt(nonce, sealed, aad)
            gc.collect()
            gc.disable()
            try:
                a0 = gc.mem_alloc()
                g.decrypt(nonce, sealed, aad)
                used = gc.mem_alloc() - a0
            finally:
                gc.enable()
            self.assertLessEqual(used, 2 * n + 256, "decrypt of %d bytes" % n)


class TestAesGcmRejects(unittest.TestCase):
    def setUp(self):
        name, key, iv, pt, aad, ct, tag = VECTORS[3]   # TC4: has plaintext and AAD
        self.gcm = AesGcm(h(key))
        self.iv, self.aad, self.sealed = h(iv), h(aad), h(ct + tag)

    def test_flipped_ciphertext_bit(self):
        for i in (0, 30, 59):
            with self.assertRaises(AuthError):
                self.gcm.decrypt(self.iv, flip(self.sealed, i), self.aad)

    def test_flipped_tag_bit(self):
        for i in (60, 67, 75):
            with self.assertRaises(AuthError):
                self.gcm.decrypt(self.iv, flip(self.sealed, i, 0x80), self.aad)

    def test_flipped_aad_bit(self):
        with self.assertRaises(AuthError):
            self.gcm.decrypt(self.iv, self.sealed, flip(self.aad, 19))
        with self.assertRaises(AuthError):
            self.gcm.decrypt(self.iv, self.sealed, b"")

    def test_wrong_nonce_or_truncated(self):
        with self.assertRaises(AuthError):
            self.gcm.decrypt(flip(self.iv, 11), self.sealed, self.aad)
        with self.assertRaises(AuthError):
            self.gcm.decrypt(self.iv, self.sealed[1:], self.aad)

    def test_auth_error_is_a_value_error(self):
        self.assertTrue(issubclass(AuthError, ValueError))

    def test_bad_lengths(self):
        for key in (b"", bytes(15), bytes(17), bytes(24)):
            with self.assertRaises(ValueError):
                AesGcm(key)
        for nonce in (b"", bytes(8), bytes(11), bytes(13), bytes(16)):
            with self.assertRaises(ValueError):
                self.gcm.encrypt(nonce, b"x")
            with self.assertRaises(ValueError):
                self.gcm.decrypt(nonce, bytes(16))
        for short in (b"", bytes(15)):
            with self.assertRaises(ValueError):
                self.gcm.decrypt(self.iv, short)


# Known answer computed once on CPython with the reference client:
#   hoymiles_wifi.crypt_util.crypt_data(True, ENC_RAND, 0xA311, 0x1234, PAYLOAD)
# (plus its derive_aes_128_key / derive_nonce for the intermediate values).
ENC_RAND = h("00112233445566778899aabbccddeeff")
PAYLOAD = h("0a0c3131363138303530323032311064180a")   # arbitrary protobuf-shaped bytes
DTU_KEY = "1a87826e0e5b80bd5ac6e98afe660876"
DTU_NONCE = "977601b4fead901918f0705d"
DTU_SEALED = "37ac7561e650cf3ec4f102bc24f9babfa473e5f6f8f3ca12d295eaa9e9fd4b034517"


class TestDtuScheme(unittest.TestCase):
    def test_derivations(self):
        self.assertEqual(hexlify(derive_key(ENC_RAND)).decode(), DTU_KEY)
        self.assertEqual(hexlify(derive_nonce(ENC_RAND, 0xA311, 0x1234)).decode(), DTU_NONCE)

    def test_seal_known_answer(self):
        sealed = DtuCipher(ENC_RAND).seal(0xA311, 0x1234, PAYLOAD)
        self.assertEqual(hexlify(sealed).decode(), DTU_SEALED)

    def test_open_known_answer(self):
        self.assertEqual(DtuCipher(ENC_RAND).open(0xA311, 0x1234, h(DTU_SEALED)), PAYLOAD)

    def test_round_trip(self):
        c = DtuCipher(bytes(range(16)))
        for seq, n in ((0, 0), (1, 5), (0xFFFF, 300)):
            pt = bytes((i * 13) & 0xFF for i in range(n))
            self.assertEqual(c.open(0xA203, seq, c.seal(0xA203, seq, pt)), pt)

    def test_wrong_seq_tag_or_session_fails(self):
        sealed = h(DTU_SEALED)
        with self.assertRaises(AuthError):
            DtuCipher(ENC_RAND).open(0xA311, 0x1235, sealed)
        with self.assertRaises(AuthError):
            DtuCipher(ENC_RAND).open(0xA312, 0x1234, sealed)
        with self.assertRaises(AuthError):
            DtuCipher(flip(ENC_RAND, 0)).open(0xA311, 0x1234, sealed)

    def test_bad_arguments(self):
        for rand in (b"", bytes(15), bytes(17)):
            with self.assertRaises(ValueError):
                DtuCipher(rand)
        c = DtuCipher(ENC_RAND)
        with self.assertRaises(ValueError):
            c.seal(0x10000, 0, b"")
        with self.assertRaises(ValueError):
            c.open(0xA311, -1, h(DTU_SEALED))

    def test_is_encrypted(self):
        self.assertTrue(is_encrypted(1 << 25))
        self.assertTrue(is_encrypted(0x02000011))
        self.assertFalse(is_encrypted(0))
        self.assertFalse(is_encrypted((1 << 24) | (1 << 26)))


if __name__ == "__main__":
    unittest.main()
