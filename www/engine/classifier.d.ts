// Types of engine/classifier.js: a trained classifier for other pages, p5.js sketches and the
// Scratch extension, predict only, in the engine's worker.

import type { Arch, Backend, DeviceChoice, Prediction, SortwiseStatus } from './client.js';

/** The "unsure" threshold the page's Test step starts with, and `classify`'s default. */
export declare const DEFAULT_THRESHOLD: number;

/** What `loadClassifier` opens: a share link (`…#m=…` / `…#n=…`), a `.sortwise` file's URL, a File or Blob, or bytes. */
export type ClassifierSource = string | URL | Blob | ArrayBuffer | ArrayBufferView;

/** What `classify` reads: a webcam `<video>`, an image, a canvas, ImageData, an encoded photo, or a p5.js object holding one (`createCapture`, `loadImage`). */
export type ClassifierInput =
  | HTMLVideoElement | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | ImageBitmap | VideoFrame
  | ImageData | { data: Uint8Array | Uint8ClampedArray; width: number; height: number }
  | Blob | ArrayBuffer | ArrayBufferView
  | { elt: HTMLVideoElement | HTMLImageElement | HTMLCanvasElement }
  | { canvas: HTMLCanvasElement; width: number; height: number };

export interface ClassifierOptions {
  /** As `Sortwise.create`'s; default `'auto'`. */
  device?: DeviceChoice;
  /** Below this top probability the label is `unsure`; default `DEFAULT_THRESHOLD`. */
  threshold?: number;
  /** The backbone's weights, when not this site's `weights/` (then `sha256` checks them). */
  weightsUrl?: string;
  sha256?: string;
  onStatus?: (status: SortwiseStatus) => void;
}

/** Loads a trained classifier; rejects with a message saying why a source is not one. */
export declare function loadClassifier(source: ClassifierSource, opts?: ClassifierOptions): Promise<Classifier>;

/** The backbone a `.sortwise` file names in its header (throws for a file that is not one). */
export declare function modelArch(bytes: Uint8Array): Arch;

export declare class Classifier {
  private constructor();
  /** The classes, in the model's order. */
  readonly labels: string[];
  readonly arch: Arch;
  readonly backend: Backend;
  /** Below this top probability `classify` says `unsure` (0 to 1). */
  threshold: number;
  /** `{label, confidence, unsure, probs}`, or null while a video has no frame yet. */
  classify(input: ClassifierInput, opts?: { threshold?: number }): Promise<Prediction | null>;
  /** Ends the worker. */
  close(): void;
}
