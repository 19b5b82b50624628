"""Async client for the DTU's TCP port (asyncio streams; CPython and MicroPython).

One request is in flight at a time. Each call either returns the decoded reply
or raises one of the DtuError types below, and after any error the connection
is closed so that the next call starts clean. The client enforces no pacing:
when and how often to talk to the DTU is the caller's business (the gateway's
scheduler); this layer only speaks the protocol.

Encryption (DTU firmware V01.01.x) is detected by the client itself: the
first request on every connection is AppInfoData, whose dtu_info.dfs bit 25
says whether the DTU encrypts and whose enc_rand seeds the key. enc_rand
changes at every DTU reboot, hence once per connection.
"""
import asyncio

from proto_min import DecodeError, decode, encode
from dtu import frame, messages, readings
from dtu import schemas as s

PORT = 10081
AP_IP = "10.10.100.254"     # the DTU on its own access point "DTUBI-<serial>"
MAX_PACKAGES = 16           # a reply in more packages than this is not believed (RealDataNew, A304)


class DtuError(Exception):
    """Base of everything this client raises."""


class DtuTimeout(DtuError):
    """Connect, write or read took longer than allowed."""


class DtuClosed(DtuError):
    """Connection refused, reset or closed by the DTU."""


class DtuBadFrame(DtuError):
    """Garbage, bad CRC, wrong tag or sequence, undecodable or unauthentic reply."""


class DtuErrorCode(DtuError):
    """The DTU answered with a non-zero error code."""

    def __init__(self, tag, code):
        super().__init__("DTU error code %d for %04X" % (code, tag))
        self.tag = tag
        self.code = code


