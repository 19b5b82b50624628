"""The benchmarks (`make bench`: tools/bench/run.py runs them all and prints
the figures; `make bench-memory`: only memory.py). Scripts that also run
under MicroPython (crypto, imports, protocol, web_mp, and the MicroPython
halves of push and ota) take the tree to use as their first argument."""
