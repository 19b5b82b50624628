"""The simulated DTU's weak spots: the pacing rules it punishes and the faults
it can be made to show. Pure functions of the times handed in (see dtu_model).

Two rules, both taken from field reports (shared/protocol.md):

- HangRule: request rounds closer than `min_gap` s, or two writes closer than
  `min_gap` s, make the DTU hang for `hang_seconds`. A round is a burst:
  a request less than `burst_window` s after the previous one belongs to the
  previous one's round, but a round lasts at most `max_round` s, so a client
  cannot poll every 4 s forever and call it "one round". Round gaps are
  measured start to start: a gateway with a 31 s period passes.
- CloudRule: the DTU uploads to the Hoymiles cloud in windows of `length` s
  that start `lead` s before every `period` boundary of DTU local time
  ("5min": from mm:50 of every minute ending in 4 or 9, for 30 s; "15min":
  from mm:50 of minutes 14/29/44/59). Talking to the DTU then drops that
  upload.

Faults change how a reply goes out; `shape()` turns one reply frame into a
Reply (timed pieces, maybe a close) under the faults that are active.
"""
import math

RULE_FAULTS = ("hang", "cloud")                   # rules, switched via set_fault too
STATE_FAULTS = ("reboot", "silent")               # change the DTU's state
REPLY_FAULTS = ("drop", "garbage", "badcrc", "slow", "getconfig_silent")
NAMES = RULE_FAULTS + STATE_FAULTS + REPLY_FAULTS


class Reply:
    """What to send for one chunk of input: `pieces` is a list of
    (delay_seconds, bytes), each written after waiting its delay; then the
    connection is closed if `close`. No pieces and no close is silence."""
    __slots__ = ("pieces", "close")

    def __init__(self, pieces=None, close=False):
        self.pieces = pieces or []
        self.close = close

    def add(self, data, delay=0.0):
        self.pieces.append((delay, bytes(data)))

    def extend(self, other):
        self.pieces.extend(other.pieces)
        self.close = self.close or other.close

    @property
    def data(self):
        return b"".join(p for _, p in self.pieces)

    @property
    def silent(self):
        return not self.pieces and not self.close

    def __repr__(self):
        return "Reply(%d pieces, %d bytes%s)" % (
            len(self.pieces), len(self.data), ", close" if self.close else "")


class HangRule:
    def __init__(self, min_gap=31.0, burst_window=5.0, max_round=15.0, hang_seconds=1800.0):
        self.min_gap = min_gap
        self.burst_window = burst_window
        self.max_round = max_round
        self.hang_seconds = hang_seconds
        self.reset()

    def reset(self):
        self.last_request = None
        self.round_start = None
        self.last_write = None

    def check(self, now, write):
        """Book one request; returns (starts_a_new_round, reason_to_hang or None)."""
        new_round = (self.last_request is None
                     or now - self.last_request >= self.burst_window
                     or now - self.round_start >= self.max_round)
        reason = None
        if self.min_gap > 0:
            if new_round and self.round_start is not None and now - self.round_start < self.min_gap:
                reason = "rounds %.1f s apart" % (now - self.round_start)
            elif write and self.last_write is not None and now - self.last_write < self.min_gap:
                reason = "writes %.1f s apart" % (now - self.last_write)
        if new_round:
            self.round_start = now
        self.last_request = now
        if write:
            self.last_write = now
        return new_round, reason


class CloudRule:
    PERIODS = {"5min": 300, "15min": 900}

    def __init__(self, schedule="5min", lead=10, length=30):
        if schedule not in self.PERIODS:
            raise ValueError("cloud schedule must be one of %s" % ", ".join(self.PERIODS))
        self.schedule = schedule
        self.period = self.PERIODS[schedule]
        self.lead = lead
        self.length = length

    def window(self, local):
        """Id of the upload window containing local time `local`, or None."""
        k = math.floor((local + self.lead) / self.period)
        return k if local + self.lead - k * self.period < self.length else None

    def windows_between(self, t0, t1):
        """Ids of the windows that overlap [t0, t1] (local times)."""
        first = math.floor((t0 + self.lead - self.length) / self.period) + 1
        last = math.floor((t1 + self.lead) / self.period)
        return range(first, last + 1)

    def start(self, k):
        """Local time at which window k opens."""
        return k * self.period - self.lead


class Faults:
    """Reply faults with their parameters. Each may carry `times` (affects
    that many replies, then clears itself) and `duration` (clears itself
    after that many seconds)."""

    def __init__(self):
        self.active = {}

    def set(self, name, now, **params):
        if name not in REPLY_FAULTS:
            raise ValueError("unknown fault %r" % name)
        p = dict(params)
        duration = p.pop("duration", None)
        p["until"] = now + duration if duration else None
        self.active[name] = p

    def clear(self, name=None):
        if name is None:
            self.active.clear()
        else:
            self.active.pop(name, None)

    def get(self, name, now):
        p = self.active.get(name)
        if p is not None and p["until"] is not None and now >= p["until"]:
            del self.active[name]
            return None
        return p

    def use(self, name):
        """One reply was affected by `name`: count down its `times`."""
        p = self.active.get(name)
        if p is not None and p.get("times"):
            p["times"] -= 1
            if p["times"] <= 0:
                del self.active[name]

    def describe(self, now):
        return {n: {k: v for k, v in p.items() if v is not None}
                for n, p in list(self.active.items()) if self.get(n, now) is not None}


def _noise_bytes(rng, n):
    # No 0x48 ('H') in the noise, so it can never fake the start of a frame.
    return bytes(b if b != 0x48 else 0x49 for b in rng.randbytes(n))


def shape(frame_bytes, faults, now, rng):
    """The Reply for one reply frame under the active faults (bad CRC, then
    garbage, then drop, then slow), and the names of the faults applied."""
    used = []
    data = bytes(frame_bytes)
    if faults.get("badcrc", now) is not None:
        data = data[:6] + bytes((data[6] ^ 0x5A, data[7] ^ 0xA5)) + data[8:]
        used.append("badcrc")
    p = faults.get("garbage", now)
    if p is not None:
        junk = _noise_bytes(rng, int(p.get("size", 24)))
        if p.get("mode", "instead") == "before":
            data = junk + data   # a reader that resyncs on "HM" still gets the frame
        else:
            # A header whose length (3) is below the header size: any reader
            # that goes by the length field must reject it, none can wait on it.
            data = b"HM" + _noise_bytes(rng, 6) + b"\x00\x03" + junk
        used.append("garbage")
    reply = Reply()
    p = faults.get("drop", now)
    if p is not None:
        cut = max(1, min(len(data) - 1, int(len(data) * float(p.get("fraction", 0.5)))))
        data = data[:cut]
        reply.close = True
        used.append("drop")
    p = faults.get("slow", now)
    if p is not None:
        delay = float(p.get("delay", 2.0))
        step = max(1, int(p.get("piece", 7)))
        gap = float(p.get("gap", 0.05))
        for i in range(0, len(data), step):
            reply.add(data[i:i + step], delay if i == 0 else gap)
        used.append("slow")
    else:
        reply.add(data)
    for name in used:
        faults.use(name)
    return reply, used
