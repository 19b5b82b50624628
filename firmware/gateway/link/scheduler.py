"""The DTU scheduler: every rule about when the gateway may talk to the DTU.

The DTU hangs for ~30 minutes when it is polled or written to too often, and
it loses its cloud upload when anyone talks to it meanwhile. So every decision
about contact lives here, and nowhere else:

  - request rounds (one connection, a short burst of requests) every
    `interval` s; never closer than the interval, spread evenly between cloud
    windows so that the pause does not age the data;         -> next_round()
  - writes (limit, inverter on/off/restart, DTU reboot): the latest wish wins,
    a value the DTU already has is not re-sent, never two writes closer than
    MIN_WRITE_GAP (31 s), confirmed by reading back, retried a bounded number
    of times;                                                  -> _write_step()
  - cloud pause: no round may start inside an upload window or so close to
    one that it could overlap it; the executor also gets the window's start
    as a hard deadline;                                        -> cloud_window()
  - health: failures back off; a DTU that answers with a dead or frozen clock
    or frozen readings in daylight is rebooted, at most once an hour; night
    (inverter asleep) is never a fault.                        -> round_done()
  - the inverter's warning list (two requests: Command action 50, then A304):
    read at connect, when RealDataNew's warning count changes, and every
    WARN_ROUNDS intervals while a warning is active (2 requests each, ~15
    an hour); action 50 is a Command, so it keeps the writes' 31 s spacing,
    and it shares a round with nothing but the data.
                                                               -> warnings_now()
  - night: the DTU is powered by the panels; one that stops answering after
    an answer without power and without sun on the panels is asleep, not
    failing: looked for every NIGHT_ROUNDS intervals (minutes), no recovery
    ladder, one event when it goes and one when it is back.    -> _failed()
  - the last rung: a DTU silent on the LAN for RESCUE_AFTER is sent the home
    WiFi credentials again through its own access point (dtu_rescue.py does
    it), at most every RESCUE_EVERY; no rounds while the gateway's own
    network is down (`net_up`), so that never counts as the DTU's fault.
                                                               -> _rescue_rule()

The scheduler is a pure function of the clock values passed in and its own
state: it does no I/O and never reads a clock, so a test can run a whole
simulated day in seconds against the simulator's rules.
"""

from micropython import const

MIN_WRITE_GAP = const(31)      # s between two writes of any kind
SAFE_INTERVAL = const(31)      # the proven-safe round spacing; less only for testing
CLOUD_GUARD = const(2)         # s a round must start before an upload window
SLACK = const(1)               # s added to every minimum gap: latency jitter must not
                               # bring two rounds or writes closer than 31 s at the DTU
CONFIG_EVERY = const(1800)     # s between GetConfig refreshes (the limit is in every RealDataNew too)
APP_INFO_EVERY = const(10800)  # s an AppInfoData is kept across rounds (asked again after a write, a bad reply)
MAX_BACKOFF = const(300)       # s, longest pause between failing rounds
REBOOT_EVERY = const(3600)     # s, the recovery ladder reboots the DTU at most this often
REBOOT_GRACE = const(180)      # s a rebooting DTU is given before failures count
LIMIT_RETRIES = const(3)       # writes of one value before giving up
LIMIT_SETTLE = const(5)        # s a new wish must rest before it is written (bursts coalesce)
CONFIRM_ROUNDS = const(2)      # rounds to wait for a confirmation before re-sending
STUCK_ROUNDS = const(4)        # rounds with the same DTU timestamp in daylight -> stuck
FROZEN_ROUNDS = const(10)      # rounds with identical readings in daylight -> frozen
LONG_SILENCE = const(600)      # s without an answer -> error state "no answer for long"
RESCUE_AFTER = const(1200)     # s of unanswered rounds before the DTU's AP is visited
RESCUE_EVERY = const(10800)    # s, at most one visit to the DTU's AP per 3 h
WARN_ROUNDS = const(15)        # intervals between reads of the warning list while one is active (~8 min)
NIGHT_ROUNDS = const(10)       # intervals between two looks for a DTU asleep (31 s -> ~5 min)
NIGHT_LONGEST = const(64800)   # s; a "night" longer than any (18 h) is a fault after all

