// Zip handling with fflate (synchronous and streaming classes only: its async API starts blob:
// workers, which the CSP forbids).
// The page reads zips off the main thread: `datasetFromZipFile` and `importProjectZip` hand the
// File to zip-worker.js (a same-origin module worker, which the CSP allows), which reads the
// central directory and then each entry it keeps from File slices, and transfers the results
// back: the tab stays responsive and a 2 GB archive is never in memory whole. fflate's unzipSync
// needs the whole archive in memory and its streaming Unzip follows local headers, which lack the
// sizes and the names' UTF-8 flag of the central directory, so the directory is read here and
// each entry's compressed bytes go through the browser's `DecompressionStream` (faster), or
// fflate's streaming `Inflate` where that is missing or refuses the entry (`inflateNative`).
//
// Every zip the page reads (project zips and class-folder zips alike) goes through `readZipFile`,
// and a crafted one costs at most what an honest one of its size would (see "The rules" below):
// the declared sizes are checked against what the archive can hold before anything is inflated,
// an entry is inflated in small pieces and stopped as soon as it yields more than it declared, and
// every entry's CRC-32 is checked.

import { Inflate, zipSync, strToU8, strFromU8 } from '../vendor/fflate.js';

export const ZIP_LIMITS = {
  maxEntries: 5000,
  maxEntryBytes: 50 * 1024 * 1024,
  maxTotalBytes: 1024 * 1024 * 1024,
  // What the entries read may add up to, uncompressed, against the archive's own size: 2× its
  // size, or its size + 12 MB when that is more (and never more than maxTotalBytes). Photos and a
  // project's embeddings and model hardly compress (a project zip is ~1.1×), so only a bomb or a
  // folder of BMPs comes near it. It keeps a zip's cost within 4× its size + 64 MB: fflate's
  // streaming inflater leaves garbage (~3 bytes per byte of a bomb, 200 KB per 8 KB push of a
  // photo) that V8 lets grow to 60–85 MB before it collects (docs/RELIABILITY.md, "Zip archives").
  maxExpansion: 2,
  expansionSlackBytes: 12 * 1024 * 1024,
};

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|bmp|jfif)$/i;

export function isImageName(name) { return IMAGE_EXT.test(name); }

export class ZipError extends Error {
  constructor(code, params = {}) { super(code); this.code = code; this.params = params; }
}

function unsafePath(parts) {
  return parts.some((p) => p === '..' || p === '.') || /^([a-z]:|\/|\\)/i.test(parts[0] || '');
}

// ---- reading a zip from a File, entry by entry --------------------------------------------------
//
// Only the central directory and the entries kept are read from the File (Blob.slice): a 2 GB
// archive never sits in memory whole, only what it yields (see ZIP_LIMITS), and one entry that
// does not inflate is skipped, not the archive.
//
// The rules (docs/RELIABILITY.md, "Zip archives"; tests/js/zip.test.mjs):
// - The archive: at most maxEntries entries; the central directory lies before its end record;
//   sorted by offset, each entry's local header + name + data (+ a 12-byte data descriptor when
//   flagged) ends before the next entry and before the central directory. Entries that overlap
//   (one stream listed 20 times, or honest sizes pointing into each other) are a crafted archive:
//   refused whole (zipBroken).
// - What the entries kept declare, uncompressed, adds up to at most maxTotalBytes and 2× the
//   archive (or the archive + 12 MB, the larger) (zipTooLarge), checked before anything is inflated.
// - An entry is refused (skipped, "corrupt zip entry (…)") when its declared sizes are impossible
//   for its method (stored: compressed ≠ uncompressed; deflate: more than 1032× its compressed
//   size + 64, or compressed more than 5 bytes per KB + 64 over it, which stored blocks never
//   need), its local header disagrees with the central directory (signature, name length,
//   method, encryption, and CRC and sizes unless a data descriptor follows), it inflates to more
//   or fewer bytes than declared, its stream ends 128 KB or more before its data does, or its
//   CRC-32 differs.
// - Work is bounded too: each entry's compressed bytes are read in 1 MB slices and pushed to
//   fflate's `Inflate` 8 KB at a time (at most ~8 MB of output a push, deflate's ratio being
//   ≤ 1032:1); an entry is stopped at the first push past its declared size, and all the bytes
//   inflated, refused entries' included (a push that throws is charged 1032× its size), may add
//   up to the same budget as above: an archive whose lying entries go past it is refused whole
//   (zipBroken). So the time and memory a zip takes follow from its size, not its headers.

/** Slices of the archive read at once, and the pieces pushed to the inflater (see above). */
const READ_BYTES = 1024 * 1024;
/** An entry up to this size, with its local header, is read in one slice. */
const SMALL_ENTRY_BYTES = 256 * 1024;
const PUSH_BYTES = 8 * 1024;
/** Deflate's best ratio: a 258-byte match in 2 bits. */
const DEFLATE_MAX_RATIO = 1032;
/** Input the inflater may take without yielding a byte (a stored block is at most 65,535 bytes): more is data past the stream's end. */
const MAX_STALL_BYTES = 128 * 1024;

async function bytesAt(blob, start, end) {
  return new Uint8Array(await blob.slice(start, end).arrayBuffer());
}

/** The most read at once for small entries (`windowed`). */
const WINDOW_BYTES = 2 * 1024 * 1024;

