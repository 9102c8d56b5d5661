// Which of the threaded wasm builds (scripts/wasm_pkg.sh) this engine can run, best first.
// pkg-cpu-relaxed/ multiplies with relaxed SIMD's fused multiply-add (Chromium 114+, Firefox
// 120+); an engine without relaxed SIMD (Safari) rejects that module whole, so it gets pkg-cpu/,
// SIMD128 only. worker.js loads the first that starts. Apart from the worker so that the choice
// can be tested with any answer of `validate` (tests/js/builds.test.mjs).

// The smallest module that uses relaxed SIMD: one function running i8x16.relaxed_swizzle
// (wasm-feature-detect's probe).
export const RELAXED_SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
  10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2, 11]);

export function threadedBuilds(validate = (bytes) => WebAssembly.validate(bytes)) {
  let relaxed = false;
  try {
    relaxed = validate(RELAXED_SIMD_PROBE) === true;
  } catch {
    // an engine that throws on the probe has no relaxed SIMD either
  }
  return relaxed ? ['pkg-cpu-relaxed', 'pkg-cpu'] : ['pkg-cpu'];
}