# dtuConnState, numbered as in the peer firmware
CONN_OFFLINE = const(0)
CONN_CONNECTED = const(1)
CONN_CLOUD_PAUSE = const(2)
CONN_RECONNECTING = const(3)
CONN_DTU_REBOOT = const(4)
CONN_ERROR = const(5)
CONN_STOPPED = const(6)
CONN_INV_REBOOT = const(7)
CONN_NIGHT = const(8)          # ours: asleep with the panels (not a fault)
# the states as words (MQTT, openHAB, /api/info), in the order of the numbers
CONN_WORDS = ("offline", "connected", "cloud_pause", "reconnecting", "dtu_reboot",
              "connect_error", "stopped", "inverter_reboot", "night")

# dtuErrorState
ERR_OK = const(0)
ERR_NO_TIME = const(1)
ERR_TIME_DIFF = const(2)
ERR_FROZEN = const(3)
ERR_NO_ANSWER = const(4)
ERROR_WORDS = ("ok", "no_time", "time_diff", "frozen", "no_answer")


def word(words, i):
    """CONN_WORDS or ERROR_WORDS for state i (its number if there is none)."""
    return words[i] if 0 <= i < len(words) else str(i)

# Round steps (tuples: (kind, ...))
STEP_DATA = "data"
STEP_CONFIG = "config"
STEP_CONFIRM = "confirm"     # ("confirm", action, tid)
STEP_WRITE = "write"         # ("write", what, value) what: limit|on|off|restart|reboot

SCHEDULES = {"5min": (300, 290), "15min": (900, 890)}  # period, window offset in it


def cloud_window(t, schedule="5min", seconds=30):
    """(start, end) of the upload window that contains t, else of the next one.

    Current firmware uploads every 5 minutes: from second 50 of every minute
    ending in 4 or 9, for `seconds`; old firmware every 15 minutes (:14:50,
    :29:50, ...). Minutes are the same in every time zone a DTU can be in
    (offsets are whole quarter hours), so Unix time works directly.
    """
    period, offs = SCHEDULES[schedule]
    base = t - t % period
    start = base + offs - period
    if t >= start + seconds:
        start += period
    return start, start + seconds


