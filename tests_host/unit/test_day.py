"""A simulated day: the real gateway (scheduler, DTU link, client, state)
against the simulator's model with its hang and cloud-upload rules on.

What the DTU must never suffer is counted by the model itself: a hang
induced by rounds or writes closer than 31 s, an upload disturbed by contact
during a cloud window. Virtual time: 24 h run in a few seconds.
"""
import pytest

from dtu import schemas as s
from gateway.link import scheduler as sc
from gateway.link.commands import SET_LIMIT, Command
from support.vdtu import VirtualRun, day_start

DAY = day_start()            # 2024-06-17 00:00 UTC; the model's sun is up 06:00-20:00
INTERVAL = 31


def counters(run):
    return run.model.status()["counters"]


def assert_dtu_safe(run):
    c = counters(run)
    assert c["hangs_induced"] == 0, run.model.hang_reasons
    assert c["uploads_disturbed"] == 0


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_healthy_day(encrypted):
    run = VirtualRun(DAY, hours=24, encrypted=encrypted).run()
    try:
        assert_dtu_safe(run)
        c = counters(run)
        assert c["reboots"] == 0 and c["writes_received"] == 0   # night is not a fault
        assert len(run.ok_times) > 2400                           # ~one round every 33 s
        assert run.data_age_p95(DAY + 60, DAY + 86400) <= INTERVAL + 5
        gaps = [b - a for a, b in zip(run.round_times, run.round_times[1:])]
        assert min(gaps) >= INTERVAL
        assert run.gw.sched.conn == sc.CONN_CONNECTED and run.gw.sched.error == sc.ERR_OK
        assert run.gw.state.encrypted is encrypted
    finally:
        run.close()


def test_old_15min_cloud_schedule():
    run = VirtualRun(DAY + 8 * 3600, hours=6, cloud_schedule="15min",
                     settings={"dtu.cloud_schedule": "15min"}).run()
    try:
        assert_dtu_safe(run)
        assert run.data_age_p95(DAY + 8 * 3600 + 60, run.clock.until) <= INTERVAL + 5
    finally:
        run.close()


def test_cloud_pause_off_still_spaces_rounds():
    run = VirtualRun(DAY + 10 * 3600, hours=2, cloud=False,
                     settings={"dtu.cloud_pause": False}).run()
    try:
        assert counters(run)["hangs_induced"] == 0
        gaps = [b - a for a, b in zip(run.round_times, run.round_times[1:])]
        assert min(gaps) >= INTERVAL and max(gaps) < INTERVAL + 2
    finally:
        run.close()


def test_limit_requests_coalesced_and_applied_in_time():
    """Bursts of three requests a few seconds apart, every 23 minutes, all
    day: each burst reaches the DTU as one write of its last value, within one
    interval + 31 s, and no two writes are closer than 31 s."""
    start = DAY + 5 * 3600
    run = VirtualRun(start, hours=12)
    bursts = []
    values = [80, 55, 30, 95, 100, 42, 67, 12]
    for i in range(30):
        t = start + 600 + i * 23 * 60
        burst = [values[(i + k) % len(values)] for k in range(3)]
        for k, v in enumerate(burst):
            run.clock.at(t + 2 * k, lambda v=v: run.gw.command(Command(SET_LIMIT, v), "api"))
        bursts.append((t + 4, burst[-1]))
    applied = {}

    def after_round():
        applied.setdefault(run.model.limit, []).append(run.clock())
    run.after_round = after_round
    writes = []
    real_receive = run.model.receive

    def receive(conn, data):
        before = counters(run)["limit_writes"]
        reply = real_receive(conn, data)
        if counters(run)["limit_writes"] != before:
            writes.append((run.clock(), run.model.limit))
        return reply
    run.model.receive = receive
    run.run()
    try:
        assert_dtu_safe(run)
        expected = []
        for i, (t, v) in enumerate(bursts):
            if not expected or expected[-1] != v:
                expected.append(v)
        assert [v for _, v in writes] == expected       # coalesced: one write per burst
        for (t, v), (wt, wv) in zip(bursts, writes):
            assert wv == v and t <= wt <= t + INTERVAL + 31
        gaps = [b[0] - a[0] for a, b in zip(writes, writes[1:])]
        assert min(gaps) >= 31
        assert not run.gw.sched.writes_pending
        assert run.model.limit == bursts[-1][1]
    finally:
        run.close()


def test_repeated_limit_is_not_resent():
    start = DAY + 9 * 3600
    run = VirtualRun(start, hours=1)
    for k in range(6):
        run.clock.at(start + 100 + k * 300, lambda: run.gw.command(Command(SET_LIMIT, 70), "api"))
    run.run()
    try:
        assert counters(run)["limit_writes"] == 1
        assert run.model.limit == 70
        assert_dtu_safe(run)
    finally:
        run.close()


