"""tools/boardctl.py without hardware: the esptool / mpremote command lines for
each board, the firmware image lookup and checks, the errors when no board is
attached (the real tool run as `make` runs it), and the ROMFS image really
built by mpremote and mounted by the unix MicroPython."""
import os
import subprocess
import sys

import pytest

from support.env import ROOT, micropython_bin

sys.path.append(os.path.join(ROOT, "tools"))
import boardctl as tool  # noqa: E402  (tools/boardctl.py)
from board import boards  # noqa: E402  (firmware/board/boards.py, the one table)

TOOL = os.path.join(ROOT, "tools", "boardctl.py")
MISSING = "/dev/ttyUSB-no-such-port"


def fake_image(path, chip_id=0):
    """An ESP image header: magic 0xE9, chip id at bytes 12-13."""
    head = bytearray(64)
    head[0] = 0xE9
    head[12], head[13] = chip_id & 0xFF, chip_id >> 8
    with open(path, "wb") as f:
        f.write(bytes(head))
    return str(path)


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


# ---- the table -------------------------------------------------------------------

def test_every_board_has_every_field_and_the_documented_addresses():
    assert boards.names() == ["esp8266", "esp32", "esp32s3", "esp32c3"]
    for name in boards.names():
        row = boards.get(name)
        assert set(row) == set(boards.FIELDS)
        assert row["heap"] in boards.HEAP_BYTES and row["wdt"] in ("hw", "soft")
        assert row["led_kind"] in ("low", "high", "rgb")
    addr = {n: boards.get(n)["flash_addr"] for n in boards.names()}
    assert addr == {"esp8266": 0x0, "esp32": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0}
    assert boards.get("esp8266")["variant"] == "FLASH_2M_ROMFS" and boards.get("esp8266")["romfs"]
    assert boards.get("esp32")["variant"] == "OTA"
    assert not boards.get("esp8266")["tls"] and boards.get("esp32")["tls"]
    with pytest.raises(KeyError):
        boards.get("esp32s2")


def test_detect_the_board_from_platform_and_uname():
    assert boards.detect("esp8266") == "esp8266"
    assert boards.detect("esp32", "Generic ESP32 module with ESP32") == "esp32"
    assert boards.detect("esp32", "Generic ESP32S3 module with ESP32S3") == "esp32s3"
    assert boards.detect("esp32", "ESP32C3 module with ESP32C3") == "esp32c3"
    assert boards.detect("esp32", "ESP32-S3 custom") == "esp32s3"


# ---- command lines ---------------------------------------------------------------

@pytest.mark.parametrize("name,chip,addr", [("esp8266", "esp8266", "0x0"), ("esp32", "esp32", "0x1000"),
                                            ("esp32s3", "esp32s3", "0x0"), ("esp32c3", "esp32c3", "0x0")])
def test_flash_erases_then_writes_the_image_at_the_boards_address(name, chip, addr):
    erase, write = tool.flash_commands(boards.get(name), "/dev/ttyUSB0", "fw.bin")
    esptool = [sys.executable, "-m", "esptool"]
    assert erase == esptool + ["--chip", chip, "--port", "/dev/ttyUSB0", "erase-flash"]
    assert write[:3] == esptool
    assert write[3:10] == ["--chip", chip, "--port", "/dev/ttyUSB0", "--baud", "460800", "write-flash"]
    assert write[-2:] == [addr, "fw.bin"]          # v5 spelling; address then file
    assert ("--flash-size" in write) == (name == "esp8266")
    if name == "esp8266":
        assert write[write.index("--flash-size") + 1] == "detect"


def test_deploy_copies_the_tree_installs_aiorepl_and_resets():
    [cmd] = tool.deploy_commands("/dev/ttyACM0", ["boot.py", "gateway", "lib", "main.py"])
    assert cmd[:5] == [sys.executable, "-m", "mpremote", "connect", "/dev/ttyACM0"]
    rest = cmd[5:]
    assert rest == ["cp", "-r", "boot.py", "gateway", "lib", "main.py", ":",
                    "+", "mip", "install", "aiorepl", "+", "reset"]
    [cmd] = tool.deploy_commands("/dev/ttyACM0", ["main.py"], aiorepl=False, remove=["gateway"])
    assert "mip" not in cmd and cmd[5] == "exec" and "'gateway'" in cmd[6] and cmd[7] == "+"


