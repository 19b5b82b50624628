"""The board code's rooms, checked from its sources (docs/architecture.md):
no import cycle, no private name used across modules, no getattr lookups
over the Gateway, the gateway package in subpackages, each shared rule
written once. Imports inside functions count: a lazy import is still a
dependency."""
import ast
import os
import re

import pytest

from support.env import ROOT
from support.sources import imports, modules, owner


def graph(mods):
    return {m: sorted({d for d, _ in imports(m, p, mods)} - {m}) for m, p in mods.items()}


def cycles(g):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def private_uses(mods):
    """["path:line what"] where a module uses another module's private name:
    `from m import _x`, `m._x` on an imported board module, or `obj._x` on
    anything but self/cls when no `_x` is defined in the same file."""
    found = []
    for name, path in mods.items():
        tree = ast.parse(open(path).read(), path)
        rel = os.path.relpath(path, ROOT)
        ours = {}          # local name -> board module it is bound to
        for mod, taken in imports(name, path, mods):
            if taken is not None and taken.startswith("_") and not taken.startswith("__"):
                found.append("%s: from %s import %s" % (rel, mod, taken))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if owner(a.name, mods):
                        ours[a.asname or a.name.split(".")[0]] = a.name
            elif isinstance(node, ast.ImportFrom):
                for a in node.names:
                    full = (node.module or "") + "." + a.name
                    if full in mods:
                        ours[a.asname or a.name] = full
        defined = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            a = node.attr
            if not a.startswith("_") or a.startswith("__"):
                continue
            v = node.value
            if isinstance(v, ast.Name) and v.id in ("self", "cls"):
                continue
            if isinstance(v, ast.Name) and v.id in ours:
                found.append("%s:%d %s.%s (a private name of %s)" % (rel, node.lineno, v.id, a, ours[v.id]))
            elif a not in defined and not _foreign(v, tree, mods):
                found.append("%s:%d %s.%s" % (rel, node.lineno, ast.unparse(v), a))
    return found


def _foreign(value, tree, mods):
    """True when `value` is a name imported from a module that is not ours
    (MicroPython's own asyncio internals, say): its privacy is not our rule."""
    if not isinstance(value, ast.Name):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not owner(node.module or "", mods):
            if any((a.asname or a.name) == value.id for a in node.names):
                return True
        if isinstance(node, ast.Import) and not any(owner(a.name, mods) for a in node.names):
            if any((a.asname or a.name) == value.id for a in node.names):
                return True
    return False


MODS = modules()


def test_the_board_code_is_all_found():
    for m in ("gateway.app", "gateway.link.scheduler", "gateway.web.httpd", "dtu.client", "proto_min.codec",
              "ota_boot", "board.esp"):
        assert m in MODS, m


def test_no_import_cycle():
    assert cycles(graph(MODS)) == []


def test_the_cycle_finder_finds_one(tmp_path):
    # the finder itself: two modules that import each other, one lazily
    g = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    assert cycles(g) == [["a", "b", "c"]]
    mods = dict(MODS)
    (tmp_path / "x.py").write_text("def later():\n    from gateway import app\n")
    mods["gateway.x"] = str(tmp_path / "x.py")
    g = graph(mods)
    g["gateway.app"] = g["gateway.app"] + ["gateway.x"]
    assert ["gateway.app", "gateway.x"] in cycles(g)


def test_no_private_name_across_modules():
    assert private_uses(MODS) == []


def test_a_private_use_is_found(tmp_path):
    p = tmp_path / "y.py"
    p.write_text("from gateway.link import scheduler\nfrom gateway.app import _MICROPYTHON\n"
                 "def f(gw):\n    scheduler._x\n    return gw._tz\n")
    found = private_uses({"gateway.y": str(p), "gateway.link.scheduler": MODS["gateway.link.scheduler"],
                          "gateway.app": MODS["gateway.app"], "gateway": MODS["gateway"],
                          "gateway.link": MODS["gateway.link"]})
    assert len(found) == 3, found


def test_no_getattr_lookups_over_the_gateway():
    found = []
    for name, path in MODS.items():
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("getattr", "hasattr") and node.args:
                target = ast.unparse(node.args[0])
                if target in ("gw", "self.gw") or (name == "gateway.app" and target == "self"):
                    found.append("%s:%d %s" % (os.path.relpath(path, ROOT), node.lineno, ast.unparse(node)))
    assert found == []


def test_the_gateway_package_is_in_rooms():
    top = [f for f in os.listdir(os.path.join(ROOT, "firmware", "gateway")) if f.endswith(".py")]
    rooms = [d for d in os.listdir(os.path.join(ROOT, "firmware", "gateway"))
             if os.path.isfile(os.path.join(ROOT, "firmware", "gateway", d, "__init__.py"))]
    assert len(top) <= 16, sorted(top)
    assert sorted(rooms) == ["integrations", "link", "ota", "setup", "web"]


@pytest.mark.parametrize("rule,pattern,owners", [
    ("the const() fallback for CPython (tools/host_shims/micropython.py)", r"def const\(", ()),
    ("a TLS context", r"ssl\.SSLContext\(", ("lib/tlsctx.py",)),
    ("an HTTP answer's status line parsed", r'startswith\(b"HTTP/', ("lib/httpclient.py",)),
    ("the polling interval's safe floor", r"= const\(31\)|= 31\b", ("firmware/gateway/link/scheduler.py",)),
    ("the 0..100 range of a power limit", r"< 0 or .*> 100|0 <= .* <= 100", ("firmware/gateway/link/commands.py",)),
])
def test_each_rule_is_written_once(rule, pattern, owners):
    where = sorted(os.path.relpath(p, ROOT) for p in MODS.values() if re.search(pattern, open(p).read()))
    assert where == sorted(owners), (rule, where)


def test_the_architecture_page_names_what_exists():
    """docs/architecture.md: every file it names is there, and every room of
    firmware/gateway/ has its row."""
    text = open(os.path.join(ROOT, "docs", "architecture.md")).read()
    named = set(re.findall(r"`((?:gateway|lib|firmware|proto_min)/[\w/]+\.py)`", text))
    assert len(named) >= 10, named
    for rel in named:
        cands = [rel, "firmware/" + rel]
        assert any(os.path.exists(os.path.join(ROOT, c)) for c in cands), rel
    for room in ("link", "web", "setup", "integrations", "ota"):
        assert "| `gateway/%s/` |" % room in text, room
