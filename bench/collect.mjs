#!/usr/bin/env node
// Issue 33, "Measure": collecting from phones on localhost, in headless Chromium.
//
//   node bench/collect.mjs            (after ./run serve; DOCS=1 appends the section to docs/BENCHMARKS.md)
//
// 1. What a phone sends per photo: trashnet-mini photos drawn as a 640×480 camera frame and encoded
//    as the collect view does (engine/frame.js: 256 px on the short side, JPEG 0.9), against the
//    same frame at 12 MP (4000×3000, what a phone camera's own JPEG holds), one page.
// 2. Scan to connected: the teacher's page (real engine, ?device=cpu) opens "Collect from phones";
//    a phone (mobile emulation) opens the link, taps Connect, its answer code is screenshotted and
//    read by the teacher's page (the page's decoder); from the phone's page load to the phone's
//    "connected". PAIRINGS times (default 5), median.
// 3. Photos per second over the channel alone: two RTCPeerConnections in one page (www/collect/peer.js's
//    makeOffer/answerOffer, host candidates on localhost), PhotoSender → PhotoReceiver with a
//    receiver that acknowledges at once: N photos (default 400) of the sizes measured in 1.
// 4. Photos per second into the teacher's classes: the last phone keeps N_LIVE (default 120)
//    photos while connected (sortwiseCollect.keep, the path of a camera shot); from the first
//    kept to the last in the project (embedded by the engine, EfficientNet-Lite0). For scale, the
//    same photos dropped as a class-folder zip on a fresh page in the same run.
// Env: CHROMIUM, SORTWISE_DATA, PAIRINGS, N, N_LIVE, DOCS=1.

import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipSync } from 'fflate';
import { chromium } from 'playwright-core';
import { DATA, serveRepo } from '../tests/e2e/serve.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PAIRINGS = Number(process.env.PAIRINGS || 5);
const N = Number(process.env.N || 400);
const N_LIVE = Number(process.env.N_LIVE || 120);
const err = (...a) => console.error('[bench collect]', ...a);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const files = [];
for (const cls of ['glass', 'metal', 'paper', 'plastic']) {
  for (const f of readdirSync(join(DATA, 'train', cls)).sort().slice(0, 10)) files.push({ cls, bytes: [...readFileSync(join(DATA, 'train', cls, f))] });
}

