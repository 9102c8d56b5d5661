// Step 4: a photo (picked or dropped) or the live webcam, classified by the engine with the
// threshold slider's value. The engine decides `label` and `unsure` for that threshold; moving
// the slider asks it again for the last photo or frame, never re-deciding here.

import { t, formatPct } from '../i18n.js';
import { Camera } from '../camera.js';
import { isImageName } from '../project/project-zip.js';
import { $, el, onFilePicked } from './dom.js';
import { drawHeatmap, legendGradient } from './heatmap.js';
import { clearError, showError } from './status.js';

let project = null;
let testCam = null;
let liveTimer = null;
let liveInFlight = false;
let lastInput = null; // what the shown prediction is of: {bytes} or {frame}
let lastPrediction = null;
let asked = 0; // the latest prediction asked for: an older answer is not shown over it
let rethreshold = null;

// How long the slider rests before the engine is asked again.
const RETHRESHOLD_MS = 80;

/** The prediction shown (for sortwiseDebug.state.prediction). */
export function shownPrediction() { return lastPrediction; }

export function renderTestState() {
  const msg = $('test-message');
  if (!project.model) {
    msg.hidden = false;
    msg.textContent = t('testNeedModel');
  } else if (!lastPrediction) msg.hidden = true;
}

function renderPrediction(r) {
  lastPrediction = r;
  const probs = [...(r.probs || [])].sort((a, b) => b.p - a.p);
  const label = $('test-label');
  label.hidden = false;
  label.classList.toggle('unsure', r.unsure);
  label.replaceChildren(
    el('span', { class: 'pred-label', text: r.unsure ? t('unsure') : r.label, dir: 'auto' }),
    el('span', { class: 'pred-conf', text: probs.length ? ` ${formatPct(r.confidence)}` : '' }),
  );
  $('test-message').hidden = true;
  $('test-bars').replaceChildren(...probs.slice(0, 3).map((p) => {
    const fill = el('span', { class: 'bar-fill' });
    fill.style.width = `${Math.max(0, Math.min(100, p.p * 100)).toFixed(1)}%`;
    return el('li', { class: 'bar' },
      el('span', { class: 'bar-label', text: p.label, dir: 'auto', title: p.label }),
      el('span', { class: 'bar-track' }, fill),
      el('span', { class: 'bar-value', text: formatPct(p.p) }));
  }));
}

export function rerenderPrediction() {
  if (lastPrediction) renderPrediction(lastPrediction);
  renderHeatmap();
}

const explainOn = () => $('explain-toggle').checked;

/**
 * The engine's prediction of `input` ({bytes} or {frame}) at the slider's threshold, shown; with
 * "Show why" on, its explanation (the same prediction and the class maps, one forward pass).
 */
async function predict(input) {
  const ask = ++asked;
  const opts = { threshold: project.settings.threshold };
  const explain = explainOn();
  const r = await project.withEngine((sw) => (explain
    ? (input.bytes ? sw.explain(input.bytes, opts) : sw.explainPixels(input.frame, opts))
    : (input.bytes ? sw.predict(input.bytes, opts) : sw.predictPixels(input.frame, opts))));
  if (ask !== asked) return;
  lastInput = input;
  renderPrediction(r);
  renderHeatmap();
  // "Send predictions to a device" (ui/device-out.js) sends what is shown; a shared link's
  // "Wrong?" (ui/corrections.js) keeps the photo or frame it is of.
  project.emit('prediction', { prediction: r, input });
}

