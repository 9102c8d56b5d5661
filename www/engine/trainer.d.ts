// Types of the wasm-bindgen `Trainer` (src/web/mod.rs), as the package exports it:
// `import init, { Trainer } from 'sortwise/trainer'` (pkg/: WebGPU + single-threaded CPU) or
// 'sortwise/trainer-cpu' (pkg-cpu/: CPU on wasm threads, see trainer-cpu.d.ts). wasm-bindgen's own
// pkg/sortwise.d.ts types every option and result as `any`; these follow the Rust structs that
// serde turns into them (field names camelCase; Rust's Option is `null`). Keep them in step with
// src/web/mod.rs, src/session/ (rules(), the explanation), src/trainer/config.rs and report.rs,
// src/model/classifier.rs and src/evaluation/metrics.rs.

/** Backbones; a web weight file (www/weights/*.safetensors) holds one of them. */
export type Arch = 'resnet18' | 'resnet34' | 'resnet50' | 'efficientnet_lite0';
/** What to run on: `auto` takes WebGPU only on a hardware adapter, else the CPU. */
export type DeviceChoice = 'auto' | 'webgpu' | 'cpu';
/** What actually runs. */
export type Backend = 'webgpu' | 'cpu';
/** `crop`: resize the shorter side to 256, keep the centre 224 (torchvision); `letterbox`: the whole photo. */
export type Fit = 'crop' | 'letterbox';
export type Optimizer = 'adam' | 'sgd';
/** `auto`: `weight` when the largest class has at least twice the images of the smallest, else `none`. */
export type Balance = 'auto' | 'none' | 'weight' | 'sample';

/** Options of `Trainer.load` (and the part of `Trainer.create`'s that is not the weights). */
export interface TrainerOptions {
  /** Default `auto`. */
  device?: DeviceChoice;
  /** Default `crop`; a loaded model's own fit wins. */
  fit?: Fit;
  /** Augmented views embedded per added image besides the evaluation view: a whole number 0-16, default 0. */
  augment?: number;
  /** Keep each view's last-stage input so `train({finetuneLast: true})` can run (88-800 KB per view). Default false. */
  finetune?: boolean;
}

export interface TrainerCreateOptions extends TrainerOptions {
  /** The web weight file's bytes (`.safetensors` from scripts/weights.sh). */
  weights: Uint8Array;
  /** Checked against the weight file; default: the file's own. */
  arch?: Arch;
}

/** `train()` options; every field has the default shown. */
export interface TrainOptions {
  /** 100. */
  epochs?: number;
  /** 'adam'. */
  optimizer?: Optimizer;
  /** 1e-3 for Adam, 1e-2 for SGD. */
  lr?: number | null;
  /** SGD momentum, 0.9. */
  momentum?: number;
  /** 32. */
  batchSize?: number;
  /** 1e-2 (the head's plain weight decay; chosen by measurement, docs/BENCHMARKS.md). */
  weightDecay?: number;
  /** 0.1, in [0, 1). */
  labelSmoothing?: number;
  /** Stratified share held out for validation, 0.2, in [0, 1); 0 trains on everything. */
  valSplit?: number;
  /** 'auto'. */
  balance?: Balance;
  /** 0: the same images and seed train the same head on the CPU. */
  seed?: number;
  /** Stop after this many epochs without a better validation loss, 20 (0: never). */
  patience?: number;
  /** Multiply the learning rate by `gamma` every `stepSize` epochs; 0 (off). */
  stepSize?: number;
  /** 0.1. */
  gamma?: number;
  /** Also train the backbone's last stage (needs a trainer created with `finetune: true`). false. */
  finetuneLast?: boolean;
  /** L2-SP strength α toward the pretrained stage, 0.1. */
  l2sp?: number;
  /** Epochs of the fine-tuning phase, 10. */
  finetuneEpochs?: number;
  /** A tenth of `lr`'s. */
  finetuneLr?: number | null;
  /** Must equal the trainer's own (`augment` is chosen when images are added); another value rejects. */
  augment?: number;
  /**
   * After the held-out run chose the epoch count, train the final model from scratch on training +
   * validation images for that many epochs (the report keeps the held-out metrics). Default true.
   */
  refit?: boolean;
}

