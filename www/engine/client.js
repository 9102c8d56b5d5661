// The page's handle on the trainer: the wasm `Trainer` API, run in a module Web Worker
// (worker.js, beside it) so the UI stays responsive. Same shape as the Trainer, every method async.
//
// When WebGPU is lost (driver reset, GPU process crash, mobile tab suspended) or the wasm
// instance traps, it starts a fresh worker on the CPU backend and loads the images and the model
// back into it; `backendReason` says why. Who keeps them decides the rest:
// - a page that keeps its own images (project.js) passes `restore`, which loads them; the client
//   holds no image state, its ids are the engine's, and the failed call rejects with `EngineLost`
//   (`retry`: the device failed, so the same call will work now) for the caller to make again
//   with the ids `restore` gave;
// - otherwise a journal (journal.js) keeps them under ids of its own, and the failed call is
//   retried here (on the GPU) or rejected with a message saying the images are kept (a trap).

import { chooseDevice } from './device-choice.js';
import { EngineLost } from './errors.js';
import { Journal } from './journal.js';
import { OPERATIONS } from './operations.js';
import { engineWorker } from './spawn.js';
import { backboneEntry, weightsUrl } from './weights.js';

export { EngineLost };

const here = import.meta.url;

const f32 = (v) => (v instanceof Float32Array ? v : new Float32Array(v));

class WorkerError extends Error {
  constructor(message, { fatal = false, lost = false, stalled = false } = {}) {
    super(message);
    this.fatal = fatal;
    this.lost = lost;
    this.stalled = stalled;
  }
}

// How long the worker may stay at starting its wasm thread pool. A healthy start takes well under
// a second (its workers instantiate the module already compiled). One that never finishes can
// block the worker's own event loop (the pool's build waits for every thread; Firefox now and
// then leaves one that never takes its thread), so the deadline is kept here.
const POOL_DEADLINE_MS = 20000;

export class Sortwise {
  #opts;
  #entry;
  #worker = null;
  #pending = new Map();
  #nextRequest = 1;
  #queue = Promise.resolve();
  #journal; // null when the caller keeps the images (`restore`)
  #lost = null; // why every call fails until a restart: the device was lost, or a restore failed
  #rules = null;
  #noThreads = null; // why the threaded build is not tried again: its pool never started here

  /** One of 'webgpu' | 'cpu': what actually runs. */
  backend = null;
  backendReason = '';
  /** Threads the CPU backend runs on (1 on WebGPU and without cross-origin isolation). */
  threads = 1;
  /** The wasm build the worker loaded: 'pkg-cpu-relaxed' or 'pkg-cpu' (CPU, threads; relaxed SIMD
   * where the engine has it) or 'pkg' (WebGPU + CPU). */
  wasmPackage = null;
  /** Photos to hand `addImages` at once: the trainer's `addBatch`. */
  addBatch = 8;
  arch = null;
  dim = 0;
  /** Whether the trainer keeps stage inputs, so `train({finetuneLast: true})` can run. */
  finetune = false;
  /** How `device: 'auto'` was decided when it was measured (device-choice.js), else null. */
  measurement = null;

  /**
   * `{arch, device: 'auto'|'webgpu'|'cpu', augment, fit, finetune, weightsUrl, sha256, onStatus,
   * restore}`. `restore(engine)`, when given, loads the caller's images and model into a restarted
   * worker through `engine` (`addEmbedding`, `addImage`, `importModel`, `finetune`; calls that do
   * not wait in the queue, which the failed call holds) and the client keeps no images itself.
   * Without `weightsUrl`, the weights come from `weights/manifest.json` beside this module's folder.
   * `finetune: true` lets `train({finetuneLast: true})` run, at 88-800 KB more memory per view.
   * `device: 'auto'` with a hardware WebGPU adapter times both devices once (device-choice.js)
   * and keeps the verdict; `debug` holds that measurement's test hooks.
   */
  static async create(opts = {}) {
    const s = new Sortwise(opts);
    await s.#start(opts.device ?? 'auto', { choose: true });
    return s;
  }

  constructor(opts) {
    this.#opts = opts;
    this.#journal = opts.restore ? null : new Journal();
  }