const tmp = mkdtempSync(join(tmpdir(), 'sortwise-bench-collect-'));
const server = await serveRepo('/www/index.html');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
});
const out = { cpu: execSync("lscpu | sed -n 's/^Model name: *//p'").toString().trim(), date: new Date().toISOString().slice(0, 10) };
try {
  // ---- 1. bytes per photo --------------------------------------------------------------------
  const page = await browser.newPage();
  await page.goto(`${server.base}/tests/e2e/harness.html`);
  const encoded = await page.evaluate(async (list) => {
    const { FRAME_SHORT_SIDE, frameSize } = await import('/www/engine/frame.js');
    const sizes = { phone: [], full: [] };
    const phone = [];
    for (const f of list) {
      const bmp = await createImageBitmap(new Blob([new Uint8Array(f.bytes)]));
      const frame = new OffscreenCanvas(640, 480);
      frame.getContext('2d').drawImage(bmp, 0, 0, 640, 480);
      const [w, h] = frameSize(640, 480, FRAME_SHORT_SIDE);
      const small = new OffscreenCanvas(w, h);
      small.getContext('2d').drawImage(frame, 0, 0, w, h);
      const jpeg = new Uint8Array(await (await small.convertToBlob({ type: 'image/jpeg', quality: 0.9 })).arrayBuffer());
      sizes.phone.push(jpeg.length);
      phone.push({ cls: f.cls, bytes: [...jpeg] });
      const big = new OffscreenCanvas(4000, 3000);
      big.getContext('2d').drawImage(bmp, 0, 0, 4000, 3000);
      sizes.full.push((await big.convertToBlob({ type: 'image/jpeg', quality: 0.9 })).size);
    }
    return { sizes, phone, w: frameSize(640, 480, FRAME_SHORT_SIDE) };
  }, files);
  out.photoBytes = { median: median(encoded.sizes.phone), min: Math.min(...encoded.sizes.phone), max: Math.max(...encoded.sizes.phone), size: encoded.w.join('×') };
  out.fullBytes = { median: median(encoded.sizes.full), size: '4000×3000' };
  err('bytes per photo', out.photoBytes, 'vs 12 MP', out.fullBytes);

  // ---- 3. the channel alone --------------------------------------------------------------------
  const channel = await page.evaluate(async ({ photos, n }) => {
    const peer = await import('/www/collect/peer.js');
    const t0 = performance.now();
    const teacher = await peer.makeOffer();
    const phone = await peer.answerOffer(teacher.offer);
    await peer.acceptAnswer(teacher.pc, phone.answer);
    const phoneChannel = await peer.opened(await phone.channel);
    await peer.opened(teacher.channel);
    const pairMs = performance.now() - t0;
    let received = 0;
    new peer.PhotoReceiver(teacher.channel, { session: 'BENCH1', maxRate: Infinity, onBatch: async (c) => { received += c.photos.length; return { added: c.photos.length, offered: 0 }; } });
    const sender = new peer.PhotoSender(phoneChannel, { session: 'BENCH1', contributor: () => ({ id: 'benchbench01', name: 'bench' }) });
    sender.hello();
    const list = Array.from({ length: n }, (_, i) => ({ id: i, label: photos[i % photos.length].cls, bytes: new Uint8Array(photos[i % photos.length].bytes) }));
    const bytes = list.reduce((s, p) => s + p.bytes.length, 0);
    const t1 = performance.now();
    await sender.send(list);
    const s = (performance.now() - t1) / 1000;
    return { pairMs, photos: received, seconds: s, perSecond: received / s, mbPerSecond: bytes / s / 1e6 };
  }, { photos: encoded.phone, n: N });
  out.channel = channel;
  err('channel alone', channel);
  await page.close();

  // ---- 2. scan to connected, through the real pages ------------------------------------------------
  const teacherCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const teacher = await teacherCtx.newPage();
  await teacher.goto(`${server.base}/www/?device=cpu`);
  await teacher.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 300000 });
  await teacher.selectOption('#preset', 'trashnet');
  await teacher.click('#apply-preset');
  await teacher.click('#collect-open');
  const pairings = [];
  let phone = null;
  for (let i = 0; i < PAIRINGS; i += 1) {
    await teacher.waitForFunction(() => window.sortwiseDebug.state.collect?.offer, null, { timeout: 30000 });
    const link = await teacher.evaluate(() => window.sortwiseDebug.state.collect.link);
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true });
    phone = await ctx.newPage();
    const t0 = Date.now();
    await phone.goto(link);
    await phone.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 30000 });
    await phone.fill('#collect-name', `phone ${i + 1}`);
    await phone.press('#collect-name', 'Tab');
    await phone.tap('#collect-live');
    await phone.waitForFunction(() => !document.getElementById('collect-answer').hidden, null, { timeout: 30000 });
    const shot = join(tmp, `answer-${i}.png`);
    await phone.locator('#collect-answer-qr').screenshot({ path: shot });
    await teacher.setInputFiles('#collect-scan-file', shot);
    await phone.waitForFunction(() => window.sortwiseCollect.state.live === 'collectLiveOn', null, { timeout: 30000 });
    pairings.push(Date.now() - t0);
    if (i < PAIRINGS - 1) await ctx.close();
  }
  out.scanToConnectedMs = { median: median(pairings), all: pairings };
  err('scan to connected (ms)', pairings);

  // ---- 4. photos into the teacher's classes, live, and the same photos dropped as a zip ---------
  const live = encoded.phone.map((p) => ({ cls: p.cls, bytes: p.bytes }));
  const t0 = Date.now();
  await phone.evaluate(async ({ photos, n }) => {
    for (let i = 0; i < n; i += 1) await window.sortwiseCollect.keep(photos[i % photos.length].cls, photos[i % photos.length].bytes);
  }, { photos: live, n: N_LIVE });
  await teacher.waitForFunction((n) => window.sortwiseDebug.state.classes.reduce((s, c) => s + c.count, 0) >= n, N_LIVE, { timeout: 600000, polling: 100 });
  const liveS = (Date.now() - t0) / 1000;
  out.live = { photos: N_LIVE, seconds: liveS, perSecond: N_LIVE / liveS };
  err('live into the project', out.live);
  const zipFiles = {};
  for (let i = 0; i < N_LIVE; i += 1) zipFiles[`photos/${live[i % live.length].cls}/${i}.jpg`] = new Uint8Array(live[i % live.length].bytes);
  const zip = Buffer.from(zipSync(zipFiles, { level: 0 })).toString('base64');
  const fresh = await (await browser.newContext()).newPage();
  await fresh.goto(`${server.base}/www/?device=cpu`);
  await fresh.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 300000 });
  const t1 = Date.now();
  await fresh.evaluate((data) => {
    const dt = new DataTransfer();
    dt.items.add(new File([Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0))], 'photos.zip', { type: 'application/zip' }));
    document.getElementById('data-h').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, zip);
  await fresh.waitForFunction((n) => window.sortwiseDebug.state.classes.reduce((s, c) => s + c.count, 0) >= n, N_LIVE, { timeout: 600000, polling: 100 });
  const dropS = (Date.now() - t1) / 1000;
  out.drop = { photos: N_LIVE, seconds: dropS, perSecond: N_LIVE / dropS };
  out.arch = await fresh.evaluate(() => window.sortwiseDebug.state.arch);
  err('the same photos dropped as a zip', out.drop);
} finally {
  await browser.close();
  server.stop();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(JSON.stringify(out, null, 1));
const f1 = (x) => x.toFixed(1);
const md = `
### Collecting from phones on localhost (issue 33) — ${out.date}

Machine: ${out.cpu}, 2 cores. Headless Chromium, teacher and phones in one browser (separate
contexts), host candidates only (no ICE server). Command: \`node bench/collect.mjs\`.

| measure | value |
|---|---|
| what a phone sends per photo (640×480 frame → ${out.photoBytes.size}, JPEG 0.9) | median ${(out.photoBytes.median / 1024).toFixed(1)} KB (${(out.photoBytes.min / 1024).toFixed(1)}–${(out.photoBytes.max / 1024).toFixed(1)} KB) |
| the same photo at 12 MP (4000×3000, JPEG 0.9), for scale | median ${(out.fullBytes.median / 1024).toFixed(0)} KB |
| scan to connected (phone loads the link → taps Connect → teacher reads its code from a screenshot → connected) | median ${f1(out.scanToConnectedMs.median / 1000)} s (${out.scanToConnectedMs.all.map((m) => f1(m / 1000)).join(', ')} s) |
| the channel alone (${out.channel.photos} photos, batches of 8, each acknowledged) | ${f1(out.channel.perSecond)} photos/s (${f1(out.channel.mbPerSecond)} MB/s) |
| live into the teacher's classes (${out.live.photos} photos, embedded by ${out.arch} on the CPU) | ${f1(out.live.perSecond)} photos/s |
| the same photos dropped as a class-folder zip on a fresh page, same run | ${f1(out.drop.perSecond)} photos/s |
`;
console.error(md);
if (process.env.DOCS === '1') appendFileSync(join(ROOT, 'docs/BENCHMARKS.md'), md);
