// A typed use of the package: the worker client (`Sortwise`) on a page, and the raw `Trainer` in a
// worker. Checked, not run: `npx tsc --noEmit -p examples/typed` (the repository's sources, through
// tsconfig.json's paths) and, by tests/e2e/dist.mjs, the same file against the package `./run dist`
// makes (its package.json `exports` and .d.ts files). The @ts-expect-error lines must stay errors:
// they fail the check if a type widens to `any`.

import { Sortwise, loadClassifier, type SortwiseStatus, type TrainReport, type AddImagesResult } from 'sortwise';
import init, { Trainer, rules, validateLabel, type TrainProgress, type TrainOptions, type Prediction } from 'sortwise/trainer';
import initCpu, { Trainer as CpuTrainer, initThreadPool } from 'sortwise/trainer-cpu';

function onStatus(s: SortwiseStatus): void {
  switch (s.phase) {
    case 'weights':
      console.log(`weights ${s.loaded}/${s.total}${s.cached ? ' (cached)' : ''}`);
      break;
    case 'backend':
      console.log(`running on ${s.backend}: ${s.reason}`);
      break;
    case 'replay':
      console.log(`re-adding images ${s.done}/${s.total}`);
      break;
    case 'start':
      console.log(`starting: ${s.step}`);
      break;
  }
}

export async function withClient(photos: Record<string, Uint8Array[]>, test: Uint8Array): Promise<string> {
  const sw = await Sortwise.create({ arch: 'efficientnet_lite0', device: 'auto', augment: 0, fit: 'crop', finetune: false, onStatus });
  const backend: 'webgpu' | 'cpu' = sw.backend;
  const threads: number = sw.threads;
  for (const [label, list] of Object.entries(photos)) {
    const added: AddImagesResult[] = await sw.addImages(label, list);
    for (const r of added) {
      if ('error' in r) console.warn(`skipped: ${r.error}`);
      else console.log(r.id, r.thumbnail.byteLength, r.embedding.length / sw.dim);
    }
  }
  const opts: TrainOptions = { epochs: 50, optimizer: 'adam', lr: 1e-3, valSplit: 0.2, balance: 'auto', seed: 0, patience: 10 };
  const report: TrainReport = await sw.train(opts, (p: TrainProgress) => {
    const acc: number | null = p.valAccuracy;
    console.log(p.phase, p.epoch, p.epochs, p.loss, acc ?? 'no validation set');
  });
  const accuracy = report.valAccuracy === null ? 'n/a' : `${(report.valAccuracy * 100).toFixed(0)}%`;
  for (const c of report.perClass) console.log(c.label, c.precision, c.recall, c.f1, c.support);
  for (const m of report.misclassified) console.log(m.id, m.label, '->', m.predicted, m.confidence);
  const confusion: number[][] = report.confusion;
  console.log(report.epochsRun, report.bestEpoch, report.trainSize, report.valSize, report.balance, report.seconds, confusion.length);
  if (report.finetune) console.log(report.finetune.distance, report.finetune.headOnlyValAccuracy);
  const prediction: Prediction = await sw.predict(test, { threshold: 0.6 });
  const top = prediction.probs[0];
  const model: Uint8Array = await sw.exportModel();
  const { labels } = await sw.importModel(model);
  const link = await sw.shareModel();
  const precision: 'int4' | 'int8' | 'f16' = link.precision;
  const file: Uint8Array = await sw.sharedModel(link.bytes);
  console.log(precision, link.agreement, link.n, file.byteLength);
  const rules = await sw.rules();
  const name: string = await sw.validateLabel(' glass ');
  const epochs: number = rules.train.epochs;
  const lr: number | null = rules.train.lr;
  console.log(name, rules.maxLabelChars, rules.maxAugment, rules.unsureLabel, epochs, lr);
  sw.terminate();
  return `${backend}/${threads}: ${accuracy}; ${prediction.unsure ? 'unsure' : prediction.label} (${top?.label} ${top?.p}); ${labels.join(', ')}`;
}

// In a worker: the Trainer itself, with cancellation from the progress callback.
export async function withTrainer(weights: Uint8Array, photos: Array<[string, Uint8Array]>, test: Uint8Array): Promise<number> {
  await init();
  const augment = Math.min(2, rules().maxAugment);
  const t = await Trainer.create({ weights, arch: 'efficientnet_lite0', device: 'cpu', augment, finetune: true });
  console.log(validateLabel('metal'));
  for (const [label, bytes] of photos) {
    const id: number = await t.addImage(label, bytes);
    const embedding: Float32Array | undefined = t.embedding(id);
    console.log(id, embedding?.length === t.dim * 3, t.thumbnail(id)?.byteLength);
  }
  const counts: Uint32Array = t.counts();
  console.log(t.labels(), [...counts], t.arch, t.backend, t.backendReason, t.threads, t.finetune);
  let epochs = 0;
  const report = await t.train({ finetuneLast: true, l2sp: 0.1, finetuneEpochs: 5, finetuneLr: null }, (p) => {
    epochs += 1;
    return p.phase !== 'finetune' || p.epoch < 100; // false cancels
  });
  const kept: number = report.finetune?.bestEpoch ?? 0;
  const r: Prediction = await t.predict(test, { threshold: 0.5 });
  const file = t.exportModel();
  const again = await Trainer.load(file, weights, { device: 'auto' });
  const labels: string[] = again.importModel(file);
  again.free();
  t.free();
  return kept + epochs + r.confidence + labels.length;
}

export async function threaded(weights: Uint8Array): Promise<number> {
  await initCpu();
  await initThreadPool(navigator.hardwareConcurrency);
  const t = await CpuTrainer.create({ weights });
  return t.threads;
}

// Mistakes the types catch.
export async function mistakes(weights: Uint8Array, sw: Sortwise, t: Trainer): Promise<void> {
  // @ts-expect-error: 'gpu' is not a device ('auto' | 'webgpu' | 'cpu')
  await Sortwise.create({ device: 'gpu' });
  // @ts-expect-error: 'resnet101' is not a backbone
  await Trainer.create({ weights, arch: 'resnet101' });
  // @ts-expect-error: the weights are bytes, not a URL
  await Trainer.create({ weights: 'weights/resnet18.safetensors' });
  // @ts-expect-error: optimizer is 'adam' or 'sgd'
  await sw.train({ optimizer: 'lbfgs' });
  const report = await sw.train();
  // @ts-expect-error: valAccuracy may be null (no validation set)
  const pct: number = report.valAccuracy * 100;
  // @ts-expect-error: a prediction has no `score`
  console.log(pct, (await t.predict(new Uint8Array())).score);
  await t.train({}, (p) => {
    // @ts-expect-error: phases are 'train' | 'features' | 'finetune'
    if (p.phase === 'embed') console.log(p);
  });
}

// A trained classifier from a share link, on a webcam: predict only, in the engine's worker.
export async function classifyCamera(link: string, video: HTMLVideoElement): Promise<string> {
  const classifier = await loadClassifier(link, { device: 'cpu', threshold: 0.7 });
  const p = await classifier.classify(video);
  if (p === null) return 'no frame yet';
  const top: number = p.probs[0].p;
  // @ts-expect-error: classify takes an image, not a link
  await classifier.classify(link);
  // @ts-expect-error: labels are strings
  const first: number = classifier.labels[0];
  classifier.close();
  return `${p.unsure ? 'unsure' : p.label} ${(p.confidence * 100).toFixed(0)}% (${top}, ${first})`;
}
