// Which tab owns the project (Web Locks, so that two tabs never both hand out image keys and
// overwrite each other's saves; a BroadcastChannel where there are no locks). No DOM here.

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
