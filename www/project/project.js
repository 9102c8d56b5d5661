// The project: its classes and images, the training settings, the trained model, the engine
// that holds them (engine/client.js, started by project-engine.js), the page's limits, and every
// change to them. One serial queue runs the changes that go through the engine, one at a time.
// No DOM here: each change is announced as an event (this is an EventTarget), which the views
// (ui/*) render and persist.js saves. Neither is imported here.
//
// Events (`detail` in braces):
//   classes                       the class list changed: render every card
//   image-added {rec}, image-removed {key, label}, active {label}, renamed {from, to},
//   left-out {labels}, intake-undo {prev}, skipped {name, reason, params}
//   stale, training {on}, model, history {history}, settings, cleared, replaced {report}
//   engine {sw}, engine-status {phase, ...}, arch-kept {arch}, embed-progress {shown, done, total, text}
//   status {text, progress}, error {key, error, params}
//   images-removed {keys}: photos removed together (a contribution undone, merge.js)
//   for persist.js: stored {key}, dropped {key}, model-stored, replace-all {keys}, save

import { t } from '../i18n.js';
import { EngineLost } from '../engine/errors.js';
import { RULES } from '../engine/rules.js';
import { cleanSettings, PAGE_DEFAULTS } from './settings.js';

export { PAGE_DEFAULTS };

/** The page's own limits; the class-name rules are the engine's (`project.rules`). */
export const LIMITS = {
  maxClasses: 100,
  maxImages: 5000,
  maxFileBytes: 50 * 1024 * 1024,
};

export const PRESETS = {
  garbage: ['可回收物 Recyclable', '有害垃圾 Hazardous', '厨余垃圾 Kitchen', '其他垃圾 Other'],
  trashnet: ['cardboard', 'glass', 'metal', 'paper', 'plastic', 'trash'],
  empty: [],
};

// The training settings the page offers (settings.js checks them, against the engine's ranges).
const TRAIN_SETTINGS = ['epochs', 'lr', 'optimizer', 'valSplit', 'balance', 'labelSmoothing', 'seed', 'patience', 'finetuneLast', 'l2sp', 'refit'];

// A long add asks for a save this often (after the engine batch that passes it), so that a reload
// in the middle keeps what was embedded: the autosave (persist.js) writes 300 ms after it is asked,
// unless asked again meanwhile, so the interval must stay above that. A reload then loses at most
// the photos of the last ~0.5-0.8 s (bench/zip5000.mjs measures it). A short add is saved once, at
// its end.
const SAVE_EVERY_MS = 500;

export class Project extends EventTarget {
  constructor({ device = 'auto' } = {}) {
    super();
    this.device = device;
    this.manifest = []; // the backbones the server has
    this.arch = null;
    this.sw = null; // the engine (engine/client.js's Sortwise)
    this.rules = RULES; // the engine's rules(): limits, training defaults, setting ranges
    this.classes = []; // [{label, keys: [imageKey...]}]
    // key -> {key, label, thumb: Uint8Array, emb: Float32Array, id, url, from}; `from`: who sent a
    // photo from their phone ({id, name, batch, at}, merge.js), absent for the project's own
    this.images = new Map();
    this.idToKey = new Map();
    this.nextKey = 1;
    this.settings = { ...PAGE_DEFAULTS };
    this.model = null; // Uint8Array of the trained or imported .sortwise
    this.modelLabels = null;
    this.report = null; // last training report, misclassified entries carry image keys
    this.stale = false;
    this.training = false;
    this.activeLabel = null;
    this.shelved = []; // saved models this page could not use: kept in storage, never dropped by a save
    // The undo of the last replacement of empty classes: {labels, active}; null when there is none.
    // Kept in memory, not in the storage backup: the replaced classes held no photos, and store.js
    // keeps a backup only of a project with photos or a model (its older backup would come back).
    this.intakeUndo = null;
    this.addJob = { total: 0, done: 0, running: false };
    this.saveEveryMs = SAVE_EVERY_MS; // how often a long add asks for a save
    this.queue = Promise.resolve();
    this.flushers = [];
  }