def test_zero_switches_inverter_off_and_back_on():
    start = DAY + 11 * 3600
    run = VirtualRun(start, hours=1)
    run.clock.at(start + 100, lambda: run.gw.command(Command(SET_LIMIT, 0), "api"))
    seen = {}

    def after_round():
        seen.setdefault(run.model.inverter.on, run.clock())
    run.after_round = after_round
    run.clock.at(start + 1200, lambda: run.gw.command(Command(SET_LIMIT, 60), "api"))
    run.run()
    try:
        assert_dtu_safe(run)
        assert False in seen                       # it was switched off
        assert run.model.inverter.on is True and run.model.limit == 60
        data = run.gw.state.data.decode()
        assert '"active": 1' in data
    finally:
        run.close()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_faults_during_the_day(encrypted):
    """Silence for 30 minutes, a reboot (new enc_rand), dropped connections,
    garbage, bad CRC, slow replies: the gateway reports each, recovers
    by itself and never induces a hang or spoils an upload."""
    start = DAY + 8 * 3600
    run = VirtualRun(start, hours=8, encrypted=encrypted)
    m = run.model
    marks = {}

    def mark(name, fn):
        def go():
            marks[name] = run.clock()
            fn()
        return go
    run.clock.at(start + 1800, mark("silent", lambda: m.set_fault("silent", duration=1800)))
    run.clock.at(start + 3 * 3600, mark("reboot", lambda: m.set_fault("reboot", seconds=60)))
    run.clock.at(start + 4 * 3600, mark("drop", lambda: m.set_fault("drop", times=3)))
    run.clock.at(start + 5 * 3600, mark("garbage", lambda: m.set_fault("garbage", times=3)))
    run.clock.at(start + 6 * 3600, mark("badcrc", lambda: m.set_fault("badcrc", times=3)))
    run.clock.at(start + 7 * 3600, mark("slow", lambda: m.set_fault("slow", times=5)))
    states = []

    def after_round():
        states.append((run.clock(), run.gw.sched.conn, run.gw.sched.error,
                       run.gw.state.fresh(run.clock())))
    run.after_round = after_round
    old_rand = m.enc_rand
    run.run()
    try:
        assert_dtu_safe(run)
        if encrypted:
            assert m.enc_rand != old_rand      # the reboot changed the key seed
        # during the silence: reconnecting, then "no answer for long"
        during = [st for st in states if marks["silent"] + 60 < st[0] < marks["silent"] + 1800]
        assert during and all(c in (sc.CONN_RECONNECTING, sc.CONN_ERROR) for _, c, _, _ in during)
        assert any(e == sc.ERR_NO_ANSWER for _, _, e, _ in during)
        assert not any(f for t, _, _, f in during if t > marks["silent"] + 2 * INTERVAL + 40)
        # recovered within the longest back-off after every fault
        for name, t in marks.items():
            end = t + (1800 if name == "silent" else 60 if name == "reboot" else 0)
            after = [st for st in states if st[0] > end + sc.MAX_BACKOFF + INTERVAL]
            assert after and after[0][1] == sc.CONN_CONNECTED and after[0][3], name
        assert run.data_age_p95(start + 60, start + 1800) <= INTERVAL + 5
        assert run.gw.sched.conn == sc.CONN_CONNECTED
        kinds = [e["msg"] for e in run.gw.events.items()]
        assert any("no answer" in k for k in kinds)
    finally:
        run.close()


def test_frozen_dtu_in_daylight_is_rebooted_at_most_hourly():
    start = DAY + 10 * 3600
    run = VirtualRun(start, hours=3)
    m = run.model
    frozen = {}
    handlers = dict(type(m)._HANDLERS)
    real = handlers[s.TAG_REAL_DATA_NEW]

    def stuck(model, req, now):
        if "msg" not in frozen:
            frozen["msg"] = real(model, req, now)
        return frozen["msg"]
    handlers[s.TAG_REAL_DATA_NEW] = stuck
    run.clock.at(start + 600, lambda: setattr(m, "_HANDLERS", handlers))
    run.run()
    try:
        assert_dtu_safe(run)
        reboots = counters(run)["reboots"]
        assert 1 <= reboots <= 3                   # once per hour at most, over 3 h
        assert any("rebooting the DTU" in e["msg"] for e in run.gw.events.items())
    finally:
        run.close()


