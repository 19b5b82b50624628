"""The board this code runs on: board.esp on an ESP8266 or ESP32 (the row of
board/boards.py that matches the chip), board.host anywhere else."""
import sys


def load(**options):
    if sys.platform in ("esp8266", "esp32"):  # pragma: no cover - on the board
        from board.esp import Board
    else:
        from board.host import Board
    return Board(**options)