  #status(s) {
    try {
      this.#opts.onStatus?.(s);
    } catch (err) {
      console.error(err);
    }
  }

  async #start(device, { choose = false } = {}) {
    if (!this.#opts.weightsUrl) this.#entry ??= await backboneEntry(this.#opts.arch);
    const url = this.#opts.weightsUrl ?? weightsUrl(this.#entry);
    const sha256 = this.#opts.sha256 ?? this.#entry?.sha256;
    const arch = this.#opts.arch ?? this.#entry?.arch;
    let chosen = null;
    if (choose && device === 'auto') {
      chosen = await chooseDevice({
        arch, weightsUrl: url, sha256, workerUrl: new URL('./worker.js', here), debug: this.#opts.debug,
        onStatus: (st) => this.#status(st),
      });
      device = chosen.device;
      /** The `auto` measurement: `{device, gpuMs, cpuMs, cpuThreads, at, ...}`, or null. */
      this.measurement = chosen.verdict ? { ...chosen.verdict, cached: chosen.cached } : null;
    }
    this.#lost = null;
    const args = {
      arch,
      weightsUrl: url,
      sha256,
      device,
      augment: this.#opts.augment ?? 0,
      fit: this.#opts.fit,
      finetune: Boolean(this.#opts.finetune),
    };
    const launch = () => this.#launch({ ...args, noThreads: this.#noThreads });
    const isStall = (err) => err instanceof WorkerError && err.stalled;
    // After one stall the threads get a second try before the single-threaded build: the stall
    // is rare, and offline only the build a visit used is cached (sw.js), so pkg/ may not load.
    // After two, pkg/ starts, which has no pool to stall.
    let info;
    for (let stalls = 0; !info;) {
      try {
        info = await launch();
      } catch (err) {
        if (!isStall(err)) throw err;
        stalls += 1;
        if (stalls === 2) this.#noThreads = `${err.message}, twice`;
      }
    }
    Object.assign(this, info);
    if (chosen?.reason) {
      // The engine's own "requested" says nothing once the measurement chose the device.
      const rest = info.backendReason.replace(/^requested(; )?/, '');
      this.backendReason = rest ? `${chosen.reason}; ${rest}` : chosen.reason;
    }
    this.#status({ phase: 'backend', backend: this.backend, reason: this.backendReason });
  }

  // A fresh worker and its trainer. Past POOL_DEADLINE_MS at the thread pool step the worker is
  // ended and the call rejects with `stalled`, for #start to try again.
  async #launch(args) {
    const worker = engineWorker(new URL('./worker.js', here), 'sortwise');
    this.#worker = worker;
    let timer = null;
    const stalled = () => {
      worker.terminate();
      this.#failAll(new WorkerError(`the wasm thread pool did not start within ${POOL_DEADLINE_MS / 1000} s`, { stalled: true }));
    };
    // Messages still queued from a replaced worker (its `lost` notice) must not touch this one.
    worker.onmessage = (e) => {
      if (worker !== this.#worker) return;
      const s = e.data?.status;
      if (s?.phase === 'start') {
        clearTimeout(timer);
        if (s.step === 'thread pool') timer = setTimeout(stalled, POOL_DEADLINE_MS);
      }
      this.#onMessage(e.data);
    };
    worker.onerror = (e) => {
      e.preventDefault?.();
      if (worker !== this.#worker) return;
      this.#failAll(new WorkerError(`the trainer stopped: ${e.message || 'worker error'}`, { fatal: true }));
    };
    try {
      return await this.#post('create', [args]);
    } finally {
      clearTimeout(timer);
    }
  }

  #onMessage(msg) {
    if (msg.status) return this.#status(msg.status);
    if (msg.lost) {
      // Pending calls would wait forever on a dead device: fail them now; the queue recovers.
      if (this.backend === 'webgpu') {
        this.#lost = `WebGPU device lost (${msg.lost})`;
        this.#failAll(new WorkerError(this.#lost, { lost: true }));
      }
      return;
    }
    const p = this.#pending.get(msg.id);
    if (!p) return;
    if (msg.progress) {
      try {
        p.onProgress?.(msg.progress);
      } catch (err) {
        console.error(err);
      }
      return;
    }
    this.#pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new WorkerError(msg.error, { fatal: msg.fatal, lost: Boolean(msg.lost) && this.backend === 'webgpu' }));
  }

  #failAll(err) {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  #post(op, args = [], { transfer = [], onProgress } = {}) {
    if (this.#lost) return Promise.reject(new WorkerError(this.#lost, { lost: true }));
    const id = this.#nextRequest++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      this.#worker.postMessage({ id, op, args }, transfer);
    });
  }

  // One call at a time: the state replay after a failure must not interleave with other calls.
  #run(op, args, opts) {
    const task = this.#queue.then(() => this.#attempt(op, args, opts));
    this.#queue = task.catch(() => {});
    return task;
  }

  async #attempt(op, args, opts) {
    try {
      return await this.#post(op, args, opts);
    } catch (err) {
      if (!(err instanceof WorkerError) || !(err.fatal || err.lost)) throw err;
      // On the GPU the failure was the device's; on the CPU it was ours, and would repeat.
      const wasGpu = this.backend === 'webgpu';
      await this.#recover(err.message);
      const kept = `${err.message}; the trainer was restarted and your images are kept`;
      if (!this.#journal) throw new EngineLost(wasGpu ? err.message : kept, wasGpu);
      if (wasGpu) return this.#post(op, args, opts);
      throw new Error(kept);
    }
  }

  async #recover(why) {
    this.#worker.terminate();
    this.#failAll(new WorkerError('the trainer was restarted'));
    const was = this.backend;
    await this.#start('cpu');
    const post = (op, args) => this.#post(op, args);
    if (this.#journal) {
      await this.#journal.replay(post, {
        finetune: this.finetune,
        onProgress: (done, total) => { if (this.finetune) this.#status({ phase: 'replay', done, total }); },
      });
    } else {
      try {
        await this.#opts.restore({
          finetune: this.finetune,
          addEmbedding: (label, embedding, thumbnail) => post('addEmbedding', [label, f32(embedding), thumbnail]),
          addImage: (label, bytes) => post('addImage', [label, bytes]),
          importModel: (bytes) => post('importModel', [new Uint8Array(bytes)]).then((labels) => ({ labels })),
        });
      } catch (e) {
        // A worker holding part of the caller's images must not answer as if it held them all
        // (a training on some of them): every later call restarts and restores again.
        this.#lost = `the images could not be loaded back (${e.message})`;
        throw new Error(`${why}; ${this.#lost}`);
      }
    }
    this.backendReason = was === 'webgpu'
      ? `WebGPU stopped working (${why}); switched to the CPU backend, your images and model are kept`
      : `the trainer was restarted after an error (${why}); your images and model are kept`;
    this.#status({ phase: 'backend', backend: this.backend, reason: this.backendReason });
  }

  // The id the caller gets for an image the worker added as `workerId`.
  #remember(label, embedding, workerId, thumbnail, pixels) {
    return this.#journal ? this.#journal.remember(label, embedding, workerId, thumbnail, pixels, this.finetune) : workerId;
  }

  // A caller's id to a worker id and back (the same without a journal).
  #toWorker(id) { return this.#journal ? this.#journal.workerId(id) : id; }
  #mine(workerId) { return this.#journal ? this.#journal.mine(workerId) : workerId; }

  /** Embed an encoded image; resolves to `{id, thumbnail (JPEG bytes), embedding}`. */
  async addImage(label, bytes) {
    const r = await this.#run('addImage', [label, bytes]);
    return { id: this.#remember(label, r.embedding, r.id, r.thumbnail, true), thumbnail: r.thumbnail, embedding: r.embedding };
  }

  /**
   * Embed several encoded images in one backbone pass (faster per image than `addImage`), all of
   * class `label` or, given an array of names, each of its own (`label[i]` for `list[i]`);
   * resolves to one entry per image, in order: `{id, thumbnail, embedding}`, or `{error}` (the
   * reason) for a file that is not a usable image, which leaves the others added.
   */
  async addImages(label, list) {
    const results = await this.#run('addImages', [label, list]);
    const labelOf = (k) => (Array.isArray(label) ? label[k] : label);
    return results.map((r, k) => (r.error !== undefined
      ? { error: r.error }
      : { id: this.#remember(labelOf(k), r.embedding, r.id, r.thumbnail, true), thumbnail: r.thumbnail, embedding: r.embedding }));
  }

  /**
   * Restore an image from a saved embedding (same backbone); resolves to its id. It has no
   * pixels, so `train({finetuneLast: true})` refuses while it is here: with `finetune`, add saved
   * images with `addImage(label, thumbnail)` instead.
   */
  async addEmbedding(label, embedding, thumbnail) {
    const floats = f32(embedding);
    const workerId = await this.#run('addEmbedding', [label, floats, thumbnail]);
    return this.#remember(label, floats, workerId, thumbnail, false);
  }

  async removeImage(id) {
    if (this.#journal && !this.#journal.has(id)) return false;
    const removed = await this.#run('removeImage', [this.#toWorker(id)]);
    this.#journal?.forget(id);
    return removed;
  }

  async renameClass(from, to) {
    await this.#run('renameClass', [from, to]);
    this.#journal?.rename(from, to);
  }

  async removeClass(label) {
    const n = await this.#run('removeClass', [label]);
    this.#journal?.dropClass(label);
    return n;
  }

  /**
   * Train a new head; `onProgress(p)` after every epoch. `cancel()` rejects it with 'cancelled'.
   * With a journal the new model is kept for a restart (a caller with `restore` keeps its own).
   */
  async train(opts = {}, onProgress) {
    const report = await this.#run('train', [opts], { onProgress });
    for (const m of report.misclassified ?? []) m.id = this.#mine(m.id);
    if (this.#journal) this.#journal.model = await this.#run('exportModel', []);
    return report;
  }

  cancel() {
    this.#worker?.postMessage({ op: 'cancel' });
  }

  /** The data's check-up (duplicates, leaks, likely label errors, per-class advice), in this client's ids. */
  async diagnose(opts = {}, onProgress) {
    const d = await this.#run('diagnose', [opts], { onProgress });
    const mine = (id) => this.#mine(id);
    for (const p of d.pairs) { p.a = mine(p.a); p.b = mine(p.b); }
    for (const s of d.suspects) s.id = mine(s.id);
    for (const c of d.classes) c.boundary = c.boundary.map(mine);
    return d;
  }

  /** Load a `.sortwise` model made for this backbone; the current model stays if it is refused. */
  async importModel(bytes) {
    const copy = new Uint8Array(bytes);
    const labels = await this.#run('importModel', [copy]);
    if (this.#journal) this.#journal.model = copy;
    return { labels };
  }

  /** The `.sortwise` file that a link's bytes stand for (for `importModel`); rejects damaged bytes. */
  sharedModel(bytes) {
    return this.#ask('sharedModel', [new Uint8Array(bytes)]);
  }

  /**
   * Any engine operation by name (engine/operations.js), with its arguments; a progress callback
   * goes last for the operations that report (train, diagnose). Queued behind the running call
   * unless the operation reads no session state. The named methods are this with what the client
   * keeps (ids, the model, the rules) added.
   */
  call(op, ...args) {
    const spec = OPERATIONS[op];
    if (!spec) return Promise.reject(new Error(`unknown operation ${op}`));
    const onProgress = spec.progress && typeof args.at(-1) === 'function' ? args.pop() : undefined;
    return spec.unqueued ? this.#ask(op, args) : this.#run(op, args, { onProgress });
  }

  /**
   * The engine's rules: `{maxLabelChars, maxAugment, unsureLabel, train}` where `train` holds the
   * defaults of every `train()` option. Asked once, then cached (they are the wasm build's).
   * Not queued behind the running call: it answers between two training epochs.
   */
  rules() {
    if (!this.#rules) {
      this.#rules = this.#ask('rules', []);
      this.#rules.catch(() => { this.#rules = null; });
    }
    return this.#rules;
  }

  /**
   * The engine's check of a class name: resolves to the trimmed name, or rejects with the
   * engine's reason (empty, longer than `rules().maxLabelChars`, control characters). Not queued,
   * like `rules()`.
   */
  validateLabel(name) {
    return this.#ask('validateLabel', [String(name ?? '')]);
  }

  // A call that needs no place in the queue (it reads no state); a lost device or a trap still
  // goes through the queue, which restarts the worker first as for any other call.
  async #ask(op, args) {
    try {
      return await this.#post(op, args);
    } catch (err) {
      if (!(err instanceof WorkerError) || !(err.fatal || err.lost)) throw err;
      return this.#run(op, args);
    }
  }

  /** Test hook: destroy the WebGPU device, as a driver reset would. */
  debugLoseDevice() {
    return this.#post('debugLoseDevice', []);
  }

  terminate() {
    this.#worker?.terminate();
    this.#failAll(new Error('the trainer was closed'));
  }
}

// Every operation the client adds nothing to is a method that only calls it (named as the
// operation, for stack traces and `Sortwise.prototype`).
for (const op of Object.keys(OPERATIONS)) {
  if (Object.hasOwn(Sortwise.prototype, op)) continue;
  Object.defineProperty(Sortwise.prototype, op, {
    value: { [op](...args) { return this.call(op, ...args); } }[op],
    writable: true,
    configurable: true,
  });
}
