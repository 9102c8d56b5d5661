#!/usr/bin/env node
// Collecting from phones (issue 33) with the phone in the other engines classrooms have: the
// teacher's page in Chromium (playwright-core, as tests/e2e/collect.mjs), the phone's collect view
// (collect.html from the panel's link) in Firefox ESR (puppeteer-core over WebDriver BiDi, fake
// camera by prefs) and then in WebKitGTK (selenium-webdriver, WebKitWebDriver, MiniBrowser under
// xvfb-run, with MiniBrowser's --enable-webrtc, --enable-media-stream and
// --enable-mock-capture-devices settings).
//
// Per engine, where it has WebRTC: the phone opens the link, names itself, taps "Connect"; its
// answer QR code (an element screenshot) is read by the teacher's page through "Read a code from
// a photo"; the phone says connected, the teacher's roster lists it connected; photos taken with
// the engine's fake camera (real clicks on the shutter) arrive in the teacher's classes with the
// contributor in the roster, and the phone marks them sent.
// Where an engine has no RTCPeerConnection, that is recorded with the proof (the page's
// `typeof RTCPeerConnection` with WebRTC switched on in the engine's settings, and whether the
// engine's library was built with a WebRTC backend), and the phone's other way is checked: the
// live button is not offered, photos from its camera go as a contribution file, which the teacher
// drops on the page.
//
// Writes artifacts/collect-engines.json (engine × pairing, camera, photos, timings, limitation).
// An engine fails the run unless it passed or its limitation is a proven platform one.
//
//   node tests/e2e/collect-engines.mjs [firefox] [webkit]      (default: both)

import { chromium } from 'playwright-core';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Failure, keepPageLog, launchFirefox, launchWebKit, sleep, waitForEvery } from './drivers.mjs';
import { ROOT, serveRepo } from './serve.mjs';
import { openTeacher } from './collect-teacher.mjs';

const T0 = Date.now();
const log = (...a) => console.log(`[collect-engines ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const secs = (t) => Math.round((Date.now() - t) / 100) / 10;
const check = (cond, msg) => { if (!cond) throw new Failure(msg); log(`ok: ${msg}`); };
const tmp = mkdtempSync(join(tmpdir(), 'sortwise-collect-engines-'));
const SHOTS = join(ROOT, 'artifacts/screenshots');
mkdirSync(SHOTS, { recursive: true });
const LIBWEBKIT = '/usr/lib/x86_64-linux-gnu/libwebkit2gtk-4.1.so.0';

// ---- phone drivers: open, evaluate, click, type, element screenshot, page screenshot, close ----

async function firefoxPhone(pageLog) {
  // Firefox's fake camera (a generated test pattern) and no permission prompt.
  const browser = await launchFirefox({ 'media.navigator.streams.fake': true, 'media.navigator.permission.disabled': true });
  const page = await browser.newPage();
  await page.setViewport({ width: 360, height: 740 });
  keepPageLog(page, pageLog);
  return {
    version: await browser.version(),
    open: (url) => page.goto(url),
    eval: (fn, arg) => page.evaluate(fn, arg ?? null),
    click: (sel) => page.click(sel),
    async type(sel, text) { await page.type(sel, text); await page.keyboard.press('Tab'); },
    shot: async (sel) => Buffer.from(await (await page.$(sel)).screenshot()),
    pageShot: (path) => page.screenshot({ path }),
    close: () => browser.close(),
  };
}

async function webkitPhone(pageLog) {
  const { By, Key } = await import('selenium-webdriver');
  const w = await launchWebKit({
    // WebKitSettings as MiniBrowser's options: WebRTC, getUserMedia, and mock capture devices
    // (a generated camera; automation mode grants the permission).
    args: ['--enable-webrtc=true', '--enable-media-stream=true', '--enable-mock-capture-devices=true'],
    timeouts: { script: 60000, pageLoad: 60000 },
  });
  const { driver } = w;
  const caps2 = await driver.getCapabilities();
  const d = {
    version: `${caps2.get('browserName')} ${caps2.get('browserVersion')}`,
    open: w.open,
    eval: w.eval,
    click: async (sel) => (await driver.findElement(By.css(sel))).click(),
    type: async (sel, text) => (await driver.findElement(By.css(sel))).sendKeys(text, Key.TAB),
    shot: async (sel) => Buffer.from(await (await driver.findElement(By.css(sel))).takeScreenshot(), 'base64'),
    pageShot: w.screenshot,
    close: w.close,
  };
  // WebDriver classic has no console log: the page's errors are read from the page when shown.
  d.pageLog = pageLog;
  return d;
}

const PHONES = { firefox: firefoxPhone, webkit: webkitPhone };

/**
 * Clicks a class chip until the view says it is the active class: the chips are drawn anew on
 * every change (a photo acknowledged re-renders them), so the element found may be replaced
 * before the click lands (puppeteer: "Node is detached", selenium: a stale element).
 */
async function pickClass(d, label) {
  for (let i = 0; ; i += 1) {
    try {
      await d.click(`#collect-chips [data-label="${label}"]`);
    } catch (e) {
      if (i >= 5 || !/detached|stale|not attached/i.test(e.message)) throw e;
      log(`the chip "${label}" was drawn anew under the click (${e.message.split('\n')[0]}): again`);
    }
    if (await d.eval((l) => window.sortwiseCollect.state.active === l, label)) return;
    if (i >= 5) throw new Failure(`clicking the class chip "${label}" did not make it the active class`);
    await sleep(100);
  }
}

