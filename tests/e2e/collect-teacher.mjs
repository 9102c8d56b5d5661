// The teacher's side the collect tests share (collect.mjs, collect-engines.mjs, collect-peer.mjs):
// the page at `base` on the CPU, an empty project with the classes `labels`, the collect panel open.

export async function openTeacher(page, base, labels = ['glass', 'paper'], { timeout = 300000 } = {}) {
  await page.goto(`${base}/www/?device=cpu`);
  await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout });
  await page.selectOption('#preset', 'empty');
  await page.click('#apply-preset');
  for (const label of labels) {
    await page.fill('#new-class', label);
    await page.press('#new-class', 'Enter');
  }
  await page.waitForFunction((n) => window.sortwiseDebug.state.classes.length === n, labels.length);
  await page.click('#collect-open');
}
