#!/usr/bin/env node
// The static site `./run dist` makes, tested as hosted (issue 18): dist/ served under
// /some/sub/path/ by a plain static server that sends no special headers
// (`python3 -m http.server` from a parent folder, as GitHub Pages or a school's web server), in
// headless Chromium. It checks:
//  - the page starts and www/sw.js isolates it with its one reload: cross-origin isolated, the
//    threaded pkg-cpu-relaxed/ (Chromium has relaxed SIMD) on more than one thread; the responses sw.js hands out carry COOP/COEP,
//    the CSP (with frame-ancestors) and nosniff; no CSP violation;
//  - installable: DevTools' Page.getInstallabilityErrors reports none, in English and in Chinese
//    (the page switches to manifest.zh-CN.json, whose name is Chinese);
//  - a zip of class folders (trashnet-mini photos) makes the classes and trains; a held-out photo
//    is predicted; the exported model's `producer` names the package.json version;
//  - the installed app (start_url ./?launch=app) opens on the Test step when there is a model;
//  - the package's example page (dist/example/) trains and predicts with the package;
//  - loadClassifier: the p5.js example (dist/example/p5/) classifies the fake webcam with the
//    page's share link; the exported .sortwise file predicts the held-out photos as the page did,
//    the link the same classes, and what is not a classifier is refused with a reason;
//  - the Scratch extension (dist/scratch/sortwise.js) under a stand-in of TurboWarp's unsandboxed
//    extension API: its blocks classify camera frames as loadClassifier does, and keep a
//    classifier when a bad link is loaded after it; loaded from another origin (a stand-in
//    editor page, dist/ served with CORS), it answers the same, its worker started from a blob:;
//    inside Scratch's own VM (npm scratch-vm, tests/e2e/scratch-vm.mjs) on that editor origin, a
//    project using every block, run by the VM's interpreter, reports the same labels and
//    confidences, and its "when label becomes" hat starts each time the label becomes the class;
//  - the second visit works offline: the server is stopped, the page reloads with its project,
//    model and threads, and predicts;
//  - every request stays on the origin and under the sub-path (every URL in dist/ is relative);
//  - the typed example (examples/typed) type-checks against the package's package.json exports
//    and .d.ts files, which hold no `any`.
//
//   ./run dist && node tests/e2e/dist.mjs        (SORTWISE_DIST=DIR for another folder)

import { zipSync } from 'fflate';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_LAUNCH, DATA, ROOT, freePort } from './serve.mjs';
import { npmPackage, SCRATCH_BLOCKS, SCRATCH_VM, scratchVmBundle } from './scratch-vm.mjs';

const DIST = resolve(process.env.SORTWISE_DIST || join(ROOT, 'dist'));
const SUB = '/some/sub/path/';
const SHOTS = join(ROOT, 'artifacts/screenshots');
mkdirSync(SHOTS, { recursive: true });
const PER_CLASS = 8;
const T0 = Date.now();
const log = (...a) => console.log(`[dist ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
class Failure extends Error {}
const check = (c, m) => { if (!c) throw new Failure(m); };

const photos = (split, cls, n) => readdirSync(join(DATA, split, cls)).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, n)
  .map((name) => ({ name, mimeType: 'image/jpeg', buffer: readFileSync(join(DATA, split, cls, name)) }));

for (const f of ['index.html', 'sw.js', 'package.json', 'weights/manifest.json', 'pkg/sortwise_bg.wasm', 'pkg-cpu/sortwise_bg.wasm', 'pkg-cpu-relaxed/sortwise_bg.wasm', 'example/index.html']) {
  if (!existsSync(join(DIST, f))) { console.log(`[dist] ${DIST}/${f} is missing: run ./run dist first`); process.exit(1); }
}
const VERSION = JSON.parse(readFileSync(join(DIST, 'package.json'), 'utf8')).version;

// The typed example against the package as an app would install it: node_modules/sortwise -> dist.
function typecheckPackage() {
  const dir = mkdtempSync(join(tmpdir(), 'sortwise-typed-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(DIST, join(dir, 'node_modules/sortwise'));
    copyFileSync(join(ROOT, 'examples/typed/sortwise-example.ts'), join(dir, 'sortwise-example.ts'));
    const cfg = JSON.parse(readFileSync(join(ROOT, 'examples/typed/tsconfig.json'), 'utf8'));
    delete cfg.compilerOptions.paths; // resolved through the package's `exports` instead
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(cfg));
    const r = spawnSync(join(ROOT, 'node_modules/.bin/tsc'), ['--noEmit', '-p', dir], { encoding: 'utf8' });
    check(r.status === 0, `tsc on the typed example against ${DIST}'s package failed:\n${r.stdout}${r.stderr}`);
    for (const f of readdirSync(join(DIST, 'engine')).filter((n) => n.endsWith('.d.ts'))) {
      const hits = readFileSync(join(DIST, 'engine', f), 'utf8').split('\n').filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l) && /[:<|,(]\s*any\b|\bany\[\]/.test(l));
      check(hits.length === 0, `${f} uses any: ${hits.join(' | ')}`);
    }
    log('typed example: tsc --noEmit passes against the package (exports + .d.ts), no `any`');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// dist/ at /some/sub/path/ of a plain static server.
