#!/usr/bin/env node
// The page on phones, in Chromium's mobile emulation (touch, mobile viewport, device pixel ratio 3)
// at 390×844 and 360×740, with a fake camera (--use-fake-device-for-media-stream): nothing overflows
// horizontally; every visible control is on screen, not covered and at least 24 px (WCAG 2.2 target
// size) when scrolled to; taps work (a class card's photo input, Train, the advanced settings);
// the test camera asks for the rear camera first and plays; hold-to-record records frames while a
// finger is held down (CDP touch events, not mouse) and stops when it lifts. Screenshots of both
// layouts go to artifacts/screenshots/, and with SORTWISE_UPDATE_SCREENSHOT=1 to docs/phone-390.png
// (the top of the page) and docs/phone-360.png (the test step with the live camera). The engine is the fake one (tests/e2e/fake-client.js): this is about the
// page, and e2e.mjs / engines.mjs run the real engine.
//
//   node tests/e2e/phone.mjs

import { chromium } from 'playwright-core';
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DATA, ROOT, serveRepo, useFakeEngine } from './serve.mjs';

const T0 = Date.now();
const log = (...a) => console.log(`[phone ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const SHOTS = join(ROOT, 'artifacts/screenshots');
mkdirSync(SHOTS, { recursive: true });
const failures = [];
const check = (cond, msg) => { if (!cond) { failures.push(msg); log(`FAIL: ${msg}`); } };

const PHONES = [
  { name: '390', viewport: { width: 390, height: 844 } },
  { name: '360', viewport: { width: 360, height: 740 } },
];
const photo = (cls, i) => {
  const f = readdirSync(join(DATA, 'train', cls)).sort()[i];
  return { name: f, mimeType: 'image/jpeg', buffer: readFileSync(join(DATA, 'train', cls, f)) };
};

// Every visible control, scrolled to: on screen, the topmost element at its centre, big enough.
const auditControls = () => {
  const out = [];
  const sel = 'button, select, input:not([type=file]):not([type=hidden]), summary, a[href], label:has(> input[type=file])';
  for (const el of document.querySelectorAll(sel)) {
    const style = getComputedStyle(el);
    if (el.closest('[hidden]') || style.display === 'none' || style.visibility === 'hidden') continue;
    if (el.closest('details:not([open])') && el.tagName !== 'SUMMARY') continue;
    if (el.classList.contains('visually-hidden')) continue;
    // The skip link sits off screen until focused from a keyboard, by design.
    if (el.classList.contains('skip')) continue;
    el.scrollIntoView({ block: 'center', inline: 'nearest' });
    const r = el.getBoundingClientRect();
    if (!r.width && !r.height) continue;
    const id = el.id || el.getAttribute('data-i18n') || el.className || el.tagName;
    const cx = Math.min(Math.max(r.left + r.width / 2, 0), innerWidth - 1);
    const cy = Math.min(Math.max(r.top + r.height / 2, 0), innerHeight - 1);
    const hit = document.elementFromPoint(cx, cy);
    const reachable = hit && (hit === el || el.contains(hit) || hit.contains(el) || (el.htmlFor && hit.closest(`label[for="${el.htmlFor}"]`)) || (hit.closest('label') && hit.closest('label').contains(el)));
    const small = el.type === 'checkbox' || el.type === 'radio'
      ? Math.max(r.width, r.height) < 16 && !el.closest('label')
      : Math.min(r.width, r.height) < 24;
    const offscreen = r.left < -1 || r.right > innerWidth + 1;
    if (!reachable || small || offscreen) out.push({ id: String(id).slice(0, 40), w: Math.round(r.width), h: Math.round(r.height), left: Math.round(r.left), right: Math.round(r.right), reachable: Boolean(reachable), hit: hit && (hit.id || hit.className || hit.tagName) });
  }
  window.scrollTo(0, 0);
  return out;
};

// Elements poking out to the right, outside a container that scrolls sideways on purpose.
const overflowing = () => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('[hidden]')) continue;
    const r = el.getBoundingClientRect();
    if (r.right <= innerWidth + 1 || !r.width) continue;
    let p = el.parentElement;
    let scrolls = false;
    while (p && p !== document.body) {
      const ox = getComputedStyle(p).overflowX;
      if (ox === 'auto' || ox === 'scroll' || ox === 'hidden') { scrolls = true; break; }
      p = p.parentElement;
    }
    if (!scrolls) out.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}.${el.className} (right ${Math.round(r.right)})`);
  }
  return { scroll: document.documentElement.scrollWidth - document.documentElement.clientWidth, out: out.slice(0, 10) };
};

async function touchHold(page, selector, ms) {
  const box = await page.locator(selector).boundingBox();
  const cdp = await page.context().newCDPSession(page);
  const point = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [point] });
  await page.waitForTimeout(ms);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await cdp.detach();
}

