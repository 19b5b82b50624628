"""Where the updates keep what (the layout in ota_boot's docstring), shared
by the loader (ota_boot, ota_swap), the app's staging (gateway.ota.stage)
and the bundle builder (tools/bundle.py). A loader file: it imports nothing."""
APP = "app"
NEW = "ota/new"
OLD = "ota/old"
BAD = "ota/bad"
JOURNAL = "ota/journal.json"
STAGED = "ota/staged.json"
LAST = "ota/last.json"
SAVED = OLD + "/.saved"
# replaced in this order
LOADER = ("ota_swap.mpy", "ota_layout.mpy", "ota_boot.mpy", "main.py", "boot.py")
ROM_APP = "/rom/app"            # ESP8266: the app's code in a ROMFS image
MAX_TRIAL_BOOTS = 1             # the next boot after an unconfirmed trial rolls back
