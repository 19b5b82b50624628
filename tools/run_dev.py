#!/usr/bin/env python3
"""`make run`: the DTU simulator and the gateway in host mode, together.

    python3 tools/run_dev.py [--listen 127.0.0.1:8080] [--dtu 192.168.0.249] [--micropython]

Without --dtu the built-in simulator is started on 127.0.0.1:10081 with its
hang and cloud-upload models on, so the gateway is tested against the DTU's
real weak spots, and its control API on 127.0.0.1:10082; the inverter raises
warning 142 (10-minute grid overvoltage) two minutes after the start and ends
it twenty minutes later, so the dashboard's warning list has something to
show. Ctrl-C stops both.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM_ADDR = "127.0.0.1:10081"
SIM_CONTROL = "127.0.0.1:10082"
DEMO_WARNING = "142@120-1320"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:8080")
    ap.add_argument("--dtu", help="a real DTU instead of the simulator")
    ap.add_argument("--micropython", action="store_true")
    ap.add_argument("--data-dir", default=os.path.join(ROOT, "data"))
    args = ap.parse_args(argv)

    procs = []
    if not args.dtu:
        # The simulated sun follows this machine's time zone.
        tz = time.localtime().tm_gmtoff
        procs.append(subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "dtu_sim.py"),
                                       "--listen", SIM_ADDR, "--quiet", "--tz-offset", str(tz),
                                       "--control", SIM_CONTROL, "--warning", DEMO_WARNING]))
        time.sleep(0.5)
    gw = [sys.executable, os.path.join(ROOT, "tools", "run_host.py"), "--dtu", args.dtu or SIM_ADDR,
          "--listen", args.listen, "--data-dir", args.data_dir]
    if args.micropython:
        gw.append("--micropython")
    procs.append(subprocess.Popen(gw))
    print()
    print("  DTU:       %s" % (args.dtu or SIM_ADDR + " (simulator)"))
    print("  web app:   http://%s/" % args.listen)
    print("  live data: http://%s/api/data" % args.listen)
    print("  info:      http://%s/api/info" % args.listen)
    if not args.dtu:
        print("  simulator: curl -d '{\"code\": 141}' http://%s/warning   (raise a warning; "
              "\"end\": true ends it)" % SIM_CONTROL)
    print("  events:    http://%s/api/events" % args.listen)
    print("  Ctrl-C stops.")
    print()
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