class DtuClient:
    def __init__(self, host, port=PORT, clock=None, timeout=10, connect_timeout=5,
                 max_frame=frame.MAX_FRAME, detect_encryption=True, opener=None, session_max_age=0):
        if clock is None:
            raise ValueError("clock is required (a function returning Unix seconds)")
        self.host = host
        self.port = port
        self.clock = clock
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.detect_encryption = detect_encryption
        self.seq = 0
        self.cipher = None          # a dtu.crypto.DtuCipher when the DTU encrypts
        self.app_info = None        # the AppInfoData the session was learnt from
        # Seconds a plain DTU's AppInfoData is kept across connections: 0 asks
        # for it on every connection. Every request is a chance to hang this
        # DTU, so a gateway keeps it for hours and asks again after a write
        # (forget_session) or a failed request.
        self.session_max_age = session_max_age
        self._session_at = None     # clock() when the session was learnt
        self._learnt_here = False   # learnt on the connection now open
        self.requests = 0           # counters for the gateway's health view
        self.errors = 0
        self._max_frame = max_frame
        # opener(host, port) -> (reader, writer); tests swap the transport for
        # an in-memory DTU so a simulated day runs in seconds.
        self._open = opener or asyncio.open_connection
        self._stream = None
        self._writer = None
        self._frames = None
        self._lock = asyncio.Lock()

    def _now(self):
        return int(self.clock())  # the wire's time fields are integers

    # ---- connection ---------------------------------------------------------

    @property
    def connected(self):
        return self._stream is not None

    async def connect(self):
        if self._stream is not None:
            return
        try:
            self._stream, self._writer = await asyncio.wait_for(
                self._open(self.host, self.port), self.connect_timeout)
        except asyncio.TimeoutError:
            raise DtuTimeout("connect to %s:%d timed out" % (self.host, self.port))
        except OSError as e:
            raise DtuClosed("connect to %s:%d failed: %s" % (self.host, self.port, e))
        self._frames = frame.FrameReader(self._max_frame)
        self._learnt_here = False
        # An encrypted DTU's key changes when it reboots, and a frame sealed with
        # the old one is a frame it cannot read: that session is learnt anew on
        # every connection. A plain DTU's is kept for session_max_age.
        if self.cipher is not None or self._session_at is None or \
                self.clock() - self._session_at >= self.session_max_age:
            self.forget_session()       # the new FrameReader expects plain frames until then

    def forget_session(self):
        """Ask the DTU for its AppInfoData (encryption, key) with the next request."""
        self.cipher = None
        self.app_info = None
        self._session_at = None

    async def close(self):
        w = self._writer
        self._stream = self._writer = None
        if w is not None:
            try:
                w.close()
                await w.wait_closed()
            except Exception:  # closing a dead socket may fail; it is closed all the same
                pass

    # ---- one request --------------------------------------------------------

    async def request(self, tag, schema, msg, reply_schema):
        """Send one message, return the decoded reply (a dict)."""
        async with self._lock:
            await self.connect()
            if self.detect_encryption and self.app_info is None and tag != s.TAG_APP_INFO:
                await self._exchange(*messages.app_info(self._now()), reply_schema=s.APPInfoDataView)
            try:
                return await self._exchange(tag, schema, msg, reply_schema)
            except DtuError:
                # a plain DTU's session kept from an earlier connection may be out
                # of date (the DTU rebooted, was updated): the next request learns
                # it again; no retry into a DTU in trouble
                if not self._learnt_here:
                    self.forget_session()
                raise

    async def _exchange(self, tag, schema, msg, reply_schema):
        self.requests += 1
        try:
            reply = await self._round_trip(tag, schema, msg, reply_schema)
        except BaseException:
            self.errors += 1
            await self.close()
            raise
        for key in ("err_code", "error_code"):
            code = reply.get(key, 0)
            if code:
                raise DtuErrorCode(tag, code)
        return reply

    async def _round_trip(self, tag, schema, msg, reply_schema):
        self.seq = (self.seq + 1) & 0xFFFF
        seq = self.seq
        payload = encode(schema, msg)
        if self.cipher is not None and tag not in frame.PLAIN_TAGS:
            sealed = self.cipher.seal(tag, seq, payload)
            data = frame.build(tag, seq, sealed[:-frame.MAC_LEN], sealed[-frame.MAC_LEN:])
        else:
            data = frame.build(tag, seq, payload)
        try:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), self.timeout)
        except asyncio.TimeoutError:
            raise DtuTimeout("write timed out")
        except OSError as e:
            raise DtuClosed("write failed: %s" % e)
        rtag, rseq, body, mac = await self._read_frame()
        # Replies to cloud commands (0x23nn) are not documented: only the
        # sequence number is checked there.
        if rseq != seq or (rtag != frame.reply_tag(tag) and tag >> 8 != 0x23):
            raise DtuBadFrame("reply %04X/%d does not answer %04X/%d" % (rtag, rseq, tag, seq))
        if self.cipher is not None and rtag not in frame.PLAIN_TAGS:
            from dtu.aesgcm import AuthError
            try:
                body = self.cipher.open(rtag, rseq, body + mac)
            except AuthError:
                raise DtuBadFrame("reply failed authentication (wrong key?)")
        try:
            reply = decode(reply_schema, body)
        except DecodeError as e:
            raise DtuBadFrame("undecodable reply: %s" % e)
        if tag == s.TAG_APP_INFO:
            self._learn_session(reply)
        return reply

    async def _read_frame(self):
        frames = self._frames
        while True:
            try:
                f = frames.next()
            except frame.FrameError as e:
                raise DtuBadFrame(str(e))
            if f is not None:
                return f
            try:
                chunk = await asyncio.wait_for(self._stream.read(512), self.timeout)
            except asyncio.TimeoutError:
                raise DtuTimeout("no reply within %s s" % self.timeout)
            except OSError as e:
                raise DtuClosed("read failed: %s" % e)
            if not chunk:
                raise DtuClosed("connection closed by the DTU")
            try:
                frames.feed(chunk)
            except frame.FrameError as e:
                raise DtuBadFrame(str(e))

    def _learn_session(self, info):
        self.app_info = info
        self._session_at = self.clock()
        self._learnt_here = True
        dtu_info = info.get("dtu_info", {})
        encrypted = (dtu_info.get("dfs", 0) >> 25) & 1
        self._frames.encrypted = bool(encrypted)
        if encrypted:
            from dtu.crypto import DtuCipher
            self.cipher = DtuCipher(dtu_info.get("enc_rand", b""))
        else:
            self.cipher = None

    # ---- what a gateway asks ------------------------------------------------

    async def get_app_info(self):
        return await self.request(*messages.app_info(self._now()), s.APPInfoDataReqDTO)

    async def get_real_data(self):
        """The merged RealDataNew reply (all `ap` packages), unscaled."""
        now = self._now()
        first = await self.request(*messages.real_data_new(now), s.RealDataNewReqDTO)
        for cp in range(1, min(first.get("ap", 1), MAX_PACKAGES)):
            part = await self.request(*messages.real_data_new(now, cp), s.RealDataNewReqDTO)
            readings.merge_real_data(first, part)
        return first

    async def get_config(self, full=True):
        """The DTU's config; full=False decodes only schemas.GetConfigLimitView
        (the limit and the DTU's own AP), without loading config_schemas."""
        if full:
            from dtu import config_schemas as c
            schema = c.GetConfigReqDTO
        else:
            schema = s.GetConfigLimitView
        return await self.request(*messages.get_config(self._now()), schema)

    async def set_power_limit(self, percent):
        """Send the persistent limit; returns the tid to confirm it with."""
        tag, schema, msg = messages.power_limit(percent, self._now())
        await self.request(tag, schema, msg, s.CommandReqDTO)
        return msg["tid"]

    async def command_status(self, action, tid):
        return await self.request(*messages.command_status(action, tid, self._now()),
                                  s.CommandStatusReqDTO)

    async def reboot_dtu(self):
        return await self.request(*messages.dtu_reboot(self._now()), s.CommandReqDTO)

    async def inverter_command(self, action, inverter_serial):
        return await self.request(*messages.inverter_command(action, inverter_serial, self._now()),
                                  s.CommandReqDTO)

    async def get_warnings(self):
        """The inverter's warning list: action 50, then every package of A304
        (merged; a DTU with none may leave package_nub at 0). Unscaled WarnMO
        dicts, as on the wire (dtu.warnings.entries() gives them meaning)."""
        from dtu import warn_schemas as w
        now = self._now()
        await self.request(*messages.alarm_list(now), s.CommandReqDTO)
        first = await self.request(*messages.warn_data(now), w.WarnReqDTO)
        warns = first.get("warns", [])
        for n in range(1, min(first.get("package_nub", 1), MAX_PACKAGES)):
            part = await self.request(*messages.warn_data(now, n), w.WarnReqDTO)
            warns += part.get("warns", [])
        return warns

    async def heartbeat(self):
        return await self.request(*messages.heartbeat(self._now()), s.HBReqDTO)

    async def get_network_info(self):
        return await self.request(*messages.network_info(self._now()), s.NetworkInfoReqDTO)

    async def set_wifi(self, ssid, password):
        """Re-send the home WiFi credentials (reads the config first)."""
        from dtu import config_schemas as c
        config = await self.get_config()
        return await self.request(*messages.set_config_wifi(config, ssid, password, self._now()),
                                  c.SetConfigReqDTO)
