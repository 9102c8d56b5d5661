//! The session's asynchronous work, shared by both shells: photos through the backbone,
//! training, prediction. Each step copies what it needs out of the session, awaits, and
//! commits in one synchronous step (see `session/mod.rs`).

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

use image::RgbImage;

use serde::Serialize;

use super::training::Split;
use super::{Session, Trained};
use crate::backbone::Backbone;
use crate::calibration;
use crate::classifier::{self, Prediction};
use crate::dataset::{Views, validate_label};
use crate::doctor::{self, Diagnosis};
use crate::embed::{self, ViewSpec};
use crate::error::{Error, Result};
use crate::explain::{self, Heatmap};
use crate::finetune;
use crate::infer::DEFAULT_BATCH;
use crate::kernels;
use crate::preprocess;
use crate::trainer::{Progress, Report, TrainConfig};

/// Decoded pixels `add_images` holds before they go through the backbone: eight 12-megapixel
/// phone photos would otherwise hold ~300 MB of wasm memory at once, which never shrinks.
pub const MAX_PENDING_PIXELS: u64 = 16_000_000;

/// What became of one file given to [`SharedSession::add_images`].
#[derive(Clone, Debug, PartialEq)]
pub enum AddOutcome {
    Added(u32),
    /// Not a usable image: the reason, for the person who chose the file.
    Skipped(String),
}

/// A prediction and the maps that explain it.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    #[serde(flatten)]
    pub prediction: Prediction,
    pub heatmap: Heatmap,
}

/// A session behind `Rc<RefCell<_>>`: what the browser's futures own, and what the CLI drives
/// the same way.
#[derive(Clone)]
pub struct SharedSession(Rc<RefCell<Session>>);

/// One photo's rows, ready to commit.
struct Embedded {
    views: Views,
    stage_inputs: Option<Views>,
    thumbnail: Option<Vec<u8>>,
}

impl SharedSession {
    pub fn new(session: Session) -> Self {
        SharedSession(Rc::new(RefCell::new(session)))
    }

