// Google's LiteRT.js (@litertjs/core, XNNPACK compiled to wasm) in a dedicated worker, for
// bench/litert.mjs (issue 35): the counterpart of bench/ort-worker.js. A CLASSIC worker, not a
// module one: LiteRT.js loads its emscripten glue with importScripts(), which module workers
// refuse; its ES module is loaded with a dynamic import() instead. scripts/serve.py serves this
// file only from bench/.cache/litert/worker.js, where bench/litert.sh copies it, next to core.mjs
// (the package's dist/index.js with its one bare import, "@litertjs/wasm-utils", rewritten to a
// relative path: workers have no import maps). One worker per thread count and model, as
// loadLiteRt() runs once per global scope.
//   threads > 1: litert_wasm_threaded_internal.js (wasm threads + relaxed SIMD; the page must be
//                cross-origin isolated), compiled with cpuOptions.numThreads = threads;
//   threads = 1: litert_wasm_internal.js (single-threaded, relaxed SIMD when the browser has it).
// Times `CompiledModel.run` on a ready NHWC float32 tensor of random values (as ORT gets one:
// sortwise's figure includes decoding and resizing the photos), `warmup` untimed runs (default 1), then `n` timed.
// Protocol: {id, op: 'run' | 'check' | 'open' | 'time', args} → {id, ok, value | error}.
//   run:   {dir, model, threads, n}             → timings
//   check: {dir, model, threads, input}         → the first output as a plain array, for an
//                                                 input read from `input` (raw float32, NHWC)
//   open:  {dir, model, threads}                → the model compiled and kept (bench/ab.mjs)
//   time:  {n}                                  → {ms}: n runs of the kept model

let lrt = null;
let glue = null;

async function load(dir, threads) {
  if (lrt) return;
  const core = await import(`${dir}core.mjs`);
  const wasmDir = new URL(`${dir}node_modules/@litertjs/core/wasm/`, self.location.href).href;
  const relaxedSimd = await core.supportsFeature('relaxedSimd');
  // The file loadLiteRt picks (src/load.ts): emscripten takes its own URL from self.location in a
  // worker, i.e. this file's, so the pthread workers' script and the .wasm are pointed at the
  // glue's folder through the Module object that @litertjs/wasm-utils hands to the factory.
  glue = `${wasmDir}${!relaxedSimd ? 'litert_wasm_compat_internal.js' : threads > 1 ? 'litert_wasm_threaded_internal.js' : 'litert_wasm_internal.js'}`;
  self.Module = { locateFile: (path) => wasmDir + path, mainScriptUrlOrBlob: glue };
  await core.loadLiteRt(wasmDir, { threads: threads > 1 });
  lrt = core;
}

async function compile(model, threads) {
  const bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());
  const t = performance.now();
  const compiled = await lrt.loadAndCompile(bytes, { accelerator: 'wasm', cpuOptions: { numThreads: threads } });
  return { compiled, createMs: performance.now() - t, bytes: bytes.length };
}

const free = (outs) => { for (const o of Array.isArray(outs) ? outs : Object.values(outs)) o.delete(); };

async function run({ dir, model, threads, n = 3, warmup = 1 }) {
  await load(dir, threads);
  const { compiled, createMs, bytes } = await compile(model, threads);
  const [input] = compiled.getInputDetails();
  const shape = Array.from(input.shape);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i += 1) data[i] = Math.random() * 2 - 1;
  const tensor = new lrt.Tensor(data, shape);
  let t = performance.now();
  const first = await compiled.run(tensor);
  const warmupMs = [performance.now() - t];
  const features = Array.from(first[0].type.layout?.dimensions ?? compiled.getOutputDetails()[0].shape);
  free(first);
  for (let i = 1; i < warmup; i += 1) {
    t = performance.now();
    free(await compiled.run(tensor));
    warmupMs.push(performance.now() - t);
  }
  const runsMs = [];
  for (let i = 0; i < n; i += 1) {
    t = performance.now();
    const outs = await compiled.run(tensor);
    runsMs.push(performance.now() - t);
    free(outs);
  }
  tensor.delete();
  compiled.delete();
  const sorted = [...runsMs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const batch = shape[0];
  return {
    threads, batch, inputShape: shape, features, createMs, warmupMs, runsMs, medianMs: median,
    imgPerS: (batch * 1000) / median, modelBytes: bytes, wasm: glue.split('/').pop(),
    crossOriginIsolated: self.crossOriginIsolated,
  };
}

// A model compiled once and kept, for bench/ab.mjs's calls interleaved with another engine's:
// `open` compiles it and makes its random input, `time` runs it `n` times.
let kept = null;

async function open({ dir, model, threads }) {
  await load(dir, threads);
  kept?.tensor.delete();
  kept?.compiled.delete();
  const { compiled, createMs } = await compile(model, threads);
  const shape = Array.from(compiled.getInputDetails()[0].shape);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i += 1) data[i] = Math.random() * 2 - 1;
  kept = { compiled, tensor: new lrt.Tensor(data, shape) };
  return { threads, batch: shape[0], createMs, wasm: glue.split('/').pop() };
}

async function time({ n = 1 }) {
  const ms = [];
  for (let i = 0; i < n; i += 1) {
    const t = performance.now();
    free(await kept.compiled.run(kept.tensor));
    ms.push(performance.now() - t);
  }
  return { ms };
}

async function check({ dir, model, threads, input }) {
  await load(dir, threads);
  const { compiled } = await compile(model, threads);
  const shape = Array.from(compiled.getInputDetails()[0].shape);
  const data = new Float32Array(await (await fetch(input)).arrayBuffer());
  if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`${input}: ${data.length} floats for shape ${shape}`);
  const tensor = new lrt.Tensor(data, shape);
  const outs = await compiled.run(tensor);
  const out = Array.from(outs[0].toTypedArray());
  free(outs);
  tensor.delete();
  compiled.delete();
  return { inputShape: shape, output: out, wasm: glue.split('/').pop() };
}

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    const fn = { run, check, open, time }[op];
    if (!fn) throw new Error(`unknown op ${op}`);
    postMessage({ id, ok: true, value: await fn(args) });
  } catch (e) {
    postMessage({ id, ok: false, error: e?.message || String(e) });
  }
};
