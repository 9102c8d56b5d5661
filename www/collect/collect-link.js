// The link a phone opens to collect photos for a project (no DOM here): the class names, a
// session code and, for a live connection, the teacher's WebRTC offer (with the school's own
// ICE servers where the teacher set them: the phone must use the same) or the teacher's id on the
// school's PeerJS server (peer-server.js), deflated into the
// fragment of `collect.html`, which browsers never send to a server. The phone reads it as
// untrusted text: it only shows the names, and the teacher's page checks whatever comes back.

import { deflateSync, strFromU8, strToU8 } from '../vendor/fflate.js';
import { fromBase64Url, fromDigits, inflateAtMost, toBase64Url, toDigits } from '../share/share-link.js';
import { isPeerId, isPeerPath } from './peer-server.js';
import { RULES } from '../engine/rules.js';

export const COLLECT_LIMITS = {
  maxClasses: 100,
  // a class name as long as the engine takes (its rules(), generated into engine/rules.js)
  maxLabelChars: RULES.maxLabelChars,
  maxOfferChars: 6000,
  // what a link's fragment may unpack to: 100 long class names and an offer fit in a fraction
  maxJsonBytes: 64 * 1024,
};

const SESSION = /^[A-Z0-9]{6}$/;
// No 0/O or 1/I: the code is read aloud and typed in a classroom.
const SESSION_CHARS = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

export function newSessionCode() {
  const r = crypto.getRandomValues(new Uint8Array(6));
  return [...r].map((b) => SESSION_CHARS[b % SESSION_CHARS.length]).join('');
}

export function isSessionCode(s) { return typeof s === 'string' && SESSION.test(s); }

/** `{session, labels, offer}` checked as the phone takes it; throws Error saying what is wrong. */
export function checkCollect(json) {
  const bad = (why) => { throw new Error(`the collect link is damaged (${why})`); };
  if (!json || typeof json !== 'object' || Array.isArray(json)) bad('not an object');
  if (json.v !== 1) bad(`version ${json.v}`);
  if (!isSessionCode(json.s)) bad('no session code');
  if (!Array.isArray(json.l) || !json.l.length || json.l.length > COLLECT_LIMITS.maxClasses) bad('no class list');
  const labels = [];
  for (const l of json.l) {
    if (typeof l !== 'string' || !l.trim() || [...l].length > COLLECT_LIMITS.maxLabelChars) bad('a class name');
    if (!labels.includes(l)) labels.push(l);
  }
  const ice = checkIceServers(json.i ?? []);
  if (json.r != null && typeof json.r !== 'boolean') bad('the relay setting');
  let peer = null;
  if (json.p != null) {
    if (typeof json.p !== 'object' || !isPeerPath(json.p.path) || !isPeerId(json.p.id)) bad('the PeerJS server');
    peer = { path: json.p.path, id: json.p.id };
  }
  let offer = null;
  if (json.o != null) {
    if (typeof json.o !== 'string' || !json.o || json.o.length > COLLECT_LIMITS.maxOfferChars || !/^[A-Za-z0-9_-]+$/.test(json.o)) bad('the connection offer');
    offer = json.o;
  }
  return { session: json.s, labels, offer, ice, relayOnly: json.r === true, peer };
}

/**
 * A school's own ICE servers (STUN/TURN, RTCIceServer's form), checked: at most 4, each a
 * stun:, turn: or turns: URL with an optional username and credential. Throws on anything else.
 */
export function checkIceServers(list) {
  const bad = (why) => { throw new Error(`the ICE servers are not usable (${why})`); };
  if (!Array.isArray(list) || list.length > 4) bad('at most 4');
  return list.map((s) => {
    if (!s || typeof s !== 'object' || typeof s.urls !== 'string' || !/^(stun|turns?):[^\s]{1,200}$/.test(s.urls)) bad('a stun:, turn: or turns: address');
    for (const k of ['username', 'credential']) if (s[k] != null && (typeof s[k] !== 'string' || s[k].length > 128)) bad(k);
    if (s.urls.startsWith('turn') && (s.username == null || s.credential == null)) bad('a TURN server needs a user name and a password');
    return { urls: s.urls, ...(s.username != null ? { username: s.username, credential: s.credential } : {}) };
  });
}

/** ICE servers from the page's text field: one a line, `turn:host:3478 user password` or `stun:host:3478`. */
export function parseIceServers(text) {
  const list = String(text ?? '').split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const [urls, username, credential] = l.split(/\s+/);
    return { urls, ...(username != null ? { username, credential: credential ?? '' } : {}) };
  });
  return checkIceServers(list);
}

/** The collect page's address for `base` (the page's folder, ending in `/`). */
export function makeCollectLink(base, { session, labels, offer = null, ice = [], relayOnly = false, peer = null }) {
  const json = { v: 1, s: session, l: labels, ...(offer ? { o: offer } : {}), ...(ice.length ? { i: ice } : {}), ...(relayOnly ? { r: true } : {}), ...(peer ? { p: peer } : {}) };
  checkCollect(json);
  return `${base}collect.html#c=${toBase64Url(deflateSync(strToU8(JSON.stringify(json)), { level: 9 }))}`;
}

/**
 * What the QR code of a collect `link` holds, as share-link.js's `qrCode` takes it: the address
 * with `#d=` in byte mode and the same deflated bytes as digits in numeric mode, a quarter fewer
 * modules than the link's base64 (a coarser code a phone reads from the back of the room).
 */
export function collectQr(link) {
  const i = link.indexOf('#c=');
  return { base: `${link.slice(0, i)}#d=`, digits: toDigits(fromBase64Url(link.slice(i + 3))) };
}

/** The collect request in a fragment (`location.hash`, `#c=` or the QR code's `#d=`): null when there is none; throws when damaged. */
export function readCollectLink(hash) {
  const m = /^#?([cd])=(.*)$/s.exec(hash || '');
  if (!m) return null;
  if (!m[2]) throw new Error('the collect link is cut short');
  let json;
  try {
    const packed = m[1] === 'c' ? fromBase64Url(m[2]) : fromDigits(m[2]);
    json = JSON.parse(strFromU8(inflateAtMost(packed, COLLECT_LIMITS.maxJsonBytes, {
      tooLarge: 'the collect link holds more than any project sends',
      damaged: 'the collect link is damaged',
    })));
  } catch (e) {
    throw new Error(/collect link/.test(e.message) ? e.message : 'the collect link is damaged');
  }
  return checkCollect(json);
}