/**
 * `bytesAt` for the small reads (local headers, small entries), a window of the file at a time:
 * each read is a trip to the browser's process (about 1 ms, as much as inflating a photo), so one
 * read serves the photos that follow it. The views it returns share the window: copy before
 * keeping. A window is at most WINDOW_BYTES and 8× what was asked, so a directory listing its
 * entries out of order makes the archive be read at most 8 times over.
 */
function windowed(blob) {
  let at = 0;
  let win = new Uint8Array(0);
  return async (start, end) => {
    if (start >= at && end <= at + win.length) return win.subarray(start - at, end - at);
    const want = Math.max(end - start, Math.min(WINDOW_BYTES, 8 * (end - start)));
    win = await bytesAt(blob, start, Math.min(blob.size, start + want));
    at = start;
    return win.subarray(0, Math.min(win.length, end - start));
  };
}

const u16 = (b, o) => b[o] | (b[o + 1] << 8);
const u32 = (b, o) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
const u64 = (b, o) => u32(b, o) + u32(b, o + 4) * 0x100000000;

// CRC-32 (IEEE 802.3, as zip uses), table-driven, four bytes a step: fflate keeps its own private.
const CRC_TABLES = (() => {
  const t = new Int32Array(256 * 4);
  for (let i = 0; i < 256; i += 1) {
    let c = i;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i += 1) {
    for (let k = 1; k < 4; k += 1) t[k * 256 + i] = t[(k - 1) * 256 + i] >>> 8 ^ t[t[(k - 1) * 256 + i] & 255];
  }
  return t;
})();

/** CRC-32 of `bytes`, continuing from `crc` (0 to start). Exported for the tests. */
export function crc32(bytes, crc = 0) {
  const t = CRC_TABLES;
  let c = ~crc;
  let i = 0;
  const n4 = bytes.length & ~3;
  for (; i < n4; i += 4) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c = t[768 + (c & 255)] ^ t[512 + ((c >>> 8) & 255)] ^ t[256 + ((c >>> 16) & 255)] ^ t[c >>> 24];
  }
  for (; i < bytes.length; i += 1) c = t[(c ^ bytes[i]) & 255] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Bytes as code points 0–255, in slices (a spread of 65,535 arguments can overflow the stack). */
function latin1(raw) {
  let s = '';
  for (let i = 0; i < raw.length; i += 4096) s += String.fromCharCode.apply(null, raw.subarray(i, i + 4096));
  return s;
}

/** A name stored without the UTF-8 flag: UTF-8 anyway, else GB18030 (Windows in China), else Shift_JIS, else Latin-1. */
function decodeName(raw, utf8) {
  if (utf8) return new TextDecoder().decode(raw);
  if (raw.every((c) => c < 0x80)) return latin1(raw);
  for (const enc of ['utf-8', 'gb18030', 'shift_jis']) {
    try { return new TextDecoder(enc, { fatal: true }).decode(raw); } catch { /* next */ }
  }
  return latin1(raw);
}

/**
 * The central directory: {entries: [{name, nameLen, flag, method, crc, csize, usize, offset}],
 * cdOffset}. Throws ZipError.
 */
async function centralDirectory(blob) {
  const broken = (detail) => new ZipError('zipBroken', { detail });
  const size = blob.size;
  if (size < 22) throw broken('too short');
  const tailStart = Math.max(0, size - 65557);
  const tail = await bytesAt(blob, tailStart, size);
  let e = tail.length - 22;
  while (e >= 0 && u32(tail, e) !== 0x06054b50) e -= 1;
  if (e < 0) throw broken('no end of central directory');
  let cdEnd = tailStart + e; // where the central directory must end by: the end record, or zip64's
  let count = u16(tail, e + 10);
  let cdSize = u32(tail, e + 12);
  let cdOffset = u32(tail, e + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const l = e - 20;
    if (l < 0 || u32(tail, l) !== 0x07064b50) throw broken('zip64 locator missing');
    const at = u64(tail, l + 8);
    if (!(at + 56 <= tailStart + l)) throw broken('zip64 record out of bounds');
    const rec = await bytesAt(blob, at, at + 56);
    if (rec.length < 56 || u32(rec, 0) !== 0x06064b50) throw broken('zip64 record missing');
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
    cdEnd = at;
  }
  if (count > ZIP_LIMITS.maxEntries) throw new ZipError('zipTooManyEntries', { n: ZIP_LIMITS.maxEntries });
  if (!(cdOffset + cdSize <= cdEnd) || cdSize > 64 * 1024 * 1024) throw broken('central directory out of bounds');
  const cd = await bytesAt(blob, cdOffset, cdOffset + cdSize);
  const entries = [];
  let o = 0;
  for (let i = 0; i < count; i += 1) {
    if (o + 46 > cd.length || u32(cd, o) !== 0x02014b50) throw broken('truncated central directory');
    const flag = u16(cd, o + 8);
    const method = u16(cd, o + 10);
    const crc = u32(cd, o + 16);
    let csize = u32(cd, o + 20);
    let usize = u32(cd, o + 24);
    const fl = u16(cd, o + 28);
    const xl = u16(cd, o + 30);
    const cl = u16(cd, o + 32);
    let offset = u32(cd, o + 42);
    if (o + 46 + fl + xl > cd.length) throw broken('truncated central directory');
    const name = decodeName(cd.subarray(o + 46, o + 46 + fl), flag & 0x800);
    // zip64: the sizes and offset that overflowed 32 bits follow in the 0x0001 extra field, in order
    const xEnd = o + 46 + fl + xl;
    for (let x = o + 46 + fl; x + 4 <= xEnd;) {
      const id = u16(cd, x);
      const len = u16(cd, x + 2);
      if (id === 1) {
        let p = x + 4;
        const end = Math.min(xEnd, p + len);
        if (usize === 0xffffffff && p + 8 <= end) { usize = u64(cd, p); p += 8; }
        if (csize === 0xffffffff && p + 8 <= end) { csize = u64(cd, p); p += 8; }
        if (offset === 0xffffffff && p + 8 <= end) { offset = u64(cd, p); p += 8; }
      }
      x += 4 + len;
    }
    entries.push({ name, nameLen: fl, flag, method, crc, csize, usize, offset });
    o += 46 + fl + xl + cl;
  }
  // Sorted by offset, each entry's least span (local header, name, data, data descriptor) must end
  // before the next one starts, and the last before the central directory: one stream cannot be
  // read twice, nor the directory as data. The local extra field's length is checked when the
  // entry is read (`entryBytes`).
  const byOffset = [...entries].sort((a, b) => a.offset - b.offset);
  for (let i = 0; i < byOffset.length; i += 1) {
    const f = byOffset[i];
    f.limit = i + 1 < byOffset.length ? byOffset[i + 1].offset : cdOffset;
    const least = f.offset + 30 + f.nameLen + f.csize + (f.flag & 8 ? 12 : 0);
    if (!(least <= f.limit)) {
      throw broken(f.limit === cdOffset && i + 1 === byOffset.length
        ? `${f.name} runs into the central directory` : `entries overlap (${f.name})`);
    }
  }
  return { entries, cdOffset };
}

