"""Run the board-side unittest modules under the unix MicroPython.

Usage (from CPython):  python tests_host/mp/run_all.py [--micropython BIN] [--heap 512k] [module ...]
It re-executes itself under MicroPython with the repo's board paths and our
unittest stand-in; the closing line reads 'N passed, N failed'.
"""
import sys


def modules(root):
    """Every board-side test module: the test_*.py of tests_host/mp/ (they
    import only board code and the both-Pythons helpers of tests_host/support)."""
    import os
    return sorted(f[:-3] for f in os.listdir(root + "/tests_host/mp") if f.startswith("test_") and f.endswith(".py"))


def _host_main():
    import os
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    args = sys.argv[1:]
    mp = os.environ.get("MICROPYTHON") or os.path.join(root, ".venv", "bin", "micropython")
    heap = "1m"
    if "--micropython" in args:
        i = args.index("--micropython")
        mp = args[i + 1]
        del args[i:i + 2]
    if "--heap" in args:
        i = args.index("--heap")
        heap = args[i + 1]
        del args[i:i + 2]
    cmd = [mp, "-X", "heapsize=" + heap, os.path.abspath(__file__), root] + args
    sys.exit(subprocess.call(cmd))


def _mp_main():
    import gc

    root = sys.argv[1]
    sys.path[:0] = [root + "/tests_host/support/mp", root + "/tests_host/mp", root + "/tests_host",
                    root + "/firmware", root + "/lib", root]
    import unittest  # our stand-in (tests_host/support/mp/unittest.py)

    wanted = sys.argv[2:] or modules(root)
    passed = failed = skipped = 0
    for name in wanted:
        mod = __import__(name)
        for cname in dir(mod):
            cls = getattr(mod, cname)
            if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)) or cls is unittest.TestCase:
                continue
            for tname in sorted(dir(cls)):
                if not tname.startswith("test"):
                    continue
                inst = cls()
                try:
                    inst.setUp()
                    try:
                        getattr(inst, tname)()
                    finally:
                        inst.tearDown()
                    passed += 1
                except unittest.SkipTest as e:
                    skipped += 1
                    print("SKIP %s.%s.%s: %s" % (name, cname, tname, e))
                except Exception as e:  # report every failure, keep going
                    failed += 1
                    print("FAIL %s.%s.%s: %s: %s" % (name, cname, tname, type(e).__name__, e))
                    sys.print_exception(e)
                gc.collect()
    print("micropython: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if sys.implementation.name == "micropython":
        _mp_main()
    else:
        _host_main()
