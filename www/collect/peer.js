// A phone's photos to the teacher's page over a WebRTC data channel, with no server: the
// teacher's offer travels in the collect link's QR code (collect-link.js), the phone's answer
// back as a QR code the teacher's camera reads (qr-scan.js). ICE gathering completes before a
// code is made (no trickle): a code is all the other side ever gets. With no ICE servers
// configured only host candidates exist, so on one Wi-Fi nothing passes through any server.
//
// The protocol (`PhotoSender` on the phone, `PhotoReceiver` on the teacher's page), JSON text
// messages and binary chunks, in order on one reliable channel:
//   phone   {t: 'hello', v: 1, session, contributor: {id, name}}
//   phone   {t: 'batch', n, kind?, photos: [{label, size, crc, taken, predicted?}]} (kind
//           'corrections' for a shared classifier's corrections), then each photo's bytes in
//           chunks of at most CHUNK bytes
//   teacher {t: 'ack', n, added, offered} once the batch is merged, or {t: 'nack', n, reason}
// At most WINDOW batches await their answer: the next crosses while the last is embedded.
// A batch is merged only once every byte arrived and every photo's size and CRC-32 match: a
// channel cut mid-batch leaves the project as it was, and the phone still holds those photos
// (sent only once acknowledged), so it sends them again on the next connection.

import { deflateSync, strFromU8, strToU8 } from '../vendor/fflate.js';
import { fromBase64Url, fromDigits, inflateAtMost, toBase64Url, toDigits } from '../share/share-link.js';
import { crc32 } from '../project/project-zip.js';
import { CONTRIBUTION_LIMITS, cleanName } from './contribution.js';

export const CHUNK = 16 * 1024;
/** Photos a phone sends in one batch, and how many batches may await their acknowledgement. */
export const BATCH = 8;
export const WINDOW = 2;
/** A photo as the phone makes it is ~10-30 KB (256 px on its short side); this is a ceiling. */
export const MAX_PHOTO_BYTES = 2 * 1024 * 1024;
const MAX_SDP = 16 * 1024;
const ANSWER_PREFIX = 'sortwise-answer:';
const GATHER_MS = 10000;

// ---- pairing ------------------------------------------------------------------------------------

// What a data channel's SDP can do without: lines about media streams, the trickle option (the
// codes carry every candidate), and the candidates' optional extension attributes. Fewer bytes, a
// coarser QR code, which a laptop's webcam reads from further away.
const NEEDLESS = /^a=(extmap-allow-mixed|msid-semantic:.*|ice-options:trickle)$/;

/** The SDP with what a data channel does not need left out. */
export function minimalSdp(sdp) {
  return sdp.split('\r\n')
    .filter((l) => !NEEDLESS.test(l))
    .map((l) => (l.startsWith('a=candidate:') ? l.replace(/ (generation|network-id|network-cost|ufrag) \S+/g, '') : l))
    .join('\r\n');
}

export function packSdp(sdp) { return toBase64Url(deflateSync(strToU8(minimalSdp(sdp)), { level: 9 })); }

export function unpackSdp(text) {
  let bytes;
  try {
    bytes = inflateAtMost(fromBase64Url(text), MAX_SDP, { tooLarge: 'the code holds more than a connection offer', damaged: 'the code is damaged' });
  } catch (e) {
    throw new Error(/more than a connection/.test(e.message) ? e.message : 'the code is damaged');
  }
  const sdp = strFromU8(bytes);
  if (!sdp.startsWith('v=0')) throw new Error('the code is not a connection offer');
  return sdp;
}

/**
 * The phone's answer as a QR code's content, naming the session it answers: `{base, digits}` as
 * share-link.js's `qrCode` takes it, the prefix in byte mode and the deflated answer as digits
 * in numeric mode (17 digits per 7 bytes: a quarter fewer modules than its base64 text).
 */
export function answerCode(session, answer) {
  return { base: `${ANSWER_PREFIX}${session}:n`, digits: toDigits(fromBase64Url(answer)) };
}

/** `{session, answer}` from a scanned code's text; null when the code is something else. */
export function readAnswerCode(text) {
  const m = /^sortwise-answer:([A-Z0-9]{6}):(n[0-9]+|[A-Za-z0-9_-]+)$/.exec(String(text ?? '').trim());
  if (!m) return null;
  try {
    return { session: m[1], answer: m[2].startsWith('n') ? toBase64Url(fromDigits(m[2].slice(1))) : m[2] };
  } catch {
    return null; // digits that make no whole bytes: a damaged code
  }
}