/** Why an entry's declared sizes cannot be true for its method, or null. */
function impossibleSizes(f) {
  if (f.method === 0) {
    return f.csize === f.usize ? null : `stored, but ${f.csize} bytes compressed for ${f.usize}`;
  }
  if (f.usize > f.csize * DEFLATE_MAX_RATIO + 64) return `${f.usize} bytes cannot inflate from ${f.csize}`;
  // stored blocks cost 5 bytes each (zlib: one per 16 KB); a deflater picks them over anything larger
  if (f.csize > f.usize + 5 * Math.ceil(f.usize / 1024) + 64) return `${f.csize} bytes compressed for ${f.usize}`;
  return null;
}

const overBudget = () => new ZipError('zipBroken', { detail: 'its entries inflate to more than they declare' });

/**
 * Entry `f`, inflated (or copied): exactly f.usize bytes with CRC-32 f.crc, or throws Error (the
 * entry is refused) or ZipError (the archive is). `work` counts every byte inflated ({done,
 * budget}). An entry of at most SMALL_ENTRY_BYTES, up to the next one, is read in one slice (of a window shared with the entries after it, `windowed`).
 */
async function entryBytes(blob, near, f, work) {
  const small = f.limit - f.offset <= SMALL_ENTRY_BYTES;
  const first = await near(f.offset, small ? f.limit : f.offset + 30);
  // the local header, checked against the central directory
  if (first.length < 30 || u32(first, 0) !== 0x04034b50) throw new Error('no local header');
  const lflag = u16(first, 6);
  if (u16(first, 26) !== f.nameLen) throw new Error('the local header names another file');
  if (u16(first, 8) !== f.method || (lflag & 1) !== (f.flag & 1)) throw new Error('the local header disagrees with the directory');
  if (!(f.flag & 8) && !(lflag & 8)) {
    const lc = u32(first, 18);
    const lu = u32(first, 22);
    if (u32(first, 14) !== f.crc || (lc !== 0xffffffff && lc !== f.csize) || (lu !== 0xffffffff && lu !== f.usize)) {
      throw new Error('the local header disagrees with the directory');
    }
  }
  const start = f.offset + 30 + f.nameLen + u16(first, 28);
  const end = start + f.csize;
  if (end + (f.flag & 8 ? 12 : 0) > f.limit) throw new ZipError('zipBroken', { detail: `entries overlap (${f.name})` });
  const slice = async (a, b) => {
    const got = small ? first.subarray(a - f.offset, b - f.offset) : await bytesAt(blob, a, b);
    if (got.length !== b - a) throw new Error('the archive ends inside it');
    return got;
  };
  let out;
  if (f.method === 0) {
    out = small ? (await slice(start, end)).slice() : await slice(start, end);
    work.done += out.length;
  } else {
    // The browser's own inflater first (about twice fflate's speed, which a 5,000-photo drop
    // feels on two cores); an entry it does not inflate to exactly its declared size goes again
    // through fflate, whose rules, messages and budget are the reader's.
    out = nativeInflate ? await inflateNative(slice, start, end, f) : null;
    if (out) {
      work.done += out.length;
      if (work.done > work.budget) throw overBudget();
    } else {
      out = await inflateFflate(slice, start, end, f, work);
    }
  }
  const crc = crc32(out);
  if (crc !== f.crc) throw new Error(`CRC-32 ${crc.toString(16).padStart(8, '0')}, the header says ${f.crc.toString(16).padStart(8, '0')}`);
  return out;
}

