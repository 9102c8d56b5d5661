// The photos a phone took, kept until they are sent, in a database of their own
// ('sortwise-collect'): collecting never opens, reads or writes a project saved on this phone
// (store.js's 'sortwise'). Records: {id, session, kind: 'photos' | 'corrections', label, bytes:
// Uint8Array (JPEG), taken: ms, sent: bool, predicted?}. Bytes, not Blobs: WebKit's private
// windows refuse Blobs in IndexedDB.

const DB_NAME = 'sortwise-collect';

let dbPromise = null;

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openDb() {
  dbPromise ??= new Promise((resolve, reject) => {
    if (!('indexedDB' in self)) { reject(new Error('IndexedDB is not available')); return; }
    const r = indexedDB.open(DB_NAME, 1);
    r.onupgradeneeded = () => r.result.createObjectStore('photos', { keyPath: 'id', autoIncrement: true });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  dbPromise.catch(() => { dbPromise = null; });
  return dbPromise;
}

async function tx(mode, fn) {
  const db = await openDb();
  const t = db.transaction('photos', mode);
  const out = fn(t.objectStore('photos'));
  await new Promise((resolve, reject) => {
    t.oncomplete = resolve;
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error('the photo store refused the write'));
  });
  return out instanceof IDBRequest ? out.result : out;
}

/** Keeps a photo; resolves to its id. */
export function addPhoto(rec) { return tx('readwrite', (s) => s.add({ sent: false, ...rec })); }

export function deletePhoto(id) { return tx('readwrite', (s) => s.delete(id)); }

/** This session's photos of `kind`, oldest first. */
export async function photosOf(session, kind = 'photos') {
  const all = await tx('readonly', (s) => s.getAll());
  return all.filter((r) => r.session === session && r.kind === kind);
}

/** The corrections of shared classifiers kept here and not sent yet (any link), oldest first. */
export async function unsentCorrections() {
  const all = await tx('readonly', (s) => s.getAll());
  return all.filter((r) => r.kind === 'corrections' && !r.sent);
}

export function markSent(ids) {
  return tx('readwrite', (s) => {
    for (const id of ids) {
      const r = s.get(id);
      r.onsuccess = () => { if (r.result) s.put({ ...r.result, sent: true }); };
    }
  });
}

export async function deleteSent(session, kind = 'photos') {
  const ids = (await photosOf(session, kind)).filter((r) => r.sent).map((r) => r.id);
  await tx('readwrite', (s) => { for (const id of ids) s.delete(id); });
  return ids.length;
}
