"""What differs per board: the ONE place. Read by the board code
(board/esp.py: pins, watchdog kind, heap class) and by the PC tools
(tools/board.py: chip, image, flash address).

Columns of BOARDS (one tuple per board, to keep the table out of the heap
until a row is asked for):

    name        BOARD= on the make command line; also board.Board.name
    chip        esptool --chip
    image       official MicroPython download, micropython.org/download/<image>/
    variant     which file on that page ("" = the plain one)
    flash_addr  where esptool writes that image
    button      GPIO of the factory-reset / safe-mode button (the BOOT or
                FLASH button: held at power-on it selects the ROM bootloader,
                so it is only read once the app runs)
    led         GPIO of the status LED
    led_kind    "low" (lit when the pin is 0), "high", "rgb" (a WS2812 pixel)
    tls         True when HTTPS with certificate checks is possible (mbedTLS);
                ESP8266's axTLS has no ECDHE and no validation
    heap        "small" (~38 KiB MicroPython heap, 30-35 KB free after boot),
                "medium" (~110 KB), "large" (several hundred KB)
    romfs       True when the stock image has a ROMFS partition for the code
    wdt         "hw": machine.WDT(timeout=ms) resets a hung loop; "soft":
                machine.WDT has no timeout and the system feeds it while
                Python runs, so a machine.Timer checks the feeds instead
    profile     what its firmware carries (gateway/profiles.py): "lean" leaves
                out what does not fit a small heap
    http        (served, backlog): HTTP connections served at once and how
                many more lwIP keeps waiting (gateway.web.httpd). Each served
                one holds a socket and a few KB of heap; lwIP has ~5 TCP
                PCBs on an ESP8266 and 16 sockets in all on an ESP32 (the
                DTU, MQTT, DNS and an update need theirs too)

Pins are those of the common dev boards (NodeMCU / Wemos D1 mini,
ESP32-DevKitC / DOIT DevKit v1, ESP32-S3-DevKitC-1, ESP32-C3-DevKitM-1);
other boards differ, see README "Boards".
"""

FIELDS = ("name", "chip", "image", "variant", "flash_addr", "button", "led", "led_kind",
          "tls", "heap", "romfs", "wdt", "profile", "http")

BOARDS = (
    ("esp8266", "esp8266", "ESP8266_GENERIC", "FLASH_2M_ROMFS", 0x0, 0, 2, "low",
     False, "small", True, "soft", "lean", (2, 2)),
    ("esp32", "esp32", "ESP32_GENERIC", "OTA", 0x1000, 0, 2, "high",
     True, "medium", False, "hw", "full", (4, 4)),
    ("esp32s3", "esp32s3", "ESP32_GENERIC_S3", "", 0x0, 0, 48, "rgb",
     True, "large", False, "hw", "full", (6, 6)),
    ("esp32c3", "esp32c3", "ESP32_GENERIC_C3", "", 0x0, 9, 8, "rgb",
     True, "medium", False, "hw", "full", (4, 4)),
)

# Heap sizes (bytes) the memory budget is checked against: the whole
# MicroPython heap of the smallest board of each class.
HEAP_BYTES = {"small": 38 * 1024, "medium": 110 * 1024, "large": 256 * 1024}


def names():
    return [row[0] for row in BOARDS]


def get(name):
    """The row for `name` as a dict; KeyError (naming the known boards) if unknown."""
    for row in BOARDS:
        if row[0] == name:
            return dict(zip(FIELDS, row))
    raise KeyError("unknown board %r (known: %s)" % (name, ", ".join(names())))


def detect(platform, machine=""):
    """The board name from sys.platform and os.uname().machine, e.g.
    ("esp32", "Generic ESP32S3 module with ESP32S3") -> "esp32s3"."""
    if platform == "esp8266":
        return "esp8266"
    m = machine.upper().replace("-", "")
    for tag, name in (("ESP32S3", "esp32s3"), ("ESP32C3", "esp32c3")):
        if tag in m:
            return name
    return "esp32"