  emit(type, detail = {}) { this.dispatchEvent(new CustomEvent(type, { detail })); }
  say(text, progress) { this.emit('status', { text, progress }); }
  fail(key, error, params) { this.emit('error', { key, error, params }); }

  /**
   * `fn(engine)`, made once more when the engine restarted after losing its device: by then it
   * holds the project's photos again (project-engine.js `restoreInto`), under new ids, so `fn`
   * reads the ids it passes when it runs. Every engine call of the page goes through here.
   */
  async withEngine(fn) {
    try {
      return await fn(this.sw);
    } catch (e) {
      if (!(e instanceof EngineLost) || !e.retry) throw e;
      return fn(this.sw);
    }
  }

  /** One engine operation at a time (adds, removals, training, switching); predictions bypass it. */
  serial(fn) {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Resolves once every queued operation ran. */
  idle() { return this.queue; }

  /** `fn()` writes the project now (persist.js registers its save): see `flush`. */
  onFlush(fn) { this.flushers.push(fn); }

  /** Saves now, before a replacement; resolves to the save's answer, or null when it failed. */
  async flush() {
    let res = null;
    for (const fn of this.flushers) res = await fn().catch(() => null);
    return res;
  }

  knownArch(arch) { return this.manifest.some((b) => b.arch === arch); }

  /**
   * Training settings: the engine's defaults, the page's own, then `saved` over them where the
   * engine takes its values (settings.js; callers that tell the user what was reset check first).
   */
  withDefaults(saved = {}) {
    const train = this.rules.train;
    const defaults = Object.fromEntries(TRAIN_SETTINGS.filter((k) => k in train).map((k) => [k, train[k]]));
    return { ...defaults, ...PAGE_DEFAULTS, ...cleanSettings(saved, this.rules).settings };
  }

  setSettings(settings) {
    this.settings = settings;
    this.emit('settings');
  }

  /** A setting changed in the page: saved with the project record. */
  updateSettings(changes) {
    Object.assign(this.settings, changes);
    this.emit('save');
  }

  // ---- classes and images -------------------------------------------------------------------

  classOf(label) { return this.classes.find((c) => c.label === label); }
  totalImages() { return this.images.size; }

  /**
   * `raw` as a class name: the engine's check (engine/client.js validateLabel, its reason in the
   * page's language where there is a translation), then no other class of that name (`except`).
   */
  async validateLabel(raw, { except = null } = {}) {
    const name = String(raw ?? '');
    let label;
    try {
      label = await this.withEngine((sw) => sw.validateLabel(name));
    } catch (e) {
      throw new Error(this.labelRefused(name, e));
    }
    if (label !== except && this.classOf(label)) throw new Error(t('errDuplicateLabel', { label }));
    return label;
  }

  // The engine refused `name`: its reason, translated when it is one the page has words for.
  labelRefused(name, err) {
    const trimmed = name.trim();
    if (!trimmed) return t('errEmptyLabel');
    const n = this.rules?.maxLabelChars;
    if (n != null && [...trimmed].length > n) return t('errLabelLong', { n });
    return err?.message || String(err);
  }

  ensureClass(label) {
    let c = this.classOf(label);
    if (c) return c;
    if (this.classes.length >= LIMITS.maxClasses) throw new Error(t('errTooManyClasses', { n: LIMITS.maxClasses }));
    c = { label, keys: [] };
    this.classes.push(c);
    this.emit('classes');
    return c;
  }

  setActive(label) {
    if (this.activeLabel === label) return;
    this.activeLabel = label;
    this.emit('active', { label });
  }

  addRecord(label, id, thumb, emb, key = this.nextKey++, from = null) {
    const rec = { key, label, thumb, emb, id, url: null, ...(from ? { from } : {}) };
    this.images.set(key, rec);
    this.idToKey.set(id, key);
    this.classOf(label).keys.push(key);
    this.emit('stored', { key });
    return rec;
  }

  dropRecord(key) {
    const rec = this.images.get(key);
    if (!rec) return;
    if (rec.url) URL.revokeObjectURL(rec.url);
    this.images.delete(key);
    this.idToKey.delete(rec.id);
    this.emit('dropped', { key });
    const c = this.classOf(rec.label);
    if (c) c.keys = c.keys.filter((k) => k !== key);
  }

  markStale() {
    if (this.model || this.report) this.stale = true;
    this.emit('stale');
  }

  skip(name, reason, params) { this.emit('skipped', { name, reason, params }); }

  #addProgress() {
    const job = this.addJob;
    this.emit('embed-progress', { shown: job.running, done: job.done, total: job.total, text: t('embedding', { done: job.done, total: job.total }) });
  }

