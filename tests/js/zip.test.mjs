// www/project/project-zip.js's reader, `readZipFile`, which every zip the page reads goes through (project
// zips and class-folder zips): honest archives read back byte for byte; bombs, lying headers,
// overlapping entries and wrong CRCs are refused (the archive, or the entry as a skip) quickly and
// without holding what they claim; and a seeded family of mutated project zips each ends in a
// result or a ZipError / skip, never another exception. Every zip is built here, byte by byte.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, zipSync, Zip, ZipDeflate, ZipPassThrough } from '../../www/vendor/fflate.js';
import { crc32, expansionBudget, exportProjectZip, readZipFile, runJob, useNativeInflate, ZipError, ZIP_LIMITS } from '../../www/project/project-zip.js';

const MB = 1024 * 1024;

// ---- building zips ------------------------------------------------------------------------------

// A deterministic byte source (xorshift), so a failure names the same bytes every run.
function bytes(n, seed) {
  let x = seed * 2654435761 + 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 1) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

/**
 * A raw deflate stream of `len` zero bytes at deflate's best ratio (1032:1): one dynamic-Huffman
 * block whose codes make a 258-byte match at distance 1 two zero bits. 1 GiB is 1 MB of stream.
 */
function zeroBomb(len) {
  const n = Math.floor((len - 1) / 258);
  const k = len - 1 - 258 * n;
  const out = new Uint8Array(64 + Math.ceil((2 * n + 2 * k) / 8) + 8);
  let pos = 0;
  const bits = (v, count) => { for (let i = 0; i < count; i += 1) { if ((v >> i) & 1) out[pos >> 3] |= 1 << (pos & 7); pos += 1; } };
  const code = (s) => { for (const c of s) bits(c === '1' ? 1 : 0, 1); }; // Huffman codes go first bit first
  bits(1, 1); bits(2, 2); // the last block, dynamic Huffman
  bits(29, 5); bits(0, 5); bits(14, 4); // 286 literal/length codes, 1 distance code, 18 code-length codes
  const lengths = { 18: 1, 1: 2, 2: 2 }; // code-length codes: 18 -> 0, 1 -> 10, 2 -> 11
  for (const s of [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1]) bits(lengths[s] || 0, 3);
  code('11'); // literal 0: 2 bits
  code('0'); bits(138 - 11, 7); code('0'); bits(117 - 11, 7); // 1..255 unused
  code('11'); // 256 (end of block): 2 bits
  code('0'); bits(28 - 11, 7); // 257..284 unused
  code('10'); // 285 (length 258): 1 bit
  code('10'); // distance 1: 1 bit
  // literal/length codes: 285 -> 0, 0 -> 10, 256 -> 11; distance 1 -> 0
  code('10');
  for (let i = 0; i < k; i += 1) code('10');
  pos += 2 * n;
  code('11');
  return out.slice(0, (pos + 7) >> 3);
}

