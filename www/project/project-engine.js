// The project's long engine operations (project.js holds the state and the small changes): the
// engine's start, training, and the replacements that need a new engine (another backbone, other
// augmented views, fine-tuning on or off), which load every photo into it before the project
// switches over. Like project.js: no DOM, changes announced as the project's events, the
// engine calls in the project's one serial queue.

import { Sortwise } from '../engine/client.js';
import { readManifest } from '../engine/weights.js';
import { t } from '../i18n.js';

/** The backbones this server has (engine/weights.js reads the manifest). */
export async function loadManifest(project) {
  project.manifest = await readManifest();
  return project.manifest;
}

export function defaultArch(project) {
  const names = project.manifest.map((b) => b.arch);
  if (names.includes('resnet18')) return 'resnet18';
  if (names.includes('efficientnet_lite0')) return 'efficientnet_lite0';
  return names[0];
}

/**
 * A new engine for `arch`.
 * `finetune`: the engine also keeps each image's stage input, which fine-tuning the last stage
 * trains on (88-800 KB per view instead of 2-8 KB), so it is only on while the setting is.
 */
export async function createEngine(project, arch, augment, finetune = project.settings.finetuneLast) {
  const entry = project.manifest.find((b) => b.arch === arch);
  project.emit('engine-status', { phase: 'loading' });
  // Where this start is, step by step (engine/worker.js), for the debug state.
  const t0 = performance.now();
  project.startSteps = [];
  let sw = null;
  sw = await Sortwise.create({
    arch,
    device: project.device,
    augment,
    finetune: Boolean(finetune),
    restore: (engine) => restoreInto(project, sw, engine),
    onStatus: (s) => {
      if (s.phase === 'start') project.startSteps.push(`${s.step} ${Math.round(performance.now() - t0)}ms`);
      else if (s.phase === 'weights') project.emit('engine-status', { ...s, arch, total: s.total || entry?.bytes || 0 });
      else if (s.phase === 'backend' && sw && project.sw === sw) project.emit('engine-status', s);
    },
  });
  return sw;
}

/**
 * The engine restarted (its device was lost, or it trapped) and holds nothing: the project's photos
 * and model go back into it, and each record takes the id the engine gives it now. The project is
 * the one registry of photos; the client keeps none (engine/client.js `restore`).
 */
export async function restoreInto(project, sw, engine) {
  // An engine still being filled for a replacement is not the project's: the replacement fails
  // as a whole and the project keeps the engine it has.
  if (project.sw !== sw) throw new Error('the engine being prepared stopped');
  const records = await loadInto(project, engine, project.classImages(), true, progressKeyFor(engine, true), project.arch);
  project.idToKey = new Map();
  for (const r of records) {
    project.images.get(r.key).id = r.id;
    project.idToKey.set(r.id, r.key);
  }
  if (project.model) await engine.importModel(project.model.slice());
}

/** The page's first engine. */
export async function startEngine(project, arch, augment) {
  project.arch = arch;
  project.sw = await createEngine(project, arch, augment);
  project.emit('engine', { sw: project.sw });
}

/**
 * Trains with `opts` (in the queue), first deleting the classes in `leaveOut` that still have no
 * photos; `onProgress(p)` per epoch. Resolves to the report; rejects with 'cancelled'.
 */
export async function train(project, opts, onProgress, leaveOut = []) {
  project.setTraining(true);
  try {
    const report = await project.serial(async () => {
      if (leaveOut.length) await leaveOutEmptyClasses(project, leaveOut);
      return project.withEngine((sw) => sw.train(opts, onProgress));
    });
    const model = await project.withEngine((sw) => sw.exportModel());
    project.setModel(model, report.labels, project.keyedReport(report));
    project.stale = false;
    project.emit('stale');
    project.emit('save');
    return report;
  } finally {
    project.setTraining(false);
  }
}

/**
 * The user agreed to train without the classes that have no photos: they are deleted (the engine
 * refuses to train with a class that has none, and a model's labels are the project's classes).
 * Runs inside the engine queue, before training.
 */
async function leaveOutEmptyClasses(project, labels) {
  project.forgetIntakeUndo();
  for (const label of labels) {
    const c = project.classOf(label);
    if (!c || c.keys.length) continue; // photos arrived meanwhile: it trains with them
    // the engine holds a class whose last photo was removed; one never added it does not know
    try { await project.withEngine((sw) => sw.removeClass(label)); } catch { /* not in the engine */ }
    project.classes = project.classes.filter((x) => x !== c);
  }
  project.emit('left-out', { labels });
  if (!project.classOf(project.activeLabel)) project.activeLabel = project.classes[0]?.label ?? null;
  project.emit('classes');
  project.emit('save');
  project.say(t('trainLeftOut', { labels: labels.join(', ') }));
}

