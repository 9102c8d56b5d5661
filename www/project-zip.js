// Zip handling with fflate (synchronous API only: its async API starts blob: workers, which the CSP
// forbids). Reading is guarded against zip bombs: the entry count and every entry's declared
// uncompressed size are capped before anything is inflated, and fflate inflates into a buffer of
// exactly the declared size, so a lying header cannot make it allocate more.
// The page reads zips off the main thread: `datasetFromZipFile` and `importProjectZip` hand the
// File to zip-worker.js (a same-origin module worker, which the CSP allows), which reads the
// central directory and then each entry it keeps from File slices and inflates them with fflate
// (its unzipSync needs the whole archive in memory; its streaming Unzip follows local headers,
// which lack the sizes and the names' UTF-8 flag of the central directory), and transfers the
// results back: the tab stays responsive and a 2 GB archive is never in memory whole.

import { inflateSync, zipSync, strToU8, strFromU8 } from './vendor/fflate.js';

export const ZIP_LIMITS = {
  maxEntries: 5000,
  maxEntryBytes: 50 * 1024 * 1024,
  maxTotalBytes: 1024 * 1024 * 1024,
};

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|bmp|jfif)$/i;

export function isImageName(name) { return IMAGE_EXT.test(name); }

export class ZipError extends Error {
  constructor(code, params = {}) { super(code); this.code = code; this.params = params; }
}

function unsafePath(parts) {
  return parts.some((p) => p === '..' || p === '.') || /^([a-z]:|\/|\\)/i.test(parts[0] || '');
}

// ---- reading a zip from a File, entry by entry --------------------------------------------------
//
// Only the central directory and the entries kept are read from the File (Blob.slice): a 2 GB
// archive never sits in memory whole, only what it yields (at most ZIP_LIMITS.maxTotalBytes),
// and one entry that does not inflate is skipped, not the archive.

async function bytesAt(blob, start, end) {
  return new Uint8Array(await blob.slice(start, end).arrayBuffer());
}

const u16 = (b, o) => b[o] | (b[o + 1] << 8);
const u32 = (b, o) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
const u64 = (b, o) => u32(b, o) + u32(b, o + 4) * 0x100000000;

/** A name stored without the UTF-8 flag: UTF-8 anyway, else GB18030 (Windows in China), else Shift_JIS, else Latin-1. */
function decodeName(raw, utf8) {
  if (utf8) return new TextDecoder().decode(raw);
  if (raw.every((c) => c < 0x80)) return String.fromCharCode(...raw);
  for (const enc of ['utf-8', 'gb18030', 'shift_jis']) {
    try { return new TextDecoder(enc, { fatal: true }).decode(raw); } catch { /* next */ }
  }
  return String.fromCharCode(...raw);
}

