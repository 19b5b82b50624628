"""Carries out the scheduler's rounds with the DTU client.

This module decides nothing about timing: it asks the Scheduler when the next
round may start and what it consists of, runs it on one connection, closes
the connection, and reports the outcome back. The clock and the sleep are
injected, so the same code runs on the board, on a PC and in a test that
simulates a whole day.
"""
import asyncio

from dtu import messages, readings
from dtu import schemas as s
from dtu.client import DtuError, DtuTimeout
from gateway import health
from gateway.link import scheduler as sc

_WRITE_ACTIONS = {"limit": s.ACTION_LIMIT_POWER, "on": s.ACTION_MI_START,
                  "off": s.ACTION_MI_SHUTDOWN, "restart": s.ACTION_INV_REBOOT,
                  "reboot": s.ACTION_DTU_REBOOT}


class DtuLink:
    def __init__(self, sched, state, client, clock, sleep=None, on_round=None, on_dtu_time=None,
                 on_data=None, on_warnings=None):
        self.sched = sched
        self.state = state
        self.client = client
        self.clock = clock
        self.sleep = sleep or asyncio.sleep
        self.on_round = on_round          # called after each round (render, publish, events)
        self.on_dtu_time = on_dtu_time    # the DTU's clock, for a gateway without NTP
        self.on_data = on_data            # a fresh answer's readings, before they are shown (energy counters)
        self.on_warnings = on_warnings    # a fresh warning list (WarnMO dicts) -> how many are active
        self.running = False
        self.rounds = 0
        self._shown = None                # clock() when on_round (render) was last called
        self.rescue = None                # async rescue(link): the last rung (gateway.link.rescue)
        self.dtu_ap = None                # (ssid, password) of the DTU's own AP, from GetConfig
        # nothing sets this yet, so the scheduler's check of the DTU's clock against ours stays off
        self.clock_trusted = False
        self._wake = asyncio.Event()

    def wake(self):
        """Re-plan now (settings changed, or asked to stop)."""
        self._wake.set()

    async def _pause(self, seconds):
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def run(self):
        self.running = True
        while self.running:
            try:
                await self._pass()
            except Exception as e:  # a MemoryError while the heap is short, say: the link goes on
                try:
                    self.sched.note("link", "link loop: %r" % (e,), "error")
                    await self.sleep(1)
                except Exception:  # noqa: S110 - still short: the next pass tries again
                    pass

    async def _pass(self):
        """One turn: a wait, a rescue or a round."""
        now = self.clock()
        # the watchdog's heartbeat: back within the wait plus a round (selfheal.py)
        health.beat("link", max(5, self.sched.next_round(now) - now) + health.LINK_SLACK)
        if not self.sched.enabled or not self.sched.net_up:
            self.sched.conn = sc.CONN_STOPPED if not self.sched.enabled else sc.CONN_OFFLINE
            await self._sleep_or_wake(5)
            return
        if self.sched.want_rescue and self.rescue is not None:
            await self.rescue(self)     # the scheduler asked for the last rung
            return
        at = self.sched.next_round(now)
        if at > now:
            if self.sched.in_cloud_pause(now):
                self.sched.conn = sc.CONN_CLOUD_PAUSE
            stale_in = self.state.last_ok + self.state.stale_after - now
            wait = at - now
            # also when it turned stale right after the last render (in the
            # round's tail): else /api/data says fresh until the next round ends
            shown_fresh = self._shown is not None and \
                self._shown - self.state.last_ok <= self.state.stale_after
            if (0 < stale_in < wait or (stale_in <= 0 and shown_fresh)) and self.on_round:
                await self._sleep_or_wake(max(stale_in, 0) + 1)  # integral: see scheduler
                self._shown = self.clock()
                self.on_round(self)  # re-render: the data just turned stale
                return
            await self._sleep_or_wake(wait)
            return
        try:
            await self.round()
        except Exception as e:  # MemoryError, a bug: log it, keep polling
            self.sched.note("link", "round failed: %r" % (e,), "error")
            try:
                if self.on_round:
                    self.on_round(self)
            except Exception:  # noqa: S110 - already failing; the note is queued
                pass
            await self._sleep_or_wake(5)

    async def _sleep_or_wake(self, seconds):
        if self.sleep is asyncio.sleep:
            await self._pause(seconds)
        else:
            await self.sleep(seconds)  # simulated time

    async def round(self):
        sched = self.sched
        now = self.clock()
        steps = sched.plan_round(now)
        deadline = sched.deadline(now)
        ok = False
        failure = None
        limit = None
        client = self.client
        timeout = client.timeout
        try:
            for step in steps:
                if deadline is not None:
                    # never talk into an upload window, not even by waiting for an answer
                    left = deadline - self.clock() - 1
                    if left < 0.5:
                        break
                    client.timeout = client.connect_timeout = min(timeout, left)
                kind = step[0]
                if kind == sc.STEP_DATA:
                    limit = await self._data()
                    ok = True
                    want = sched.warnings_now(self.clock(), self.state.readings["inverter"]["warnings"], steps)
                    if want and (deadline is None or deadline - self.clock() - 1 >= 2 * timeout):
                        await self._warnings()     # two requests: both before the upload window
                elif kind == sc.STEP_CONFIRM:
                    await self._confirm(step[1], step[2])
                elif kind == sc.STEP_CONFIG:
                    await self._config()
                elif kind == sc.STEP_WRITE:
                    await self._write(step[1], step[2])
        except DtuError as e:
            self.state.poll_errors += 1
            if isinstance(e, DtuTimeout):
                self.state.timeouts += 1
            failure = "%s: %s" % (type(e).__name__, e)
        finally:
            client.timeout = client.connect_timeout = timeout
            await client.close()
        self.rounds += 1
        st = self.state
        if ok:
            if failure:
                sched.note("dtu", failure, "warn")     # a later step of an answered round
            st.polls += 1
            sched.round_done(self.clock(), True, st.dtu_time, limit, st.signature(), st.daylight(),
                             clock_trusted=self.clock_trusted, dark=st.dark())
        else:
            sched.round_done(self.clock(), False, why=failure)
        if self.on_round:
            self._shown = self.clock()
            self.on_round(self)

    async def _data(self):
        raw = await self.client.get_real_data()
        r = readings.real_data(raw)
        if self.on_data:
            self.on_data(r)
        st = self.state
        st.readings = r
        st.last_ok = self.clock()
        st.dtu_time = r["timestamp"]
        if r["dtu_serial"]:
            st.dtu_serial = r["dtu_serial"]
        if r["inverter"]["serial"]:
            st.inverter_serial = r["inverter"]["serial"]
        info = self.client.app_info
        if info:
            d = info.get("dtu_info", {})
            st.dtu_rssi = d.get("signal_strength", 0)
            st.dtu_version = readings.dtu_version(d.get("dtu_sw_version", 0))
        st.encrypted = self.client.cipher is not None
        if self.on_dtu_time and st.dtu_time:
            self.on_dtu_time(st.dtu_time)
        # An inverter asleep (link 0) reports limit 0: that is no news about the limit.
        return r["inverter"]["limit"] if raw.get("sgs_data") and r["inverter"]["link"] else None

    async def _confirm(self, action, tid):
        status = await self.client.command_status(action, tid)
        if status.get("mi_sns_sucs"):
            self.sched.confirmed(True)
        elif status.get("mi_sns_failds"):
            self.sched.confirmed(False)

    async def _config(self):
        try:
            cfg = await self.client.get_config(full=False)
        except DtuTimeout:
            if self.client.cipher is None:
                raise
            # V01.01.x firmware is known to leave GetConfig unanswered: not a hang.
            self.sched.config_result(self.clock(), silent=True)
            return
        self.sched.config_result(self.clock(), limit=readings.limit_from_config(cfg))
        if cfg.get("dtu_ap_ssid"):
            self.dtu_ap = (cfg["dtu_ap_ssid"], cfg.get("dtu_ap_pass", ""))

    async def _warnings(self):
        from gateway.lazy import unload
        try:
            warns = await self.client.get_warnings()
        except DtuError:
            self.sched.warnings_read(self.clock(), None)
            raise
        finally:
            unload("dtu.warn_schemas")     # read at connect and now and then: not kept
        self.sched.warnings_read(self.clock(), self.on_warnings(warns) if self.on_warnings else 0)

    async def _write(self, what, value):
        now = int(self.clock())
        action = _WRITE_ACTIONS[what]
        if what == "limit":
            req = messages.power_limit(value, now)
        elif what == "reboot":
            req = messages.dtu_reboot(now)
        else:
            req = messages.inverter_command(action, self.state.inverter_serial, now)
        # Counted as written before the answer: a DTU that got it but did not
        # answer has still been written to, and the 31 s rule must hold.
        self.sched.wrote(now, what, value, action, now)
        try:
            await self.client.request(*req, s.CommandReqDTO)
        finally:
            self.client.forget_session()  # a write may change what the DTU says of itself: the next round asks
