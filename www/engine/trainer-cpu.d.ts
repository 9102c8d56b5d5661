// Types of pkg-cpu/sortwise.js ('sortwise/trainer-cpu'): the same Trainer as pkg/ on the CPU only,
// on a pool of wasm threads. Threads need a cross-origin isolated page (COOP + COEP, or www/sw.js)
// and a call to `initThreadPool` after `init()`, in a worker:
//   await init(); await initThreadPool(navigator.hardwareConcurrency);
export * from './trainer.js';
export { default } from './trainer.js';

/** Start `threads` Web Workers sharing the module's memory (wasm-bindgen-rayon). */
export function initThreadPool(threads: number): Promise<void>;
