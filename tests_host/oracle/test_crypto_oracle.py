"""Our GCM and DTU scheme against independent implementations (CPython only).

Oracles: `cryptography`'s AESGCM (OpenSSL) and hoymiles_wifi's crypt_data, the
reference client for encrypted DTUs. Also checks the host cryptolib shim.
"""
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

import cryptolib  # tools/host_shims/cryptolib.py
from dtu.aesgcm import AesGcm, AuthError
from dtu.crypto import DtuCipher, derive_key, derive_nonce

import hoymiles_wifi.crypt_util as crypt_util

keys = st.binary(min_size=16, max_size=16)
nonces = st.binary(min_size=12, max_size=12)
payloads = st.binary(min_size=0, max_size=700)
aads = st.binary(min_size=0, max_size=64)
u16 = st.integers(min_value=0, max_value=0xFFFF)
FAST = settings(max_examples=200, deadline=None)


@FAST
@given(keys, nonces, payloads, aads)
def test_encrypt_matches_cryptography(key, nonce, pt, aad):
    expected = AESGCM(key).encrypt(nonce, pt, aad)
    ours = AesGcm(key)
    assert ours.encrypt(nonce, pt, aad) == expected
    assert ours.decrypt(nonce, expected, aad) == pt


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 111, 112, 127, 128, 129, 255, 256, 257, 300, 700, 4096])
def test_lengths_around_block_and_chunk_edges(n):
    # 128 bytes = one ECB call of keystream; 16 = one GHASH block
    key, nonce = bytes(range(16)), bytes(range(100, 112))
    pt, aad = bytes((i * 31) & 0xFF for i in range(n)), bytes(n % 37)
    expected = AESGCM(key).encrypt(nonce, pt, aad)
    assert AesGcm(key).encrypt(nonce, pt, aad) == expected
    assert AesGcm(key).decrypt(nonce, expected, aad) == pt


@FAST
@given(keys, nonces, payloads, aads, st.data())
def test_any_single_bit_flip_is_rejected(key, nonce, pt, aad, data):
    sealed = bytearray(AESGCM(key).encrypt(nonce, pt, aad))
    i = data.draw(st.integers(min_value=0, max_value=len(sealed) * 8 - 1))
    sealed[i // 8] ^= 1 << (i % 8)
    with pytest.raises(AuthError):
        AesGcm(key).decrypt(nonce, bytes(sealed), aad)


@FAST
@given(st.binary(min_size=16, max_size=16), u16, u16, payloads)
def test_dtu_seal_matches_hoymiles_wifi(enc_rand, tag, seq, pt):
    expected = crypt_util.crypt_data(True, enc_rand, tag, seq, pt)
    cipher = DtuCipher(enc_rand)
    assert cipher.seal(tag, seq, pt) == expected
    assert cipher.open(tag, seq, expected) == pt


@FAST
@given(st.binary(min_size=16, max_size=16), u16, u16)
def test_dtu_derivations_match_hoymiles_wifi(enc_rand, tag, seq):
    assert derive_key(enc_rand) == crypt_util.derive_aes_128_key(enc_rand)
    assert derive_nonce(enc_rand, tag, seq) == crypt_util.derive_nonce(enc_rand, tag, seq)


@FAST
@given(st.binary(min_size=16, max_size=16), u16, u16, payloads)
def test_hoymiles_wifi_opens_what_we_seal(enc_rand, tag, seq, pt):
    sealed = DtuCipher(enc_rand).seal(tag, seq, pt)
    assert crypt_util.crypt_data(False, enc_rand, tag, seq, sealed) == pt


@FAST
@given(keys, st.integers(min_value=0, max_value=8).map(lambda n: n * 16), st.data())
def test_shim_ecb_matches_cryptography(key, n, data):
    block = data.draw(st.binary(min_size=n, max_size=n))
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    expected = enc.update(block) + enc.finalize()
    assert cryptolib.aes(key, 1).encrypt(block) == expected
    out = bytearray(n)
    assert cryptolib.aes(key, 1).encrypt(block, out) is out
    assert bytes(out) == expected
    assert cryptolib.aes(key, 1).decrypt(expected) == block


def test_shim_follows_micropython_rules():
    a = cryptolib.aes(bytes(16), 1)
    with pytest.raises(ValueError):
        a.encrypt(bytes(15))
    a.encrypt(bytes(16))
    with pytest.raises(ValueError):            # one object, one direction
        a.decrypt(bytes(16))
    with pytest.raises(ValueError):
        cryptolib.aes(bytes(15), 1)
    with pytest.raises(ValueError):
        cryptolib.aes(bytes(16), 2)            # CBC needs an IV
    with pytest.raises(ValueError):
        cryptolib.aes(bytes(16), 1).encrypt(bytes(32), bytearray(16))
    iv = bytes(range(16))
    cbc = Cipher(algorithms.AES(bytes(16)), modes.CBC(iv)).encryptor()
    expected = cbc.update(bytes(48))
    shim = cryptolib.aes(bytes(16), 2, iv)
    assert shim.encrypt(bytes(16)) + shim.encrypt(bytes(32)) == expected  # chains across calls
