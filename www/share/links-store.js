// Classifiers kept from shared links ("Save to my projects" in the classify view), in an IndexedDB
// database of their own: opening a link never opens, reads or writes the project's database
// (store.js, of which only the request helper is shared), so a shared model can never cost the
// saved project anything. A record holds the link's bytes, which is all a link is.

import { req } from '../project/store.js';

const DB_NAME = 'sortwise-links';
const DB_VERSION = 1;

let dbPromise = null;

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('the save was aborted'));
  });
}

function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      if (!('indexedDB' in self)) { reject(new Error('IndexedDB is not available')); return; }
      const r = indexedDB.open(DB_NAME, DB_VERSION);
      r.onupgradeneeded = () => {
        if (!r.result.objectStoreNames.contains('links')) r.result.createObjectStore('links', { keyPath: 'id', autoIncrement: true });
      };
      r.onsuccess = () => {
        r.result.onversionchange = () => { r.result.close(); dbPromise = null; };
        resolve(r.result);
      };
      r.onerror = () => reject(r.error);
    });
    dbPromise.catch(() => { dbPromise = null; });
  }
  return dbPromise;
}

const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Keeps `{bytes, labels, arch}` (bytes: the link's share bytes); the same bytes kept twice are
 * one record. Resolves to `{id, added}`.
 */
export async function keepLink({ bytes, labels, arch }) {
  const db = await openDb();
  const tx = db.transaction('links', 'readwrite');
  const store = tx.objectStore('links');
  const all = await req(store.getAll());
  const found = all.find((r) => same(r.bytes, bytes));
  let id = found?.id;
  if (!found) id = await req(store.add({ bytes: new Uint8Array(bytes), labels: [...labels], arch, savedAt: Date.now() }));
  await done(tx);
  return { id, added: !found };
}

/** Every kept classifier, newest first. */
export async function keptLinks() {
  const db = await openDb();
  const all = await req(db.transaction('links', 'readonly').objectStore('links').getAll());
  return all.sort((a, b) => b.savedAt - a.savedAt);
}

export async function forgetLink(id) {
  const db = await openDb();
  const tx = db.transaction('links', 'readwrite');
  tx.objectStore('links').delete(id);
  await done(tx);
}
