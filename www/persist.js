// Persistence of the project, apart from the UI (no DOM here): reading the saved project, the
// autosave (what changed since the last save, written all or nothing, and only once the project
// was loaded), and which tab owns the project (Web Locks, so that two tabs never both hand out
// image keys and overwrite each other's saves).
//
// The autosave is off until `enable()`: a page whose start or restore failed must never write,
// or one tab switch would save its empty project over the real one. Once off for a reason it
// stays off for the life of the page.

import { loadProject, saveProject, swapBackup, SAVE_VERSION, QuotaError } from './store.js';

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
    this.dirty.clear();
    this.deleted.clear();
    this.modelDirty = false;
    this.shelvedDirty = false;
    this.projectDirty = false;
    this.replace = false;
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

const LOCK = 'sortwise-project';
const CHANNEL = 'sortwise-project';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * One tab owns the project. With the Web Locks API the owner holds an exclusive lock for as long
 * as it lives; without it, tabs ask over a BroadcastChannel (and without that, every tab owns:
 * a browser that old has neither, and there is nothing to coordinate with).
 * `onHandOver()`: another tab asked to take over; resolve once the last save is written.
 * `onLost()`: this tab no longer owns the project (handed over, or the lock was stolen).
 */
export class Ownership {
  constructor({ onHandOver = async () => {}, onLost = () => {}, onFree = () => {}, lockName = LOCK } = {}) {
    this.onHandOver = onHandOver;
    this.onLost = onLost;
    this.onFree = onFree;
    this.lockName = lockName;
    this.owner = false;
    this.release = null;
    this.mode = 'none';
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null;
    this.channel?.addEventListener('message', (ev) => { this.message(ev.data); });
  }

  /** Resolves to true when this tab now owns the project, false when another tab does. */
  async claim() {
    try {
      return await this.claimWith(true);
    } catch {
      // the Web Locks API is there but refuses (e.g. a SecurityError): ask over the channel instead
      return this.claimWith(false);
    }
  }

  async claimWith(useLocks) {
    if (useLocks && typeof navigator !== 'undefined' && navigator.locks?.request) {
      this.mode = 'locks';
      let answered = false;
      this.owner = await new Promise((resolve, reject) => {
        navigator.locks.request(this.lockName, { ifAvailable: true }, (lock) => {
          answered = true;
          if (!lock) { resolve(false); return null; }
          resolve(true);
          return new Promise((r) => { this.release = r; });
        }).catch((e) => {
          if (!answered) { reject(e); return; } // the API refused to run here: claim() falls back
          // stolen by a tab that took over without an answer from this one
          if (this.owner) this.lose();
        });
      });
      if (!this.owner) {
        // told once the owning tab is gone (closed, or handed over): this one may then reload to own it
        navigator.locks.request(this.lockName, () => { this.onFree(); }).catch(() => {});
      }
      return this.owner;
    }
    if (this.channel) {
      this.mode = 'channel';
      let answered = false;
      const on = (ev) => { if (ev.data?.type === 'owner') answered = true; };
      this.channel.addEventListener('message', on);
      this.channel.postMessage({ type: 'who' });
      await sleep(300);
      this.channel.removeEventListener('message', on);
      this.owner = !answered;
      return this.owner;
    }
    this.owner = true;
    return true;
  }

  lose() {
    if (!this.owner) return;
    this.owner = false;
    this.release?.();
    this.release = null;
    this.onLost();
  }

  async message(m) {
    if (!m || typeof m !== 'object') return;
    if (m.type === 'who' && this.owner) this.channel.postMessage({ type: 'owner' });
    if (m.type === 'takeover' && this.owner) {
      try { await this.onHandOver(); } catch { /* hand over all the same */ }
      this.lose();
      this.channel.postMessage({ type: 'released' });
    }
  }

  /**
   * Asks the owning tab to save and let go, waiting up to `timeout` ms (then, with Web Locks,
   * takes the lock from it). Resolves when the project is free; the caller then reloads.
   */
  async takeOver(timeout = 5000) {
    const released = new Promise((resolve) => {
      const on = (ev) => { if (ev.data?.type === 'released') { this.channel.removeEventListener('message', on); resolve(true); } };
      this.channel?.addEventListener('message', on);
    });
    this.channel?.postMessage({ type: 'takeover' });
    if (this.mode === 'locks') {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), timeout);
      try {
        await navigator.locks.request(this.lockName, { signal: ctl.signal }, () => {});
      } catch {
        await navigator.locks.request(this.lockName, { steal: true }, () => {});
      } finally { clearTimeout(timer); }
      return true;
    }
    await Promise.race([released, sleep(timeout)]);
    return true;
  }
}
