// A trained classifier for other pages, p5.js sketches and the Scratch extension: predict only,
// no images, no training (Teachable Machine's `libraries/image` split: this is the predict-only
// side; `Sortwise` in client.js is the trainable one, and this runs on it, in its worker).
//
//   const c = await loadClassifier('https://…/#m=…');   // a share link, a .sortwise file or URL
//   const { label, confidence, unsure, probs } = await c.classify(video);
//
// A share link's bytes and a `.sortwise` file both name their backbone; its weights come from
// this site's weights/ (as the page's), checked against the manifest's sha256. Nothing is sent
// anywhere: a link's model is in its fragment, which the browser never sends.

import { Sortwise } from './client.js';
import { frameSize } from './frame.js';
import { isShareBytes, linkInfo, readLink } from '../share/share-link.js';

/** The "unsure" threshold the page starts with (its Test step's slider); `classify` uses it too. */
export const DEFAULT_THRESHOLD = 0.6;

/** A `.sortwise` file's header is a few hundred bytes of JSON; past this it is not one. */
const MAX_HEADER = 1 << 20;

function refused(why) {
  return new Error(`not a sortwise classifier: ${why}`);
}

/**
 * The backbone a `.sortwise` file was trained on, from its safetensors header
 * (`__metadata__.sortwise`, src/formats/model_file.rs), read without the engine: the engine must be
 * started for that backbone before it can check the rest.
 */
export function modelArch(bytes) {
  if (bytes.length < 8) throw refused('the file is too short');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = view.getUint32(0, true);
  if (view.getUint32(4, true) !== 0 || len > MAX_HEADER || 8 + len > bytes.length) throw refused('its header is damaged');
  let meta;
  try {
    meta = JSON.parse(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len))).__metadata__.sortwise);
  } catch {
    throw refused('it is not a .sortwise model file');
  }
  if (typeof meta?.arch !== 'string') throw refused('it names no backbone');
  return meta.arch;
}

async function fetchBytes(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * `source` as `{kind: 'link' | 'file', bytes, arch}`: a share link (any address whose fragment
 * is `#m=…` or `#n=…`, or the fragment alone), the URL of a `.sortwise` file, a File/Blob, or
 * bytes (a `.sortwise` file or a link's bytes).
 */
async function readSource(source) {
  let bytes;
  if (typeof source === 'string' || source instanceof URL) {
    const text = String(source).trim();
    const hash = /#[mn]=/.test(text) ? text.slice(text.indexOf('#')) : null;
    if (hash) bytes = readLink(hash);
    else bytes = await fetchBytes(new URL(text, globalThis.document?.baseURI ?? globalThis.location?.href));
  } else if (typeof Blob !== 'undefined' && source instanceof Blob) {
    bytes = new Uint8Array(await source.arrayBuffer());
  } else if (source instanceof ArrayBuffer) {
    bytes = new Uint8Array(source);
  } else if (ArrayBuffer.isView(source)) {
    bytes = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  } else {
    throw new TypeError('loadClassifier takes a share link, the URL of a .sortwise file, a File or Blob, or bytes');
  }
  if (isShareBytes(bytes)) return { kind: 'link', bytes, arch: linkInfo(bytes).arch };
  return { kind: 'file', bytes, arch: modelArch(bytes) };
}

/**
 * Loads a classifier: `opts` are `{device: 'auto'|'webgpu'|'cpu', threshold, weightsUrl, sha256,
 * onStatus}` (device, weights and status as `Sortwise.create`'s).
 */
export async function loadClassifier(source, opts = {}) {
  const { kind, bytes, arch } = await readSource(source);
  const { threshold = DEFAULT_THRESHOLD, ...engineOpts } = opts;
  const engine = await Sortwise.create({ device: 'auto', ...engineOpts, arch, augment: 0 });
  try {
    const file = kind === 'link' ? await engine.sharedModel(bytes) : bytes;
    const { labels } = await engine.importModel(file);
    return new Classifier(engine, labels, threshold);
  } catch (err) {
    engine.terminate();
    throw err;
  }
}

/** What can be drawn: the element inside a p5.js object (`createCapture`, `createImg`, p5.Image). */
function drawable(input) {
  if (input?.elt instanceof Object && !(typeof Element !== 'undefined' && input instanceof Element)) return input.elt;
  if (input?.canvas && typeof input.width === 'number' && !('getContext' in input)) return input.canvas;
  return input;
}

function sizeOf(src) {
  if (typeof HTMLVideoElement !== 'undefined' && src instanceof HTMLVideoElement) {
    return src.readyState >= 2 ? [src.videoWidth, src.videoHeight] : [0, 0];
  }
  if (typeof HTMLImageElement !== 'undefined' && src instanceof HTMLImageElement) return [src.naturalWidth, src.naturalHeight];
  if (typeof VideoFrame !== 'undefined' && src instanceof VideoFrame) return [src.displayWidth, src.displayHeight];
  return [src.width, src.height];
}

/** A predict-only classifier in the engine's worker (loadClassifier makes it). */
export class Classifier {
  #engine;
  #canvas = null;

  constructor(engine, labels, threshold) {
    this.#engine = engine;
    /** The classes, in the model's order. */
    this.labels = labels;
    /** Below this top probability `classify` says `unsure` (0 to 1). */
    this.threshold = threshold;
    this.arch = engine.arch;
    this.backend = engine.backend;
  }

  #pixels(src) {
    const [w, h] = sizeOf(src);
    if (!w || !h) return null;
    const [cw, ch] = frameSize(w, h);
    this.#canvas ??= typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(cw, ch) : document.createElement('canvas');
    this.#canvas.width = cw;
    this.#canvas.height = ch;
    const ctx = this.#canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(src, 0, 0, cw, ch);
    return ctx.getImageData(0, 0, cw, ch);
  }

  /**
   * The prediction for an image: a video (a webcam), an image, a canvas, an ImageBitmap or
   * VideoFrame, ImageData, an encoded photo (Blob, bytes), or the p5.js object holding one.
   * Resolves to `{label, confidence, unsure, probs}`, or to null while a video has no frame yet.
   * Frames are scaled as the page scales its camera's (engine/frame.js), so both predict alike.
   */
  async classify(input, { threshold = this.threshold } = {}) {
    const opts = { threshold };
    const src = drawable(input);
    if (src == null) throw new TypeError('classify needs an image, a video, a canvas or a photo');
    if (typeof Blob !== 'undefined' && src instanceof Blob) {
      return this.#engine.predict(new Uint8Array(await src.arrayBuffer()), opts);
    }
    if (src instanceof ArrayBuffer || ArrayBuffer.isView(src)) return this.#engine.predict(new Uint8Array(src.buffer ?? src, src.byteOffset ?? 0, src.byteLength), opts);
    if (src.data && typeof src.width === 'number' && typeof src.height === 'number') return this.#engine.predictPixels(src, opts);
    if (typeof HTMLImageElement !== 'undefined' && src instanceof HTMLImageElement && !src.complete) await src.decode();
    const frame = this.#pixels(src);
    return frame && this.#engine.predictPixels(frame, opts);
  }

  /** Ends the worker; the classifier cannot be used afterwards. */
  close() {
    this.#engine.terminate();
  }
}
