// A classifier as a link (no DOM here): the engine's share bytes (src/formats/share.rs: labels, backbone,
// preprocessing, temperature and a quantised head), deflated, in the URL's fragment, which
// browsers never send to a server. Two spellings of the same bytes:
//   #m=<base64url>  the link to copy: the shortest text (4 characters per 3 bytes);
//   #n=<digits>     the QR code's: 17 digits per 7 bytes, which a QR code stores in its numeric
//                   mode at 3⅓ bits a digit, so a code holds ~30% more model than base64 in its
//                   byte mode would (the idea of SMART Health Cards' `shc:/` digits).
// Both open the same classify view; `readLink` takes either.

import { Inflate, deflateSync } from '../vendor/fflate.js';
import { qrcode } from '../vendor/qrcode.js';

/** The largest share the engine makes: 255 classes of 2048 f16 weights, labels, header. */
const MAX_BYTES = 2 * 1024 * 1024;
/** What a shared model starts with (src/formats/share.rs MAGIC). */
const MAGIC = [0x53, 0x57, 0x73, 0x31]; // "SWs1"
const PRECISIONS = { 1: 'int8', 2: 'f16', 3: 'int4' };

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export function toBase64Url(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let c = 0; c < chars; c += 1) out += B64[(n >> (18 - 6 * c)) & 63];
  }
  return out;
}

export function fromBase64Url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new Error('the link is damaged (it has characters a sortwise link never has)');
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const chunk = text.slice(i, i + 4);
    let n = 0;
    for (let c = 0; c < 4; c += 1) n = (n << 6) | (c < chunk.length ? B64.indexOf(chunk[c]) : 0);
    for (let b = 0; b < chunk.length - 1; b += 1) out[o++] = (n >> (16 - 8 * b)) & 255;
  }
  return out;
}

// Digits for k bytes (k = 1..7): ceil(8k · log10 2). Strictly increasing, so a group's digit
// count says how many bytes it holds.
const DIGITS = [0, 3, 5, 8, 10, 13, 15, 17];

export function toDigits(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 7) {
    const group = bytes.subarray(i, i + 7);
    let n = 0n;
    for (const b of group) n = (n << 8n) | BigInt(b);
    out += n.toString().padStart(DIGITS[group.length], '0');
  }
  return out;
}

export function fromDigits(text) {
  const damaged = () => new Error('the link is damaged (its digits do not make whole bytes)');
  if (!/^[0-9]*$/.test(text)) throw damaged();
  const full = Math.floor(text.length / 17);
  const tail = DIGITS.indexOf(text.length - full * 17);
  if (tail < 0) throw damaged();
  const out = new Uint8Array(full * 7 + tail);
  let o = 0;
  for (let i = 0; i < text.length; i += 17) {
    const digits = text.slice(i, i + 17);
    const k = digits.length === 17 ? 7 : tail;
    let n = BigInt(digits);
    if (n >> BigInt(8 * k)) throw damaged();
    for (let b = k - 1; b >= 0; b -= 1) { out[o + b] = Number(n & 255n); n >>= 8n; }
    o += k;
  }
  return out;
}

/**
 * Raw deflate of `bytes`, refusing to grow past `max` bytes: whatever a fragment or a code holds
 * can be a deflate bomb, so it is fed in slices that cannot unpack to more than ~1 MB each before
 * the count is checked. Throws Error(`tooLarge`) past `max`, Error(`damaged`) when it does not
 * unpack. The collect link (collect-link.js) and a phone's answer (peer.js) use it too.
 */
