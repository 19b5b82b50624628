#!/usr/bin/env python3
"""Update figures for `make bench`:

  - the bundle: files, bytes of code (.mpy) and web assets, the archive,
    manifest.json;
  - download-and-verify on the unix MicroPython (64-bit), from .mpy as a
    board loads it: the real archive is fetched over loopback HTTP from the
    GitHub stand-in (tests_host/support/gh_standin.py, with its 302 to the asset
    host), streamed through gateway.ota.stage into a staging folder, every
    file's sha256 checked. Reported: the smallest -X heapsize with which it
    still succeeds (found by bisection, against the same for just the
    imports), the live heap sampled during the download, the time; and the
    smallest heap for the upload path (the archive from a stream, as the
    ESP8266 gets it from the browser).

    python3 tools/bench/ota.py
The same script runs under MicroPython as the download worker
(`micropython tools/bench/ota.py --worker TREE URL ROOT`).
"""
import sys

if sys.implementation.name == "micropython":
    def worker():
        tree, url, root = sys.argv[2], sys.argv[3], sys.argv[4]
        sys.path[:0] = [tree + "/firmware", tree + "/lib", tree, tree + "/host_deps"]
        import gc
        import time
        only_imports = url == "-"
        import asyncio
        import ota_boot
        import ota_swap
        from httpclient import get
        from gateway.ota.stage import Stager
        gc.collect()
        base = gc.mem_alloc()
        if only_imports:
            print("ok %d 0 0 0" % base)
            return
        peak = [base]

        def sample(i):
            if i % 8 == 0:          # the live heap: collected first
                gc.collect()
                a = gc.mem_alloc()
                if a > peak[0]:
                    peak[0] = a

        async def run():
            ld = ota_swap.Loader(root)
            st = Stager(ld)
            buf = memoryview(bytearray(1024))
            i = 0
            if url.startswith("file:"):        # the upload path: no HTTP client
                with open(url[5:], "rb") as f:
                    while True:
                        n = f.readinto(buf)
                        if not n:
                            break
                        st.feed(buf[:n])
                        i += 1
                        sample(i)
                return st.finish(), st.fed
            r = await get(url, None, None, "bench")
            while True:
                n = await r.readinto(buf)
                if not n:
                    break
                st.feed(buf[:n])
                i += 1
                sample(i)
            await r.close()
            return st.finish(), st.fed
        t0 = time.ticks_ms()
        head, n = asyncio.run(run())
        ms = time.ticks_diff(time.ticks_ms(), t0)
        print("ok %d %d %d %d %s" % (base, peak[0], n, ms, head["version"]))
    worker()
    sys.exit(0)

import gzip  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(ROOT, "tools"), os.path.join(ROOT, "tests_host"), os.path.join(ROOT, "firmware"),
                 os.path.join(ROOT, "tools", "host_shims")]


def micropython():
    return os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")


def _run(heap, tree, url, root):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    r = subprocess.run([micropython(), "-X", "heapsize=%d" % heap, os.path.abspath(__file__), "--worker",
                        tree, url, root], capture_output=True, text=True, timeout=120)
    line = (r.stdout.strip().splitlines() or [""])[-1]
    return line.split() if r.returncode == 0 and line.startswith("ok ") else None


def smallest_heap(tree, url, root, lo=4096, hi=1 << 20):
    """The smallest heap (bytes, to 256 B) with which the worker succeeds."""
    if _run(hi, tree, url, root) is None:
        return None
    while hi - lo > 256:
        mid = (lo + hi) // 2
        if _run(mid, tree, url, root) is None:
            lo = mid
        else:
            hi = mid
    return hi


def bench():
    import bundle
    import run_host
    from gateway.ota import names as ota_names
    from support.gh_standin import Standin
    out = []
    tmp = tempfile.mkdtemp(prefix="bench-ota-")
    try:
        meta = bundle.build_bundle(os.path.join(tmp, "bundle"), "release")
        v = bundle.build_release(os.path.join(tmp, "bundle"), os.path.join(tmp, "release"), meta)
        files = bundle.bundle_files(os.path.join(tmp, "bundle"))
        code = sum(s for p, s, _ in files if p.endswith(".mpy"))
        web = sum(s for p, s, _ in files if p.startswith("app/www/"))
        with open(os.path.join(tmp, "release", ota_names.ARCHIVE), "rb") as f:
            archive = f.read()
        out.append("bundle_files: %d" % len(files))
        out.append("bundle_bytes: %.1f KB (code .mpy %.1f KB, web %.1f KB, other %.1f KB)" % (
            sum(s for _, s, _ in files) / 1024, code / 1024, web / 1024,
            (sum(s for _, s, _ in files) - code - web) / 1024))
        out.append("archive_bytes: %.1f KB (%.1f KB if gzipped)" % (
            len(archive) / 1024, len(gzip.compress(archive, 9, mtime=0)) / 1024))
        out.append("manifest_bytes: %.1f KB" % (v["manifest"]["size"] / 1024))
        romfs = os.path.join(tmp, "app.romfs")
        try:
            out.append("esp8266_romfs_bytes: %.1f KB of %d KB" % (
                bundle.make_romfs(os.path.join(tmp, "bundle"), romfs) / 1024, bundle.ROMFS_MAX // 1024))
        except bundle.BuildError as e:
            out.append("esp8266_romfs_bytes: (%s)" % e)

        tree = run_host.build_mpy_tree()
        gh = Standin()
        gh.add_release("v" + meta["version"], {ota_names.ARCHIVE: archive})
        url = "%s/%s/releases/download/v%s/%s" % (gh.api_url, gh.repo, meta["version"], ota_names.ARCHIVE)
        root = os.path.join(tmp, "fs")
        try:
            r = _run(1 << 20, tree, url, root)
            if r is None:
                return "\n".join(out + ["download_verify: (failed under MicroPython)"])
            base, peak, n, ms = (int(x) for x in r[1:5])
            need = smallest_heap(tree, url, root)
            need0 = smallest_heap(tree, "-", root)
            arch_path = os.path.join(tmp, "release", ota_names.ARCHIVE)
            need_up = smallest_heap(tree, "file:" + arch_path, root)
        finally:
            gh.close()
        out.append("download_verify_time: %d ms for %.1f KB over loopback HTTP (302 to the asset host)" % (
            ms, n / 1024))
        out.append("download_verify_heap_in_use_after_imports: %.1f KB" % (base / 1024))
        out.append("download_verify_live_heap_peak: %.1f KB (collected, sampled every 8 KB)" % (peak / 1024))
        out.append("download_verify_smallest_heap: %.1f KB (imports alone: %.1f KB; the download adds %.1f KB)"
                   % (need / 1024, need0 / 1024, (need - need0) / 1024))
        out.append("upload_verify_smallest_heap: %.1f KB (the archive from a stream, no HTTP client: adds %.1f KB)"
                   % (need_up / 1024, (need_up - need0) / 1024))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return "\n".join(out)


if __name__ == "__main__":
    print(bench())
