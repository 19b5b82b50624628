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

TIMEOUT = 10        # s per DTU request while on its AP


async def run(gw, wm, link):
    """The visit; `wm` is the WiFi manager (gateway.setup.wifi_manager), which
    lends its station and brings it back."""
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
        if await wm.visit(ap[0], ap[1]):
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
        back = await wm.come_back()
    sched.rescue_done(link.clock(), ok)
    ev.add("rescue", "%s; %s %s" % (
        "home WiFi credentials re-sent, the DTU rejoins" if ok else "DTU not reached",
        "back on" if back else "not yet back on", home_ssid), "info" if ok and back else "warn",
        persist=True)
    return ok
