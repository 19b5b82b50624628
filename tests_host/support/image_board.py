"""An ESP32 with the app frozen in and two app slots, as the unix MicroPython
can stand in for it: the bootloader model of esp32_standin picks the slot at
each start, and the app that slot's image holds runs (its version is what
the frozen build reports; an image marked unhealthy never gets its web server
up). board.reset() ends the process (exit status 3): the test starts it
again, which is the reboot.

    micropython image_board.py TREE FLASH --listen 127.0.0.1:PORT --data-dir DIR
        [--confirm-stable S] [--confirm-window S] [--www DIR]

TREE: the .mpy tree of tools/run_host.py. Test helper for
tests_host/e2e/test_ota_image.py.
"""
import sys


def main():
    tree, flash = sys.argv[1], sys.argv[2]
    opts = {"--listen": "127.0.0.1:8080", "--data-dir": "data", "--confirm-stable": "1",
            "--confirm-window": "300", "--www": None}
    args = sys.argv[3:]
    for i in range(0, len(args), 2):
        opts[args[i]] = args[i + 1]
    here = __file__.rpartition("/")[0] or "."
    sys.path[:0] = [here, tree + "/firmware", tree + "/lib", tree, tree + "/host_deps", tree + "/tools/host_shims"]
    import json
    import esp32_standin
    sys.modules["esp32"] = esp32_standin
    slot = esp32_standin.boot(flash)
    run = json.loads(esp32_standin.payload_of(esp32_standin.slot_bytes(slot)))
    # the frozen build's marker, as tools/bundle.py frozen-manifest writes it for the image in this slot
    marker = opts["--data-dir"] + "/../frozen"
    try:
        import os
        os.mkdir(marker)
    except OSError:
        pass
    with open(marker + "/frozen_app.py", "w") as f:
        f.write("BOARD = 'esp32'\nPORT = 'esp32'\nPROFILE = 'full'\nVERSION = %r\nDATE = ''\n"
                "CHANNEL = 'release'\n" % run["version"])
    sys.path.insert(0, marker)
    print("bootloader: %s (%s)" % (slot, run["version"]))
    import asyncio
    from board.host import Board, HostWifi
    from gateway.ota import feature as ota
    from gateway.app import Gateway, split_host
    ota.Ota.confirm_stable = float(opts["--confirm-stable"])
    ota.Ota.confirm_window = float(opts["--confirm-window"])
    ota.Ota.first_check = 3600
    ota.Ota.reboot_delay = 0.3
    board = Board(data_dir=opts["--data-dir"], chip_id="00c0ffee", wifi=HostWifi(fixed=True))
    if opts["--www"]:
        board.www_dir = opts["--www"]
    gw = Gateway(board)
    host, port = split_host(opts["--listen"], 8080)
    print("gateway %s on %s:%d" % (gw.ota.installed["version"], host, port))
    try:
        if run["healthy"]:
            asyncio.run(gw.run(host, port))
        else:                          # broken: no web server, so never healthy
            asyncio.run(gw.ota.run())
    finally:
        gw.stop()


main()
