// The trainer runs here, in a module Web Worker, so embedding and training never block the page.
// Protocol: the page posts {id, op, args}; the worker answers {id, ok, value} or
// {id, ok: false, error, fatal}; training progress arrives as {id, progress}; a lost WebGPU device
// is announced as {lost: reason}. `fatal` means the wasm instance cannot be trusted any more
// (a trap), and the client starts a fresh worker. client.js is the other side.

import { threadedBuilds } from './builds.js';
import { OPERATIONS } from './operations.js';
import { loadWeights } from './weights.js';

// Three wasm builds (scripts/wasm_pkg.sh), of which this worker loads one, chosen before any is
// downloaded: pkg-cpu/ (CPU only, wasm threads, ~1/4 of the size) when the CPU backend will run
// and the page is cross-origin isolated, as pkg-cpu-relaxed/ (its GEMMs on relaxed SIMD's fused
// multiply-add) where the engine has relaxed SIMD; otherwise pkg/ (WebGPU + single-threaded CPU).
let Trainer = null;
let wasm = null; // the loaded module: its free functions (rules, validateLabel) need no Trainer
let engine = null;

// Each step of a start, told to the page as it begins: a start that never finishes then says
// where it stopped (the page's debug state, the end-to-end tests' failure messages).
function startStep(step) {
  postMessage({ status: { phase: 'start', step } });
}

// Mirrors `software_or_missing_adapter` in src/web/device.rs, which stays the source of truth for
// `backendReason`: it probes again once loaded. null when a hardware WebGPU adapter is there.
async function softwareOrMissingAdapter() {
  if (!self.navigator?.gpu) return 'no WebGPU';
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch { /* as no adapter */ }
  if (!adapter) return 'no WebGPU adapter';
  const info = adapter.info ?? {};
  const fallback = info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
  const name = ['vendor', 'architecture', 'description'].map((k) => info[k]).filter((v) => typeof v === 'string').join(' ').toLowerCase();
  const software = ['swiftshader', 'llvmpipe', 'lavapipe', 'software'].some((s) => name.includes(s));
  return fallback || software ? 'software WebGPU adapter' : null;
}

// Why the threaded build cannot run here, or null when it can. `crossOriginIsolated` is not
// enough: WebKitGTK reports an isolated page yet has no SharedArrayBuffer, and posting the
// module's shared memory to the thread pool's workers then fails with "The object can not be
// cloned". So try exactly what the pool does: make a shared wasm memory and post it.
function threadsUnavailable() {
  if (!self.crossOriginIsolated) return 'the page is not cross-origin isolated, which wasm threads need';
  if (typeof SharedArrayBuffer !== 'function') return 'this browser has no SharedArrayBuffer, which wasm threads need';
  try {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(memory);
    port1.close();
    port2.close();
  } catch (e) {
    return `this browser cannot share wasm memory with workers (${e.message || e.name})`;
  }
  return null;
}

// The threaded build for this engine (builds.js), instantiated: pkg-cpu-relaxed/ where the engine
// has relaxed SIMD, pkg-cpu/ where it has not or the first does not load (a host that left that
// folder out, a flaky fetch). Literal paths, so that scripts/dist.sh can rewrite them.
const THREADED = {
  'pkg-cpu-relaxed': () => import('../../pkg-cpu-relaxed/sortwise.js'),
  'pkg-cpu': () => import('../../pkg-cpu/sortwise.js'),
};
async function loadThreaded(builds = threadedBuilds()) {
  const [name, ...rest] = builds;
  startStep(name);
  try {
    const mod = await THREADED[name]();
    await mod.default();
    return { name, mod };
  } catch (e) {
    if (!rest.length) throw e;
    return loadThreaded(rest);
  }
}

async function loadSingleThreaded(cpu, why) {
  startStep('pkg');
  const mod = await import('../../pkg/sortwise.js');
  await mod.default();
  engine = { name: 'pkg', note: cpu ? `; single-threaded: ${why}` : '' };
  wasm = mod;
  Trainer = mod.Trainer;
}

