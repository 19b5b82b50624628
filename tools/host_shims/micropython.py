"""CPython stand-in for MicroPython's `micropython` module, for the board code
run on a PC (host mode, the tests, the tools): just what that code imports.
Under MicroPython the built-in module is found first and this file is never read."""


def const(x):
    """MicroPython folds a const() into the bytecode; here it is the value."""
    return x