/** The central directory: [{name, flag, method, csize, usize, offset}]. Throws ZipError. */
async function centralDirectory(blob) {
  const broken = (detail) => new ZipError('zipBroken', { detail });
  const size = blob.size;
  if (size < 22) throw broken('too short');
  const tailStart = Math.max(0, size - 65557);
  const tail = await bytesAt(blob, tailStart, size);
  let e = tail.length - 22;
  while (e >= 0 && u32(tail, e) !== 0x06054b50) e -= 1;
  if (e < 0) throw broken('no end of central directory');
  let count = u16(tail, e + 10);
  let cdSize = u32(tail, e + 12);
  let cdOffset = u32(tail, e + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const l = e - 20;
    if (l < 0 || u32(tail, l) !== 0x07064b50) throw broken('zip64 locator missing');
    const at = u64(tail, l + 8);
    const rec = await bytesAt(blob, at, at + 56);
    if (rec.length < 56 || u32(rec, 0) !== 0x06064b50) throw broken('zip64 record missing');
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  if (count > ZIP_LIMITS.maxEntries) throw new ZipError('zipTooManyEntries', { n: ZIP_LIMITS.maxEntries });
  if (cdOffset + cdSize > size || cdSize > 64 * 1024 * 1024) throw broken('central directory out of bounds');
  const cd = await bytesAt(blob, cdOffset, cdOffset + cdSize);
  const out = [];
  let o = 0;
  for (let i = 0; i < count; i += 1) {
    if (o + 46 > cd.length || u32(cd, o) !== 0x02014b50) throw broken('truncated central directory');
    const flag = u16(cd, o + 8);
    const method = u16(cd, o + 10);
    let csize = u32(cd, o + 20);
    let usize = u32(cd, o + 24);
    const fl = u16(cd, o + 28);
    const xl = u16(cd, o + 30);
    const cl = u16(cd, o + 32);
    let offset = u32(cd, o + 42);
    if (o + 46 + fl + xl > cd.length) throw broken('truncated central directory');
    const name = decodeName(cd.subarray(o + 46, o + 46 + fl), flag & 0x800);
    // zip64: the sizes and offset that overflowed 32 bits follow in the 0x0001 extra field, in order
    for (let x = o + 46 + fl; x + 4 <= o + 46 + fl + xl;) {
      const id = u16(cd, x);
      const len = u16(cd, x + 2);
      if (id === 1) {
        let p = x + 4;
        if (usize === 0xffffffff) { usize = u64(cd, p); p += 8; }
        if (csize === 0xffffffff) { csize = u64(cd, p); p += 8; }
        if (offset === 0xffffffff) { offset = u64(cd, p); p += 8; }
      }
      x += 4 + len;
    }
    out.push({ name, flag, method, csize, usize, offset });
    o += 46 + fl + xl + cl;
  }
  return out;
}

/**
 * A zip's entries, from a File or Blob: {entries: [{path: string[], name, bytes}], skipped:
 * [{name, reason, params}]}. Directories, macOS resource forks and hidden files are ignored
 * silently; path traversal, oversize and corrupt entries are reported. Throws ZipError when the
 * archive as a whole is refused (not a zip, too many entries, too large in all).
 */
export async function readZipFile(blob, { filter = () => true } = {}) {
  const skipped = [];
  const entries = [];
  let total = 0;
  for (const f of await centralDirectory(blob)) {
    const name = f.name.replace(/\\/g, '/');
    if (name.endsWith('/')) continue;
    const parts = name.split('/').filter((p) => p !== '');
    if (unsafePath(name.startsWith('/') ? ['/', ...parts] : parts)) { skipped.push({ name, reason: 'zipUnsafe' }); continue; }
    if (parts.some((p) => p === '__MACOSX' || p.startsWith('.'))) continue;
    if (!filter(parts)) { skipped.push({ name, reason: 'skipNotImage' }); continue; }
    if (f.usize > ZIP_LIMITS.maxEntryBytes) { skipped.push({ name, reason: 'skipTooBig', params: { n: ZIP_LIMITS.maxEntryBytes / 1048576 } }); continue; }
    total += f.usize;
    if (total > ZIP_LIMITS.maxTotalBytes) throw new ZipError('zipTooLarge', { n: ZIP_LIMITS.maxTotalBytes / 1048576 });
    if (f.flag & 1) { skipped.push({ name, reason: 'msg:encrypted entry' }); continue; }
    if (f.method !== 0 && f.method !== 8) { skipped.push({ name, reason: `msg:unsupported compression method ${f.method}` }); continue; }
    try {
      const head = await bytesAt(blob, f.offset, f.offset + 30);
      if (head.length < 30 || u32(head, 0) !== 0x04034b50) throw new Error('no local header');
      const start = f.offset + 30 + u16(head, 26) + u16(head, 28);
      if (start + f.csize > blob.size) throw new Error('entry runs past the end of the archive');
      const data = await bytesAt(blob, start, start + f.csize);
      // inflated into exactly the declared size: a lying header cannot make it allocate more
      const bytes = f.method === 0 ? data : inflateSync(data, { out: new Uint8Array(f.usize) });
      if (bytes.length !== f.usize) throw new Error(`${bytes.length} bytes, the header says ${f.usize}`);
      entries.push({ path: parts, name: parts.join('/'), bytes });
    } catch (e) {
      skipped.push({ name, reason: `msg:corrupt zip entry (${e.message})` });
    }
  }
  return { entries, skipped };
}

/** Groups image entries of a dropped dataset zip by their parent folder name (the class). */
const datasetFilter = (parts) => isImageName(parts[parts.length - 1]);

function datasetFromEntries({ entries, skipped }) {
  const items = [];
  for (const e of entries) {
    if (e.path.length < 2) { items.push({ label: null, name: e.name, bytes: e.bytes }); continue; }
    items.push({ label: e.path[e.path.length - 2], name: e.name, bytes: e.bytes });
  }
  return { items, skipped };
}

// ---- whole project ----------------------------------------------------------------------------

export const PROJECT_FORMAT = 'sortwise-project';
export const PROJECT_VERSION = 1;

/**
 * project: {arch, dim, settings, classes: [{label, images: [{thumb: Uint8Array, emb: Float32Array}]}],
 * model: Uint8Array|null}. Returns the zip bytes.
 */
export function exportProjectZip(project) {
  const files = {};
  const classes = [];
  const keyToIndex = new Map();
  let n = 0;
  for (const c of project.classes) {
    const images = [];
    for (const im of c.images) {
      keyToIndex.set(im.key, n);
      n += 1;
      const id = String(n).padStart(5, '0');
      const thumb = `images/${id}.jpg`;
      const emb = `embeddings/${id}.f32`;
      files[thumb] = [im.thumb, { level: 0 }];
      files[emb] = new Uint8Array(im.emb.buffer.slice(im.emb.byteOffset, im.emb.byteOffset + im.emb.byteLength));
      images.push({ thumbnail: thumb, embedding: emb, length: im.emb.length });
    }
    classes.push({ label: c.label, images });
  }
  const json = {
    format: PROJECT_FORMAT,
    version: PROJECT_VERSION,
    arch: project.arch,
    dim: project.dim,
    settings: project.settings,
    classes,
    model: project.model ? 'model.sortwise' : null,
    report: project.model && project.report ? {
      ...project.report,
      misclassified: (project.report.misclassified || []).map(({ label, predicted, confidence, key }) => ({
        label, predicted, confidence, image: keyToIndex.has(key) ? keyToIndex.get(key) : null,
      })),
    } : null,
    created: new Date().toISOString(),
  };
  files['project.json'] = strToU8(JSON.stringify(json, null, 1));
  if (project.model) files['model.sortwise'] = project.model;
  return zipSync(files, { level: 6 });
}

function fail(msg) { throw new Error(msg); }

const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
const isInt = (x, min = 0, max = Number.MAX_SAFE_INTEGER) => Number.isInteger(x) && x >= min && x <= max;
const isProb = (x) => isNum(x) && x >= 0 && x <= 1;
const optNum = (x) => x == null || isNum(x);

/**
 * A training report from a project zip, checked field by field (types and ranges) and rebuilt
 * from the checked fields only; throws Error naming the first bad field. `images`: the number
 * of images in the project (misclassified entries point at them by position).
 */
export function validateReport(r, images) {
  const bad = (field, why) => fail(`project.json: report.${field} ${why}`);
  if (!r || typeof r !== 'object' || Array.isArray(r)) bad('', 'is not an object');
  if (!Array.isArray(r.labels) || !r.labels.length || r.labels.length > 1000 || !r.labels.every((l) => typeof l === 'string' && l.length <= 1000)) bad('labels', 'is not a list of class names');
  const n = r.labels.length;
  if (!Array.isArray(r.confusion) || r.confusion.length !== n
    || !r.confusion.every((row) => Array.isArray(row) && row.length === n && row.every((v) => isInt(v, 0, 1e9)))) bad('confusion', `is not a ${n}x${n} matrix of counts`);
  for (const f of ['valAccuracy']) if (!(r[f] == null || isProb(r[f]))) bad(f, 'is not a number between 0 and 1');
  for (const f of ['valLoss', 'seconds']) if (!(r[f] == null || (isNum(r[f]) && r[f] >= 0))) bad(f, 'is not a number ≥ 0');
  for (const f of ['epochsRun', 'bestEpoch', 'trainSize', 'valSize', 'refitEpochs', 'refitSize']) if (!(r[f] == null || isInt(r[f], 0, 1e9))) bad(f, 'is not a whole number ≥ 0');
  for (const f of ['balance', 'refitBalance']) if (r[f] != null && !['auto', 'none', 'weight', 'sample'].includes(r[f])) bad(f, 'is not auto, none, weight or sample');
  if (r.refit != null && typeof r.refit !== 'boolean') bad('refit', 'is not true or false');
  const perClass = r.perClass ?? [];
  if (!Array.isArray(perClass) || perClass.length > n || !perClass.every((p) => p && typeof p === 'object'
    && typeof p.label === 'string' && isProb(p.precision) && isProb(p.recall) && isProb(p.f1) && isInt(p.support, 0, 1e9))) bad('perClass', 'has an entry that is not {label, precision, recall, f1, support}');
  const history = r.history ?? [];
  if (!Array.isArray(history) || history.length > 100000 || !history.every((h) => h && typeof h === 'object'
    && isInt(h.epoch, 0, 1e9) && optNum(h.loss) && optNum(h.valLoss) && (h.valAccuracy == null || isProb(h.valAccuracy)))) bad('history', 'has an entry that is not {epoch, loss, valLoss, valAccuracy}');
  const mis = r.misclassified ?? [];
  if (!Array.isArray(mis) || mis.length > images || !mis.every((m) => m && typeof m === 'object'
    && typeof m.label === 'string' && typeof m.predicted === 'string' && isProb(m.confidence)
    && (m.image == null || isInt(m.image, 0, images - 1)))) bad('misclassified', 'has an entry that is not {label, predicted, confidence, image}');
  let finetune = null;
  if (r.finetune != null) {
    const f = r.finetune;
    if (typeof f !== 'object' || Array.isArray(f) || !isNum(f.l2sp) || !isInt(f.epochsRun) || !isInt(f.bestEpoch) || !isNum(f.distance)
      || !optNum(f.lastDistance) || !(f.headOnlyValAccuracy == null || isProb(f.headOnlyValAccuracy)) || !optNum(f.headOnlyValLoss)) bad('finetune', 'is not a fine-tuning summary');
    if (!(f.refitEpochs == null || isInt(f.refitEpochs)) || !optNum(f.refitDistance)) bad('finetune', 'has a refit that is not {refitEpochs, refitDistance}');
    finetune = { l2sp: f.l2sp, epochsRun: f.epochsRun, bestEpoch: f.bestEpoch, distance: f.distance, lastDistance: f.lastDistance ?? null, headOnlyValAccuracy: f.headOnlyValAccuracy ?? null, headOnlyValLoss: f.headOnlyValLoss ?? null, refitEpochs: f.refitEpochs ?? null, refitDistance: f.refitDistance ?? null };
  }
  const pick = (o, keys) => Object.fromEntries(keys.map((k) => [k, o[k] ?? null]));
  return {
    ...pick(r, ['valAccuracy', 'valLoss', 'epochsRun', 'bestEpoch', 'trainSize', 'valSize', 'balance', 'seconds', 'refit', 'refitEpochs', 'refitSize', 'refitBalance']),
    labels: [...r.labels],
    confusion: r.confusion.map((row) => [...row]),
    perClass: perClass.map((p) => pick(p, ['label', 'precision', 'recall', 'f1', 'support'])),
    history: history.map((h) => pick(h, ['epoch', 'loss', 'valLoss', 'valAccuracy'])),
    misclassified: mis.map((m) => pick(m, ['label', 'predicted', 'confidence', 'image'])),
    finetune,
  };
}

/**
 * Validates a project zip's entries; throws Error(message) naming the problem. Every file is
 * referenced at most once, so what the project holds is bounded by the archive's own limits
 * (a name listed 5,000 times would otherwise be 5,000 copies of it).
 */
async function projectFromEntries(read, { maxClasses, maxImages, maxLabel }) {
  let entries;
  try {
    ({ entries } = await read());
  } catch (e) {
    if (e instanceof ZipError) fail(e.code === 'zipBroken' ? 'not a zip file' : `archive refused (${e.code})`);
    throw e;
  }
  const byName = new Map(entries.map((e) => [e.name, e.bytes]));
  const used = new Set();
  let usedBytes = 0;
  const take = (name, what) => {
    const key = typeof name === 'string' ? name : null;
    const bytes = key != null ? byName.get(key) : undefined;
    if (!bytes) fail(`${what}: missing file ${String(name)}`);
    if (used.has(key)) fail(`${what}: the file ${key} is listed more than once`);
    used.add(key);
    usedBytes += bytes.byteLength;
    if (usedBytes > ZIP_LIMITS.maxTotalBytes) fail(`the files listed add up to more than ${ZIP_LIMITS.maxTotalBytes / 1048576} MB`);
    return bytes;
  };
  const pj = byName.get('project.json');
  if (!pj) fail('project.json is missing: this is not a sortwise project');
  let json;
  try { json = JSON.parse(strFromU8(pj)); } catch (e) { fail(`project.json is not valid JSON (${e.message})`); }
  if (!json || json.format !== PROJECT_FORMAT) fail('project.json is not a sortwise project');
  if (!(json.version <= PROJECT_VERSION)) fail(`project format version ${json.version} is newer than this page supports (${PROJECT_VERSION})`);
  if (typeof json.arch !== 'string' || !json.arch) fail('project.json has no backbone (arch)');
  if (!Array.isArray(json.classes)) fail('project.json has no class list');
  if (json.classes.length > maxClasses) fail(`too many classes (${json.classes.length} > ${maxClasses})`);
  const seen = new Set();
  const classes = [];
  let count = 0;
  let embLen = null;
  for (const c of json.classes) {
    const label = typeof c?.label === 'string' ? c.label.trim() : '';
    if (!label) fail('a class has an empty name');
    if ([...label].length > maxLabel) fail(`class name too long: ${label.slice(0, 40)}…`);
    if (seen.has(label)) fail(`duplicate class name: ${label}`);
    seen.add(label);
    if (!Array.isArray(c.images)) fail(`class ${label}: no image list`);
    const images = [];
    for (const im of c.images) {
      count += 1;
      if (count > maxImages) fail(`too many images (more than ${maxImages})`);
      const thumb = take(im?.thumbnail, `class ${label}`);
      const embBytes = take(im?.embedding, `class ${label}`);
      if (embBytes.byteLength === 0 || embBytes.byteLength % 4 !== 0) fail(`${im.embedding}: not a float32 array`);
      const emb = new Float32Array(embBytes.buffer.slice(embBytes.byteOffset, embBytes.byteOffset + embBytes.byteLength));
      if (embLen === null) embLen = emb.length;
      if (emb.length !== embLen) fail(`${im.embedding}: ${emb.length} values, expected ${embLen}`);
      if (!emb.every(Number.isFinite)) fail(`${im.embedding}: contains NaN or infinity`);
      images.push({ thumb, emb });
    }
    classes.push({ label, images });
  }
  let model = null;
  if (json.model) model = take(json.model, 'model');
  const settings = json.settings && typeof json.settings === 'object' && !Array.isArray(json.settings) ? json.settings : {};
  const report = model && json.report != null ? validateReport(json.report, count) : null;
  return { arch: json.arch, dim: json.dim, settings, classes, model, report, embLen };
}

// ---- off the main thread ----------------------------------------------------------------------

/** The ArrayBuffers in a result, to transfer rather than copy. */
export function buffersOf(value, out = new Set()) {
  if (ArrayBuffer.isView(value)) out.add(value.buffer);
  else if (Array.isArray(value)) for (const v of value) buffersOf(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) buffersOf(v, out);
  return out;
}

/** Runs `job` ('dataset' | 'project') on `file` in zip-worker.js; on the main thread where workers cannot start. */
async function inWorker(job, file, limits) {
  let worker;
  try {
    worker = new Worker(new URL('./zip-worker.js', import.meta.url), { type: 'module' });
  } catch {
    worker = null;
  }
  if (!worker) return runJob(job, file, limits);
  try {
    return await new Promise((resolve, reject) => {
      worker.onmessage = (ev) => {
        const m = ev.data;
        if (m.ok) { resolve(m.result); return; }
        const e = m.error || {};
        reject(e.code ? new ZipError(e.code, e.params) : new Error(e.message || 'the zip could not be read'));
      };
      worker.onerror = (ev) => { ev.preventDefault?.(); reject(new Error(ev.message || 'the zip reader stopped (out of memory?)')); };
      worker.postMessage({ job, file, limits });
    });
  } finally {
    worker.terminate();
  }
}

/** What zip-worker.js runs on a File, also the fallback in place. */
export async function runJob(job, file, limits) {
  if (job === 'dataset') return datasetFromEntries(await readZipFile(file, { filter: datasetFilter }));
  if (job === 'project') return projectFromEntries(() => readZipFile(file), limits);
  throw new Error(`unknown zip job ${job}`);
}

/** A dataset zip (one folder per class) from a File, read off the main thread. */
export function datasetFromZipFile(file) { return inWorker('dataset', file); }

/** A project zip from a File, read and validated off the main thread. */
export function importProjectZip(file, limits) { return inWorker('project', file, limits); }
