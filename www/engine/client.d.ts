// Types of engine/client.js, the package's main export (`import { Sortwise } from 'sortwise'`):
// the wasm Trainer run in a module Web Worker, every method async. The option, progress and result
// types are the Trainer's (trainer.d.ts). Its methods are engine/operations.js's list, checked by
// tests/js/operations.test.mjs.

import type {
  Arch, Backend, DeviceChoice, DiagnoseOptions, Diagnosis, Explanation, Fit, Prediction, PredictOptions, Rules, SharedModel, TrainOptions, TrainProgress, TrainReport,
} from './trainer.js';

export type {
  Arch, Backend, Balance, ClassMetrics, DeviceChoice, EpochStats, FineTuneStats, Fit, LabelProbability,
  Calibration, ClassAdvice, DiagnoseOptions, Diagnosis, DuplicatePair, Explanation, Heatmap, LabelSuspect,
  Misclassified, Optimizer, PerClass, Prediction, PredictOptions, Rules, SharedModel, TrainOptions, TrainProgress, TrainReport,
} from './trainer.js';

/** Weights being fetched (`cached`: from Cache Storage, no download). */
export interface WeightsStatus {
  phase: 'weights';
  loaded: number;
  /** 0 when the server sends no Content-Length. */
  total: number;
  cached?: boolean;
}

/** The backend is running (after create, and again after a switch to the CPU). */
export interface BackendStatus {
  phase: 'backend';
  backend: Backend;
  reason: string;
}

/** Re-adding images into a fresh worker after a device loss or a trap. */
export interface ReplayStatus {
  phase: 'replay';
  done: number;
  total: number;
}

/** `device: 'auto'` is timing a candidate (device-choice.js), the CPU first. */
export interface MeasureStatus {
  phase: 'measure';
  device: 'cpu' | 'webgpu';
}

/**
 * A step of the worker's start has begun: `pkg-cpu-relaxed` (where the engine has relaxed SIMD;
 * `pkg-cpu` follows if it does not load), `pkg-cpu` or `pkg` (the wasm build loading), `thread
 * pool` (20 s at most, then a fresh worker: threads once more, then the single-threaded `pkg`),
 * `weights`, `trainer`.
 */
export interface StartStatus {
  phase: 'start';
  step: 'pkg-cpu-relaxed' | 'pkg-cpu' | 'pkg' | 'thread pool' | 'weights' | 'trainer';
}

export type SortwiseStatus = WeightsStatus | BackendStatus | ReplayStatus | MeasureStatus | StartStatus;

/** How `device: 'auto'` was decided, when it was measured. */
export interface DeviceMeasurement {
  device: Backend;
  /** ms per image of the timed batch; null when WebGPU failed or was abandoned (see `gpuNote`). */
  gpuMs: number | null;
  gpuNote: string | null;
  cpuMs: number | null;
  cpuNote: string | null;
  cpuThreads: number;
  /** When it was measured (ms since the epoch). */
  at: number;
  /** Reused from an earlier visit. */
  cached: boolean;
}

/** Test hooks of the `auto` measurement. */
export interface DeviceChoiceDebug {
  /** Treat a software adapter (SwiftShader) as a candidate. */
  measureSoftwareAdapter?: boolean;
  /** Multiply the CPU's measured time. */
  cpuSlowdown?: number;
  /** Ignore a kept verdict. */
  forgetVerdict?: boolean;
}

export interface SortwiseOptions {
  /** Default: `weights/manifest.json`'s first backbone. */
  arch?: Arch;
  /** Default `auto`. */
  device?: DeviceChoice;
  /** Augmented views per added image, 0-16, default 0. */
  augment?: number;
  /** Default `crop`. */
  fit?: Fit;
  /** Lets `train({finetuneLast: true})` run, at 88-800 KB more memory per view. Default false. */
  finetune?: boolean;
  /**
   * The backbone's `.safetensors`. Default: from `weights/manifest.json` next to this module, which
   * the package does not include: a page that bundles the package serves the weights there or
   * passes this (and `sha256`).
   */
  weightsUrl?: string;
  /** Hex sha256 of the weight file, checked on every load. */
  sha256?: string;
  onStatus?: (status: SortwiseStatus) => void;
  /**
   * For a page that keeps its own images: after the engine restarts (its WebGPU device was lost,
   * or it trapped) this loads them and the model back, through `engine`, whose calls do not wait
   * in the queue. With it the client keeps no images, ids are the engine's, and the failed call
   * rejects with `EngineLost` for the caller to make again. Without it the client keeps a journal
   * and retries by itself.
   */
  restore?: (engine: RestoreEngine) => Promise<void>;
  /** Tests only. */
  debug?: DeviceChoiceDebug;
}

/** What `restore` loads a restarted engine through. */
export interface RestoreEngine {
  /** Whether the engine keeps stage inputs: images must then be re-added from pixels. */
  finetune: boolean;
  addEmbedding(label: string, embedding: Float32Array | number[], thumbnail?: Uint8Array): Promise<number>;
  addImage(label: string, bytes: Uint8Array): Promise<AddedImage>;
  importModel(bytes: Uint8Array): Promise<{ labels: string[] }>;
}

