"""The board interface: everything the app needs from the hardware, in one
small object, so the same app runs on ESP8266, ESP32, CPython and the unix
MicroPython. An implementation provides:

    name                 "esp8266", "esp32", "host"
    chip_id()            str, stable per board (used in host names and topics)
    time()               Unix seconds (UTC), whatever epoch the port counts from
    set_time(unix)       set the clock (from the DTU when there is no NTP)
    ntp_sync()           try NTP once; True when the clock is now trusted
    time_trusted         True once NTP (or the host OS) vouches for the clock
    data_dir             folder for settings and events
    mem_free()           free heap in bytes, or None where unknown (CPython)
    mem_alloc()          heap in use in bytes, or None where unknown
    reset()              restart the board
    wifi                 .connected() .ssid() .rssi() .ip() .scan()
"""
import sys


def load(**options):
    if sys.platform in ("esp8266", "esp32"):  # pragma: no cover - on the board
        from board.esp import Board
    else:
        from board.host import Board
    return Board(**options)