class Scheduler:
    def __init__(self, interval=SAFE_INTERVAL, cloud_pause=True, cloud_seconds=30,
                 cloud_schedule="5min"):
        self.configure(interval, cloud_pause, cloud_seconds, cloud_schedule)
        self.enabled = True
        self.last_round = None         # start time of the last round
        self.last_ok = None            # time of the last answered round
        self.last_write = None
        self.last_config = None
        self.config_supported = True   # encrypted firmware may never answer GetConfig
        self.failures = 0
        self.conn = CONN_OFFLINE
        self.error = ERR_OK
        self.notes = []                # (level, kind, message) for the events log
        # writes
        self.want_limit = None         # the latest wish (percent), None = none
        self.want_power = None         # True on, False off, None = leave it
        self.want_restart = False
        self.want_reboot = False
        self.wish_since = None         # when the unwritten limit wish appeared
        self.wish_changed = None       # when it last changed
        self.dtu_limit = None          # what the DTU reports
        self.inverter_on = True
        self.pending = None            # (what, value, action, tid, sent_at, rounds_waited)
        self.sent = {}                 # what -> (value, tries): retry bookkeeping
        # health
        self.last_ts = None
        self.ts_same = 0
        self.last_sig = None
        self.sig_same = 0
        self.last_reboot = None
        self.recoveries = 0
        # the last rung (the app sets rescue_possible: home WiFi up, DTU AP known)
        self.net_up = True             # the gateway's own network; no rounds without it
        self.rescue_possible = False
        self.want_rescue = False
        self.fail_since = None         # first unanswered round since the last answer
        self.last_rescue = None
        # night: whether the last answer had no power and no sun on the panels
        # (None: no answer yet; the app seeds it from before a restart)
        self.dark = None
        self.night = False             # asleep with the panels since fail_since
        # the warning list: due at connect and when the DTU's count changes
        self.warn_due = True
        self.warn_count = None         # RealDataNew's warning_number when it was last seen
        self.warn_active = 0           # active warnings in the last list read
        self.warn_read = None          # when the list was last asked for (read or failed)
        self.warn_failed = False       # the last ask was not answered

    def configure(self, interval, cloud_pause, cloud_seconds, cloud_schedule="5min"):
        if cloud_schedule not in SCHEDULES:
            raise ValueError("unknown cloud schedule")
        self.interval = interval
        self.cloud_pause = cloud_pause and cloud_seconds > 0
        self.cloud_seconds = cloud_seconds
        self.cloud_schedule = cloud_schedule

    def note(self, kind, msg, level="info"):
        self.notes.append((level, kind, msg))

    def take_notes(self):
        n = self.notes
        self.notes = []
        return n

    # ---- wishes: the commands of gateway.link.commands, through Gateway.command() ----

    def request_limit(self, percent, now):
        """Queue a power limit in percent (0..100, checked by the command);
        0 switches the inverter off, 1 is raised to 2 (the inverter's
        minimum). Returns the queued value."""
        if self.wish_since is None:
            self.wish_since = now
        self.wish_changed = now
        if percent == 0:
            self.want_power = False
        else:
            percent = max(percent, 2)
            self.want_power = True
            self.want_limit = percent
        return percent

    def request_restart(self):
        self.want_restart = True

    def request_reboot(self):
        self.want_reboot = True

    @property
    def writes_pending(self):
        """A wish not yet sent, or sent and not yet confirmed."""
        return self._write_needed() is not None or self.pending is not None

    # ---- when ---------------------------------------------------------------

    def in_cloud_pause(self, t):
        if not self.cloud_pause:
            return False
        start, end = cloud_window(t, self.cloud_schedule, self.cloud_seconds)
        return start - CLOUD_GUARD <= t < end

    def deadline(self, t):
        """The time by which a round starting at t must have finished."""
        if not self.cloud_pause:
            return None
        return cloud_window(t, self.cloud_schedule, self.cloud_seconds)[0]

    def gap(self):
        """Spacing of rounds: the interval, stretched while the DTU fails."""
        base = self.interval + SLACK if self.interval >= SAFE_INTERVAL else self.interval
        if self.night:
            return base * NIGHT_ROUNDS
        if self.failures <= 1:
            return base
        return min(MAX_BACKOFF, max(base, self.interval * (1 << min(self.failures - 1, 5))))

    def next_round(self, now):
        """The earliest time the next round may start (>= now)."""
        gap = self.gap()
        last = self.last_round
        t = now if last is None else max(now, last + gap)
        if not self.cloud_pause:
            return t
        start, end = cloud_window(t, self.cloud_schedule, self.cloud_seconds)
        if start - CLOUD_GUARD <= t < end:
            return end  # t >= last + gap already, so end is too
        if last is not None and self.failures == 0 and not self.night:
            # Spread the remaining rounds evenly up to the window, so that one
            # lands right before it and the pause costs no data age.
            room = start - CLOUD_GUARD - 1 - last  # 1 s of margin for rounding
            n = int(room // gap)
            if n >= 1:
                # floor division: the boards' floats are single precision
                # (a Unix time as float is off by a minute), so stay integral
                t = max(t, last + room // n)
        return t

    # ---- what ---------------------------------------------------------------

    def plan_round(self, now):
        """The steps of the round starting now; marks the round as started."""
        self.last_round = now
        steps = [(STEP_DATA,)]
        if self.pending is not None:
            what, value, action, tid = self.pending[:4]
            if action:
                steps.append((STEP_CONFIRM, action, tid))
        if self.config_supported and (self.last_config is None or now - self.last_config >= CONFIG_EVERY):
            steps.append((STEP_CONFIG,))
        w = self._write_step(now)
        if w is not None:
            steps.append(w)
        return steps

    def warnings_now(self, now, count, steps):
        """Asked by the executor right after the data step, with RealDataNew's
        warning count: whether to read the warning list in this round (a
        change is read at once, in the round that saw it). Only when the
        round carries nothing else: a GetConfig that times out (some
        encrypted firmware never answers it) would leave the next request
        seconds later, where the DTU counts it as a second round."""
        if count != self.warn_count:
            if self.warn_count is not None:
                self.warn_due = True
                self.warn_failed = False
            self.warn_count = count
        if len(steps) != 1:
            return False
        if self.last_write is not None and now - self.last_write < MIN_WRITE_GAP + SLACK:
            return False
        since = None if self.warn_read is None else now - self.warn_read
        if self.warn_due:
            # a failed read is not retried every round: a DTU that never
            # answers A304 would cost a timeout each time
            return not self.warn_failed or since >= self.interval * WARN_ROUNDS
        return self.warn_active > 0 and since is not None and since >= self.interval * WARN_ROUNDS

    def warnings_read(self, now, active):
        """The executor asked for the warning list: `active` warnings in it,
        None when it was not answered. Action 50 was a Command: writes wait."""
        self.warn_read = now
        self.last_write = now
        self.warn_failed = active is None
        if active is not None:
            self.warn_due = False
            self.warn_active = active

    def _write_needed(self):
        if self.want_reboot:
            return ("reboot", None)
        if self.want_power is False and self.inverter_on:
            return ("off", 0)
        if self.want_power and not self.inverter_on:
            return ("on", 1)
        if self.want_restart:
            return ("restart", None)
        if self.want_limit is not None and self.want_limit != self.dtu_limit:
            return ("limit", self.want_limit)
        return None

    def _write_step(self, now):
        if self.last_write is not None and now - self.last_write < MIN_WRITE_GAP + SLACK:
            return None
        need = self._write_needed()
        if need is None:
            self.wish_since = None  # nothing to write: the next wish starts afresh
            return None
        what, value = need
        if what in ("limit", "on", "off") and self.wish_changed is not None \
                and now - self.wish_changed < LIMIT_SETTLE and now - self.wish_since < self.interval:
            return None  # a burst of requests is still arriving: let it settle, latest wins
        p = self.pending
        if p is not None and p[0] == what and p[1] == value and p[5] < CONFIRM_ROUNDS:
            return None  # sent already, waiting for the read-back
        tries = self.sent.get(what, (None, 0))
        tries = tries[1] if tries[0] == value else 0
        if tries >= LIMIT_RETRIES:
            return None  # given up on this value; a new wish starts afresh
        return (STEP_WRITE, what, value)

    # ---- results --------------------------------------------------------------

    def wrote(self, now, what, value, action, tid):
        """The executor sent a write (whether or not it was answered)."""
        self.last_write = now
        if what in ("limit", "on", "off"):
            self.wish_since = None
        prev = self.sent.get(what, (None, 0))
        self.sent[what] = (value, prev[1] + 1 if prev[0] == value else 1)
        self.pending = (what, value, action, tid, now, 0)
        if what == "reboot":
            self.want_reboot = False
            self.last_reboot = now
            self.conn = CONN_DTU_REBOOT
            self.pending = None
        elif what == "restart":
            self.want_restart = False
            self.conn = CONN_INV_REBOOT
        self.note("write", "%s %s sent" % (what, "" if value is None else value))

    def confirmed(self, ok=True):
        """A confirmation (CommandStatus) came back for the pending write."""
        p = self.pending
        if p is None:
            return
        what, value = p[0], p[1]
        if ok:
            self._applied(what, value)
        self.pending = None if ok else p

    def _applied(self, what, value):
        if what == "limit":
            self.dtu_limit = value
        elif what == "off":
            self.inverter_on = False
        elif what == "on":
            self.inverter_on = True
        self.sent.pop(what, None)
        self.pending = None
        self.note("write", "%s %s applied" % (what, "" if value is None else value))

    def config_result(self, now, limit=None, silent=False):
        """GetConfig answered (with the DTU's limit in percent) or stayed silent."""
        self.last_config = now
        if silent:
            self.config_supported = False
            self.note("config", "GetConfig unanswered: limit read from real-time data")
        elif limit is not None:
            self.dtu_limit = limit

    def round_done(self, now, ok, timestamp=0, limit=None, signature=None, daylight=False,
                   clock_trusted=False, dark=False, why=None):
        """Feed back the outcome of a round: whether the DTU answered, its clock,
        the limit it reports, a signature of the readings (to spot frozen
        data), whether the inverter is awake and whether the answer had no
        power and no sun on the panels (dark: the dusk). why: what failed."""
        if self.pending is not None:
            p = self.pending
            if p[0] == "limit" and limit is not None and limit == p[1]:
                self._applied("limit", p[1])
            else:
                self.pending = p[:5] + (p[5] + 1,)
                if self.pending[5] > CONFIRM_ROUNDS + 1:
                    self.note("write", "%s %s not confirmed" % (p[0], p[1]), "warn")
                    self.pending = None
        if not ok:
            return self._failed(now, why)
        if self.failures or self.night:
            self.warn_due = True           # back after an absence: its list may have changed
        if self.night:
            self.note("dtu", "awake again after the night")
        elif self.failures:
            self.note("dtu", "answering again after %d failed rounds" % self.failures)
        self.failures = 0
        self.night = False
        self.dark = dark
        self.fail_since = None
        self.last_ok = now
        self.conn = CONN_CONNECTED
        if limit is not None and self.pending is None:
            self.dtu_limit = limit
        self.error = ERR_OK
        if not timestamp:
            self.error = ERR_NO_TIME
        elif clock_trusted and abs(timestamp - now) > 300:
            self.error = ERR_TIME_DIFF
        if daylight:
            self.ts_same = self.ts_same + 1 if timestamp == self.last_ts else 0
            self.sig_same = self.sig_same + 1 if signature == self.last_sig else 0
            if self.sig_same >= FROZEN_ROUNDS:
                self.error = ERR_FROZEN
            if self.ts_same >= STUCK_ROUNDS or self.sig_same >= FROZEN_ROUNDS:
                self._recover(now, "DTU answers with %s" % ("a stuck clock" if self.ts_same >= STUCK_ROUNDS else "frozen readings"))
        else:
            self.ts_same = self.sig_same = 0  # night: the inverter sleeps, that is fine
        self.last_ts = timestamp
        self.last_sig = signature

    def _failed(self, now, why):
        if self.fail_since is None:
            self.fail_since = now
        rebooting = self.last_reboot is not None and now - self.last_reboot < REBOOT_GRACE
        if rebooting:
            self.conn = CONN_DTU_REBOOT
            return      # not a failure yet: no back-off, so it is seen back within an interval
        if self.dark and now - self.fail_since < NIGHT_LONGEST:
            # gone after the dusk's zeros: asleep until the sun powers it again;
            # a DTU silent after answers with power (at noon, say) is a fault
            if not self.night:
                self.night = True
                self.note("dtu", "asleep for the night (no answer after zero power); "
                          "looked for every %d min" % (self.gap() // 60))
            self.conn = CONN_NIGHT
            return      # and no event per look: the night's log stays readable
        if why:
            self.note("dtu", why, "warn")
        if self.night:
            self.night = False
            self.note("dtu", "no answer for %d h since the dusk: no longer taken for the night"
                      % ((now - self.fail_since) // 3600), "warn")
        self.failures += 1
        self.conn = CONN_RECONNECTING if self.failures < 3 else CONN_ERROR
        if self.last_ok is None or now - self.last_ok >= LONG_SILENCE:
            self.error = ERR_NO_ANSWER
        self.note("dtu", "no answer (%d in a row), next try in %d s" % (self.failures, self.gap()),
                   "warn")
        self._rescue_rule(now)

    def _rescue_rule(self, now):
        # The last rung: silent on the LAN for RESCUE_AFTER (the earlier rungs,
        # back-off and reboot, did not help), and no visit in RESCUE_EVERY.
        if self.want_rescue or not self.rescue_possible or now - self.fail_since < RESCUE_AFTER:
            return
        if self.last_rescue is not None and now - self.last_rescue < RESCUE_EVERY:
            return
        self.want_rescue = True
        self.note("recovery", "DTU silent for %d min: re-sending the WiFi credentials "
                   "through its access point" % ((now - self.fail_since) // 60), "warn")

    def rescue_done(self, now, ok):
        """The executor visited the DTU's AP; ok: SetConfig was answered (the
        DTU then rejoins the WiFi: ~1.5 min, treated like a reboot)."""
        self.want_rescue = False
        self.last_rescue = now
        if ok:
            self.last_write = now         # SetConfig is a write: the 31 s rule holds
            self.last_reboot = now
            self.conn = CONN_DTU_REBOOT
            self.failures = min(self.failures, 1)   # poll at the interval again
            self.recoveries += 1
        self.note("recovery", "WiFi credentials re-sent through the DTU's access point" if ok
                   else "visit to the DTU's access point failed", "info" if ok else "warn")

    def _recover(self, now, why):
        if self.last_reboot is not None and now - self.last_reboot < REBOOT_EVERY:
            return
        self.want_reboot = True
        self.recoveries += 1
        self.ts_same = self.sig_same = 0
        self.note("recovery", why + ": rebooting the DTU", "warn")
