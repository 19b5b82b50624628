"""Runs a release bundle the way a board boots it, on the unix MicroPython:
the loader (ota_boot.boot on ROOT: recovery, switch, rollback, sys.path, as
the bundle's boot.py calls it on a board), then the gateway from ROOT/app,
as main.py would start it, but listening on a loopback port with a host board.

    micropython bundle_board.py ROOT --listen 127.0.0.1:PORT --data-dir DIR [--confirm-stable S]

ROOT holds exactly what build/bundle/ holds (boot.py, main.py, ota_boot.mpy,
app/). board.reset() ends the process (exit status 3): the test starts it
again, which is the reboot. Test helper for tests_host/e2e/test_ota.py.
"""
import sys


def main():
    root = sys.argv[1]
    opts = {"--listen": "127.0.0.1:8080", "--data-dir": "data", "--confirm-stable": "1"}
    args = sys.argv[2:]
    for i in range(0, len(args), 2):
        opts[args[i]] = args[i + 1]
    sys.path.insert(0, root)
    import ota_boot
    state = ota_boot.boot(root)          # on a board: boot.py does this, with root "/"
    print("loader:", state)
    import asyncio
    from board.host import Board, HostWifi
    from gateway.ota import feature as ota
    from gateway.app import Gateway, split_host
    ota.Ota.confirm_stable = float(opts["--confirm-stable"])
    ota.Ota.first_check = 3600
    ota.Ota.reboot_delay = 0.3
    board = Board(data_dir=opts["--data-dir"], chip_id="00c0ffee", wifi=HostWifi(fixed=True),
                  www_dir=ota_boot.app_path("www"))
    gw = Gateway(board)
    host, port = split_host(opts["--listen"], 8080)
    print("gateway %s on %s:%d" % (gw.ota.installed["version"], host, port))
    try:
        asyncio.run(gw.run(host, port))
    finally:
        gw.stop()


main()
