"""What a build of the gateway carries: the ONE table of profiles.

A board's row in board/boards.py names its profile. tools/bundle.py
frozen-manifest freezes only that profile's modules (a left-out feature is
not even in the firmware), and the Gateway starts that profile's features
(gateway.app.feature_modules). Nothing else asks which board it runs on.

    full   every feature (ESP32)
    lean   what fits an ESP8266 (issue 19): no openHAB, /metrics, history
           ring or in-place update

FEATURES: (name in /api/info "features", the module or gateway.lazy spec
that attach()es it, the modules only that feature needs). A module that no
feature owns is the core: every profile has it. Tuples of constants, so
that a frozen build keeps the table in flash.
"""

FEATURES = (
    ("selfheal", "gateway.selfheal", ()),       # watchdog, crash counter, safe mode, console
    ("wifi", "gateway.setup.wifi_manager", ()),   # joining, the AP when it cannot
    ("auth", "gateway.web.auth", ()),           # the admin password; every write checked
    ("portal", "gateway.setup.portal", ("gateway.setup.dns",)),   # the first boot's captive portal
    ("history", "gateway.history", ("gateway.history",)),   # today's power for the dashboard's chart
    ("webui", "gateway.web.webui", ()),         # the web app (served pre-gzipped)
    ("mqtt", "MQTT", ("gateway.integrations.mqtt_bridge", "gateway.integrations.mqtt_ha", "mqtt",
                      "mqtt.client", "mqtt.packet", "mqtt.reader")),
    ("openhab", "OPENHAB", ("gateway.integrations.openhab",)),
    ("metrics", "METRICS", ("gateway.integrations.metrics",)),
    ("ota", "gateway.ota.feature", ("gateway.ota.feature", "gateway.ota.api", "gateway.ota.check",
                                    "gateway.ota.stage", "gateway.ota.releases", "gateway.ota.image",
                                    "ota_boot", "ota_swap",
                                    "ota_layout", "boot")),   # boot.py only starts the update loader
)
# Modules more than one feature needs (frozen when any of them is in).
SHARED = (
    ("httpclient", ("openhab", "ota")),
    ("tlsctx", ("mqtt", "openhab", "ota")),
    ("gateway.integrations.values", ("mqtt", "openhab", "metrics")),
)

PROFILES = (
    ("full", ("selfheal", "wifi", "auth", "portal", "history", "webui", "mqtt", "openhab", "metrics", "ota")),
    ("lean", ("selfheal", "wifi", "auth", "portal", "webui", "mqtt")),
)
# What runs in safe mode (setup and updates).
SAFE = ("selfheal", "wifi", "auth", "portal", "webui", "ota")


def features(profile):
    """The feature names of `profile`; KeyError if there is none of that name."""
    for name, names in PROFILES:
        if name == profile:
            return names
    raise KeyError("unknown profile %r" % profile)


def frozen():
    """What the marker module of a firmware with the app frozen in says (only
    tools/bundle.py frozen-manifest writes it): {"profile", "version",
    "date", "channel"}, or None for code run from files. Read once and
    forgotten: it is not kept in the heap."""
    import sys
    try:
        import frozen_app as m
    except ImportError:
        return None
    sys.modules.pop("frozen_app", None)
    return {"profile": getattr(m, "PROFILE", "full"), "version": getattr(m, "VERSION", None),
            "date": getattr(m, "DATE", ""), "channel": getattr(m, "CHANNEL", "")}


def current():
    """The profile this firmware was built with; "full" for code run from files."""
    f = frozen()
    return f["profile"] if f else "full"


def owners(module):
    """The features a module belongs to: () for the core."""
    for name, _, owned in FEATURES:
        if module in owned:
            return (name,)
    for mod, names in SHARED:
        if mod == module:
            return names
    return ()


def carries(profile, module):
    """True when a build of `profile` has `module` (tools/bundle.py)."""
    own = owners(module)
    return not own or any(n in own for n in features(profile))
