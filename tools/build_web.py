#!/usr/bin/env python3
"""Build the web app: web_static/ -> build/web/, minified lightly and gzipped.

    python3 tools/build_web.py [--out DIR]        (`make web`)

Every asset is written as NAME.HASH.EXT.gz, HASH being the first 8 hex digits
of the SHA-256 of its minified content, and index.html refers to the hashed
names: the gateway (firmware/gateway/web/webui.py) serves the assets with a
year-long Cache-Control and index.html with its hash as ETag and no-cache.
The gzip streams carry mtime 0 and no file name, so the same sources give the
same bytes on every machine. Only the Python standard library is used; an
unchanged build leaves the files (and a running gateway) alone.
"""
import gzip
import hashlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "web_static")
OUT = os.path.join(ROOT, "build", "web")
ASSETS = ("app.css", "app.js")      # referenced from index.html by these names
INDEX = "index.html"


def minify_css(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*([{};,>])\s*", r"\1", text)
    text = re.sub(r":\s+", ":", text)            # "a: b" -> "a:b" (selectors have no ": ")
    return text.replace(";}", "}").strip() + "\n"


def minify_js(text):
    """Leading indentation, blank lines and whole-line // comments go; nothing
    inside a line is touched (no tokenizer, so no risk to strings or regexes)."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("//"):
            continue
        out.append(s)
    return "\n".join(out) + "\n"


def minify_html(text):
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return "\n".join(s.strip() for s in text.splitlines() if s.strip()) + "\n"


MINIFY = {"css": minify_css, "js": minify_js, "html": minify_html}


def gz(data):
    """Deterministic gzip: mtime 0, no file name, maximum compression."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def digest(data):
    return hashlib.sha256(data).hexdigest()[:8]


def hashed(name, h):
    base, ext = name.rsplit(".", 1)
    return "%s.%s.%s" % (base, h, ext)


def build(src=SRC, out=OUT, quiet=True):
    """Build into `out`; returns {served name: (gz file name, raw size, gz size)}."""
    files = {}
    index_text = None
    for name in ASSETS + (INDEX,):
        with open(os.path.join(src, name), encoding="utf-8") as f:
            text = f.read()
        text = MINIFY[name.rsplit(".", 1)[1]](text)
        if name == INDEX:
            index_text = text
            continue
        data = text.encode()
        files[name] = (hashed(name, digest(data)), data)
    for name, (served, _) in files.items():
        pattern = r'(["\'])%s\1' % re.escape(name)
        if not re.search(pattern, index_text):
            raise SystemExit("build_web: %s does not refer to %s" % (INDEX, name))
        index_text = re.sub(pattern, r"\g<1>%s\g<1>" % served, index_text)
    data = index_text.encode()
    files[INDEX] = (hashed(INDEX, digest(data)), data)

    os.makedirs(out, exist_ok=True)
    wanted = set()
    result = {}
    for name, (served, data) in files.items():
        fname = served + ".gz"
        wanted.add(fname)
        blob = gz(data)
        path = os.path.join(out, fname)
        if not _same(path, blob):
            tmp = path + ".tmp%d" % os.getpid()
            with open(tmp, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        result[name] = (fname, len(data), len(blob))
    for fname in os.listdir(out):       # older builds and cut temp files
        if fname not in wanted and (fname.endswith(".gz") or ".gz.tmp" in fname):
            try:
                os.remove(os.path.join(out, fname))
            except OSError:
                pass
    if not quiet:
        total = sum(v[2] for v in result.values())
        for name, (fname, raw, z) in sorted(result.items()):
            print("  %-28s %6d B -> %5d B gzipped" % (fname, raw, z))
        print("  total %d B gzipped in %s" % (total, os.path.relpath(out, ROOT)))
    return result


def _same(path, blob):
    try:
        with open(path, "rb") as f:
            return f.read() == blob
    except OSError:
        return False


def main(argv):
    out = OUT
    if len(argv) == 2 and argv[0] == "--out":
        out = os.path.abspath(argv[1])
    elif argv:
        raise SystemExit("usage: build_web.py [--out DIR]")
    build(out=out, quiet=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
