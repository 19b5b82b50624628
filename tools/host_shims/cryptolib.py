"""CPython stand-in for MicroPython's `cryptolib`, so board code runs unchanged on the host.

Only the block modes the board code uses: 1 (ECB) and 2 (CBC). Semantics follow
MicroPython: input must be a multiple of 16 bytes; `encrypt(inbuf)` returns bytes,
`encrypt(inbuf, outbuf)` writes into outbuf and returns it; one object either
encrypts or decrypts, never both. This is the only host module allowed to use
`cryptography`: GCM itself stays in lib/dtu/aesgcm.py so the tests exercise it.
"""
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MODE_ECB = 1
MODE_CBC = 2


class aes:  # noqa: N801 - MicroPython's spelling
    def __init__(self, key, mode, IV=None):  # noqa: N803
        key = bytes(key)
        if len(key) not in (16, 32):
            raise ValueError("key")
        if mode == MODE_ECB:
            m = modes.ECB()
        elif mode == MODE_CBC:
            if IV is None or len(IV) != 16:
                raise ValueError("IV")
            m = modes.CBC(bytes(IV))
        else:
            raise ValueError("mode")
        self._cipher = Cipher(algorithms.AES(key), m)
        self._ctx = None
        self._encrypting = None

    def _process(self, encrypt, inbuf, outbuf):
        if self._encrypting is None:
            self._encrypting = encrypt
            # One context for the object's life: CBC chains across calls, as on the board.
            self._ctx = self._cipher.encryptor() if encrypt else self._cipher.decryptor()
        elif self._encrypting != encrypt:
            raise ValueError("can't encrypt & decrypt")
        data = bytes(inbuf)
        if len(data) % 16:
            raise ValueError("blksize % 16")
        result = self._ctx.update(data)
        if outbuf is None:
            return result
        if len(outbuf) < len(result):
            raise ValueError("output too small")
        memoryview(outbuf)[:len(result)] = result
        return outbuf

    def encrypt(self, inbuf, outbuf=None):
        return self._process(True, inbuf, outbuf)

    def decrypt(self, inbuf, outbuf=None):
        return self._process(False, inbuf, outbuf)