function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); } };
    // Some candidates may never finish (a dead interface): what was gathered by then is used.
    const timer = setTimeout(resolve, GATHER_MS);
    pc.addEventListener('icegatheringstatechange', done);
    pc.addEventListener('icecandidate', (ev) => { if (!ev.candidate) { clearTimeout(timer); resolve(); } });
  });
}

/** `{iceServers, iceTransportPolicy}` for RTCPeerConnection from the page's settings (none by default). */
export function rtcConfig({ iceServers = [], relayOnly = false } = {}) {
  return { iceServers, ...(relayOnly ? { iceTransportPolicy: 'relay' } : {}) };
}

// The channel is negotiated (the same id on both ends, made by each), not announced in-band:
// with an announced channel, a phone that sent the moment its end opened lost those messages
// about one pairing in twenty in Chromium (both ends open, nothing delivered; host candidates on
// one machine, tests/e2e/collect-pairing.mjs). Both ends must be of this version.
const CHANNEL = ['sortwise', { negotiated: true, id: 0, ordered: true }];

/** The teacher's side: a connection with its data channel and the offer for the QR code. */
export async function makeOffer(config = {}) {
  const pc = new RTCPeerConnection(config);
  const channel = pc.createDataChannel(...CHANNEL);
  channel.binaryType = 'arraybuffer';
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  return { pc, channel, offer: packSdp(pc.localDescription.sdp) };
}

/** The phone's side: the answer to `offer` (packed), and its end of the channel (open once the teacher accepts the answer). */
export async function answerOffer(offer, config = {}) {
  const pc = new RTCPeerConnection(config);
  const ch = pc.createDataChannel(...CHANNEL);
  ch.binaryType = 'arraybuffer';
  const channel = Promise.resolve(ch);
  await pc.setRemoteDescription({ type: 'offer', sdp: unpackSdp(offer) });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  return { pc, channel, answer: packSdp(pc.localDescription.sdp) };
}

export async function acceptAnswer(pc, answer) {
  await pc.setRemoteDescription({ type: 'answer', sdp: unpackSdp(answer) });
}

/** Resolves once `channel` is open (rejects when it closes first or after `ms`). */
export function opened(channel, ms = 30000) {
  if (channel.readyState === 'open') return Promise.resolve(channel);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the connection did not open')), ms);
    channel.addEventListener('open', () => { clearTimeout(timer); resolve(channel); }, { once: true });
    channel.addEventListener('close', () => { clearTimeout(timer); reject(new Error('the connection closed')); }, { once: true });
  });
}

/**
 * How a connected `pc` carries its data: 'relay' (through a TURN server), 'srflx'/'prflx' (a
 * STUN-found address) or 'host' (directly on the local network); null when not known.
 */
export async function routeOf(pc, tries = 10) {
  for (let i = 0; i < tries; i += 1) {
    const route = await selectedRoute(pc);
    if (route) return route;
    // the selected pair shows in the stats a moment after the channel opens
    await new Promise((r) => setTimeout(r, 300));
  }
  return null;
}

async function selectedRoute(pc) {
  try {
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
    });
    if (!pair) stats.forEach((r) => { if (r.type === 'candidate-pair' && r.state === 'succeeded' && (r.nominated || r.selected)) pair ??= r; });
    return pair ? stats.get(pair.localCandidateId)?.candidateType ?? null : null;
  } catch {
    return null;
  }
}

// ---- the photo protocol ------------------------------------------------------------------------

const json = (m) => JSON.stringify(m);

/**
 * The phone's end. `send(photos, {kind})` ([{id, label, bytes, taken, predicted?}]; `kind`
 * 'photos', or 'corrections' of a shared classifier) sends them in batches of BATCH,
 * at most WINDOW batches unacknowledged (the next one crosses while the teacher's page embeds the
 * last); resolves to the ids acknowledged, in order (all of `photos`; it rejects when the
 * connection fails or a batch is refused, and the photos after the last acknowledged stay unsent).
 */
