# Runs first on every boot; keep it tiny: a fault here is the one thing
# that could lock a board out. The app starts from main.py.
import gc
import micropython

micropython.alloc_emergency_exception_buf(100)   # tracebacks from timer/IRQ callbacks
# Updates (firmware/ota_boot.py): finish or roll back a switch a power cut
# left half-done, then put the active app (/app) on sys.path.
try:
    try:
        import ota_boot
    except ImportError:  # cut while the loader itself was being replaced
        import sys
        sys.path[:0] = ["/ota/new", "/ota/old"]
        import ota_boot
        del sys.path[:2]
    ota_boot.boot()
except Exception as e:  # never stop here: main.py may still start an app
    import sys
    sys.print_exception(e)
gc.collect()
