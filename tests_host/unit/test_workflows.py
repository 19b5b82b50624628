"""The GitHub Actions workflows: valid YAML of the right shape, tests on every
push and pull request, the snapshot and release jobs, and the files they
upload are exactly the files the device and the users ask for
(firmware/gateway/ota/names.py), at the paths tools/bundle.py writes them."""
import glob
import os
import shlex
import sys

import pytest
import yaml

from support.env import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import bundle  # noqa: E402
from gateway.ota import names as ota_names  # noqa: E402

WF = os.path.join(ROOT, ".github", "workflows")


def load(name):
    with open(os.path.join(WF, name)) as f:
        return yaml.safe_load(f)


def triggers(wf):
    return wf.get("on", wf.get(True))     # YAML 1.1 reads a bare `on` as true


def steps(wf):
    for job_id, job in wf["jobs"].items():
        for s in job.get("steps", []):
            yield job_id, s


def uploads(wf):
    """{step name: (step, [file paths])} of every release-publishing step."""
    out = {}
    for _, s in steps(wf):
        if str(s.get("uses", "")).startswith("softprops/action-gh-release@"):
            out[s["name"]] = (s, s["with"]["files"].split())
    return out


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(WF, "*.yml"))), ids=os.path.basename)
def test_yaml_and_shape(path):
    with open(path) as f:
        wf = yaml.safe_load(f)
    assert isinstance(wf, dict) and wf.get("name") and triggers(wf) and wf.get("jobs")
    for job_id, job in wf["jobs"].items():
        assert "runs-on" in job or "uses" in job, job_id
        for s in job.get("steps", []):
            assert ("uses" in s) != ("run" in s), (job_id, s)
            if "uses" in s:
                assert "@" in s["uses"], "unpinned action %s" % s["uses"]
        for need in job.get("needs", []):
            assert need in wf["jobs"], need


def test_tests_run_on_every_push_and_pull_request():
    wf = load("test.yml")
    on = triggers(wf)
    assert "push" in on and "pull_request" in on and on["push"] is None and on["pull_request"] is None
    assert any(s.get("run", "").strip() == "make test" for _, s in steps(wf))


def test_release_triggers_and_channels():
    wf = load("release.yml")
    on = triggers(wf)
    assert on["push"]["branches"] == ["develop"] and on["push"]["tags"] == ["v*"]
    assert wf["permissions"]["contents"] == "write"
    assert wf["jobs"]["test"]["uses"] == "./.github/workflows/test.yml"
    assert "workflow_call" in triggers(load("test.yml"))
    assert set(wf["jobs"]["publish"]["needs"]) == {"test", "esp32-firmware"}
    up = uploads(wf)
    snap = [s for s, _ in up.values() if s["with"].get("prerelease") is True]
    rel = [s for s, _ in up.values() if s["with"].get("prerelease") is False]
    assert len(snap) == 1 and len(rel) == 1
    assert snap[0]["with"]["tag_name"] == ota_names.SNAPSHOT_TAG
    assert snap[0]["if"] == "github.ref == 'refs/heads/develop'"
    assert snap[0]["with"]["make_latest"] is False
    assert rel[0]["if"] == "startsWith(github.ref, 'refs/tags/v')" and rel[0]["with"]["make_latest"] is True
    names = [s.get("name") for _, s in steps(wf)]
    delete = [s for _, s in steps(wf) if "gh release delete" in s.get("run", "")]
    assert delete and "--cleanup-tag" in delete[0]["run"] and ota_names.SNAPSHOT_TAG in delete[0]["run"]
    assert names.index(delete[0]["name"]) < names.index(snap[0]["name"])  # the old one goes first
    checkout = [s for j, s in steps(wf) if j == "publish" and s.get("uses", "").startswith("actions/checkout@")]
    assert checkout[0]["with"]["fetch-depth"] == 0         # tags and commit count: the snapshot's version
    runs = " ".join(s.get("run", "") for _, s in steps(wf))
    assert "make release CHANNEL=snapshot" in runs and "RELEASE_TAG=${{ github.ref_name }}" in runs


def test_uploaded_names_are_what_the_device_requests():
    up = uploads(load("release.yml"))
    assert len(up) == 2
    release_dir = os.path.relpath(bundle.RELEASE, ROOT)
    for name, (_, files) in up.items():
        base = [os.path.basename(p) for p in files]
        assert sorted(base) == sorted(ota_names.RELEASE_ASSETS), name
        assert all(os.path.dirname(p) == release_dir for p in files), files
        assert set(ota_names.DEVICE_ASSETS) <= set(base)
        assert up[name][0]["with"].get("fail_on_unmatched_files") is True     # a missing file fails


