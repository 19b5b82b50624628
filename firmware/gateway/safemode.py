"""Crash counter and the safe-mode decision, made once at boot (main.py).

A run is "unstable" from boot until it has been healthy for STABLE_AFTER
seconds (selfheal.py then calls stable()). The file data_dir/boot.json
remembers across resets whether the last run was still unstable when it
ended, how many such runs came in a row, and why the last one ended:

    {"n": 2, "run": true, "why": "MemoryError: memory allocation failed"}

boot() counts: a run that ended unstable adds one (a crash: an exception
main.py caught, a watchdog reset, a panic); a stable or deliberate end
(board.reset() from the app, Ctrl-C) clears the count; power-on and the RESET
button clear it too. At LIMIT crashes in a row the board boots into safe
mode: AP, setup page and OTA upload only, no DTU traffic, and the reason in
/api/info "safeMode" and in the events. The count starts over then, so the
next boot (RESET, a restart from the page, or selfheal's retry after an
hour) tries the full app again. Holding the button at boot forces safe mode.

Everything here is plain file I/O: it must work on a board that crashes.
"""
import json

from micropython import const

LIMIT = const(3)            # crashes in a row -> safe mode
STABLE_AFTER = const(300)   # s healthy before a run counts as stable
_MAX_WHY = const(120)

_path = None                # data_dir/boot.json once boot() ran (None: no counting, e.g. host mode)
last = None                 # (reset cause, crashes in a row, why the last run ended) of this boot


def _read(path):
    try:
        with open(path) as f:
            d = json.loads(f.read(512))
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(path, n, run, why=""):
    try:
        with open(path, "w") as f:
            f.write(json.dumps({"n": n, "run": run, "why": why[:_MAX_WHY]}))
    except OSError:
        pass  # a full or broken filesystem must not stop the boot


def boot(board, button_held=False):
    """Count this boot; -> the /api/info "safeMode" dict {"active", "reason"}.
    Wraps board.reset so that the app's own restarts do not count."""
    global _path, last
    _path = path = board.data_dir + "/boot.json"
    st = _read(path)
    cause = board.reset_cause() if hasattr(board, "reset_cause") else "soft"
    n = st.get("n", 0)
    if not isinstance(n, int) or n < 0:
        n = 0
    why = st.get("why") if isinstance(st.get("why"), str) else ""
    if cause in ("power", "hard"):
        n = 0                      # plugged in, or the RESET button: a fresh start
    elif st.get("run"):
        n += 1                     # the last run ended before it was stable
        if not why:
            why = "watchdog reset" if cause == "watchdog" else "reset (%s)" % cause
    else:
        n = 0
    last = (cause, n, why)
    mode = {"active": False, "reason": ""}
    if button_held:
        mode = {"active": True, "reason": "the button was held at boot"}
    elif n >= LIMIT:
        mode = {"active": True, "reason": "%d crashes in a row, each within %d min of boot; last: %s"
                % (n, STABLE_AFTER // 60, why[:_MAX_WHY] or "unknown")}
    _write(path, 0 if mode["active"] else n, True)
    _wrap_reset(board)
    return mode


def _wrap_reset(board):
    orig = board.reset

    def reset():
        clean()
        orig()
    board.reset = reset


def stable():
    """This run has been healthy for STABLE_AFTER: crashes from now on start a new count."""
    if _path:
        _write(_path, 0, False)


def clean():
    """A deliberate end (restart from the app, Ctrl-C): not a crash."""
    if _path:
        _write(_path, 0, False)


def crashed(why):
    """Record why this run is ending badly (the count goes up at the next boot)."""
    if _path:
        st = _read(_path)
        n = st.get("n", 0) if isinstance(st.get("n"), int) else 0
        _write(_path, n, True, why)