export class PhotoSender {
  constructor(channel, { session, contributor }) {
    this.channel = channel;
    this.session = session;
    this.contributor = contributor;
    this.waiting = new Map(); // batch number -> {resolve, reject}
    this.n = 0;
    channel.addEventListener('message', (ev) => this.#onMessage(ev.data));
    channel.addEventListener('close', () => {
      for (const w of this.waiting.values()) w.reject(new Error('the connection closed'));
      this.waiting.clear();
    });
  }

  #onMessage(data) {
    if (typeof data !== 'string') return;
    let m;
    try { m = JSON.parse(data); } catch { return; }
    const w = this.waiting.get(m.n);
    if (!w) return;
    this.waiting.delete(m.n);
    if (m.t === 'ack') w.resolve(m);
    else w.reject(new Error(m.reason || 'the teacher\'s page refused the photos'));
  }

  hello() {
    const c = this.contributor();
    this.channel.send(json({ t: 'hello', v: 1, session: this.session, contributor: { id: c.id, name: c.name } }));
  }

  // Waits for the channel's buffer to drain below a few chunks, so that a batch never queues
  // megabytes in the browser (Chromium closes a channel whose buffer passes 16 MB).
  async #drain() {
    const ch = this.channel;
    if (ch.bufferedAmount <= 4 * CHUNK) return;
    ch.bufferedAmountLowThreshold = CHUNK;
    await new Promise((resolve) => ch.addEventListener('bufferedamountlow', resolve, { once: true }));
  }

  async #sendBatch(batch, kind) {
    this.n += 1;
    const n = this.n;
    const ack = new Promise((resolve, reject) => { this.waiting.set(n, { resolve, reject }); });
    ack.catch(() => {}); // awaited by send(); a close while the bytes go out must not go unhandled
    const photos = batch.map((p) => ({ label: p.label, size: p.bytes.byteLength, crc: crc32(p.bytes), taken: p.taken ?? null, ...(p.predicted != null ? { predicted: p.predicted } : {}) }));
    this.channel.send(json({ t: 'batch', n, ...(kind !== 'photos' ? { kind } : {}), photos }));
    for (const p of batch) {
      for (let o = 0; o < p.bytes.byteLength; o += CHUNK) {
        await this.#drain();
        if (this.channel.readyState !== 'open') throw new Error('the connection closed');
        this.channel.send(p.bytes.slice(o, o + CHUNK));
      }
    }
    return { ack }; // wrapped: an async function returning the promise itself would wait for it
  }

  async send(photos, { kind = 'photos' } = {}) {
    const done = [];
    const inFlight = []; // [{ack, ids}]
    const settle = async () => {
      const { ack, ids } = inFlight.shift();
      await ack;
      done.push(...ids);
    };
    for (let i = 0; i < photos.length; i += BATCH) {
      const batch = photos.slice(i, i + BATCH);
      if (inFlight.length >= WINDOW) await settle();
      const { ack } = await this.#sendBatch(batch, kind);
      inFlight.push({ ack, ids: batch.map((p) => p.id) });
    }
    while (inFlight.length) await settle();
    return done;
  }
}

/**
 * The teacher's end, one per phone. `onHello(contributor)` when the phone names itself;
 * `onBatch(contribution)` (contribution.js's form) for each whole, checked batch, resolving to
 * `{added, offered}`; `onClose()` when the channel closes. Anything malformed closes the channel
 * (a phone running this page never sends it); a batch cut short is dropped whole.
 */
export class PhotoReceiver {
  constructor(channel, { session, onHello, onBatch, onClose, now = () => Date.now(), maxRate = CONTRIBUTION_LIMITS.maxRate }) {
    this.maxRate = maxRate;
    this.channel = channel;
    this.session = session;
    this.onBatch = onBatch;
    this.contributor = null;
    this.batch = null; // {n, photos, bytes: [Uint8Array], index, got}
    this.now = now;
    this.recent = []; // arrival times of this contributor's photos, for the rate cap
    this.merging = 0; // batches received whole and not answered yet
    channel.addEventListener('message', (ev) => {
      try {
        this.#onMessage(ev.data, onHello);
      } catch (e) {
        this.refuse(e.message);
      }
    });
    channel.addEventListener('close', () => { this.batch = null; onClose?.(); });
  }

  refuse(why) {
    // who and where in the protocol: what a teacher (or a test's log) needs to tell phones apart
    const at = this.batch ? `batch ${this.batch.n}, photo ${this.batch.index + 1} of ${this.batch.photos.length}` : 'between batches';
    console.warn(`[sortwise] ${this.contributor?.name ?? 'a phone'}'s connection was closed (${at}):`, why);
    this.batch = null;
    try { this.channel.close(); } catch { /* closed already */ }
  }

