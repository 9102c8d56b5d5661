// A stand-in for www/engine/client.js with the same API, for exercising the page quickly without
// the wasm engine (E2E with SORTWISE_FAKE=1). It decodes with the browser, "embeds" an image as a
// 4x4 grey thumbnail and classifies by nearest class centroid. Never served to users.
import { RULES } from '../../www/engine/rules.js';

const DIM = 48;

// Fault injection for tests/e2e/persist.mjs: an init script sets globalThis.__sortwiseFaults,
// e.g. {create: 'message'} (the engine does not start), {addEmbedding: 'RuntimeError: unreachable'}
// (a restore that traps), {importModel: 'message'} (a saved model the backbone check refuses).
function fault(name) {
  const f = globalThis.__sortwiseFaults?.[name];
  if (f) throw new Error(String(f));
}

async function decode(bytes) {
  if (!bytes || !bytes.byteLength) throw new Error('cannot decode image: empty input (0 bytes)');
  try {
    return await createImageBitmap(new Blob([bytes]), { imageOrientation: 'from-image' });
  } catch {
    throw new Error('cannot decode image: unrecognised or corrupt image data');
  }
}

function embedBitmap(bmp) {
  const c = new OffscreenCanvas(4, 4);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0, 4, 4);
  const d = ctx.getImageData(0, 0, 4, 4).data;
  const e = new Float32Array(DIM);
  for (let i = 0; i < 16; i += 1) for (let ch = 0; ch < 3; ch += 1) e[i * 3 + ch] = d[i * 4 + ch] / 255;
  return e;
}

