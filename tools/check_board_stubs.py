#!/usr/bin/env python3
"""Calls the boards do not have: mypy over the board-side code (firmware/,
lib/, proto_min/) against each board's published MicroPython stubs.

    .venv/bin/python tools/check_board_stubs.py            # both boards; exit 1 on a finding
    .venv/bin/python tools/check_board_stubs.py -v         # also what was set aside, and why
    .venv/bin/python tools/check_board_stubs.py --install  # the stubs only (`make setup` runs it)

The stubs (micropython-<port>-<port>-generic-stubs and the micropython-stdlib-stubs
they build on) are pinned in requirements-dev.txt behind a marker that never
matches, so pip leaves them out of .venv: the two boards' stubs define the same
modules (time, machine, network, ...), so each board gets its own folder,
build/stubs/<board>/, installed with pip --target as the stubs' docs say, and
mypy runs once per board with that folder as its typeshed and search path and
no site-packages (only Microdot, the board's one third-party package, is added).

No annotations are needed: mypy checks the bodies of unannotated functions
(check_untyped_defs) and knows the types of modules, of their functions' results
and of the stubs' classes, so `time.monotonic()`, `select.epoll`, `os.path`,
`network.WLAN(0).nosuchmethod()` or `import threading` are found. A parameter
without an annotation is Any, and calls on it are not checked.

Only these errors count (a type error is not a missing call): a module that
cannot be found, a name not defined, and a missing attribute of a module or
class the board provides. Set aside, listed by -v:
  own      a missing attribute of our own modules and classes (mixins, attributes
           set from outside) or Microdot's: the same on CPython, where the host
           tests run that code;
  none     "Item None of X | None": mypy's guess that an attribute may still be None;
  guarded  an import in `try:` whose `except ImportError` handles its absence
           (an optional module), or an attribute in `try:` with `except AttributeError`;
  fallback code in such an `except ImportError/AttributeError:` handler when the
           board takes the `try:` branch (nothing in it is missing on this board):
           the CPython stand-ins (time.monotonic, asyncio.get_running_loop);
  host     code under `if sys.implementation.name != "micropython":` (or the
           else of `== "micropython"`).
Everything else is a finding, unless ALLOWED below lists it with a reason; an
ALLOWED entry that no longer matches is an error too, so the list stays exact.
"""
import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = os.path.join(ROOT, "requirements-dev.txt")
CONFIG = os.path.join(ROOT, "tools", "board_stubs.ini")      # mypy's settings
STUBS = os.path.join(ROOT, "build", "stubs")
BOARDS = ("esp32", "esp8266")
# The board's import roots: firmware/ and lib/ as folders, proto_min/ and Microdot as packages.
ROOT_DIRS = ("firmware", "lib")
PACKAGES = ("proto_min",)
HOST_ONLY = ("firmware/board/host.py",)    # PC only (host mode); board/__init__.py picks it off the board

# What is neither a stub gap nor a host stand-in and still must not fail the
# check: (boards, file, symbol, verdict, why). symbol is module.name or
# Class.name as the report prints it; lines move, so they are not part of the key.
STUB_GAP = "stub gap"       # the board has it; its stubs (generated from dir()) do not show it
NOT_REACHED = "not reached"  # the board lacks it; the code does not run on that board
BUG = "bug"                  # the board lacks it and gets there: fix the code, then drop the entry
ALLOWED = (
    ("esp32 esp8266", "lib/tlsctx.py", "SSLContext.verify_mode", STUB_GAP,
     "tls.SSLContext serves verify_mode from its attribute handler (modtls_mbedtls.c, "
     "modtls_axtls.c), which dir() and so the stubs miss; ssl.SSLContext (micropython-lib) "
     "wraps it as a property"),
    ("esp32 esp8266", "firmware/gateway/web/httpd.py", "asyncio.core", STUB_GAP,
     "the stubs' asyncio is typeshed's; MicroPython's asyncio package (extmod/asyncio, "
     "frozen in) has core.py with its _io_queue, so the board takes the MicroPython branch"),
)