// `forcedOff`: why the client wants the single-threaded build (an earlier pool never started).
async function loadEngine(device, forcedOff = null) {
  if (engine) return engine;
  const cpu = device === 'cpu' || (device === 'auto' && (await softwareOrMissingAdapter()) !== null);
  const noThreads = cpu ? (forcedOff ?? threadsUnavailable()) : 'WebGPU runs';
  if (noThreads) {
    await loadSingleThreaded(cpu, noThreads);
    return engine;
  }
  try {
    const { name, mod } = await loadThreaded();
    // A pool that never starts blocks this worker's event loop, where no timer can fire: the
    // client times this step and replaces the worker (client.js, POOL_DEADLINE_MS).
    startStep('thread pool');
    // One pool thread per core: the calling thread (this worker) only waits while they run.
    await mod.initThreadPool(Math.max(1, navigator.hardwareConcurrency || 1));
    engine = { name, note: name === 'pkg-cpu-relaxed' ? '; relaxed SIMD' : '' };
    wasm = mod;
    Trainer = mod.Trainer;
  } catch (e) {
    // A browser that passes the probe but still cannot start the pool must not stop the page.
    await loadSingleThreaded(true, `the wasm thread pool did not start (${e.message || e})`);
  }
  return engine;
}

let trainer = null;
let cancelRequested = false;
const gpuDevices = [];
let lostReason = null;

// Keep a handle on the WebGPU devices burn creates: their `lost` promise is the only reliable
// signal that the GPU went away (driver reset, tab backgrounded on mobile, or destroy()).
if (self.GPUAdapter?.prototype?.requestDevice) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function patchedRequestDevice(...args) {
    const device = await requestDevice.apply(this, args);
    gpuDevices.push(device);
    device.lost.then((info) => {
      lostReason = `${info.reason || 'unknown'}: ${info.message || 'the WebGPU device was lost'}`;
      postMessage({ lost: lostReason });
    });
    return device;
  };
}

// Yield to the event loop through a MessageChannel (no timer clamping) so a cancel message
// can be handled between epochs even on the CPU backend, which never awaits anything real.
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()?.();
function yieldToEvents() {
  return new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(null);
  });
}

// V8 runs wasm from its baseline compiler first and optimises the hot functions as they run: a
// fresh CPU engine embedded its first 200 photos ~0.8 s slower than the next 200
// (docs/BENCHMARKS.md). So while the page leaves a new CPU engine idle, the worker sends
// synthetic photos through it itself (`Trainer.warmUp`, nothing kept), a batch a pass (the
// trainer's `addBatch`, the page's batch of photos), only while no request is in flight (a training run yields between
// epochs, and a pass there would only slow it). A request that arrives waits for the pass under
// way at most, and the warm-up goes on after WARM.idleMs without one. It ends when two passes in a row are no faster
// than the best one, after WARM.maxPasses or WARM.maxMs, or after one pass over WARM.maxPassMs
// (a slow device, where a pass would keep a person's first photo waiting too long).
const WARM = { idleMs: 250, maxMs: 4000, maxPasses: 12, maxPassMs: 1500 };
let requests = 0; // requests received so far, to tell whether one came meanwhile
let inFlight = 0; // requests received and not yet answered
let warming = null; // the warm-up of `trainer` while it is not done

function startWarmUp(t) {
  warming = t.backend === 'cpu' ? { t, spentMs: 0, lastMs: 0, passes: 0, bestMs: Infinity, slower: 0, running: false } : null;
  scheduleWarmUp();
}

function scheduleWarmUp() {
  const w = warming;
  if (!w || inFlight) return;
  const seen = requests;
  setTimeout(() => warmUp(w, seen), WARM.idleMs);
}

