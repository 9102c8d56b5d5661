// Reads a zip off the page's main thread (see project-zip.js): the File comes in, the parsed
// entries go back with their buffers transferred. Errors keep their ZipError code for the page.
//
// Two kinds of job:
// - {job: 'project' | 'dataset', file, limits}: the whole result in one answer, {ok, result}.
// - {job: 'dataset-stream', file}: a class-folder zip read as it is inflated
//   (project-zip.js `streamDatasetZip`): answered {ok, opened: {count, unlabelled, skipped}} once
//   its directory is read and checked; then each {next: true} is answered with the next batch,
//   {ok, batch: {items, skipped}} (its photos' buffers transferred), or {ok, batch: null} at the end.
// Every message is answered once, in order; an error ({ok: false, error}) ends the stream.

import { openDatasetZip, runJob, buffersOf } from './project-zip.js';

const failed = (e) => ({ ok: false, error: { code: e?.code ?? null, params: e?.params ?? {}, message: e?.message ?? String(e) } });

let stream = null; // the class-folder zip being read: openDatasetZip's answer
let chain = Promise.resolve(); // one message at a time, in order

async function handle(m) {
  if (m.job === 'dataset-stream') {
    stream = await openDatasetZip(m.file);
    const { count, unlabelled, skipped } = stream;
    return { msg: { ok: true, opened: { count, unlabelled, skipped } } };
  }
  if (m.next) {
    if (!stream) throw new Error('no zip is being read');
    const { value, done } = await stream.batches.next();
    const batch = done ? null : value;
    return { msg: { ok: true, batch }, transfer: batch ? [...buffersOf(batch.items)] : [] };
  }
  const result = await runJob(m.job, m.file, m.limits);
  return { msg: { ok: true, result }, transfer: [...buffersOf(result)] };
}

self.onmessage = (ev) => {
  chain = chain.then(async () => {
    try {
      const { msg, transfer } = await handle(ev.data);
      self.postMessage(msg, transfer);
    } catch (e) {
      stream = null;
      self.postMessage(failed(e));
    }
  });
};