/** Each piece of an entry's compressed bytes from `start` to `end`, as the inflaters take them. */
async function* piecesOf(slice, start, end, size = PUSH_BYTES) {
  for (let at = start; at < end; at += READ_BYTES) {
    const data = await slice(at, Math.min(end, at + READ_BYTES));
    for (let p = 0; p < data.length; p += size) yield data.subarray(p, p + size);
  }
}

/**
 * Inflates with fflate's `Inflate`, pushed PUSH_BYTES at a time: exactly f.usize bytes, or throws
 * Error (the entry is refused) or ZipError (the work budget is spent).
 */
async function inflateFflate(slice, start, end, f, work) {
  const out = new Uint8Array(f.usize);
  let produced = 0;
  let over = false;
  let stalled = 0;
  const inflater = new Inflate((chunk) => {
    work.done += chunk.length;
    if (chunk.length) stalled = 0;
    if (over || produced + chunk.length > f.usize) { over = true; return; }
    out.set(chunk, produced);
    produced += chunk.length;
  });
  // A push that throws (a damaged stream) has inflated what it did uncounted: it is charged
  // what it could have made at most. All the data goes in as not final, so that a stream cut
  // short is not an error thrown after inflating a whole piece; the closing empty push finishes
  // at most a block header or a stored block (≤ 65,535 bytes, copied), charged 1 MB if it throws.
  const push = (piece, final) => {
    try {
      inflater.push(piece, final);
    } catch (e) {
      work.done += final ? 1024 * 1024 : piece.length * DEFLATE_MAX_RATIO;
      if (work.done > work.budget) throw overBudget();
      throw e;
    }
    if (work.done > work.budget) throw overBudget();
    if (over) throw new Error(`it inflates to more than the ${f.usize} bytes its header says`);
  };
  for await (const piece of piecesOf(slice, start, end)) {
    push(piece, false);
    stalled += piece.length;
    if (stalled > MAX_STALL_BYTES) throw new Error('its compressed data goes on past the end of its stream');
  }
  push(new Uint8Array(0), true);
  if (produced !== f.usize) throw new Error(`${produced} bytes, the header says ${f.usize}`);
  return out;
}

/**
 * Whether the browser's `DecompressionStream('deflate-raw')` is used before fflate (Chromium 103+,
 * Firefox 113+, Safari 16.4+, Node.js 21.2+/20.12+). `useNativeInflate(false)` lets the tests run
 * the fflate path alone; returns what it was.
 */
let nativeInflate = (() => {
  try { return typeof DecompressionStream === 'function' && Boolean(new DecompressionStream('deflate-raw')); } catch { return false; }
})();
export function useNativeInflate(on) {
  const was = nativeInflate;
  nativeInflate = Boolean(on) && typeof DecompressionStream === 'function';
  return was;
}

/**
 * Inflates with `DecompressionStream`: exactly f.usize bytes, or null for anything else (the
 * caller reads the entry again with fflate, whose rules, messages and work budget decide about
 * it: the browser's inflater refuses some streams fflate reads, such as one with a short tail).
 * So that a bomb costs no more here than in fflate, the input goes in PUSH_BYTES / 2 at a time,
 * each piece only once the one before is inflated, and the first byte past f.usize stops it: a
 * piece inflated and one waiting in the stream's queue are at most 1,032 × PUSH_BYTES past it,
 * fflate's bound for its one push.
 */
async function inflateNative(slice, start, end, f) {
  const ds = new DecompressionStream('deflate-raw');
  const writer = ds.writable.getWriter();
  const reader = ds.readable.getReader();
  const out = new Uint8Array(f.usize);
  let produced = 0;
  let over = false;
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (produced + value.length > f.usize) {
        over = true;
        await reader.cancel();
        return;
      }
      out.set(value, produced);
      produced += value.length;
    }
  })();
  try {
    for await (const piece of piecesOf(slice, start, end, PUSH_BYTES / 2)) {
      if (over) break;
      await writer.write(piece);
    }
    await writer.close();
  } catch {
    // refused, cancelled past f.usize, or the archive could not be read: the stream is ended
    // so that `reading` ends too
    writer.abort().catch(() => {});
  }
  try {
    await reading;
  } catch {
    return null;
  }
  return !over && produced === f.usize ? out : null;
}

/** What the entries of an archive of `size` bytes may add up to (ZIP_LIMITS). */
export function expansionBudget(size) {
  const { maxTotalBytes, maxExpansion, expansionSlackBytes } = ZIP_LIMITS;
  return Math.min(maxTotalBytes, Math.max(maxExpansion * size, size + expansionSlackBytes));
}

/**
 * A zip opened for reading entry by entry, from a File or Blob: the central directory is read and
 * every rule on the archive as a whole checked (throws ZipError: not a zip, too many entries, too
 * large in all, entries that overlap) before anything is inflated. Resolves to `{skipped, kept,
 * entries()}`: `skipped` [{name, reason, params}] the entries refused so far (directories, macOS
 * resource forks and hidden files are ignored silently; path traversal, oversize, encrypted and
 * impossible entries are listed), `kept` the path ([folder..., file]) of every entry to be read, in
 * order, and `entries()` an async generator of `{entry: {path, name, bytes}}` or, for an entry that
 * does not inflate, `{skipped: {name, reason}}`. It throws ZipError when the archive turns out
 * crafted while being read (an entry overlapping the next, or lying entries inflating past what
 * the archive can hold): entries yielded before that were read in full and checked.
 */
