#!/usr/bin/env node
// "Send predictions to a device", end to end in Chromium with the real engine
// (EfficientNet-Lite0, the CPU), the boards faked at the browser's interface (`navigator.serial`,
// `navigator.bluetooth`, shaped as Chromium's objects; www/device-out.js is all the page uses):
//  - USB: after the click the picked port is opened at 115200 baud, and the held-out photos
//    predicted in the Test step arrive as one line per change of class, `label,percent`, equal
//    to what the page showed (the same class twice sends one line);
//  - Bluetooth: a micro:bit's UART service gets the same lines in writes of at most 20 bytes;
//  - a board unplugged mid-stream (writes fail) is let go with a reason and the buttons come
//    back; closing the browser's chooser is no error; a browser without either API (Firefox,
//    Safari) gets disabled buttons and a note saying which browsers have them;
//  - the classify view a share link opens sends its predictions too;
//  - and, on the way, a photo dropped on the Test step is predicted, not added to a class.
//
//   node tests/e2e/device-out.mjs

import { chromium } from 'playwright-core';
import { zipSync } from 'fflate';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DATA, serveRepo } from './serve.mjs';

const T0 = Date.now();
const log = (...a) => console.log(`[device-out ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const failures = [];
const check = (cond, msg) => { if (!cond) { failures.push(msg); log(`FAIL: ${msg}`); } return cond; };
const files = (split, cls, n) => readdirSync(join(DATA, split, cls)).sort().slice(0, n)
  .map((f) => ({ name: f, mimeType: 'image/jpeg', buffer: readFileSync(join(DATA, split, cls, f)) }));

// The boards, in the page: every byte written is kept in window.__device; `failAfter` lines
// make the port's writes fail from then on (an unplugged cable); `cancel` rejects the chooser as
// Chromium does when the user closes it.
function fakeBoards({ failAfter = Infinity, cancel = false } = {}) {
  const dev = { opened: null, serial: [], ble: [], bleName: null, closed: 0, disconnected: 0 };
  window.__device = dev;
  const notFound = () => Object.assign(new Error('No port selected by the user.'), { name: 'NotFoundError' });
  const port = {
    async open(o) { dev.opened = o; },
    writable: {
      getWriter: () => ({
        async write(bytes) {
          if (dev.serial.length >= failAfter) throw new Error('The device has been lost.');
          dev.serial.push(new TextDecoder().decode(bytes));
        },
        releaseLock() {},
      }),
    },
    async close() { dev.closed += 1; },
  };
  Object.defineProperty(navigator, 'serial', { value: { requestPort: async () => { if (cancel) throw notFound(); return port; } }, configurable: true });
  const rx = { async writeValueWithResponse(b) { dev.ble.push(Array.from(new Uint8Array(b.buffer ?? b, b.byteOffset ?? 0, b.byteLength))); } };
  const device = {
    name: 'BBC micro:bit [tuvag]',
    gatt: {
      connect: async () => ({ getPrimaryService: async () => ({ getCharacteristic: async () => rx }) }),
      disconnect() { dev.disconnected += 1; },
    },
  };
  Object.defineProperty(navigator, 'bluetooth', { value: { requestDevice: async (o) => { dev.bleName = o.filters[0].namePrefix; return device; } }, configurable: true });
}

function noApis() {
  for (const k of ['serial', 'bluetooth']) Object.defineProperty(navigator, k, { value: undefined, configurable: true });
}

async function waitReady(page) {
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 240000, polling: 200 });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  if (ready !== '1') throw new Error(`the page did not start: ${await page.locator('#status-text').textContent()}`);
}
const state = (page) => page.evaluate(() => window.sortwiseDebug.state);

async function predict(page, file) {
  await page.evaluate(() => window.sortwiseDebug.clearPrediction());
  await page.setInputFiles('#test-input', file);
  await page.waitForFunction(() => window.sortwiseDebug.state.prediction || !document.getElementById('error').hidden, null, { timeout: 60000 });
  return (await state(page)).prediction;
}

/** What the page should have sent for `shown` predictions: a line per change of class. */
function expectedLines(shown) {
  const out = [];
  let last = null;
  for (const r of shown) {
    const label = r.unsure ? 'unsure' : r.label;
    if (label !== last) out.push(`${label},${Math.round(r.confidence * 100)}\n`);
    last = label;
  }
  return out;
}

/** Predicts each photo, waiting past the sender's interval (250 ms) so that each change is its own line. */
async function predictAll(page, photos) {
  const shown = [];
  for (const f of photos) {
    shown.push(await predict(page, f));
    await page.waitForTimeout(300);
  }
  return shown;
}

async function main() {
  const server = await serveRepo('/www/index.html');
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await context.newPage();
    page.on('pageerror', (e) => check(false, `page error ${e.message}`));
    await page.addInitScript(fakeBoards);
    await page.goto(`${server.base}/www/?device=cpu`);
    await waitReady(page);
    const zip = {};
    for (const c of ['glass', 'metal']) for (const f of files('train', c, 6)) zip[`set/${c}/${f.name}`] = new Uint8Array(f.buffer);
    await page.setInputFiles('#zip-input', { name: 'set.zip', mimeType: 'application/zip', buffer: Buffer.from(zipSync(zip)) });
    await page.waitForFunction(() => window.sortwiseDebug.state.classes.length === 2 && window.sortwiseDebug.state.classes.every((c) => c.count === 6), null, { timeout: 240000 });
    await page.click('#train-btn');
    await page.waitForFunction(() => window.sortwiseDebug.state.hasModel && !window.sortwiseDebug.state.training, null, { timeout: 300000 });
    log(`trained: ${(await state(page)).modelLabels.join(', ')}`);
    // A photo dropped on the Test step is predicted (ui/testing.js takes the drop), not added to a class.
    await page.evaluate(() => window.sortwiseDebug.clearPrediction());
    const dropped = files('val', 'metal', 1)[0];
    await page.evaluate(({ b64, name }) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type: 'image/jpeg' }));
      document.body.classList.add('dragging'); // as a drag over the page leaves it
      document.getElementById('test-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, { b64: dropped.buffer.toString('base64'), name: dropped.name });
    await page.waitForFunction(() => window.sortwiseDebug.state.prediction, null, { timeout: 60000 });
    const afterDrop = await page.evaluate(() => ({ classes: window.sortwiseDebug.state.classes, dragging: document.body.classList.contains('dragging'), img: document.getElementById('test-img').alt }));
    check(afterDrop.classes.every((c) => c.count === 6) && !afterDrop.dragging && afterDrop.img === dropped.name, `a photo dropped on the Test step: ${JSON.stringify(afterDrop)}`);
    // The buttons before any device: enabled, nothing sent, nothing said.
    const idle = await page.evaluate(() => ({ usb: document.getElementById('device-usb').disabled, ble: document.getElementById('device-ble').disabled, stop: document.getElementById('device-stop').hidden, text: document.getElementById('device-status').textContent, dev: window.__device }));
    check(!idle.usb && !idle.ble && idle.stop && idle.text === '' && idle.dev.opened === null, `before a click: ${JSON.stringify(idle)}`);

    // ---- USB ----
    const held = [...files('val', 'glass', 3), ...files('val', 'metal', 3), ...files('val', 'glass', 1)];
    // photos before the click are not sent
    await predict(page, held[0]);
    await page.click('#device-usb');
    await page.waitForFunction(() => !document.getElementById('device-stop').hidden);
    const usbShown = await predictAll(page, held);
    await page.waitForTimeout(300);
    const usb = await page.evaluate(() => ({ dev: window.__device, text: document.getElementById('device-status').textContent, st: window.sortwiseDebug.state.deviceOut }));
    const want = expectedLines(usbShown);
    log(`USB: opened ${JSON.stringify(usb.dev.opened)}; shown ${usbShown.map((r) => `${r.label} ${r.confidence.toFixed(3)}`).join(', ')}; sent ${JSON.stringify(usb.dev.serial)}; "${usb.text}"`);
    check(usb.dev.opened?.baudRate === 115200, `the port opened at ${JSON.stringify(usb.dev.opened)}`);
    check(want.length >= 3 && JSON.stringify(usb.dev.serial) === JSON.stringify(want), `USB lines ${JSON.stringify(usb.dev.serial)}, shown ${JSON.stringify(want)}`);
    check(usb.st.sent === want.length && /USB/.test(usb.text), `status: ${JSON.stringify(usb.st)} "${usb.text}"`);
    await page.click('#device-stop');
    await page.waitForFunction(() => document.getElementById('device-stop').hidden);
    const stopped = await page.evaluate(() => ({ closed: window.__device.closed, usb: document.getElementById('device-usb').disabled, text: document.getElementById('device-status').textContent }));
    check(stopped.closed === 1 && !stopped.usb && stopped.text === '', `after Disconnect: ${JSON.stringify(stopped)}`);
    await predict(page, held[3]);
    check((await page.evaluate(() => window.__device.serial.length)) === want.length, 'nothing is sent after Disconnect');

    // ---- Bluetooth (micro:bit UART) ----
    await page.click('#device-ble');
    await page.waitForFunction(() => !document.getElementById('device-stop').hidden);
    const bleShown = await predictAll(page, [held[0], held[4], held[1]]);
    await page.waitForTimeout(300);
    const ble = await page.evaluate(() => ({ dev: window.__device, text: document.getElementById('device-status').textContent }));
    const bleText = Buffer.from(ble.dev.ble.flat()).toString('utf8');
    log(`Bluetooth: "${ble.dev.bleName}", ${ble.dev.ble.length} writes (longest ${Math.max(...ble.dev.ble.map((w) => w.length))} bytes): ${JSON.stringify(bleText)}; "${ble.text}"`);
    check(ble.dev.bleName === 'BBC micro:bit' && ble.dev.ble.every((w) => w.length <= 20), `micro:bit writes: ${JSON.stringify(ble.dev.ble)}`);
    check(bleText === expectedLines(bleShown).join(''), `Bluetooth lines ${JSON.stringify(bleText)}, shown ${JSON.stringify(expectedLines(bleShown))}`);
    check(/micro:bit/.test(ble.text), `status "${ble.text}"`);
    await page.click('#device-stop');
    await page.waitForFunction(() => document.getElementById('device-stop').hidden);
    check((await page.evaluate(() => window.__device.disconnected)) === 1, 'Disconnect lets the micro:bit go');

    // ---- the chooser closed; a cable unplugged mid-stream ----
    const other = await context.newPage();
    other.on('pageerror', (e) => check(false, `page error (unplugged) ${e.message}`));
    await other.addInitScript(fakeBoards, { cancel: true });
    await page.close(); // one tab owns the project: the next one takes it over
    await other.goto(`${server.base}/www/?device=cpu`);
    await waitReady(other);
    await other.click('#device-usb');
    await other.waitForTimeout(300);
    const cancelled = await other.evaluate(() => ({ text: document.getElementById('device-status').textContent, stop: document.getElementById('device-stop').hidden, error: document.getElementById('error').hidden }));
    check(cancelled.text === '' && cancelled.stop && cancelled.error, `closing the chooser is no error: ${JSON.stringify(cancelled)}`);
    await other.evaluate(() => {
      const dev = window.__device;
      const port = { async open() {}, writable: { getWriter: () => ({ async write(b) { if (dev.serial.length >= 1) throw new Error('The device has been lost.'); dev.serial.push(new TextDecoder().decode(b)); }, releaseLock() {} }) }, async close() { dev.closed += 1; } };
      Object.defineProperty(navigator, 'serial', { value: { requestPort: async () => port }, configurable: true });
    });
    await other.click('#device-usb');
    await other.waitForFunction(() => !document.getElementById('device-stop').hidden);
    await predictAll(other, [held[0], held[4], held[1]]);
    await other.waitForFunction(() => document.getElementById('device-stop').hidden, null, { timeout: 10000 }).catch(() => {});
    const lost = await other.evaluate(() => ({ serial: window.__device.serial, closed: window.__device.closed, text: document.getElementById('device-status').textContent, usb: document.getElementById('device-usb').disabled, stop: document.getElementById('device-stop').hidden }));
    log(`unplugged after one line: ${JSON.stringify(lost)}`);
    check(lost.serial.length === 1 && lost.closed === 1 && /device stopped: The device has been lost/.test(lost.text) && !lost.usb && lost.stop, `a board unplugged: ${JSON.stringify(lost)}`);

    // ---- the classify view of a share link sends too ----
    await other.click('#share-model');
    await other.waitForFunction(() => document.getElementById('share-dialog').open && document.body.dataset.share, null, { timeout: 60000 });
    const link = (await state(other)).share.link;
    const linked = await context.newPage();
    linked.on('pageerror', (e) => check(false, `page error (link) ${e.message}`));
    await linked.addInitScript(fakeBoards);
    await linked.goto(link.replace('/www/#', '/www/?device=cpu#'));
    await waitReady(linked);
    check((await state(linked)).mode === 'shared', 'the link opens the classify view');
    await linked.click('#device-usb');
    await linked.waitForFunction(() => !document.getElementById('device-stop').hidden);
    const linkShown = await predictAll(linked, [held[4]]);
    await linked.waitForTimeout(300);
    const linkLines = await linked.evaluate(() => window.__device.serial);
    log(`classify view of the link: sent ${JSON.stringify(linkLines)}`);
    check(JSON.stringify(linkLines) === JSON.stringify(expectedLines(linkShown)), `the link's view sent ${JSON.stringify(linkLines)}`);

    // ---- a browser without Web Serial or Web Bluetooth ----
    const bare = await context.newPage();
    await bare.addInitScript(noApis);
    await bare.goto(link.replace('/www/#', '/www/?device=cpu#'));
    await waitReady(bare);
    const none = await bare.evaluate(() => ({ usb: document.getElementById('device-usb').disabled, ble: document.getElementById('device-ble').disabled, text: document.getElementById('device-status').textContent }));
    check(none.usb && none.ble && /Chrome or Edge/.test(none.text), `without the APIs: ${JSON.stringify(none)}`);
  } catch (e) {
    failures.push(e.message);
    log('FAILED:', e.message);
  } finally {
    await browser.close();
    server.stop();
  }
  if (failures.length) {
    log(`${failures.length} failure(s)`);
    process.exit(1);
  }
  log('ok');
}

main();