const parent = mkdtempSync(join(tmpdir(), 'sortwise-host-'));
const profile = mkdtempSync(join(tmpdir(), 'sortwise-profile-'));
mkdirSync(join(parent, 'some/sub'), { recursive: true });
symlinkSync(DIST, join(parent, 'some/sub/path'));
const port = await freePort();
const origin = `http://127.0.0.1:${port}`;
const base = origin + SUB;
let server = null;
async function startServer() {
  server = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', parent], { stdio: 'ignore' });
  for (let i = 0; i < 100; i += 1) {
    try { if ((await fetch(base)).ok) return; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Failure('python3 -m http.server did not start');
}
function stopServer() {
  if (!server) return Promise.resolve();
  const s = server;
  server = null;
  return new Promise((r) => { s.once('exit', r); s.kill(); });
}

async function waitReady(page, timeout = 300000) {
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout, polling: 200 });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  if (ready !== '1') throw new Failure(`the page did not start: ${await page.locator('#status-text').textContent()} ${await page.locator('#error-text').textContent()}`);
}
const state = (page) => page.evaluate(() => window.sortwiseDebug.state);
const errorText = (page) => page.evaluate(() => (document.getElementById('error').hidden ? '' : document.getElementById('error-text').textContent));
async function idle(page) {
  await page.waitForFunction(() => document.getElementById('embed-progress').hidden, null, { timeout: 300000, polling: 200 });
  await page.evaluate(() => window.sortwiseDebug.idle());
}
async function installability(cdp) {
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  const { url, data, errors } = await cdp.send('Page.getAppManifest');
  return { errors: installabilityErrors.map((e) => e.errorId + (e.errorArguments?.length ? `(${e.errorArguments.map((a) => a.value).join(',')})` : '')), url, manifest: data ? JSON.parse(data) : null, parseErrors: errors };
}
async function predict(page, file) {
  // Emptied first, so that the label read is this photo's and not the previous one's.
  await page.evaluate(() => { const l = document.getElementById('test-label'); l.hidden = true; l.replaceChildren(); });
  await page.setInputFiles('#test-input', file);
  await page.waitForFunction(() => document.querySelector('#test-label .pred-label') || !document.getElementById('error').hidden, null, { timeout: 120000 });
  check(!(await errorText(page)), `prediction failed: ${await errorText(page)}`);
  return (await page.locator('#test-label').textContent()).trim();
}

/** In a page: `window.cameraFrame(base64 JPEG)`, the photo as a 480×360 frame of Scratch's camera (ImageData). */
function installCameraFrame() {
  window.cameraFrame = async (b64) => {
    const img = new Image();
    img.src = URL.createObjectURL(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/jpeg' }));
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = 480;
    canvas.height = 360;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0, 480, 360);
    return ctx.getImageData(0, 0, 480, 360);
  };
}

/**
 * In a page: the Scratch extension at `extUrl`, loaded as TurboWarp loads an unsandboxed one (a
 * <script> by URL with the global Scratch API), under a stand-in of that API whose camera
 * (Scratch's video provider) hands out `heldPhotos` as 480×360 frames; the blocks' answers.
 */
async function scratchInPage({ heldPhotos, link, extUrl }) {
  let frame = null;
  let enabled = 0;
  const registered = new Promise((resolve) => {
    window.Scratch = {
      ArgumentType: { STRING: 'string', NUMBER: 'number' },
      BlockType: { COMMAND: 'command', REPORTER: 'reporter', HAT: 'hat', BOOLEAN: 'Boolean' },
      extensions: { unsandboxed: true, register: resolve },
      vm: { runtime: { ioDevices: { video: {
        get videoReady() { return enabled > 0; },
        enableVideo() { enabled += 1; return Promise.resolve(); },
        getFrame({ format, dimensions, mirror }) { return format === 'image-data' && dimensions.join() === '480,360' && mirror === false ? frame : null; },
      } } } },
    };
  });
  const script = document.createElement('script');
  script.src = extUrl;
  document.body.append(script);
  const ext = await registered;
  const info = ext.getInfo();
  const before = { label: ext.label(), menu: ext.classMenu(), confidence: ext.confidenceOf({ CLASS: 'glass' }) };
  await ext.classifyCamera(); // before any classifier: says so, and does not throw
  const early = ext.problem();
  await ext.loadClassifier({ LINK: link });
  // the same link through the package, where the page has it (the p5 example)
  const direct = window.sortwiseExample?.classifier;
  const out = [];
  for (const b64 of heldPhotos) {
    frame = await window.cameraFrame(b64);
    await ext.classifyCamera();
    const label = ext.label();
    const other = ext.classMenu().find((l) => l !== label && l !== 'unsure');
    out.push({
      label, glass: ext.confidenceOf({ CLASS: 'glass' }), metal: ext.confidenceOf({ CLASS: 'metal' }),
      hat: ext.whenLabelBecomes({ CLASS: label }), hatOther: ext.whenLabelBecomes({ CLASS: other }),
      direct: direct ? await direct.classify(frame) : null,
    });
  }
  await ext.loadClassifier({ LINK: 'https://example.invalid/#m=!!' });
  return { id: info.id, opcodes: info.blocks.map((b) => `${b.blockType}:${b.opcode}`), before, early, out, menu: ext.classMenu(), problem: ext.problem(), enabled, stillLabel: ext.label() };
}

/**
 * In a page that has Scratch's own virtual machine (npm scratch-vm's browser bundle, the global
 * `VirtualMachine`): the extension at `extUrl` registered with it as TurboWarp registers an
 * unsandboxed extension (`extensionManager._registerInternalExtension`, then marked loaded), and a
 * project whose scripts use every block, run by the VM's own interpreter: the green flag loads
 * `link` and classifies the camera; for each further photo a broadcast classifies again; a "when
 * label becomes [glass]" hat (edge-activated, run by the VM each frame) counts its starts. The
 * camera is a video provider (the interface scratch-gui's implements) handing out `heldPhotos`
 * as 480×360 frames. Returns the VM's variables after each photo and the blocks' definitions as
 * the VM made them for scratch-blocks.
 */
