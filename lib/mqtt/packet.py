"""MQTT 3.1.1 packets: building and checking, no I/O.

Every packet starts with a fixed header:

    byte 0        type << 4 | flags     PUBLISH: DUP<<3 | QoS<<1 | RETAIN; others fixed
    bytes 1..4    remaining length: 7 bits per byte, least significant first,
                  bit 7 = another byte follows; at most 4 bytes (< 268 435 456)

    CONNECT    00 04 "MQTT" 04 flags keepalive(2) | client id, [will topic, will
               message], [user], [password]  (each: 2-byte length + bytes)
    CONNACK    flags(bit 0: session present) return code      remaining length 2
    PUBLISH    topic(2+n) [packet id(2) when QoS > 0] payload
    PUBACK     packet id(2)                                   remaining length 2
    SUBSCRIBE  packet id(2) (topic(2+n) QoS)...               flags 0b0010
    SUBACK     packet id(2) return code per topic (0, 1, 2 or 0x80 refused)
    PINGREQ / PINGRESP / DISCONNECT: no body

Only what a client receives is parsed, and it is parsed as untrusted input:
anything that breaks the rules raises MqttProtocolError (the connection must
then be closed), a refused CONNECT raises MqttRefused. This client never
uses QoS 2, so PUBREC/PUBREL/PUBCOMP from a broker are protocol errors too.
"""
from micropython import const

CONNECT = const(1)
CONNACK = const(2)
PUBLISH = const(3)
PUBACK = const(4)
SUBSCRIBE = const(8)
SUBACK = const(9)
UNSUBACK = const(11)
PINGREQ = const(12)
PINGRESP = const(13)
DISCONNECT = const(14)

MAX_REMAINING = const(268435455)

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"

# CONNACK return codes 1..5
REFUSED = ("", "unacceptable protocol version", "client id rejected", "server unavailable",
           "bad user name or password", "not authorised")


class MqttError(Exception):
    """Base of everything the MQTT client raises."""


class MqttProtocolError(MqttError):
    """A malformed or unexpected packet: the connection is closed."""


class MqttRefused(MqttError):
    """The broker refused the connection (CONNACK return code .code)."""

    def __init__(self, code):
        super().__init__("connection refused: " + (REFUSED[code] if 0 < code < 6 else str(code)))
        self.code = code


class MqttClosed(MqttError):
    """Connection refused, reset or closed."""


class MqttTimeout(MqttError):
    """The broker did not answer in time."""


# ---- building -------------------------------------------------------------------

def encode_length(n):
    """The remaining-length bytes for n."""
    if n < 0 or n > MAX_REMAINING:
        raise ValueError("remaining length out of range")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _str(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) > 65535:
        raise ValueError("string longer than 65535 bytes")
    return bytes((len(b) >> 8, len(b) & 0xFF)) + b


def check_topic(topic):
    """A topic a client may publish to: 1..65535 bytes, no wildcards, no NUL."""
    if not topic or "+" in topic or "#" in topic or "\0" in topic:
        raise ValueError("invalid topic name %r" % (topic,))


def connect(client_id, keepalive=60, user=None, password=None, will=None, clean=True):
    """CONNECT; will = (topic, message, retain, qos) or None."""
    if not 0 <= keepalive <= 65535:
        raise ValueError("keepalive out of range")
    flags = 0x02 if clean else 0
    body = [_str(client_id)]
    if will is not None:
        topic, msg, retain, qos = will
        check_topic(topic)
        flags |= 0x04 | (qos & 3) << 3 | (0x20 if retain else 0)
        body += [_str(topic), _str(msg)]
    if user:
        flags |= 0x80
        body.append(_str(user))
        if password:
            flags |= 0x40
            body.append(_str(password))
    var = b"\x00\x04MQTT\x04" + bytes((flags, keepalive >> 8, keepalive & 0xFF))
    rest = var + b"".join(body)
    return b"\x10" + encode_length(len(rest)) + rest


def publish_head(topic, payload_len, qos=0, retain=False, dup=False, pid=0):
    """The PUBLISH packet without its payload (send the payload after it)."""
    t = _str(topic)
    n = len(t) + payload_len + (2 if qos else 0)
    b0 = 0x30 | (0x08 if dup else 0) | qos << 1 | (1 if retain else 0)
    head = bytes((b0,)) + encode_length(n) + t
    if qos:
        head += bytes((pid >> 8, pid & 0xFF))
    return head