# mypy's error codes that mean "not there"; the rest are type errors.
CODES = ("attr-defined", "union-attr", "import-not-found", "import-untyped", "import",
         "name-defined")


# ---- the stubs ---------------------------------------------------------------------------

def pins(board):
    """The pinned requirements for `board`'s stubs, from requirements-dev.txt."""
    want = {"micropython-%s-%s-generic-stubs" % (board, board), "micropython-stdlib-stubs"}
    found = []
    with open(REQUIREMENTS) as f:
        for line in f:
            req = line.split(";")[0].split("#")[0].strip()
            name = req.split("==")[0].strip().lower()
            if name in want and "==" in req:
                found.append(req.replace(" ", ""))
    if len(found) != len(want):
        raise SystemExit("requirements-dev.txt pins no stubs for %s (want %s)"
                         % (board, ", ".join(sorted(want))))
    return sorted(found)


def stub_dir(board):
    return os.path.join(STUBS, board)


def installed(board):
    try:
        with open(os.path.join(stub_dir(board), ".pins")) as f:
            return f.read().split() == pins(board)
    except OSError:
        return False


def install(board):
    """pip install --target build/stubs/<board> the pinned stubs (a no-op when they are there)."""
    if installed(board):
        return stub_dir(board)
    want = pins(board)
    os.makedirs(STUBS, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".%s-" % board, dir=STUBS)
    try:
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-user",
               "--disable-pip-version-check", "-q", "--target", tmp] + want
        subprocess.run(cmd, check=True)
        with open(os.path.join(tmp, ".pins"), "w") as f:
            f.write("\n".join(want) + "\n")
        shutil.rmtree(stub_dir(board), ignore_errors=True)
        os.rename(tmp, stub_dir(board))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return stub_dir(board)


# ---- running mypy ------------------------------------------------------------------------

def board_files(board=None):
    """The board-side sources, repo-relative; with `board`, only those its
    firmware carries (gateway/profiles.py: the ESP8266's lean build leaves
    the update feature, openHAB, /metrics and the history out)."""
    carries = lambda rel: True  # noqa: E731
    if board is not None:
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        from bundle import board_profile, module_name   # how a firmware names and picks its modules
        from gateway import profiles
        profile = board_profile(board)
        # firmware/ and lib/ are import roots; proto_min/ keeps its package name
        carries = lambda rel: profiles.carries(  # noqa: E731
            profile, module_name(rel.split("/", 1)[1] if rel.split("/")[0] in ROOT_DIRS else rel))
    out = []
    for top in ROOT_DIRS + PACKAGES:
        for d, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    rel = os.path.relpath(os.path.join(d, name), ROOT).replace(os.sep, "/")
                    if rel not in HOST_ONLY and carries(rel):
                        out.append(rel)
    return out


def _microdot():
    import importlib.util
    spec = importlib.util.find_spec("microdot")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("microdot is not installed (make setup)")
    return list(spec.submodule_search_locations)[0]


