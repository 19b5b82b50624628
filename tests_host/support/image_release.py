"""A release as tools/bundle.py makes it, with an ESP32 app image of the
stand-in's format (support/esp32_standin.py), as the GitHub stand-in's
assets. Used by the image update tests and the web page's update test."""
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


def release_assets(folder, version, app):
    """{asset name: bytes} of release `version` built into `folder`, `app` its app image."""
    meta = bundle.build_bundle(os.path.join(folder, "bundle"), "release", version=version)
    bundle.build_release(os.path.join(folder, "bundle"), os.path.join(folder, "release"), meta)
    path = os.path.join(folder, "micropython.bin")
    with open(path, "wb") as f:
        f.write(app)
    bundle.add_esp32_app(path, os.path.join(folder, "release"))
    out = {}
    for name in (ota_names.ARCHIVE, ota_names.MANIFEST, ota_names.VERSION, ota_names.ESP32_APP):
        with open(os.path.join(folder, "release", name), "rb") as f:
            out[name] = f.read()
    return out
