// Persistence of the project, apart from the UI (no DOM here): reading the saved project, the
// autosave (what changed since the last save, written all or nothing, and only once the project
// was loaded), restoring a saved project into the engine, and the project zip's import and
// export. The autosave listens to the project's change events (project.js); nothing calls it to
// say what changed. Which tab owns the project is ownership.js.
//
// The autosave is off until `enable()`: a page whose start or restore failed must never write,
// or one tab switch would save its empty project over the real one. Once off for a reason it
// stays off for the life of the page.

import { loadBackup, loadProject, saveProject, swapBackup, SAVE_VERSION, QuotaError } from './store.js';
import { checkedFrom, exportProjectZip, importProjectZip } from './project-zip.js';
import { LIMITS } from './project.js';
import { createEngine, loadInto, progressKeyFor } from './project-engine.js';
import { t } from '../i18n.js';
import { cleanSettings } from './settings.js';

export { SAVE_VERSION, QuotaError };

/**
 * The saved project, checked: {status: 'none'} | {status: 'newer', version} (written by a newer
 * page: not to be read, nor touched) | {status: 'ok', saved}. Throws when IndexedDB fails or the
 * record is not a project (the page then leaves it alone, as for a newer one).
 */
export async function readSaved() {
  const saved = await loadProject();
  if (!saved) return { status: 'none' };
  const v = saved.project?.version;
  if (Number.isInteger(v) && v > SAVE_VERSION) return { status: 'newer', version: v };
  if (!(Number.isInteger(v) && v >= 1) || !Array.isArray(saved.project.classes)) throw new Error('the saved project record is not one this page can read');
  // keys are never reused: also past any record the project lists lost track of
  const nextKey = Math.max(Number.isInteger(saved.project.nextKey) ? saved.project.nextKey : 1, saved.maxKey + 1);
  return { status: 'ok', saved, nextKey, migrate: v < SAVE_VERSION };
}

export class Autosave {
  /**
   * `snapshot()` returns what a save writes: {project, model, shelved, image(key)} where
   * `project` is the small 'project' record, `model`/`shelved` {bytes, labels, report, ...} or
   * null, and `image(key)` the stored form of one image record (or null when it is gone).
   * `onSaved()`, `onFailed(error)`, `onOff(reason)` report to the UI.
   */
  constructor({ snapshot, onSaved = () => {}, onFailed = () => {}, onOff = () => {}, delay = 300 }) {
    this.snapshot = snapshot;
    this.onSaved = onSaved;
    this.onFailed = onFailed;
    this.onOff = onOff;
    this.delay = delay;
    this.enabled = false;
    this.off = null;
    this.dirty = new Set();
    this.deleted = new Set();
    this.modelDirty = false;
    this.shelvedDirty = false;
    this.projectDirty = false;
    this.replace = false;
    this.timer = null;
    this.chain = Promise.resolve();
    this.saves = 0;
  }

  markImage(key) { this.dirty.add(key); this.deleted.delete(key); }
  dropImage(key) { this.dirty.delete(key); this.deleted.add(key); }
  markModel() { this.modelDirty = true; }
  markShelved() { this.shelvedDirty = true; }
  /** Only the small project record changed (it is written with every save anyway). */
  markProject() { this.projectDirty = true; }
  /** The whole project was replaced (import, new project): the stored one becomes the backup. */
  replaceAll(keys) {
    this.replace = true;
    this.deleted.clear();
    this.dirty = new Set(keys);
    this.modelDirty = true;
  }
  /** After a restore: what is in memory is what is stored. */
  settled() {
    this.dirty.clear();
    this.deleted.clear();
    this.modelDirty = false;
    this.shelvedDirty = false;
    this.projectDirty = false;
    this.replace = false;
  }
  get pending() {
    return this.dirty.size + this.deleted.size + [this.modelDirty, this.shelvedDirty, this.projectDirty, this.replace].filter(Boolean).length;
  }

  enable() {
    if (this.off) return false;
    this.enabled = true;
    return true;
  }

  /** Saving stops for good; `reason` ({key, params}) says why, for the UI. */
  disable(reason) {
    clearTimeout(this.timer);
    this.enabled = false;
    if (!this.off) {
      this.off = reason;
      this.onOff(reason);
    }
  }