export function inflateAtMost(bytes, max, { tooLarge, damaged }) {
  const parts = [];
  let total = 0;
  const big = new Error(tooLarge);
  const inf = new Inflate((chunk) => {
    total += chunk.length;
    if (total > max) throw big;
    parts.push(chunk);
  });
  try {
    const SLICE = 1024;
    for (let i = 0; i < bytes.length || i === 0; i += SLICE) inf.push(bytes.subarray(i, i + SLICE), i + SLICE >= bytes.length);
  } catch (e) {
    if (e === big) throw e;
    throw new Error(damaged);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

const inflate = (bytes) => inflateAtMost(bytes, MAX_BYTES, {
  tooLarge: 'the link holds more than any sortwise model',
  damaged: 'the link is damaged (its model does not unpack)',
});

/**
 * The link to the page at `base` (its address without a fragment) for the engine's share
 * `bytes`: `{link, qr: {base, digits}, deflated}` where `qr` is what a QR code holds
 * (`base + '#n='` as bytes, then `digits` in numeric mode) and `deflated` its size in bytes.
 */
export function makeLink(bytes, base) {
  const packed = deflateSync(bytes, { level: 9 });
  return {
    link: `${base}#m=${toBase64Url(packed)}`,
    qr: { base: `${base}#n=`, digits: toDigits(packed) },
    deflated: packed.length,
  };
}

/**
 * The share bytes in a page fragment (`location.hash`), null when it holds no model; throws an
 * Error saying what is wrong with a damaged one.
 */
export function readLink(hash) {
  const m = /^#?([mn])=(.*)$/s.exec(hash || '');
  if (!m) return null;
  const text = m[2].trim();
  if (!text) throw new Error('the link is cut short: it holds no model');
  return inflate(m[1] === 'm' ? fromBase64Url(text) : fromDigits(text));
}

/** Whether `bytes` start as a shared model's do (a `.sortwise` file does not). */
export function isShareBytes(bytes) {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * What the page needs before it can start an engine for a shared model: `{arch, precision,
 * classes}` from the bytes' header (src/formats/share.rs `encode`: magic, precision, arch, fit, hash,
 * temperature, class count). The engine reads the whole of it again and checks everything.
 */
export function linkInfo(bytes) {
  const cut = () => new Error('this is not a sortwise classifier link');
  if (bytes.length < 8 || !isShareBytes(bytes)) throw cut();
  const precision = PRECISIONS[bytes[4]];
  const len = bytes[5] | (bytes[6] << 8);
  if (!precision || bytes.length < 7 + len) throw cut();
  const arch = new TextDecoder().decode(bytes.subarray(7, 7 + len));
  let o = 7 + len + 1;
  const shaLen = bytes[o] | (bytes[o + 1] << 8);
  o += 2 + shaLen + 4;
  if (o >= bytes.length) throw cut();
  return { arch, precision, classes: bytes[o] };
}

/** The page's own address, without its fragment or the parameters only a test sets. */
export function pageBase(loc) {
  const params = new URLSearchParams(loc.search);
  for (const k of ['device', 'launch']) params.delete(k);
  const q = params.toString();
  return `${loc.origin}${loc.pathname}${q ? `?${q}` : ''}`;
}

/**
 * The QR code of a link (`makeLink(...).qr`): the page address in byte mode, the model in
 * numeric mode, at error correction M when that fits and L when only L does; null when even
 * the largest code (version 40) cannot hold it. Its `getModuleCount()` and `isDark(r, c)` draw it.
 */
export function qrCode(qr) {
  for (const level of ['M', 'L']) {
    const code = qrcode(0, level);
    code.addData(qr.base, 'Byte');
    code.addData(qr.digits, 'Numeric');
    try {
      code.make();
      return code;
    } catch { /* too large at this level */ }
  }
  return null;
}

/**
 * About how many deflated model bytes one QR code holds after the address `base`: version 40 at
 * level L has 2,956 data bytes, less the two segment headers and the address, at 17 digits per
 * 7 bytes and 10 bits per 3 digits.
 */
export function qrCapacity(base) {
  const bits = 2956 * 8 - (4 + 16 + 8 * base.length) - (4 + 14);
  return Math.floor((Math.floor((bits * 3) / 10) * 7) / 17);
}
