"""Host-mode entry point; runs under CPython and under the unix MicroPython.

    <python> tools/host_main.py ROOT --dtu HOST[:PORT] --listen HOST:PORT --data-dir DIR
        [--dns HOST:PORT] [--wifi-scan FILE.json] [--wifi-join ok|fail]
        [--poll-interval SECONDS]   (benchmark only: tools/bench/memory.py)
        [--safe-mode REASON]        (boot in safe mode, as gateway/safemode.py decides on a board)
        [--profile full|lean]       (gateway/profiles.py: what a board's build carries; default
                                     full, or the profile a frozen build was made with)

ROOT is the repo (CPython) or the .mpy tree tools/run_host.py builds for the
unix MicroPython, with Microdot in ROOT/host_deps. Use tools/run_host.py. Kept free of argparse and friends: MicroPython has neither.
"""
import sys


def _args(argv):
    opts = {"--dtu": None, "--listen": "127.0.0.1:8080", "--data-dir": "data",
            "--chip-id": "00c0ffee", "--www": None,
            "--dns": None, "--wifi-scan": None, "--wifi-join": "ok",
            "--poll-interval": None, "--safe-mode": None, "--profile": None}
    i = 0
    while i < len(argv):
        if argv[i] not in opts or i + 1 >= len(argv):
            raise SystemExit("usage: host_main.py ROOT [--dtu H[:P]] [--listen H:P] [--data-dir D]")
        opts[argv[i]] = argv[i + 1]
        i += 2
    return opts


def _wifi(opts):
    """With --dtu the PC's network counts as the configured WiFi (always up);
    without it the WiFi is simulated: factory mode until a network is saved,
    scans list --wifi-scan FILE.json ([{"name", "rssi", "chan", "open"}]),
    joins end as --wifi-join says (ok | fail)."""
    import json
    from board.host import HostWifi
    nets = []
    if opts["--wifi-scan"]:
        with open(opts["--wifi-scan"]) as f:
            nets = json.load(f)
    if opts["--wifi-join"] not in ("ok", "fail"):
        raise SystemExit("--wifi-join must be ok or fail")
    return HostWifi(fixed=bool(opts["--dtu"]), networks=nets, join=opts["--wifi-join"])


def _restore_ctrl_c():
    # A background job of a non-interactive shell starts with SIGINT ignored;
    # Ctrl-C (SIGINT to the group) must stop the gateway all the same.
    try:
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except (ImportError, AttributeError):  # MicroPython: no signal module
        pass


def main():
    _restore_ctrl_c()
    root = sys.argv[1]
    opts = _args(sys.argv[2:])
    sys.path[:0] = [root + "/firmware", root + "/lib", root, root + "/host_deps",
                    root + "/tools/host_shims"]
    from gateway.selfheal import gc_while_loading
    gc_while_loading()                      # as main.py does on a board
    import asyncio
    from board.host import Board
    from gateway.app import Gateway, split_host

    board = Board(data_dir=opts["--data-dir"], chip_id=opts["--chip-id"], wifi=_wifi(opts),
                  dns_addr=split_host(opts["--dns"], 53) if opts["--dns"] else None)
    if opts["--www"]:                        # the built web app (run_host.py passes it)
        board.www_dir = opts["--www"]
    safe = {"active": True, "reason": opts["--safe-mode"]} if opts["--safe-mode"] else None
    gw = Gateway(board, dtu_override=opts["--dtu"], safe_mode=safe, profile=opts["--profile"])
    if opts["--poll-interval"]:
        # BENCHMARK ONLY (tools/bench/memory.py): rounds faster than any real
        # DTU tolerates, against the simulator with --min-gap 0; never for a DTU
        gw.sched.interval = float(opts["--poll-interval"])
    host, port = split_host(opts["--listen"], 8080)
    print("gateway: http://%s:%d/api/data (DTU %s:%d)" % (host, port, gw.client.host, gw.client.port))
    try:
        asyncio.run(gw.run(host, port))
    except KeyboardInterrupt:
        pass
    finally:
        gw.stop()


main()