/**
 * A call failed because the engine restarted (with `restore`). `retry`: the device failed, so
 * the call can be made again, with the ids as they are now; false after a trap.
 */
export class EngineLost extends Error {
  constructor(message: string, retry: boolean);
  readonly retry: boolean;
}

export interface AddedImage {
  id: number;
  /** JPEG copy, shorter side at most 256 px. */
  thumbnail: Uint8Array;
  /** All views, concatenated (`dim` values each). */
  embedding: Float32Array;
}

/** Per photo of `addImages`: added, or why not. */
export type AddImagesResult = AddedImage | { error: string };

/** Pixels for `predictPixels`: an ImageData or the same fields. */
export interface Pixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export class Sortwise {
  private constructor(opts: SortwiseOptions);
  /** Start the worker, load the weights (with progress through `onStatus`) and create the trainer. */
  static create(opts?: SortwiseOptions): Promise<Sortwise>;
  /** What actually runs. */
  backend: Backend;
  /** Why (and, on the CPU, on how many threads). */
  backendReason: string;
  threads: number;
  /**
   * The wasm build the worker loaded: `pkg-cpu-relaxed` and `pkg-cpu` are the CPU on wasm
   * threads (with and without relaxed SIMD's fused multiply-add), `pkg` WebGPU + one CPU thread.
   */
  wasmPackage: 'pkg' | 'pkg-cpu' | 'pkg-cpu-relaxed';
  /** Photos to hand `addImages` at once for the fastest embedding a photo (the trainer's). */
  addBatch: number;
  arch: Arch;
  dim: number;
  finetune: boolean;
  /** How `device: 'auto'` was decided when it was measured; null otherwise. */
  measurement: DeviceMeasurement | null;
  addImage(label: string, bytes: Uint8Array): Promise<AddedImage>;
  addImages(label: string, images: Uint8Array[]): Promise<AddImagesResult[]>;
  addEmbedding(label: string, embedding: Float32Array | ArrayLike<number>, thumbnail?: Uint8Array): Promise<number>;
  removeImage(id: number): Promise<boolean>;
  renameClass(from: string, to: string): Promise<void>;
  removeClass(label: string): Promise<number>;
  labels(): Promise<string[]>;
  counts(): Promise<number[]>;
  /** `onProgress` after every epoch; `cancel()` makes it reject with 'cancelled' (the previous model stays). */
  train(opts?: TrainOptions, onProgress?: (p: TrainProgress) => void): Promise<TrainReport>;
  cancel(): void;
  predict(bytes: Uint8Array, opts?: PredictOptions): Promise<Prediction>;
  predictPixels(image: ImageData | Pixels, opts?: PredictOptions): Promise<Prediction>;
  /** The prediction and every class's activation map (one forward pass). */
  explain(bytes: Uint8Array, opts?: PredictOptions): Promise<Explanation>;
  explainPixels(image: ImageData | Pixels, opts?: PredictOptions): Promise<Explanation>;
  /** The data's check-up: duplicates, leaks, likely label errors, per-class advice (ids are this client's). */
  diagnose(opts?: DiagnoseOptions, onProgress?: (p: TrainProgress) => void): Promise<Diagnosis>;
  exportModel(): Promise<Uint8Array>;
  /** The trained model with its backbone as one ONNX file (onnxruntime anywhere; docs/CLI.md "Export to ONNX"). */
  exportOnnx(opts?: { dtype?: 'f32' | 'f16' }): Promise<Uint8Array>;
  importModel(bytes: Uint8Array | ArrayBuffer): Promise<{ labels: string[] }>;
  /** The trained model as the bytes of a link; rejects for a model with a fine-tuned stage. */
  shareModel(): Promise<SharedModel>;
  /** The `.sortwise` file a link's bytes stand for, for `importModel`. */
  sharedModel(bytes: Uint8Array): Promise<Uint8Array>;
  /** The engine's limits and training defaults (asked once, then cached). */
  rules(): Promise<Rules>;
  /** The trimmed name, or rejects with the engine's reason (empty, too long, control characters). */
  validateLabel(name: string): Promise<string>;
  /** Any engine operation by name (engine/operations.js), as its method would be called. */
  call<K extends OperationName>(op: K, ...args: Parameters<Sortwise[K]>): ReturnType<Sortwise[K]>;
  /** Test hook: destroy the WebGPU device, as a driver reset would; how many there were. */
  debugLoseDevice(): Promise<number>;
  terminate(): void;
}

/** The engine's operations (engine/operations.js; tests/js/operations.test.mjs keeps this in step). */
export type OperationName =
  | 'addImage' | 'addImages' | 'addEmbedding' | 'removeImage' | 'renameClass' | 'removeClass' | 'labels' | 'counts'
  | 'train' | 'diagnose' | 'predict' | 'predictPixels' | 'explain' | 'explainPixels'
  | 'exportModel' | 'exportOnnx' | 'importModel' | 'shareModel' | 'rules' | 'validateLabel' | 'sharedModel';
