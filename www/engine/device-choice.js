// `device: 'auto'` decided by measurement, not by the adapter's name. WebGPU is not always the
// faster device (an EfficientNet took ~1100 ms on WebGPU vs ~80 ms on wasm on an RTX 4090,
// gpuweb#5291), so where a hardware adapter exists both candidates run one batch of real
// forward passes, each in a throwaway worker, and the faster one wins. The verdict is kept per
// adapter, wasm build and backbone in localStorage, so later visits start at once.
//
// Without WebGPU or with a software adapter (SwiftShader, llvmpipe: measured ~50x slower than
// the CPU path) nothing is measured: the worker's own `auto` picks the CPU and says why.

import { engineWorker } from './spawn.js';

const STORE = 'sortwise.deviceVerdicts.v1';
// A candidate is given up once its batch has taken this many times the best one's.
const ABANDON_FACTOR = 3;
// Shader compilation on a cold GPU can take seconds; a warm-up is only cut off past this.
const WARMUP_LIMIT_MS = 60000;
const IMAGES = 4;

/** `{kind: 'none'|'software'|'hardware', key}`: what the page's WebGPU adapter is. */
export async function probeAdapter() {
  if (!globalThis.navigator?.gpu) return { kind: 'none', key: '' };
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch { /* as no adapter */ }
  if (!adapter) return { kind: 'none', key: '' };
  const info = adapter.info ?? {};
  const fields = ['vendor', 'architecture', 'device', 'description'].map((k) => (typeof info[k] === 'string' ? info[k] : ''));
  const fallback = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter);
  const name = fields.join(' ').toLowerCase();
  const software = fallback || ['swiftshader', 'llvmpipe', 'lavapipe', 'software'].some((s) => name.includes(s));
  return { kind: software ? 'software' : 'hardware', key: [...fields, fallback ? 'fallback' : ''].join('|') };
}

// What identifies the wasm builds: scripts/wasm_pkg.sh writes a hash of each module next to it.
async function buildId(base) {
  const part = async (dir) => {
    try {
      const res = await fetch(new URL(`${dir}/build-id`, base), { cache: 'no-cache' });
      return res.ok ? (await res.text()).trim().slice(0, 64) : 'unknown';
    } catch {
      return 'unknown';
    }
  };
  return `${await part('../../pkg')}+${await part('../../pkg-cpu')}+${await part('../../pkg-cpu-relaxed')}`;
}

function readVerdicts() {
  try {
    const v = JSON.parse(localStorage.getItem(STORE) || '{}');
    return v && typeof v === 'object' ? v : {};
  } catch {
    return {}; // storage disabled or garbage: measure again
  }
}

function keep(key, verdict) {
  try {
    localStorage.setItem(STORE, JSON.stringify({ ...readVerdicts(), [key]: verdict }));
  } catch { /* storage disabled or full: measured again next time */ }
}

const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));

/** The sentence `backendReason` shows for a verdict. */
export function describe(v, cached) {
  const gpu = v.gpuMs != null ? `WebGPU ${fmt(v.gpuMs)} ms/image` : `WebGPU ${v.gpuNote}`;
  const cpu = v.cpuMs != null ? `CPU ${fmt(v.cpuMs)} ms/image (${v.cpuThreads} thread${v.cpuThreads === 1 ? '' : 's'})` : `CPU ${v.cpuNote}`;
  const when = cached ? `, measured on ${new Date(v.at).toISOString().slice(0, 10)}` : '';
  return `measured: ${gpu} vs ${cpu}${when}`;
}

/**
 * Runs one candidate in a fresh worker; resolves to `{msPerImage, warmupMs, threads}` or
 * `{error}`. `limitMs` (the best batch so far × ABANDON_FACTOR) ends the worker mid-batch.
 */
function timeCandidate(workerUrl, args, { limitMs = Infinity, onStatus } = {}) {
  return new Promise((resolve) => {
    const worker = engineWorker(workerUrl, `sortwise-measure-${args.device}`);
    let timer = null;
    const done = (r) => {
      clearTimeout(timer);
      worker.terminate();
      resolve(r);
    };
    const arm = (ms, why) => {
      clearTimeout(timer);
      if (Number.isFinite(ms)) timer = setTimeout(() => done({ error: why }), ms);
    };
    worker.onerror = (e) => {
      e.preventDefault?.();
      done({ error: e.message || 'the worker failed' });
    };
    worker.onmessage = ({ data }) => {
      if (data.status) {
        if (data.status.phase === 'weights') onStatus?.(data.status);
        return;
      }
      if (data.id !== 1) return;
      if (data.progress) {
        // The warm-up is over: from here the batch itself is held to the limit.
        if (data.progress.phase === 'warmup') arm(limitMs * 1.05, `more than ${ABANDON_FACTOR}x slower, abandoned`);
        return;
      }
      if (data.ok) done(data.value);
      else done({ error: data.error });
    };
    arm(WARMUP_LIMIT_MS, `warm-up over ${WARMUP_LIMIT_MS / 1000} s, abandoned`);
    worker.postMessage({ id: 1, op: 'measure', args: [{ ...args, images: IMAGES }] });
  });
}

/**
 * The device `auto` means here: `{device: 'webgpu'|'cpu', reason}` by measurement (or an earlier
 * verdict), or `{device: 'auto'}` where there is nothing to measure. `debug` (tests only):
 * `measureSoftwareAdapter` treats a software adapter as a candidate, `cpuSlowdown` multiplies
 * the CPU's measured time, `forgetVerdict` ignores a kept verdict.
 */
export async function chooseDevice({ arch, weightsUrl, sha256, workerUrl, onStatus, debug = {} }) {
  const adapter = await probeAdapter();
  const candidate = adapter.kind === 'hardware' || (adapter.kind === 'software' && debug.measureSoftwareAdapter);
  if (!candidate) return { device: 'auto' };
  const key = `${adapter.key}#${await buildId(workerUrl)}#${arch}`;
  const kept = readVerdicts()[key];
  if (kept && !debug.forgetVerdict && (kept.device === 'webgpu' || kept.device === 'cpu')) {
    return { device: kept.device, reason: describe(kept, true), verdict: kept, cached: true };
  }
  onStatus?.({ phase: 'measure', device: 'cpu' });
  const base = { arch, weightsUrl, sha256 };
  const cpu = await timeCandidate(workerUrl, { ...base, device: 'cpu' }, { onStatus });
  const slow = Number(debug.cpuSlowdown) > 0 ? Number(debug.cpuSlowdown) : 1;
  const cpuMs = cpu.error ? null : cpu.msPerImage * slow;
  onStatus?.({ phase: 'measure', device: 'webgpu' });
  const gpu = await timeCandidate(workerUrl, { ...base, device: 'webgpu' }, {
    limitMs: cpuMs != null ? cpuMs * IMAGES * ABANDON_FACTOR : Infinity,
    onStatus,
  });
  const gpuMs = gpu.error ? null : gpu.msPerImage;
  if (cpuMs == null && gpuMs == null) return { device: 'auto', reason: `measurement failed (CPU: ${cpu.error}; WebGPU: ${gpu.error})` };
  const device = gpuMs != null && (cpuMs == null || gpuMs < cpuMs) ? 'webgpu' : 'cpu';
  const verdict = {
    device,
    gpuMs,
    gpuNote: gpu.error ?? null,
    cpuMs,
    cpuNote: cpu.error ?? null,
    cpuThreads: cpu.threads ?? 1,
    at: Date.now(),
  };
  keep(key, verdict);
  return { device, reason: describe(verdict, false), verdict, cached: false };
}