const server = await serveRepo('/www/index.html');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
});
try {
  for (const phone of PHONES) {
    const context = await browser.newContext({
      viewport: phone.viewport,
      deviceScaleFactor: 3,
      isMobile: true,
      hasTouch: true,
      userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Mobile Safari/537.36',
      permissions: ['camera'],
      serviceWorkers: 'block',
      locale: 'en-US',
    });
    await useFakeEngine(context);
    // What the page asks the camera for, in order.
    await context.addInitScript(() => {
      window.__cameraAsks = [];
      const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (c) => { window.__cameraAsks.push(JSON.parse(JSON.stringify(c))); return gum(c); };
    });
    const page = await context.newPage();
    page.on('pageerror', (e) => check(false, `${phone.name}: page error ${e.message}`));
    page.on('dialog', (d) => d.accept());
    await page.goto(`${server.base}/www/`);
    await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 60000 });
    const tag = `${phone.name}px`;

    // Photos into two classes through their own inputs, then train by tapping.
    const cards = page.locator('.class-card');
    check((await cards.count()) === 4, `${tag}: four preset classes`);
    for (let c = 0; c < 4; c += 1) {
      const cls = ['glass', 'metal', 'paper', 'plastic'][c];
      await cards.nth(c).locator('input.file-input').setInputFiles([0, 1, 2, 3, 4].map((i) => photo(cls, i)));
    }
    await page.waitForFunction(() => window.sortwiseDebug.state.classes.every((c) => c.count === 5), null, { timeout: 60000 });
    await page.locator('#train-btn').tap();
    await page.waitForFunction(() => window.sortwiseDebug.state.hasModel && !window.sortwiseDebug.state.training, null, { timeout: 60000 });
    await page.locator('#train-section summary').first().tap();
    check(await page.locator('#train-section details').first().evaluate((d) => d.open), `${tag}: tapping "Advanced settings" opens it`);
    await page.locator('#test-input').setInputFiles(photo('glass', 9));
    await page.waitForFunction(() => !document.getElementById('test-label').hidden, null, { timeout: 30000 });

    const o = await page.evaluate(overflowing);
    check(o.scroll <= 1 && o.out.length === 0, `${tag}: horizontal overflow ${o.scroll}px: ${o.out.join(', ')}`);
    const bad = await page.evaluate(auditControls);
    check(bad.length === 0, `${tag}: controls not reachable by touch: ${JSON.stringify(bad)}`);
    log(`${tag}: overflow ${o.scroll}px, ${bad.length} unreachable controls`);

    // The test camera: rear first.
    await page.locator('#test-live').tap();
    const live = await page.waitForFunction(() => document.getElementById('test-video').videoWidth > 0, null, { timeout: 15000 }).then(() => true, () => false);
    const asks = await page.evaluate(() => window.__cameraAsks);
    check(live, `${tag}: the test camera plays`);
    check(asks.length >= 1 && JSON.stringify(asks[0].video.facingMode) === '{"exact":"environment"}', `${tag}: the test camera asks for the rear camera first: ${JSON.stringify(asks.map((a) => a.video.facingMode))}`);
    const liveShot = join(SHOTS, `phone-${phone.name}-live.png`);
    await page.screenshot({ path: liveShot });
    // docs/: the top of the page at one width, the test step with the live camera at the other.
    if (process.env.SORTWISE_UPDATE_SCREENSHOT === '1' && phone.name === '360') copyFileSync(liveShot, join(ROOT, 'docs/phone-360.png'));
    await page.locator('#test-live').tap();

    // Hold to record, with a finger.
    const label = await cards.nth(0).locator('.class-title').textContent();
    const before = (await page.evaluate(() => window.sortwiseDebug.state.classes))[0].count;
    await cards.nth(0).locator('button', { hasText: 'Webcam' }).tap();
    await page.waitForFunction(() => document.getElementById('camera-video').videoWidth > 0, null, { timeout: 15000 });
    await touchHold(page, '#camera-hold', 1300);
    await page.waitForTimeout(400);
    await page.evaluate(() => window.sortwiseDebug.idle());
    const mid = (await page.evaluate(() => window.sortwiseDebug.state.classes))[0].count;
    await page.waitForTimeout(800);
    await page.evaluate(() => window.sortwiseDebug.idle());
    const after = (await page.evaluate(() => window.sortwiseDebug.state.classes))[0].count;
    log(`${tag}: hold-to-record on "${label}": ${before} → ${mid} → ${after} photos`);
    check(mid - before >= 3, `${tag}: holding a finger for 1.3 s records frames (${mid - before})`);
    check(after === mid, `${tag}: recording stops when the finger lifts (${mid} → ${after})`);
    await page.locator('#camera-close').tap();

    await page.evaluate(() => window.scrollTo(0, 0));
    const shot = join(SHOTS, `phone-${phone.name}.png`);
    await page.screenshot({ path: shot });
    if (process.env.SORTWISE_UPDATE_SCREENSHOT === '1' && phone.name === '390') copyFileSync(shot, join(ROOT, 'docs/phone-390.png'));
    await context.close();
  }
} catch (e) {
  failures.push(e.message);
  console.error(e);
} finally {
  await browser.close();
  server.stop();
}
console.log(failures.length ? `phone: FAIL (${failures.length})` : 'phone: PASS');
process.exit(failures.length ? 1 : 0);
