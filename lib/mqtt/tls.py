"""TLS for the MQTT client: a context that really checks the broker.

    ctx = tls_context(open("ca.pem", "rb").read())
    MQTTClient(..., ssl=ctx)          # the host name is checked too

MicroPython's SSLContext on the unix port defaults to CERT_NONE and its
mbedTLS build takes DER only, so the mode is set explicitly and PEM is
converted here (each certificate of a PEM bundle is added). The ESP8266's
axTLS cannot check certificates at all: do not offer TLS there.
"""


def tls_context(cadata):
    """An SSLContext that checks the broker's certificate against cadata (PEM
    text or DER bytes; PEM may hold several certificates) and its host name."""
    import ssl
    import sys
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not hasattr(ctx, "load_verify_locations"):   # the ESP8266's axTLS: say so, whoever asks
        raise ValueError("this board's TLS cannot check certificates")
    ctx.verify_mode = ssl.CERT_REQUIRED  # MicroPython's unix port defaults to CERT_NONE
    if hasattr(ctx, "check_hostname"):
        ctx.check_hostname = True
    if isinstance(cadata, str):
        cadata = cadata.encode()
    if not bytes(cadata[:64]).lstrip().startswith(b"-----"):
        ctx.load_verify_locations(cadata=bytes(cadata))
    elif sys.implementation.name != "micropython":
        ctx.load_verify_locations(cadata=bytes(cadata).decode())
    else:
        for der in _pem_certs(cadata):  # mbedTLS here takes DER only; certificates add up
            ctx.load_verify_locations(cadata=der)
    return ctx


def _pem_certs(pem):
    from binascii import a2b_base64
    out = []
    body = None
    for line in bytes(pem).split(b"\n"):
        line = line.strip()
        if line == b"-----BEGIN CERTIFICATE-----":
            body = []
        elif line == b"-----END CERTIFICATE-----" and body is not None:
            out.append(a2b_base64(b"".join(body)))
            body = None
        elif body is not None:
            body.append(line)
    if not out:
        raise ValueError("no certificate in the PEM data")
    return out