def test_encrypted_dtu_that_never_answers_getconfig():
    """V01.01.x firmware may leave GetConfig unanswered: the limit then comes
    from the real-time data, and the silence is not taken for a hung DTU."""
    start = DAY + 9 * 3600
    run = VirtualRun(start, hours=2, encrypted=True, getconfig_silent=True)
    run.clock.at(start + 900, lambda: run.gw.command(Command(SET_LIMIT, 65), "api"))
    run.run()
    try:
        assert_dtu_safe(run)
        sched = run.gw.sched
        assert sched.config_supported is False
        assert counters(run)["reboots"] == 0 and sched.recoveries == 0
        assert sched.conn == sc.CONN_CONNECTED and sched.error == sc.ERR_OK
        assert run.model.limit == 65 and sched.dtu_limit == 65   # read back from real-time data
        assert '"pLim": 65' in run.gw.state.data.decode()
        assert counters(run)["unanswered"] == 1                  # asked once, never again
    finally:
        run.close()


def test_the_link_outlives_a_memory_error_between_rounds():
    # A heap run short by something else (a crowd of web clients, say) can
    # fail any allocation, also while the link only waits: it must go on.
    run = VirtualRun(DAY + 12 * 3600, hours=1)
    sleep, calls = run.gw.link.sleep, []

    async def short_of_memory(seconds):
        calls.append(seconds)
        if len(calls) in (3, 9):
            raise MemoryError("memory allocation failed, allocating 88 bytes")
        await sleep(seconds)
    run.gw.link.sleep = short_of_memory
    run.run()
    try:
        notes = [e for e in run.gw.events.items() if e["kind"] == "link" and "MemoryError" in e["msg"]]
        assert len(notes) == 1 and notes[0]["count"] == 2, notes     # repeats fold into one entry
        assert len(run.ok_times) > 100                       # ~one round every 31 s, all hour
        assert run.ok_times[-1] > DAY + 12 * 3600 + 3500
        assert_dtu_safe(run)
    finally:
        run.close()


# ---- dusk, night, dawn: the energy counters (issue 17) ------------------------

def _published(run):
    """The lifetime and today's totals as /api/data, MQTT (the value topics)
    and /metrics show them now."""
    import json

    from gateway.integrations import metrics, values
    d = json.loads(run.gw.data_now())
    mqtt = dict(values.readings(run.gw.state))
    prom = {}
    for line in "".join(metrics.lines(run.gw)).splitlines():
        if line.startswith("dtu_grid_energy_"):
            k, v = line.split()
            prom[k] = float(v)
    return {"api": (d["grid"]["tE"], d["grid"]["dE"], d["pv0"]["tE"], d["pv1"]["tE"]),
            "mqtt": (float(mqtt["grid/tE"]), float(mqtt["grid/dE"])) if mqtt else None,
            "metrics": (prom.get("dtu_grid_energy_kwh_total"), prom.get("dtu_grid_energy_today_kwh"))}


def test_dusk_night_and_dawn_never_lower_the_totals():
    # the field's dusk: 20 min of zeros after the 20:00 sunset, then off the network until 06:00
    seen = {}
    run = VirtualRun(DAY + 18 * 3600, hours=13.5, dusk_seconds=1200)
    marks = {"evening": 19.9, "dusk": 20.2, "night": 23.5, "after midnight": 24.5, "dawn": 31.0}
    for name, hour in marks.items():
        run.clock.at(DAY + hour * 3600, lambda name=name: seen.__setitem__(name, _published(run)))
    try:
        run.run()
        ev, dusk, night, late, dawn = (seen[k] for k in marks)
        total, today = ev["api"][0], ev["api"][1]
        assert total > 1000 and today > 0
        for when in (dusk, night):         # zeros at dusk, nothing at night: the evening's figures stay
            assert when["api"][0] >= total and when["api"][1] >= today, when
            assert when["mqtt"][0] >= total and when["metrics"][0] >= total, when
            assert when["api"][2] > 0 and when["api"][3] > 0, when
        assert late["api"][0] >= total and late["api"][1] == 0          # local midnight: today is 0
        assert late["mqtt"] == (late["api"][0], 0.0) and late["metrics"] == (late["api"][0], 0.0)
        assert dawn["api"][0] >= late["api"][0] and dawn["api"][1] > 0  # the morning's first harvest
        assert run.model.status()["counters"]["refused"] > 0           # it really was off the network
        assert_dtu_safe(run)
        # a reboot in the night: before the first answer the kept totals, not 0
        from gateway.app import Gateway
        again = Gateway(run.board, dtu_override="dtu.sim:10081")
        import json
        d = json.loads(again.data_now())
        assert d["grid"]["tE"] >= late["api"][0] > 0 and d["pv0"]["tE"] > 0
    finally:
        run.close()