/** After every epoch (and, with `finetuneLast`, while the stage inputs go through the frozen layers). */
export interface TrainProgress {
  /**
   * 'features': the warm start's embedding pass (`done` of `total` rows); 'train': a head-only
   * epoch; 'finetune': a fine-tuning epoch; 'refit' / 'refit-finetune': the same, on every image.
   */
  phase: 'train' | 'features' | 'finetune' | 'refit' | 'refit-finetune';
  epoch: number;
  epochs: number;
  loss: number;
  /** null without a validation set. */
  valLoss: number | null;
  valAccuracy: number | null;
  done: number;
  total: number;
}

/** Return `false` (or a Promise of it) to cancel: `train()` rejects with 'cancelled' and the previous model stays. */
export type TrainProgressCallback = (p: TrainProgress) => boolean | void | Promise<boolean | void>;

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Validation images of the class. */
  support: number;
}

export interface PerClass extends ClassMetrics {
  label: string;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  valLoss: number | null;
  valAccuracy: number | null;
}

export interface Misclassified {
  /** The image's id (the `Sortwise` client maps it to its own ids). */
  id: number;
  label: string;
  predicted: string;
  confidence: number;
}

export interface FineTuneStats {
  l2sp: number;
  epochsRun: number;
  /** Fine-tuning epoch kept; 0: none beat the head-only model, which was kept with the pretrained stage. */
  bestEpoch: number;
  /** ‖θ−θ₀‖ of the kept stage. */
  distance: number;
  /** ‖θ−θ₀‖ after the last fine-tuning epoch. */
  lastDistance: number;
  headOnlyValAccuracy: number | null;
  headOnlyValLoss: number | null;
}

/** What `train()` resolves to. */
export interface TrainReport {
  /** null when there was no validation set (`valSplit: 0`). */
  valAccuracy: number | null;
  valLoss: number | null;
  perClass: PerClass[];
  /** `confusion[actual][predicted]` over the validation set, in `labels` order. */
  confusion: number[][];
  labels: string[];
  history: EpochStats[];
  misclassified: Misclassified[];
  epochsRun: number;
  /** Epoch whose weights were kept (best validation loss). */
  bestEpoch: number;
  trainSize: number;
  valSize: number;
  /** The balance that was used (`auto` resolved). */
  balance: Balance;
  seconds: number;
  /** Present when the last stage was fine-tuned. */
  finetune?: FineTuneStats;
  /** Whether the returned model was refit on training + validation images (`refit` option). */
  refit: boolean;
  /** Epochs of the refit (the held-out run's best epoch). */
  refitEpochs?: number;
  /** Images the refit trained on. */
  refitSize?: number;
  /** The balance the refit used, recomputed on every image. */
  refitBalance?: Balance;
  /** The temperature fitted on the validation images, which predictions use, and the expected
   * calibration error (15 bins) and loss on them without and with it. Absent without validation. */
  calibration?: Calibration;
}

export interface Calibration {
  temperature: number;
  eceBefore: number;
  eceAfter: number;
  lossBefore: number;
  lossAfter: number;
  /** Validation images it was fitted on. */
  n: number;
}

/** Every class's activation map of one photo: `maps[c]` (label order) holds `height × width`
 * values in logit units (their mean plus the class's bias is its logit); `region` is where the
 * grid lies on the photo, `[left, top, right, bottom]` as fractions of its width and height. */
export interface Heatmap {
  width: number;
  height: number;
  maps: number[][];
  region: [number, number, number, number];
}

/** A prediction and the maps that explain it, from one forward pass. */
export interface Explanation extends Prediction {
  heatmap: Heatmap;
}

export interface DiagnoseOptions {
  /** Cosine similarity (centred) at or above which two photos are near duplicates. Default 0.92. */
  similarity?: number;
  /** Folds of the out-of-fold heads. Default 5 (fewer when a class has fewer photos). */
  folds?: number;
  /** Likely label errors listed. Default 20. */
  suspects?: number;
}