def publish(topic, payload, qos=0, retain=False, dup=False, pid=0):
    return publish_head(topic, len(payload), qos, retain, dup, pid) + bytes(payload)


def subscribe(pid, topics):
    """SUBSCRIBE for [(topic filter, qos)]."""
    body = bytes((pid >> 8, pid & 0xFF)) + b"".join(_str(t) + bytes((q,)) for t, q in topics)
    return b"\x82" + encode_length(len(body)) + body


def puback(pid):
    return bytes((0x40, 2, pid >> 8, pid & 0xFF))


# ---- checking what the broker sends -----------------------------------------------

def decode_length(buf, start=1, end=None):
    """(remaining length, index after it) from buf[start:end]; None if the
    bytes so far are an incomplete length; MqttProtocolError beyond 4 bytes."""
    if end is None:
        end = len(buf)
    n = 0
    shift = 0
    i = start
    while i < end:
        b = buf[i]
        n |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return n, i
        shift += 7
        if shift >= 28:
            raise MqttProtocolError("remaining length longer than 4 bytes")
    return None


# (shortest, longest) remaining length of each other packet a broker may send us
_LIMITS = {CONNACK: (2, 2), PUBACK: (2, 2), SUBACK: (3, MAX_REMAINING), UNSUBACK: (2, 2),
           PINGRESP: (0, 0)}


def check_header(b0, length):
    """The packet type of a fixed header a broker sent, else MqttProtocolError."""
    kind = b0 >> 4
    if kind == PUBLISH:
        if (b0 >> 1) & 3 == 3:
            raise MqttProtocolError("PUBLISH with QoS 3")
        if length < 2:
            raise MqttProtocolError("PUBLISH too short")
        return kind
    lim = _LIMITS.get(kind)
    if lim is None:
        raise MqttProtocolError("packet type %d is not sent by a broker to this client" % kind)
    if b0 & 0x0F:
        raise MqttProtocolError("packet type %d with flags %d" % (kind, b0 & 0x0F))
    if not lim[0] <= length <= lim[1]:
        raise MqttProtocolError("packet type %d with length %d" % (kind, length))
    return kind


def parse_connack(body):
    """session present (bool); MqttRefused for a refusal."""
    if len(body) != 2 or body[0] & 0xFE:
        raise MqttProtocolError("malformed CONNACK")
    rc = body[1]
    if rc > 5:
        raise MqttProtocolError("CONNACK return code %d" % rc)
    if rc:
        raise MqttRefused(rc)
    return bool(body[0])


def parse_pid(body):
    """Packet id of a PUBACK / UNSUBACK (or the start of a SUBACK)."""
    pid = body[0] << 8 | body[1]
    if not pid:
        raise MqttProtocolError("packet id 0")
    return pid


def parse_suback(body):
    """(packet id, [return codes])."""
    codes = list(body[2:])
    for c in codes:
        if c not in (0, 1, 2, 0x80):
            raise MqttProtocolError("SUBACK return code %d" % c)
    return parse_pid(body), codes


def parse_publish(b0, body, length=None):
    """(topic, payload start, qos, retain, packet id) of a PUBLISH whose first
    bytes are in body (length: the whole remaining length, default len(body));
    the payload is body[start:length]."""
    if length is None:
        length = len(body)
    n = body[0] << 8 | body[1]
    qos = (b0 >> 1) & 3
    end = 2 + n
    start = end + (2 if qos else 0)
    if n == 0 or start > length:
        raise MqttProtocolError("PUBLISH topic length %d in %d bytes" % (n, length))
    if start > len(body):
        raise MqttProtocolError("PUBLISH topic longer than the receive buffer")
    try:
        topic = str(bytes(body[2:end]), "utf-8")
    except UnicodeError:
        raise MqttProtocolError("PUBLISH topic is not UTF-8")
    if "+" in topic or "#" in topic or "\0" in topic:
        raise MqttProtocolError("PUBLISH topic with a wildcard or NUL")
    pid = 0
    if qos:
        pid = body[end] << 8 | body[end + 1]
        if not pid:
            raise MqttProtocolError("PUBLISH QoS %d with packet id 0" % qos)
    return topic, start, qos, bool(b0 & 1), pid