async function scratchInVm({ heldPhotos, link, extUrl }) {
  let frame = null;
  let enabled = 0;
  const vm = new window.VirtualMachine();
  vm.setVideoProvider({
    enableVideo() { enabled += 1; return Promise.resolve(this); },
    disableVideo() {},
    get videoReady() { return enabled > 0; },
    getFrame({ format, dimensions, mirror }) { return format === 'image-data' && dimensions.join() === '480,360' && !mirror ? frame : null; },
  });
  // The two enums of Scratch's extension API (scratch-vm's extension-support/argument-type.js and
  // block-type.js; its browser bundle does not export them): the VM checks them below, as the
  // blocks it converts must come out as commands, reporters and a hat.
  const ArgumentType = { ANGLE: 'angle', BOOLEAN: 'Boolean', COLOR: 'color', NUMBER: 'number', STRING: 'string', MATRIX: 'matrix', NOTE: 'note', IMAGE: 'image' };
  const BlockType = { BOOLEAN: 'Boolean', BUTTON: 'button', COMMAND: 'command', CONDITIONAL: 'conditional', EVENT: 'event', HAT: 'hat', LOOP: 'loop', REPORTER: 'reporter' };
  const registered = new Promise((resolve) => {
    window.Scratch = {
      ArgumentType, BlockType, vm,
      extensions: {
        unsandboxed: true,
        register(ext) {
          const service = vm.extensionManager._registerInternalExtension(ext);
          vm.extensionManager._loadedExtensions.set(ext.getInfo().id, service);
          resolve(ext);
        },
      },
    };
  });
  const added = new Promise((resolve) => vm.runtime.once('EXTENSION_ADDED', resolve));
  const script = document.createElement('script');
  script.src = extUrl;
  document.body.append(script);
  await registered;
  const info = await added;
  const blocks = vm.runtime.getBlocksJSON().filter((b) => b.type.startsWith('sortwise_'));
  const shape = blocks.map((b) => `${b.type}:${b.output !== undefined ? 'reporter' : b.previousStatement === undefined && b.nextStatement !== undefined ? 'hat' : 'command'}`);

  const v = (id, name, value) => ({ [id]: [name, value] });
  const block = (opcode, extra = {}) => ({ opcode, next: null, parent: null, inputs: {}, fields: {}, shadow: false, topLevel: false, ...extra });
  const menu = (parent) => block('sortwise_menu_classes', { parent, shadow: true, fields: { classes: ['glass', null] } });
  const set = (id, variable, value, next, parent) => block('data_setvariableto', { next, parent, inputs: { VALUE: [3, value, [10, '']] }, fields: { VARIABLE: [variable, id] } });
  const project = {
    targets: [{
      isStage: true, name: 'Stage', layerOrder: 0, currentCostume: 0, volume: 100, tempo: 60, videoTransparency: 50, videoState: 'on', textToSpeechLanguage: null,
      costumes: [{ assetId: 'cd21514d0531fdffb22204e0ec5ed84a', name: 'backdrop1', md5ext: 'cd21514d0531fdffb22204e0ec5ed84a.svg', dataFormat: 'svg', rotationCenterX: 240, rotationCenterY: 180 }],
      sounds: [], lists: {}, comments: {},
      broadcasts: { bNext: 'next' },
      variables: { ...v('vSeen', 'seen', ''), ...v('vGlass', 'glass %', 0), ...v('vHats', 'glass hats', 0), ...v('vRuns', 'runs', 0), ...v('vProblem', 'problem', '') },
      blocks: {
        flag: block('event_whenflagclicked', { topLevel: true, x: 0, y: 0, next: 'load' }),
        load: block('sortwise_loadClassifier', { parent: 'flag', next: 'classify1', inputs: { LINK: [1, [10, link]] } }),
        classify1: block('sortwise_classifyCamera', { parent: 'load', next: 'seen1' }),
        seen1: set('vSeen', 'seen', 'label1', 'glass1', 'classify1'),
        label1: block('sortwise_label', { parent: 'seen1' }),
        glass1: set('vGlass', 'glass %', 'conf1', 'problem1', 'seen1'),
        conf1: block('sortwise_confidenceOf', { parent: 'glass1', inputs: { CLASS: [1, 'menu1'] } }),
        menu1: menu('conf1'),
        problem1: set('vProblem', 'problem', 'prob1', 'runs1', 'glass1'),
        prob1: block('sortwise_problem', { parent: 'problem1' }),
        runs1: block('data_changevariableby', { parent: 'problem1', inputs: { VALUE: [1, [4, '1']] }, fields: { VARIABLE: ['runs', 'vRuns'] } }),
        got: block('event_whenbroadcastreceived', { topLevel: true, x: 0, y: 400, next: 'classify2', fields: { BROADCAST_OPTION: ['next', 'bNext'] } }),
        classify2: block('sortwise_classifyCamera', { parent: 'got', next: 'seen2' }),
        seen2: set('vSeen', 'seen', 'label2', 'glass2', 'classify2'),
        label2: block('sortwise_label', { parent: 'seen2' }),
        glass2: set('vGlass', 'glass %', 'conf2', 'runs2', 'seen2'),
        conf2: block('sortwise_confidenceOf', { parent: 'glass2', inputs: { CLASS: [1, 'menu2'] } }),
        menu2: menu('conf2'),
        runs2: block('data_changevariableby', { parent: 'glass2', inputs: { VALUE: [1, [4, '1']] }, fields: { VARIABLE: ['runs', 'vRuns'] } }),
        hat: block('sortwise_whenLabelBecomes', { topLevel: true, x: 400, y: 0, next: 'count', inputs: { CLASS: [1, 'menu3'] } }),
        menu3: menu('hat'),
        count: block('data_changevariableby', { parent: 'hat', inputs: { VALUE: [1, [4, '1']] }, fields: { VARIABLE: ['glass hats', 'vHats'] } }),
      },
    }],
    monitors: [], extensions: ['sortwise'], meta: { semver: '3.0.0', vm: '0.2.0', agent: 'sortwise tests' },
  };
  await vm.loadProject(project);
  // the VM's frames, counted: an edge-activated hat is checked once a frame
  let frames = 0;
  const step = vm.runtime._step.bind(vm.runtime);
  vm.runtime._step = () => { frames += 1; step(); };
  vm.start();
  const stage = vm.runtime.getTargetForStage();
  const value = (id) => stage.variables[id].value;
  const until = async (done, what) => {
    const t0 = performance.now();
    while (!done()) {
      if (performance.now() - t0 > 60000) throw new Error(`${what} not within 60 s (problem: "${value('vProblem')}")`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const runs = async (n) => {
    await until(() => Number(value('vRuns')) >= n, `the project's run ${n} ended`);
    // five more frames: the hat has seen the new label, and its script has run
    const at = frames;
    await until(() => frames >= at + 5, 'five frames of the VM');
  };
  const out = [];
  for (const [i, b64] of heldPhotos.entries()) {
    frame = await window.cameraFrame(b64);
    if (i === 0) vm.greenFlag();
    else vm.runtime.startHats('event_whenbroadcastreceived', { BROADCAST_OPTION: 'next' });
    await runs(i + 1);
    out.push({ label: value('vSeen'), glass: Number(value('vGlass')), hats: Number(value('vHats')) });
  }
  vm.quit();
  window.sortwiseVm = { vm, info }; // for scratchBlocksPicture
  return { id: info.id, shape, menus: (info.menus ?? []).map((m) => m.json?.type ?? Object.keys(m).join('/')), out, problem: value('vProblem'), enabled };
}

/**
 * In the page scratchInVm ran in, with scratch-blocks' bundle loaded (the global Blockly): the
 * project's scripts drawn as Scratch's editor draws them, the extension's blocks defined from
 * the JSON the VM made for them (what scratch-gui does on EXTENSION_ADDED) and the scripts from
 * the VM's own workspace XML (its `workspaceUpdate`). The share link is shortened for the picture.
 * Returns the number of blocks drawn and the opcodes of the extension's among them.
 */
async function scratchBlocksPicture({ media }) {
  const { vm, info } = window.sortwiseVm;
  const { Blockly } = window;
  Blockly.ScratchMsgs?.setLocale?.('en');
  Blockly.defineBlocksWithJsonArray([...info.blocks.map((b) => b.json).filter(Boolean), ...info.menus.map((m) => m.json)]);
  const stage = vm.runtime.getTargetForStage();
  const load = stage.blocks.getBlock('load');
  stage.blocks.getBlock(load.inputs.LINK.shadow).fields.TEXT.value = 'https://…/#m=…';
  const div = document.createElement('div');
  div.id = 'blocks';
  div.style.cssText = 'width: 980px; height: 560px; background: #f9f9f9';
  document.body.style.margin = '0';
  document.body.append(div);
  // the palette holds the extension's category alone, its blocks as the VM lists them for it
  const toolbox = `<xml><category name="${info.name}" id="${info.id}" colour="${info.color1}" secondaryColour="${info.color2}">${info.blocks.map((b) => b.xml).join('')}</category></xml>`;
  const ws = Blockly.inject(div, { media, toolbox, scrollbars: false, trashcan: false, sounds: false, zoom: { startScale: 0.8 }, comments: false });
  const xml = await new Promise((resolve) => { vm.once('workspaceUpdate', (d) => resolve(d.xml)); vm.emitWorkspaceUpdate(); });
  Blockly.Xml.clearWorkspaceAndLoadFromXml(Blockly.Xml.textToDom(xml), ws);
  // the scripts beside the palette, not under it
  const flyoutRight = div.querySelector('.blocklyFlyout').getBoundingClientRect().right;
  const left = Math.min(...ws.getTopBlocks().map((b) => b.getSvgRoot().getBoundingClientRect().left));
  for (const b of ws.getTopBlocks()) b.moveBy((flyoutRight + 24 - left) / ws.scale, 16 / ws.scale);
  const all = ws.getAllBlocks();
  return { drawn: all.length, ours: [...new Set(all.map((b) => b.type).filter((t) => t.startsWith('sortwise_')))] };
}

/**
 * A stand-in for TurboWarp's editor page (`host`) and a static host of `dir` that sends
 * `Access-Control-Allow-Origin: *` as GitHub Pages does (`site`): two loopback origins.
 */
async function corsServers(dir) {
  const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html' };
  const site = createServer((req, res) => {
    const path = join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const cors = { 'access-control-allow-origin': '*' };
    if (!path.startsWith(`${dir}/`) || !existsSync(path) || !statSync(path).isFile()) { res.writeHead(404, cors); res.end(); return; }
    res.writeHead(200, { ...cors, 'content-type': types[extname(path)] ?? 'application/octet-stream' });
    createReadStream(path).pipe(res);
  });
  const host = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><meta charset="utf-8"><title>TurboWarp stand-in</title><body></body>');
  });
  const listen = (server) => new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
  const [sitePort, hostPort] = [await listen(site), await listen(host)];
  return {
    site: `http://127.0.0.1:${sitePort}`,
    host: `http://localhost:${hostPort}`,
    stop: () => Promise.all([site, host].map((x) => new Promise((r) => { x.closeAllConnections?.(); x.close(r); }))),
  };
}

let failed = false;
// Origins a test started on purpose besides the site's (the cross-origin Scratch case).
const foreign = [];
const requests = [];
const pageErrors = [];
let browser;
try {
  typecheckPackage();
  await startServer();
  log(`serving ${DIST} at ${base} with python3 -m http.server (no special headers)`);
  const plain = await fetch(base);
  check(!plain.headers.get('cross-origin-opener-policy') && !plain.headers.get('content-security-policy'), 'the test server must send no COOP/CSP of its own');

  // A persistent profile: Chromium does not install apps from an incognito (newContext) profile.
  const context = await chromium.launchPersistentContext(profile, {
    ...CHROMIUM_LAUNCH,
    // The fake camera: the p5.js example classifies a webcam.
    args: [...CHROMIUM_LAUNCH.args, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
    locale: 'en-US', serviceWorkers: 'allow', acceptDownloads: true, viewport: { width: 1280, height: 900 },
  });
  browser = context;
  context.on('request', (r) => requests.push(r.url()));
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (e) => { pageErrors.push(e.message); log(`PAGE ERROR: ${e.message}`); });
  page.on('console', (m) => { if (m.type() === 'error') log(`console error: ${m.text()}`); });
  page.on('dialog', (d) => d.accept());
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations += 1; });

  // ---- first visit: isolated by sw.js after one reload, threads ----
  await page.goto(base);
  await waitReady(page);
  const first = await page.evaluate(() => ({ isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency, reason: document.getElementById('device-reason').textContent, controlled: Boolean(navigator.serviceWorker.controller) }));
  const st0 = await state(page);
  const threads = Number(first.reason.match(/(\d+) threads/)?.[1] ?? 1);
  log(`started after ${navigations - 1} reload(s): isolated ${first.isolated}, ${st0.arch} on ${st0.backend}, ${threads} threads (${first.cores} cores); "${first.reason}"`);
  check(navigations === 2, `expected one reload on the first visit, saw ${navigations - 1}`);
  check(first.isolated && first.controlled, `not cross-origin isolated by sw.js: ${JSON.stringify(first)}`);
  check(st0.backend === 'cpu' && threads > 1 && threads === first.cores, `the CPU backend should run on ${first.cores} threads: ${first.reason}`);
  check(st0.engine?.wasmPackage === 'pkg-cpu-relaxed', `the relaxed-SIMD build should run: ${JSON.stringify(st0.engine)}`);
  const headers = await page.evaluate(async () => Object.fromEntries((await fetch('./index.html')).headers));
  log(`headers sw.js adds: ${Object.keys(headers).filter((k) => /cross-origin|security|content-type-options/.test(k)).join(', ')}`);
  check(headers['cross-origin-opener-policy'] === 'same-origin' && headers['cross-origin-embedder-policy'] === 'require-corp', `COOP/COEP from sw.js: ${JSON.stringify(headers)}`);
  check(/frame-ancestors 'none'/.test(headers['content-security-policy'] ?? '') && /script-src 'self' 'wasm-unsafe-eval'/.test(headers['content-security-policy']), `CSP from sw.js: ${headers['content-security-policy']}`);
  check(headers['x-content-type-options'] === 'nosniff', 'nosniff from sw.js');

  // ---- installable, in English and in Chinese ----
  const cdp = await context.newCDPSession(page);
  const en = await installability(cdp);
  log(`installability (en): errors ${JSON.stringify(en.errors)}; manifest ${en.url} "${en.manifest?.name}"`);
  check(en.errors.length === 0, `installability errors: ${en.errors.join(', ')}`);
  check(en.url === `${base}manifest.json` && en.manifest?.start_url === './?launch=app', `manifest ${en.url}: ${JSON.stringify(en.manifest)}`);
  await page.click('button[data-lang="zh-CN"]');
  await page.waitForFunction(() => document.querySelector('link[rel="manifest"]').getAttribute('href') === 'manifest.zh-CN.json');
  const zh = await installability(cdp);
  log(`installability (zh-CN): errors ${JSON.stringify(zh.errors)}; manifest ${zh.url} "${zh.manifest?.name}"`);
  check(zh.errors.length === 0, `installability errors in Chinese: ${zh.errors.join(', ')}`);
  check(zh.url === `${base}manifest.zh-CN.json` && /[\u4e00-\u9fff]/.test(zh.manifest?.name ?? '') && zh.manifest?.lang === 'zh-CN', `Chinese manifest: ${JSON.stringify(zh.manifest)}`);
  check(zh.manifest.id === en.manifest.id, 'both manifests name the same app (id)');
  await page.click('button[data-lang="en"]');

  // ---- a zip of class folders, train, predict, export ----
  await page.selectOption('#preset', 'empty');
  await page.click('#apply-preset');
  await page.waitForFunction(() => document.querySelectorAll('.class-card').length === 0);
  const files = {};
  for (const cls of ['glass', 'metal']) for (const p of photos('train', cls, PER_CLASS)) files[`trashnet/${cls}/${p.name}`] = new Uint8Array(p.buffer);
  await page.setInputFiles('#zip-input', { name: 'photos.zip', mimeType: 'application/zip', buffer: Buffer.from(zipSync(files)) });
  await page.waitForFunction(() => window.sortwiseDebug.state.classes.length === 2, null, { timeout: 60000 }).catch(() => {});
  await idle(page);
  const st1 = await state(page);
  log(`zip added: ${JSON.stringify(st1.classes)}`);
  check(JSON.stringify(st1.classes) === JSON.stringify([{ label: 'glass', count: PER_CLASS }, { label: 'metal', count: PER_CLASS }]), `classes from the zip: ${JSON.stringify(st1.classes)}`);
  let t = Date.now();
  await page.click('#train-btn');
  await page.waitForFunction(() => window.sortwiseDebug.state.hasModel || !document.getElementById('error').hidden, null, { timeout: 300000, polling: 250 });
  check(!(await errorText(page)), `training failed: ${await errorText(page)}`);
  const st2 = await state(page);
  log(`trained in ${((Date.now() - t) / 1000).toFixed(1)} s: validation accuracy ${st2.report.valAccuracy} on ${st2.report.valSize} photos`);
  check(st2.report.valSize >= 2 && st2.report.valAccuracy >= 0.5, `validation accuracy ${st2.report.valAccuracy}`);
  // Threshold 0: the top class, never 'unsure' (a few photos train a not very confident head).
  await page.evaluate(() => {
    const th = document.getElementById('threshold');
    th.value = '0';
    th.dispatchEvent(new Event('input', { bubbles: true }));
    th.dispatchEvent(new Event('change', { bubbles: true }));
  });
  const held = [...photos('val', 'glass', 4), ...photos('val', 'metal', 4)];
  const labels = [];
  for (const h of held) labels.push(await predict(page, h));
  const right = labels.filter((l, i) => l.startsWith(i < 4 ? 'glass' : 'metal')).length;
  log(`held-out predictions: ${labels.join(', ')} (${right}/8 right)`);
  // Six training photos per class: better than chance (4/8) is what they can promise.
  check(right >= 5, `held-out predictions ${labels.join(', ')}`);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-model')]);
  const model = readFileSync(await dl.path());
  const headerLen = Number(model.readBigUInt64LE(0));
  const meta = JSON.parse(JSON.parse(model.subarray(8, 8 + headerLen).toString('utf8')).__metadata__.sortwise);
  log(`exported model: producer "${meta.producer}", package.json version ${VERSION}`);
  check(meta.producer === `sortwise ${VERSION} (browser)`, `producer "${meta.producer}" does not name version ${VERSION}`);
  await page.evaluate(() => window.sortwiseDebug.save());

  // ---- the installed app opens on the Test step when there is a model; a plain visit does not ----
  await page.goto(`${base}?launch=app`);
  await waitReady(page);
  const launch = await page.evaluate(() => ({ view: document.body.dataset.launch, focus: document.activeElement?.id, top: Math.round(document.getElementById('test-section').getBoundingClientRect().top), scrolled: window.scrollY, height: window.innerHeight }));
  log(`launched as an app: ${JSON.stringify(launch)}`);
  // Scrolled to the Test step (as far as the page goes: the steps below it may be shorter than the window).
  check(launch.view === 'test' && launch.focus === 'test-input' && launch.scrolled > 0 && launch.top >= -5 && launch.top < launch.height - 200, `app launch with a model: ${JSON.stringify(launch)}`);
  await page.goto(base);
  await waitReady(page);
  check(!(await page.evaluate(() => document.body.dataset.launch)) && (await page.evaluate(() => window.scrollY)) === 0, 'a plain visit stays on the first step');

  // ---- the package's example page ----
  const ex = await context.newPage();
  ex.on('pageerror', (e) => { pageErrors.push(e.message); log(`PAGE ERROR (example): ${e.message}`); });
  await ex.goto(`${base}example/`);
  await ex.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 300000 });
  await ex.setInputFiles('#photos-a', photos('train', 'glass', 4));
  await ex.waitForFunction(() => /glass: 4 added/.test(document.getElementById('log').textContent), null, { timeout: 120000 });
  await ex.setInputFiles('#photos-b', photos('train', 'metal', 4));
  await ex.waitForFunction(() => !document.getElementById('train').disabled, null, { timeout: 120000 });
  await ex.click('#train');
  await ex.waitForFunction(() => document.body.dataset.trained, null, { timeout: 300000 });
  await ex.setInputFiles('#test', photos('val', 'metal', 1));
  await ex.waitForFunction(() => document.body.dataset.prediction, null, { timeout: 120000 });
  const exLog = await ex.locator('#log').textContent();
  log(`example page: ${exLog.trim().split('\n').join(' | ')}`);
  check(/trained on 8 photos/.test(exLog) && (await ex.evaluate(() => document.body.dataset.prediction)) === 'metal', `example page: ${exLog}`);
  await ex.close();

  // ---- loadClassifier: the share link in the p5.js example on the (fake) webcam; the exported
  // file and the link on the held-out photos, as the page predicted them ----
  await page.click('#share-model');
  await page.waitForFunction(() => document.getElementById('share-dialog').open && document.body.dataset.share, null, { timeout: 60000 });
  const shareLink = (await state(page)).share.link;
  await page.keyboard.press('Escape');
  check(shareLink.startsWith(base) && /#m=/.test(shareLink), `the share link: ${shareLink.slice(0, 120)}`);
  // The exported file, as a host would serve it beside the site (dist/ itself stays as built).
  await context.route(`${base}test-model.sortwise`, (route) => route.fulfill({ status: 200, contentType: 'application/octet-stream', body: model }));
  const sketch = await context.newPage();
  sketch.on('pageerror', (e) => { pageErrors.push(e.message); log(`PAGE ERROR (p5 example): ${e.message}`); });
  await sketch.goto(`${base}example/p5/${new URL(shareLink).hash}`);
  await sketch.waitForFunction(() => document.body.dataset.ready, null, { timeout: 300000 });
  check((await sketch.evaluate(() => document.body.dataset.ready)) === '1', `the p5 example did not load the link: ${await sketch.locator('#status').textContent()}`);
  await sketch.waitForFunction(() => document.body.dataset.label, null, { timeout: 120000 });
  const cam = await sketch.evaluate(() => ({ r: window.sortwiseExample.result, labels: window.sortwiseExample.classifier.labels, p5: window.p5?.VERSION, canvas: document.querySelectorAll('#sketch canvas').length }));
  const camSum = cam.r.probs.reduce((a, x) => a + x.p, 0);
  log(`p5 ${cam.p5} example, webcam: ${cam.r.label} ${cam.r.confidence.toFixed(3)} (classes ${cam.labels.join(', ')})`);
  check(cam.labels.join() === 'glass,metal' && cam.canvas === 1 && cam.r.probs.length === 2 && Math.abs(camSum - 1) < 1e-4
    && [...cam.labels, 'unsure'].includes(cam.r.label) && cam.r.confidence === cam.r.probs[0].p, `the p5 example's webcam prediction: ${JSON.stringify(cam)}`);
  const api = await sketch.evaluate(async ({ heldPhotos, fileUrl }) => {
    const { loadClassifier } = await import(new URL('../../engine/index.js', window.location.href).href);
    const file = await loadClassifier(fileUrl, { device: 'cpu', threshold: 0 });
    const link = window.sortwiseExample.classifier;
    const out = [];
    for (const b64 of heldPhotos) {
      const blob = new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/jpeg' });
      const img = new Image();
      img.src = URL.createObjectURL(blob);
      await img.decode();
      out.push({ file: await file.classify(blob), img: await file.classify(img), link: await link.classify(blob, { threshold: 0 }) });
    }
    const refusals = [];
    for (const bad of [new Uint8Array([1, 2, 3]), new Blob(['not a model']), new URL('../../no/such.sortwise', window.location.href).href, '#m=!!']) {
      refusals.push(await loadClassifier(bad, { device: 'cpu' }).then(() => 'loaded', (e) => e.message));
    }
    file.close();
    return { out, labels: file.labels, refusals };
  }, { heldPhotos: held.map((h) => h.buffer.toString('base64')), fileUrl: `${base}test-model.sortwise` });
  const maxProbDiff = (a, b) => Math.max(...a.probs.map((x) => Math.abs(x.p - b.probs.find((y) => y.label === x.label).p)));
  const fromPage = labels.map((l) => l.split(/\s/)[0]);
  // The page shows the confidence to 0.1%.
  const pct = labels.map((l) => Number(l.match(/([\d.]+)%/)?.[1]));
  const sameFile = api.out.filter((o, i) => o.file.label === fromPage[i] && Math.abs(o.file.confidence * 100 - pct[i]) <= 0.051).length;
  const imgDiff = Math.max(...api.out.map((o) => maxProbDiff(o.file, o.img)));
  const sameLink = api.out.filter((o, i) => o.link.label === fromPage[i] && Math.abs(o.link.confidence - o.file.confidence) < 0.05).length;
  log(`loadClassifier on the held-out photos: the file ${api.out.map((o) => `${o.file.label} ${o.file.confidence.toFixed(3)}`).join(', ')}; `
    + `as the page: ${sameFile}/8 (file), ${sameLink}/8 (link); <img> against the photo's bytes max |Δp| ${imgDiff.toExponential(1)}; refused: ${api.refusals.join(' | ')}`);
  check(api.labels.join() === 'glass,metal' && sameFile === held.length, `the exported file through loadClassifier predicts as the page: ${JSON.stringify(api.out.map((o) => o.file))} against ${labels.join(', ')}`);
  check(sameLink >= held.length - 1, `the share link through loadClassifier predicts as the page on ${sameLink} of ${held.length}`);
  check(imgDiff < 0.05, `an <img> and its photo's bytes differ by ${imgDiff}`);
  check(api.refusals.every((m) => m !== 'loaded' && m.length > 10), `what is not a classifier is refused with a reason: ${api.refusals.join(' | ')}`);

  // ---- the Scratch extension (scratch/sortwise.js), loaded as TurboWarp loads an unsandboxed
  // one (a <script> by URL, with the global Scratch API), under a stand-in of that API whose
  // camera (Scratch's video provider) hands out the held-out photos as 480×360 frames ----
  await sketch.evaluate(installCameraFrame);
  const scratch = await sketch.evaluate(scratchInPage, { heldPhotos: held.map((h) => h.buffer.toString('base64')), link: shareLink, extUrl: `${base}scratch/sortwise.js` });
  const pctOf = (r, l) => Math.round(r.probs.find((x) => x.label === l).p * 1000) / 10;
  const blocksAsPackage = scratch.out.filter((o) => o.label === (o.direct.unsure ? 'unsure' : o.direct.label)
    && o.glass === pctOf(o.direct, 'glass') && o.metal === pctOf(o.direct, 'metal') && o.hat && !o.hatOther).length;
  const scratchAsPage = scratch.out.filter((o, i) => o.direct.probs[0].label === fromPage[i]).length;
  log(`Scratch extension (stand-in API): blocks ${scratch.opcodes.join(', ')}; camera frames ${scratch.out.map((o) => `${o.label} ${o.glass}/${o.metal}`).join(', ')}; `
    + `as the package ${blocksAsPackage}/8, top class as the page ${scratchAsPage}/8; a bad link: "${scratch.problem}"`);
  check(scratch.id === 'sortwise' && scratch.opcodes.join() === 'command:loadClassifier,command:classifyCamera,reporter:label,reporter:confidenceOf,hat:whenLabelBecomes,reporter:problem', `the extension's blocks: ${scratch.opcodes}`);
  check(scratch.before.label === '' && scratch.before.confidence === 0 && scratch.before.menu.join() === '(load a classifier first)' && /load a classifier first/.test(scratch.early), `before a classifier: ${JSON.stringify(scratch.before)} "${scratch.early}"`);
  check(blocksAsPackage === held.length, `the blocks report what loadClassifier says of the same frames: ${JSON.stringify(scratch.out)}`);
  check(scratchAsPage >= held.length - 1, `the camera frames' top class is the page's on ${scratchAsPage} of ${held.length}`);
  check(scratch.enabled === 1, `Scratch's camera is turned on once (${scratch.enabled})`);
  check(/did not load/.test(scratch.problem) && scratch.menu.join() === 'glass,metal,unsure' && scratch.stillLabel === scratch.out.at(-1).label, `a bad link keeps the loaded classifier and says why: ${JSON.stringify(scratch)}`);
  await sketch.close();

  // ---- the same extension from another origin, as turbowarp.org loads it from a school's site:
  // a stand-in editor page (not cross-origin isolated) on one origin, dist/ on another with the
  // CORS header GitHub Pages sends; the engine's worker then starts through a blob: module
  // (engine/spawn.js), and without isolation runs pkg/ on one thread ----
  const cors = await corsServers(DIST);
  foreign.push(cors.host, cors.site);
  try {
    const tw = await context.newPage();
    tw.on('pageerror', (e) => { pageErrors.push(e.message); log(`PAGE ERROR (TurboWarp stand-in): ${e.message}`); });
    await tw.goto(`${cors.host}/editor`);
    await tw.evaluate(installCameraFrame);
    const far = await tw.evaluate(scratchInPage, { heldPhotos: held.slice(0, 3).map((h) => h.buffer.toString('base64')), link: shareLink, extUrl: `${cors.site}/scratch/sortwise.js` });
    const isolated = await tw.evaluate(() => self.crossOriginIsolated);
    await tw.close();
    log(`Scratch extension from another origin (${cors.host} loading ${cors.site}/scratch/sortwise.js, isolated ${isolated}): ${far.out.map((o) => `${o.label} ${o.glass}/${o.metal}`).join(', ')}; "${far.problem}"`);
    check(!isolated && far.out.length === 3 && far.out.every((o, i) => o.label === scratch.out[i].label && Math.abs(o.glass - scratch.out[i].glass) <= 0.1),
      `the extension from another origin answers as from its own: ${JSON.stringify(far.out)} against ${JSON.stringify(scratch.out.slice(0, 3))}; problem "${far.problem}"`);

    // ---- inside Scratch's own VM (npm scratch-vm), on that editor origin: a project using every
    // block, run by the VM's interpreter, answers as the blocks did under the stand-in ----
    const real = await context.newPage();
    real.on('pageerror', (e) => { pageErrors.push(e.message); log(`PAGE ERROR (scratch-vm): ${e.message}`); });
    await real.goto(`${cors.host}/scratch-vm`);
    await real.evaluate(readFileSync(scratchVmBundle(), 'utf8'));
    const again = [...held, ...held.slice(0, 3)]; // the label becomes glass, goes, and comes back
    await real.evaluate(installCameraFrame);
    const vmRun = await real.evaluate(scratchInVm, { heldPhotos: again.map((h) => h.buffer.toString('base64')), link: shareLink, extUrl: `${cors.site}/scratch/sortwise.js` });
    // the picture of docs/SCRATCH.md: the project's scripts as Scratch's editor draws them
    const blocksDir = npmPackage(SCRATCH_BLOCKS);
    await real.route('**/scratch-blocks-media/**', (route) => route.fulfill({ path: join(blocksDir, 'media', new URL(route.request().url()).pathname.replace(/^\/scratch-blocks-media\//, '')) }));
    await real.evaluate(readFileSync(join(blocksDir, 'dist/web/vertical.js'), 'utf8'));
    const picture = await real.evaluate(scratchBlocksPicture, { media: `${cors.host}/scratch-blocks-media/` });
    await real.locator('#blocks').screenshot({ path: join(SHOTS, 'scratch-blocks.png') });
    await real.close();
    log(`scratch-blocks ${SCRATCH_BLOCKS.version} drew ${picture.drawn} blocks (${picture.ours.join(', ')}): ${join(SHOTS, 'scratch-blocks.png')}`);
    check(picture.ours.filter((t) => !t.includes('_menu_')).length === 6, `scratch-blocks draws the extension's blocks from the VM's definitions: ${picture.ours.join(', ')}`);
    // how many times the label became glass from something else, photo after photo
    const expected = again.map((_, i) => scratch.out[i % held.length]);
    const startsAfter = expected.reduce((acc, o, i) => [...acc, (acc[i - 1] ?? 0) + (o.label === 'glass' && (i === 0 || expected[i - 1].label !== 'glass') ? 1 : 0)], []);
    log(`Scratch extension in scratch-vm ${SCRATCH_VM.version}: blocks ${vmRun.shape.join(', ')}; photos ${vmRun.out.map((o) => `${o.label} ${o.glass} (hats ${o.hats})`).join(', ')}; problem "${vmRun.problem}"`);
    check(vmRun.id === 'sortwise' && vmRun.shape.join() === 'sortwise_loadClassifier:command,sortwise_classifyCamera:command,sortwise_label:reporter,sortwise_confidenceOf:reporter,sortwise_whenLabelBecomes:hat,sortwise_problem:reporter' && vmRun.menus.join() === 'sortwise_menu_classes',
      `scratch-vm makes the extension's blocks: ${vmRun.shape.join(', ')} (menus ${vmRun.menus.join()})`);
    check(vmRun.out.length === again.length && vmRun.out.every((o, i) => o.label === expected[i].label && Math.abs(o.glass - expected[i].glass) <= 0.1) && vmRun.problem === '' && vmRun.enabled === 1,
      `the project in scratch-vm reports for each photo what the blocks did under the stand-in: ${JSON.stringify(vmRun.out)} against ${JSON.stringify(expected.map((o) => ({ label: o.label, glass: o.glass })))}`);
    check(startsAfter.at(-1) > 1 && vmRun.out.every((o, i) => o.hats === startsAfter[i]),
      `"when label becomes [glass]" started each time the label became glass: ${vmRun.out.map((o) => o.hats).join()} against ${startsAfter.join()}`);
  } finally {
    await cors.stop();
  }

  // ---- second visit offline: the server is gone ----
  await stopServer();
  check(await fetch(base).then(() => false, () => true), 'the server is still answering');
  navigations = 0;
  await page.reload();
  await waitReady(page);
  await idle(page);
  const off = await state(page);
  const offReason = await page.locator('#device-reason').textContent();
  const offLabel = await predict(page, photos('val', 'metal', 1)[0]);
  log(`offline: ${JSON.stringify(off.classes)}, model ${off.hasModel}, "${offReason}", predicts ${offLabel}`);
  check(off.hasModel && off.classes.length === 2 && off.classes.every((c) => c.count === PER_CLASS), `offline project: ${JSON.stringify(off.classes)}`);
  check(await page.evaluate(() => self.crossOriginIsolated) && /\d+ threads/.test(offReason), `offline isolation: ${offReason}`);
  check(off.engine?.wasmPackage === 'pkg-cpu-relaxed', `offline, the build the first visit cached: ${JSON.stringify(off.engine)}`);
  check(offLabel.startsWith('metal'), `offline prediction ${offLabel}`);

  const violations = await page.evaluate(() => window.__csp);
  check(violations.length === 0, `CSP violations: ${violations.join(', ')}`);
} catch (e) {
  failed = true;
  log('FAILED:', e instanceof Failure ? e.message : e.stack);
} finally {
  await browser?.close().catch(() => {});
  await stopServer();
  rmSync(parent, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true });
}

const outside = requests.filter((u) => !u.startsWith('data:') && !u.startsWith('blob:') && !u.startsWith(base) && !foreign.some((f) => u.startsWith(f)));
log(`${requests.length} requests, ${outside.length} outside ${base}`);
if (!failed && outside.length) { failed = true; log(`FAILED: requests outside the site: ${[...new Set(outside)].slice(0, 10).join(', ')}`); }
if (!failed && pageErrors.length) { failed = true; log(`FAILED: page errors: ${pageErrors.join(' | ')}`); }
if (!failed) log('ok');
process.exit(failed ? 1 : 0);
