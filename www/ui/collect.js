// Step 1's "Collect from phones" (issue 33): the collect link and its QR code (class names,
// session code, and a WebRTC offer for the next phone), reading a phone's answer code from the
// camera or a photo of it, or phones joining through the school's PeerJS server (peer-server.js),
// the live connections (peer.js), contributions dropped as files, the
// roster of who sent what with undo and removal, and the photos waiting for a class the project
// lacks (merge.js holds them).

import { t } from '../i18n.js';
import { collectQr, isSessionCode, makeCollectLink, newSessionCode, parseIceServers } from '../collect/collect-link.js';
import { qrCode } from '../share/share-link.js';
import { isContributionZip, readContribution } from '../collect/contribution.js';
import { Merger, newBatch } from '../collect/merge.js';
import { acceptAnswer, makeOffer, opened, PhotoReceiver, readAnswerCode, routeOf, rtcConfig } from '../collect/peer.js';
import { imageDataOf, readQr } from '../collect/qr-scan.js';
import { isPeerPath, listen, peerIdFor } from '../collect/peer-server.js';
import { Camera } from '../camera.js';
import { drawQr } from './qr.js';
import { $, el, onFilePicked } from './dom.js';
import { showError, status } from './status.js';

const SESSION_KEY = 'sortwise.collect.session';
const ICE_KEY = 'sortwise.collect.ice';
const SCAN_MS = 300;

let project = null;
let merger = null;
let code = null; // the session code
// the school's own ICE servers and PeerJS server path (none by default)
let network = { text: '', ice: [], relayOnly: false, peerPath: '' };
let peerServer = null; // {path, id, close}: this page listening on the school's PeerJS server
let pending = null; // {pc, channel, offer}: the offer the QR code shows now
let preparing = null;
let scanCam = null;
let scanTimer = null;
const connections = new Set(); // open RTCPeerConnections, closed with the page

export { isContributionZip };

function sessionCode() {
  if (code) return code;
  try { code = localStorage.getItem(SESSION_KEY); } catch { /* storage off */ }
  if (!isSessionCode(code)) {
    code = newSessionCode();
    try { localStorage.setItem(SESSION_KEY, code); } catch { /* kept for this visit */ }
  }
  return code;
}

const isOpen = () => !$('collect-panel').hidden;

function collectLink() {
  const labels = project.classes.map((c) => c.label);
  if (!labels.length) return null;
  const peer = peerServer && { path: peerServer.path, id: peerServer.id };
  return makeCollectLink(new URL('./', location.href).href, { session: sessionCode(), labels, offer: pending?.offer ?? null, ice: network.ice, relayOnly: network.relayOnly, peer });
}

function renderLink() {
  if (!isOpen()) return;
  $('collect-session').textContent = sessionCode();
  const link = collectLink();
  $('collect-noclasses').hidden = Boolean(link);
  $('collect-pair').hidden = !link;
  if (!link) return;
  $('collect-link').value = link;
  const qr = qrCode(collectQr(link));
  if (qr) drawQr($('collect-qr'), qr, 720);
  $('collect-qr').hidden = !qr;
}

/** A fresh offer for the next phone (one connection per offer). */
function prepareOffer() {
  if (preparing) return preparing;
  if (typeof RTCPeerConnection !== 'function') return Promise.resolve(); // file only
  $('collect-scan-state').textContent = t('collectPreparing');
  preparing = makeOffer(rtcConfig({ iceServers: network.ice, relayOnly: network.relayOnly })).then((p) => {
    pending = p;
    // "Preparing" goes; a message said meanwhile ("Phone connected") stays
    if ($('collect-scan-state').textContent === t('collectPreparing')) $('collect-scan-state').textContent = '';
    renderLink();
  }).catch((e) => {
    $('collect-scan-state').textContent = e.message;
  }).finally(() => { preparing = null; });
  return preparing;
}

/** A phone's data channel (paired by codes or through the PeerJS server): its photos, merged. */
function receive(channel, pc) {
  connections.add(pc);
  let who = null;
  // How the phone is connected, once the browser's stats say (asked again while they do not)
  const showRoute = () => {
    if (!who || merger.live.get(who.id)?.via) return;
    routeOf(pc).then((via) => { if (via && who && pc.connectionState !== 'closed') merger.setLive(who.id, who.name, true, via); });
  };
  const batch = newBatch(); // everything this phone sends on this connection: one undo
  new PhotoReceiver(channel, {
    session: sessionCode(),
    onHello: (c) => { who = c; merger.setLive(c.id, c.name, true); showRoute(); },
    onBatch: (c) => { showRoute(); return merger.merge(c, { batch }); },
    onClose: () => { connections.delete(pc); if (who) merger.setLive(who.id, who.name, false); },
  });
}