def test_the_build_writes_those_names():
    # `make release` writes archive, manifest.json, version.json under those
    # names into build/release (tests_host/unit/test_bundle.py reads them back by
    # these names); the two image commands default to the other two
    assert bundle.build_release.__defaults__[1] == bundle.RELEASE
    with open(os.path.join(ROOT, "tools", "bundle.py")) as f:
        src = f.read()
    for n in ("ota_names.ARCHIVE", "ota_names.MANIFEST", "ota_names.VERSION",
              "os.path.join(RELEASE, ota_names.ESP8266_ROMFS)", "os.path.join(RELEASE, ota_names.ESP32_IMAGE)"):
        assert n in src, n
    runs = " ".join(s.get("run", "") for _, s in steps(load("release.yml")))
    assert "tools/bundle.py esp8266-romfs\n" in runs + "\n" and "tools/bundle.py esp32-image --frozen --fw-dir" in runs
    # the app image (and its line in version.json) after the image, before the upload
    assert runs.index("tools/bundle.py esp32-app --fw-dir build/esp32-firmware") > runs.index("esp32-image")
    assert "ota_names.ESP32_APP" in src


def test_esp32_firmware_artifact_has_what_the_image_builder_reads():
    wf = load("release.yml")
    job = wf["jobs"]["esp32-firmware"]
    up = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")][0]
    paths = up["with"]["path"].split()
    base = os.path.commonpath(paths)
    rel = sorted(os.path.relpath(p, base) for p in paths)
    assert "flash_args" in rel and "partition_table/partition-table.bin" in rel
    assert "micropython.bin" in rel and "bootloader/bootloader.bin" in rel and "ota_data_initial.bin" in rel
    # the OTA variant: two app slots and the bootloader's rollback (gateway.ota.image)
    assert base.endswith("build-ESP32_GENERIC-OTA")
    builds = [s["run"] for s in job["steps"] if "FROZEN_MANIFEST" in s.get("run", "")]
    assert builds and "BOARD=ESP32_GENERIC BOARD_VARIANT=OTA FROZEN_MANIFEST=" in builds[0]
    assert any("ci_esp32_idf_setup" in s.get("run", "") for s in job["steps"])   # MicroPython's own tooling
    assert wf["env"]["MICROPYTHON_REF"].startswith("v1.28")


def test_esp32_firmware_has_the_app_frozen_in_and_the_image_no_code_files():
    """A frozen firmware needs an image without .mpy files (they would come
    first on sys.path and load the app into the heap), and the other way
    round; the manifest is written before the build that reads it."""
    wf = load("release.yml")
    job = [s.get("run", "") for s in wf["jobs"]["esp32-firmware"]["steps"]]
    made = [i for i, r in enumerate(job) if 'tools/bundle.py frozen-manifest --board esp32 --port esp32 ' in r
            and '--out "$GITHUB_WORKSPACE/esp32_manifest.py"' in r]
    built = [i for i, r in enumerate(job)
             if 'BOARD=ESP32_GENERIC BOARD_VARIANT=OTA FROZEN_MANIFEST="$GITHUB_WORKSPACE/esp32_manifest.py"' in r]
    assert made and built and made[0] < built[0]
    runs = " ".join(s.get("run", "") for _, s in steps(wf))
    assert "esp32-image --frozen" in runs and "esp32-image --fw-dir" not in runs


def test_the_workflows_manifest_command_runs(tmp_path):
    """The esp32-firmware job's tools/bundle.py line, run as written (with
    $GITHUB_WORKSPACE a temporary folder): it writes the manifest the build reads."""
    wf = load("release.yml")
    line = [ln.strip() for s in wf["jobs"]["esp32-firmware"]["steps"] for ln in s.get("run", "").splitlines()
            if "tools/bundle.py frozen-manifest" in ln]
    assert len(line) == 1
    step = [s for s in wf["jobs"]["esp32-firmware"]["steps"] if line[0] in s.get("run", "")][0]
    assert set(step["env"]) == {"CHANNEL", "TAG"}
    # on develop: a snapshot without a tag (the tag run needs the tag to equal VERSION)
    argv = shlex.split(line[0].replace("$GITHUB_WORKSPACE", str(tmp_path)).replace("$CHANNEL", "snapshot")
                       .replace("$TAG", ""))
    assert argv[:2] == ["python", "tools/bundle.py"]
    assert bundle.main(argv[2:]) == 0
    text = (tmp_path / "esp32_manifest.py").read_text()
    assert 'include(\'$(PORT_DIR)/boards/manifest.py\')' in text and "module('gateway/ota/feature.py'" in text
    marker = (tmp_path / "esp32_manifest_modules" / "frozen_app.py").read_text()
    assert "VERSION = %r" % bundle.version_for("snapshot") in marker and "CHANNEL = 'snapshot'" in marker