  /** Writes what is pending once more (even while turning off), then stops: another tab takes over. */
  async handOver(reason) {
    const was = this.enabled;
    this.enabled = false;
    clearTimeout(this.timer);
    await this.chain.catch(() => {});
    if (was) await this.write(true).catch(() => {});
    this.disable(reason);
  }

  schedule() {
    if (!this.enabled) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.save().catch(() => {}); }, this.delay);
  }

  /** Resolves to {saved: true} or {saved: false, reason} (off); rejects when the write failed. */
  save() {
    clearTimeout(this.timer);
    const run = this.chain.catch(() => {}).then(() => this.write(false));
    this.chain = run;
    return run;
  }

  async write(force) {
    if (!this.enabled && !force) return { saved: false, reason: this.off };
    const snap = this.snapshot();
    const keys = [...this.dirty];
    const del = [...this.deleted];
    const { modelDirty, shelvedDirty, replace } = this;
    this.settled(); // taken: what changes from here goes into the next save
    const put = [];
    for (const k of keys) {
      const rec = snap.image(k);
      if (rec) put.push(rec);
    }
    try {
      await saveProject({
        project: snap.project,
        model: modelDirty ? snap.model : undefined,
        shelved: shelvedDirty ? snap.shelved : undefined,
        put,
        del,
        replace,
      });
    } catch (e) {
      // nothing of this save was written: everything it carried is still to be saved
      for (const k of keys) if (!this.deleted.has(k)) this.dirty.add(k);
      for (const k of del) this.deleted.add(k);
      this.modelDirty ||= modelDirty;
      this.shelvedDirty ||= shelvedDirty;
      this.replace ||= replace;
      this.onFailed(e);
      throw e;
    }
    this.saves += 1;
    this.onSaved({ images: put.length, deleted: del.length, model: modelDirty });
    return { saved: true };
  }
}

/** Undo of an import/new project, in storage; the caller reloads the page afterwards. */
export function undoReplace() { return swapBackup(); }

/** Asks the browser not to evict the project under storage pressure: true, false, or null (no API). */
export async function persistStorage() {
  try {
    if (!navigator.storage?.persist) return null;
    if (await navigator.storage.persisted()) return true;
    return await navigator.storage.persist();
  } catch { return null; }
}

// What a save writes (see store.js): the small project record every time, the model record and
// the images only when they changed (the Autosave tracks that), so that moving the threshold
// slider does not rewrite a 60 MB model.
export function snapshot(project) {
  return {
    project: {
      version: SAVE_VERSION,
      arch: project.arch,
      settings: { ...project.settings },
      classes: project.classes.map((c) => ({ label: c.label, keys: [...c.keys] })),
      hasModel: !!project.model,
      stale: project.stale,
      nextKey: project.nextKey,
      activeLabel: project.activeLabel,
      saved: Date.now(),
    },
    model: project.model ? { bytes: project.model, labels: project.modelLabels, report: project.report } : null,
    shelved: project.shelved.length ? project.shelved : null,
    image(key) {
      const rec = project.images.get(key);
      // Bytes, not a Blob: Safari's private windows and WebKit's ephemeral sessions refuse Blobs
      // in IndexedDB ("Error preparing Blob/File data to be stored in object store").
      if (!rec) return null;
      return { key, label: rec.label, thumb: rec.thumb, emb: rec.emb, ...(rec.from ? { from: rec.from } : {}) };
    },
  };
}

/**
 * The autosave of `project`: what its change events say changed is marked, and a save scheduled;
 * the project's `flush()` saves at once. `callbacks`: Autosave's onSaved, onFailed, onOff.
 */
export function autosaveProject(project, callbacks) {
  const autosave = new Autosave({ snapshot: () => snapshot(project), ...callbacks });
  const on = (type, fn) => project.addEventListener(type, (ev) => fn(ev.detail));
  on('stored', ({ key }) => autosave.markImage(key));
  on('dropped', ({ key }) => autosave.dropImage(key));
  on('model-stored', () => autosave.markModel());
  on('replace-all', ({ keys }) => autosave.replaceAll(keys));
  on('save', () => autosave.schedule());
  project.onFlush(() => autosave.save());
  return autosave;
}

/**
 * Loads the saved project (`readSaved()`'s answer) into the project's engine. Throws when it
 * cannot, with the project untouched. A saved model the engine refuses (another backbone, a failed
 * backbone check) is not dropped: it is kept in storage as "shelved". Resolves to the number of
 * images restored.
 */