export interface DuplicatePair {
  a: number;
  b: number;
  similarity: number;
  /** The same pixels (a byte-identical file or a copy). */
  identical: boolean;
  /** Filed under two classes. */
  conflict: boolean;
  /** One validated in the last training while the other trained. */
  leak: boolean;
}

export interface LabelSuspect {
  id: number;
  label: string;
  pLabel: number;
  suggested: string;
  pSuggested: number;
  /** Share of its 10 nearest photos filed under another class. */
  neighboursElsewhere: number;
}

export interface ClassAdvice {
  label: string;
  count: number;
  /** Out-of-fold accuracy on this class. */
  recall: number;
  confusedWith: Array<{ label: string; share: number }>;
  /** Its photos nearest the decision boundary: more like these help most. */
  boundary: number[];
}

export interface Diagnosis {
  pairs: DuplicatePair[];
  suspects: LabelSuspect[];
  classes: ClassAdvice[];
  balance: { smallest: number; largest: number; imbalanced: boolean };
  duplicateSimilarity: number;
  /** 0 when a class has too few photos for out-of-fold heads. */
  folds: number;
}

export interface PredictOptions {
  /** Below this top probability the label is 'unsure'. Default 0. */
  threshold?: number;
}

export interface LabelProbability {
  label: string;
  p: number;
}

export interface Prediction {
  /** The best class, or 'unsure' under the threshold. */
  label: string;
  confidence: number;
  unsure: boolean;
  /** Every class, most likely first. */
  probs: LabelProbability[];
}

export class Trainer {
  private constructor();
  /** A trainer on `weights`; rejects with a message naming the problem (wrong file, unknown device, ...). */
  static create(opts: TrainerCreateOptions): Promise<Trainer>;
  /** A trainer ready to predict with a saved `.sortwise` model (its classes, no images). */
  static load(model: Uint8Array, weights: Uint8Array, opts?: TrainerOptions): Promise<Trainer>;
  readonly backend: Backend;
  readonly backendReason: string;
  /** CPU threads (1 on WebGPU and in pkg/). */
  readonly threads: number;
  /** Photos to hand `addImages` at once for the fastest embedding a photo on this backbone and
   * thread count: a pass of 8 a thread for ResNet-18/34 (Winograd's tiles at 7×7), of 4 for the
   * others; at least 8, at most 32; 8 on WebGPU. */
  readonly addBatch: number;
  /** Values per embedding view. */
  readonly dim: number;
  readonly finetune: boolean;
  readonly arch: Arch;
  /** Embed an encoded image (JPEG, PNG, WebP, GIF, BMP) under `label`; its id. */
  addImage(label: string, bytes: Uint8Array): Promise<number>;
  /** Per image in order: its id, or why it is not a usable image (the others are still added). */
  addImages(label: string, images: Uint8Array[]): Promise<Array<number | string>>;
  /** Restore an image from a saved embedding (all views concatenated); its id. */
  addEmbedding(label: string, embedding: Float32Array, thumbnail?: Uint8Array): number;
  /** All views of the image's embedding, evaluation view first. */
  embedding(id: number): Float32Array | undefined;
  /** Its JPEG UI copy (shorter side at most 256 px). */
  thumbnail(id: number): Uint8Array | undefined;
  /** Its JPEG UI copy, handed over: the trainer keeps it no longer (`thumbnail(id)` is then undefined). */
  takeThumbnail(id: number): Uint8Array | undefined;
  /** `images` synthetic photos through the backbone, nothing kept: the worker's warm-up while the engine is idle. */
  warmUp(images: number): Promise<void>;
  renameClass(from: string, to: string): void;
  /** How many images went with it. */
  removeClass(label: string): number;
  removeImage(id: number): boolean;
  /** Class labels in insertion order. */
  labels(): string[];
  /** Images per class, in `labels()` order. */
  counts(): Uint32Array;
  train(opts?: TrainOptions, progress?: TrainProgressCallback): Promise<TrainReport>;
  predict(bytes: Uint8Array, opts?: PredictOptions): Promise<Prediction>;
  /** Canvas pixels (`ImageData.data`, RGBA), e.g. a webcam frame. */
  predictPixels(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, opts?: PredictOptions): Promise<Prediction>;
  /** The prediction and every class's activation map, from one forward pass. */
  explain(bytes: Uint8Array, opts?: PredictOptions): Promise<Explanation>;
  explainPixels(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, opts?: PredictOptions): Promise<Explanation>;
  /** The data's check-up on the cached embeddings; `progress` after each out-of-fold head (phase 'doctor'). */
  diagnose(opts?: DiagnoseOptions, progress?: TrainProgressCallback): Promise<Diagnosis>;
  /** Replace the model with a `.sortwise` file for this backbone; its labels. The current model stays if it is refused. */
  importModel(bytes: Uint8Array): string[];
  /** The trained model as a `.sortwise` file (safetensors; `producer` metadata names the sortwise version). */
  exportModel(): Uint8Array;
  /** The trained model with its backbone as one ONNX file: input `[N, 3, 224, 224]` normalised, output `probs` (calibrated), labels and preprocessing in its metadata. */
  exportOnnx(opts?: { dtype?: 'f32' | 'f16' }): Promise<Uint8Array>;
  /** The trained model as the bytes of a link (no fine-tuned stage; `sharedModel` reads them back). */
  shareModel(): SharedModel;
  free(): void;
}

