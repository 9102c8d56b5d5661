// Photos from other devices into the project (issue 33): a contribution (contribution.js, from a
// dropped file or a live connection, peer.js) is merged into the classes of the same name, by the
// engine's label rule. Nothing is ever replaced, a class is never created silently (photos of a
// class the project lacks wait as an offer the teacher accepts or discards), each photo remembers
// who sent it (the record's `from`), and each merge can be undone: its photos share a batch id.
// The roster, the undo list and the per-contributor cap are all read from the records, so they
// survive a reload with the project. No DOM here: events on the project (`contributions`) tell
// the view (ui/collect.js) to render.

import { t } from '../i18n.js';
import { CONTRIBUTION_LIMITS } from './contribution.js';

const newBatch = () => [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, '0')).join('');

export { newBatch };

export class Merger {
  constructor(project) {
    this.project = project;
    // [{id, label, correction, contributor, photos}]: photos for a class the project lacks, and
    // corrections from a shared classifier's users (reviewed even for a class it has)
    this.offers = [];
    this.live = new Map(); // contributor id -> {name, connected, via} (peer.js connections)
    this.inFlight = new Map(); // contributor id -> photos being added now
    project.addEventListener('replaced', () => this.changed());
    project.addEventListener('images-removed', () => this.changed());
  }

  changed() { this.project.emit('contributions'); }

  /** Photos in the project from `id`, by key. */
  keysOf(pred) {
    const out = [];
    for (const rec of this.project.images.values()) if (rec.from && pred(rec.from)) out.push(rec.key);
    return out;
  }

  /**
   * Who sent photos: [{id, name, total, perClass: {label: n}, connected, via}] by first arrival, plus
   * those connected live who sent nothing yet.
   */
  roster() {
    const byId = new Map();
    for (const rec of this.project.images.values()) {
      const f = rec.from;
      if (!f) continue;
      let r = byId.get(f.id);
      if (!r) { r = { id: f.id, name: f.name, total: 0, perClass: {}, first: f.at, connected: null, via: null }; byId.set(f.id, r); }
      r.total += 1;
      r.perClass[rec.label] = (r.perClass[rec.label] ?? 0) + 1;
      r.first = Math.min(r.first, f.at);
    }
    for (const [id, l] of this.live) {
      if (!byId.has(id)) byId.set(id, { id, name: l.name, total: 0, perClass: {}, first: Infinity, connected: null });
      Object.assign(byId.get(id), { connected: l.connected, via: l.via });
    }
    return [...byId.values()].sort((a, b) => a.first - b.first);
  }

  /** The merges that can be undone, newest first: [{batch, name, count, at}]. */
  merges() {
    const byBatch = new Map();
    for (const rec of this.project.images.values()) {
      const f = rec.from;
      if (!f) continue;
      const m = byBatch.get(f.batch) ?? { batch: f.batch, name: f.name, count: 0, at: f.at };
      m.count += 1;
      m.at = Math.max(m.at, f.at);
      byBatch.set(f.batch, m);
    }
    return [...byBatch.values()].sort((a, b) => b.at - a.at);
  }

  /** A live contributor's state changed (peer.js); `via`: how the connection runs (peer.js routeOf). */
  setLive(id, name, connected, via = this.live.get(id)?.via ?? null) {
    this.live.set(id, { name, connected, via });
    this.changed();
  }