/**
 * Whether this WebKitGTK library was built with a WebRTC backend: GstWebRTC links libgstwebrtc
 * and makes `webrtcbin` elements; libwebrtc is linked in whole, with its `WebRTC-…` field trials.
 */
function webkitBuild() {
  const ldd = spawnSync('ldd', [LIBWEBKIT], { encoding: 'utf8' });
  const lib = readFileSync(LIBWEBKIT);
  return {
    library: realpathSync(LIBWEBKIT),
    linksGstWebRTC: /libgstwebrtc/.test(ldd.stdout),
    namesWebrtcbin: lib.includes('webrtcbin'),
    hasLibWebRTCFieldTrials: lib.includes('WebRTC-'),
  };
}

const waitFor = waitForEvery(200, { timeout: 30000 });

// ---- in-page steps (self-contained: serialised for WebDriver) ----

const phoneEnv = () => ({
  ready: document.body.dataset.ready,
  rtcPeerConnection: typeof RTCPeerConnection,
  rtcDataChannel: typeof RTCDataChannel,
  getUserMedia: typeof navigator.mediaDevices?.getUserMedia,
  userAgent: navigator.userAgent,
  devicePixelRatio: devicePixelRatio,
  liveButton: !document.getElementById('collect-live').hidden,
  state: window.sortwiseCollect.state,
  error: document.getElementById('collect-error').hidden ? null : document.getElementById('collect-error').textContent,
});
const phoneSays = () => ({
  live: window.sortwiseCollect.state.live,
  liveText: document.getElementById('collect-live-state').textContent,
  status: document.getElementById('status-text').textContent,
  error: document.getElementById('collect-error').hidden ? null : document.getElementById('collect-error').textContent,
});
const videoInputs = async () => (await navigator.mediaDevices.enumerateDevices()).filter((x) => x.kind === 'videoinput').length;
const captureZips = () => {
  window.__zips = [];
  const create = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (blob) => {
    if (blob instanceof Blob && blob.type === 'application/zip') window.__zips.push(blob);
    return create(blob);
  };
  return true;
};
const zipBase64 = async () => {
  const b = window.__zips?.[0];
  if (!b) return null;
  const u = new Uint8Array(await b.arrayBuffer());
  let s = '';
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
  return btoa(s);
};

// ---- the teacher (Chromium) ----

async function teacherPage(server) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log('teacher page error:', e.message));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') log(`teacher console ${m.type()}:`, m.text()); });
  await openTeacher(page, server.base, undefined, { timeout: 120000 });
  return { browser, page, version: browser.version() };
}

const counts = (teacher) => teacher.evaluate(() => Object.fromEntries(window.sortwiseDebug.state.classes.map((c) => [c.label, c.count])));

/** The link with a fresh offer (the teacher's page makes one per phone). */
async function freshLink(teacher) {
  await teacher.waitForFunction(() => window.sortwiseDebug.state.collect?.offer && window.sortwiseDebug.state.collect.link, null, { timeout: 30000 });
  return teacher.evaluate(() => window.sortwiseDebug.state.collect.link);
}

