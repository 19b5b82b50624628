// Run a benchmark script under the official 32-bit WebAssembly MicroPython.
//   node tools/bench/wasm.mjs TREE SCRIPT [HEAP_BYTES]
// TREE (a folder of .mpy/.py files) is copied into the port's in-memory FS at
// /tree and SCRIPT runs as __main__ with the global BENCH_ROOT = "/tree" (this
// port has no sys.argv). Output goes to stdout.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

const [tree, script, heap] = process.argv.slice(2);
const mp = await loadMicroPython({
  heapsize: heap ? parseInt(heap, 10) : 256 * 1024,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
  linebuffer: true,
});

function copyTree(src, dst) {
  mp.FS.mkdirTree(dst);
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, entry.name);
    const d = dst + "/" + entry.name;
    if (entry.isDirectory()) copyTree(s, d);
    else mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
copyTree(tree, "/tree");
mp.FS.writeFile("/script.py", fs.readFileSync(script));
// A script may define STEPS (a list of functions): each then runs in its own
// top-level call, because this port's gc.collect() only frees what earlier
// calls allocated, and heap figures are taken between steps.
try {
  mp.runPython(`_g = {"__name__": "bench", "BENCH_ROOT": "/tree"}
exec(open("/script.py").read(), _g)`);
  mp.runPython(`_nsteps = len(_g.get("STEPS", ()))`);  // runPython returns no value
  const steps = mp.globals.get("_nsteps");
  if (steps) {
    for (let i = 0; i < steps; i++) mp.runPython(`_g["STEPS"][${i}]()`);
  } else {
    await mp.runPythonAsync(`exec(open("/script.py").read(), {"__name__": "__main__", "BENCH_ROOT": "/tree"})`);
  }
} catch (e) {
  process.stderr.write(String(e.message || e).slice(0, 2000) + "\n");
  process.exit(1);
}
