// View updates that may wait a little: while photos stream in (a dropped zip gives an engine
// batch every ~0.2 s, an autosave every 0.5 s), the progress bar, the cards' counts and the save
// status are each brought up to date at most every LIVE_MS, all in the same task so that the page
// is restyled, laid out and painted once for all of them. That work runs on the main thread,
// which on two cores is time taken from the engine's threads (bench/zip5000.mjs).

const LIVE_MS = 500;
const waiting = new Map(); // key -> the latest update for it
let timer = null;

/** Runs `update` within LIVE_MS, with the other waiting updates; a later call with the same `key` replaces it. */
export function soon(key, update) {
  waiting.set(key, update);
  timer ??= setTimeout(flush, LIVE_MS);
}

/** Runs every waiting update now (an add ended: the page shows where it is at once). */
export function flush() {
  clearTimeout(timer);
  timer = null;
  const updates = [...waiting.values()];
  waiting.clear();
  for (const update of updates) {
    try {
      update();
    } catch (e) {
      console.error(e); // one view's failure leaves the others drawn
    }
  }
}