export async function openZipFile(blob, { filter = () => true } = {}) {
  const skipped = [];
  const todo = [];
  let total = 0;
  const { entries: listed } = await centralDirectory(blob);
  for (const f of listed) {
    const name = f.name.replace(/\\/g, '/');
    if (name.endsWith('/')) continue;
    const parts = name.split('/').filter((p) => p !== '');
    if (unsafePath(name.startsWith('/') ? ['/', ...parts] : parts)) { skipped.push({ name, reason: 'zipUnsafe' }); continue; }
    if (parts.some((p) => p === '__MACOSX' || p.startsWith('.'))) continue;
    if (!filter(parts)) { skipped.push({ name, reason: 'skipNotImage' }); continue; }
    if (f.usize > ZIP_LIMITS.maxEntryBytes) { skipped.push({ name, reason: 'skipTooBig', params: { n: ZIP_LIMITS.maxEntryBytes / 1048576 } }); continue; }
    if (f.flag & 1) { skipped.push({ name, reason: 'msg:encrypted entry' }); continue; }
    if (f.method !== 0 && f.method !== 8) { skipped.push({ name, reason: `msg:unsupported compression method ${f.method}` }); continue; }
    const why = impossibleSizes(f);
    if (why) { skipped.push({ name, reason: `msg:corrupt zip entry (${why})` }); continue; }
    total += f.usize;
    todo.push({ f, name, parts });
  }
  if (total > ZIP_LIMITS.maxTotalBytes) throw new ZipError('zipTooLarge', { n: ZIP_LIMITS.maxTotalBytes / 1048576 });
  const budget = expansionBudget(blob.size);
  if (total > budget) throw new ZipError('zipTooLarge', { n: Math.floor(budget / 1048576) });
  const work = { done: 0, budget };
  const near = windowed(blob);
  return {
    skipped,
    kept: todo.map((x) => x.parts),
    async* entries() {
      for (const { f, name, parts } of todo) {
        let bytes;
        try {
          bytes = await entryBytes(blob, near, f, work);
        } catch (e) {
          if (e instanceof ZipError) throw e;
          yield { skipped: { name, reason: `msg:corrupt zip entry (${e?.message ?? e})` } };
          continue;
        }
        yield { entry: { path: parts, name: parts.join('/'), bytes } };
      }
    },
  };
}

/**
 * A zip's entries, from a File or Blob, all at once (`openZipFile`, read to the end): {entries:
 * [{path: string[], name, bytes}], skipped: [{name, reason, params}]}. Throws ZipError when the
 * archive as a whole is refused.
 */
export async function readZipFile(blob, opts) {
  const zip = await openZipFile(blob, opts);
  const entries = [];
  const skipped = [...zip.skipped];
  for await (const x of zip.entries()) {
    if (x.skipped) skipped.push(x.skipped);
    else entries.push(x.entry);
  }
  return { entries, skipped };
}

/** Groups image entries of a dropped dataset zip by their parent folder name (the class). */
const datasetFilter = (parts) => isImageName(parts[parts.length - 1]);

/** A class-folder zip's entry as a photo to add: the class is its parent folder (null at the top). */
const datasetItem = (e) => ({ label: e.path.length < 2 ? null : e.path[e.path.length - 2], name: e.name, bytes: e.bytes });

/**
 * How a class-folder zip is handed to the page as it is read: a batch when it holds this many
 * photos or this many bytes, whichever comes first. The page embeds a batch while the next is
 * inflated (project.js), so at most three batches of a zip's photos are in memory at once.
 */
export const DATASET_BATCH = { photos: 32, bytes: 16 * 1024 * 1024 };

/**
 * A class-folder zip read as it is inflated, from a File or Blob (`openZipFile`; throws ZipError
 * when the archive is refused before anything is read): {count, unlabelled, skipped, batches}.
 * `count`: the photos it holds (to be read; some may not inflate), `unlabelled`: how many of them
 * lie outside any folder, `skipped`: the entries refused from its directory alone, and `batches`:
 * an async generator of `{items: [{label, name, bytes}], skipped}` (`batch` photos or bytes at most,
 * the last entry's excepted; `skipped`: the entries of that stretch that did not inflate). It
 * throws ZipError when the archive turns out crafted while being read (see `openZipFile`).
 */
export async function openDatasetZip(blob, batch = DATASET_BATCH) {
  const zip = await openZipFile(blob, { filter: datasetFilter });
  async function* batches() {
    let items = [];
    let skipped = [];
    let bytes = 0;
    for await (const x of zip.entries()) {
      if (x.skipped) skipped.push(x.skipped);
      else {
        items.push(datasetItem(x.entry));
        bytes += x.entry.bytes.byteLength;
      }
      if (items.length >= batch.photos || bytes >= batch.bytes) {
        yield { items, skipped };
        items = [];
        skipped = [];
        bytes = 0;
      }
    }
    if (items.length || skipped.length) yield { items, skipped };
  }
  return {
    count: zip.kept.length,
    unlabelled: zip.kept.filter((p) => p.length < 2).length,
    skipped: zip.skipped,
    batches: batches(),
  };
}

