# The board's entry point: start the gateway on the board's interface.
import asyncio

from board import load
from gateway.app import Gateway


def main():
    board = load()
    gw = Gateway(board)
    try:
        asyncio.run(gw.run("0.0.0.0", 80))
    finally:
        gw.stop()


main()
