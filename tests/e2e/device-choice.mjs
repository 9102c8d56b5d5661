#!/usr/bin/env node
// `device: 'auto'` by measurement (www/engine/device-choice.js), in headless Chromium, whose only WebGPU
// adapter here is SwiftShader. With the test flag that treats a software adapter as a candidate:
//   1. the real measurement picks the CPU (SwiftShader is far slower), says both timings (or that
//      WebGPU was abandoned) in backendReason, and keeps the verdict;
//   2. a second create reuses the kept verdict without measuring again (fast, says when measured);
//   3. a forced slow CPU (the `cpuSlowdown` test hook multiplies the CPU's measured time) picks WebGPU;
//   4. without the flag, the software adapter is skipped as before (no measurement at all).
// Needs pkg/, pkg-cpu-relaxed/ and www/weights/ (./run test builds them).
//
//   node tests/e2e/device-choice.mjs

import { launchChromium, openHarness, serveRepo } from './serve.mjs';

const T0 = Date.now();
const log = (...a) => console.log(`[device-choice ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);

const server = await serveRepo();
const browser = await launchChromium();
let failed = false;
const check = (cond, msg) => { if (!cond) { failed = true; log(`FAIL: ${msg}`); } };
try {
  const page = await openHarness(browser, server, log, () => { failed = true; });
  const r = await page.evaluate(async () => {
    const { Sortwise } = await import('/www/engine/client.js');
    const out = {};
    const phases = [];
    const onStatus = (s) => { if (s.phase === 'measure') phases.push(s.device); };
    const create = async (debug) => {
      const t = performance.now();
      const sw = await Sortwise.create({ arch: 'efficientnet_lite0', device: 'auto', debug, onStatus });
      const o = { backend: sw.backend, reason: sw.backendReason, measurement: sw.measurement, wasmPackage: sw.wasmPackage, ms: performance.now() - t, phases: phases.splice(0) };
      sw.terminate();
      return o;
    };
    out.measured = await create({ measureSoftwareAdapter: true, forgetVerdict: true });
    out.kept = await create({ measureSoftwareAdapter: true });
    out.slowCpu = await create({ measureSoftwareAdapter: true, forgetVerdict: true, cpuSlowdown: 1000 });
    out.plain = await create(undefined);
    out.stored = JSON.parse(localStorage.getItem('sortwise.deviceVerdicts.v1') || '{}');
    return out;
  });
  for (const [k, v] of Object.entries(r)) if (k !== 'stored') log(`${k}: ${JSON.stringify(v)}`);

  const m = r.measured;
  check(m.backend === 'cpu' && m.wasmPackage === 'pkg-cpu-relaxed', `the measurement picks the CPU over SwiftShader (got ${m.backend}, ${m.wasmPackage})`);
  check(JSON.stringify(m.phases) === '["cpu","webgpu"]', `both candidates measured, CPU first (${m.phases})`);
  check(m.measurement && m.measurement.cpuMs > 0 && !m.measurement.cached, 'the CPU timing is kept');
  check(m.measurement.gpuMs == null ? /abandoned/.test(m.measurement.gpuNote) : m.measurement.gpuMs > m.measurement.cpuMs,
    `WebGPU is slower or abandoned (${m.measurement.gpuMs} ms, ${m.measurement.gpuNote})`);
  check(/^measured: WebGPU .* vs CPU [\d.]+ ms\/image \(\d+ threads?\)/.test(m.reason), `backendReason shows both: "${m.reason}"`);

  const k = r.kept;
  check(k.backend === 'cpu' && k.measurement.cached && k.phases.length === 0, `the kept verdict is reused without measuring (${JSON.stringify(k.phases)})`);
  check(/measured on \d{4}-\d\d-\d\d/.test(k.reason), `the reason says when it was measured: "${k.reason}"`);
  check(k.measurement.cpuMs === m.measurement.cpuMs, 'the kept verdict is the measured one');

  const s = r.slowCpu;
  check(s.backend === 'webgpu' && s.wasmPackage === 'pkg', `a forced slow CPU picks WebGPU (got ${s.backend})`);
  check(s.measurement.gpuMs > 0 && s.measurement.gpuMs < s.measurement.cpuMs, `WebGPU measured faster than the slowed CPU (${s.measurement.gpuMs} vs ${s.measurement.cpuMs})`);
  check(/^measured: WebGPU [\d.]+ ms\/image vs CPU/.test(s.reason), `backendReason: "${s.reason}"`);

  const p = r.plain;
  check(p.backend === 'cpu' && p.measurement === null && p.phases.length === 0, 'without the test flag a software adapter is not measured');
  check(/software/i.test(p.reason), `the software-adapter shortcut says why: "${p.reason}"`);
  check(Object.keys(r.stored).length === 1, `one verdict kept (per adapter, build and backbone): ${Object.keys(r.stored)}`);
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
  server.stop();
}
console.log(failed ? 'device-choice: FAIL' : 'device-choice: PASS');
process.exit(failed ? 1 : 0);