/** `Trainer.shareModel()`: the smallest head that keeps the full one's predictions. */
export interface SharedModel {
  bytes: Uint8Array;
  /** `int4`: 4 bits with a scale per 64 weights; `int8`: a scale per class row; `f16`: where neither agreed. */
  precision: 'int4' | 'int8' | 'f16';
  /** Share of the `n` validation photos (all photos without a validation split) on which it picks the full head's class. */
  agreement: number;
  n: number;
}

/** The engine's limits and defaults (`rules()`), so that a page need not keep copies. */
export interface Rules {
  /** Longest class name, in characters (Unicode scalar values), 100. */
  maxLabelChars: number;
  /** Most augmented views per image (`augment`), 16. */
  maxAugment: number;
  /** What a prediction's `label` is under the threshold, 'unsure'. */
  unsureLabel: string;
  /** The default of every `train()` option (`lr`/`finetuneLr` null: chosen from the optimizer). */
  train: Required<Omit<TrainOptions, 'augment'>>;
  /** The heatmaps' colour map, low to high: six RGB stops. */
  heatmapColors: Array<[number, number, number]>;
  /** Augmented views per image by default (`augment`), for head-only training: 0. */
  defaultAugment: number;
  /** The CLI's default with `finetuneLast` (a trainable stage sees more than one view): 2. */
  finetuneAugment: number;
  /** Every setting a shell may pass and the values the engine takes (`TRAIN_SETTINGS`, then `augment` and `threshold`). */
  settings: Setting[];
}

/** One setting's range (`optional`: null stands for the engine's default). */
export type Setting = { key: string; optional: boolean } & (
  | { type: 'int'; min: number; max: number }
  | { type: 'number'; min: number; max: number }
  | { type: 'choice'; choices: string[] }
  | { type: 'bool' });

/** The engine's limits and training defaults; callable once `init()` resolved, no Trainer needed. */
export function rules(): Rules;

/** A class name as the engine keeps it (trimmed); throws the reason when it refuses it (empty, too long, control characters, text-direction controls, invisible characters). */
export function validateLabel(name: string): string;
/** The `.sortwise` file that `Trainer.shareModel()`'s bytes stand for; throws for damaged or foreign bytes. */
export function sharedModel(bytes: Uint8Array): Uint8Array;

/** What wasm-bindgen's `init` accepts: the module's URL (default: sortwise_bg.wasm next to the JS), a Response, bytes or a compiled module. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/** Instantiate the wasm module; call (and await) once before `Trainer.create`. */
export default function init(
  moduleOrPath?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<WebAssembly.Exports>;
