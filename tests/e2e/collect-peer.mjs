#!/usr/bin/env node
// Collecting from phones through a school's self-hosted PeerJS server (npm `peer`; issue 33): a
// phone joins the teacher's page with one scan, no answer code. The school serves sortwise and
// the PeerJS server from one site (the page's CSP lets it connect nowhere else), as here: one
// node server on localhost serves the repository and mounts `peer` at /peerjs.
// The teacher (Chromium, real engine) sets "/peerjs" under "School network…"; the phone (mobile
// emulation, fake camera) opens the collect link, taps Connect, and is connected without showing
// a code; its photos arrive with it in the roster. The photos go over the direct data channel:
// the server only passes the offer and answer.
//
//   node tests/e2e/collect-peer.mjs

import express from 'express';
import { ExpressPeerServer } from 'peer';
import { chromium } from 'playwright-core';
import { ROOT } from './serve.mjs';
import { openTeacher } from './collect-teacher.mjs';

const T0 = Date.now();
const log = (...a) => console.log(`[collect-peer ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const failures = [];
const check = (cond, msg) => { if (!cond) { failures.push(msg); log(`FAIL: ${msg}`); } else log(`ok: ${msg}`); };

const app = express();
const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
const signals = [];
const peerServer = ExpressPeerServer(server, { path: '/' });
peerServer.on('connection', (client) => signals.push(['connection', client.getId()]));
peerServer.on('message', (client, m) => signals.push([m.type, client.getId()]));
app.use('/peerjs', peerServer);
app.use(express.static(ROOT, { dotfiles: 'deny' }));
const base = `http://127.0.0.1:${server.address().port}`;

let browser = null;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  });
  const errors = [];
  const watch = (page, who) => {
    page.on('pageerror', (e) => { errors.push(`${who}: ${e.message}`); log(`${who} page error:`, e.message); });
    page.on('console', (m) => { if (m.type() === 'error' && !/favicon/.test(m.text())) log(`${who} console error:`, m.text()); });
  };
  const teacher = await (await browser.newContext()).newPage();
  watch(teacher, 'teacher');
  await openTeacher(teacher, base);
  await teacher.click('.collect-network summary');
  await teacher.fill('#collect-peer-path', '/peerjs');
  await teacher.click('#collect-ice-apply');
  await teacher.waitForFunction(() => window.sortwiseDebug.state.collect.network.peer && window.sortwiseDebug.state.collect.link?.length, null, { timeout: 30000 });
  const { link, network } = await teacher.evaluate(() => window.sortwiseDebug.state.collect);
  check(network.peer.path === '/peerjs' && /^sortwise-[A-Z0-9]{6}-/.test(network.peer.id), `the teacher's page waits on the PeerJS server as ${network.peer.id}`);

  const phone = await (await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true })).newPage();
  watch(phone, 'phone');
  const t0 = Date.now();
  await phone.goto(link);
  await phone.waitForFunction(() => document.body.dataset.ready === '1' && window.sortwiseCollect.state.camera, null, { timeout: 30000 });
  await phone.fill('#collect-name', 'Gus');
  await phone.press('#collect-name', 'Tab');
  await phone.tap('#collect-live');
  await phone.waitForFunction(() => window.sortwiseCollect.state.live === 'collectLiveOn', null, { timeout: 30000 })
    .catch(async (e) => { log('phone:', await phone.locator('#collect-live-state').textContent()); throw e; });
  const ms = Date.now() - t0;
  check(await phone.locator('#collect-answer').isHidden(), `one scan: the phone connected through the PeerJS server without showing a code, ${(ms / 1000).toFixed(1)} s from opening the link`);
  for (const label of ['glass', 'paper']) {
    await phone.tap(`#collect-chips [data-label="${label}"]`);
    for (let i = 0; i < 2; i += 1) await phone.tap('#collect-shoot');
  }
  await teacher.waitForFunction(() => JSON.stringify(window.sortwiseDebug.state.classes) === '[{"label":"glass","count":2},{"label":"paper","count":2}]', null, { timeout: 60000 });
  const row = await teacher.evaluate(() => window.sortwiseDebug.state.collect.roster.find((r) => r.name === 'Gus'));
  check(row?.total === 4 && row.connected === true, `4 photos arrive with their sender in the roster: ${JSON.stringify(row)}`);
  const kinds = [...new Set(signals.map((s) => s[0]))].sort();
  check(kinds.includes('OFFER') && kinds.includes('ANSWER'), `the server passed only the signalling: ${kinds.join(', ')}`);
  check(errors.length === 0, `no uncaught page errors (${errors.length})`);
} catch (e) {
  failures.push(e.stack || String(e));
  log('ERROR', e.stack || e);
} finally {
  await browser?.close();
  server.close();
}
if (failures.length) {
  console.error(`collect-peer: ${failures.length} failure(s)`);
  process.exit(1);
}
log('collect-peer: all checks passed');
process.exit(0);
