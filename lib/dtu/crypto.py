"""The DTU's payload encryption (DTU firmware V01.01.x and later).

    key   = SHA256(SHA256(SHA256(enc_rand)))[:16]       once per DTU boot
    nonce = SHA256^3(LE16(tag) + LE16(seq) + enc_rand)[20:32]
    AAD   = LE16(tag) + LE16(seq)
    AES-128-GCM, the 16-byte GCM tag follows the ciphertext.

"tag" here is the frame's command tag (e.g. 0xA311), not the GCM tag. enc_rand
comes from AppInfoData and changes at every DTU reboot, so a new DtuCipher is
made after each reconnect. Encryption is on when bit 25 of dtu_info.dfs is set.
"""

from hashlib import sha256
from struct import pack

from dtu.aesgcm import AesGcm, AuthError  # noqa: F401 - AuthError is part of this API

_DFS_ENCRYPTED = 1 << 25


def is_encrypted(dfs):
    """True when AppInfoData's dtu_info.dfs says payloads are encrypted."""
    return bool(dfs & _DFS_ENCRYPTED)


def _sha256x3(data):
    # MicroPython hash objects give one digest() each: a new object per round.
    return sha256(sha256(sha256(data).digest()).digest()).digest()


def _aad(tag, seq):
    if not (0 <= tag <= 0xFFFF and 0 <= seq <= 0xFFFF):
        raise ValueError("tag and seq are 16-bit")
    return pack("<HH", tag, seq)


def derive_key(enc_rand):
    return _sha256x3(enc_rand)[:16]


def derive_nonce(enc_rand, tag, seq):
    return _sha256x3(_aad(tag, seq) + enc_rand)[20:32]


class DtuCipher:
    """Seals and opens payloads for one DTU session (one enc_rand)."""

    def __init__(self, enc_rand):
        if len(enc_rand) != 16:
            raise ValueError("enc_rand must be 16 bytes")
        self._rand = bytes(enc_rand)
        self._gcm = AesGcm(derive_key(self._rand))

    def seal(self, tag, seq, plaintext):
        """Encrypt a payload: ciphertext + 16-byte GCM tag."""
        aad = _aad(tag, seq)
        return self._gcm.encrypt(_sha256x3(aad + self._rand)[20:32], plaintext, aad)

    def open(self, tag, seq, data):
        """Decrypt ciphertext + GCM tag; raises AuthError if it does not verify."""
        aad = _aad(tag, seq)
        return self._gcm.decrypt(_sha256x3(aad + self._rand)[20:32], data, aad)
