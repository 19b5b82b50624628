"""Releases as tools/bundle.py makes them (make_release), and one with an
ESP32 app image of the stand-in's format (support/esp32_standin.py) as the
GitHub stand-in's assets. Used by the update tests and the web page's."""
import json
import os
import sys

from support import esp32_standin as flash
from support.env import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import bundle  # noqa: E402
from gateway.ota import names as ota_names  # noqa: E402

IMAGE_SIZE = 5 * flash.BLOCK + 1234  # the last block partly filled


def image(version, healthy=True, size=IMAGE_SIZE):
    """An app image whose app reports `version` and gets healthy or not."""
    return flash.make_image(json.dumps({"version": version, "healthy": healthy}).encode(), size)


def make_release(folder, version, channel="release"):
    """The bundle and the release of `version` built into folder/version; returns that folder."""
    d = os.path.join(folder, version)
    meta = bundle.build_bundle(os.path.join(d, "bundle"), channel, version=version)
    bundle.build_release(os.path.join(d, "bundle"), os.path.join(d, "release"), meta)
    return d


def release_assets(folder, version, app):
    """{asset name: bytes} of release `version` built into `folder`, `app` its app image."""
    d = make_release(folder, version)
    path = os.path.join(d, "micropython.bin")
    with open(path, "wb") as f:
        f.write(app)
    bundle.add_esp32_app(path, os.path.join(d, "release"))
    out = {}
    for name in (ota_names.ARCHIVE, ota_names.MANIFEST, ota_names.VERSION, ota_names.ESP32_APP):
        with open(os.path.join(d, "release", name), "rb") as f:
            out[name] = f.read()
    return out
