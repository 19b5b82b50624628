"""CPython-only property tests for gateway.settings and gateway.tz (hypothesis,
zoneinfo, datetime): what the board-side tests check by example, here checked
against independent implementations over many generated inputs."""
import datetime as dt
import shutil
import tempfile

import pytest

from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from gateway import tz  # noqa: E402
from gateway.settings import SCHEMA, Settings, SettingsError  # noqa: E402

try:
    from zoneinfo import ZoneInfo
    ZoneInfo("Europe/Berlin")
except Exception:  # pragma: no cover - no tzdata on this machine
    ZoneInfo = None

ZONES = (  # IANA name, POSIX string, first year the current rules apply
    ("Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3", 1997),
    ("Europe/London", "GMT0BST,M3.5.0/1,M10.5.0", 1997),
    ("Europe/Helsinki", "EET-2EEST,M3.5.0/3,M10.5.0/4", 1997),
    ("America/New_York", "EST5EDT,M3.2.0,M11.1.0", 2008),
    ("America/Los_Angeles", "PST8PDT,M3.2.0,M11.1.0", 2008),
    ("Australia/Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3", 2009),
    ("Asia/Kolkata", "<+0530>-5:30", 1946),
    ("America/Sao_Paulo", "<-03>3", 2020),
)


@pytest.mark.skipif(ZoneInfo is None, reason="no tzdata")
@pytest.mark.parametrize("name,posix,since", ZONES)
@hsettings(max_examples=300, deadline=None)
@given(frac=st.floats(min_value=0, max_value=1))
def test_offset_matches_tzdata(name, posix, since, frac):
    lo = int(dt.datetime(since, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    hi = int(dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    t = lo + int((hi - lo) * frac)
    want = int(dt.datetime.fromtimestamp(t, ZoneInfo(name)).utcoffset().total_seconds())
    assert tz.offset(tz.parse(posix), t) == want


@pytest.mark.skipif(ZoneInfo is None, reason="no tzdata")
@pytest.mark.parametrize("name,posix,since", ZONES[:6])
def test_every_switch_instant_2024_2040(name, posix, since):
    p, zi = tz.parse(posix), ZoneInfo(name)
    t = int(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    end = int(dt.datetime(2040, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    off = lambda u: int(dt.datetime.fromtimestamp(u, zi).utcoffset().total_seconds())  # noqa: E731
    while t < end:  # hourly steps, and both sides of every change
        if off(t) != off(t + 3600):
            for u in range(t, t + 3601, 900):
                assert tz.offset(p, u) == off(u), (name, u)
        t += 3600


@given(st.integers(min_value=-719162, max_value=2900000))
def test_calendar_matches_datetime(days):
    d = dt.date(1970, 1, 1) + dt.timedelta(days=days)
    assert tz.civil_from_days(days) == (d.year, d.month, d.day)
    assert tz.days_from_civil(d.year, d.month, d.day) == days
    assert tz.local_fields(days * 86400 + 3723, 0) == (d.year, d.month, d.day, 1, 2, 3, d.weekday())


@given(st.text(max_size=40))
def test_tz_parse_only_raises_valueerror(s):
    try:
        p = tz.parse(s)
    except ValueError:
        return
    assert isinstance(tz.offset(p, 1700000000), int)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 6, 10 ** 6),
                      st.floats(allow_nan=True), st.text(max_size=70))
keys = st.sampled_from([r[0] for r in SCHEMA] + ["dtu", "wifi", "x", "dtu.x", "interval", "port"])
bodies = st.recursive(json_leaf, lambda inner: st.dictionaries(keys, inner, max_size=6), max_leaves=12)


@pytest.fixture
def tmpdir_str():
    d = tempfile.mkdtemp()
    yield d
    shutil.rmtree(d)


@hsettings(max_examples=400, deadline=None)
@given(body=bodies)
def test_validate_only_raises_settingserror(body):
    s = Settings("/nonexistent-dir")
    try:
        out = s.validate(body)
    except SettingsError as e:
        assert e.field is None or isinstance(e.field, str)
        return
    rows = {r[0]: r for r in SCHEMA}
    for k, v in out.items():
        assert k in rows and v is not None


def test_valid_changes_round_trip(tmpdir_str):
    @hsettings(max_examples=150, deadline=None)
    @given(body=bodies)
    def inner(body):
        s = Settings(tmpdir_str)
        s.load()
        before = s.values()
        try:
            changed = s.update(body)
        except SettingsError:
            assert s.values() == before
            return
        s2 = Settings(tmpdir_str)
        assert s2.load() in ([], [("info", "no settings saved yet: using defaults")])
        assert s2.values() == s.values()
        for k, v in changed.items():
            assert before[k] != v and s.get(k) == v
        p = s.public()
        for r in SCHEMA:
            if r[5]:
                assert p[r[0]] == "" and p[r[0] + "_set"] is (s.get(r[0]) != "")
    inner()