/** The shown prediction's map of its best class over the photo or the live video, or nothing. */
function renderHeatmap() {
  const canvas = $('test-heatmap');
  const r = lastPrediction;
  const on = explainOn() && !!r?.heatmap && !!project.modelLabels;
  $('explain-opacity-field').hidden = !explainOn();
  $('explain-legend').hidden = !on;
  canvas.hidden = !on;
  if (!on) return;
  const media = lastInput?.frame ? $('test-video') : $('test-img');
  const best = r.probs[0]?.label;
  const index = project.modelLabels.indexOf(best);
  canvas.style.left = `${media.offsetLeft}px`;
  canvas.style.top = `${media.offsetTop}px`;
  const colors = project.rules.heatmapColors;
  drawHeatmap(canvas, media, r.heatmap, index, { colors, opacity: Number($('explain-opacity').value) });
  $('explain-bar').style.background = legendGradient(colors);
  $('explain-caption').textContent = t('explainCaption', { label: best });
}

export function clearPrediction() {
  asked += 1;
  lastPrediction = null;
  lastInput = null;
  $('test-label').hidden = true;
  renderHeatmap();
}

function resetTest() {
  clearPrediction();
  $('test-bars').replaceChildren();
}

export async function predictFile(file) {
  clearError();
  if (!project.model) { renderTestState(); return; }
  stopLive();
  const bytes = new Uint8Array(await file.arrayBuffer());
  const img = $('test-img');
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(new Blob([bytes], { type: file.type || 'image/jpeg' }));
  img.alt = file.name;
  img.hidden = false;
  try {
    await predict({ bytes });
  } catch (e) { showError('testFailed', e); }
}

async function startLive() {
  if (!project.model) { renderTestState(); return; }
  testCam ??= new Camera($('test-video'));
  try {
    await testCam.start();
  } catch (e) { showError('camError', e); return; }
  $('test-img').hidden = true;
  $('test-live').textContent = t('testStop');
  $('test-live').dataset.live = '1';
  const tick = async () => {
    if (!testCam.running) return;
    if (!liveInFlight && !document.hidden && !project.training) {
      const frame = testCam.frameImageData();
      if (frame) {
        liveInFlight = true;
        try {
          await predict({ frame });
        } catch (e) { showError('testFailed', e); stopLive(); } finally { liveInFlight = false; }
      }
    }
    if (testCam.running) liveTimer = setTimeout(tick, 200);
  };
  tick();
}

function stopLive() {
  clearTimeout(liveTimer);
  liveTimer = null;
  testCam?.stop();
  $('test-live').textContent = t('testLive');
  delete $('test-live').dataset.live;
}

export function relabelLive() { if (testCam?.running) $('test-live').textContent = t('testStop'); }

function onThreshold(value) {
  project.updateSettings({ threshold: value });
  $('threshold-value').textContent = value.toFixed(2);
  clearTimeout(rethreshold);
  if (!lastInput || !project.model) return;
  const input = lastInput;
  rethreshold = setTimeout(() => {
    predict(input).catch((e) => showError('testFailed', e));
  }, RETHRESHOLD_MS);
}

export function bindTesting(p) {
  project = p;
  $('explain-toggle').addEventListener('change', () => {
    renderHeatmap();
    if (explainOn() && lastInput && project.model) predict(lastInput).catch((e) => showError('testFailed', e));
  });
  $('explain-opacity').addEventListener('input', renderHeatmap);
  window.addEventListener('resize', renderHeatmap);
  $('threshold').addEventListener('input', (ev) => onThreshold(Number(ev.target.value)));
  onFilePicked($('test-input'), predictFile);
  // A photo dropped on the Test step is a test photo: taken here, before the page-wide drop
  // (ui/intake.js) would add it to a class.
  $('test-drop').addEventListener('drop', (ev) => {
    ev.preventDefault();
    const f = [...(ev.dataTransfer?.files || [])].find((x) => x.type.startsWith('image/') || isImageName(x.name));
    if (f) predictFile(f).catch((e) => showError('testFailed', e));
  });
  $('test-live').addEventListener('click', () => (testCam?.running ? stopLive() : startLive()));
  project.addEventListener('model', () => { renderTestState(); rerenderPrediction(); });
  project.addEventListener('cleared', resetTest);
  project.addEventListener('replaced', () => {
    resetTest();
    $('test-img').hidden = true;
    renderTestState();
  });
}
