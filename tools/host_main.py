"""Host-mode entry point; runs under CPython and under the unix MicroPython.

    <python> tools/host_main.py ROOT --dtu HOST[:PORT] --listen HOST:PORT --data-dir DIR

ROOT is the repo (CPython) or the .mpy tree tools/run_host.py builds for the
unix MicroPython, with Microdot in ROOT/host_deps. Use tools/run_host.py. Kept free of argparse and friends: MicroPython has neither.
"""
import sys


def _args(argv):
    opts = {"--dtu": None, "--listen": "127.0.0.1:8080", "--data-dir": "data",
            "--chip-id": "00c0ffee"}
    i = 0
    while i < len(argv):
        if argv[i] not in opts or i + 1 >= len(argv):
            raise SystemExit("usage: host_main.py ROOT [--dtu H[:P]] [--listen H:P] [--data-dir D]")
        opts[argv[i]] = argv[i + 1]
        i += 2
    return opts


def main():
    root = sys.argv[1]
    opts = _args(sys.argv[2:])
    sys.path[:0] = [root + "/firmware", root + "/lib", root, root + "/host_deps",
                    root + "/tools/host_shims"]
    import asyncio
    from board.host import Board
    from gateway.app import Gateway, split_host

    board = Board(data_dir=opts["--data-dir"], chip_id=opts["--chip-id"])
    gw = Gateway(board, dtu_override=opts["--dtu"])
    host, port = split_host(opts["--listen"], 8080)
    print("gateway: http://%s:%d/api/data (DTU %s:%d)" % (host, port, gw.client.host, gw.client.port))
    try:
        asyncio.run(gw.run(host, port))
    except KeyboardInterrupt:
        pass
    finally:
        gw.stop()


main()
