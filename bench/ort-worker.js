// ONNX Runtime Web's wasm backend in a module worker, for bench/browser.mjs (ORT=1): one worker
// per thread count, since ORT reads `env.wasm.numThreads` once, at its first session. Times
// `session.run` on a ready batch of random 224×224 inputs (ORT gets tensors; sortwise's figure
// includes decoding and resizing the photos), `warmup` untimed runs (default 1), then `n` timed ones.
// Protocol: {id, op: 'run', args: {dist, model, threads, batch, n}} → {id, ok, value | error}.

let ort = null;

async function run({ dist, model, threads, batch = 8, n = 3, warmup = 1 }) {
  if (!ort) {
    ort = await import(`${dist}ort.wasm.min.mjs`);
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.wasmPaths = dist;
  }
  const bytes = await (await fetch(model)).arrayBuffer();
  let t = performance.now();
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const createMs = performance.now() - t;
  const data = new Float32Array(batch * 3 * 224 * 224);
  for (let i = 0; i < data.length; i += 1) data[i] = Math.random() * 2 - 1;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [batch, 3, 224, 224]) };
  t = performance.now();
  const first = await session.run(feeds);
  const warmupMs = [performance.now() - t];
  for (let i = 1; i < warmup; i += 1) {
    t = performance.now();
    await session.run(feeds);
    warmupMs.push(performance.now() - t);
  }
  const runsMs = [];
  for (let i = 0; i < n; i += 1) {
    t = performance.now();
    await session.run(feeds);
    runsMs.push(performance.now() - t);
  }
  const sorted = [...runsMs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const out = first[session.outputNames[0]];
  await session.release();
  return {
    threads, batch, createMs, warmupMs, runsMs, medianMs: median,
    imgPerS: (batch * 1000) / median, features: out.dims, crossOriginIsolated: self.crossOriginIsolated,
  };
}

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    if (op !== 'run') throw new Error(`unknown op ${op}`);
    postMessage({ id, ok: true, value: await run(args) });
  } catch (e) {
    postMessage({ id, ok: false, error: e?.message || String(e) });
  }
};
