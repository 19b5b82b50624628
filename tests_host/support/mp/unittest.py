"""The subset of unittest our board-side tests use, for the unix MicroPython.

MicroPython ships no unittest and micropython-lib's is not on PyPI, so this small
stand-in lets the very same test files run under pytest (real unittest) and
under MicroPython (this module). Only on sys.path for MicroPython runs.
"""


class SkipTest(Exception):
    pass


def skip(reason):
    def deco(fn):
        def skipped(*a):
            raise SkipTest(reason)
        return skipped
    return deco


class _Raises:
    def __init__(self, exc):
        self.expected = exc
        self.exception = None

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            raise AssertionError("%s not raised" % self.expected.__name__)
        if issubclass(et, self.expected):
            self.exception = ev
            return True
        return False


class TestCase:
    def setUp(self):
        pass

    def tearDown(self):
        pass

    def skipTest(self, reason):
        raise SkipTest(reason)

    def fail(self, msg=None):
        raise AssertionError(msg or "failed")

    def assertEqual(self, a, b, msg=None):
        if not a == b:
            self.fail(msg or "%r != %r" % (a, b))

    def assertNotEqual(self, a, b, msg=None):
        if a == b:
            self.fail(msg or "%r == %r" % (a, b))

    def assertTrue(self, x, msg=None):
        if not x:
            self.fail(msg or "%r is not true" % (x,))

    def assertFalse(self, x, msg=None):
        if x:
            self.fail(msg or "%r is not false" % (x,))

    def assertIs(self, a, b, msg=None):
        if a is not b:
            self.fail(msg or "%r is not %r" % (a, b))

    def assertIsNone(self, x, msg=None):
        self.assertIs(x, None, msg)

    def assertIsNotNone(self, x, msg=None):
        if x is None:
            self.fail(msg or "unexpectedly None")

    def assertIn(self, a, b, msg=None):
        if a not in b:
            self.fail(msg or "%r not in %r" % (a, b))

    def assertNotIn(self, a, b, msg=None):
        if a in b:
            self.fail(msg or "%r unexpectedly in %r" % (a, b))

    def assertIsInstance(self, x, t, msg=None):
        if not isinstance(x, t):
            self.fail(msg or "%r is not a %r" % (x, t))

    def assertLess(self, a, b, msg=None):
        if not a < b:
            self.fail(msg or "%r not less than %r" % (a, b))

    def assertLessEqual(self, a, b, msg=None):
        if not a <= b:
            self.fail(msg or "%r not <= %r" % (a, b))

    def assertGreater(self, a, b, msg=None):
        if not a > b:
            self.fail(msg or "%r not greater than %r" % (a, b))

    def assertGreaterEqual(self, a, b, msg=None):
        if not a >= b:
            self.fail(msg or "%r not >= %r" % (a, b))

    def assertAlmostEqual(self, a, b, places=7, msg=None, delta=None):
        if delta is not None:
            ok = abs(a - b) <= delta
        else:
            ok = round(abs(a - b), places) == 0
        if not ok:
            self.fail(msg or "%r != %r (approx)" % (a, b))

    def assertRaises(self, exc, fn=None, *args, **kw):
        ctx = _Raises(exc)
        if fn is None:
            return ctx
        with ctx:
            fn(*args, **kw)
        return ctx


def main():  # pragma: no cover - the runner in run_all.py is used instead
    raise SystemExit("use tests_host/mp/run_all.py")
