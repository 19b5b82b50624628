"""The gateway package. Its version, here so that it costs no module of its own
(the package is loaded anyway): what /api/info, MQTT discovery, /metrics and the
update check report, and what a release tag must say (tools/bundle.py)."""
VERSION = "0.1.0"
VERSION_DATE = "2026-11-21"
