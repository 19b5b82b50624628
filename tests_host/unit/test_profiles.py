"""The build profiles (gateway/profiles.py): what each board's firmware
carries, checked from the sources and from the frozen manifests."""
import ast
import os
import subprocess
import sys

import pytest

from support.env import ROOT
from support.sources import imports, modules

from board import boards
from gateway import profiles

MODS = modules()


def carried(profile):
    return {m for m in MODS if profiles.carries(profile, m)}


def optional(path):
    """Modules imported inside `try: ... except ImportError`: the code runs without them."""
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers):
            for inner in node.body:
                for n in ast.walk(inner):
                    if isinstance(n, ast.Import):
                        out.update(a.name for a in n.names)
                    elif isinstance(n, ast.ImportFrom) and n.module:
                        out.add(n.module)
    return out


@pytest.mark.parametrize("profile", [p for p, _ in profiles.PROFILES])
def test_a_profile_never_imports_what_it_leaves_out(profile):
    # lazy imports count: a module the firmware lacks would fail the day that code runs
    have = carried(profile)
    missing = sorted("%s imports %s" % (m, d) for m in have for d, _ in imports(m, MODS[m], MODS)
                     if d not in have and d not in optional(MODS[m]))
    assert missing == []


def test_the_lean_profile_leaves_out_what_the_issue_names():
    lean = carried("lean")
    for gone in ("gateway.integrations.openhab", "gateway.integrations.metrics", "gateway.history",
                 "gateway.ota.feature", "gateway.ota.stage", "ota_boot", "ota_swap", "httpclient"):
        assert gone not in lean
    for kept in ("gateway.integrations.mqtt_bridge", "gateway.integrations.mqtt_ha", "mqtt.client",
                 "gateway.setup.portal", "gateway.setup.dns", "gateway.web.auth", "gateway.web.webui",
                 "dtu.crypto", "dtu.client", "gateway.link.scheduler", "tlsctx"):
        assert kept in lean
    assert carried("full") == set(MODS)


def test_a_guarded_import_is_told_from_a_plain_one(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("try:\n    import a\nexcept ImportError:\n    pass\nimport b\n"
                 "try:\n    import c\nexcept OSError:\n    pass\n")
    assert optional(str(p)) == {"a"}


def test_every_feature_module_and_owned_module_exists():
    from gateway import lazy
    for name, mod, owned in profiles.FEATURES:
        assert mod in MODS or isinstance(getattr(lazy, mod, None), lazy.Lazy), name
        assert all(m in MODS or m == "mqtt" for m in owned), name
    for mod, names in profiles.SHARED:
        assert mod in MODS and set(names) <= {n for n, _, _ in profiles.FEATURES}
    for _, names in profiles.PROFILES:
        assert set(names) <= {n for n, _, _ in profiles.FEATURES}


def test_each_board_names_a_profile():
    assert {boards.get(b)["profile"] for b in boards.names()} <= {p for p, _ in profiles.PROFILES}
    assert boards.get("esp8266")["profile"] == "lean"
    assert all(boards.get(b)["profile"] == "full" for b in boards.names() if b != "esp8266")


@pytest.mark.parametrize("board,port", [("esp8266", "esp8266"), ("esp8266", "unix"), ("esp32", "esp32")])
def test_the_frozen_manifest_freezes_the_boards_profile(tmp_path, board, port):
    out = tmp_path / "manifest.py"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bundle.py"), "frozen-manifest",
                        "--board", board, "--port", port, "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    frozen = {line.split("'")[1][:-3].replace("/", ".").replace(".__init__", "")
              for line in text.splitlines() if line.startswith("module(")}
    profile = boards.get(board)["profile"]
    # boot.py and main.py stay files on the board; Microdot comes from its pinned package
    assert frozen - {"frozen_app", "microdot", "microdot.microdot", "microdot.helpers"} == \
        carried(profile) - {"boot", "main"}
    marker = (tmp_path / "manifest_modules" / "frozen_app.py").read_text()
    assert "PROFILE = %r" % profile in marker and "BOARD = %r" % board in marker


def test_a_board_is_not_built_with_another_chips_port(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bundle.py"), "frozen-manifest",
                        "--board", "esp8266", "--port", "esp32", "--out", str(tmp_path / "m.py")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "esp8266 port" in r.stderr
