"""The one TLS helper: a client context that really checks the server, for
every TLS connection the gateway makes (MQTT, the update download).

    ctx = context(ca)     # certificate chain and host name checked; never CERT_NONE

`ca`: PEM text or bytes (one or more certificates) or DER certificates back
to back; None on CPython takes the system's CAs. MicroPython's SSLContext
on the unix port defaults to CERT_NONE and its mbedTLS takes DER only, so
the mode is set explicitly and every certificate is added as DER. The
ESP8266's axTLS cannot check certificates at all: context() refuses there.
"""
from binascii import a2b_base64


def der_certs(data):
    """[DER certificate] from PEM (text or bytes) or from DER certificates
    back to back; ValueError when there is none or the data is neither."""
    if isinstance(data, str):
        data = data.encode()
    data = bytes(data)
    out = []
    if data.lstrip()[:10] == b"-----BEGIN":
        for block in data.split(b"-----BEGIN CERTIFICATE-----")[1:]:
            b64 = block.split(b"-----END", 1)[0]
            out.append(a2b_base64(b64.replace(b"\n", b"").replace(b"\r", b"")))
        if not out:
            raise ValueError("no certificate in the PEM data")
        return out
    i = 0
    while i < len(data):
        if data[i] != 0x30 or i + 2 > len(data):
            raise ValueError("the CA list is neither PEM nor DER certificates")
        n = data[i + 1]
        if n < 0x80:
            hl, size = 2, n
        else:
            k = n & 0x7F
            hl, size = 2 + k, int.from_bytes(data[i + 2:i + 2 + k], "big")
        out.append(data[i:i + hl + size])
        i += hl + size
    if not out:
        raise ValueError("no CA certificates")
    return out


def context(ca=None):
    """An SSLContext that checks the server's certificate against `ca` and
    its host name (pass server_hostname when connecting)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not hasattr(ctx, "load_verify_locations"):   # the ESP8266's axTLS: say so, whoever asks
        raise ValueError("this board's TLS cannot check certificates")
    ctx.verify_mode = ssl.CERT_REQUIRED  # MicroPython's unix port defaults to CERT_NONE
    if hasattr(ctx, "check_hostname"):
        ctx.check_hostname = True
    if ca:
        for der in der_certs(ca):        # they add up
            ctx.load_verify_locations(cadata=der)
    elif hasattr(ctx, "load_default_certs"):  # CPython without a CA file: the system's
        ctx.load_default_certs()
    else:
        raise ValueError("no CA certificates to check TLS with")
    return ctx
