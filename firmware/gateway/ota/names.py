"""What the device, the bundle builder and the release workflow must agree on:
the names of the release files and the version rules. The device
(gateway.ota.feature), tools/bundle.py and .github/workflows/release.yml (checked by
tests_host/unit/test_workflows.py) all read this one module. Fixed names (no
version in them), so the device never guesses a file name and
https://github.com/<repo>/releases/latest/download/<name> always works.

Versions are SemVer: "1.2.3", a snapshot "1.2.4-snapshot.57" (57 = commits
on develop) sorts after 1.2.3 and before 1.2.4; "+build" is ignored."""

ARCHIVE = "dtu-gateway-bundle.tar"      # the board's filesystem: manifest.json first, then every file
MANIFEST = "manifest.json"              # every file with size and sha256 (also the archive's first member)
VERSION = "version.json"                # version, channel, date, boards, the archive's size and sha256
ESP32_IMAGE = "dtu-gateway-esp32.bin"   # MicroPython with the app frozen in + its data files, flash at 0x0
ESP32_APP = "dtu-gateway-esp32-app.bin"  # the app image of that firmware: what an update writes into the other slot
ESP8266_ROMFS = "dtu-gateway-esp8266.romfs"   # the app as a ROMFS image (stock FLASH_2M_ROMFS firmware)

RELEASE_ASSETS = (ARCHIVE, MANIFEST, VERSION, ESP32_IMAGE, ESP32_APP, ESP8266_ROMFS)
DEVICE_ASSETS = (VERSION, ARCHIVE, ESP32_APP)   # what the gateway downloads itself

SNAPSHOT_TAG = "snapshot"               # the rolling pre-release built from develop
CHANNELS = ("release", "snapshot")


def parse_version(v):
    """"v1.2.3-snapshot.5+g1a2b" -> (1, 2, 3, pre) where pre is () for a
    release, else a tuple of ints and strings; ValueError if not a version."""
    if not isinstance(v, str):
        raise ValueError("version must be a string")
    v = v.strip()
    if v[:1] in ("v", "V"):
        v = v[1:]
    v = v.split("+", 1)[0]
    core, _, pre = v.partition("-")
    nums = core.split(".")
    if not 1 <= len(nums) <= 3 or not all(n.isdigit() for n in nums):
        raise ValueError("not a version: %r" % v)
    nums = [int(n) for n in nums] + [0] * (3 - len(nums))
    ids = ()
    if pre:
        ids = tuple(int(p) if p.isdigit() else p for p in pre.split("."))
    return nums[0], nums[1], nums[2], ids


def _pre_key(ids):
    # a release (no pre-release part) sorts after all of its pre-releases;
    # numeric identifiers sort before alphanumeric ones, then by value
    if not ids:
        return ((2, 0, ""),)
    return tuple((0, i, "") if isinstance(i, int) else (1, 0, i) for i in ids)


def version_key(v):
    a, b, c, pre = parse_version(v)
    return (a, b, c, _pre_key(pre))


def newer(a, b):
    """True when version a is newer than version b (an unparsable a never is;
    an unparsable b is older than anything)."""
    try:
        ka = version_key(a)
    except ValueError:
        return False
    try:
        return ka > version_key(b)
    except ValueError:
        return True