// ---- one engine as the phone ----

async function phoneFlow(name, teacher, pageLog, r) {
  const link = await freshLink(teacher);
  const session = await teacher.evaluate(() => window.sortwiseDebug.state.collect.session);
  let t = Date.now();
  const d = await PHONES[name](pageLog);
  r.version = d.version;
  r.timings.launch = secs(t);
  try {
    t = Date.now();
    await d.open(link);
    await waitFor(d, () => document.body?.dataset.ready === '1' || document.body?.dataset.ready === 'error', null, { what: 'the collect view to start' });
    r.timings.open = secs(t);
    const env0 = await d.eval(phoneEnv);
    check(env0.ready === '1', `${name}: the collect view starts${env0.error ? `: ${env0.error}` : ''}`);
    check(JSON.stringify(env0.state.labels) === '["glass","paper"]' && env0.state.session === session, `${name}: the phone has the project's classes and session: ${JSON.stringify(env0.state.labels)} ${env0.state.session}`);
    Object.assign(r, { userAgent: env0.userAgent, rtcPeerConnection: env0.rtcPeerConnection, rtcDataChannel: env0.rtcDataChannel, getUserMedia: env0.getUserMedia });
    log(`${name}: ${env0.userAgent}; RTCPeerConnection ${env0.rtcPeerConnection}, getUserMedia ${env0.getUserMedia}`);

    // ---- the camera (the engine's fake one) ----
    t = Date.now();
    const cam = await waitFor(d, () => window.sortwiseCollect.state.camera || (!document.getElementById('collect-error').hidden && document.getElementById('collect-error').textContent), null, { timeout: 15000, what: 'the camera' })
      .catch(() => 'the camera did not start in 15 s');
    r.camera = { running: cam === true, seconds: secs(t) };
    if (cam !== true) {
      r.camera.error = String(cam);
      r.camera.videoInputs = await d.eval(videoInputs).catch((e) => `enumerateDevices failed: ${e.message}`);
      log(`${name}: the camera did not start: ${cam} (video inputs: ${r.camera.videoInputs})`);
    } else {
      r.camera.size = await waitFor(d, () => { const v = document.getElementById('collect-video'); return v.videoWidth && `${v.videoWidth}x${v.videoHeight}`; }, null, { timeout: 5000, what: 'the camera\'s first frame' });
      r.camera.label = await d.eval(() => document.getElementById('collect-video').srcObject?.getVideoTracks()[0]?.label ?? null);
      log(`${name}: the fake camera "${r.camera.label}" runs (${r.camera.size}) ${r.camera.seconds} s after the view started`);
    }
    await d.type('#collect-name', name === 'firefox' ? 'Fox' : 'Kit');
    const who = name === 'firefox' ? 'Fox' : 'Kit';

    if (env0.rtcPeerConnection !== 'function') {
      // ---- no WebRTC in this engine: the phone offers the file only ----
      r.pairing = { ok: false, reason: `typeof RTCPeerConnection is "${env0.rtcPeerConnection}" with WebRTC enabled in the engine's settings` };
      // A platform limitation only where the engine's build proves it: WebKitGTK's WebRTC is
      // GstWebRTC or libwebrtc; a build with either and no RTCPeerConnection is a setting this
      // test failed to pass, not the platform.
      const build = name === 'webkit' ? webkitBuild() : null;
      if (!build || build.linksGstWebRTC || build.namesWebrtcbin || build.hasLibWebRTCFieldTrials) {
        throw new Failure(`${name}: ${r.pairing.reason}, and no build evidence that this engine lacks WebRTC: ${JSON.stringify(build)}`);
      }
      r.build = build;
      r.pairing.reason += `; ${build.library} has no WebRTC backend (it links no libgstwebrtc, names no webrtcbin, holds no libwebrtc field trials)`;
      log(`${name}: NO WEBRTC: ${r.pairing.reason}`);
      // "Connect to the teacher's screen" is not offered where it cannot work (collect/main.js).
      r.liveButton = env0.liveButton;
      check(!env0.liveButton, `${name}: without RTCPeerConnection the phone does not offer the live connection, only the file`);
      if (!r.camera.running) throw new Failure(`${name}: no WebRTC and no camera: nothing to send`);
      // photos by file: one of each class, the zip captured as the download is made
      const before = await counts(teacher);
      await d.eval(captureZips);
      for (const label of ['glass', 'paper']) {
        await pickClass(d, label);
        await d.click('#collect-shoot');
        await waitFor(d, (n) => window.sortwiseCollect.state.photos.length === n, label === 'glass' ? 1 : 2, { what: 'a photo' });
      }
      await d.click('#collect-file');
      await waitFor(d, () => window.sortwiseCollect.state.photos.every((p) => p.sent), null, { what: 'the photos marked sent' });
      const b64 = await waitFor(d, zipBase64, null, { what: 'the contribution file' });
      t = Date.now();
      await teacher.evaluate(([data]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0))], 'from-webkit.zip', { type: 'application/zip' }));
        document.getElementById('data-h').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, [b64]);
      await teacher.waitForFunction(([g, p]) => {
        const c = Object.fromEntries(window.sortwiseDebug.state.classes.map((x) => [x.label, x.count]));
        return c.glass === g && c.paper === p;
      }, [before.glass + 1, before.paper + 1], { timeout: 30000 });
      const row = await teacher.evaluate((n) => window.sortwiseDebug.state.collect.roster.find((x) => x.name === n), who);
      const sizes = await d.eval(() => window.sortwiseCollect.state.photos.map((p) => p.bytes));
      check(row && row.total === 2 && row.perClass.glass === 1 && row.perClass.paper === 1 && row.connected == null,
        `${name}: 2 photos from its camera (${sizes.join(', ')} bytes) arrive as a contribution file (${Math.round(b64.length * 0.75)} bytes) dropped on the teacher's page; the roster: ${JSON.stringify(row)}`);
      r.photos = { way: 'file', taken: 2, arrived: 2, bytes: sizes, dropToMerged: secs(t) };
      await d.pageShot(join(SHOTS, `collect-phone-${name}.png`)).catch(() => {});
      r.limitation = `no live connection: ${r.pairing.reason}`;
      r.pass = true;
      return;
    }

    // ---- live: pairing through the QR codes ----
    t = Date.now();
    await d.click('#collect-live');
    await waitFor(d, () => !document.getElementById('collect-answer').hidden || window.sortwiseCollect.state.live === 'collectLiveLost', null, { what: 'the answer code' });
    r.timings.answer = secs(t);
    const said = await d.eval(phoneSays);
    if (said.live === 'collectLiveLost') throw new Failure(`${name}: the phone could not answer the offer: ${JSON.stringify(said)}`);
    const png = await d.shot('#collect-answer-qr');
    const shot = join(tmp, `answer-${name}.png`);
    writeFileSync(shot, png);
    await d.pageShot(join(SHOTS, `collect-phone-${name}.png`)).catch(() => {});
    log(`${name}: the answer code shown ${r.timings.answer} s after Connect (${png.length}-byte screenshot)`);
    t = Date.now();
    await teacher.setInputFiles('#collect-scan-file', shot);
    try {
      await waitFor(d, () => window.sortwiseCollect.state.live === 'collectLiveOn' || window.sortwiseCollect.state.live === 'collectLiveLost', null, { timeout: 30000, what: 'the phone to connect' });
    } catch (e) {
      throw new Failure(`${e.message}: phone ${JSON.stringify(await d.eval(phoneSays).catch(() => null))}, teacher "${await teacher.locator('#collect-scan-state').textContent()}"`);
    }
    const after = await d.eval(phoneSays);
    if (after.live !== 'collectLiveOn') {
      r.pairing = { ok: false, reason: after.liveText, teacher: await teacher.locator('#collect-scan-state').textContent() };
      throw new Failure(`${name}: the connection failed: phone "${after.liveText}", teacher "${r.pairing.teacher}"`);
    }
    await teacher.waitForFunction((n) => window.sortwiseDebug.state.collect.roster.some((x) => x.name === n && x.connected === true && x.via), who, { timeout: 60000 });
    const row0 = await teacher.evaluate((n) => window.sortwiseDebug.state.collect.roster.find((x) => x.name === n), who);
    r.pairing = { ok: true, scanToConnected: secs(t), via: row0.via };
    r.timings.pair = r.pairing.scanToConnected;
    check(true, `${name}: paired through the QR codes: scan to connected in ${r.pairing.scanToConnected} s, the roster says ${JSON.stringify(row0)}`);

    // ---- photos: two of each class, shutter clicked ----
    if (!r.camera.running) throw new Failure(`${name}: paired, but the fake camera did not start (${r.camera.error}; video inputs ${r.camera.videoInputs})`);
    const before = await counts(teacher);
    t = Date.now();
    let n = 0;
    for (const label of ['glass', 'paper']) {
      await pickClass(d, label);
      for (let i = 0; i < 2; i += 1) {
        await d.click('#collect-shoot');
        n += 1;
        await waitFor(d, (k) => window.sortwiseCollect.state.photos.length === k, n, { what: `photo ${n}` });
      }
    }
    await teacher.waitForFunction(([g, p]) => {
      const c = Object.fromEntries(window.sortwiseDebug.state.classes.map((x) => [x.label, x.count]));
      return c.glass === g && c.paper === p;
    }, [before.glass + 2, before.paper + 2], { timeout: 30000 })
      .catch(async (e) => { throw new Failure(`${name}: the photos did not arrive: teacher ${JSON.stringify(await counts(teacher))}, phone ${JSON.stringify(await d.eval(phoneSays))} (${e.message.split('\n')[0]})`); });
    r.photos = { way: 'live', taken: 4, arrived: 4, takeToArrived: secs(t) };
    await waitFor(d, () => window.sortwiseCollect.state.photos.every((p) => p.sent), null, { timeout: 60000, what: 'the phone to mark its photos sent' });
    const sizes = await d.eval(() => window.sortwiseCollect.state.photos.map((p) => p.bytes));
    r.photos.bytes = [Math.min(...sizes), Math.max(...sizes)];
    const row = await teacher.evaluate((k) => window.sortwiseDebug.state.collect.roster.find((x) => x.name === k), who);
    check(row.total === 4 && row.perClass.glass === 2 && row.perClass.paper === 2 && row.connected === true,
      `${name}: 4 photos (${r.photos.bytes[0]}-${r.photos.bytes[1]} bytes) arrive live in ${r.photos.takeToArrived} s, marked sent on the phone; the roster: ${JSON.stringify(row)}`);
    const provenance = await teacher.evaluate((k) => window.sortwiseDebug.records().images.filter((x) => x.from?.name === k).length, who);
    check(provenance === 4, `${name}: the teacher's records name the sender of its ${provenance} photos`);
    r.pass = true;
  } finally {
    await d.close().catch(() => {});
  }
}

