// Live training charts with uPlot (vendored): loss (train and validation) and validation accuracy
// against the epoch.

import uPlot from './vendor/uPlot.esm.js';

function width(el) {
  return Math.max(240, Math.floor(el.clientWidth || el.parentElement?.clientWidth || 320));
}

export class TrainCharts {
  constructor(lossEl, accEl, labels) {
    this.lossEl = lossEl;
    this.accEl = accEl;
    this.labels = labels;
    this.data = { epoch: [], loss: [], valLoss: [], acc: [] };
    this.offset = 0;
    this.loss = null;
    this.acc = null;
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(lossEl.parentElement);
  }

  build() {
    this.destroy(false);
    const axis = { stroke: '#5a655f', grid: { stroke: '#e3e7e1' }, ticks: { stroke: '#e3e7e1' } };
    const base = (el) => ({ width: width(el), height: 180, legend: { live: false }, cursor: { drag: { x: false, y: false } } });
    this.loss = new uPlot({
      ...base(this.lossEl),
      scales: { x: { time: false } },
      axes: [{ ...axis }, { ...axis, size: 50 }],
      series: [
        { label: 'epoch' },
        { label: this.labels.train, stroke: '#2f6f4f', width: 2 },
        { label: this.labels.val, stroke: '#c46a2b', width: 2, dash: [6, 4] },
      ],
    }, [this.data.epoch, this.data.loss, this.data.valLoss], this.lossEl);
    this.acc = new uPlot({
      ...base(this.accEl),
      scales: { x: { time: false }, y: { range: [0, 1] } },
      axes: [{ ...axis }, { ...axis, size: 50, values: (u, v) => v.map((x) => `${Math.round(x * 100)}%`) }],
      series: [
        { label: 'epoch' },
        { label: this.labels.acc, stroke: '#3465a4', width: 2 },
      ],
    }, [this.data.epoch, this.data.acc], this.accEl);
  }

  reset() {
    this.data = { epoch: [], loss: [], valLoss: [], acc: [] };
    this.offset = 0;
    this.build();
  }

  /** Adds an epoch without drawing (call redraw() when the screen should catch up). */
  record(p) {
    const num = (x) => (Number.isFinite(x) ? x : null);
    // A second phase (fine-tuning after the head-only epochs) counts its epochs from 1 again:
    // keep the x axis increasing.
    const xs = this.data.epoch;
    const last = xs.length ? xs[xs.length - 1] : 0;
    if (p.epoch + this.offset <= last) this.offset = last;
    this.data.epoch.push(p.epoch + this.offset);
    this.data.loss.push(num(p.loss));
    this.data.valLoss.push(num(p.valLoss));
    this.data.acc.push(num(p.valAccuracy));
  }

  push(p) {
    this.record(p);
    this.redraw();
  }

  setHistory(history) {
    this.data = { epoch: [], loss: [], valLoss: [], acc: [] };
    this.offset = 0;
    for (const h of history || []) this.record(h);
    this.build();
  }

  redraw() {
    if (!this.loss) { this.build(); return; }
    this.loss.setData([this.data.epoch, this.data.loss, this.data.valLoss]);
    this.acc.setData([this.data.epoch, this.data.acc]);
  }

  relabel(labels) {
    this.labels = labels;
    if (this.loss) this.build();
  }

  resize() {
    if (!this.loss) return;
    this.loss.setSize({ width: width(this.lossEl), height: 180 });
    this.acc.setSize({ width: width(this.accEl), height: 180 });
  }

  destroy(all = true) {
    this.loss?.destroy();
    this.acc?.destroy();
    this.loss = null;
    this.acc = null;
    if (all) this.observer.disconnect();
  }
}