def test_the_night_is_quiet_and_not_a_fault():
    # the field's dusk (20 min of zeros after the 20:00 sunset, then off the
    # network until 06:00): "night", 0 W with the kept totals, a look every few
    # minutes, no recovery ladder, no event per look; back at the first answer
    import json

    from gateway.integrations import values
    run = VirtualRun(DAY + 19 * 3600, hours=12, dusk_seconds=1200)
    run.gw.sched.rescue_possible = True        # the last rung could be taken: it must not be
    seen = []

    def after_round():
        now = run.clock()
        d = json.loads(run.gw.data_now())
        word = dict(values.status(run.gw.state, run.gw.sched, now))["dtu/connection"]
        seen.append((now, d["dtuConnState"], word, d["grid"]["p"], d["grid"]["tE"], run.model.state(now),
                     run.gw.sched.want_rescue))
    run.after_round = after_round
    restarted = []

    def restart():
        # a gateway restarted in the night knows the DTU went to sleep (energy.json):
        # silent now is the night, not a fault
        from gateway.app import Gateway
        again = Gateway(run.board, dtu_override="dtu.sim:10081")
        again.sched.round_done(run.clock(), False, why="refused")
        restarted.append(again.sched.conn)
    run.clock.at(DAY + 23 * 3600, restart)
    try:
        run.run()
        assert restarted == [sc.CONN_NIGHT]
        sunrise = DAY + 30 * 3600
        night = [x for x in seen if DAY + 20.5 * 3600 < x[0] < sunrise]
        assert night and all(x[1:3] == (sc.CONN_NIGHT, "night") for x in night), night[:3]
        assert all(x[3] == 0 and x[4] > 1000 for x in night)          # 0 W, the kept total
        looks = [x[0] for x in night]
        assert min(b - a for a, b in zip(looks, looks[1:])) >= 5 * 60  # minutes, not seconds
        assert len(looks) <= 9.5 * 3600 / 300 + 1
        kinds = [(e["kind"], e["msg"]) for e in run.gw.events.items() if DAY + 20 * 3600 < e["t"] < sunrise + 3600]
        assert not [k for k in kinds if k[0] == "recovery"], kinds
        assert len([k for k in kinds if k[0] == "dtu"]) == 2, kinds   # asleep, awake: no event per look
        assert not any(x[6] for x in night) and run.gw.sched.recoveries == 0
        # the morning: back with the first look after the DTU is on the network again
        first = next(x for x in seen if x[0] >= sunrise and x[1] == sc.CONN_CONNECTED)
        assert first[0] - sunrise <= sc.NIGHT_ROUNDS * (INTERVAL + sc.SLACK) + 5, first
        late = [x for x in seen if x[0] > first[0] + 600]
        assert late and all(x[1] == sc.CONN_CONNECTED for x in late)
        assert_dtu_safe(run)
    finally:
        run.close()


# ---- the DTU traffic (issue 17, item 3) ---------------------------------------

def test_one_request_a_round_at_the_same_freshness():
    # a simulated hour at the defaults (31 s rounds, cloud pauses on): RealDataNew every
    # round, AppInfoData once (kept for hours), GetConfig every 30 min
    run = VirtualRun(DAY + 11 * 3600, hours=1.0)
    try:
        run.run()
        c = counters(run)
        assert 100 <= c["requests"] <= 130, c
        assert run.data_age_p95(DAY + 11 * 3600 + 120, DAY + 12 * 3600) < INTERVAL + 5
        assert_dtu_safe(run)
    finally:
        run.close()


def test_an_encrypted_dtu_never_gets_a_frame_sealed_with_an_old_key():
    # its key changes when it reboots: its AppInfoData is asked on every connection
    run = VirtualRun(DAY + 11 * 3600, hours=0.5, encrypted=True)
    start = DAY + 11 * 3600
    run.clock.at(start + 600, lambda: run.model.set_fault("reboot", seconds=20))
    try:
        run.run()
        c = counters(run)
        assert c["reboots"] == 1 and c["bad_frames_in"] == 0
        assert len([t for t in run.ok_times if t > start + 700]) >= 30 and run.gw.state.encrypted
        assert_dtu_safe(run)
    finally:
        run.close()


# ---- the inverter's warnings (issue 18) ----------------------------------------