    /// The session, for synchronous reads. Never held across an `await`.
    pub fn get(&self) -> Ref<'_, Session> {
        self.0.borrow()
    }

    /// The session, for synchronous changes. Never held across an `await`.
    pub fn get_mut(&self) -> RefMut<'_, Session> {
        self.0.borrow_mut()
    }

    /// Encoded photos of class `label`: each decoded, embedded (several per backbone call) and
    /// added, or skipped with the reason when it is not a usable image. All or nothing when the
    /// engine itself fails: photos added before the failure are taken out again, so the session
    /// holds what the caller, seeing the error, thinks it holds.
    pub async fn add_images(&self, label: &str, files: Vec<Vec<u8>>) -> Result<Vec<AddOutcome>> {
        let label = validate_label(label)?;
        let mut out = Vec::with_capacity(files.len());
        // Decoded photos waiting for the backbone, with their place in `out`.
        let mut pending: Vec<(usize, RgbImage)> = Vec::new();
        let mut pixels = 0u64;
        let mut added = Vec::new();
        let run = async {
            // One photo per thread decoded at once, in order: the pending pixels overshoot
            // their bound by at most that many photos (one, single-threaded, as before).
            for files in files.chunks(kernels::threads()) {
                let decoded = kernels::par_map(files, |_, bytes| preprocess::decode(bytes));
                for img in decoded {
                    match img {
                        Ok(img) => {
                            pixels += u64::from(img.width()) * u64::from(img.height());
                            out.push(AddOutcome::Skipped(String::new()));
                            pending.push((out.len() - 1, img));
                            if pixels >= MAX_PENDING_PIXELS {
                                self.flush(&label, &mut pending, &mut out, &mut added)
                                    .await?;
                                pixels = 0;
                            }
                        }
                        Err(e) => out.push(AddOutcome::Skipped(e.to_string())),
                    }
                }
            }
            self.flush(&label, &mut pending, &mut out, &mut added).await
        };
        if let Err(e) = run.await {
            let mut s = self.get_mut();
            for id in added {
                s.remove_image(id);
            }
            return Err(e);
        }
        Ok(out)
    }

    /// Add `pending` (emptied), each id written to its slot of `out` and to `added`.
    async fn flush(
        &self,
        label: &str,
        pending: &mut Vec<(usize, RgbImage)>,
        out: &mut [AddOutcome],
        added: &mut Vec<u32>,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let (slots, imgs): (Vec<usize>, Vec<RgbImage>) = pending.drain(..).unzip();
        let ids = self.add_decoded(label, imgs, None).await?;
        for (slot, id) in slots.into_iter().zip(ids) {
            out[slot] = AddOutcome::Added(id);
            added.push(id);
        }
        Ok(())
    }

    /// Decoded photos of class `label` through the backbone in one pass, with the session's
    /// augmented views (or `augment` of them) and, when it fine-tunes, stage inputs; their ids.
    pub async fn add_decoded(
        &self,
        label: &str,
        imgs: Vec<RgbImage>,
        augment: Option<usize>,
    ) -> Result<Vec<u32>> {
        let label = validate_label(label)?;
        let (backbone, spec, finetune, thumbnails) = {
            let s = self.get();
            let o = &s.options;
            let spec = ViewSpec::eval(o.fit).with_augment(
                augment.unwrap_or(o.augment),
                o.seed.wrapping_add(u64::from(s.data.next_id())),
            );
            if o.finetune && o.limit_stage_cache {
                let cached: usize = s.stage_inputs.values().map(|v| v.len()).sum();
                let per = 1 + spec.augment as u64;
                finetune::check_stage_cache(s.arch, cached as u64, imgs.len() as u64 * per, per)?;
            }
            (s.backbone.clone(), spec, o.finetune, o.thumbnails)
        };
        let thumbs = if thumbnails {
            kernels::par_map(&imgs, |_, img| preprocess::thumbnail_jpeg(img).map(Some))
                .into_iter()
                .collect::<Result<Vec<_>>>()?
        } else {
            vec![None; imgs.len()]
        };
        let none = &mut |_: usize, _: usize| true;
        let rows: Vec<(Views, Option<Views>)> = if finetune {
            embed::embeddings_and_stage_inputs(&backbone, &imgs, spec, none)
                .await?
                .into_iter()
                .map(|v| (v.embeddings, Some(v.stage_inputs)))
                .collect()
        } else {
            embed::embed_views(&backbone, &imgs, spec, none)
                .await?
                .into_iter()
                .map(|v| (v, None))
                .collect()
        };
        drop(imgs);
        let embedded = rows
            .into_iter()
            .zip(thumbs)
            .map(|((views, stage_inputs), thumbnail)| Embedded {
                views,
                stage_inputs,
                thumbnail,
            })
            .collect();
        self.get_mut().commit(&label, embedded)
    }

    /// Train a new model and keep it (the previous one stays if this fails or is cancelled);
    /// the report. `progress` is awaited after every epoch; resolving to `false` cancels.
    pub async fn train(
        &self,
        cfg: TrainConfig,
        split: &Split,
        progress: &mut impl AsyncFnMut(&Progress) -> bool,
    ) -> Result<Report> {
        let job = self.get().train_job(cfg, split)?;
        let trained = job.run(progress).await?;
        let report = trained.report.clone();
        self.get_mut().trained = Some(trained);
        report.ok_or_else(|| Error::Invalid("the run made no report".into()))
    }

    /// The model's logits (in its label order) for preprocessed `[3, 224, 224]` inputs, through
    /// the fine-tuned stage when it has one; its labels and temperature.
    pub async fn logits(&self, inputs: &[Vec<f32>]) -> Result<(Vec<Vec<f32>>, Vec<String>, f64)> {
        let (backbone, trained) = self.model()?;
        let stage = trained.stage.as_ref().map(|s| s.stage.clone());
        let features = embed::features(&backbone, stage.as_deref(), inputs, DEFAULT_BATCH).await?;
        let rows: Vec<&[f32]> = features.iter().map(Vec::as_slice).collect();
        let logits = trained.head.logits(&rows, &backbone.device()).await?;
        Ok((logits, trained.labels, trained.temperature))
    }

    /// Calibrated class probabilities (`softmax(logits / T)`) of preprocessed inputs, and the
    /// model's labels: what predictions and the CLI's `eval` use.
    pub async fn probabilities(&self, inputs: &[Vec<f32>]) -> Result<(Vec<Vec<f32>>, Vec<String>)> {
        let (logits, labels, temperature) = self.logits(inputs).await?;
        Ok((calibration::softmax(&logits, temperature), labels))
    }

    /// The backbone and the trained model, copied out for one prediction.
    fn model(&self) -> Result<(Rc<Backbone>, Trained)> {
        let s = self.get();
        let t = s
            .trained
            .clone()
            .ok_or_else(|| Error::Invalid("no model yet: train or load one first".into()))?;
        Ok((s.backbone.clone(), t))
    }

    /// The prediction for one decoded photo and every class's activation map, from one forward
    /// pass: the prediction is computed from the maps (`explain.rs`), so it is the one the maps
    /// explain.
    pub async fn explain(&self, img: &RgbImage, threshold: f32) -> Result<Explanation> {
        let fit = self.get().options.fit;
        let x = preprocess::eval_tensor(img, fit);
        let (backbone, trained) = self.model()?;
        let stage = trained.stage.as_ref().map(|s| s.stage.clone());
        let map = embed::feature_maps(&backbone, stage.as_deref(), &[x], 1)
            .await?
            .remove(0);
        let maps = explain::class_maps(&map, &trained.weight, trained.labels.len())
            .ok_or_else(|| Error::Invalid("the model's head does not fit this backbone".into()))?;
        let logits = explain::logits(&maps, &trained.bias);
        let probs = calibration::softmax(&[logits], trained.temperature);
        let side = (maps[0].len() as f64).sqrt().round() as usize;
        Ok(Explanation {
            prediction: classifier::prediction(&trained.labels, &probs[0], threshold),
            heatmap: Heatmap {
                width: side,
                height: maps[0].len() / side.max(1),
                maps,
                region: explain::region(fit, img.width(), img.height()),
            },
        })
    }

    /// The data's check-up (`doctor.rs`) on the cached embeddings: duplicates, leaks against the
    /// last run's validation photos, likely label errors, and per-class advice, with out-of-fold
    /// heads trained the last run's way (or the default way, before any run). `progress` after
    /// each fold; `false` cancels.
    pub async fn diagnose(
        &self,
        opts: &doctor::Options,
        progress: &mut impl AsyncFnMut(&Progress) -> bool,
    ) -> Result<Diagnosis> {
        let validation = self
            .get()
            .trained
            .as_ref()
            .map(|t| t.validation.clone())
            .unwrap_or_default();
        self.diagnose_with_validation(opts, &validation, progress)
            .await
    }

    /// [`SharedSession::diagnose`] with `validation` as the photos that validate (the CLI's
    /// `--val` folder).
    pub async fn diagnose_with_validation(
        &self,
        opts: &doctor::Options,
        validation: &[u32],
        progress: &mut impl AsyncFnMut(&Progress) -> bool,
    ) -> Result<Diagnosis> {
        let (labels, examples, cfg, device) = {
            let s = self.get();
            let cfg = s
                .trained
                .as_ref()
                .map(|t| t.config.clone())
                .unwrap_or_default();
            let examples = s.data.examples().to_vec();
            (s.data.labels().to_vec(), examples, cfg, s.backbone.device())
        };
        doctor::diagnose(
            &labels, &examples, validation, &cfg, &device, opts, progress,
        )
        .await
    }

    /// The ranked prediction for one decoded photo; "unsure" below `threshold`.
    pub async fn predict(&self, img: &RgbImage, threshold: f32) -> Result<Prediction> {
        let x = preprocess::eval_tensor(img, self.get().options.fit);
        let (probs, labels) = self.probabilities(&[x]).await?;
        Ok(classifier::prediction(&labels, &probs[0], threshold))
    }
}

impl Session {
    /// Add embedded photos of one class; their ids. Nothing is added when the label is refused.
    fn commit(&mut self, label: &str, embedded: Vec<Embedded>) -> Result<Vec<u32>> {
        self.data.class_index(label)?;
        let mut ids = Vec::with_capacity(embedded.len());
        for e in embedded {
            let id = self.data.push(label, e.views)?;
            if let Some(t) = e.thumbnail {
                self.thumbs.insert(id, t);
            }
            if let Some(s) = e.stage_inputs {
                self.stage_inputs.insert(id, Rc::new(s));
            }
            ids.push(id);
        }
        Ok(ids)
    }
}
