// Step 3: the last training's report: validation accuracy, the per-class table, the confusion
// matrix, and the misclassified photos behind one of its cells.

import { t, formatPct, formatSeconds } from '../i18n.js';
import { $, el, thumbUrl } from './dom.js';
import { drawHeatmap } from './heatmap.js';

let project = null;

export function renderResults() {
  const r = project.report;
  $('results-body').hidden = !r;
  $('results-empty').hidden = !!r;
  if (!r) return;
  const hasVal = (r.valSize ?? 1) > 0 && Number.isFinite(r.valAccuracy);
  $('val-acc').textContent = hasVal ? formatPct(r.valAccuracy) : '—';
  $('results-meta').textContent = hasVal
    ? t('resultsMeta', { train: r.trainSize ?? '?', val: r.valSize ?? '?', best: r.bestEpoch ?? '?', run: r.epochsRun ?? '?', s: formatSeconds(r.seconds) })
    : t('noValidation');
  // The temperature the model predicts with, fitted on the validation photos.
  const cal = r.calibration;
  $('results-calibration').hidden = !cal;
  if (cal) {
    $('results-calibration').textContent = t('calibrationMeta', {
      t: cal.temperature.toFixed(2), before: formatPct(cal.eceBefore), after: formatPct(cal.eceAfter),
    });
  }

  const head = el('thead', {}, el('tr', {}, ...['colClass', 'colPrecision', 'colRecall', 'colF1', 'colSupport'].map((k) => el('th', { scope: 'col', text: t(k) }))));
  const body = el('tbody');
  for (const row of r.perClass || []) {
    body.append(el('tr', {},
      el('th', { scope: 'row', text: row.label }),
      el('td', { text: formatPct(row.precision) }),
      el('td', { text: formatPct(row.recall) }),
      el('td', { text: Number.isFinite(row.f1) ? row.f1.toFixed(2) : '—' }),
      el('td', { text: String(row.support ?? '') })));
  }
  $('per-class').replaceChildren(head, body);

  const labels = r.labels || [];
  const conf = r.confusion || [];
  const max = Math.max(1, ...conf.flat());
  const chead = el('thead', {}, el('tr', {},
    el('th', { class: 'corner', text: `${t('actual')} \\ ${t('predicted')}` }),
    ...labels.map((l) => el('th', { scope: 'col', text: l }))));
  const cbody = el('tbody');
  conf.forEach((row, i) => {
    const tr = el('tr', {}, el('th', { scope: 'row', text: labels[i] ?? '' }));
    row.forEach((v, j) => {
      const td = el('td', { class: i === j ? 'diag' : (v ? 'off' : '') });
      td.dataset.level = String(Math.min(4, Math.ceil((v / max) * 4)));
      if (i !== j && v > 0) {
        const b = el('button', { type: 'button', class: 'cell-btn', text: String(v) });
        b.setAttribute('aria-label', `${labels[i]} → ${labels[j]}: ${v}`);
        b.addEventListener('click', () => showMisclassified(labels[i], labels[j]));
        td.append(b);
      } else td.textContent = String(v);
      tr.append(td);
    });
    cbody.append(tr);
  });
  $('confusion').replaceChildren(chead, cbody);
  $('mis-view').hidden = true;
}

function showMisclassified(actual, predicted) {
  const view = $('mis-view');
  view.hidden = false;
  $('mis-title').textContent = t('misTitle', { actual, predicted });
  const items = (project.report?.misclassified || []).filter((m) => m.label === actual && m.predicted === predicted);
  const figs = [];
  for (const m of items) {
    const rec = m.key != null ? project.images.get(m.key) : null;
    if (!rec) continue;
    const img = el('img', { src: thumbUrl(rec), alt: `${actual} → ${predicted}` });
    const fig = el('figure', { class: 'thumb' }, img, el('figcaption', { text: formatPct(m.confidence) }));
    if ($('explain-toggle').checked) explainThumb(fig, img, rec, predicted);
    figs.push(fig);
  }
  if (!figs.length) figs.push(el('p', { class: 'empty', text: t('misNone') }));
  $('mis-thumbs').replaceChildren(...figs);
  view.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

/** Why `rec` was taken for `predicted`: that class's map over its thumbnail ("Show why" on). */
async function explainThumb(fig, img, rec, predicted) {
  const canvas = el('canvas', { class: 'heatmap' });
  fig.append(canvas);
  try {
    const e = await project.withEngine((sw) => sw.explain(rec.thumb.slice(), {}));
    if (!img.complete) await new Promise((resolve) => img.addEventListener('load', resolve, { once: true }));
    const index = (project.modelLabels || []).indexOf(predicted);
    drawHeatmap(canvas, img, e.heatmap, index, { colors: project.rules.heatmapColors, opacity: Number($('explain-opacity').value) });
  } catch { canvas.remove(); }
}

export function bindResults(p) {
  project = p;
  project.addEventListener('model', renderResults);
  project.addEventListener('replaced', renderResults);
}
