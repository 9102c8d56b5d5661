//! The session's asynchronous work, shared by both shells: photos through the backbone,
//! training and the data's check-up (prediction is `predict.rs`'s). Each step copies what it
//! needs out of the session, awaits, and commits in one synchronous step (see
//! `session/mod.rs`).

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

use image::RgbImage;

use super::Session;
use super::training::Split;
use crate::data::dataset::{Views, validate_label};
use crate::error::{Error, Result};
use crate::finetune;
use crate::insight::doctor::{self, Diagnosis};
use crate::model::embed::{self, ViewSpec};
use crate::parallel;
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

    /// One encoded photo of class `label`, decoded and added with the session's views; its id.
    /// A file that is not a usable image is refused with the decoder's reason (where
    /// [`SharedSession::add_images`] skips it).
    pub async fn add_image(&self, label: &str, bytes: Vec<u8>) -> Result<u32> {
        let label = validate_label(label)?;
        let img = preprocess::decode(&bytes)?;
        drop(bytes);
        let ids = self.add_decoded(&label, vec![img], None).await?;
        Ok(ids[0])
    }

    /// Encoded photos of class `label`: each decoded, embedded (several per backbone call) and
    /// added, or skipped with the reason when it is not a usable image. All or nothing when the
    /// engine itself fails: photos added before the failure are taken out again, so the session
    /// holds what the caller, seeing the error, thinks it holds.
    pub async fn add_images(&self, label: &str, files: Vec<Vec<u8>>) -> Result<Vec<AddOutcome>> {
        // Checked here too: with no files, `add_images_each` meets no name to check.
        let labels = vec![validate_label(label)?; files.len()];
        self.add_images_each(labels, files).await
    }

    /// [`SharedSession::add_images`] with a class for each photo (`labels[i]` for `files[i]`):
    /// one backbone call for photos of several classes. A dropped folder's classes rarely fill
    /// whole batches; sent class by class, each class's last few photos went through alone (on 2
    /// threads, ResNet-18's last 2 of a class cost ~40 ms a photo against ~27 in a batch of 16).
    pub async fn add_images_each(
        &self,
        labels: Vec<String>,
        files: Vec<Vec<u8>>,
    ) -> Result<Vec<AddOutcome>> {
        if labels.len() != files.len() {
            return Err(Error::Invalid(format!(
                "{} classes given for {} photos: one each",
                labels.len(),
                files.len()
            )));
        }
        // Every class name checked before any photo is decoded.
        let labels = labels
            .iter()
            .map(|l| validate_label(l))
            .collect::<Result<Vec<String>>>()?;
        let mut out = Vec::with_capacity(files.len());
        // Decoded photos waiting for the backbone, with their place in `out`.
        let mut pending: Vec<(usize, RgbImage)> = Vec::new();
        let mut pixels = 0u64;
        let mut added = Vec::new();
        let run = async {
            // One photo per thread decoded at once, in order: the pending pixels overshoot
            // their bound by at most that many photos (one, single-threaded, as before).
            for files in files.chunks(parallel::threads()) {
                let decoded = parallel::par_map(files, |_, bytes| preprocess::decode(bytes));
                for img in decoded {
                    match img {
                        Ok(img) => {
                            pixels += u64::from(img.width()) * u64::from(img.height());
                            out.push(AddOutcome::Skipped(String::new()));
                            pending.push((out.len() - 1, img));
                            if pixels >= MAX_PENDING_PIXELS {
                                self.flush(&labels, &mut pending, &mut out, &mut added)
                                    .await?;
                                pixels = 0;
                            }
                        }
                        Err(e) => out.push(AddOutcome::Skipped(e.to_string())),
                    }
                }
            }
            self.flush(&labels, &mut pending, &mut out, &mut added)
                .await
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

    /// Add `pending` (emptied), each id written to its slot of `out` and to `added`; the photo in
    /// slot `i` is of class `labels[i]`.
    async fn flush(
        &self,
        labels: &[String],
        pending: &mut Vec<(usize, RgbImage)>,
        out: &mut [AddOutcome],
        added: &mut Vec<u32>,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let (slots, imgs): (Vec<usize>, Vec<RgbImage>) = pending.drain(..).unzip();
        let classes: Vec<&str> = slots.iter().map(|&i| labels[i].as_str()).collect();
        let ids = self.add_decoded_each(&classes, imgs, None).await?;
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
        let classes = vec![label; imgs.len()];
        self.add_decoded_each(&classes, imgs, augment).await
    }

    /// [`SharedSession::add_decoded`] with a class for each photo (`labels[i]` for `imgs[i]`);
    /// the ids in the photos' order. All or nothing: a class the session refuses takes the
    /// photos committed before it out again.
    async fn add_decoded_each(
        &self,
        labels: &[&str],
        imgs: Vec<RgbImage>,
        augment: Option<usize>,
    ) -> Result<Vec<u32>> {
        assert_eq!(labels.len(), imgs.len(), "a class for each photo");
        let labels = labels
            .iter()
            .map(|l| validate_label(l))
            .collect::<Result<Vec<String>>>()?;
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
            parallel::par_map(&imgs, |_, img| preprocess::thumbnail_jpeg(img).map(Some))
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
            .collect::<Vec<_>>();
        let mut s = self.get_mut();
        let mut ids = Vec::with_capacity(labels.len());
        let mut embedded = embedded.into_iter();
        // Runs of one class committed in order, so ids follow the photos' order.
        for run in labels.chunk_by(|a, b| a == b) {
            match s.commit(&run[0], embedded.by_ref().take(run.len()).collect()) {
                Ok(more) => ids.extend(more),
                Err(e) => {
                    for id in ids {
                        s.remove_image(id);
                    }
                    return Err(e);
                }
            }
        }
        Ok(ids)
    }

    /// `images` synthetic photos through what an added photo goes through (thumbnail, resize,
    /// one backbone pass), the results dropped and the session unchanged. V8 first runs wasm
    /// from its baseline compiler and optimises the hot functions as they run: a fresh engine in
    /// Chromium embedded its first 200 photos ~0.8 s slower than the next 200 (docs/BENCHMARKS.md).
    /// The worker runs this while the page leaves the engine idle, so the person's first photos
    /// meet compiled code.
    pub async fn warm_up(&self, images: usize) -> Result<()> {
        let (backbone, spec) = {
            let s = self.get();
            (s.backbone.clone(), ViewSpec::eval(s.options.fit))
        };
        // A photo-sized pattern, so that resizing takes the downscaling path real photos take.
        let imgs: Vec<RgbImage> = (0..images)
            .map(|k| {
                RgbImage::from_fn(512, 384, |x, y| {
                    let v = (x * 7 + y * 3 + k as u32 * 31) as u8;
                    image::Rgb([v, v.wrapping_mul(3), (x ^ y) as u8])
                })
            })
            .collect();
        // the thumbnail encoded, then decoded as a dropped JPEG is
        parallel::par_map(&imgs, |_, img| {
            preprocess::decode(&preprocess::thumbnail_jpeg(img)?)
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        embed::embed_views(&backbone, &imgs, spec, &mut |_, _| true).await?;
        Ok(())
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