/**
 * Loads classes with images into a fresh engine `sw`: by embedding when `sameArch`, else by
 * re-embedding the thumbnails. Returns the new records (not yet in the project). Throws on failure.
 * An engine that can fine-tune always re-embeds: it needs each image's stage input, which only
 * pixels give (the thumbnails are the pixels a project keeps).
 */
export async function loadInto(project, sw, classes, sameArch, progressKey, arch) {
  if (sw.finetune) sameArch = false;
  const total = classes.reduce((n, c) => n + c.images.length, 0);
  let done = 0;
  const out = [];
  const show = () => project.emit('embed-progress', { shown: total > 0, done, total, text: t(progressKey, { done, total, arch }) });
  show();
  try {
    for (const c of classes) {
      for (const im of c.images) {
        if (sameArch) {
          // no thumbnail: the project keeps it; the engine's copy would only double it
          const id = await sw.addEmbedding(c.label, im.emb.slice());
          out.push({ label: c.label, id, thumb: im.thumb, emb: im.emb, key: im.key, from: im.from });
        } else {
          const r = await sw.addImage(c.label, im.thumb.slice());
          out.push({ label: c.label, id: r.id, thumb: im.thumb, emb: r.embedding, key: im.key, from: im.from });
        }
        done += 1;
        if (done % 8 === 0 || done === total) show();
      }
    }
  } finally {
    project.emit('embed-progress', { shown: false, done, total, text: '' });
  }
  return out;
}

/** What `loadInto` shows: restoring saved embeddings, or re-embedding (new arch, fine-tuning). */
export function progressKeyFor(sw, sameArch) {
  if (sw.finetune) return 'finetunePreparing';
  return sameArch ? 'embedding' : 'reembedding';
}

export function engineReady(arch, sw) {
  return t('engineReady', { arch, backend: sw.backend === 'webgpu' ? t('deviceWebgpu') : t('deviceCpu') });
}

/** Another backbone (or `force`: the same one anew): a new engine, every photo re-embedded. */
export async function switchArch(project, arch, { force = false } = {}) {
  if (arch === project.arch && !force) return;
  await project.serial(async () => {
    let sw = null;
    try {
      project.say(t('switchArch', { arch }), 'indeterminate');
      sw = await createEngine(project, arch, project.settings.augment);
      const classes = project.classImages();
      const records = await loadInto(project, sw, classes, false, 'reembedding', arch);
      const hadModel = !!project.model;
      project.adopt(sw, arch, classes, records, { settings: project.settings, keepKeys: true });
      for (const k of project.images.keys()) project.emit('stored', { key: k });
      await project.flush();
      project.say(engineReady(arch, sw));
      if (hadModel) project.say(t('modelStaleArch'));
    } catch (e) {
      if (sw && sw !== project.sw) sw.terminate();
      project.emit('arch-kept', { arch: project.arch });
      project.fail('switchFailed', e);
      project.say('');
    }
  });
}

/** The augmented views are made when an image is added: rebuild the engine and re-embed. */
export function rebuildForAugment(project) { return switchArch(project, project.arch, { force: true }); }

/**
 * The fine-tune setting changed: a new engine with or without stage inputs, the images re-added
 * (from their thumbnails when it is switched on; from their embeddings when off, which is quick),
 * and the model carried over (a fine-tuned one still predicts through its own stage).
 */
export async function rebuildForFinetune(project, on) {
  await project.serial(async () => {
    let sw = null;
    try {
      project.say(t('finetuneSwitching'), 'indeterminate');
      sw = await createEngine(project, project.arch, project.settings.augment, on);
      const classes = project.classImages();
      const records = await loadInto(project, sw, classes, true, progressKeyFor(sw, true), project.arch);
      let { model, modelLabels } = project;
      if (model) {
        try {
          ({ labels: modelLabels } = await sw.importModel(model.slice()));
        } catch { model = null; modelLabels = null; }
      }
      const report = model ? project.report : null;
      project.adopt(sw, project.arch, classes, records, { model, modelLabels, report, settings: project.settings, stale: project.stale, keepKeys: true });
      for (const k of project.images.keys()) project.emit('stored', { key: k });
      await project.flush();
      project.say(t(on ? 'finetuneOn' : 'finetuneOff'));
    } catch (e) {
      if (sw && sw !== project.sw) sw.terminate();
      project.settings.finetuneLast = !on;
      project.emit('settings');
      project.emit('save');
      project.fail('switchFailed', e);
      project.say('');
    }
  });
}