export async function restore(project, autosave, { saved, nextKey, migrate }) {
  const meta = saved.project;
  const classes = (meta.classes || []).map((c) => ({
    label: c.label,
    images: (c.keys || []).map((k) => saved.images.get(k)).filter(Boolean).map((r) => ({ key: r.key, thumb: r.thumb, emb: r.emb, from: checkedFrom(r.from) })),
  }));
  for (const c of classes) {
    // Saves before bytes were stored directly hold a Blob.
    for (const im of c.images) im.thumb = im.thumb instanceof Blob ? new Uint8Array(await im.thumb.arrayBuffer()) : new Uint8Array(im.thumb);
  }
  const { sw, arch } = project;
  const renamed = await acceptableLabels(sw, classes);
  if (renamed.length) project.emit('labels-renamed', { renamed });
  const sameArch = meta.arch === arch;
  const records = await loadInto(project, sw, classes, sameArch, progressKeyFor(sw, sameArch), arch);
  let model = null;
  let modelLabels = null;
  let report = null;
  let refused = null;
  const sm = saved.model;
  if (sm?.bytes) {
    if (sameArch) {
      try {
        ({ labels: modelLabels } = await sw.importModel(sm.bytes.slice()));
        model = sm.bytes;
        report = sm.report || null;
      } catch (e) { refused = e.message; }
    } else refused = t('shelvedOtherArch', { arch: meta.arch, current: arch });
  }
  project.nextKey = nextKey;
  project.shelved = Array.isArray(saved.shelved) ? saved.shelved : [];
  if (meta.activeLabel) project.activeLabel = meta.activeLabel;
  // the settings as the start checked them (app.js), not as stored
  project.adopt(sw, arch, classes, records, { model, modelLabels, report, settings: project.settings, stale: !!meta.stale, keepKeys: true });
  if (sameArch && !sw.finetune) autosave.settled(); // already stored as they are
  // a version 1 save held the model inline: the next save writes it to its own record
  if (migrate) autosave.markModel();
  else if (model === (sm?.bytes ?? null)) autosave.modelDirty = false;
  if (nextKey !== meta.nextKey) autosave.markProject(); // advanced past stored keys: say so in storage
  if (renamed.length) for (const k of project.images.keys()) autosave.markImage(k); // their records name the class
  if (refused != null) {
    project.shelved.push({ bytes: sm.bytes, labels: sm.labels ?? null, report: sm.report ?? null, arch: meta.arch, reason: refused, shelved: Date.now() });
    autosave.markShelved();
    autosave.markModel();
  }
  return records.length;
}

// What a stored class name becomes when the engine's label rule, stricter than the page that
// saved it, refuses it (a text-direction control, an invisible character): those characters are
// dropped, and a name left empty or taken gets a number. Renamed in place, so that a saved
// project always loads; returns [{from, to}] for the notice.
async function acceptableLabels(sw, classes) {
  const renamed = [];
  const taken = new Set(classes.map((c) => c.label));
  for (const [i, c] of classes.entries()) {
    try {
      if ((await sw.validateLabel(c.label)) === c.label) continue;
    } catch { /* refused: renamed below */ }
    const base = [...String(c.label)].filter((ch) => !/[\p{Cc}\p{Cf}\u3164\uFFA0]/u.test(ch)).join('').trim().slice(0, 80) || `class ${i + 1}`;
    let to = base;
    for (let n = 2; taken.has(to); n += 1) to = `${base} (${n})`;
    try {
      to = await sw.validateLabel(to);
    } catch {
      to = `class ${i + 1}`;
      for (let n = 2; taken.has(to); n += 1) to = `class ${i + 1} (${n})`;
    }
    taken.add(to);
    renamed.push({ from: c.label, to });
    c.label = to;
  }
  return renamed;
}

/**
 * Replaces the project with a project zip. Everything is read, validated and loaded into a new
 * engine before the current project or its engine is touched: a refused file leaves both as they
 * were (and is reported as the project's error). Resolves to whether Undo can bring the replaced
 * project back.
 */
