# The board's entry point: start the gateway on the board's interface.
# gateway/safemode.py counts crashes: an exception that ends the app is
# recorded and the board resets; three such ends within minutes of boot bring
# it up in safe mode. Ctrl-C (the console, mpremote) is a clean stop: the
# watchdog stands down (selfheal.stop) and the MicroPython prompt is free.
import asyncio
import gc
import sys
import time

from board.current import load


def _reset(board):
    time.sleep(1)            # let the traceback leave the UART
    import machine
    machine.reset()


def main():
    from gateway.selfheal import gc_while_loading
    gc_while_loading()
    board = load()
    from gateway import safemode
    button = getattr(board, "button_level", None)    # held (0) while the app starts: safe mode
    mode = safemode.boot(board, button_held=button is not None and button() == 0)
    gw = None
    try:
        from gateway.app import Gateway
        gw = Gateway(board, safe_mode=mode)
        globals()["gw"] = gw                 # for the console (aiorepl runs in these globals)
        gc.collect()                         # (selfheal.tune_gc sets the running gc.threshold)
        asyncio.run(gw.run("0.0.0.0", 80))
        raise RuntimeError("the app ended")
    except KeyboardInterrupt:
        safemode.clean()
        print("gateway stopped; machine.reset() starts it again")
    except Exception as e:  # anything else ends in a reset, counted
        gc.collect()
        for step in (lambda: safemode.crashed("%s: %s" % (type(e).__name__, e)),
                     lambda: sys.print_exception(e), lambda: gw and gw.stop()):
            try:
                step()
            except Exception:  # noqa: out of memory again, say; the reset matters more
                pass
        _reset(board)
    finally:
        if gw is not None:
            gw.stop()


main()
