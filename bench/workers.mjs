// The browser benchmarks' workers: each script started as a worker of the harness page, and a
// `call(i, op, args)` that posts `{ id, op, args }` to worker i and resolves with its answer
// (bench/browser-worker.js and litert-worker.js answer `{ id, ok, value | error }`). Works with
// puppeteer's and playwright's pages alike (one argument to `evaluate`).

/** The sortwise benchmark worker (an ES module). */
export const BENCH_WORKER = Object.freeze({ url: '/bench/browser-worker.js', module: true });

/** Starts `scripts` ([{ url, module }]) in `page`; the `call` for them. */
export async function startWorkers(page, scripts) {
  await page.evaluate((list) => {
    const pending = new Map();
    let next = 1;
    window.benchWorkers = list.map(({ url, module }) => {
      const w = module ? new Worker(url, { type: 'module' }) : new Worker(url);
      w.onmessage = ({ data }) => {
        const p = pending.get(data.id);
        pending.delete(data.id);
        if (data.ok) p.resolve(data.value); else p.reject(new Error(data.error));
      };
      return w;
    });
    window.benchCall = (i, op, args) => new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      window.benchWorkers[i].postMessage({ id, op, args });
    });
  }, scripts);
  return (i, op, args) => page.evaluate(([w, o, a]) => window.benchCall(w, o, a), [i, op, args]);
}

/** The harness page the workers start from, its console errors printed (puppeteer). */
export async function harnessPage(browser, base) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error('console error:', m.text()); });
  await page.goto(`${base}/tests/e2e/harness.html`);
  return page;
}
