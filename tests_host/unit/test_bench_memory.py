"""tools/bench/memory.py's static figures that the README's frozen estimate
rests on: what one code object costs in the heap when a module is loaded
from ROMFS (measured on the unix and the WebAssembly MicroPython), and the
count of code objects taken from the sources."""
import os
import sys

import pytest

from support.env import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
from bench import memory as bench_memory  # noqa: E402


@pytest.mark.usefixtures("micropython")
def test_a_code_object_costs_a_few_words_of_heap_in_romfs_placement():
    cost = bench_memory.raw_code_cost(n=200)
    assert 24 <= cost["unix64"] <= 96, cost           # a handful of 8-byte words
    if "wasm32" in cost:                               # the same structure with 4-byte words
        assert 12 <= cost["wasm32"] <= 48 and 1.6 <= cost["unix64"] / cost["wasm32"] <= 2.4, cost


def test_code_objects_are_counted_from_the_sources(tmp_path, monkeypatch):
    src = tmp_path / "m.py"
    src.write_text("class A:\n    def f(self):\n        return [x for x in (1, 2)]\n"
                   "async def g():\n    h = lambda: 0\n    return {k: 1 for k in 'ab'}\n")
    monkeypatch.setattr(bench_memory, "module_sources", lambda: {"m": str(src)})
    # module body, class body, f, the list comprehension, g, the lambda, the dict comprehension
    assert bench_memory.raw_codes(["m", "not.there"]) == 7


def test_the_gateway_is_built_on_the_32_bit_webassembly_port():
    # the static figures import the app and build a Gateway with its routes
    # on the WebAssembly port, which has no sockets: the app may need them
    # only once it serves (gateway.web.httpd imports socket in start_server)
    if not os.path.isdir(os.path.join(ROOT, "node_modules")):
        pytest.skip("npm packages not installed")
    tree = bench_memory.build()[0]
    r = bench_memory.static_costs(tree, wasm=True)
    assert r is not None and "error" not in r, r
    assert r["Gateway()"] > 0 and "gateway.web.httpd" in r["loaded"], r


def test_the_estimated_frozen_held_heap_stays_within_the_budget():
    # issue 15: CI has no frozen build, so it holds the line on the estimate
    # from the registry runtimes; the README shows it next to the real figure
    if not os.path.isdir(os.path.join(ROOT, "node_modules")):
        pytest.skip("npm packages not installed")
    est = bench_memory.frozen_estimate(bench_memory.build())
    assert est is not None
    assert 0 < est["qstr"] < est["held"] and 0 < est["code"] < est["held"], est
    assert est["estimate"] <= bench_memory.HELD_BUDGET_KIB * 1024, (
        "a started gateway now holds an estimated %.1f KiB (app frozen, 32-bit): over the budget of "
        "%d KiB in tools/bench/memory.py" % (est["estimate"] / 1024, bench_memory.HELD_BUDGET_KIB))


def test_the_lean_profile_is_built_and_estimated_on_the_webassembly_port():
    # issue 19: the ESP8266's profile runs on the registry's 32-bit runtime
    # without any module it leaves out; `make bench-memory` prints its
    # estimate against LEAN_BUDGET_KIB (it does not fit yet: README, Memory budget)
    if not os.path.isdir(os.path.join(ROOT, "node_modules")):
        pytest.skip("npm packages not installed")
    tree = bench_memory.build()[0]
    r = bench_memory.static_costs(tree, wasm=True, profile="lean")
    assert r is not None and "error" not in r and r["loaded"], r
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    from gateway import profiles
    assert [m for m in r["loaded"] if not profiles.carries("lean", m)] == []
    assert "gateway.integrations.metrics" not in r["loaded"] and "gateway.history" not in r["loaded"]
    full = bench_memory.static_costs(tree, wasm=True)
    assert 0 < r["held"] < full["held"] and "gateway.history" in full["loaded"], (r["held"], full["held"])
