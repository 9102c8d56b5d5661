// The project autosave in IndexedDB. Two object stores:
//   `meta`: 'project' (arch, settings, classes in order with their image keys, nextKey; small),
//           'model' ({bytes, labels, report}: the trained model, 33-60 MB with a fine-tuned stage,
//           written only when it changes), 'shelved' (a saved model this page could not use, kept
//           rather than dropped), 'backup' ({project, model}: the project an import or a new
//           project replaced, for undo);
//   `images`: key -> {key, label, thumb: Uint8Array (JPEG; a Blob in older saves), emb: Float32Array}.
// Every write is one readwrite transaction and succeeds only on its `complete` event: a failed
// request (quota, a clone error, anything) aborts the whole transaction, so the previous save
// stays whole. Image keys are never reused, which lets the backup's images live in the same store.

const DB_NAME = 'sortwise';
const DB_VERSION = 1;
/** Format of the 'project' record: 1 had the model inline, 2 keeps it in 'model'. */
export const SAVE_VERSION = 2;

let dbPromise = null;

/** An IndexedDB request as a promise (links-store.js uses it too). */
export function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      if (!('indexedDB' in self)) { reject(new Error('IndexedDB is not available')); return; }
      const r = indexedDB.open(DB_NAME, DB_VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains('meta')) db.createObjectStore('meta');
        if (!db.objectStoreNames.contains('images')) db.createObjectStore('images', { keyPath: 'key' });
      };
      r.onsuccess = () => {
        const db = r.result;
        // A newer page asking for a schema upgrade: let it, this page will fail its next write.
        db.onversionchange = () => { db.close(); dbPromise = null; };
        resolve(db);
      };
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(new Error('the database is open in another tab with an older version'));
    });
    dbPromise.catch(() => { dbPromise = null; });
  }
  return dbPromise;
}

/**
 * Reads the saved project as stored: {project, model, shelved, hasBackup, images: Map, maxKey}
 * or null when there is none. Nothing is interpreted here (the caller checks `project.version`);
 * a version 1 record's inline model is returned as `model` all the same.
 */
export async function loadProject() {
  const db = await openDb();
  const tx = db.transaction(['meta', 'images'], 'readonly');
  const meta = tx.objectStore('meta');
  const imagesStore = tx.objectStore('images');
  const [project, model, shelved, backups, all] = await Promise.all([
    req(meta.get('project')), req(meta.get('model')), req(meta.get('shelved')), req(meta.count('backup')), req(imagesStore.getAll()),
  ]);
  if (!project) return null;
  let m = model || null;
  if (!m && project.version === 1 && project.model) m = { bytes: project.model, labels: project.modelLabels ?? null, report: project.report ?? null };
  const images = new Map(all.map((r) => [r.key, r]));
  let maxKey = 0;
  for (const k of images.keys()) if (Number.isFinite(k) && k > maxKey) maxKey = k;
  return { project, model: m, shelved: shelved || null, hasBackup: backups > 0, images, maxKey };
}

/** The backup record ({project, model}: what an import or a new project replaced), or null. */
export async function loadBackup() {
  const db = await openDb();
  return (await req(db.transaction('meta', 'readonly').objectStore('meta').get('backup'))) ?? null;
}

export class QuotaError extends Error {
  constructor(message) { super(message); this.name = 'QuotaError'; }
}

function asError(e, fallback) {
  if (e && e.name === 'QuotaExceededError') return new QuotaError(e.message || 'quota exceeded');
  return e || new Error(fallback);
}

/**
 * Runs `fill(tx)` in one readwrite transaction over both stores; resolves on `complete` only.
 * No request error is ever prevented from aborting the transaction.
 */
async function transact(fill) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    let tx;
    try {
      // strict: `complete` means on disk, so a tab closed right after a save keeps it
      tx = db.transaction(['meta', 'images'], 'readwrite', { durability: 'strict' });
    } catch (e) { reject(asError(e, 'the save could not start')); return; }
    let first = null;
    let result;
    tx.refuse = (msg) => { first = new Error(msg); tx.abort(); };
    tx.onerror = (ev) => { first ??= ev.target?.error ?? null; };
    tx.onabort = () => reject(asError(first || tx.error, 'the save was aborted'));
    tx.oncomplete = () => resolve(result);
    try {
      result = fill(tx);
    } catch (e) {
      try { tx.abort(); } catch { /* already finished */ }
      reject(asError(e, 'the save failed'));
    }
  });
}

const referenced = (project) => new Set((project?.classes || []).flatMap((c) => c.keys || []));

/**
 * Writes one save, all or nothing.
 * `project`: the 'project' record (always written). `model`, `shelved`: undefined leaves the
 * stored record as it is, null deletes it, an object replaces it. `put`: image records, `del`:
 * image keys. `replace: true` (import, new project): the stored project and model become the
 * 'backup' (when they hold anything), and image records neither project references are deleted.
 */
export function saveProject({ project, model, shelved, put = [], del = [], replace = false }) {
  return transact((tx) => {
    const meta = tx.objectStore('meta');
    const images = tx.objectStore('images');
    const write = () => {
      for (const key of del) images.delete(key);
      for (const rec of put) images.put(rec);
      if (model === null) meta.delete('model');
      else if (model !== undefined) meta.put(model, 'model');
      if (shelved === null) meta.delete('shelved');
      else if (shelved !== undefined) meta.put(shelved, 'shelved');
      meta.put(project, 'project');
    };
    if (!replace) { write(); return; }
    const old = {};
    const oldBackup = {};
    meta.get('project').onsuccess = (ev) => { old.project = ev.target.result; };
    meta.get('model').onsuccess = (ev) => { old.model = ev.target.result; };
    meta.get('backup').onsuccess = (ev) => {
      oldBackup.value = ev.target.result;
      let backup = oldBackup.value;
      const p = old.project;
      const inlineModel = p && p.version === 1 && p.model ? { bytes: p.model, labels: p.modelLabels ?? null, report: p.report ?? null } : null;
      if (p && ((p.classes || []).some((c) => (c.keys || []).length) || old.model || inlineModel)) {
        backup = { project: p, model: old.model || inlineModel, saved: Date.now() };
        meta.put(backup, 'backup');
      }
      write();
      const keep = new Set([...referenced(project), ...referenced(backup?.project)]);
      images.getAllKeys().onsuccess = (e) => {
        for (const k of e.target.result) if (!keep.has(k)) images.delete(k);
      };
    };
  });
}

/**
 * Undo for an import or a new project: the backup becomes the project and the project the
 * backup (so a second undo redoes). Rejects, changing nothing, when there is no backup.
 */
export function swapBackup() {
  return transact((tx) => {
    const meta = tx.objectStore('meta');
    const cur = {};
    meta.get('project').onsuccess = (ev) => { cur.project = ev.target.result; };
    meta.get('model').onsuccess = (ev) => { cur.model = ev.target.result; };
    meta.get('backup').onsuccess = (ev) => {
      const b = ev.target.result;
      if (!b?.project) { tx.refuse('there is no backup to restore'); return; }
      meta.put(b.project, 'project');
      if (b.model) meta.put(b.model, 'model'); else meta.delete('model');
      if (cur.project) meta.put({ project: cur.project, model: cur.model || null, saved: Date.now() }, 'backup');
      else meta.delete('backup');
    };
  });
}

export async function clearProject() {
  return transact((tx) => {
    tx.objectStore('meta').clear();
    tx.objectStore('images').clear();
  });
}
