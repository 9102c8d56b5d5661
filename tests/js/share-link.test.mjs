// www/share/share-link.js: both spellings of a link give back the bytes exactly, for every length and
// byte value; damaged, foreign and oversized links are refused with a message; the header is read
// as src/formats/share.rs writes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from '../../www/vendor/fflate.js';
import { fromBase64Url, fromDigits, linkInfo, makeLink, pageBase, qrCapacity, qrCode, readLink, toBase64Url, toDigits } from '../../www/share/share-link.js';

// A deterministic byte source (xorshift), so a failure names the same bytes every run.
function bytes(n, seed) {
  let x = seed * 2654435761 + 1;
  return Uint8Array.from({ length: n }, () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x & 255; });
}

test('base64url and digits round trip every length, and the extreme bytes', () => {
  for (let n = 0; n <= 64; n += 1) {
    for (const b of [bytes(n, n + 1), new Uint8Array(n).fill(255), new Uint8Array(n)]) {
      assert.deepEqual(fromBase64Url(toBase64Url(b)), b, `base64url, ${n} bytes`);
      assert.deepEqual(fromDigits(toDigits(b)), b, `digits, ${n} bytes`);
    }
  }
  assert.equal(toBase64Url(Uint8Array.of(0xfb, 0xff)), '-_8');
  assert.equal(toDigits(Uint8Array.of(255)), '255');
  assert.equal(toDigits(new Uint8Array(7).fill(255)), '72057594037927935');
  // 17 digits per 7 bytes: what makes the QR code's numeric mode pay.
  assert.equal(toDigits(bytes(700, 3)).length, 1700);
});

test('damaged text is refused, never read as other bytes', () => {
  assert.throws(() => fromBase64Url('abc$'), /damaged/);
  assert.throws(() => fromBase64Url('abcde'), /damaged/);
  assert.throws(() => fromDigits('12a'), /damaged/);
  assert.throws(() => fromDigits('1234'), /damaged/); // 4 digits are no whole number of bytes
  assert.throws(() => fromDigits('256'), /damaged/); // more than one byte holds
  assert.throws(() => fromDigits('72057594037927936'), /damaged/);
});

test('a link holds the bytes, in either spelling', () => {
  const share = bytes(2800, 7);
  const { link, qr, deflated } = makeLink(share, 'https://school.example/sortwise/');
  assert.ok(link.startsWith('https://school.example/sortwise/#m='));
  assert.equal(qr.base, 'https://school.example/sortwise/#n=');
  assert.ok(deflated > 0 && deflated < 2900, `${deflated}`);
  assert.deepEqual(readLink(new URL(link).hash), share);
  assert.deepEqual(readLink(`#n=${qr.digits}`), share);
  assert.equal(readLink(''), null);
  assert.equal(readLink('#section'), null);
  assert.throws(() => readLink('#m='), /cut short/);
  const cut = new URL(link).hash.slice(0, 200);
  assert.throws(() => readLink(cut), /damaged/);
});

test('a deflate bomb is refused before it fills memory', () => {
  const bomb = deflateSync(new Uint8Array(8 * 1024 * 1024), { level: 9 });
  assert.throws(() => readLink(`#m=${toBase64Url(bomb)}`), /more than any sortwise model/);
});

test('the header gives the backbone before any engine runs', () => {
  // src/formats/share.rs encode: "SWs1", precision 3 (int4), arch, fit, hash, temperature, classes.
  const enc = new TextEncoder();
  const str = (s) => { const b = enc.encode(s); return [b.length & 255, b.length >> 8, ...b]; };
  const header = Uint8Array.from([...enc.encode('SWs1'), 3, ...str('efficientnet_lite0'), 0, ...str('0123456789abcdef'), 0, 0, 128, 63, 4, ...str('glass')]);
  assert.deepEqual(linkInfo(header), { arch: 'efficientnet_lite0', precision: 'int4', classes: 4 });
  assert.throws(() => linkInfo(header.slice(0, 30)), /not a sortwise/);
  assert.throws(() => linkInfo(enc.encode('PK\x03\x04 a zip, not a link')), /not a sortwise/);
});

test('the page address drops only the fragment and the test parameters', () => {
  const loc = new URL('https://a.example/s/index.html?device=cpu&lang=zh&launch=app#m=abc');
  assert.equal(pageBase(loc), 'https://a.example/s/index.html?lang=zh');
  assert.equal(pageBase(new URL('http://localhost:8000/www/')), 'http://localhost:8000/www/');
});

// The code drawn as an RGBA image (4 pixels a module, the 4-module quiet zone) for jsQR.
function rgba(code, scale = 4, quiet = 4) {
  const n = code.getModuleCount();
  const size = (n + 2 * quiet) * scale;
  const data = new Uint8ClampedArray(size * size * 4).fill(255);
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) {
      if (!code.isDark(r, c)) continue;
      for (let y = 0; y < scale; y += 1) {
        for (let x = 0; x < scale; x += 1) {
          const o = (((r + quiet) * scale + y) * size + (c + quiet) * scale + x) * 4;
          data[o] = data[o + 1] = data[o + 2] = 0;
        }
      }
    }
  }
  return { data, size };
}

test('a QR code reads back as the link, up to the capacity it states', async () => {
  const { default: jsQR } = await import('jsqr');
  const base = 'https://school.example/sortwise/';
  const capacity = qrCapacity(base);
  assert.ok(capacity > 2800 && capacity < 2900, `${capacity}`);
  // Incompressible bytes, so that the deflated size is about the size given. Lite0 × 4 classes
  // at 4 bits is ~2,790 bytes (src/formats/share.rs): it must fit.
  for (const n of [300, 2790]) {
    const { qr, deflated } = makeLink(bytes(n, n), base);
    const code = qrCode(qr);
    assert.ok(deflated >= n, `${n} bytes deflate to ${deflated}: not incompressible`);
    assert.ok(code, `${n} bytes (${deflated} deflated) fit one code`);
    const { data, size } = rgba(code);
    const read = jsQR(data, size, size);
    assert.ok(read, `jsQR reads the ${code.getModuleCount()}-module code of ${n} bytes`);
    assert.equal(read.data, `${qr.base}${qr.digits}`);
    assert.deepEqual(readLink(new URL(read.data).hash), bytes(n, n));
  }
  const over = makeLink(bytes(capacity + 40, 9), base);
  assert.ok(over.deflated > capacity);
  assert.equal(qrCode(over.qr), null);
});
