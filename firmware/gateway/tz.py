"""Local time from Unix time, without the board's time.localtime.

time.localtime/gmtime count from 2000 on some ports and know no time zones,
so the gateway does the calendar maths itself, in integers:

    p = parse("CET-1CEST,M3.5.0,M10.5.0/3")        # validated once (settings)
    off = offset(p, unix)                           # 3600 or 7200 in Berlin
    y, mo, d, h, mi, s, wd = local_fields(unix, off)

Accepted strings (parse raises ValueError with the reason for anything else):
  - "UTC" / "GMT" / "Z"
  - fixed offsets the way people write them, east of UTC positive:
    "+01:00", "-05:30", "+0530", "+2", "UTC+2", "UTC-05:30" (at most 14:00)
  - POSIX TZ strings (the last line of a tzdata file), where the offset is
    WEST of UTC positive, and DST rules use the Mm.w.d form
    (month, week 1-5 with 5 = last, weekday 0 = Sunday), transition time
    "/h[:mm[:ss]]" in local time, default 02:00:
      Europe/Berlin, Paris, Vienna  "CET-1CEST,M3.5.0,M10.5.0/3"
      Europe/London, Lisbon         "GMT0BST,M3.5.0/1,M10.5.0"
      Europe/Helsinki, Athens       "EET-2EEST,M3.5.0/3,M10.5.0/4"
      America/New_York              "EST5EDT,M3.2.0,M11.1.0"
      America/Chicago               "CST6CDT,M3.2.0,M11.1.0"
      America/Los_Angeles           "PST8PDT,M3.2.0,M11.1.0"
      Australia/Sydney              "AEST-10AEDT,M10.1.0,M4.1.0/3"
      Asia/Kolkata                  "<+0530>-5:30"     Asia/Tokyo  "JST-9"
    The Jn and n day forms are not supported (no current zone uses them).

parse() returns (std, dst, start, end): offsets in seconds east of UTC and the
two rules as (month, week, weekday, seconds) tuples, or None without DST.
"""
import time

from civil import civil_from_days, days_from_civil  # noqa: F401 (re-exported)

_DAY = 86400
_MDAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

try:  # Unix seconds from time.time(), whose epoch is 2000 on some ports
    _EPOCH = 946684800 if time.gmtime(0)[0] == 2000 else 0
except (AttributeError, OSError):  # pragma: no cover
    _EPOCH = 0


def now():
    """Unix time in whole seconds (right once the clock is set, e.g. by NTP)."""
    return int(time.time()) + _EPOCH


def local_fields(unix, offset):
    """(year, month, day, hour, minute, second, weekday) of unix + offset;
    weekday 0 = Monday, as in time.localtime."""
    days, rem = divmod(int(unix) + offset, _DAY)
    y, m, d = civil_from_days(days)
    return y, m, d, rem // 3600, rem // 60 % 60, rem % 60, (days + 3) % 7


def _num(s, i, lo, hi, what):
    # An unsigned decimal of 1-3 digits at s[i:], lo..hi -> (value, next i).
    j = i
    while j < len(s) and j - i < 3 and "0" <= s[j] <= "9":
        j += 1
    if j == i:
        raise ValueError("expected a number for the %s at position %d" % (what, i + 1))
    v = int(s[i:j])
    if not lo <= v <= hi:
        raise ValueError("%s %d out of range %d..%d" % (what, v, lo, hi))
    return v, j


def _hms(s, i, max_h, what):
    # [+|-]h[h][:mm[:ss]] -> (signed seconds, next i).
    sign = 1
    if i < len(s) and s[i] in "+-":
        sign = -1 if s[i] == "-" else 1
        i += 1
    h, i = _num(s, i, 0, max_h, what + " hours")
    secs = h * 3600
    for mul in (60, 1):
        if i < len(s) and s[i] == ":":
            v, i = _num(s, i + 1, 0, 59, what + (" minutes" if mul == 60 else " seconds"))
            secs += v * mul
        else:
            break
    return sign * secs, i


