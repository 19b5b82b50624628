"""The recovery ladder's last rung, end to end in virtual time: the real
gateway (scheduler, link, client, WiFi manager, dtu_rescue) against the DTU
model (tools/dtu_model.py) and a simulated radio.

The DTU hangs (forced, for hours: it would not come back by itself soon).
After RESCUE_AFTER of unanswered rounds the gateway leaves the home WiFi,
joins the DTU's own AP (its name and password learned from GetConfig),
sends the home WiFi credentials with SetConfig, and goes back; the DTU
rejoins (~1.5 min) and answers again. Then not again for RESCUE_EVERY.
"""
import errno

from dtu.client import AP_IP
from gateway.link import scheduler as sc
from support.fakes import FakeWifi
from support.vdtu import ModelStream, VirtualRun, day_start

DAY = day_start()
HOME, HOME_PW = "HomeWiFi", "home-secret"
LAN_HOST = "dtu.sim"            # VirtualRun's --dtu
LAN_HOSTS = (LAN_HOST, "dtu2.sim")   # where the DTU answers on the home network


class Radio(FakeWifi):
    """The gateway's WiFi: the home network and the DTU's AP are in the air."""

    def __init__(self, clock, dtu_ap):
        FakeWifi.__init__(self, clock, {HOME: HOME_PW, dtu_ap[0]: dtu_ap[1]}, delay=3.0)
        self.joining = (HOME, HOME_PW)           # joined at boot
        self.since = clock() - 100


def rescue_run(hours, hangs, model_options=None, settings=None, dtu_ap_pw=None):
    """A VirtualRun with the radio, the opener that follows it, a WiFi
    manager stepping every 5 s, and forced hangs at the given offsets (s)."""
    start = DAY + 9 * 3600
    opts = dict(wifi_ssid="OldWiFi", wifi_password="old-password")
    opts.update(model_options or {})
    s = {"wifi.ssid": HOME, "wifi.password": HOME_PW}
    s.update(settings or {})
    run = VirtualRun(start, hours=hours, settings=s, **opts)
    clock, model, gw = run.clock, run.model, run.gw
    ap = ("DTUBI-" + model.dtu_serial, dtu_ap_pw or "12345678")
    radio = Radio(clock, ap)
    run.board.wifi = radio
    wm = gw.wifi_manager
    wm.clock, wm.sleep = clock, clock.sleep
    wm.state = "off"
    wm.step(clock())
    assert wm.state == "connected" and gw.sched.net_up

    async def opener(host, port):
        clock.advance(0.05)
        on_ap = radio.connected() and radio.ssid() == ap[0]
        if not radio.connected() or on_ap != (host == AP_IP) or \
                (not on_ap and host not in LAN_HOSTS):
            raise OSError(errno.EHOSTUNREACH, "no route to %s" % host)
        conn = model.connect(ap=on_ap)
        if conn is None:
            raise OSError(errno.ECONNREFUSED, "connection refused")
        st = ModelStream(model, conn, clock, gw.client.timeout, 0.05)
        return st, st
    gw.client._open = opener
    run.radio, run.ap, run.start = radio, ap, start

    def tick():
        wm.step(clock())
        clock.at(clock() + 5, tick)
    clock.at(start + 5, tick)
    for at, seconds in hangs:
        clock.at(start + at, lambda s=seconds: model.set_fault("hang", now=True, hang_seconds=s))
    return run


def events(run, kind=None):
    return [e for e in run.gw.events.items() if kind is None or e["kind"] == kind]


def rescue_times(run):
    return sorted(e["t"] for e in run.gw.events.items()
                  if e["kind"] == "rescue" and "joining its access point" in e["msg"])


def test_rescue_brings_a_hung_dtu_back_in_minutes():
    hang_at = 1800
    run = rescue_run(5.5, [(hang_at, 6 * 3600), (3 * 3600, 6 * 3600)])
    try:
        run.run()
        gw, model, radio = run.gw, run.model, run.radio
        t_hang = run.start + hang_at
        # GetConfig told the gateway where the DTU's AP is
        assert gw.link.dtu_ap == run.ap
        visits = rescue_times(run)
        assert len(visits) == 2, events(run)
        first = visits[0]
        # the first visit: after RESCUE_AFTER of silence, within one back-off step
        assert sc.RESCUE_AFTER <= first - t_hang <= sc.RESCUE_AFTER + sc.MAX_BACKOFF + 31, first - t_hang
        # the radio went to the DTU's AP, then home again
        joins = [e[1] for e in radio.log if e[0] == "connect"]
        assert joins[:2] == [run.ap[0], HOME], joins
        # SetConfig with the home credentials arrived (via the AP) and ended the hang
        assert (model.wifi_ssid, model.wifi_password) == (HOME, HOME_PW)
        assert model.counters["reboots"] >= 2
        ok_after = [t for t in run.ok_times if t > first]
        assert ok_after, "no answer after the rescue"
        back = ok_after[0] - t_hang
        assert back < sc.RESCUE_AFTER + sc.MAX_BACKOFF + 31 + 300, back      # minutes, not 6 h
        # the DTU rejoins in rejoin_seconds; polled at the interval meanwhile (no back-off)
        assert ok_after[0] - first < model.rejoin_seconds + 2 * 32 + 10, ok_after[0] - first
        # the second hang: no visit before RESCUE_EVERY has passed since the first
        assert visits[1] - first >= sc.RESCUE_EVERY
        # both visits are in the event log, with the way back
        msgs = [e["msg"] for e in events(run, "rescue")]
        assert sum("credentials re-sent" in m and "back on HomeWiFi" in m for m in msgs) == 2, msgs
        assert any(e["kind"] == "recovery" and "access point" in e["msg"] for e in events(run))
        # the gateway is home, the DTU answers, no hang or upload disturbed by the gateway
        assert gw.wifi_manager.state == "connected" and radio.ssid() == HOME
        assert [r.split(": ")[1] for r in model.hang_reasons] == ["forced", "forced"]
        assert model.counters["uploads_disturbed"] == 0
    finally:
        run.close()