async function warmUp(w, seen) {
  if (w.running) return;
  w.running = true;
  try {
    while (warming === w && trainer === w.t && requests === seen && !inFlight) {
      if (w.passes >= WARM.maxPasses || w.spentMs >= WARM.maxMs || w.slower >= 2 || w.lastMs > WARM.maxPassMs) {
        warming = null;
        return;
      }
      const t0 = performance.now();
      await w.t.warmUp(w.t.addBatch);
      const ms = performance.now() - t0;
      w.spentMs += ms;
      w.lastMs = ms;
      w.passes += 1;
      if (ms < 0.95 * w.bestMs) {
        w.bestMs = ms;
        w.slower = 0;
      } else {
        w.slower += 1;
      }
      await yieldToEvents(); // a request that came during the pass goes first
    }
  } catch {
    warming = null; // the engine's own calls will say what is wrong
  } finally {
    w.running = false;
  }
  // a request answered during the last pass timed a warm-up that found this one running
  scheduleWarmUp();
}

// A synthetic photo for timing forward passes (device-choice.js): an uncompressed 24-bit BMP,
// whose decoding costs next to nothing next to the backbone, in a pattern that varies by seed.
function syntheticBmp(size, seed) {
  const row = Math.ceil((size * 3) / 4) * 4;
  const bytes = new Uint8Array(54 + row * size);
  const view = new DataView(bytes.buffer);
  bytes.set([0x42, 0x4d]);
  view.setUint32(2, bytes.length, true);
  view.setUint32(10, 54, true);
  view.setUint32(14, 40, true);
  view.setInt32(18, size, true);
  view.setInt32(22, size, true);
  view.setUint16(26, 1, true);
  view.setUint16(28, 24, true);
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      const o = 54 + y * row + x * 3;
      bytes[o] = (x * 7 + seed * 31) & 255;
      bytes[o + 1] = (y * 5 + seed * 17) & 255;
      bytes[o + 2] = ((x ^ y) + seed * 13) & 255;
    }
  }
  return bytes;
}

function need() {
  if (!trainer) throw new Error('the trainer is not ready yet');
  return trainer;
}

function engineModule() {
  if (!wasm) throw new Error('the engine is not loaded yet');
  return wasm;
}

// The progress callback of a long call (train, diagnose): each report goes to the page tagged
// with request `id`, then the worker yields so a cancel message can arrive before the next.
function reporting(id) {
  cancelRequested = false;
  return async (p) => {
    postMessage({ id, progress: p });
    await yieldToEvents();
    return !cancelRequested;
  };
}

// A request for operation `name` (operations.js), forwarded to the Trainer or the module as it is.
function forward(name, { module, progress, pixels, transfer, array }) {
  return async function operation(...args) {
    const target = module ? engineModule() : need();
    if (pixels) {
      const [{ data, width, height }, ...rest] = args;
      args = [new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height, ...rest];
    }
    // `this.id` is the request id, for tagging progress messages.
    if (progress) args = [args[0], reporting(this.id)];
    const value = await target[name](...args);
    if (array) return [...value];
    if (transfer) return { value, transfer: [(transfer === 'self' ? value : value[transfer]).buffer] };
    return value;
  };
}

const ops = Object.fromEntries(Object.entries(OPERATIONS).filter(([, spec]) => !spec.worker).map(([name, spec]) => [name, forward(name, spec)]));

