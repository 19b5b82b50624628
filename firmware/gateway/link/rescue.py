"""The recovery ladder's last rung: fix a DTU lost to the home network the way
people do it by hand, in ~1.5 min instead of ~30.

The scheduler decides when (Scheduler._rescue_rule: silent on the LAN for
RESCUE_AFTER, at most every RESCUE_EVERY); the DTU link calls run() when it
does. Here: leave the home WiFi, join the DTU's own access point
(dtu.ap_ssid / dtu.ap_password, else what GetConfig reported), send the home
WiFi credentials with SetConfig to the DTU at its AP address, and go back.
SetConfig makes the DTU rejoin the WiFi, which ends a hang. Every step is in
the event log. Loaded only when needed.
"""
from dtu.client import DtuError
from gateway.setup.wifi_manager import _REASONS, JOIN_TIMEOUT

TIMEOUT = 10        # s per DTU request while on its AP


async def _wait_join(wm, timeout):
    w = wm.wifi
    t0 = wm.clock()
    while wm.clock() - t0 < timeout:
        s = w.status()
        if s == "connected":
            return True
        if s in _REASONS:
            return False
        await wm.sleep(0.5)
    return False


async def visit(wm, ssid, password, timeout=JOIN_TIMEOUT):
    """Leave the current network and join (ssid, password): True when joined.
    The WiFi manager's state machine stands aside meanwhile ("visiting")."""
    wm.state = "visiting"
    wm.step(wm.clock())              # tells the scheduler the network is gone
    w = wm.wifi
    w.disconnect()
    w.connect(ssid, password)
    ok = await _wait_join(wm, timeout)
    if not ok:
        w.disconnect()
    return ok


async def come_back(wm, timeout=JOIN_TIMEOUT):
    """After visit(): rejoin the configured network; the state machine takes
    over again (and opens our AP if that fails). True when joined again."""
    wm.wifi.disconnect()
    wm.state = "off"                 # step() starts a join to the target
    wm.step(wm.clock())
    ok = await _wait_join(wm, timeout)
    wm.step(wm.clock())
    return ok


async def run(gw, wm, link):
    sched, client, ev = gw.sched, gw.client, gw.events
    home_ssid, home_pw = gw.settings.get("wifi.ssid"), gw.settings.get("wifi.password")
    ap = wm.dtu_ap()
    ok = False
    if not ap or not home_ssid:
        ev.add("rescue", "cannot visit the DTU's access point: its name or the home WiFi is unknown",
               "warn")
        sched.rescue_done(link.clock(), False)
        return False
    ev.add("rescue", "DTU silent on the LAN: joining its access point %s" % ap[0], "warn", persist=True)
    timeout = client.timeout
    try:
        if await visit(wm, ap[0], ap[1]):
            await client.close()
            gw.dtu_visit = True           # the Gateway points the client at the DTU's AP address
            gw.apply_dtu_target()
            client.timeout = TIMEOUT
            try:
                await client.set_wifi(home_ssid, home_pw)
                ok = True
            except DtuError as e:
                ev.add("rescue", "SetConfig through the DTU's access point failed: %s" % e, "warn")
            finally:
                await client.close()
        else:
            ev.add("rescue", "could not join the DTU's access point %s" % ap[0], "warn")
    finally:
        # back to wherever the settings say now (dtu.host may have changed meanwhile)
        gw.dtu_visit = False
        gw.apply_dtu_target()
        client.timeout = timeout
        back = await come_back(wm)
    sched.rescue_done(link.clock(), ok)
    ev.add("rescue", "%s; %s %s" % (
        "home WiFi credentials re-sent, the DTU rejoins" if ok else "DTU not reached",
        "back on" if back else "not yet back on", home_ssid), "info" if ok and back else "warn",
        persist=True)
    return ok