def test_console_and_romfs_command_lines(tmp_path):
    assert tool.console_command("/dev/ttyUSB1") == [sys.executable, "-m", "mpremote", "connect",
                                                     "/dev/ttyUSB1", "repl"]
    assert tool.build_romfs("build/bundle", os.path.join(str(tmp_path), "r", "app.romfs")) == [[
        sys.executable, os.path.join(ROOT, "tools", "bundle.py"), "esp8266-romfs", "--bundle",
        "build/bundle", "-o", os.path.join(str(tmp_path), "r", "app.romfs")]]
    assert tool.romfs_deploy_command("/dev/ttyUSB1", "out.romfs") == [
        sys.executable, "-m", "mpremote", "connect", "/dev/ttyUSB1", "romfs", "deploy", "out.romfs"]


def test_the_pinned_tools_accept_these_command_lines():
    """esptool v5 and mpremote know the subcommands and options used above."""
    out = subprocess.run([sys.executable, "-m", "esptool", "write-flash", "--help"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "--flash-size" in out and "detect" in out
    out = subprocess.run([sys.executable, "-m", "esptool", "--help"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "erase-flash" in out and "esp32c3" in out
    out = subprocess.run([sys.executable, "-m", "mpremote", "romfs", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert "--no-mpy" in out.stdout + out.stderr


# ---- the firmware image ----------------------------------------------------------

def test_the_newest_official_image_of_the_right_variant_is_picked(tmp_path):
    for n in ("ESP32_GENERIC-20250911-v1.26.1.bin", "ESP32_GENERIC-OTA-20250911-v1.26.1.bin",
              "ESP32_GENERIC-OTA-20260101-v1.28.0.bin", "ESP32_GENERIC_S3-20260101-v1.28.0.bin",
              "ESP8266_GENERIC-20260101-v1.28.0.bin", "ESP8266_GENERIC-FLASH_2M_ROMFS-20260101-v1.28.0.bin",
              "ESP8266_GENERIC-FLASH_1M-20260101-v1.28.0.bin"):
        (tmp_path / n).write_bytes(b"\xe9")
    pick = lambda name: os.path.basename(tool.find_image(boards.get(name), fw_dir=str(tmp_path)))  # noqa: E731
    assert pick("esp32") == "ESP32_GENERIC-OTA-20260101-v1.28.0.bin"
    assert pick("esp32s3") == "ESP32_GENERIC_S3-20260101-v1.28.0.bin"
    assert pick("esp8266") == "ESP8266_GENERIC-FLASH_2M_ROMFS-20260101-v1.28.0.bin"
    with pytest.raises(tool.ToolError) as e:
        tool.find_image(boards.get("esp32c3"), fw_dir=str(tmp_path))
    msg = str(e.value)
    assert "ESP32_GENERIC_C3" in msg and "https://micropython.org/download/ESP32_GENERIC_C3/" in msg
    assert "never download" in msg


def test_a_missing_image_names_the_download(tmp_path):
    with pytest.raises(tool.ToolError) as e:
        tool.find_image(boards.get("esp8266"), fw_dir=str(tmp_path))
    assert "ESP8266_GENERIC-FLASH_2M_ROMFS" in str(e.value)
    assert "https://micropython.org/download/ESP8266_GENERIC/" in str(e.value)
    with pytest.raises(tool.ToolError) as e:
        tool.find_image(boards.get("esp32"), image=str(tmp_path / "nope.bin"))
    assert "does not exist" in str(e.value) and "ESP32_GENERIC-OTA" in str(e.value)


def test_images_that_cannot_be_the_boards_are_refused(tmp_path):
    ok = fake_image(tmp_path / "ESP32_GENERIC-OTA-20260101-v1.28.0.bin", chip_id=0)
    assert tool.check_image(boards.get("esp32"), ok) == ok
    s3 = fake_image(tmp_path / "ESP32_GENERIC_S3-20260101-v1.28.0.bin", chip_id=9)
    assert tool.check_image(boards.get("esp32s3"), s3) == s3
    with pytest.raises(tool.ToolError, match="for esp32s3, not for esp32"):
        tool.check_image(boards.get("esp32"), s3)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"PK\x03\x04" + bytes(60))
    with pytest.raises(tool.ToolError, match="not an ESP firmware image"):
        tool.check_image(boards.get("esp8266"), str(junk))
    old = fake_image(tmp_path / "ESP8266_GENERIC-FLASH_2M_ROMFS-20240101-v1.24.0.bin")
    with pytest.raises(tool.ToolError, match="ROMFS variant exists since 1.25"):
        tool.check_image(boards.get("esp8266"), old)
    older = fake_image(tmp_path / "ESP32_GENERIC-OTA-20230101-v1.20.0.bin")
    with pytest.raises(tool.ToolError, match=">= 1.23"):
        tool.check_image(boards.get("esp32"), older)


# ---- no board attached: the real tool, as make runs it -------------------------

@pytest.mark.parametrize("cmd", ["flash", "deploy", "console", "romfs"])
def test_a_missing_port_stops_before_any_tool_runs(cmd, tmp_path):
    img = fake_image(tmp_path / "ESP32_GENERIC-OTA-20260101-v1.28.0.bin")
    extra = {"flash": ["--board", "esp32", "--image", img], "deploy": ["--board", "esp32"],
             "console": [], "romfs": ["--board", "esp8266"]}[cmd]
    r = run_tool(cmd, "--port", MISSING, *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "serial port %s does not exist" % MISSING in r.stderr
    assert "esptool" not in r.stdout and "mpremote" not in r.stdout   # nothing was started
    r = run_tool(cmd, *extra)
    assert r.returncode == 2 and "no serial port given: pass PORT=" in r.stderr


def test_a_port_that_is_not_a_device_is_refused(tmp_path):
    f = tmp_path / "ttyFAKE"
    f.write_text("")
    with pytest.raises(tool.ToolError, match="not a serial device"):
        tool.check_port(str(f))
    assert tool.check_port("/dev/null") == "/dev/null"   # a character device passes


def test_flash_and_deploy_need_a_board_name(tmp_path):
    r = run_tool("flash", "--port", "/dev/null")
    assert r.returncode == 2 and "no board given: pass BOARD=esp8266|esp32|esp32s3|esp32c3" in r.stderr
    r = run_tool("flash", "--port", "/dev/null", "--board", "esp32s2")
    assert r.returncode == 2 and "unknown board 'esp32s2'" in r.stderr


def test_flash_runs_erase_then_write_on_an_existing_port(tmp_path, monkeypatch, capsys):
    """The whole flow with the port check passing (/dev/null is a character
    device) and the tools replaced by a recorder."""
    img = fake_image(tmp_path / "ESP8266_GENERIC-FLASH_2M_ROMFS-20260101-v1.28.0.bin")
    calls = []
    monkeypatch.setattr(tool.subprocess, "call", lambda cmd, cwd=None: calls.append(cmd) or 0)
    assert tool.main(["flash", "--board", "esp8266", "--port", "/dev/null", "--image", img]) == 0
    assert [c[3:] for c in calls] == [
        ["--chip", "esp8266", "--port", "/dev/null", "erase-flash"],
        ["--chip", "esp8266", "--port", "/dev/null", "--baud", "460800", "write-flash",
         "--flash-size", "detect", "0x0", img]]
    assert "make romfs PORT=/dev/null" in capsys.readouterr().out
    calls.clear()
    monkeypatch.setattr(tool.subprocess, "call", lambda cmd, cwd=None: calls.append(cmd) or 2)
    assert tool.main(["flash", "--board", "esp8266", "--port", "/dev/null", "--image", img]) == 2
    assert len(calls) == 1                         # a failed erase stops before the write
    assert "bootloader" in capsys.readouterr().err


def whole_flash_image(path, chip_id=0, at=0x1000):
    """As tools/bundle.py esp32-image writes it (esptool merge-bin from 0x0):
    erased flash up to the bootloader's image header."""
    with open(path, "wb") as f:
        f.write(b"\xff" * at)
    with open(fake_image(str(path) + ".part", chip_id), "rb") as f:
        head = f.read()
    with open(path, "ab") as f:
        f.write(head + b"\xff" * 4096)
    return str(path)


def test_the_releases_whole_flash_image_is_written_at_0_and_needs_no_deploy(tmp_path, monkeypatch, capsys):
    row = boards.get("esp32")
    img = whole_flash_image(tmp_path / "dtu-gateway-esp32.bin")
    assert tool.image_address(row, img) == 0x0 and tool.check_image(row, img) == img
    renamed = whole_flash_image(tmp_path / "gw.bin")                 # known by its content too
    assert tool.image_address(row, renamed) == 0x0
    official = fake_image(tmp_path / "ESP32_GENERIC-OTA-20260101-v1.28.0.bin")
    assert tool.image_address(row, official) == 0x1000
    s3 = whole_flash_image(tmp_path / "s3.bin", chip_id=9)
    with pytest.raises(tool.ToolError, match="for esp32s3, not for esp32"):
        tool.check_image(row, s3)
    empty = tmp_path / "erased.bin"
    empty.write_bytes(b"\xff" * 0x2000)
    with pytest.raises(tool.ToolError, match="no 0xE9 magic byte at 0x1000"):
        tool.check_image(row, str(empty))
    calls = []
    monkeypatch.setattr(tool.subprocess, "call", lambda cmd, cwd=None: calls.append(cmd) or 0)
    assert tool.main(["flash", "--board", "esp32", "--port", "/dev/null", "--image", img]) == 0
    assert calls[1][-2:] == ["0x0", img]
    out = capsys.readouterr().out
    assert "at 0x0" in out and "no deploy" in out and "make deploy" not in out


def test_dry_run_prints_the_command_lines(tmp_path):
    img = fake_image(tmp_path / "ESP32_GENERIC-OTA-20260101-v1.28.0.bin")
    r = run_tool("flash", "--board", "esp32", "--port", "/dev/ttyUSB0", "--image", img, "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-2].endswith("-m esptool --chip esp32 --port /dev/ttyUSB0 erase-flash")
    assert lines[-1].endswith("write-flash 0x1000 " + img)


def test_makefile_targets_pass_port_and_board():
    r = subprocess.run(["make", "-n", "flash", "PORT=/dev/ttyUSB0", "BOARD=esp8266", "IMAGE=x.bin"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "tools/boardctl.py flash --port /dev/ttyUSB0 --board esp8266 --image x.bin" in r.stdout
    for target, want in (("deploy", "tools/boardctl.py deploy --port /dev/ttyACM0 --board esp32"),
                         ("console", "tools/boardctl.py console --port /dev/ttyACM0"),
                         ("romfs", "tools/boardctl.py romfs --port /dev/ttyACM0 --board esp32")):
        r = subprocess.run(["make", "-n", target, "PORT=/dev/ttyACM0", "BOARD=esp32"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert want in r.stdout, r.stdout + r.stderr


# ---- trees and the ROMFS image ---------------------------------------------------

def test_esp8266_deploy_leaves_the_code_to_romfs_and_removes_shadowing_copies(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tool, "BUNDLE_DIR", str(tmp_path / "bundle"))
    monkeypatch.setattr(tool, "ROMFS_DIR", str(tmp_path / "romfs"))
    calls = []
    monkeypatch.setattr(tool.subprocess, "call", lambda cmd, cwd=None: calls.append((cmd, cwd)) or 0)
    assert tool.main(["deploy", "--board", "esp8266", "--port", "/dev/null"]) == 0
    [(cmd, cwd)] = calls
    copied = cmd[cmd.index("cp") + 2:cmd.index(":")]
    assert "main.py" in copied and "boot.py" in copied
    for d, _, files in os.walk(cwd):              # what is copied holds no code
        assert not [f for f in files if f.endswith(".mpy")], d
    assert any(f.endswith(".gz") for _, _, fs in os.walk(cwd) for f in fs)   # the web app is copied
    removed = eval(cmd[cmd.index("exec") + 1].split("for _p in ")[1].split(":")[0])
    tree = tool.source_tree()
    for d, _, files in os.walk(tree):              # every .mpy lies under a removed path
        for f in files:
            if f.endswith(".mpy"):
                rel = os.path.relpath(os.path.join(d, f), tree).replace(os.sep, "/")
                assert any(rel == r or rel.startswith(r + "/") for r in removed), rel
    assert "lib" not in removed                    # aiorepl lives in /lib
    calls.clear()
    assert tool.main(["deploy", "--board", "esp32", "--port", "/dev/null", "--no-aiorepl"]) == 0
    [(cmd, cwd)] = calls
    copied = cmd[cmd.index("cp") + 2:cmd.index(":")]
    assert {"main.py", "boot.py"} <= set(copied) and "exec" not in cmd and "mip" not in cmd
    assert any(f == "app.mpy" for _, _, fs in os.walk(cwd) for f in fs)   # the code is copied
    # a plain ESP32 has no room for the code in its heap: point at the frozen image
    assert "IMAGE=dtu-gateway-esp32.bin" in capsys.readouterr().out


def test_code_paths_are_the_outermost_code_only_folders(tmp_path):
    for p in ("boot.py", "ota_boot.mpy", "app/board/a.mpy", "app/gateway/b.mpy", "app/www/i.gz",
              "app/lib/dtu/c.mpy", "app/lib/civil.mpy", "lib/proto_min/d.mpy", "lib/e.mpy"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_bytes(b"x")
    assert tool.code_paths(str(tmp_path)) == ["app/board", "app/gateway", "app/lib", "lib/e.mpy",
                                              "lib/proto_min", "ota_boot.mpy"]


def test_rm_snippet_removes_files_and_folders_under_micropython(tmp_path):
    mp = micropython_bin()
    (tmp_path / "gateway" / "sub").mkdir(parents=True)
    (tmp_path / "gateway" / "sub" / "a.mpy").write_bytes(b"x")
    (tmp_path / "gateway" / "b.mpy").write_bytes(b"x")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "civil.mpy").write_bytes(b"x")
    (tmp_path / "lib" / "aiorepl.mpy").write_bytes(b"x")
    code = tool.rm_snippet(["gateway", "lib/civil.mpy", "absent"], root=str(tmp_path) + "/")
    r = subprocess.run([mp, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["lib"] and os.listdir(tmp_path / "lib") == ["aiorepl.mpy"]


def test_romfs_image_builds_without_a_board_and_imports_under_micropython():
    r = run_tool("romfs", "--build-only")
    assert r.returncode == 0, r.stdout + r.stderr
    image = os.path.join(ROOT, "build", "romfs", "app.romfs")
    with open(image, "rb") as f:
        assert f.read(3) == b"\xd2\xcd\x31"      # the ROMFS header
    # Mount it as the board does (/rom and /rom/lib on sys.path), let the loader
    # (ota_boot, itself from the image) add the app's folders, and import the app.
    code = ("import sys, vfs\n"
            "f = open(%r, 'rb'); img = f.read(); f.close()\n"
            "vfs.mount(vfs.VfsRom(img), '/rom')\n"
            "sys.path[:0] = ['/rom', '/rom/lib']\n"
            "import ota_boot\n"
            "sys.path[:0] = ota_boot.paths('/')\n"
            "import gateway.app, microdot, dtu.client\n"
            "print(gateway.app.__file__)\n" % image)
    r = subprocess.run([micropython_bin(), "-X", "heapsize=1m", "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("/gateway/app.mpy") and r.stdout.startswith("/rom/"), r.stdout