  #onMessage(data, onHello) {
    if (typeof data === 'string') {
      if (data.length > 256 * 1024) throw new Error('a message larger than any the page sends');
      const m = JSON.parse(data);
      if (m.t === 'hello') {
        if (m.v !== 1 || m.session !== this.session) throw new Error('another session');
        const c = m.contributor;
        if (!c || typeof c.id !== 'string' || !/^[A-Za-z0-9_-]{8,40}$/.test(c.id)) throw new Error('no contributor id');
        if (this.contributor && this.contributor.id !== c.id) throw new Error('a second contributor on one connection');
        this.contributor = { id: c.id, name: cleanName(c.name) || c.id.slice(0, 6) };
        onHello?.(this.contributor);
        return;
      }
      if (m.t === 'batch') {
        if (!this.contributor) throw new Error('photos before the phone said who it is');
        if (this.batch) throw new Error('a batch before the last one ended');
        // The phone keeps at most WINDOW batches unanswered: one that sends more is flooding,
        // and would queue photos in this page faster than they are merged.
        if (this.merging >= WINDOW) throw new Error('more batches than the phone may have unanswered');
        if (!Number.isInteger(m.n) || !Array.isArray(m.photos) || !m.photos.length || m.photos.length > BATCH) throw new Error('a malformed batch');
        const kind = m.kind ?? 'photos';
        if (kind !== 'photos' && kind !== 'corrections') throw new Error('a batch of an unknown kind');
        for (const p of m.photos) {
          if (!p || typeof p.label !== 'string' || !Number.isInteger(p.size) || p.size < 1 || p.size > MAX_PHOTO_BYTES || !Number.isInteger(p.crc)) throw new Error('a malformed photo');
          if (p.predicted != null && typeof p.predicted !== 'string') throw new Error('a malformed photo');
        }
        this.batch = { n: m.n, kind, photos: m.photos, bytes: m.photos.map((p) => new Uint8Array(p.size)), index: 0, got: 0 };
        return;
      }
      throw new Error(`an unknown message ${String(m.t).slice(0, 20)}`);
    }
    const b = this.batch;
    if (!b) throw new Error('bytes outside a batch');
    const chunk = new Uint8Array(data);
    const want = b.photos[b.index].size - b.got;
    if (chunk.byteLength > want || chunk.byteLength > CHUNK) throw new Error('more bytes than the photo\'s size');
    b.bytes[b.index].set(chunk, b.got);
    b.got += chunk.byteLength;
    if (b.got < b.photos[b.index].size) return;
    b.index += 1;
    b.got = 0;
    if (b.index < b.photos.length) return;
    this.batch = null;
    // Not chained: the project's own queue keeps merges in order, and the next batch goes to it
    // while this one is embedded.
    this.merging += 1;
    this.#merge(b).finally(() => { this.merging -= 1; });
  }

  async #merge(b) {
    for (const [i, p] of b.photos.entries()) {
      if (crc32(b.bytes[i]) >>> 0 !== p.crc >>> 0) { this.refuse('a photo arrived damaged'); return; }
    }
    // The rate cap: a phone flooding photos waits (the channel is ordered, so it simply slows
    // down); at most maxRate photos a second are merged from one contributor.
    const rate = this.maxRate;
    this.recent = this.recent.filter((t) => this.now() - t < 1000);
    if (this.recent.length + b.photos.length > rate) {
      await new Promise((r) => setTimeout(r, 1000 - (this.now() - this.recent[0] || 0)));
      this.recent = [];
    }
    for (let i = 0; i < b.photos.length; i += 1) this.recent.push(this.now());
    const contribution = {
      kind: b.kind,
      session: this.session,
      contributor: this.contributor,
      photos: b.photos.map((p, i) => ({ label: p.label, name: `live-${b.n}-${i + 1}.jpg`, bytes: b.bytes[i], taken: p.taken ?? null, predicted: p.predicted ?? null })),
    };
    try {
      const r = await this.onBatch(contribution);
      if (this.channel.readyState === 'open') this.channel.send(json({ t: 'ack', n: b.n, added: r.added, offered: r.offered }));
    } catch (e) {
      if (this.channel.readyState === 'open') this.channel.send(json({ t: 'nack', n: b.n, reason: e?.message || String(e) }));
    }
  }
}