/** A phone's answer code, read from the camera or a photo: connects it and shows the next offer. */
async function acceptCode(text) {
  const a = readAnswerCode(text);
  if (!a) { $('collect-scan-state').textContent = t('collectNotAnswer'); return false; }
  if (a.session !== sessionCode()) { $('collect-scan-state').textContent = t('collectOtherSession', { session: a.session }); return false; }
  await (preparing ?? Promise.resolve());
  const p = pending;
  if (!p) return false;
  pending = null;
  // Listening before the answer is applied, so that nothing the phone sends can find no listener,
  // whatever order the browser settles the answer and opens the channel in (a message dispatched
  // before a listener is added is lost).
  receive(p.channel, p.pc);
  try {
    await acceptAnswer(p.pc, a.answer);
  } catch (e) {
    connections.delete(p.pc);
    p.pc.close();
    $('collect-scan-state').textContent = e.message;
    prepareOffer();
    return false;
  }
  prepareOffer();
  try {
    await opened(p.channel);
    $('collect-scan-state').textContent = t('collectPaired');
  } catch (e) {
    $('collect-scan-state').textContent = e.message;
  }
  return true;
}

function stopScan() {
  clearInterval(scanTimer);
  scanTimer = null;
  scanCam?.stop();
  $('collect-scan').textContent = t('collectScan');
}

async function toggleScan() {
  if (scanTimer) { stopScan(); return; }
  scanCam ??= new Camera($('collect-scan-video'));
  try {
    await scanCam.start('user');
  } catch (e) { showError('camError', e); return; }
  $('collect-scan').textContent = t('collectScanStop');
  $('collect-scan-state').textContent = t('collectScanning');
  let busy = false;
  scanTimer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const img = scanCam.frameImageData(720);
      const text = img && await readQr(img);
      if (text && await acceptCode(text)) stopScan();
    } finally { busy = false; }
  }, SCAN_MS);
}

async function scanPhoto(file) {
  try {
    const text = await readQr(await imageDataOf(file));
    if (!text) { $('collect-scan-state').textContent = t('collectNoCode'); return; }
    await acceptCode(text);
  } catch (e) { showError('addFailed', e); }
}

function renderOffers() {
  $('collect-offers').replaceChildren(...merger.offers.map((o) => el('div', { class: 'notice collect-offer', dataset: { offer: o.id, label: o.label, correction: String(o.correction) } },
    el('span', { text: t(o.correction ? 'collectCorrection' : 'collectOffer', { name: o.contributor.name, n: o.photos.length, label: o.label }) }),
    el('button', { type: 'button', class: 'small', dataset: { action: 'accept' }, text: o.correction && project.classOf(o.label) ? t('collectCorrectionAccept', { label: o.label }) : t('collectOfferAdd'), onclick: () => merger.acceptOffer(o.id) }),
    el('button', { type: 'button', class: 'small', dataset: { action: 'discard' }, text: t('collectOfferDiscard'), onclick: () => merger.discardOffer(o.id) }))));
}

function renderRoster() {
  const rows = merger.roster();
  $('collect-roster-empty').hidden = rows.length > 0;
  $('collect-roster').replaceChildren(...rows.map((r) => {
    const perClass = Object.entries(r.perClass).map(([label, n]) => `${label}: ${n}`).join(' · ');
    let state = r.connected == null ? t('collectByFile') : t(r.connected ? 'collectConnected' : 'collectDisconnected');
    if (r.connected && r.via) state += ` (${t(r.via === 'relay' ? 'collectViaRelay' : 'collectViaDirect')})`;
    return el('li', { class: 'collect-row', dataset: { contributor: r.id } },
      el('strong', { text: r.name }),
      el('span', { class: 'collect-state', dataset: { connected: String(r.connected) }, text: state }),
      el('span', { class: 'collect-perclass', text: `${r.total} · ${perClass}` }),
      r.total ? el('button', { type: 'button', class: 'small', dataset: { action: 'remove' }, text: t('collectRemove'), onclick: () => merger.removeContributor(r.id) }) : null);
  }));
  const merges = merger.merges().slice(0, 5);
  $('collect-merges-h').hidden = !merges.length;
  $('collect-merges').replaceChildren(...merges.map((m) => el('li', { dataset: { batch: m.batch } },
    el('span', { text: t('collectMergeRow', { name: m.name, n: m.count }) }),
    el('button', { type: 'button', class: 'small', dataset: { action: 'undo' }, text: t('collectUndoMerge'), onclick: () => merger.undo(m.batch) }))));
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    if (!isOpen()) return;
    renderOffers();
    renderRoster();
  });
}

export function rerenderCollect() { renderLink(); render(); }