def _name(s, i):
    # A zone abbreviation: 3+ letters, or <...> with letters, digits, + and -.
    if i < len(s) and s[i] == "<":
        j = s.find(">", i)
        if j < 0:
            raise ValueError("unclosed '<' in zone name")
        n = s[i + 1:j]
        ok = all(c.isalpha() or c.isdigit() or c in "+-" for c in n)
        end = j + 1
    else:
        j = i
        while j < len(s) and ("a" <= s[j].lower() <= "z"):
            j += 1
        n, ok, end = s[i:j], True, j
    if len(n) < 3 or not ok:
        raise ValueError("zone name at position %d must be 3+ letters or <...>" % (i + 1))
    return end


def _rule(s, i):
    # ,Mm.w.d[/time] -> ((m, w, d, secs), next i)
    if s[i:i + 2] != ",M":
        raise ValueError("DST rules must look like ',M3.5.0,M10.5.0/3'")
    m, i = _num(s, i + 2, 1, 12, "month")
    if s[i:i + 1] != ".":
        raise ValueError("expected '.' after the month")
    w, i = _num(s, i + 1, 1, 5, "week")
    if s[i:i + 1] != ".":
        raise ValueError("expected '.' after the week")
    d, i = _num(s, i + 1, 0, 6, "weekday")
    t = 7200
    if s[i:i + 1] == "/":
        t, i = _hms(s, i + 1, 167, "transition")
    return (m, w, d, t), i


def _fixed(s):
    # "+01:00", "UTC-5", "+0530" -> seconds east, or None if not this form.
    body = s[3:] if s[:3].upper() in ("UTC", "GMT") else s
    if not body or body[0] not in "+-":
        return None
    digits = body[1:]
    if len(digits) == 4 and digits.isdigit():  # +hhmm
        digits = digits[:2] + ":" + digits[2:]
    off, i = _hms(body[0] + digits, 0, 14, "offset")
    if i != len(digits) + 1:
        raise ValueError("bad offset %r: use +hh:mm" % s)
    if abs(off) > 14 * 3600:
        raise ValueError("offset %s beyond 14:00" % s)
    return off


def parse(tz):
    """Validate and parse a zone string -> (std, dst, start, end); see above."""
    if not isinstance(tz, str) or not tz:
        raise ValueError("time zone must be a non-empty string")
    if " " in tz:
        raise ValueError("time zone must not contain spaces")
    if tz.upper() in ("UTC", "GMT", "Z"):
        return 0, 0, None, None
    off = _fixed(tz)
    if off is not None:
        return off, off, None, None
    i = _name(tz, 0)
    west, i = _hms(tz, i, 24, "offset")
    std = -west
    if i == len(tz):
        return std, std, None, None
    i = _name(tz, i)
    dst = std + 3600
    if i < len(tz) and tz[i] != ",":
        west, i = _hms(tz, i, 24, "DST offset")
        dst = -west
    if i == len(tz):
        raise ValueError("DST rules missing, e.g. ',M3.5.0,M10.5.0/3'")
    start, i = _rule(tz, i)
    if i == len(tz):
        raise ValueError("DST end rule missing")
    end, i = _rule(tz, i)
    if i != len(tz):
        raise ValueError("unexpected text after the DST rules: %r" % tz[i:])
    return std, dst, start, end


def _rule_local(y, rule):
    # Local seconds since the epoch at which a Mm.w.d/time rule fires in year y.
    m, w, d, t = rule
    first = days_from_civil(y, m, 1)
    day = (d - (first + 4)) % 7 + 7 * (w - 1)  # 1970-01-01 was a Thursday (4)
    mdays = _MDAYS[m - 1] + (1 if m == 2 and (y % 4 == 0 and y % 100 != 0 or y % 400 == 0) else 0)
    while day >= mdays:
        day -= 7
    return (first + day) * _DAY + t


def offset(parsed, unix):
    """Seconds east of UTC in the parsed zone at Unix time `unix`."""
    std, dst, start, end = parsed
    if start is None:
        return std
    y = civil_from_days((int(unix) + std) // _DAY)[0]
    s = _rule_local(y, start) - std  # the start time is in standard time
    e = _rule_local(y, end) - dst    # the end time is in daylight time
    if s < e:
        return dst if s <= unix < e else std
    return std if e <= unix < s else dst  # southern hemisphere


def localtime(parsed, unix):
    """local_fields() at Unix time `unix` in the parsed zone."""
    return local_fields(unix, offset(parsed, unix))