const le = (n, w) => { const b = new Uint8Array(w); for (let i = 0; i < w; i += 1) b[i] = Math.floor(n / 2 ** (8 * i)) & 255; return b; };
function cat(parts) {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
const utf8 = (s) => new TextEncoder().encode(s);

const stored = (name, raw) => ({ name, raw, data: raw, method: 0 });
const deflated = (name, raw) => ({ name, raw, data: deflateSync(raw, { level: 6 }), method: 8 });

/**
 * A zip: the `locals` [{name, data, raw?, method, crc?, csize?, usize?, flag?, nameBytes?, local?:
 * {overrides of the local header's fields}}] written in order, then a central directory of
 * `central` (default: one record per local, same fields) whose records may point anywhere
 * ({local: i} takes that local's fields and offset; any field, offset included, can be overridden).
 */
function buildZip(locals, central = null) {
  const field = (l, k) => {
    if (l[k] !== undefined) return l[k];
    const raw = l.raw ?? l.data;
    return { crc: crc32(raw), csize: l.data.length, usize: raw.length, flag: 0x800, method: 0 }[k];
  };
  const parts = [];
  const offsets = [];
  let at = 0;
  for (const l0 of locals) {
    const l = { ...l0, ...l0.local };
    const name = l.nameBytes ?? utf8(l.name);
    const head = cat([le(0x04034b50, 4), le(20, 2), le(field(l, 'flag'), 2), le(field(l, 'method'), 2), le(0, 4),
      le(field(l, 'crc'), 4), le(field(l, 'csize'), 4), le(field(l, 'usize'), 4), le(l.nameLen ?? name.length, 2), le(0, 2), name]);
    offsets.push(at);
    parts.push(head, l.data);
    at += head.length + l.data.length;
  }
  const records = (central ?? locals.map((_, i) => ({ local: i }))).map((c) => {
    const l = { ...locals[c.local ?? 0], ...c };
    const name = l.nameBytes && !c.name ? l.nameBytes : utf8(l.name);
    return cat([le(0x02014b50, 4), le(20, 2), le(20, 2), le(field(l, 'flag'), 2), le(field(l, 'method'), 2), le(0, 4),
      le(field(l, 'crc'), 4), le(field(l, 'csize'), 4), le(field(l, 'usize'), 4), le(name.length, 2), le(0, 2), le(0, 2),
      le(0, 2), le(0, 2), le(0, 4), le(c.offset ?? offsets[c.local ?? 0], 4), name]);
  });
  const cd = cat(records);
  const eocd = cat([le(0x06054b50, 4), le(0, 4), le(records.length, 2), le(records.length, 2), le(cd.length, 4), le(at, 4), le(0, 2)]);
  return cat([...parts, cd, eocd]);
}

/** readZipFile on bytes, timed: {result, ms} or {error, ms}. */
async function read(zip, opts) {
  const t = performance.now();
  try {
    return { result: await readZipFile(new Blob([zip]), opts), ms: performance.now() - t };
  } catch (error) {
    return { error, ms: performance.now() - t };
  }
}

function refused(outcome, code, detail) {
  assert.ok(outcome.error, `expected the archive refused (${code}), got ${outcome.result && JSON.stringify(outcome.result.skipped)}`);
  assert.ok(outcome.error instanceof ZipError, `a ZipError, not ${outcome.error.stack}`);
  assert.equal(outcome.error.code, code);
  if (detail) assert.match(String(outcome.error.params.detail), detail);
}

function skippedAs(outcome, name, reason) {
  assert.ok(outcome.result, `expected a result, got ${outcome.error?.stack}`);
  const s = outcome.result.skipped.find((x) => x.name === name);
  assert.ok(s, `${name} should be skipped; skipped: ${JSON.stringify(outcome.result.skipped)}`);
  assert.match(s.reason, reason);
  assert.ok(!outcome.result.entries.some((e) => e.name === name), `${name} must not be read`);
}

function readBack(outcome, files) {
  assert.ok(outcome.result, `expected a result, got ${outcome.error?.stack}`);
  assert.deepEqual(outcome.result.skipped, []);
  assert.deepEqual(outcome.result.entries.map((e) => e.name).sort(), Object.keys(files).sort());
  for (const e of outcome.result.entries) {
    const want = files[e.name];
    assert.equal(e.bytes.length, want.length, e.name);
    assert.ok(Buffer.from(e.bytes).equals(Buffer.from(want)), `${e.name}: the same bytes`);
    assert.deepEqual(e.path, e.name.split('/'));
  }
}

// ---- honest archives ----------------------------------------------------------------------------

test('crc32: the standard check value, the empty input, in pieces', () => {
  assert.equal(crc32(utf8('123456789')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(crc32(utf8('The quick brown fox jumps over the lazy dog')), 0x414fa339);
  const b = bytes(10007, 5);
  assert.equal(crc32(b.subarray(4001), crc32(b.subarray(0, 4001))), crc32(b));
  assert.equal(crc32(new Uint8Array(1 << 16)), 0xd7978eeb);
});

test('zips written by fflate (zipSync; the streaming Zip, with data descriptors) read back byte for byte', async () => {
  const files = {
    'glass/a.jpg': bytes(300_000, 1), // incompressible: stored blocks inside deflate
    'glass/b.jpg': bytes(1, 2),
    'paper/notes.txt': utf8('paper '.repeat(200_000)), // 1.2 MB from a few KB: many pushes
    'big/random.bin': bytes(2_500_000, 3), // more than one 1 MB slice of compressed data
    'empty.bin': new Uint8Array(0),
    '中文/照片 1.png': bytes(1000, 4),
    'données/été.webp': bytes(70_000, 6),
  };
  const input = Object.fromEntries(Object.entries(files).map(([k, v], i) => [k, i % 2 ? [v, { level: 0 }] : v]));
  readBack(await read(zipSync(input, { level: 6 })), files);

  const chunks = [];
  const z = new Zip((err, chunk) => { if (err) throw err; chunks.push(chunk); });
  for (const [name, data] of Object.entries(files)) {
    const f = name.endsWith('.jpg') ? new ZipPassThrough(name) : new ZipDeflate(name, { level: 6 });
    z.add(f);
    f.push(data, true);
  }
  z.end();
  const streamed = cat(chunks);
  assert.ok(streamed[6] & 8, 'fflate streams set the data-descriptor flag');
  readBack(await read(streamed), files);
});

test('a hand-built zip of stored and deflated entries, non-ASCII names with and without the UTF-8 flag, reads back', async () => {
  const gbName = new Uint8Array([0xc0, 0xac, 0xbb, 0xf8, 0x2f, 0x31, 0x2e, 0x6a, 0x70, 0x67]); // 垃圾/1.jpg in GB18030
  const zip = buildZip([
    stored('猫/1.jpg', bytes(5000, 7)),
    deflated('猫/2.jpg', utf8('meow '.repeat(5000))),
    { ...deflated('unused', bytes(40_000, 8)), nameBytes: gbName, flag: 0 },
    stored('a/empty.png', new Uint8Array(0)),
    { ...deflated('a/empty-deflated.png', new Uint8Array(0)) },
  ]);
  const outcome = await read(zip);
  const files = { '猫/1.jpg': bytes(5000, 7), '猫/2.jpg': utf8('meow '.repeat(5000)), 'a/empty.png': new Uint8Array(0), 'a/empty-deflated.png': new Uint8Array(0) };
  files[new TextDecoder('gb18030').decode(gbName)] = bytes(40_000, 8);
  assert.ok(files['垃圾/1.jpg']);
  readBack(outcome, files);
});

const PROJECT_LIMITS = { maxClasses: 100, maxImages: 5000, maxLabel: 100 };

function sampleProject() {
  let key = 0;
  const image = (seed) => ({ key: (key += 1), thumb: bytes(2000 + seed * 37, seed), emb: Float32Array.from({ length: 16 }, (_, i) => Math.sin(seed + i)) });
  return {
    arch: 'efficientnet_lite0',
    dim: 16,
    settings: { epochs: 5 },
    classes: [
      { label: 'glass', images: [image(1), image(2), image(3)] },
      { label: 'papier ✓', images: [image(4), image(5)] },
    ],
    model: bytes(6000, 9),
    report: null,
  };
}

test('an exported project zip reads back through the project job', async () => {
  const zip = exportProjectZip(sampleProject());
  const p = await runJob('project', new Blob([zip]), PROJECT_LIMITS);
  assert.deepEqual(p.classes.map((c) => [c.label, c.images.length]), [['glass', 3], ['papier ✓', 2]]);
  assert.deepEqual(p.classes[1].images[0].thumb, bytes(2000 + 4 * 37, 4));
  assert.deepEqual([...p.classes[0].images[2].emb], [...Float32Array.from({ length: 16 }, (_, i) => Math.sin(3 + i))]);
  assert.deepEqual(p.model, bytes(6000, 9));
});

test('a project zip keeps each photo\'s sender; a malformed one is dropped, never trusted', async () => {
  const project = sampleProject();
  const from = { id: 'anaaaaaa01', name: 'Ana', batch: 'b1', at: 5 };
  project.classes[0].images[1].from = from;
  project.classes[1].images[0].from = { id: 7, name: ['x'], batch: 'b2' };
  project.classes[1].images[1].from = { id: 'x'.repeat(500), name: 'Bob', batch: 'b3', at: 'soon' };
  const p = await runJob('project', new Blob([exportProjectZip(project)]), PROJECT_LIMITS);
  assert.deepEqual(p.classes[0].images.map((im) => im.from), [undefined, from, undefined]);
  assert.equal(p.classes[1].images[0].from, undefined);
  assert.deepEqual(p.classes[1].images[1].from, { id: 'x'.repeat(40), name: 'Bob', batch: 'b3', at: 0 });
});

// ---- bombs (issue 37) ---------------------------------------------------------------------------

const GiB = 1024 * MB;
let bombCache = null;
const gibOfZeros = () => (bombCache ??= zeroBomb(GiB));

test('bomb: 20 entries pointing at one 1 GiB-of-zeros stream are refused at once (was 90 s and 1 GB held)', async () => {
  const stream = gibOfZeros();
  assert.ok(stream.length < 1.1 * MB);
  const names = Array.from({ length: 20 }, (_, i) => `images/${String(i).padStart(5, '0')}.jpg`);
  // as issue 37 found it: each declares 50 MB (the per-entry limit), CRC 0
  const lying = buildZip([{ name: names[0], data: stream, method: 8, crc: 0, usize: 50 * MB }], names.map((name) => ({ local: 0, name })));
  const a = await read(lying);
  refused(a, 'zipBroken', /overlap/);
  assert.ok(a.ms < 500, `${a.ms} ms`);
  // and with honest sizes and CRC: 20 × 1 GiB, refused by the overlap before the sizes
  const honest = buildZip([{ name: names[0], data: stream, method: 8, crc: 0, usize: 0 }],
    names.map((name) => ({ local: 0, name, usize: GiB })));
  refused(await read(honest), 'zipBroken', /overlap/);
});

test('bomb: a stream inflating past its declared size is stopped there; the rest of the archive is read', async () => {
  const ok = bytes(1000, 11);
  // the 1 GiB stream (1 MB) may declare 1 MB or more (less is refused for its sizes, see below);
  // a 8 KB stream of 8 MB declaring 8 KB
  for (const [stream, usize] of [[gibOfZeros(), 2 * MB], [gibOfZeros(), 4 * MB], [zeroBomb(8000 * 1032), 8000]]) {
    const zip = buildZip([{ name: 'bomb.jpg', data: stream, method: 8, crc: 0, usize }, stored('ok.jpg', ok)]);
    const a = await read(zip);
    skippedAs(a, 'bomb.jpg', /more than the \d+ bytes/);
    assert.deepEqual(a.result.entries.map((e) => e.name), ['ok.jpg']);
    assert.ok(a.ms < 1500, `declared ${usize}: ${a.ms} ms (a whole 1 GiB was 5.4 s)`);
  }
  // declaring 10 MB (within this 1 MB zip's 13 MB): 10 MB and a push's 8 MB past it are more than
  // the archive may inflate in all: the archive is refused
  const lie = await read(buildZip([{ name: 'bomb.jpg', data: gibOfZeros(), method: 8, crc: 0, usize: 10 * MB }, stored('ok.jpg', ok)]));
  refused(lie, 'zipBroken', /inflate to more than they declare/);
  assert.ok(lie.ms < 1500, `${lie.ms} ms`);
  // declaring 1 byte: refused before inflating (1 MB of deflate cannot make 1 byte)
  skippedAs(await read(buildZip([{ name: 'bomb.jpg', data: gibOfZeros(), method: 8, crc: 0, usize: 1 }])), 'bomb.jpg', /1040462 bytes compressed for 1\)/);
});

test('bomb: 20 separate 1 GiB streams (a 20 MB zip) are refused before inflating, or within the budget when they lie', async () => {
  const stream = gibOfZeros();
  const entries = (usize) => Array.from({ length: 20 }, (_, i) => ({ name: `c/${i}.jpg`, data: stream, method: 8, crc: 0, usize }));
  // declared 50 MB each: 1,000 MB is over 2× the archive
  const twenty = buildZip(entries(50 * MB));
  assert.ok(twenty.length < 20 * MB);
  const declared = await read(twenty);
  refused(declared, 'zipTooLarge');
  assert.equal(declared.error.params.n, Math.floor(2 * twenty.length / MB), JSON.stringify(declared.error.params));
  assert.ok(declared.ms < 300, `${declared.ms} ms`);
  // declared 1.5 MB each (30 MB, within the budget): each is stopped after 1.5 MB and a push, and
  // all the bytes inflated are held to the budget, past which the archive is refused
  const lying = await read(buildZip(entries(1.5 * MB)));
  refused(lying, 'zipBroken', /inflate to more than they declare/);
  assert.ok(lying.ms < 2000, `${lying.ms} ms`);
});

test('a stored entry whose sizes disagree is refused without being read', async () => {
  const big = new Uint8Array(8 * MB);
  const ok = bytes(100, 12);
  const a = await read(buildZip([{ ...stored('huge.jpg', big), usize: 1, crc: 0 }, stored('ok.jpg', ok)]));
  skippedAs(a, 'huge.jpg', /stored, but 8388608 bytes compressed for 1/);
  assert.equal(a.result.entries.length, 1);
  const b = await read(buildZip([{ ...stored('short.jpg', bytes(10, 1)), usize: 1000 }]));
  skippedAs(b, 'short.jpg', /stored, but 10 bytes compressed for 1000/);
});

test('overlapping entries with honest sizes are refused as a whole', async () => {
  // one honest 50 MB entry listed 20 times (issue 37: a 52 KB zip holding 1,000 MiB)
  const one = { name: 'a/0.jpg', data: zeroBomb(50 * MB), method: 8, crc: crc32(new Uint8Array(50 * MB)), usize: 50 * MB };
  const zip = buildZip([one], Array.from({ length: 20 }, (_, i) => ({ local: 0, name: `a/${i}.jpg` })));
  assert.ok(zip.length < 60_000);
  const a = await read(zip);
  refused(a, 'zipBroken', /overlap/);
  assert.ok(a.ms < 300, `${a.ms} ms`);
  // as a project: refused with the reason
  await assert.rejects(runJob('project', new Blob([zip]), PROJECT_LIMITS), /^Error: not a readable zip file \(entries overlap \(a\/\d+\.jpg\)\)$/);
  // an entry whose local header and data sit inside another (stored) entry's data
  const inner = buildZip([stored('b.jpg', bytes(3000, 2))]).subarray(0, 30 + 5 + 3000);
  const outer = stored('a.jpg', cat([bytes(100, 3), inner, bytes(100, 4)]));
  const nested = buildZip([outer], [{ local: 0 }, { name: 'b.jpg', data: bytes(3000, 2), method: 0, offset: 30 + 5 + 100 }]);
  refused(await read(nested), 'zipBroken', /overlap/);
  // out of order in the directory but apart on disk: fine
  const apart = buildZip([stored('x.jpg', bytes(10, 1)), stored('y.jpg', bytes(20, 2))], [{ local: 1 }, { local: 0 }]);
  readBack(await read(apart), { 'x.jpg': bytes(10, 1), 'y.jpg': bytes(20, 2) });
  // an entry reaching into the central directory
  const into = buildZip([{ ...stored('z.jpg', bytes(50, 1)), csize: 60, usize: 60 }]);
  refused(await read(into), 'zipBroken', /central directory/);
});

test('a wrong CRC-32, or CRC 0, refuses the entry; the others are read', async () => {
  const raw = bytes(5000, 13);
  const right = crc32(raw);
  const zip = buildZip([
    { ...stored('zero.jpg', raw), crc: 0 },
    { ...deflated('off-by-one.jpg', raw), crc: (right ^ 1) >>> 0 },
    { ...stored('flipped.jpg', raw.map((b, i) => (i === 2500 ? b ^ 0x10 : b))), crc: right },
    stored('ok.jpg', raw),
  ]);
  const a = await read(zip);
  for (const name of ['zero.jpg', 'off-by-one.jpg', 'flipped.jpg']) skippedAs(a, name, /CRC-32 [0-9a-f]{8}, the header says [0-9a-f]{8}/);
  assert.deepEqual(a.result.entries.map((e) => e.name), ['ok.jpg']);
});

test('sizes impossible for deflate are refused before inflating', async () => {
  // 1,032:1 is deflate's best; 200 bytes of stream cannot make 1 MB
  const small = deflateSync(new Uint8Array(1000));
  const a = await read(buildZip([{ name: 'ratio.jpg', data: small, method: 8, crc: 0, usize: small.length * 1032 + 65 }]));
  skippedAs(a, 'ratio.jpg', /cannot inflate from/);
  // the best ratio itself is allowed (and read)
  const best = zeroBomb(10 * MB);
  readBack(await read(buildZip([{ name: 'best.bin', data: best, raw: new Uint8Array(10 * MB), method: 8 }])), { 'best.bin': new Uint8Array(10 * MB) });
  // compressed much larger than stored blocks would make it
  const padded = cat([deflateSync(bytes(1000, 1)), new Uint8Array(5000)]);
  const b = await read(buildZip([{ name: 'padded.jpg', data: padded, raw: bytes(1000, 1), method: 8 }]));
  skippedAs(b, 'padded.jpg', /bytes compressed for 1000/);
});

test('an entry inflating to more, or fewer, bytes than declared is refused', async () => {
  const raw = utf8('abc'.repeat(4000));
  const more = await read(buildZip([{ ...deflated('more.jpg', raw), usize: 5000, crc: crc32(raw.subarray(0, 5000)) }, stored('ok.jpg', raw)]));
  skippedAs(more, 'more.jpg', /more than the 5000 bytes/);
  assert.equal(more.result.entries.length, 1);
  const fewer = await read(buildZip([{ ...deflated('fewer.jpg', raw), usize: 20_000 }]));
  skippedAs(fewer, 'fewer.jpg', /12000 bytes, the header says 20000/);
  // a stream that ends early, followed by bytes it never reads
  const tail = cat([deflateSync(bytes(1000, 1)), bytes(400_000, 2)]);
  const padded = await read(buildZip([{ name: 'tail.jpg', data: tail, method: 8, crc: 0, usize: 400_000 }]));
  skippedAs(padded, 'tail.jpg', /past the end of its stream/);
  assert.ok(padded.ms < 500, `${padded.ms} ms`);
  // cut short
  const cut = deflateSync(bytes(100_000, 5)).subarray(0, 50_000);
  skippedAs(await read(buildZip([{ name: 'cut.jpg', data: cut, method: 8, usize: 100_000, crc: 0 }])), 'cut.jpg', /unexpected EOF|bytes, the header says/);
});

test('which inflater reads: the browser\'s where it has one (Node.js does), fflate where it refuses an entry', async () => {
  // tests/js/zip-fflate.test.mjs runs this file with fflate alone; here only when it is not that run
  const native = useNativeInflate(true);
  useNativeInflate(native);
  if (native) assert.equal(typeof DecompressionStream, 'function');
  // a stream followed by a few bytes it never reads: the browser's inflater refuses such a tail,
  // fflate ignores one this short, so the entry is read (by fflate) either way
  const raw = utf8('abc'.repeat(4000));
  const tail = cat([deflateSync(raw), bytes(100, 3)]);
  readBack(await read(buildZip([{ name: 'tail.jpg', data: tail, raw, method: 8 }])), { 'tail.jpg': raw });
  // both inflaters give the same bytes for the same entries
  const photos = Array.from({ length: 6 }, (_, i) => bytes(20_000 + i * 7000, 20 + i));
  const zip = buildZip(photos.map((p, i) => deflated(`p${i}.jpg`, p)));
  const viaNative = await read(zip);
  const was = useNativeInflate(false);
  const viaFflate = await read(zip);
  useNativeInflate(was);
  readBack(viaNative, Object.fromEntries(photos.map((p, i) => [`p${i}.jpg`, p])));
  readBack(viaFflate, Object.fromEntries(photos.map((p, i) => [`p${i}.jpg`, p])));
});

test('a directory listing its entries out of order reads each one right (the reads share a window)', async () => {
  const photos = Array.from({ length: 40 }, (_, i) => bytes(3000 + i * 997, 40 + i));
  const locals = photos.map((p, i) => (i % 2 ? deflated(`p${i}.jpg`, p) : stored(`p${i}.jpg`, p)));
  const order = [...photos.keys()].sort((a, b) => ((a * 17) % 40) - ((b * 17) % 40)); // a jumbled order
  const a = await read(buildZip(locals, order.map((i) => ({ local: i }))));
  readBack(a, Object.fromEntries(photos.map((p, i) => [`p${i}.jpg`, p])));
  assert.deepEqual(a.result.entries.map((e) => e.name), order.map((i) => `p${i}.jpg`));
  // what the page keeps is its own: no entry's bytes share a buffer (the window's) with another's,
  // in that order or in the archive's
  assert.equal(new Set(a.result.entries.map((e) => e.bytes.buffer)).size, photos.length);
  const inOrder = await read(buildZip(locals));
  readBack(inOrder, Object.fromEntries(photos.map((p, i) => [`p${i}.jpg`, p])));
  assert.equal(new Set(inOrder.result.entries.map((e) => e.bytes.buffer)).size, photos.length);
});

test('a file that stops being readable inside an entry (a USB stick pulled) refuses that entry, and the reading ends', async () => {
  const big = bytes(600_000, 7); // over SMALL_ENTRY_BYTES: its data is read in its own slices
  const zip = new Blob([buildZip([deflated('big.jpg', big), stored('ok.jpg', bytes(100, 8))])]);
  // big.jpg's local header (at 0, 30 bytes and its name) reads; its data (one slice from there) does not
  const failing = {
    size: zip.size,
    slice(a, b) {
      const part = zip.slice(a, b);
      return { arrayBuffer: async () => { if (a < 100 && b - a > 100_000) throw new Error('the file could not be read'); return part.arrayBuffer(); } };
    },
  };
  const t = performance.now();
  const r = await Promise.race([readZipFile(failing), new Promise((_, no) => setTimeout(() => no(new Error('still reading after 5 s')), 5000))]);
  assert.ok(performance.now() - t < 5000);
  const s = r.skipped.find((x) => x.name === 'big.jpg');
  assert.ok(s && /could not be read/.test(s.reason), JSON.stringify(r.skipped));
  assert.deepEqual(r.entries.map((e) => e.name), ['ok.jpg']);
});

test('a local header that disagrees with the central directory refuses the entry', async () => {
  const raw = bytes(2000, 14);
  const cases = {
    'name.jpg': { local: { nameLen: 3 } },
    'method.jpg': { local: { method: 8 } },
    'crc.jpg': { local: { crc: 1 } },
    'size.jpg': { local: { usize: 1999 } },
  };
  const zip = buildZip([...Object.entries(cases).map(([name, o]) => ({ ...stored(name, raw), ...o })), stored('ok.jpg', raw)]);
  const a = await read(zip);
  for (const name of Object.keys(cases)) skippedAs(a, name, /local header/);
  assert.deepEqual(a.result.entries.map((e) => e.name), ['ok.jpg']);
  // zip64's 0xffffffff sizes in a local header, and a data descriptor's zeros, are allowed
  const zip64ish = buildZip([{ ...stored('d.jpg', raw), local: { csize: 0xffffffff, usize: 0xffffffff } }]);
  readBack(await read(zip64ish), { 'd.jpg': raw });
});

test('what the entries kept declare is held to 2× the archive (or the archive + 12 MB), and 1 GB', async () => {
  assert.equal(expansionBudget(0), 12 * MB);
  assert.equal(expansionBudget(3 * MB), 15 * MB);
  assert.equal(expansionBudget(12 * MB), 24 * MB);
  assert.equal(expansionBudget(20 * MB), 40 * MB);
  assert.equal(expansionBudget(2000 * MB), ZIP_LIMITS.maxTotalBytes);
  // 40 MB of zeros in a 40 KB zip: over 12 MB + 40 KB
  const forty = await read(buildZip([{ name: 'zeros.bin', data: zeroBomb(40 * MB), raw: new Uint8Array(0), method: 8, crc: 0, usize: 40 * MB }]));
  refused(forty, 'zipTooLarge');
  assert.equal(forty.error.params.n, 12);
  await assert.rejects(runJob('project', new Blob([buildZip([{ name: 'zeros.bin', data: zeroBomb(40 * MB), raw: new Uint8Array(0), method: 8, crc: 0, usize: 40 * MB }])]), PROJECT_LIMITS),
    /archive refused: more than 12 MB uncompressed/);
  // 12 MB of zeros: read
  readBack(await read(buildZip([{ name: 'zeros.bin', data: zeroBomb(12 * MB), raw: new Uint8Array(12 * MB), method: 8 }])), { 'zeros.bin': new Uint8Array(12 * MB) });
  // the declared sizes are added before anything is inflated: 1,000 entries of 1 MB in 1 MB of zip
  const many = await read(buildZip(Array.from({ length: 1000 }, (_, i) => ({ name: `${i}.bin`, data: zeroBomb(MB), method: 8, crc: 0, usize: MB }))));
  refused(many, 'zipTooLarge');
  assert.ok(many.ms < 500, `${many.ms} ms`);
  // what the filter leaves out does not count
  const filtered = await read(buildZip([{ name: 'zeros.bin', data: zeroBomb(40 * MB), raw: new Uint8Array(0), method: 8, crc: 0, usize: 40 * MB }, stored('a/b.jpg', bytes(10, 1))]),
    { filter: (parts) => parts[parts.length - 1].endsWith('.jpg') });
  assert.deepEqual(filtered.result.entries.map((e) => e.name), ['a/b.jpg']);
});

// ---- bounded: any zip up to 20 MB within 2 s and 4× its size + 64 MB -------------------------------

test('zips up to 20 MB, hostile or not, are answered within 2 s and 4× their size + 64 MB (own process, file-backed Blob)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sortwise-zip-'));
  try {
    const stream = gibOfZeros();
    const cases = {
      // 20 × 1 GiB, each declaring 1.5 MB: stopped by the work budget
      'twenty lying bombs': buildZip(Array.from({ length: 20 }, (_, i) => ({ name: `c/${i}.jpg`, data: stream, method: 8, crc: 0, usize: 1.5 * MB }))),
      // 5,000 entries of 4 KB compressed (~4 MB of zeros each), declaring 6 KB
      '5,000 small lying bombs': buildZip(Array.from({ length: 5000 }, (_, i) => ({ name: `c/${i}.jpg`, data: zeroBomb(4000 * 1032).subarray(0, 4000), method: 8, crc: 0, usize: 6000 }))),
      // 400 honest 50 MB bombs: 20 GB declared
      '400 honest bombs': buildZip(Array.from({ length: 400 }, (_, i) => ({ name: `c/${i}.jpg`, data: zeroBomb(50 * MB - 1), method: 8, crc: 0, usize: 50 * MB - 1 }))),
      // about the most an 18 MB zip may hold (36 MB): 12 MB of zeros, 18 MB of photos (stored), 5 MB deflated
      'honest, at the budget': buildZip([
        { name: 'c/zeros.jpg', data: zeroBomb(12 * MB), raw: new Uint8Array(0), crc: crc32(new Uint8Array(12 * MB)), usize: 12 * MB, method: 8 },
        ...Array.from({ length: 9 }, (_, i) => stored(`c/${i}.jpg`, bytes(2 * MB, i + 1))),
        deflated('c/text.jpg', utf8('text '.repeat(MB))),
      ]),
      // deflated photos and zeros up to the budget, where the GC's garbage weighs most
      ...Object.fromEntries([5, 12, 16].map((n) => [`photos deflated + zeros, ${n} MB`, buildZip([
        ...Array.from({ length: n }, (_, i) => deflated(`c/${i}.jpg`, bytes(MB, i + 1))),
        { name: 'c/zeros.jpg', data: zeroBomb(Math.max(n, 12) * MB), raw: new Uint8Array(0), crc: crc32(new Uint8Array(Math.max(n, 12) * MB)), usize: Math.max(n, 12) * MB, method: 8 },
      ])])),
      // 12 MB of zeros in 12 KB: the budget of a tiny zip
      'tiny, at the budget': buildZip([{ name: 'c/zeros.jpg', data: zeroBomb(12 * MB), raw: new Uint8Array(12 * MB), method: 8 }]),
      // 5,000 stored photos of 4 KB
      '5,000 honest entries': buildZip(Array.from({ length: 5000 }, (_, i) => stored(`c${i % 10}/${i}.jpg`, bytes(4000, i + 1)))),
    };
    // Peak resident memory from the kernel's high-water mark, reset once the module is loaded and
    // the file opened (ru_maxrss would count the test process itself, forked before exec).
    const script = String.raw`
      import { openAsBlob, readFileSync, writeFileSync } from 'node:fs';
      const { readZipFile, ZipError } = await import(process.argv[1]);
      const blob = await openAsBlob(process.argv[2]);
      const linux = process.platform === 'linux';
      const kB = (key) => Number(readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith(key + ':')).match(/\d+/)[0]) * 1024;
      if (linux) writeFileSync('/proc/self/clear_refs', '5');
      const rss0 = linux ? kB('VmRSS') : null;
      const t = performance.now();
      let outcome;
      try {
        const r = await readZipFile(blob);
        outcome = { entries: r.entries.length, skipped: r.skipped.length, bytes: r.entries.reduce((a, e) => a + e.bytes.length, 0) };
      } catch (e) {
        outcome = { zipError: e instanceof ZipError, code: e.code ?? null, detail: e.params?.detail };
      }
      const ms = performance.now() - t;
      console.log(JSON.stringify({ ms, grew: linux ? kB('VmHWM') - rss0 : null, outcome }));`;
    for (const [name, zip] of Object.entries(cases)) {
      assert.ok(zip.length <= 20 * MB, `${name}: ${zip.length} bytes`);
      const file = join(dir, 'case.zip');
      writeFileSync(file, zip);
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script, new URL('../../www/project/project-zip.js', import.meta.url).href, file], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const r = JSON.parse(run.stdout.trim().split('\n').pop());
      const limit = 4 * zip.length + 64 * MB;
      t.diagnostic(`${name}: ${(zip.length / MB).toFixed(1)} MB, ${r.ms.toFixed(0)} ms, +${r.grew === null ? '?' : (r.grew / MB).toFixed(0)} MB resident (limit ${(limit / MB).toFixed(0)}), ${JSON.stringify(r.outcome)}`);
      assert.ok(r.outcome.entries !== undefined || r.outcome.zipError, `${name}: ${JSON.stringify(r.outcome)}`);
      assert.ok(r.ms < 2000, `${name}: ${r.ms} ms`);
      if (r.grew !== null) assert.ok(r.grew < limit, `${name}: grew ${r.grew} bytes, limit ${limit}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- a generated family: mutated project zips ---------------------------------------------------

const MUTANTS = Number(process.env.SORTWISE_ZIP_MUTANTS) || 500;

/** A seeded generator (mulberry32). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The header fields of a zip fflate wrote: [{at, width, value}] of every local header, central record and the end record. */
function headerFields(zip) {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const fields = [];
  const add = (at, width, value) => fields.push({ at, width, value });
  let e = zip.length - 22;
  while (dv.getUint32(e, true) !== 0x06054b50) e -= 1;
  for (const [o, w] of [[8, 2], [10, 2], [12, 4], [16, 4], [20, 2]]) add(e + o, w, w === 2 ? dv.getUint16(e + o, true) : dv.getUint32(e + o, true));
  let o = dv.getUint32(e + 16, true);
  const count = dv.getUint16(e + 10, true);
  for (let i = 0; i < count; i += 1) {
    for (const [f, w] of [[8, 2], [10, 2], [16, 4], [20, 4], [24, 4], [28, 2], [30, 2], [32, 2], [42, 4]]) add(o + f, w, w === 2 ? dv.getUint16(o + f, true) : dv.getUint32(o + f, true));
    const local = dv.getUint32(o + 42, true);
    for (const [f, w] of [[0, 4], [6, 2], [8, 2], [14, 4], [18, 4], [22, 4], [26, 2], [28, 2]]) add(local + f, w, w === 2 ? dv.getUint16(local + f, true) : dv.getUint32(local + f, true));
    o += 46 + dv.getUint16(o + 28, true) + dv.getUint16(o + 30, true) + dv.getUint16(o + 32, true);
  }
  return fields;
}

function mutate(seedZip, fields, random) {
  let z = seedZip.slice();
  const pick = (n) => Math.floor(random() * n);
  const kinds = [];
  for (let m = 1 + pick(3); m > 0; m -= 1) {
    const kind = ['flip', 'flip', 'field', 'field', 'field', 'truncate', 'cut', 'copy'][pick(8)];
    kinds.push(kind);
    if (kind === 'flip') {
      for (let n = 1 + pick(8); n > 0; n -= 1) { const i = pick(z.length); z[i] ^= 1 << pick(8); }
    } else if (kind === 'field') {
      const f = fields[pick(fields.length)];
      if (f.at + f.width > z.length) continue;
      const max = 2 ** (8 * f.width) - 1;
      const other = fields[pick(fields.length)];
      const values = [0, 1, 2, max, max - 1, 2 ** (8 * f.width - 1), 2 ** (8 * f.width - 1) - 1, f.value + 1, Math.max(0, f.value - 1),
        f.value * 2, other.width <= f.width ? other.value : f.value, z.length, pick(max + 1)];
      const v = Math.min(max, values[pick(values.length)]);
      for (let b = 0; b < f.width; b += 1) z[f.at + b] = Math.floor(v / 2 ** (8 * b)) & 255;
    } else if (kind === 'truncate') {
      z = z.slice(0, pick(z.length));
    } else if (kind === 'cut') {
      const at = pick(z.length);
      z = cat([z.subarray(0, at), z.subarray(Math.min(z.length, at + 1 + pick(64)))]);
    } else {
      const from = pick(z.length);
      const len = 1 + pick(256);
      const at = pick(z.length);
      z = cat([z.subarray(0, at), z.subarray(from, from + len), z.subarray(at)]);
    }
  }
  return { zip: z, kinds };
}

test(`${MUTANTS} seeded mutations of a project zip: each read or refused with a ZipError or a skip, within 2 s`, async (t) => {
  const seedZip = exportProjectZip(sampleProject());
  const fields = headerFields(seedZip);
  assert.ok(fields.length > 100, `${fields.length} fields`);
  const random = rng(Number(process.env.SORTWISE_ZIP_SEED) || 37);
  const tally = { read: 0, readWithSkips: 0, refused: 0, projectRefused: 0, projectRead: 0 };
  let slowest = 0;
  for (let i = 0; i < MUTANTS; i += 1) {
    const { zip, kinds } = mutate(seedZip, fields, random);
    const what = `mutant ${i} (${kinds.join(', ')})`;
    const t0 = performance.now();
    const a = await read(zip);
    if (a.error) {
      assert.ok(a.error instanceof ZipError, `${what}: ${a.error.stack}`);
      tally.refused += 1;
    } else {
      for (const s of a.result.skipped) assert.equal(typeof s.reason, 'string', what);
      tally[a.result.skipped.length ? 'readWithSkips' : 'read'] += 1;
    }
    // the same bytes as a class-folder zip and as an imported project
    try {
      const d = await runJob('dataset', new Blob([zip]));
      assert.ok(Array.isArray(d.items) && Array.isArray(d.skipped), what);
    } catch (e) {
      assert.ok(e instanceof ZipError, `${what}, dataset: ${e.stack}`);
    }
    try {
      await runJob('project', new Blob([zip]), PROJECT_LIMITS);
      tally.projectRead += 1;
    } catch (e) {
      // the project reader's refusals are plain Errors with a message; a TypeError would be a bug
      assert.ok(e instanceof ZipError || e.constructor === Error, `${what}, project: ${e.stack}`);
      assert.ok(e.message, what);
      tally.projectRefused += 1;
    }
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    assert.ok(ms < 2000, `${what}: ${ms} ms`);
  }
  t.diagnostic(`${MUTANTS} mutants: ${JSON.stringify(tally)}, slowest ${slowest.toFixed(0)} ms (three reads)`);
  assert.equal(tally.read + tally.readWithSkips + tally.refused, MUTANTS);
  for (const k of ['read', 'readWithSkips', 'refused', 'projectRefused']) assert.ok(tally[k] > 0, `some mutants end as ${k}: ${JSON.stringify(tally)}`);
});
