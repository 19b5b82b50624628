"""The boot-time half of the updates. boot.py calls boot() before anything
of the app is imported: when a switch is pending or half-done it finishes it
or rolls it back (ota_swap, imported only then), and it puts the active app
on sys.path. It imports nothing from the app, so a broken new app cannot
break its own rollback; it stays small, since it stays in RAM.

The board's filesystem (paths relative to the root, "/" on a board):

    boot.py main.py ota_boot.mpy ota_swap.mpy ota_layout.mpy   the loader files (each replaced by a rename)
    app/                  the app: board/ gateway/ lib/ www/ version.json ca.der
    ota/new/              a staged release: app/ + loader files + manifest.json
    ota/staged.json       written once everything in ota/new is verified
    ota/old/              the previous app (and loader files) while the new one is on trial
    ota/journal.json      what the switch is doing (ota_swap); gone when nothing is
    ota/last.json         how the last update ended
"""
import json
import os
import sys

import ota_layout as layout   # one name here instead of seven: this module stays in RAM


CONFIRM_WINDOW = 300            # s the new app has to confirm itself (board timer)

STATE = None          # what boot() found: {"op": None|"trial"|"rolled back"|"error", ...}
ROOT = None           # the root boot() ran on; None when the app was not started by boot()
_timer = None


def _stat(p):
    try:
        return os.stat(p)[0]
    except OSError:
        return None


def read_json(path):
    """The JSON object in the file, or None when missing or unreadable."""
    try:
        with open(path) as f:
            obj = json.loads(f.read(4096))
        return obj if isinstance(obj, dict) else None
    except (OSError, ValueError):
        return None


def swap_module(root):
    """ota_swap, also while it is being replaced (then from ota/new or ota/old)."""
    try:
        import ota_swap
    except ImportError:
        sys.path[:0] = [root + layout.NEW, root + layout.OLD]
        try:
            import ota_swap
        finally:
            del sys.path[:2]
    return ota_swap


def pending(root):
    """True when a journal or a leftover of an update is there."""
    for p in (layout.JOURNAL, layout.JOURNAL + ".tmp", layout.NEW, layout.OLD, layout.BAD, layout.STAGED):
        if _stat(root + p) is not None:
            return True
    return False


def paths(root):
    """The folders to put in front of sys.path for the active app."""
    out = []
    if (_stat(root + layout.APP) or 0) & 0x4000:
        out += [root + layout.APP, root + layout.APP + "/lib"]
    if root == "/" and _stat(layout.ROM_APP) is not None:  # pragma: no cover - boards only
        out += [layout.ROM_APP, layout.ROM_APP + "/lib"]
    return out


def boot(root="/", fs=None):
    """Recover, then put the active app on sys.path; runs once per start."""
    global STATE, ROOT
    if ROOT is not None:
        return STATE
    root = root if root.endswith("/") else root + "/"
    STATE = {"op": None}
    if pending(root):
        try:
            STATE = swap_module(root).Loader(root, fs).recover()
        except Exception as e:  # never stop the boot: the old app may still run
            STATE = {"op": "error", "error": repr(e)}
    for p in reversed(paths(root)):
        if p not in sys.path:
            sys.path.insert(0, p)
    ROOT = root
    if STATE.get("op") == "trial":
        _arm_timer()
    return STATE


def app_path(rel=""):
    """A path inside the active app, or None when not started by boot()."""
    if ROOT is None:
        return None
    return ROOT + layout.APP + ("/" + rel if rel else "")


def disarm():
    """Stop the trial's reset timer (the new app confirmed itself)."""
    global _timer
    if _timer is not None:  # pragma: no cover - boards only
        _timer.deinit()
        _timer = None


def _arm_timer():  # pragma: no cover - boards only
    """A new app that hangs before confirming is reset; the next boot rolls
    it back. Unix MicroPython and CPython have no machine.Timer."""
    global _timer
    try:
        import machine
        _timer = machine.Timer(-1 if sys.platform == "esp8266" else 0)
        _timer.init(mode=machine.Timer.ONE_SHOT, period=CONFIRM_WINDOW * 1000,
                    callback=lambda t: machine.reset())
    except Exception:  # no timer on this port: the watchdog is the fallback
        _timer = None
