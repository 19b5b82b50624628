"""MQTT for the gateway: live values, Home Assistant discovery, commands.

Topics under <topic> (mqtt.topic; "" means dtu-gateway/<chip id>), all retained:

    availability                     online / offline (the last will)
    grid/{v,c,p,f,dE,tE}             after each fresh round (gateway/integrations/values.py)
    pv0/{v,c,p,dE,tE}, pv1/...       "
    inverter/temp, dtu/rssi          "
    inverter/{limit,limit_set,uptodate,active,warnings}, dtu/{connection,error}
                                     when they change
    inverter/warnings/list           the warning list as JSON (gateway.alarms: active
                                     and ended), when it changes; Home Assistant's
                                     warnings sensor takes it as its attributes
    inverter/warnings/event          not retained: one JSON message per warning that
                                     starts or ends ("state": "started"/"ended")
Commands (subscribed with QoS 1):
    set/power_limit       0..100     -> gw.command(), like POST /api/power-limit
    set/dtu_reboot        PRESS      -> gw.command(), like POST /api/dtu/reboot
    set/inverter_restart  PRESS      -> gw.command(), like POST /api/inverter/restart
so every DTU rule of the scheduler applies to them. Retained command messages
are ignored: a stale retained PRESS must not reboot the DTU at every connect.

On every connect (and when Home Assistant announces itself on
homeassistant/status) the discovery configs and all values are published
again: a broker restarted without persistence has lost them. Turning
mqtt.ha_discovery off publishes empty retained configs, which removes the
entities; that is repeated at every connect while it is off.

TLS (lib/tlsctx.py) checks the broker's certificate against mqtt_ca.pem in the
data folder (PEM or DER), and its host name against mqtt.host. The ESP8266
cannot check certificates, so it refuses TLS rather than pretend.

Loaded only while mqtt.enabled is on (gateway/lazy.py); run() returns when
it is turned off, after saying offline. The discovery tables are loaded for
each announcement only.
"""
import asyncio
import gc
import json
import sys

CA_FILE = "mqtt_ca.pem"
KEEPALIVE = 60
HA_STATUS = "homeassistant/status"


def attach(gw):
    return MqttBridge(gw)


def base_topic(gw):
    return gw.settings.get("mqtt.topic").strip("/") or "dtu-gateway/" + gw.board.chip_id()


