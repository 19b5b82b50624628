"""Features whose code loads only while they are switched on.

    MQTT = Lazy("gateway.integrations.mqtt_bridge", "mqtt.enabled", ("mqtt", "mqtt.client", "mqtt.packet"))
    gateway/profiles.py: ("mqtt", "MQTT", ...)   # MQTT.attach(gw), like a module

A Lazy stands in the gateway's feature list for a module. While its setting
is off, nothing of the module is imported. When it is (or is turned) on,
the module is imported and module.attach(gw) gives the real feature; the
hooks (after_round, alarms_changed, settings_changed, metrics, stop) are passed on to it and
its run() is awaited. The feature's run() returns when the setting turns
off; then it is dropped and its modules are forgotten, so their code can be
garbage collected (the heap a feature costs comes back).

With `paths` (and no setting) the module is a request handler instead:
GET <path> imports it, calls module.handle(gw, req) and forgets it again
(a scrape a minute: the heap it takes comes back between requests; a frozen
module imports in well under a millisecond).
"""
import asyncio
import gc
import sys


def unload(name):
    """Forget a module so that its code can be collected."""
    sys.modules.pop(name, None)
    pkg, _, mod = name.rpartition(".")
    try:
        delattr(sys.modules[pkg], mod)
    except (KeyError, AttributeError, TypeError):
        pass


def _module(name):
    __import__(name)
    return sys.modules[name]


class Lazy:
    def __init__(self, name, key=None, owns=(), paths=()):
        self.name = name
        self.__name__ = name      # read like a module's (safe mode picks features by name)
        self.key = key
        self.owns = owns          # modules it imports that nobody else needs
        self.paths = paths

    def attach(self, gw):
        return _Feature(self, gw)


class _Feature:
    def __init__(self, spec, gw):
        self.spec = spec
        self.gw = gw
        self.impl = None
        self._running = True
        self._wake = asyncio.Event()

    def _on(self):
        return self.spec.key is not None and self.gw.settings.get(self.spec.key)

    def routes(self, app):
        spec, gw = self.spec, self.gw
        for path in spec.paths:
            async def handler(req):
                try:
                    return await _module(spec.name).handle(gw, req)
                finally:
                    unload(spec.name)   # its answer, still streaming, keeps what it needs
            app.route(path)(handler)

    def after_round(self):
        if self.impl is not None and hasattr(self.impl, "after_round"):
            self.impl.after_round()

    def alarms_changed(self, started, ended):
        if self.impl is not None and hasattr(self.impl, "alarms_changed"):
            self.impl.alarms_changed(started, ended)

    def settings_changed(self, changed):
        if self.impl is not None and hasattr(self.impl, "settings_changed"):
            self.impl.settings_changed(changed)
        if self.spec.key in changed:
            self._wake.set()

    def metrics(self):
        m = getattr(self.impl, "metrics", None)
        return m() if m is not None else ()

    def stop(self):
        self._running = False
        if self.impl is not None and hasattr(self.impl, "stop"):
            self.impl.stop()
        self._wake.set()

    async def run(self):
        if self.spec.key is None:
            return
        while self._running:
            if not self._on():
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                self.impl = _module(self.spec.name).attach(self.gw)
                await self.impl.run()
            except Exception as e:  # a broken feature must not take the gateway down
                self.gw.events.add("feature", "%s: %r" % (self.spec.name, e), "error")
                await asyncio.sleep(30)
            finally:
                self.impl = None
                for name in (self.spec.name,) + tuple(self.spec.owns):
                    unload(name)
                gc.collect()


MQTT = Lazy("gateway.integrations.mqtt_bridge", "mqtt.enabled",
            ("gateway.integrations.mqtt_ha", "mqtt.client", "mqtt.reader", "mqtt.packet", "mqtt"))
OPENHAB = Lazy("gateway.integrations.openhab", "openhab.enabled")
METRICS = Lazy("gateway.integrations.metrics", paths=("/metrics",))