Object.assign(ops, {
  async create({ arch, weightsUrl, sha256, device, augment, fit, finetune, noThreads }) {
    await loadEngine(device, noThreads);
    startStep('weights');
    const weights = await loadWeights(weightsUrl, {
      sha256,
      onProgress: (p) => postMessage({ status: { phase: 'weights', ...p } }),
    });
    startStep('trainer');
    trainer?.free();
    trainer = await Trainer.create({ arch, weights, device, augment, fit, finetune: Boolean(finetune) });
    startWarmUp(trainer);
    // Which wasm package runs and on how many threads (the device badge).
    return {
      arch: trainer.arch, dim: trainer.dim, finetune: trainer.finetune, backend: trainer.backend, backendReason: trainer.backendReason + engine.note,
      threads: trainer.threads ?? 1, wasmPackage: engine.name, addBatch: trainer.addBatch,
    };
  },
  // Each image's id, and its thumbnail and embedding for the page to keep. The thumbnail is
  // taken: the page keeps it, and the trainer's copy would double what 5,000 photos hold.
  async addImage(label, bytes) {
    const t = need();
    const id = await t.addImage(label, bytes);
    const thumbnail = t.takeThumbnail(id);
    const embedding = t.embedding(id);
    return { value: { id, thumbnail, embedding }, transfer: [thumbnail.buffer, embedding.buffer] };
  },
  async addImages(label, list) {
    const t = need();
    const transfer = [];
    const value = (await t.addImages(label, list)).map((r) => {
      if (typeof r === 'string') return { error: r };
      const thumbnail = t.takeThumbnail(r);
      const embedding = t.embedding(r);
      transfer.push(thumbnail.buffer, embedding.buffer);
      return { id: r, thumbnail, embedding };
    });
    return { value, transfer };
  },
  // One candidate of the `auto` device choice (device-choice.js), in a worker of its own that the
  // client throws away afterwards, so the loser's memory and GPU device go with it. A warm-up
  // pass (shader compilation, JIT) is timed apart from the batch that decides.
  async measure({ arch, weightsUrl, sha256, device, images = 4 }) {
    const { id } = this;
    await loadEngine(device);
    const weights = await loadWeights(weightsUrl, {
      sha256,
      onProgress: (p) => postMessage({ status: { phase: 'weights', ...p } }),
    });
    const t = await Trainer.create({ arch, weights, device, augment: 0 });
    try {
      const photos = Array.from({ length: images + 1 }, (_, i) => syntheticBmp(256, i));
      let t0 = performance.now();
      const refused = (r) => r.find((x) => typeof x === 'string');
      const warm = await t.addImages('warm-up', photos.slice(0, 1));
      if (refused(warm)) throw new Error(`the timing image was refused: ${refused(warm)}`);
      const warmupMs = performance.now() - t0;
      postMessage({ id, progress: { phase: 'warmup', warmupMs } });
      t0 = performance.now();
      const timed = await t.addImages('timed', photos.slice(1));
      if (refused(timed)) throw new Error(`the timing image was refused: ${refused(timed)}`);
      const msPerImage = (performance.now() - t0) / images;
      return { msPerImage, warmupMs, backend: t.backend, threads: t.threads ?? 1, wasmPackage: engine.name };
    } finally {
      t.free();
    }
  },
  // Test hook: destroy the WebGPU devices to exercise the device-lost path for real.
  debugLoseDevice() {
    for (const d of gpuDevices) d.destroy();
    return gpuDevices.length;
  },
});

function message(err) {
  if (err instanceof Error) return err.message || String(err);
  return typeof err === 'string' ? err : JSON.stringify(err);
}

self.onmessage = async ({ data }) => {
  const { id, op, args = [] } = data;
  if (op === 'cancel') {
    cancelRequested = true;
    return;
  }
  requests += 1;
  inFlight += 1;
  try {
    const fn = ops[op];
    if (!fn) throw new Error(`unknown operation ${op}`);
    const out = await fn.apply({ id }, args);
    if (out && typeof out === 'object' && 'transfer' in out && 'value' in out) {
      postMessage({ id, ok: true, value: out.value }, out.transfer);
    } else {
      postMessage({ id, ok: true, value: out });
    }
  } catch (err) {
    // A trap (a Rust panic, `unreachable`) leaves the wasm instance unusable.
    const fatal = err instanceof WebAssembly.RuntimeError;
    // A failed GPU readback can reach us before the device's `lost` promise settles: give it a
    // moment, so the client sees a device loss (and recovers) rather than an ordinary error.
    if (gpuDevices.length && !lostReason) await new Promise((r) => setTimeout(r, 100));
    postMessage({ id, ok: false, error: message(err), fatal, lost: lostReason });
  }
  inFlight -= 1;
  scheduleWarmUp();
};
