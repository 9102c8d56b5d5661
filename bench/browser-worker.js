// Benchmark worker for bench/browser.mjs: the wasm `Trainer` (pkg/sortwise.js) in a dedicated
// module Web Worker, as the page runs it (main-thread wasm work trips the renderer's timeouts).
// Protocol: {id, op, args} -> {id, ok, value} | {id, ok: false, error}. Every op returns timings
// in ms measured here with performance.now(), and wasm linear memory in bytes
// (`memory.buffer.byteLength`: it only grows, so it is the high-water mark so far).

// Which build is measured is init's `pkg`: 'pkg' (WebGPU + single-threaded CPU) or 'pkg-cpu'
// (CPU only, wasm threads: its rayon pool is started here, as www/engine/worker.js does).
let Trainer = null;
let wasm = null;
let threads = 1;
let trainer = null;
const mem = () => wasm.memory.buffer.byteLength;
const now = () => performance.now();
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function bytes(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

// Synthetic cached embeddings: `classes` clusters around random centres, unit-ish noise.
function clustered(n, dim, classes, seed = 1) {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const centres = Array.from({ length: classes }, () => Float32Array.from({ length: dim }, () => rnd() * 2));
  return Array.from({ length: n }, (_, i) => {
    const c = i % classes;
    return { label: `c${c}`, e: Float32Array.from(centres[c], (v) => Math.max(0, v + (rnd() - 0.5))) };
  });
}

const ops = {
  async init({ pkg = 'pkg', threads: n } = {}) {
    const t = now();
    if (!wasm) {
      const mod = await import(`../${pkg}/sortwise.js`);
      wasm = await mod.default();
      if (mod.initThreadPool) {
        threads = n || navigator.hardwareConcurrency || 1;
        await mod.initThreadPool(threads);
      }
      Trainer = mod.Trainer;
    }
    return { pkg, threads, initMs: now() - t, memory: mem(), crossOriginIsolated: self.crossOriginIsolated };
  },
  // A fresh trainer; `augment` views per image are embedded in one backbone batch.
  async create({ arch, weightsUrl, device, augment = 0 }) {
    trainer?.free();
    trainer = null;
    const t0 = now();
    const weights = await bytes(weightsUrl);
    const t1 = now();
    trainer = await Trainer.create({ arch, weights, device, augment });
    return {
      backend: trainer.backend, reason: trainer.backendReason, dim: trainer.dim, threads: trainer.threads,
      fetchMs: t1 - t0, createMs: now() - t1, memory: mem(),
    };
  },
  // addImage on each URL (cycling); per-call ms. The first `warmup` calls are timed separately.
  async embed({ urls, n, warmup = 1 }) {
    const files = await Promise.all(urls.map(bytes));
    const warm = [];
    const ms = [];
    for (let i = 0; i < warmup + n; i += 1) {
      const t = now();
      await trainer.addImage('bench', files[i % files.length]);
      (i < warmup ? warm : ms).push(now() - t);
    }
    const total = ms.reduce((a, b) => a + b, 0);
    return { warmupMs: warm, ms, medianMs: median(ms), imgPerS: (1000 * n) / total, memory: mem() };
  },
  // `addImages` of the 8 photos at once, `n` times after `warmup`: the page's batch (issue 20's
  // figure, next to ONNX Runtime Web's batch of 8).
  async embed8({ urls, n = 3, warmup = 1 }) {
    const files = await Promise.all(urls.map(bytes));
    const warm = [];
    const ms = [];
    for (let i = 0; i < warmup + n; i += 1) {
      const t = now();
      const r = await trainer.addImages('bench', files);
      (i < warmup ? warm : ms).push(now() - t);
      const refused = r.find((x) => typeof x === 'string');
      if (refused) throw new Error(`a photo was refused: ${refused}`);
    }
    return { batch: files.length, warmupMs: warm, ms, medianMs: median(ms), imgPerS: (1000 * files.length) / median(ms), memory: mem() };
  },
  // The embeddings `addImages` of `urls` gives, one array per photo: builds that only move data
  // differently must agree to the bit (bench/ab.mjs compares them).
  async embeddings({ urls }) {
    const r = await trainer.addImages('bench', await Promise.all(urls.map(bytes)));
    return r.map((id) => (typeof id === 'string' ? id : [...trainer.embedding(id)]));
  },
  // `addImages` over consecutive groups of `batch` photos of `urls` (all fetched first; each group
  // one class, as the page sends them), with each photo's thumbnail and embedding read back as
  // www/engine/worker.js does, the first `warmup` groups untimed: the engine's own
  // sustained throughput on those photos (bench/zip5000.mjs compares a page's zip drop with it).
  async embedStream({ urls, batch = 8, warmup = 1 }) {
    const files = await Promise.all(urls.map(bytes));
    const ms = [];
    let timed = 0;
    for (let i = 0, g = 0; i < files.length; i += batch, g += 1) {
      const group = files.slice(i, i + batch);
      const t = now();
      const r = await trainer.addImages(`c${Math.floor(i / batch) % 4}`, group);
      const refused = r.find((x) => typeof x === 'string');
      if (refused) throw new Error(`a photo was refused: ${refused}`);
      // what www/engine/worker.js hands back (a build before takeThumbnail: thumbnail)
      for (const id of r) { (trainer.takeThumbnail ?? trainer.thumbnail).call(trainer, id); trainer.embedding(id); }
      if (g >= warmup) { ms.push(now() - t); timed += group.length; }
    }
    const total = ms.reduce((a, b) => a + b, 0);
    return { batch, photos: timed, ms, medianMs: median(ms), imgPerS: (1000 * timed) / total, memory: mem() };
  },
  // Head training on `n` synthetic cached embeddings, after dropping every image added so far.
  async head({ n = 1000, classes = 4, epochs = 100 }) {
    for (const l of trainer.labels()) trainer.removeClass(l);
    const before = mem();
    for (const { label, e } of clustered(n, trainer.dim, classes)) trainer.addEmbedding(label, e);
    const afterAdd = mem();
    const t = now();
    const report = await trainer.train({ epochs, patience: 0, valSplit: 0.2 });
    const trainMs = now() - t;
    return {
      trainMs, epochsRun: report.epochsRun ?? report.history?.length, valAccuracy: report.valAccuracy,
      memoryBefore: before, memoryAfterAdd: afterAdd, memoryAfterTrain: mem(),
    };
  },
  // predict() latency for one image with the trained head: warm-up, then the median of `n`.
  async predict({ url, n = 3 }) {
    const img = await bytes(url);
    await trainer.predict(img, {});
    const ms = [];
    for (let i = 0; i < n; i += 1) {
      const t = now();
      await trainer.predict(img, {});
      ms.push(now() - t);
    }
    return { ms, medianMs: median(ms) };
  },
  // Batch-1 forward with almost no preprocessing: predictPixels on a 224x224 RGBA frame (needs a
  // trained head; its cost is negligible). `warmup` untimed calls, then the median of `n`.
  async forward1({ n = 3, warmup = 1 }) {
    const side = 224;
    const rgba = Uint8Array.from({ length: side * side * 4 }, (_, i) => (i * 2654435761) >>> 24);
    for (let i = 0; i < warmup; i += 1) await trainer.predictPixels(rgba, side, side, {});
    const ms = [];
    for (let i = 0; i < n; i += 1) {
      const t = now();
      await trainer.predictPixels(rgba, side, side, {});
      ms.push(now() - t);
    }
    return { ms, medianMs: median(ms) };
  },
  // "Files dropped" -> "trained": read each file (here: fetch from the local server), add them
  // class by class `batch` at a time as the page does (`addImages`; 1 = `addImage` per photo),
  // then train with the page's defaults.
  async drop({ files, batch = 8 }) {
    for (const l of trainer.labels()) trainer.removeClass(l);
    const t0 = now();
    let readMs = 0;
    const byClass = new Map();
    for (const f of files) {
      if (!byClass.has(f.label)) byClass.set(f.label, []);
      byClass.get(f.label).push(f);
    }
    for (const [label, list] of byClass) {
      for (let i = 0; i < list.length; i += batch) {
        const r = now();
        const bs = [];
        for (const { url } of list.slice(i, i + batch)) bs.push(await bytes(url));
        readMs += now() - r;
        if (batch === 1) await trainer.addImage(label, bs[0]);
        else await trainer.addImages(label, bs);
      }
    }
    const t1 = now();
    const report = await trainer.train({});
    const t2 = now();
    return {
      images: files.length, batch, totalMs: t2 - t0, embedMs: t1 - t0, readMs, trainMs: t2 - t1,
      epochsRun: report.epochsRun ?? report.history?.length, valAccuracy: report.valAccuracy, memory: mem(),
    };
  },
  free() {
    trainer?.free();
    trainer = null;
    return { memory: mem() };
  },
};

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    const fn = ops[op];
    if (!fn) throw new Error(`unknown op ${op}`);
    postMessage({ id, ok: true, value: await fn(args ?? {}) });
  } catch (e) {
    postMessage({ id, ok: false, error: e instanceof Error ? `${e.message}` : String(e) });
  }
};