function openPanel() {
  $('collect-panel').hidden = false;
  sessionCode();
  renderLink();
  render();
  if (!pending) prepareOffer();
  if (network.peerPath && !peerServer) startPeerServer();
}

function closePanel() {
  stopScan();
  $('collect-panel').hidden = true;
}

function loadNetwork() {
  try {
    const saved = JSON.parse(localStorage.getItem(ICE_KEY) || 'null');
    if (saved) {
      const peerPath = isPeerPath(saved.peerPath) ? saved.peerPath : '';
      network = { text: String(saved.text ?? ''), ice: parseIceServers(saved.text), relayOnly: saved.relayOnly === true, peerPath };
    }
  } catch { network = { text: '', ice: [], relayOnly: false, peerPath: '' }; } // unusable: none, as by default
  $('collect-ice').value = network.text;
  $('collect-relay').checked = network.relayOnly;
  $('collect-peer-path').value = network.peerPath;
}

/** Listens on the school's PeerJS server (when one is set) for phones that join with one scan. */
async function startPeerServer() {
  peerServer?.close();
  peerServer = null;
  if (!network.peerPath || typeof RTCPeerConnection !== 'function') return;
  const id = peerIdFor(sessionCode());
  try {
    const server = await listen(network.peerPath, id, rtcConfig({ iceServers: network.ice, relayOnly: network.relayOnly }), receive);
    peerServer = { path: network.peerPath, id, close: server.close };
    $('collect-ice-state').textContent = t('collectPeerOn');
  } catch (e) {
    $('collect-ice-state').textContent = t('collectPeerFailed', { reason: e.message });
  }
  renderLink();
}

/** The school's ICE servers from the form: a new offer (and link) that uses them. */
function applyNetwork() {
  const text = $('collect-ice').value;
  const relayOnly = $('collect-relay').checked;
  const peerPath = $('collect-peer-path').value.trim();
  let ice;
  try {
    ice = parseIceServers(text);
    if (relayOnly && !ice.some((s) => s.urls.startsWith('turn'))) throw new Error(t('collectRelayNeedsTurn'));
    if (peerPath && !isPeerPath(peerPath)) throw new Error(t('collectPeerPathBad'));
  } catch (e) { $('collect-ice-state').textContent = e.message; return; }
  network = { text, ice, relayOnly, peerPath };
  try { localStorage.setItem(ICE_KEY, JSON.stringify({ text, relayOnly, peerPath })); } catch { /* for this visit */ }
  $('collect-ice-state').textContent = t('collectIceSaved', { n: ice.length });
  pending?.pc.close();
  pending = null;
  renderLink();
  prepareOffer();
  startPeerServer();
}

/** Contribution zips (dropped or picked): each read whole and checked, then merged, one by one. */
export async function mergeContributionFiles(files) {
  openPanel();
  for (const f of files) {
    let c;
    try {
      c = await readContribution(f);
    } catch (e) {
      project.skip(f.name, `msg:${e.message}`);
      continue;
    }
    await merger.merge(c);
  }
}

/** For the tests: the panel's state. */
export function collectState() {
  return merger && {
    session: code,
    link: isOpen() ? $('collect-link').value : null,
    offer: Boolean(pending),
    roster: merger.roster().map(({ id, name, total, perClass, connected, via }) => ({ id, name, total, perClass, connected, via })),
    network: { ice: network.ice.map((s) => s.urls), relayOnly: network.relayOnly, peer: peerServer && { path: peerServer.path, id: peerServer.id } },
    merges: merger.merges(),
    offers: merger.offers.map((o) => ({ id: o.id, label: o.label, name: o.contributor.name, n: o.photos.length, correction: o.correction })),
  };
}

export function bindCollect(p) {
  project = p;
  merger = new Merger(project);
  $('collect-open').addEventListener('click', () => (isOpen() ? closePanel() : openPanel()));
  $('collect-close').addEventListener('click', closePanel);
  $('collect-copy').addEventListener('click', async () => {
    try { await navigator.clipboard.writeText($('collect-link').value); status(t('collectCopied')); } catch (e) { showError('addFailed', e); }
  });
  $('collect-scan').addEventListener('click', () => toggleScan().catch((e) => showError('camError', e)));
  onFilePicked($('collect-scan-file'), scanPhoto);
  $('collect-ice-apply').addEventListener('click', applyNetwork);
  loadNetwork();
  for (const type of ['contributions', 'image-added', 'classes', 'replaced']) project.addEventListener(type, render);
  for (const type of ['classes', 'renamed', 'replaced']) project.addEventListener(type, renderLink);
  window.addEventListener('pagehide', () => { for (const pc of connections) pc.close(); peerServer?.close(); });
}
