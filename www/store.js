// The project autosave in IndexedDB. Two object stores: `meta` (one record, key 'project': arch,
// settings, classes in order with their image keys, the trained model bytes, the last report) and
// `images` (key -> {key, label, thumb: Blob (JPEG), emb: Float32Array}). Every save is a single
// readwrite transaction over both stores, so a failure (e.g. QuotaExceededError) leaves the previous
// save intact, never half of a new one.

const DB_NAME = 'sortwise';
const DB_VERSION = 1;

let dbPromise = null;

function req(r) {
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
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(new Error('the database is open in another tab with an older version'));
    });
    dbPromise.catch(() => { dbPromise = null; });
  }
  return dbPromise;
}

/** Loads the saved project: {meta, images: Map(key -> record)} or null when there is none. */
export async function loadProject() {
  const db = await openDb();
  const tx = db.transaction(['meta', 'images'], 'readonly');
  const meta = await req(tx.objectStore('meta').get('project'));
  if (!meta) return null;
  const all = await req(tx.objectStore('images').getAll());
  const images = new Map(all.map((r) => [r.key, r]));
  return { meta, images };
}

export class QuotaError extends Error {}

/**
 * Writes `meta`, puts `put` image records, deletes `del` image keys; all or nothing.
 * `clear: true` empties the images store first (used when the whole project is replaced).
 */
export async function saveProject({ meta, put = [], del = [], clear = false }) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    let tx;
    try {
      tx = db.transaction(['meta', 'images'], 'readwrite');
    } catch (e) { reject(e); return; }
    const images = tx.objectStore('images');
    try {
      if (clear) images.clear();
      for (const key of del) images.delete(key);
      for (const rec of put) images.put(rec);
      tx.objectStore('meta').put(meta, 'project');
    } catch (e) {
      try { tx.abort(); } catch { /* already aborted */ }
      reject(e);
      return;
    }
    tx.oncomplete = () => resolve();
    const fail = () => {
      const e = tx.error;
      if (e && e.name === 'QuotaExceededError') reject(new QuotaError(e.message || 'quota exceeded'));
      else reject(e || new Error('the save transaction was aborted'));
    };
    tx.onabort = fail;
    tx.onerror = (ev) => { ev.preventDefault(); };
  });
}

export async function clearProject() {
  const db = await openDb();
  const tx = db.transaction(['meta', 'images'], 'readwrite');
  tx.objectStore('meta').clear();
  tx.objectStore('images').clear();
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
  });
}