  /**
   * Merges `c` (contribution.js `readContribution`'s answer); `batch` names the merge for its
   * undo (a live connection passes one for all it sends: one undo per phone). Resolves to `{batch, added,
   * offered, capped, refused}`: photos added to existing classes, held as offers for classes
   * the project lacks, over the contributor's cap, and with a class name the engine refuses.
   */
  async merge(c, { batch = newBatch() } = {}) {
    const p = this.project;
    const at = Date.now();
    const from = { id: c.contributor.id, name: c.contributor.name, batch, at };
    // Merges of one phone may overlap (a live connection's next batch arrives while the last is
    // embedded): what is on its way counts toward the cap too.
    const inFlight = this.inFlight.get(from.id) ?? 0;
    const room = Math.max(0, CONTRIBUTION_LIMITS.maxPhotos - this.keysOf((f) => f.id === from.id).length - inFlight);
    const photos = c.photos.slice(0, room);
    // reserved at once, before anything is awaited: an overlapping merge sees these places taken
    this.inFlight.set(from.id, inFlight + photos.length);
    try {
      return await this.#mergeWithin(c, from, batch, photos);
    } finally {
      this.inFlight.set(from.id, (this.inFlight.get(from.id) ?? 0) - photos.length);
    }
  }

  async #mergeWithin(c, from, batch, photos) {
    const p = this.project;
    const capped = c.photos.length - photos.length;
    for (const ph of c.photos.slice(photos.length)) p.skip(`${from.name}: ${ph.name}`, 'contribCap', { n: CONTRIBUTION_LIMITS.maxPhotos });
    const names = new Map(); // label as sent -> the engine's name, or null when refused
    for (const ph of photos) {
      if (names.has(ph.label)) continue;
      try { names.set(ph.label, await p.withEngine((sw) => sw.validateLabel(ph.label))); } catch { names.set(ph.label, null); }
    }
    const known = [];
    const unknown = new Map();
    let refused = 0;
    for (const ph of photos) {
      const label = names.get(ph.label);
      if (label == null) { refused += 1; p.skip(`${from.name}: ${ph.name}`, 'contribBadClass'); continue; }
      const item = { label, name: `${from.name}: ${ph.name}`, bytes: ph.bytes, from };
      // A correction is reviewed before it joins a class, even one the project has.
      if (p.classOf(label) && c.kind !== 'corrections') known.push(item);
      else {
        if (!unknown.has(label)) unknown.set(label, []);
        unknown.get(label).push(item);
      }
    }
    for (const [label, items] of unknown) {
      const correction = c.kind === 'corrections';
      const same = this.offers.find((o) => o.label === label && o.contributor.id === from.id && o.correction === correction);
      if (same) same.photos.push(...items);
      else this.offers.push({ id: newBatch(), label, correction, contributor: { id: from.id, name: from.name }, photos: items });
    }
    if (known.length) await p.addImages(known);
    // this merge's own records: `from` is this call's object (a batch id may span several merges)
    let added = 0;
    for (const rec of p.images.values()) if (rec.from === from) added += 1;
    this.changed();
    const offered = [...unknown.values()].reduce((n, x) => n + x.length, 0);
    p.say(t('contribMerged', { name: from.name, added, offered }));
    return { batch, added, offered, capped, refused };
  }

  /** The offer's class is created and its photos added (as a merge of its own, with its undo). */
  async acceptOffer(id) {
    const o = this.offers.find((x) => x.id === id);
    if (!o) return;
    this.offers = this.offers.filter((x) => x !== o);
    if (!this.project.classOf(o.label)) {
      try {
        await this.project.addClass(o.label);
      } catch (e) { this.project.fail('addFailed', e); this.changed(); return; }
    }
    const from = { ...o.photos[0].from, batch: newBatch(), at: Date.now() };
    await this.project.addImages(o.photos.map((it) => ({ ...it, from })));
    this.changed();
  }

  discardOffer(id) {
    this.offers = this.offers.filter((x) => x.id !== id);
    this.changed();
  }

  /** Removes the photos one merge added. */
  async undo(batch) {
    const n = await this.project.removeImages(this.keysOf((f) => f.batch === batch));
    this.project.say(t('contribUndone', { n }));
    this.changed();
  }

  /** Removes every photo `id` sent, and the offers waiting from them. */
  async removeContributor(id) {
    this.offers = this.offers.filter((o) => o.contributor.id !== id);
    const n = await this.project.removeImages(this.keysOf((f) => f.id === id));
    this.project.say(t('contribRemoved', { n }));
    this.changed();
  }
}