  /**
   * Adds `items` ([{label, name, file|bytes}]), embedded a few at a time with a progress bar.
   * `items` may also be an async iterable of such arrays (a zip read as it is inflated, see
   * ui/intake.js), with `count` the photos it is expected to hold (for the progress bar; the bar
   * is corrected when fewer arrive). Each photo's bytes (or File) are let go once its batch is
   * embedded: the item's `bytes` and `file` are set to null, as the engine's thumbnail is all the
   * page keeps. A long add asks for a save (`save`) every `saveEveryMs`, so that a reload in the
   * middle keeps the photos embedded so far.
   */
  addImages(items, { intake = false, count = null } = {}) {
    const stream = !Array.isArray(items);
    if (!stream) items = items.filter(Boolean);
    if (!intake) this.forgetIntakeUndo();
    const expected = stream ? Math.max(0, count ?? 0) : items.length;
    if (!stream && !items.length) return Promise.resolve();
    const job = this.addJob;
    job.total += expected;
    job.running = true;
    this.#addProgress();
    return this.serial(async () => {
      const advance = (n) => { job.done += n; this.#addProgress(); };
      const names = new Map(); // an item's label -> the engine's answer (a name or an Error)
      let batch = []; // [{item, label}] admitted, not yet embedded
      let pending = 0; // photos admitted and not added yet: `batch`, and the batch in the engine
      let inEngine = null; // the batch the engine embeds now, until its results are in the project
      let lastSave = Date.now();
      let seen = 0; // items met (a stream's may fall short of `count`)
      const embed = async (group) => {
        try {
          await this.#addBatch(group);
        } catch (e) {
          for (const { item } of group) this.skip(item.name, `msg:${e.message}`);
        } finally {
          for (const { item } of group) { item.bytes = null; item.file = null; }
          pending -= group.length;
          advance(group.length);
        }
      };
      // A batch goes to the engine as soon as it is full, while the one before is still being
      // embedded: the engine's queue (engine/client.js) starts it the moment that one ends, so the
      // engine never waits for the page to handle the results (thumbnails, progress, saves).
      const flush = async () => {
        const group = batch;
        batch = [];
        if (!group.length) return;
        const next = embed(group);
        await inEngine;
        inEngine = next;
        if (Date.now() - lastSave >= this.saveEveryMs) {
          lastSave = Date.now();
          this.emit('save');
        }
      };
      const add = async (item) => {
        seen += 1;
        if (stream && seen > expected) job.total += 1; // more than announced: counted as they come
        const label = await this.#admit(item, pending, names);
        if (!label) { item.bytes = null; item.file = null; advance(1); return; }
        // Photos go to the engine `addBatch` at a time (the engine's choice for its backbone and
        // threads): one backbone pass over several is faster per photo than one each (batched
        // convolutions, work for every thread), while the progress bar still moves every few
        // photos. A batch may span classes: a folder's class rarely ends on a full batch, and its
        // last few photos sent alone cost ResNet-18 ~40 ms each on 2 threads against ~27.
        if (batch.length >= this.sw.addBatch) await flush();
        batch.push({ item, label });
        pending += 1;
      };
      try {
        if (stream) {
          for await (const chunk of items) {
            for (const item of chunk) if (item) await add(item);
          }
        } else {
          for (const item of items) await add(item);
        }
        await flush();
      } finally {
        await inEngine;
        // a stream that held fewer photos than announced: the bar's total drops to what came
        if (stream && seen < expected) { job.total -= expected - seen; this.#addProgress(); }
        if (job.done >= job.total) {
          job.running = false;
          job.done = 0;
          job.total = 0;
          this.#addProgress();
        }
        this.emit('save');
      }
    });
  }

  // The class `item` goes to, creating it if needed; null when it is skipped (and listed so).
  // `pending`: photos admitted before it but not added yet, which count toward the limit.
  async #admit(item, pending, names) {
    if (!item.label) { this.skip(item.name, 'skipNoClass'); return null; }
    const size = item.bytes ? item.bytes.byteLength : item.file.size;
    if (size === 0) { this.skip(item.name, 'skipEmpty'); return null; }
    if (size > LIMITS.maxFileBytes) { this.skip(item.name, 'skipTooBig', { n: LIMITS.maxFileBytes / 1048576 }); return null; }
    if (this.totalImages() + pending >= LIMITS.maxImages) { this.skip(item.name, 'skipTooMany', { n: LIMITS.maxImages }); return null; }
    try {
      if (!names.has(item.label)) {
        names.set(item.label, await this.validateLabel(item.label, { except: item.label.trim() }).catch((e) => e));
      }
      const label = names.get(item.label);
      if (label instanceof Error) throw label;
      this.ensureClass(label);
      return label;
    } catch (e) {
      this.skip(item.name, `msg:${e.message}`);
      return null;
    }
  }

  // Embed admitted photos in one engine call (one class name for the call, or one a photo when
  // they span classes); a file that cannot be read or decoded is listed as skipped and the others
  // are still added.
  async #addBatch(group) {
    const ready = [];
    const bytes = [];
    for (const g of group) {
      try {
        bytes.push(g.item.bytes ?? new Uint8Array(await g.item.file.arrayBuffer()));
        ready.push(g);
      } catch (e) {
        this.skip(g.item.name, `msg:${e.message}`);
      }
    }
    if (!ready.length) return;
    const labels = ready.map((g) => g.label);
    const one = labels.every((l) => l === labels[0]);
    const results = await this.withEngine((sw) => sw.addImages(one ? labels[0] : labels, bytes));
    // a class deleted meanwhile: keep the engine and the page in step
    for (const label of new Set(labels)) if (!this.classOf(label)) this.ensureClass(label);
    let added = 0;
    results.forEach((r, k) => {
      if (r.error !== undefined) { this.skip(ready[k].item.name, `msg:${r.error}`); return; }
      this.emit('image-added', { rec: this.addRecord(labels[k], r.id, r.thumbnail, r.embedding, undefined, ready[k].item.from) });
      added += 1;
    });
    if (added) this.markStale();
  }

