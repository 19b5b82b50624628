# Runs first on every boot; keep it tiny: a fault here is the one thing
# that could lock a board out. The app starts from main.py.
import gc

gc.collect()