async function thumbOf(bmp) {
  const s = Math.min(1, 256 / Math.min(bmp.width, bmp.height));
  const c = new OffscreenCanvas(Math.max(1, Math.round(bmp.width * s)), Math.max(1, Math.round(bmp.height * s)));
  c.getContext('2d').drawImage(bmp, 0, 0, c.width, c.height);
  return new Uint8Array(await (await c.convertToBlob({ type: 'image/jpeg', quality: 0.85 })).arrayBuffer());
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The engine's check of a class name, with its messages (src/data/dataset.rs validate_label). */
export function validateLabel(name) {
  const trimmed = String(name ?? '').trim();
  if (!trimmed) throw new Error('a class name cannot be empty');
  if ([...trimmed].length > RULES.maxLabelChars) throw new Error(`a class name can be at most ${RULES.maxLabelChars} characters`);
  if (/\p{Cc}/u.test(trimmed)) throw new Error('a class name cannot contain control characters');
  // src/data/dataset.rs: text-direction controls and invisible characters (ZWJ/ZWNJ only inside a word)
  const hex = (c) => `U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  const bidi = trimmed.match(/[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/u);
  if (bidi) throw new Error(`a class name cannot contain the text-direction control ${hex(bidi[0])}`);
  const invisible = trimmed.match(/[\u200B\u2060-\u2064\uFEFF\u00AD\u180E\uFFF9-\uFFFB]|(?<!\S)[\u200C\u200D]|[\u200C\u200D](?!\S)/u);
  if (invisible) throw new Error(`a class name cannot contain the invisible character ${hex(invisible[0])}`);
  return trimmed;
}

// The engine's rules() as the wasm build gives them (www/engine/rules.js is generated from src/ and
// checked by a native test); also the stand-in engine of tests/js/project.test.mjs.
export { RULES };

export class Sortwise {
  static async create({ arch, finetune = false, onStatus = () => {} } = {}) {
    for (let i = 0; i <= 4; i += 1) { onStatus({ phase: 'weights', loaded: i * 1e6, total: 4e6 }); await sleep(20); }
    fault('create');
    const sw = new Sortwise();
    sw.arch = arch;
    sw.dim = DIM;
    sw.backend = 'cpu';
    sw.backendReason = 'fake client for tests';
    sw.addBatch = 8; // as the real trainer's for Lite0 on up to two threads
    sw.finetune = Boolean(finetune);
    onStatus({ phase: 'backend', backend: 'cpu', reason: sw.backendReason });
    return sw;
  }

  constructor() { this.items = new Map(); this.nextId = 1; this.head = null; this.cancelled = false; }

  async addImage(label, bytes) {
    const bmp = await decode(bytes);
    const embedding = embedBitmap(bmp);
    const thumbnail = await thumbOf(bmp);
    const id = this.nextId++;
    this.items.set(id, { label, emb: embedding });
    return { id, thumbnail, embedding };
  }

  // As the real client: one entry per image, `{error}` for one that does not decode.
  async addImages(label, list) {
    const out = [];
    for (const [k, bytes] of list.entries()) {
      try {
        out.push(await this.addImage(Array.isArray(label) ? label[k] : label, bytes));
      } catch (e) {
        out.push({ error: e.message });
      }
    }
    return out;
  }

  async addEmbedding(label, embedding) {
    fault('addEmbedding');
    if (!(embedding instanceof Float32Array) || embedding.length % DIM) throw new Error(`embedding length ${embedding.length} is not a multiple of ${DIM}`);
    const id = this.nextId++;
    this.items.set(id, { label, emb: embedding.slice(0, DIM) });
    return id;
  }

  async removeImage(id) { return this.items.delete(id); }
  async renameClass(a, b) { for (const it of this.items.values()) if (it.label === a) it.label = b; }
  async removeClass(l) { for (const [id, it] of this.items) if (it.label === l) this.items.delete(id); }
  async labels() { return [...new Set([...this.items.values()].map((x) => x.label))]; }
  async counts() { const l = await this.labels(); return l.map((x) => [...this.items.values()].filter((i) => i.label === x).length); }

  cancel() { this.cancelled = true; }

  async rules() { return structuredClone(RULES); }

  async validateLabel(name) { return validateLabel(name); }

  centroids(entries, labels) {
    return labels.map((l) => {
      const c = new Float32Array(DIM);
      const mine = entries.filter(([, it]) => it.label === l);
      for (const [, it] of mine) for (let i = 0; i < DIM; i += 1) c[i] += it.emb[i] / mine.length;
      return c;
    });
  }

  probs(emb, head) {
    const d = head.centroids.map((c) => Math.sqrt(c.reduce((s, v, i) => s + (v - emb[i]) ** 2, 0)));
    const z = d.map((x) => Math.exp(-x * 8));
    const sum = z.reduce((a, b) => a + b, 0) || 1;
    return z.map((x) => x / sum);
  }

  async train(opts = {}, progress = () => {}) {
    this.cancelled = false;
    if (opts.finetuneLast && !this.finetune) throw new Error('fine-tuning the last stage needs a trainer created with {finetune: true}');
    const labels = await this.labels();
    if (labels.length < 2) throw new Error('training needs at least two classes');
    const all = [...this.items.entries()];
    const val = [];
    const train = [];
    for (const l of labels) {
      const mine = all.filter(([, it]) => it.label === l);
      const nVal = mine.length >= 2 ? Math.max(1, Math.round(mine.length * (opts.valSplit ?? 0.2))) : 0;
      val.push(...mine.slice(0, nVal));
      train.push(...mine.slice(nVal));
    }
    const head = { labels, centroids: this.centroids(train, labels) };
    const epochs = Math.min(opts.epochs ?? 100, 200);
    const history = [];
    let acc = 0;
    const confusion = labels.map(() => labels.map(() => 0));
    const misclassified = [];
    for (const [id, it] of val) {
      const p = this.probs(it.emb, head);
      const j = p.indexOf(Math.max(...p));
      const i = labels.indexOf(it.label);
      confusion[i][j] += 1;
      if (i !== j) misclassified.push({ id, label: it.label, predicted: labels[j], confidence: p[j] });
      else acc += 1;
    }
    acc = val.length ? acc / val.length : NaN;
    for (let e = 1; e <= epochs; e += 1) {
      if (this.cancelled) throw new Error('cancelled');
      const h = { epoch: e, loss: 1.5 / e, valLoss: 1.6 / e + 0.1, valAccuracy: acc * (1 - 0.5 / e) };
      history.push(h);
      progress({ phase: 'train', epoch: e, epochs, ...h, done: e, total: epochs });
      await sleep(15);
    }
    let finetune = null;
    if (opts.finetuneLast) {
      const n = opts.finetuneEpochs ?? 10;
      for (let e = 1; e <= n; e += 1) {
        if (this.cancelled) throw new Error('cancelled');
        progress({ phase: 'finetune', epoch: e, epochs: n, loss: 0.2 / e, valLoss: 0.3, valAccuracy: acc, done: e, total: n });
        await sleep(15);
      }
      finetune = { l2sp: opts.l2sp ?? 0.1, epochsRun: n, bestEpoch: n, distance: 0.5, lastDistance: 0.5, headOnlyValAccuracy: acc, headOnlyValLoss: 0.3 };
    }
    this.head = head;
    const perClass = labels.map((l, i) => {
      const tp = confusion[i][i];
      const support = confusion[i].reduce((a, b) => a + b, 0);
      const predicted = confusion.reduce((s, r) => s + r[i], 0);
      const precision = predicted ? tp / predicted : 0;
      const recall = support ? tp / support : 0;
      return { label: l, precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, support };
    });
    return { valAccuracy: acc, valLoss: 0.3, perClass, confusion, labels, history, misclassified, bestEpoch: epochs, epochsRun: epochs, trainSize: train.length, valSize: val.length, seconds: 0.5, finetune };
  }

  result(emb, threshold) {
    if (!this.head) throw new Error('no trained model');
    const p = this.probs(emb, this.head);
    const probs = this.head.labels.map((label, i) => ({ label, p: p[i] })).sort((a, b) => b.p - a.p);
    const unsure = probs[0].p < threshold;
    return { label: unsure ? RULES.unsureLabel : probs[0].label, confidence: probs[0].p, unsure, probs };
  }

  async predict(bytes, { threshold = 0.6 } = {}) { return this.result(embedBitmap(await decode(bytes)), threshold); }
  async predictPixels(img, { threshold = 0.6 } = {}) { return this.result(embedBitmap(await createImageBitmap(img)), threshold); }

  async exportModel() {
    if (!this.head) throw new Error('no trained model to export');
    return new TextEncoder().encode(JSON.stringify({ fake: 'sortwise', labels: this.head.labels, centroids: this.head.centroids.map((c) => [...c]) }));
  }

  async importModel(bytes) {
    fault('importModel');
    let j;
    try { j = JSON.parse(new TextDecoder().decode(bytes)); } catch { throw new Error('not a .sortwise model file'); }
    if (j.fake !== 'sortwise') throw new Error('not a .sortwise model file');
    this.head = { labels: j.labels, centroids: j.centroids.map((c) => Float32Array.from(c)) };
    return { labels: j.labels };
  }

  terminate() { this.items.clear(); }
}