/** A class-folder zip read whole: {items: [{label, name, bytes}], skipped}. */
async function datasetFromBlob(blob) {
  const zip = await openDatasetZip(blob);
  const items = [];
  const skipped = [...zip.skipped];
  for await (const b of zip.batches) {
    items.push(...b.items);
    skipped.push(...b.skipped);
  }
  return { items, skipped };
}

// ---- whole project ----------------------------------------------------------------------------

export const PROJECT_FORMAT = 'sortwise-project';
export const PROJECT_VERSION = 1;

/**
 * project: {arch, dim, settings, classes: [{label, images: [{thumb: Uint8Array, emb: Float32Array}]}],
 * model: Uint8Array|null}. Returns the zip bytes.
 */
export function exportProjectZip(project) {
  const files = {};
  const classes = [];
  const keyToIndex = new Map();
  let n = 0;
  for (const c of project.classes) {
    const images = [];
    for (const im of c.images) {
      keyToIndex.set(im.key, n);
      n += 1;
      const id = String(n).padStart(5, '0');
      const thumb = `images/${id}.jpg`;
      const emb = `embeddings/${id}.f32`;
      files[thumb] = [im.thumb, { level: 0 }];
      files[emb] = new Uint8Array(im.emb.buffer.slice(im.emb.byteOffset, im.emb.byteOffset + im.emb.byteLength));
      images.push({ thumbnail: thumb, embedding: emb, length: im.emb.length, ...(im.from ? { from: im.from } : {}) });
    }
    classes.push({ label: c.label, images });
  }
  const json = {
    format: PROJECT_FORMAT,
    version: PROJECT_VERSION,
    arch: project.arch,
    dim: project.dim,
    settings: project.settings,
    classes,
    model: project.model ? 'model.sortwise' : null,
    report: project.model && project.report ? {
      ...project.report,
      misclassified: (project.report.misclassified || []).map(({ label, predicted, confidence, key }) => ({
        label, predicted, confidence, image: keyToIndex.has(key) ? keyToIndex.get(key) : null,
      })),
    } : null,
    created: new Date().toISOString(),
  };
  files['project.json'] = strToU8(JSON.stringify(json, null, 1));
  if (project.model) files['model.sortwise'] = project.model;
  return zipSync(files, { level: 6 });
}

function fail(msg) { throw new Error(msg); }

/**
 * A photo's sender as the page records it (merge.js: a phone's photos), from a saved or imported
 * project: rebuilt from its fields when they have the page's types, else dropped (undefined).
 */
export function checkedFrom(f) {
  if (!f || typeof f !== 'object' || typeof f.id !== 'string' || typeof f.name !== 'string' || typeof f.batch !== 'string') return undefined;
  return { id: f.id.slice(0, 40), name: f.name.slice(0, 80), batch: f.batch.slice(0, 40), at: Number.isFinite(f.at) ? f.at : 0 };
}

const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
const isInt = (x, min = 0, max = Number.MAX_SAFE_INTEGER) => Number.isInteger(x) && x >= min && x <= max;
const isProb = (x) => isNum(x) && x >= 0 && x <= 1;
const optNum = (x) => x == null || isNum(x);

/**
 * A training report from a project zip, checked field by field (types and ranges) and rebuilt
 * from the checked fields only; throws Error naming the first bad field. `images`: the number
 * of images in the project (misclassified entries point at them by position).
 */
