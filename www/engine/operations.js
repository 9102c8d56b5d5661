// The engine's operations, in one list. Each is a method of the wasm `Trainer` (src/web/mod.rs)
// or, with `module`, a function of the wasm module. The worker (worker.js) forwards a request to
// it by name, and the client (client.js) reaches every one through `Sortwise.call(op, ...args)`;
// it has a method of its own only where it adds something (ids it keeps, the model it journals,
// cached rules), the others are made from this list. tests/js/operations.test.mjs checks the list
// against `Trainer.prototype` and the module of every wasm build, against the declarations
// wasm-bindgen generates from the Rust (pkg/sortwise.d.ts), and against trainer.d.ts and client.d.ts.
//
// Adding an operation: the Rust method, a row here, its types in trainer.d.ts and client.d.ts.
//
// A row's flags:
//   progress  the Trainer takes a progress callback last: its reports go to the page, tagged with
//             the request, and a cancel arriving between two of them stops the call (train, diagnose)
//   pixels    the first argument is an ImageData (or {data, width, height}), given to the Trainer
//             as (rgba bytes, width, height)
//   transfer  the answer's bytes move to the page instead of being copied: `self` (the answer is
//             the bytes) or the name of the field holding them
//   array     the answer (a typed array) reaches the page as a plain array
//   module    a function of the wasm module, not of the Trainer: it answers before a Trainer exists
//   unqueued  the client asks at once instead of queueing it behind the running call (it reads no
//             state of the session, e.g. between two training epochs)
export const OPERATIONS = Object.freeze({
  addImage: { worker: true },
  addImages: { worker: true },
  addEmbedding: {},
  removeImage: {},
  renameClass: {},
  removeClass: {},
  labels: {},
  counts: { array: true },
  train: { progress: true },
  diagnose: { progress: true },
  predict: {},
  predictPixels: { pixels: true },
  explain: {},
  explainPixels: { pixels: true },
  exportModel: { transfer: 'self' },
  exportOnnx: { transfer: 'self' },
  importModel: {},
  shareModel: { transfer: 'bytes' },
  rules: { module: true, unqueued: true },
  validateLabel: { module: true, unqueued: true },
  sharedModel: { module: true, unqueued: true, transfer: 'self' },
});

// `worker`: the worker answers with more than the Trainer's method does (addImage and addImages
// also hand back each image's thumbnail and embedding, read with `takeThumbnail(id)` (the page
// keeps it; the trainer then does not) / `embedding(id)`).

/** The worker's own requests, not the Trainer's: start one, time a device, a test hook. */
export const WORKER_REQUESTS = Object.freeze(['create', 'measure', 'debugLoseDevice']);

/**
 * What else the Trainer has, none of it a request: its getters (copied into the client by
 * `create`), the per-image reads the worker makes for addImage(s), the warm-up the worker runs
 * itself while the engine is idle (`warmUp`), and wasm-bindgen's `free`.
 */
export const TRAINER_MEMBERS = Object.freeze(['arch', 'backend', 'backendReason', 'dim', 'finetune', 'threads', 'addBatch', 'embedding', 'thumbnail', 'takeThumbnail', 'warmUp', 'free']);