  async removeImage(key) {
    const rec = this.images.get(key);
    if (!rec) return;
    await this.serial(async () => {
      try {
        await this.withEngine((sw) => sw.removeImage(rec.id));
      } catch (e) { this.fail('addFailed', e); return; }
      this.dropRecord(key);
      this.markStale();
      this.emit('image-removed', { key, label: rec.label });
      this.emit('save');
    });
  }

  /** Removes the photos of `keys` in one go (one save, one stale mark); resolves to how many. */
  removeImages(keys) {
    return this.serial(async () => {
      let removed = 0;
      for (const key of keys) {
        const rec = this.images.get(key);
        if (!rec) continue;
        try {
          await this.withEngine((sw) => sw.removeImage(rec.id));
        } catch (e) { this.fail('addFailed', e); break; }
        this.dropRecord(key);
        removed += 1;
      }
      if (removed) {
        this.markStale();
        this.emit('images-removed', { keys });
        this.emit('classes');
      }
      this.emit('save');
      return removed;
    });
  }

  /** A new empty class from the page's field; throws the reason when the name is refused. */
  async addClass(raw) {
    this.forgetIntakeUndo();
    const label = await this.validateLabel(raw);
    this.ensureClass(label);
    this.activeLabel = label;
    this.emit('classes');
    this.emit('save');
    return label;
  }