// ---- main ----

const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(PHONES);
for (const w of wanted) if (!PHONES[w]) { console.error(`unknown engine ${w}`); process.exit(2); }
const server = await serveRepo('/www/index.html');
const results = [];
let teacher = null;
let failed = false;
try {
  let t = Date.now();
  teacher = await teacherPage(server);
  log(`teacher: Chromium ${teacher.version}, two classes, collect panel open (${secs(t)} s)`);
  for (const name of wanted) {
    const pageLog = [];
    t = Date.now();
    const r = { engine: name, pass: false, limitation: null, timings: {} };
    results.push(r);
    try {
      await phoneFlow(name, teacher.page, pageLog, r);
      r.seconds = secs(t);
      log(`${name}: PASS${r.limitation ? ` with a proven platform limitation: ${r.limitation}` : ''} (${r.seconds} s)`);
    } catch (e) {
      failed = true;
      Object.assign(r, { pass: false, error: e.message, seconds: secs(t) });
      log(`${name}: FAIL: ${e.message}`);
      if (!(e instanceof Failure)) console.error(e);
      if (pageLog.length) log(`${name}: the page's last console lines:\n  ${pageLog.slice(-20).join('\n  ')}`);
    }
  }
} catch (e) {
  failed = true;
  log('ERROR', e.stack || e);
} finally {
  await teacher?.browser.close().catch(() => {});
  server.stop();
  rmSync(tmp, { recursive: true, force: true });
}
mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
writeFileSync(join(ROOT, 'artifacts/collect-engines.json'), `${JSON.stringify({ teacher: `Chromium ${teacher?.version ?? '?'}`, seconds: secs(T0), engines: results }, null, 2)}\n`);
log(`${results.filter((r) => r.pass).length} of ${wanted.length} engines passed; artifacts/collect-engines.json`);
process.exit(failed ? 1 : 0);
