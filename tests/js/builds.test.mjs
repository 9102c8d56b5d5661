// Which threaded wasm build the worker tries (www/engine/builds.js): the relaxed-SIMD one first
// only where the engine validates the probe, and the SIMD128 one always, last. That the probe
// is the right module is checked in real engines (tests/e2e/engines.mjs: Chromium and Firefox
// validate it, WebKit does not); here against Node's V8, with the feature turned on and off.

import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { RELAXED_SIMD_PROBE, threadedBuilds } from '../../www/engine/builds.js';

test('relaxed SIMD first where the probe validates, SIMD128 always last', () => {
  assert.deepEqual(threadedBuilds(() => true), ['pkg-cpu-relaxed', 'pkg-cpu']);
  assert.deepEqual(threadedBuilds(() => false), ['pkg-cpu']);
  assert.deepEqual(threadedBuilds(() => { throw new TypeError('no validate'); }), ['pkg-cpu']);
  // Only a real `true`: a validate that answers something else is not taken for support.
  assert.deepEqual(threadedBuilds(() => 1), ['pkg-cpu']);
});

test('the probe is a relaxed-SIMD module: valid with the feature, invalid without it', () => {
  const bytes = JSON.stringify([...RELAXED_SIMD_PROBE]);
  const validate = (flag) => execFileSync(process.execPath, [flag, '-e', `process.stdout.write(String(WebAssembly.validate(new Uint8Array(${bytes}))))`]).toString();
  assert.equal(validate('--experimental-wasm-relaxed-simd'), 'true');
  assert.equal(validate('--no-experimental-wasm-relaxed-simd'), 'false');
});