  /** Resolves to whether the class is now called `raw` (an error was reported when not). */
  async renameClass(oldLabel, raw) {
    let label;
    try { label = await this.validateLabel(raw, { except: oldLabel }); } catch (e) { this.fail('rename', e); return false; }
    if (label === oldLabel) return true;
    this.forgetIntakeUndo();
    return this.serial(async () => {
      const c = this.classOf(oldLabel);
      if (!c) return false;
      try {
        if (c.keys.length) await this.withEngine((sw) => sw.renameClass(oldLabel, label));
      } catch (e) { this.fail('rename', e); return false; }
      c.label = label;
      this.emit('renamed', { from: oldLabel, to: label });
      for (const k of c.keys) { this.images.get(k).label = label; this.emit('stored', { key: k }); }
      if (this.activeLabel === oldLabel) this.activeLabel = label;
      this.markStale();
      this.emit('classes');
      this.emit('save');
      return true;
    });
  }

  // Removes every class and its photos from the engine and the page; false when the engine refused.
  async #clearClasses() {
    for (const c of [...this.classes]) {
      if (c.keys.length) {
        try { await this.withEngine((sw) => sw.removeClass(c.label)); } catch (e) { this.fail('deleteClass', e); return false; }
      }
      for (const k of [...c.keys]) this.dropRecord(k);
    }
    return true;
  }

  #setClasses(labels, active = null) {
    this.classes = labels.map((label) => ({ label, keys: [] }));
    this.activeLabel = this.classOf(active) ? active : this.classes[0]?.label ?? null;
  }

  async deleteClass(label) {
    const c = this.classOf(label);
    if (!c) return;
    this.forgetIntakeUndo();
    await this.serial(async () => {
      try {
        if (c.keys.length) await this.withEngine((sw) => sw.removeClass(label));
      } catch (e) { this.fail('deleteClass', e); return; }
      for (const k of [...c.keys]) this.dropRecord(k);
      this.classes = this.classes.filter((x) => x !== c);
      if (this.activeLabel === label) this.activeLabel = this.classes[0]?.label ?? null;
      this.markStale();
      this.emit('classes');
      this.emit('save');
    });
  }

  /** The preset's empty classes replace the project's; resolves to whether Undo can bring it back. */
  async applyPreset(name) {
    this.forgetIntakeUndo();
    const had = this.totalImages();
    return this.serial(async () => {
      if (had) await this.flush(); // the project as it is now becomes the backup
      if (!(await this.#clearClasses())) return false;
      this.#setClasses(PRESETS[name]);
      this.markStale();
      this.emit('classes');
      if (!had) { this.emit('save'); return false; }
      this.emit('replace-all', { keys: [] });
      const res = await this.flush();
      return Boolean(res?.saved);
    });
  }

  // ---- intake: class folders into a page whose classes are all empty ------------------------

  /** The user changed the project otherwise: the replacement is no longer what Undo would undo. */
  forgetIntakeUndo() {
    if (!this.intakeUndo) return;
    this.intakeUndo = null;
    this.emit('intake-undo', { prev: null });
  }

  /**
   * Adds `items`, the photos of a drop or a picked zip/folder. When every class is empty (the fresh
   * page's four presets, say) and all photos come with their class folder, those folders replace the
   * empty classes instead of landing beside them, with an Undo (the `intake-undo` event).
   * `items` may be an async iterable of arrays of photos (zips read as they are inflated: see
   * `addImages`), with `count` the photos it announces and `labelled` whether all come with a class.
   */
  async addClassFolders(items, { loose = false, count = null, labelled = null } = {}) {
    this.forgetIntakeUndo();
    const stream = !Array.isArray(items);
    const n = stream ? count ?? 0 : items.length;
    const allLabelled = stream ? Boolean(labelled) : items.every((it) => it.label);
    const replace = !loose && n > 0 && allLabelled
      && this.classes.length > 0 && this.totalImages() === 0 && !this.addJob.running
      && this.classes.every((c) => !c.keys.length);
    if (!replace) { await this.addImages(items, { count }); return; }
    const prev = { labels: this.classes.map((c) => c.label), active: this.activeLabel };
    this.classes = [];
    this.activeLabel = null;
    this.emit('classes');
    await this.addImages(items, { intake: true, count });
    if (!this.classes.length) {
      // nothing of it could be added: the empty classes come back as they were
      this.#setClasses(prev.labels);
      this.activeLabel = prev.active;
      this.emit('classes');
      this.emit('save');
      return;
    }
    if (!this.classOf(this.activeLabel)) this.setActive(this.classes[0].label);
    this.intakeUndo = prev;
    this.emit('intake-undo', { prev });
  }

  async undoIntake() {
    const prev = this.intakeUndo;
    this.forgetIntakeUndo();
    if (!prev) return;
    await this.serial(async () => {
      if (!(await this.#clearClasses())) return;
      this.#setClasses(prev.labels, prev.active);
      this.markStale();
      this.emit('classes');
      this.emit('save');
      this.say(t('intakeUndone'));
    });
  }

  // ---- training and the model ---------------------------------------------------------------

  setTraining(on) {
    this.training = on;
    this.emit('training', { on });
  }

  keyedReport(report) {
    const r = structuredClone(report);
    r.misclassified = (report.misclassified || []).map((m) => ({ ...m, key: this.idToKey.get(m.id) ?? null }));
    return r;
  }

  /** The model, its labels and report changed together: the model record is rewritten. */
  setModel(model, modelLabels, report) {
    this.model = model;
    this.modelLabels = modelLabels;
    this.report = report;
    this.emit('model-stored');
    this.emit('model');
  }

  async importModel(bytes) {
    await this.serial(async () => {
      try {
        const { labels } = await this.withEngine((sw) => sw.importModel(bytes.slice()));
        this.setModel(bytes, labels, null);
        this.stale = false;
        this.emit('stale');
        this.say(t('modelImported', { labels: labels.join(', ') }));
        this.emit('save');
      } catch (e) { this.fail('modelImportFailed', e); }
    });
  }

  /** The model as the bytes of a link (engine/client.js `shareModel`), in the queue. */
  share() {
    return this.serial(() => this.withEngine((sw) => sw.shareModel()));
  }

  /** The photos of every class, as `loadInto` takes them. */
  classImages() {
    return this.classes.map((c) => ({ label: c.label, images: c.keys.map((k) => this.images.get(k)).filter(Boolean) }));
  }

  // ---- whole-project replacements: restore, import, switching ---------------------------------

  /** Replaces the whole project (engine included) with `next`; used by import, restore and switching. */
  adopt(sw, arch, classes, records, { model = null, modelLabels = null, report = null, settings = null, stale = false, keepKeys = false }) {
    if (this.sw && this.sw !== sw) this.sw.terminate();
    for (const rec of this.images.values()) if (rec.url) URL.revokeObjectURL(rec.url);
    this.sw = sw;
    this.arch = arch;
    this.images = new Map();
    this.idToKey = new Map();
    this.classes = classes.map((c) => ({ label: c.label, keys: [] }));
    // keys only ever grow (never back to 1): a key names one image for the life of the storage
    for (const r of records) {
      const key = keepKeys && r.key != null ? r.key : this.nextKey++;
      if (keepKeys) this.nextKey = Math.max(this.nextKey, key + 1);
      this.addRecord(r.label, r.id, r.thumb, r.emb, key, r.from);
    }
    if (settings) this.settings = this.withDefaults(settings);
    this.setModel(model, modelLabels, report);
    this.stale = stale;
    if (!this.classOf(this.activeLabel)) this.activeLabel = this.classes[0]?.label ?? null;
    this.emit('replaced', { report });
    this.emit('history', { history: report?.history ?? null });
  }

  /** An empty project; resolves to whether Undo can bring the previous one back. */
  async clear() {
    this.forgetIntakeUndo();
    return this.serial(async () => {
      for (const c of this.classes) {
        if (c.keys.length) { try { await this.withEngine((sw) => sw.removeClass(c.label)); } catch { /* rebuilt below if needed */ } }
      }
      await this.flush(); // the project as it is now becomes the backup
      for (const k of [...this.images.keys()]) this.dropRecord(k);
      this.classes = [];
      this.setModel(null, null, null);
      this.stale = false;
      this.emit('cleared');
      this.emit('classes');
      this.emit('replace-all', { keys: [] });
      const res = await this.flush();
      return Boolean(res?.saved);
    });
  }
}
