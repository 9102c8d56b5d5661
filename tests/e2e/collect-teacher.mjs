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
  // A page that has asked for the camera offers its real addresses; one that has not offers only
  // mDNS names, which this sandbox resolves now and then: a phone's first messages then stalled
  // for tens of seconds with the channel open (CI, twice). A teacher who scans phones' codes with
  // the webcam has asked; here it is asked before the panel makes its first offer.
  await page.evaluate(async () => {
    try { (await navigator.mediaDevices.getUserMedia({ video: true })).getTracks().forEach((tr) => tr.stop()); } catch { /* no camera: mDNS names */ }
  });
  await page.click('#collect-open');
}
