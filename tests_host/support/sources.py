"""The board code's modules and their imports, read from the sources (all
levels: a lazy import inside a function is still a dependency). Used by the
architecture and profile checks."""
import ast
import os

from support.env import ROOT

SOURCES = ("firmware", "lib", "proto_min")


def modules(root=ROOT):
    """{module name: path} of the board code (firmware/ and lib/ are sys.path roots)."""
    out = {}
    for top in SOURCES:
        base = os.path.join(root, top)
        for d, dirs, files in os.walk(base):
            dirs.sort()
            for f in sorted(files):
                if not f.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(d, f), root if top == "proto_min" else base)
                name = rel[:-3].replace(os.sep, ".")
                if name.endswith(".__init__"):
                    name = name[:-len(".__init__")]
                out[name] = os.path.join(d, f)
    return out


def owner(name, mods):
    """The board module that `name` (a dotted import) is, or lies in; None if not ours."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports(name, path, mods):
    """[(imported module, the names taken from it or None)] of one module, all levels."""
    tree = ast.parse(open(path).read(), path)
    pkg = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                m = owner(a.name, mods)
                if m:
                    out.append((m, None))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg
                for _ in range(node.level - 1):
                    up = up.rpartition(".")[0]
                base = up + ("." + base if base else "")
            for a in node.names:
                if base + "." + a.name in mods:          # from package import submodule
                    out.append((base + "." + a.name, None))
                elif owner(base, mods):
                    out.append((owner(base, mods), a.name))
    return out