def test_failed_visit_returns_home_and_waits():
    # the DTU's AP password in the settings is wrong: the visit fails cleanly
    run = rescue_run(2.5, [(600, 6 * 3600)],
                     settings={"dtu.ap_ssid": "DTUBI-4143A0123456", "dtu.ap_password": "wrong-pass"},
                     dtu_ap_pw="12345678")
    try:
        run.run()
        visits = rescue_times(run)
        assert len(visits) == 1
        msgs = [e["msg"] for e in events(run, "rescue")]
        assert any("could not join" in m for m in msgs), msgs
        assert any("DTU not reached; back on HomeWiFi" in m for m in msgs), msgs
        assert run.radio.ssid() == HOME and run.gw.wifi_manager.state == "connected"
        assert run.model.wifi_ssid == "OldWiFi"         # nothing was sent
        assert run.gw.sched.last_rescue is not None and not run.gw.sched.want_rescue
    finally:
        run.close()


def test_no_visit_without_the_home_wifi():
    # a gateway whose own WiFi is down does not blame the DTU
    run = rescue_run(1.5, [(600, 6 * 3600)])
    try:
        run.clock.at(run.start + 300, lambda: run.radio.drop(HOME))
        run.run()
        assert rescue_times(run) == []
        assert run.model.counters["connections"] > 0    # it polled before the drop
        assert max(run.round_times) < run.start + 300 + 35     # and not after it
        s = run.gw.sched
        assert (s.conn, s.net_up, s.failures, s.want_rescue) == (sc.CONN_OFFLINE, False, 0, False)
        assert run.gw.wifi_manager.state == "waiting" and run.radio.ap_active()
    finally:
        run.close()


def test_an_error_during_the_visit_never_stops_the_link():
    run = rescue_run(2.0, [(600, 1800)])
    try:
        ap_name = run.ap[0]
        radio = run.radio
        connect = radio.connect

        def broken(ssid, password):
            if ssid == ap_name:
                raise OSError(5, "radio says no")
            connect(ssid, password)
        radio.connect = broken
        run.run()
        msgs = [e["msg"] for e in events(run)]
        assert any("rescue failed" in m and "radio says no" in m for m in msgs), msgs
        assert len(rescue_times(run)) == 1 and not run.gw.sched.want_rescue
        # the hang ends by itself after 30 min; the link is still there to see it
        assert run.ok_times[-1] > run.start + 600 + 1800
        assert run.gw.wifi_manager.state == "connected" and radio.ssid() == HOME
    finally:
        run.close()


def test_a_dtu_host_set_during_the_visit_is_kept():
    # the user sets dtu.host while the gateway is away on the DTU's AP: the
    # visit talks to the DTU's AP address, and afterwards the new host holds
    run = rescue_run(1.5, [(600, 6 * 3600)])
    try:
        gw, radio, clock = run.gw, run.radio, run.clock
        gw.dtu_override = None                   # the settings decide, as on a board
        gw.settings.update({"dtu.host": LAN_HOST})
        assert gw.client.host == LAN_HOST
        connect, seen = radio.connect, []

        def joining(ssid, password):
            connect(ssid, password)
            if ssid == run.ap[0]:
                clock.at(clock() + 1, lambda: gw.settings.update({"dtu.host": "dtu2.sim"}))
        radio.connect = joining
        set_wifi = gw.client.set_wifi

        async def spy(*a):
            seen.append(gw.client.host)
            return await set_wifi(*a)
        gw.client.set_wifi = spy
        run.run()
        assert len(rescue_times(run)) == 1 and seen == [AP_IP]
        assert (run.model.wifi_ssid, run.model.wifi_password) == (HOME, HOME_PW)
        assert gw.settings.get("dtu.host") == "dtu2.sim"
        assert gw.client.host == "dtu2.sim"       # not the host from before the visit
        assert gw.sched.enabled
    finally:
        run.close()