def _seen_warnings(run):
    import json

    from gateway.integrations import metrics, values
    gw = run.gw
    d = json.loads(gw.data_now())
    body = gw.alarms_body()
    prom = [line for line in "".join(metrics.lines(gw)).splitlines()
            if line.startswith("dtu_inverter_warnings_active{")]
    mqtt = dict(values.status(gw.state, gw.sched, run.clock()))["inverter/warnings"]
    return (d["inverter"]["warnings"], [a["code"] for a in body["active"]],
            [a["code"] for a in body["ended"]], prom, mqtt)


def test_a_warning_starts_and_ends_and_is_seen_everywhere():
    # 141 (raw 8333) from 10:10 to 10:40: seen within two rounds of its start
    # (the DTU's warning count changes), its end within WARN_ROUNDS; the
    # budget of one request a round holds with the warning active
    start = DAY + 10 * 3600
    run = VirtualRun(start, hours=1.0, warnings=[(8333, 600, 2400)])
    seen = []
    run.after_round = lambda: seen.append((run.clock(),) + _seen_warnings(run))
    try:
        run.run()
        before = [x for x in seen if x[0] < start + 600]
        assert before and all(x[1] == 0 and x[2] == [] for x in before)
        t_on = next(x[0] for x in seen if x[1] == 1)
        assert t_on - (start + 600) <= 2 * (INTERVAL + sc.SLACK) + 5, t_on - start
        on = next(x for x in seen if x[1] == 1)
        assert on[2] == [141] and on[4] == ['dtu_inverter_warnings_active{code="141"} 1'] and on[5] == "1"
        t_off = next(x[0] for x in seen if x[0] > start + 2400 and x[1] == 0)
        assert t_off - (start + 2400) <= (sc.WARN_ROUNDS + 2) * (INTERVAL + sc.SLACK), t_off - start
        off = [x for x in seen if x[0] >= t_off][0]
        assert off[3] == [141] and off[4] == [] and off[5] == "0"
        msgs = [e["msg"] for e in run.gw.events.items() if e["kind"] == "alarm"]
        assert "warning 141 Grid overvoltage started" in msgs and "warning 141 Grid overvoltage ended" in msgs
        c = counters(run)
        assert c["requests"] <= 130, c                  # the day-and-night budget, with a warning on
        assert_dtu_safe(run)
    finally:
        run.close()


def test_an_end_that_changes_the_count_is_seen_within_two_rounds():
    # whether a real DTU's warning count changes when a warning ends is not
    # confirmed; if it does, the gateway reads the list in that round
    start = DAY + 10 * 3600
    run = VirtualRun(start, hours=0.5, warnings=[(8333, 300, 900)], count_ends=True)
    seen = []
    run.after_round = lambda: seen.append((run.clock(), run.gw.state.warnings()))
    try:
        run.run()
        t_off = next(t for t, n in seen if t > start + 900 and n == 0)
        assert t_off - (start + 900) <= 2 * (INTERVAL + sc.SLACK) + 5, t_off - start
        assert_dtu_safe(run)
    finally:
        run.close()


def test_a_warning_active_all_hour_keeps_the_request_budget():
    run = VirtualRun(DAY + 11 * 3600, hours=1.0, warnings=[(8333, -60, None)])
    try:
        run.run()
        c = counters(run)
        assert c["requests"] <= 130, c
        reads = [e for e in run.gw.events.items() if e["kind"] == "alarm"]
        assert len(reads) == 1 and run.gw.alarms.by_code() == {141: 1}
        assert run.data_age_p95(DAY + 11 * 3600 + 120, DAY + 12 * 3600) < INTERVAL + 5
        assert_dtu_safe(run)
    finally:
        run.close()


def test_without_warnings_the_alarms_code_stays_out():
    # the list is read at connect; while it has no entries, gateway.alarms is
    # not kept (~0.6 KB of heap on the board), yet the API answers
    import sys
    run = VirtualRun(DAY + 11 * 3600, hours=0.2)
    try:
        run.run()
        gw = run.gw
        assert gw.sched.warn_read is not None and gw.alarms is None
        body = gw.alarms_body()
        assert body["active"] == [] and body["ended"] == [] and body["read"]
        assert "gateway.alarms" not in sys.modules
        assert gw.state.warnings() == 0
    finally:
        run.close()


def test_a_list_in_several_packages_is_read_whole():
    # one entry per A304 package: the client pages through package_nub of them
    start = DAY + 11 * 3600
    run = VirtualRun(start, hours=0.2, warnings=[(8333, -120, None), (0x20D8, -60, None), (209, -300, -200)],
                     warn_per_package=1)
    try:
        run.run()
        body = run.gw.alarms_body()
        assert sorted(a["code"] for a in body["active"]) == [141, 216]
        assert [a["code"] for a in body["ended"]] == [209]
        assert_dtu_safe(run)
    finally:
        run.close()