export function validateReport(r, images) {
  const bad = (field, why) => fail(`project.json: report.${field} ${why}`);
  if (!r || typeof r !== 'object' || Array.isArray(r)) bad('', 'is not an object');
  if (!Array.isArray(r.labels) || !r.labels.length || r.labels.length > 1000 || !r.labels.every((l) => typeof l === 'string' && l.length <= 1000)) bad('labels', 'is not a list of class names');
  const n = r.labels.length;
  if (!Array.isArray(r.confusion) || r.confusion.length !== n
    || !r.confusion.every((row) => Array.isArray(row) && row.length === n && row.every((v) => isInt(v, 0, 1e9)))) bad('confusion', `is not a ${n}x${n} matrix of counts`);
  for (const f of ['valAccuracy']) if (!(r[f] == null || isProb(r[f]))) bad(f, 'is not a number between 0 and 1');
  for (const f of ['valLoss', 'seconds']) if (!(r[f] == null || (isNum(r[f]) && r[f] >= 0))) bad(f, 'is not a number ≥ 0');
  for (const f of ['epochsRun', 'bestEpoch', 'trainSize', 'valSize', 'refitEpochs', 'refitSize']) if (!(r[f] == null || isInt(r[f], 0, 1e9))) bad(f, 'is not a whole number ≥ 0');
  for (const f of ['balance', 'refitBalance']) if (r[f] != null && !['auto', 'none', 'weight', 'sample'].includes(r[f])) bad(f, 'is not auto, none, weight or sample');
  if (r.refit != null && typeof r.refit !== 'boolean') bad('refit', 'is not true or false');
  const perClass = r.perClass ?? [];
  if (!Array.isArray(perClass) || perClass.length > n || !perClass.every((p) => p && typeof p === 'object'
    && typeof p.label === 'string' && isProb(p.precision) && isProb(p.recall) && isProb(p.f1) && isInt(p.support, 0, 1e9))) bad('perClass', 'has an entry that is not {label, precision, recall, f1, support}');
  const history = r.history ?? [];
  if (!Array.isArray(history) || history.length > 100000 || !history.every((h) => h && typeof h === 'object'
    && isInt(h.epoch, 0, 1e9) && optNum(h.loss) && optNum(h.valLoss) && (h.valAccuracy == null || isProb(h.valAccuracy)))) bad('history', 'has an entry that is not {epoch, loss, valLoss, valAccuracy}');
  const mis = r.misclassified ?? [];
  if (!Array.isArray(mis) || mis.length > images || !mis.every((m) => m && typeof m === 'object'
    && typeof m.label === 'string' && typeof m.predicted === 'string' && isProb(m.confidence)
    && (m.image == null || isInt(m.image, 0, images - 1)))) bad('misclassified', 'has an entry that is not {label, predicted, confidence, image}');
  let finetune = null;
  if (r.finetune != null) {
    const f = r.finetune;
    if (typeof f !== 'object' || Array.isArray(f) || !isNum(f.l2sp) || !isInt(f.epochsRun) || !isInt(f.bestEpoch) || !isNum(f.distance)
      || !optNum(f.lastDistance) || !(f.headOnlyValAccuracy == null || isProb(f.headOnlyValAccuracy)) || !optNum(f.headOnlyValLoss)) bad('finetune', 'is not a fine-tuning summary');
    if (!(f.refitEpochs == null || isInt(f.refitEpochs)) || !optNum(f.refitDistance)) bad('finetune', 'has a refit that is not {refitEpochs, refitDistance}');
    finetune = { l2sp: f.l2sp, epochsRun: f.epochsRun, bestEpoch: f.bestEpoch, distance: f.distance, lastDistance: f.lastDistance ?? null, headOnlyValAccuracy: f.headOnlyValAccuracy ?? null, headOnlyValLoss: f.headOnlyValLoss ?? null, refitEpochs: f.refitEpochs ?? null, refitDistance: f.refitDistance ?? null };
  }
  const pick = (o, keys) => Object.fromEntries(keys.map((k) => [k, o[k] ?? null]));
  return {
    ...pick(r, ['valAccuracy', 'valLoss', 'epochsRun', 'bestEpoch', 'trainSize', 'valSize', 'balance', 'seconds', 'refit', 'refitEpochs', 'refitSize', 'refitBalance']),
    labels: [...r.labels],
    confusion: r.confusion.map((row) => [...row]),
    perClass: perClass.map((p) => pick(p, ['label', 'precision', 'recall', 'f1', 'support'])),
    history: history.map((h) => pick(h, ['epoch', 'loss', 'valLoss', 'valAccuracy'])),
    misclassified: mis.map((m) => pick(m, ['label', 'predicted', 'confidence', 'image'])),
    finetune,
  };
}

/**
 * Validates a project zip's entries; throws Error(message) naming the problem. Every file is
 * referenced at most once, so what the project holds is bounded by the archive's own limits
 * (a name listed 5,000 times would otherwise be 5,000 copies of it).
 */
async function projectFromEntries(read, { maxClasses, maxImages, maxLabel }) {
  let entries;
  try {
    ({ entries } = await read());
  } catch (e) {
    if (e instanceof ZipError) {
      const { detail, n } = e.params || {};
      if (e.code === 'zipBroken') fail(detail ? `not a readable zip file (${detail})` : 'not a zip file');
      if (e.code === 'zipTooLarge') fail(`archive refused: more than ${n} MB uncompressed`);
      if (e.code === 'zipTooManyEntries') fail(`archive refused: more than ${n} entries`);
      fail(`archive refused (${e.code})`);
    }
    throw e;
  }
  const byName = new Map(entries.map((e) => [e.name, e.bytes]));
  const used = new Set();
  let usedBytes = 0;
  const take = (name, what) => {
    const key = typeof name === 'string' ? name : null;
    const bytes = key != null ? byName.get(key) : undefined;
    if (!bytes) fail(`${what}: missing file ${String(name)}`);
    if (used.has(key)) fail(`${what}: the file ${key} is listed more than once`);
    used.add(key);
    usedBytes += bytes.byteLength;
    if (usedBytes > ZIP_LIMITS.maxTotalBytes) fail(`the files listed add up to more than ${ZIP_LIMITS.maxTotalBytes / 1048576} MB`);
    return bytes;
  };
  const pj = byName.get('project.json');
  if (!pj) fail('project.json is missing: this is not a sortwise project');
  let json;
  try { json = JSON.parse(strFromU8(pj)); } catch (e) { fail(`project.json is not valid JSON (${e.message})`); }
  if (!json || json.format !== PROJECT_FORMAT) fail('project.json is not a sortwise project');
  if (!(json.version <= PROJECT_VERSION)) fail(`project format version ${json.version} is newer than this page supports (${PROJECT_VERSION})`);
  if (typeof json.arch !== 'string' || !json.arch) fail('project.json has no backbone (arch)');
  if (!Array.isArray(json.classes)) fail('project.json has no class list');
  if (json.classes.length > maxClasses) fail(`too many classes (${json.classes.length} > ${maxClasses})`);
  const seen = new Set();
  const classes = [];
  let count = 0;
  let embLen = null;
  for (const c of json.classes) {
    const label = typeof c?.label === 'string' ? c.label.trim() : '';
    if (!label) fail('a class has an empty name');
    if ([...label].length > maxLabel) fail(`class name too long: ${label.slice(0, 40)}…`);
    if (seen.has(label)) fail(`duplicate class name: ${label}`);
    seen.add(label);
    if (!Array.isArray(c.images)) fail(`class ${label}: no image list`);
    const images = [];
    for (const im of c.images) {
      count += 1;
      if (count > maxImages) fail(`too many images (more than ${maxImages})`);
      const thumb = take(im?.thumbnail, `class ${label}`);
      const embBytes = take(im?.embedding, `class ${label}`);
      if (embBytes.byteLength === 0 || embBytes.byteLength % 4 !== 0) fail(`${im.embedding}: not a float32 array`);
      const emb = new Float32Array(embBytes.buffer.slice(embBytes.byteOffset, embBytes.byteOffset + embBytes.byteLength));
      if (embLen === null) embLen = emb.length;
      if (emb.length !== embLen) fail(`${im.embedding}: ${emb.length} values, expected ${embLen}`);
      if (!emb.every(Number.isFinite)) fail(`${im.embedding}: contains NaN or infinity`);
      images.push({ thumb, emb, from: checkedFrom(im.from) });
    }
    classes.push({ label, images });
  }
  let model = null;
  if (json.model) model = take(json.model, 'model');
  const settings = json.settings && typeof json.settings === 'object' && !Array.isArray(json.settings) ? json.settings : {};
  const report = model && json.report != null ? validateReport(json.report, count) : null;
  return { arch: json.arch, dim: json.dim, settings, classes, model, report, embLen };
}

