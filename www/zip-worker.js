// Reads a zip off the page's main thread (see project-zip.js): the File comes in, the parsed
// entries go back with their buffers transferred. Errors keep their ZipError code for the page.

import { runJob, buffersOf } from './project-zip.js';

self.onmessage = async (ev) => {
  const { job, file, limits } = ev.data;
  try {
    const result = await runJob(job, file, limits);
    self.postMessage({ ok: true, result }, [...buffersOf(result)]);
  } catch (e) {
    self.postMessage({ ok: false, error: { code: e?.code ?? null, params: e?.params ?? {}, message: e?.message ?? String(e) } });
  }
};