class MqttBridge:
    def __init__(self, gw):
        self.gw = gw
        self.client = None
        self.base = ""
        self._running = True
        self._restart = False
        self._announce = False
        self._announcing = False
        self._wake = asyncio.Event()
        self._polls = -1
        self._due = None     # None: nothing to publish; False: changed status; True: readings too
        self._sent = {}      # status name -> text last published

    # ---- feature hooks ---------------------------------------------------------------

    def settings_changed(self, changed):
        keys = [k for k in changed if k.startswith("mqtt.")]
        if not keys:
            return
        if keys == ["mqtt.ha_discovery"]:
            self._announce = True
        else:
            self._restart = True
        self._wake.set()

    def after_round(self):
        # marked here, published by run() a few messages at a time with the
        # values as they are then: a slow broker (or fast rounds) never piles
        # up copies of old values in the heap
        polls = self.gw.state.polls
        fresh = polls != self._polls
        self._polls = polls
        self._due = bool(self._due) or fresh
        self._wake.set()

    def stop(self):
        self._running = False
        c = self.client
        if c is not None:
            c.stop()   # the broker publishes our will: offline
        self._wake.set()

    def metrics(self):
        """(name, value, help) for GET /metrics."""
        c = self.client
        return (("dtu_gateway_mqtt_connected", 1 if c is not None and c.connected else 0,
                 "1 while connected to the MQTT broker"),
                ("dtu_gateway_mqtt_dropped_total", c.dropped if c is not None else 0,
                 "MQTT messages dropped because the outgoing queue was full"))

    async def run(self):
        """Serve until stop() or until mqtt.enabled is turned off."""
        while self._running and self.gw.settings.get("mqtt.enabled"):
            self._restart = False
            c = None
            if self._enabled():
                try:
                    c = self._make_client()
                except (ValueError, OSError) as e:
                    self.gw.events.add("mqtt", str(e), "error")
            if c is None:
                await self._pause(None if not self._enabled() else 30)
                continue
            self.client = c
            task = asyncio.create_task(c.run())
            try:
                while self._running and not self._restart:
                    if self._announce and c.connected:
                        self._announce = False
                        await self._announce_all(c)
                    elif self._due is not None and c.connected:
                        readings, self._due = self._due, None
                        await self._send_values(c, readings)
                    else:
                        await self._pause(5)
            finally:
                self.client = None
                if self._running:
                    await c.disconnect()   # settings changed: say offline, then go
                c.stop()
                try:
                    await asyncio.wait_for(task, 5)
                except BaseException:  # already ended, or cancelled: nothing to keep
                    pass
                gc.collect()

    # ---- connection ------------------------------------------------------------------

    def _enabled(self):
        g = self.gw.settings.get
        return bool(g("mqtt.enabled") and g("mqtt.host"))

    async def _pause(self, seconds):
        try:
            if seconds is None:
                await self._wake.wait()
            else:
                await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    def _make_client(self):
        from mqtt.client import MQTTClient
        gw = self.gw
        g = gw.settings.get
        self.base = base = base_topic(gw)
        ssl = self._tls() if g("mqtt.tls") else None
        avail = base + "/availability"
        c = MQTTClient("dtugw" + gw.board.chip_id(), g("mqtt.host"), g("mqtt.port"),
                       g("mqtt.user"), g("mqtt.password"), KEEPALIVE, ssl=ssl,
                       will=(avail, b"offline", True, 1), birth=(avail, b"online", True, 1),
                       on_message=self._on_message, on_connect=self._on_connect,
                       on_disconnect=self._on_disconnect)
        c.subscribe(base + "/set/+", 1)
        c.subscribe(HA_STATUS, 0)
        return c

    def _tls(self):
        gw = self.gw
        if gw.board.name == "esp8266":
            raise ValueError("mqtt.tls: the ESP8266 cannot check the broker's certificate")
        if not gw.board.time_trusted:
            raise ValueError("mqtt.tls: waiting for the clock (NTP) to check certificates")
        from tlsctx import context
        try:
            with open(gw.board.data_dir + "/" + CA_FILE, "rb") as f:
                ca = f.read(16384)
        except OSError:
            ca = None
        if ca or sys.implementation.name != "micropython":
            return context(ca)                    # host mode without the file: the system's CAs
        raise ValueError("mqtt.tls needs the broker's CA certificate in " + CA_FILE)

    def _on_connect(self, c):
        self._sent = {}
        self._announce = True
        self._wake.set()
        self.gw.events.add("mqtt", "connected to %s:%d" % (c.host, c.port))

    def _on_disconnect(self, c, err, was):
        self.gw.events.add("mqtt", ("connection lost: %s" if was else "cannot connect: %s") % err, "warn")

    def _url(self):
        gw = self.gw
        api = gw.api          # set once the web server starts
        port = api.port if api is not None and api.port else 80
        ip = gw.board.wifi.ip()
        return "http://%s/" % ip if port == 80 else "http://%s:%d/" % (ip, port)

    async def _announce_all(self, c):
        gw = self.gw
        self._announcing = True
        from gateway.lazy import unload
        try:
            from gateway.integrations import mqtt_ha
            chip = gw.board.chip_id()
            if gw.settings.get("mqtt.ha_discovery"):
                from gateway import VERSION
                dev = mqtt_ha.device(chip, VERSION, self._url(), gw.state.dtu_serial)
                items = mqtt_ha.configs(chip, self.base, dev)
            else:
                items = ((t, b"") for _, _, t in mqtt_ha.topics(chip))
            # one config (~500 B) in the heap at a time: each waits for its PUBACK
            for topic, payload in items:
                c.publish(topic, payload, True, 1)
                payload = None
                if not await c.room(0):
                    return   # connection lost: the next connect announces again
        finally:
            self._announcing = False
            items = None
            unload("gateway.integrations.mqtt_ha")
            gc.collect()
        self._sent = {}
        self._due = None
        await self._send_values(c, True)     # every value after it

    async def _send_values(self, c, readings):
        """Publish the values (readings too, when asked) a few at a time."""
        for topic, text in self._values(readings):
            c.publish(topic, text, True)
            if not await c.room(2):
                return   # connection lost: the next connect publishes everything

    # ---- values and commands ----------------------------------------------------------

    def _publish(self, readings):
        c = self.client
        if c is None or not c.connected or self._announcing:
            return   # the next connect publishes everything anyway
        for topic, text in self._values(readings):
            c.publish(topic, text, True)

    def _values(self, readings):
        """(topic, text) of the readings (when asked) and of every status
        value that changed since it was last published."""
        from gateway.integrations import values
        gw = self.gw
        b = self.base + "/"
        if readings:
            for name, text in values.readings(gw.state):
                yield b + name, text
        sent = self._sent
        for name, text in values.status(gw.state, gw.sched, gw.board.time()):
            if sent.get(name) != text:
                sent[name] = text
                yield b + name, text
        if sent.get("warnings/list") != gw.sched.warn_read:     # after every read of the list
            sent["warnings/list"] = gw.sched.warn_read
            yield b + "inverter/warnings/list", json.dumps(gw.alarms_body())

    def alarms_changed(self, started, ended):
        """A warning started or ended: one event message each, not retained
        (an automation reacts once; the list and the count are retained)."""
        c = self.client
        if c is None or not c.connected:
            return
        from gateway.alarms import describe
        for state, items in (("started", started), ("ended", ended)):
            for e in items:
                d = describe(e, self.gw.tz_offset)
                d["state"] = state
                c.publish(self.base + "/inverter/warnings/event", json.dumps(d), False)

    def _on_message(self, topic, payload, retained):
        gw = self.gw
        if topic == HA_STATUS:
            if payload == b"online" and gw.settings.get("mqtt.ha_discovery"):
                self._announce = True
                self._wake.set()
            return
        pre = self.base + "/set/"
        if not topic.startswith(pre):
            return
        cmd = topic[len(pre):]
        if retained:
            gw.events.add("mqtt", "ignored a retained command on " + topic, "warn")
            return
        from gateway.integrations import values
        from gateway.link import commands
        try:
            text = str(payload, "utf-8").strip()
            if cmd == "power_limit":
                command = commands.Command(commands.SET_LIMIT, values.parse_limit(text))
            elif cmd == "dtu_reboot" or cmd == "inverter_restart":
                if text.upper() not in ("PRESS", "1", "ON", "TRUE"):
                    raise ValueError("payload must be PRESS")
                command = commands.Command(commands.REBOOT_DTU if cmd == "dtu_reboot" else commands.RESTART_INVERTER)
            else:
                raise ValueError("unknown command")
        except (ValueError, UnicodeError) as e:
            gw.events.add("mqtt", "refused %s %r: %s" % (cmd, bytes(payload[:20]), e), "warn")
            return
        gw.command(command, "mqtt")
        self._publish(False)   # limit_set at once, for the slider that sent it