def run_mypy(board, files, roots):
    """mypy's errors (dicts from its JSON output) for `files` with `roots` as the search path."""
    stubs = install(board)
    cmd = [sys.executable, "-m", "mypy",
           "--custom-typeshed-dir", stubs,
           "--platform", board,              # sys.platform == "esp8266" branches are per board
           "--python-version", "%d.%d" % sys.version_info[:2],
           "--config-file", CONFIG, "--cache-dir", os.devnull, "--output", "json"] + files
    env = dict(os.environ, MYPYPATH=os.pathsep.join(list(roots) + [stubs]))
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    errors = []
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            errors.append(json.loads(line))
    if p.returncode not in (0, 1) or (p.returncode == 1 and not errors):
        raise RuntimeError("mypy failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
    return errors


# ---- what an error means -----------------------------------------------------------------

class Item:
    def __init__(self, board, path, line, col, code, message, symbol, scope):
        self.board, self.path, self.line, self.col = board, path, line, col
        self.code, self.message, self.symbol, self.scope = code, message, symbol, scope
        self.kind = None     # finding | own | none | guarded | fallback | host | stub gap | ...
        self.why = ""
        self.allowed = None  # the ALLOWED entry that matched
        self.src = self.ctx = self.stmt = None

    def __repr__(self):
        return "%s:%d: %s [%s] %s" % (self.path, self.line, self.symbol, self.kind, self.why)


def _class_names(paths, exts):
    names = set()
    rx = re.compile(r"^\s*class\s+([A-Za-z_]\w*)", re.M)
    for top in paths:
        for d, dirs, files in os.walk(top, followlinks=True):
            dirs[:] = [x for x in dirs if x != "__pycache__"]
            for name in files:
                if name.endswith(exts):
                    with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                        names.update(rx.findall(f.read()))
    return names


def _top_names(roots):
    """Top-level modules and packages found in our own roots."""
    out = set()
    for r in roots:
        for name in os.listdir(r):
            if name.endswith((".py", ".pyi")):
                out.add(name.rsplit(".", 1)[0])
            elif os.path.isdir(os.path.join(r, name)) and not name.startswith((".", "_")):
                out.add(name)
    return out


class Source:
    """A checked file: its lines, its import aliases and its statements' nesting."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.lines = text.splitlines()
        self.tree = ast.parse(text, path)
        self.aliases = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        top = a.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    self.aliases[a.asname or a.name] = node.module + "." + a.name

    def chain(self, line):
        """(node, field) pairs from the module down to the innermost statement
        at `line`, whose field is None."""
        out = []
        node = self.tree
        while True:
            found = None
            for field in ("body", "handlers", "orelse", "finalbody"):
                for child in getattr(node, field, None) or ():
                    if child.lineno <= line <= (child.end_lineno or child.lineno):
                        found = field, child
                        break
                if found:
                    break
            if found is None:
                if node is not self.tree:
                    out.append((node, None))
                return out
            out.append((node, found[0]))
            node = found[1]

    def expr_at(self, line, col):
        """The dotted name starting at (line, col), e.g. "time.monotonic"."""
        try:
            text = self.lines[line - 1][col:]
        except IndexError:
            return ""
        m = re.match(r"[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*", text)
        return re.sub(r"\s+", "", m.group(0)) if m else ""


def _catches(handler, names):
    t = handler.type
    if t is None:
        return False
    elts = t.elts if isinstance(t, ast.Tuple) else [t]
    return any(isinstance(e, ast.Name) and e.id in names for e in elts)


_IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")


def _is_micropython_test(test):
    """+1 for `sys.implementation.name == "micropython"`, -1 for `!=`, 0 otherwise."""
    if (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "micropython"
            and ast.unparse(test.left) == "sys.implementation.name"):
        if isinstance(test.ops[0], ast.Eq):
            return 1
        if isinstance(test.ops[0], ast.NotEq):
            return -1
    return 0


def _context(src, line):
    """Where `line` sits: ("host", if_node) | ("try-body", try_node) |
    ("handler", try_node, handler) chains, innermost last."""
    chain = src.chain(line)
    out = []
    for i, (node, field) in enumerate(chain):
        if isinstance(node, ast.If) and field in ("body", "orelse"):
            sign = _is_micropython_test(node.test)
            if (sign == -1 and field == "body") or (sign == 1 and field == "orelse"):
                out.append(("host", node))
        elif isinstance(node, ast.Try) and field == "body":
            out.append(("try-body", node))
        elif isinstance(node, ast.Try) and field == "handlers":
            out.append(("handler", node, chain[i + 1][0]))
    stmt = chain[-1][0] if chain else None
    return out, stmt


class Checker:
    def __init__(self, board, files=None, roots=None):
        self.board = board
        self.files = files
        self.roots = roots

    def run(self):
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="stubcheck-") as extra:
            # proto_min and Microdot alone, not the whole repo root or site-packages
            os.symlink(_microdot(), os.path.join(extra, "microdot"))
            for p in PACKAGES:
                os.symlink(os.path.join(ROOT, p), os.path.join(extra, p))
            if self.files is None:
                files = board_files(self.board)
                roots = [os.path.join(ROOT, d) for d in ROOT_DIRS] + [extra]
                files = [os.path.join(extra, f) if f.split("/")[0] in PACKAGES else f
                         for f in files]
            else:
                files, roots = list(self.files), list(self.roots) + [extra]
            errors = run_mypy(self.board, files, roots)
            self.seconds = time.monotonic() - t0
            items = self._items(errors, roots, extra)
        self._classify(items)
        self.items = items
        return self

    # -- an error -> an Item with its symbol and scope
    def _items(self, errors, roots, extra):
        own_mods = _top_names(roots)
        own_classes = _class_names(roots, (".py", ".pyi"))
        stub_classes = _class_names([stub_dir(self.board)], (".pyi",))
        sources = {}
        items = []
        for e in errors:
            if e.get("severity") != "error" or e.get("code") not in CODES:
                continue
            path = e["file"]
            if path.startswith(extra + os.sep):
                path = path[len(extra) + 1:]
            path = path.replace(os.sep, "/")
            if path not in sources:
                full = path if os.path.isabs(path) else os.path.join(ROOT, path)
                sources[path] = Source(full)
            src = sources[path]
            symbol, scope = self._symbol(e, src, own_mods, own_classes, stub_classes)
            it = Item(self.board, path, e["line"], e["column"], e["code"], e["message"],
                      symbol, scope)
            it.src = src
            items.append(it)
        return items

    @staticmethod
    def _symbol(e, src, own_mods, own_classes, stub_classes):
        msg = e["message"]

        def module_scope(mod):
            return "own" if mod.split(".")[0] in own_mods else "board"

        def class_scope(cls):
            base = re.sub(r"^type\[(.*)\]$", r"\1", cls)
            base = base.split("[")[0]
            parts = base.split(".")
            if len(parts) > 1 and parts[0] in own_mods:
                return base, "own"
            name = parts[-1]
            return name, ("own" if name in own_classes and name not in stub_classes else "board")

        m = re.match(r'Cannot find implementation or library stub for module named "([^"]+)"', msg) \
            or re.match(r'.*module named "([^"]+)"', msg)
        if m:
            return m.group(1), "board"
        m = re.match(r'Name "([^"]+)" is not defined', msg)
        if m:
            return m.group(1), "board"
        m = re.match(r'Module "([^"]+)" has no attribute "([^"]+)"', msg)
        if m:
            return m.group(1) + "." + m.group(2), module_scope(m.group(1))
        m = re.match(r'Module has no attribute "([^"]+)"', msg)
        if m:
            attr = m.group(1)
            parts = src.expr_at(e["line"], e["column"]).split(".")
            mod = None
            if attr in parts[1:]:
                head = parts[:parts.index(attr, 1)]
                mod = ".".join([src.aliases.get(head[0], head[0])] + head[1:])
            if not mod:
                return "?." + attr, "board"
            return mod + "." + attr, module_scope(mod)
        m = re.match(r'Item "([^"]+)" of "[^"]*" has no attribute "([^"]+)"', msg)
        if m:
            if m.group(1) == "None":
                return "None." + m.group(2), "none"
            name, scope = class_scope(m.group(1))
            return name + "." + m.group(2), scope
        m = re.match(r'"([^"]+)" has no attribute "([^"]+)"', msg)
        if m:
            name, scope = class_scope(m.group(1))
            return name + "." + m.group(2), scope
        return msg, "board"     # a form not known here: counts

    # -- an Item -> its kind
    def _classify(self, items):
        for it in items:
            it.ctx, it.stmt = _context(it.src, it.line)
            for boards, path, symbol, verdict, why in ALLOWED:
                if (self.board in boards.split() and it.path == path and it.symbol == symbol
                        and it.scope == "board"):
                    it.allowed = (boards, path, symbol, verdict, why)
        board = [it for it in items if it.scope == "board"]
        for it in items:
            if it.scope != "board":
                it.kind = it.scope
                it.why = {"own": "our own or Microdot's code (the host tests run it)",
                          "none": "mypy's guess that it may still be None"}[it.scope]
        # pass 1: host-only branches and guarded statements
        for it in board:
            is_import = isinstance(it.stmt, (ast.Import, ast.ImportFrom))
            for entry in reversed(it.ctx):
                if entry[0] == "host":
                    it.kind, it.why = "host", "under %s (line %d)" % (
                        ast.unparse(entry[1].test), entry[1].lineno)
                    break
                if entry[0] == "try-body":
                    names = _IMPORT_ERRORS if is_import else ("AttributeError",)
                    h = [x for x in entry[1].handlers if _catches(x, names)]
                    if h:
                        it.kind, it.why = "guarded", "except %s at line %d" % (
                            names[0], h[0].lineno)
                        break
        # pass 2: the ALLOWED entries (they say whether the board has it)
        for it in board:
            if it.allowed and it.kind in (None, "guarded"):
                it.kind, it.why = it.allowed[3], it.allowed[4]
        # pass 3: handlers of a `try:` the board gets through are fallbacks
        for it in board:
            if it.kind is not None:
                continue
            for entry in reversed(it.ctx):
                if entry[0] != "handler":
                    continue
                try_node, handler = entry[1], entry[2]
                if not _catches(handler, _IMPORT_ERRORS + ("AttributeError",)):
                    continue
                blockers = [o for o in board if o.path == it.path
                            and any(c[0] == "try-body" and c[1] is try_node for c in o.ctx)
                            and o.kind not in (STUB_GAP, "host")]
                if blockers:
                    it.why = "the board takes this handler: %s" % ", ".join(
                        "%s (line %d)" % (o.symbol, o.line) for o in blockers)
                else:
                    it.kind, it.why = "fallback", (
                        "in except %s (line %d); the board gets through the try at line %d"
                        % (ast.unparse(handler.type), handler.lineno, try_node.lineno))
                break
            if it.kind is None:
                it.kind = "finding"
        return items

    def findings(self):
        """What fails the check: findings not in ALLOWED."""
        return [it for it in self.items if it.kind == "finding"]

    def stale(self):
        """ALLOWED entries for this board that matched nothing (a run over the board-side code)."""
        if self.files is not None:
            return []
        used = {it.allowed for it in self.items if it.allowed}
        return [a for a in ALLOWED if self.board in a[0].split() and a not in used]


def check(board, files=None, roots=None):
    return Checker(board, files, roots).run()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", action="append", choices=BOARDS,
                    help="only this board (repeatable; default both)")
    ap.add_argument("--install", action="store_true", help="install the stubs and stop")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="also list what was set aside and the allowed entries")
    ap.add_argument("files", nargs="*",
                    help="check these files instead (their folders are the import roots)")
    args = ap.parse_args(argv)
    boards = args.board or list(BOARDS)
    if args.install:
        for b in boards:
            install(b)
        return 0
    bad = 0
    for b in boards:
        if args.files:
            files = [os.path.abspath(f) for f in args.files]
            c = check(b, files, sorted({os.path.dirname(f) for f in files}))
        else:
            c = check(b)
        items, new, stale = c.items, c.findings(), c.stale()
        kinds = {}
        for it in items:
            kinds[it.kind] = kinds.get(it.kind, 0) + 1
        print("%s: %d findings, %d stale allowed entries (%s) in %.1f s" % (
            b, len(new), len(stale),
            ", ".join("%s %d" % kv for kv in sorted(kinds.items())) or "nothing else",
            c.seconds))
        for it in sorted(items, key=lambda x: (x.path, x.line)):
            if it.kind == "finding" or args.verbose:
                print("  %s:%d: [%s] %s (%s)%s" % (it.path, it.line, it.kind, it.symbol,
                                                    it.message, "\n      " + it.why if it.why else ""))
        for a in stale:
            print("  stale ALLOWED entry: %s %s (%s)" % (a[1], a[2], a[3]))
        bad += len(new) + len(stale)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
