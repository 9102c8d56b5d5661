// Step 2: the Train button and its progress, the loss and accuracy charts, and the advanced
// settings (their defaults are the engine's, project.js withDefaults).

import { t, formatPct, formatSeconds } from '../i18n.js';
import { TrainCharts } from '../charts.js';
import { train as trainProject, rebuildForAugment, rebuildForFinetune } from '../project/project-engine.js';
import { fromForm } from '../project/settings.js';
import { $ } from './dom.js';
import { clearError, showError, status } from './status.js';

let project = null;
let charts = null;

function chartLabels() { return { train: t('trainLoss'), val: t('valLoss'), acc: t('chartAcc') }; }
function ensureCharts() { charts ??= new TrainCharts($('loss-chart'), $('acc-chart'), chartLabels()); }

// The number fields; their ranges are the engine's (settings.js).
const NUMBERS = ['epochs', 'lr', 'valSplit', 'seed', 'patience', 'labelSmoothing', 'augment', 'l2sp'];

/** The settings fields' values (an empty or unreadable field: the default). */
function readSettings() {
  const defaults = project.withDefaults();
  const read = {};
  for (const k of NUMBERS) read[k] = fromForm(k, $(`set-${k}`).value, project.rules) ?? defaults[k];
  read.optimizer = $('set-optimizer').value;
  read.balance = $('set-balance').value;
  read.finetuneLast = $('set-finetuneLast').checked;
  read.refit = $('set-refit').checked;
  return read;
}

export function renderSettings() {
  const s = project.settings;
  for (const k of NUMBERS) $(`set-${k}`).value = s[k] == null ? '' : String(s[k]);
  if (s.optimizer != null) $('set-optimizer').value = s.optimizer;
  if (s.balance != null) $('set-balance').value = s.balance;
  $('set-finetuneLast').disabled = false;
  $('set-finetuneLast').checked = Boolean(s.finetuneLast);
  $('set-refit').checked = s.refit !== false;
  $('set-l2sp').disabled = !s.finetuneLast;
  $('threshold').value = String(s.threshold);
  $('threshold-value').textContent = Number(s.threshold).toFixed(2);
}

function setTraining(on) {
  document.body.classList.toggle('training', on);
  $('train-btn').disabled = on;
  $('cancel-btn').hidden = !on;
  for (const id of ['arch', 'apply-preset', 'new-project', 'import-project']) $(id).disabled = on;
}

export function showHistory(history) {
  if (!history?.length) { charts?.setHistory([]); $('charts').hidden = true; return; }
  $('charts').hidden = false;
  ensureCharts();
  charts.setHistory(history);
}

function showProgress(p) {
  const bar = $('train-bar');
  if ((p.phase === 'train' || p.phase === 'finetune') && p.epochs) {
    bar.max = p.epochs;
    bar.value = p.epoch;
    const loss = Number.isFinite(p.loss) ? p.loss.toFixed(3) : '—';
    const key = p.phase === 'finetune' ? 'finetuneEpoch' : 'trainEpoch';
    $('train-text').textContent = t(key, { epoch: p.epoch, epochs: p.epochs, loss, acc: formatPct(p.valAccuracy) });
    charts.redraw();
  } else if ((p.phase === 'refit' || p.phase === 'refit-finetune') && p.epochs) {
    // The final model on every photo: no validation left, so nothing for the charts.
    bar.max = p.epochs;
    bar.value = p.epoch;
    $('train-text').textContent = t('refitProgress', { done: p.epoch, total: p.epochs });
  } else if (p.total) {
    bar.max = p.total;
    bar.value = p.done;
    $('train-text').textContent = t('trainFeatures', { done: p.done, total: p.total });
  }
}

async function train() {
  clearError();
  if (project.training) return;
  const withImages = project.classes.filter((c) => c.keys.length);
  const empty = project.classes.filter((c) => !c.keys.length);
  if (withImages.length < 2) { showError('trainFailed', new Error(t('trainNeedClasses'))); return; }
  const leftOut = empty.map((c) => c.label);
  if (empty.length && !window.confirm(t('trainLeaveOutEmpty', { labels: leftOut.join(', '), n: withImages.length }))) {
    status(t('trainEmptyClass', { label: leftOut[0] }));
    return;
  }
  const s = Object.assign(project.settings, readSettings());
  const opts = {
    epochs: s.epochs, optimizer: s.optimizer, lr: s.lr, valSplit: s.valSplit, balance: s.balance,
    labelSmoothing: s.labelSmoothing, seed: s.seed, patience: s.patience,
    finetuneLast: s.finetuneLast, l2sp: s.l2sp, refit: s.refit !== false,
  };
  $('train-progress').hidden = false;
  $('charts').hidden = false;
  $('train-bar').removeAttribute('value');
  $('train-text').textContent = t('trainStarting');
  ensureCharts();
  charts.reset();
  // Epochs can arrive every few milliseconds: record them all, draw at most once a frame.
  let latest = null;
  let frame = 0;
  const draw = () => {
    frame = 0;
    if (latest && project.training) showProgress(latest);
  };
  try {
    const report = await trainProject(project, opts, (p) => {
      latest = p;
      if ((p.phase === 'train' || p.phase === 'finetune') && p.epochs) charts.record(p);
      if (!frame) frame = requestAnimationFrame(draw);
    }, leftOut);
    cancelAnimationFrame(frame);
    $('train-bar').max = 1;
    $('train-bar').value = 1;
    $('train-text').textContent = t('trainDone', { s: formatSeconds(report.seconds), acc: formatPct(report.valAccuracy) });
    charts.setHistory(report.history);
  } catch (e) {
    if (e && e.message === 'cancelled') {
      $('train-text').textContent = t('trainCancelled');
      status(t('trainCancelled'));
      showHistory(project.report?.history); // the previous model is kept: show its curves again
    } else {
      $('train-text').textContent = '';
      $('train-progress').hidden = true;
      showError('trainFailed', e);
    }
  }
}

export function relabelCharts() { charts?.relabel(chartLabels()); }

export function bindTraining(p) {
  project = p;
  // The fields' bounds are the engine's (rules().settings, fixed for the page's life), never a
  // copy in index.html.
  for (const { key, min, max } of project.rules.settings) {
    if (!NUMBERS.includes(key)) continue;
    $(`set-${key}`).min = String(min);
    $(`set-${key}`).max = String(max);
  }
  $('train-btn').addEventListener('click', () => train());
  $('cancel-btn').addEventListener('click', () => project.sw?.cancel());
  for (const input of document.querySelectorAll('#advanced input, #advanced select')) {
    input.addEventListener('change', () => {
      const before = { ...project.settings };
      project.updateSettings(readSettings());
      $('set-l2sp').disabled = !project.settings.finetuneLast;
      if (input.id === 'set-augment' && project.settings.augment !== before.augment) { clearError(); rebuildForAugment(project); }
      if (input.id === 'set-finetuneLast' && project.settings.finetuneLast !== before.finetuneLast) { clearError(); rebuildForFinetune(project, project.settings.finetuneLast); }
    });
  }
  const on = (type, fn) => project.addEventListener(type, (ev) => fn(ev.detail));
  on('settings', renderSettings);
  on('training', ({ on: training }) => setTraining(training));
  // once per engine batch while photos stream in: the attribute is only written when it changes
  on('stale', () => { if ($('train-stale').hidden === project.stale) $('train-stale').hidden = !project.stale; });
  on('history', ({ history }) => showHistory(history));
  on('replaced', () => {
    $('train-stale').hidden = !project.stale;
    renderSettings();
  });
}