export function importProject(project, file) {
  return project.serial(async () => {
    let sw = null;
    try {
      const parsed = await importProjectZip(file, { ...LIMITS, maxLabel: project.rules.maxLabelChars });
      // The engine's own label rule (bidi controls, invisible characters, ...), before anything loads.
      for (const c of parsed.classes) {
        try {
          if ((await project.sw.validateLabel(c.label)) !== c.label) throw new Error('surrounding spaces');
        } catch (e) {
          throw new Error(t('importBadLabel', { label: JSON.stringify(c.label.slice(0, 40)), reason: e.message }));
        }
      }
      // Every setting the engine would refuse is reset here, with a notice, never stored.
      const { settings, reset } = cleanSettings(parsed.settings, project.rules);
      parsed.settings = settings;
      const known = project.knownArch(parsed.arch);
      const arch = known ? parsed.arch : project.arch;
      const augment = settings.augment ?? project.settings.augment;
      sw = await createEngine(project, arch, augment, parsed.settings.finetuneLast);
      const sameArch = known && parsed.embLen != null ? parsed.embLen % sw.dim === 0 : false;
      if (known && parsed.embLen != null && !sameArch) throw new Error(`the embeddings have ${parsed.embLen} values, ${arch} gives ${sw.dim} per view`);
      const records = await loadInto(project, sw, parsed.classes, sameArch, progressKeyFor(sw, sameArch), arch);
      let model = null;
      let modelLabels = null;
      if (parsed.model && sameArch) {
        ({ labels: modelLabels } = await sw.importModel(parsed.model.slice()));
        model = parsed.model;
      }
      let report = null;
      if (model && parsed.report) {
        // misclassified entries point at images by their position in the file: map to the new ids
        const idAt = (i) => (Number.isInteger(i) && records[i] ? records[i].id : null);
        report = { ...parsed.report, misclassified: parsed.report.misclassified.map((m) => ({ ...m, id: idAt(m.image) })) };
      }
      // the project being replaced is saved as it is now: it becomes the backup that undo restores
      await project.flush();
      project.adopt(sw, arch, parsed.classes, records, { model, modelLabels, settings: parsed.settings });
      if (report) {
        project.setModel(model, modelLabels, project.keyedReport(report));
        project.emit('history', { history: report.history });
      }
      project.emit('replace-all', { keys: [...project.images.keys()] });
      const res = await project.flush();
      project.say(t('projectImported', { classes: parsed.classes.length, images: records.length }));
      if (reset.length) project.emit('settings-reset', { reset });
      return Boolean(res?.saved);
    } catch (e) {
      if (sw && sw !== project.sw) sw.terminate();
      project.fail('projectImportFailed', e);
      project.emit('engine', { sw: project.sw });
      project.say('');
      return false;
    }
  });
}

/** The project as a zip (project-zip.js). */
export function exportProject(project) {
  return exportProjectZip({
    arch: project.arch,
    dim: project.sw?.dim,
    settings: project.settings,
    classes: project.classes.map((c) => ({ label: c.label, images: c.keys.map((k) => project.images.get(k)).filter(Boolean) })),
    model: project.model,
    report: project.report,
  });
}

/**
 * What this browser has saved, as project zips, read from storage alone (no engine): the way out
 * of a page that cannot start. `[{name, bytes}]`: the project, then the backup of the project an
 * import or a new project replaced, where there is one. Rejects when storage cannot be read.
 */
export async function savedProjectZips() {
  const saved = await loadProject();
  if (!saved) return [];
  const zip = async (meta, model) => {
    const classes = [];
    for (const c of meta?.classes || []) {
      const images = [];
      for (const r of (c.keys || []).map((k) => saved.images.get(k))) {
        if (!r?.emb) continue;
        // Saves before bytes were stored directly hold a Blob.
        const thumb = r.thumb instanceof Blob ? new Uint8Array(await r.thumb.arrayBuffer()) : new Uint8Array(r.thumb);
        images.push({ key: r.key, thumb, emb: r.emb, from: checkedFrom(r.from) });
      }
      classes.push({ label: c.label, images });
    }
    const dim = classes.flatMap((c) => c.images)[0]?.emb.length ?? null;
    return exportProjectZip({ arch: meta.arch, dim, settings: meta.settings ?? {}, classes, model: model?.bytes ?? null, report: model?.report ?? null });
  };
  const out = [{ name: 'sortwise-saved-project.zip', bytes: await zip(saved.project, saved.model) }];
  const backup = await loadBackup();
  if (backup?.project) out.push({ name: 'sortwise-saved-backup.zip', bytes: await zip(backup.project, backup.model) });
  return out;
}