// ---- off the main thread ----------------------------------------------------------------------

/** The ArrayBuffers in a result, to transfer rather than copy. */
export function buffersOf(value, out = new Set()) {
  if (ArrayBuffer.isView(value)) out.add(value.buffer);
  else if (Array.isArray(value)) for (const v of value) buffersOf(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) buffersOf(v, out);
  return out;
}

/** A module worker running zip-worker.js, or null where workers cannot start (then the job runs in place). */
function zipWorker() {
  try {
    return new Worker(new URL('./zip-worker.js', import.meta.url), { type: 'module' });
  } catch {
    return null;
  }
}

/** A worker's error message as the error it stands for. */
const workerError = (e = {}) => (e.code ? new ZipError(e.code, e.params) : new Error(e.message || 'the zip could not be read'));

/** Runs `job` ('dataset' | 'project') on `file` in zip-worker.js; on the main thread where workers cannot start. */
async function inWorker(job, file, limits) {
  const worker = zipWorker();
  if (!worker) return runJob(job, file, limits);
  try {
    return await new Promise((resolve, reject) => {
      worker.onmessage = (ev) => {
        const m = ev.data;
        if (m.ok) resolve(m.result);
        else reject(workerError(m.error));
      };
      worker.onerror = (ev) => { ev.preventDefault?.(); reject(new Error(ev.message || 'the zip reader stopped (out of memory?)')); };
      worker.postMessage({ job, file, limits });
    });
  } finally {
    worker.terminate();
  }
}

/** What zip-worker.js runs on a File, also the fallback in place. */
export async function runJob(job, file, limits) {
  if (job === 'dataset') return datasetFromBlob(file);
  if (job === 'project') return projectFromEntries(() => readZipFile(file), limits);
  throw new Error(`unknown zip job ${job}`);
}

/**
 * A dataset zip (one folder per class) from a File, read off the main thread as it is inflated:
 * `openDatasetZip`'s answer ({count, unlabelled, skipped, batches}) once the zip's directory is
 * read and checked (rejects with ZipError when the archive is refused). zip-worker.js inflates a
 * batch when asked and transfers its buffers; `batches` asks for the next one as soon as it hands
 * one over, so that the worker inflates it while the page embeds the last. Reading `batches` to
 * its end, or stopping it once started (`return()`, a `break` out of `for await`), ends the
 * worker; `close()` ends it whatever the reading.
 */
export async function streamDatasetZip(file) {
  const worker = zipWorker();
  if (!worker) return { ...await openDatasetZip(file), close() {} };
  const waiting = []; // the answers asked for, in order
  let dead = null;
  worker.onmessage = (ev) => {
    const w = waiting.shift();
    if (!w) return;
    if (ev.data.ok) w.resolve(ev.data);
    else w.reject(workerError(ev.data.error));
  };
  worker.onerror = (ev) => {
    ev.preventDefault?.();
    dead = new Error(ev.message || 'the zip reader stopped (out of memory?)');
    for (const w of waiting.splice(0)) w.reject(dead);
  };
  const ask = (msg) => new Promise((resolve, reject) => {
    if (dead) { reject(dead); return; }
    waiting.push({ resolve, reject });
    worker.postMessage(msg);
  });
  let opened;
  try {
    ({ opened } = await ask({ job: 'dataset-stream', file }));
  } catch (e) {
    worker.terminate();
    throw e;
  }
  async function* batches() {
    let ahead = null;
    try {
      ahead = ask({ next: true });
      for (;;) {
        const { batch } = await ahead;
        ahead = null;
        if (!batch) return;
        ahead = ask({ next: true });
        yield batch;
      }
    } finally {
      ahead?.catch(() => {});
      worker.terminate();
    }
  }
  return { ...opened, batches: batches(), close: () => worker.terminate() };
}

/** A project zip from a File, read and validated off the main thread. */
export function importProjectZip(file, limits) { return inWorker('project', file, limits); }
