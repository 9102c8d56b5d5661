//! The user's session, which both shells drive (the wasm API in `web/`, the CLI in `cli/`): one
//! backbone on one device, the classes and their photos as cached embeddings, and the trained
//! model.
//!
//! [`Session`] holds the state and its synchronous changes. The work that awaits the device
//! (embedding photos and training in `shared.rs`, predicting in `predict.rs`) is
//! [`SharedSession`]'s, which copies what a step needs out of the session, awaits without
//! holding a borrow, and commits the result in one synchronous step. So overlapping calls from
//! JS cannot trip the `RefCell`, and a failure part way leaves the session as it was.

mod model;
mod onnx;
mod predict;
mod shared;
mod training;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use burn::tensor::Device;
use serde::Serialize;

use crate::arch::Arch;
use crate::backbone::Backbone;
use crate::data::dataset::{self, Dataset, MAX_LABEL_CHARS, validate_label};
use crate::error::{Error, Result};
use crate::formats::weights;
use crate::model::classifier::UNSURE;
use crate::preprocess::Fit;
use crate::trainer::{Range, Setting, TRAIN_SETTINGS, TrainConfig};

pub use model::{Shared, Trained};
pub use predict::Explanation;
pub use shared::{AddOutcome, SharedSession};
pub use training::Split;

/// Most augmented views per image: each costs a backbone pass when the image is added.
pub const MAX_AUGMENT: usize = 16;

/// Augmented views per image by default, for head-only training: none, by measurement (on
/// trashnet-mini K=1 and K=2 did not beat K=0 and cost 2-3x the embedding time,
/// docs/BENCHMARKS.md).
pub const DEFAULT_AUGMENT: usize = 0;

/// Augmented views per image by default in a session that fine-tunes the last stage: a
/// trainable stage should not see one fixed view per image, and on trashnet-mini 2 was no worse
/// (0.794 against 0.788 over two seeds) for +30 s of a 5-minute run and 3x the stage-input cache
/// (docs/BENCHMARKS.md, "Fine-tuning the last stage").
pub const FINETUNE_AUGMENT: usize = 2;

/// The default `augment` of a session that fine-tunes (`finetune`) or trains the head only.
pub fn default_augment(finetune: bool) -> usize {
    if finetune {
        FINETUNE_AUGMENT
    } else {
        DEFAULT_AUGMENT
    }
}

/// How a session embeds what is added to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub fit: Fit,
    /// Augmented views embedded per added image, besides the evaluation view.
    pub augment: usize,
    /// Also keep each view's last-stage input, which `finetune_last` training needs. Off by
    /// default: a view's stage input is 88-800 KB where its embedding is 2-8 KB.
    pub finetune: bool,
    /// Image `i` (by id) draws its augmentations from `seed + i`.
    pub seed: u64,
    /// Keep a JPEG copy of each added photo (`thumbnail`), for a page to show and save.
    pub thumbnails: bool,
    /// Refuse stage inputs past `finetune::MAX_STAGE_CACHE_BYTES` (a browser tab's memory); the
    /// CLI, with the machine's memory, turns it off.
    pub limit_stage_cache: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fit: Fit::default(),
            augment: DEFAULT_AUGMENT,
            finetune: false,
            seed: 0,
            thumbnails: true,
            limit_stage_cache: true,
        }
    }
}

/// The rules a shell must agree with the engine on, in one place (the page reads them through
/// the wasm `rules()`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rules {
    pub max_label_chars: usize,
    pub max_augment: usize,
    /// `augment`'s defaults: [`DEFAULT_AUGMENT`] for head-only training, [`FINETUNE_AUGMENT`]
    /// for a session that fine-tunes the last stage.
    pub default_augment: usize,
    pub finetune_augment: usize,
    pub unsure_label: &'static str,
    /// The training defaults.
    pub train: TrainConfig,
    /// The heatmap colour map's stops, low to high (`explain::COLORS`).
    pub heatmap_colors: [[u8; 3]; 6],
    /// Every setting a shell may pass and the values the engine takes: the training settings
    /// (`TRAIN_SETTINGS`), then the session's `augment` and the predictions' unsure `threshold`.
    pub settings: Vec<Setting>,
}

/// The session's own settings, after the training ones in [`Rules::settings`].
const SESSION_SETTINGS: [Setting; 2] = [
    Setting {
        key: "augment",
        range: Range::Int {
            min: 0,
            max: MAX_AUGMENT as u64,
        },
        optional: false,
    },
    Setting {
        key: "threshold",
        range: Range::Number { min: 0.0, max: 1.0 },
        optional: false,
    },
];

pub fn rules() -> Rules {
    Rules {
        max_label_chars: MAX_LABEL_CHARS,
        max_augment: MAX_AUGMENT,
        default_augment: DEFAULT_AUGMENT,
        finetune_augment: FINETUNE_AUGMENT,
        unsure_label: UNSURE,
        train: TrainConfig::default(),
        heatmap_colors: crate::insight::explain::COLORS,
        settings: TRAIN_SETTINGS
            .iter()
            .chain(&SESSION_SETTINGS)
            .copied()
            .collect(),
    }
}

pub struct Session {
    backbone: Rc<Backbone>,
    arch: Arch,
    /// sha256 of the checkpoint the backbone came from: model files record it.
    source_sha256: String,
    options: Options,
    data: Dataset,
    thumbs: HashMap<u32, Vec<u8>>,
    /// Stage inputs by image id, views in the same order as its embeddings. Only photos added
    /// (not embeddings) to a `finetune` session have them.
    stage_inputs: HashMap<u32, Rc<dataset::Views>>,
    trained: Option<Trained>,
}

impl Session {
    /// A session over `backbone` (BatchNorm is folded here) on the device it lives on.
    pub fn new(backbone: Backbone, source_sha256: String, options: Options) -> Result<Session> {
        SESSION_SETTINGS[0].check_number(options.augment as f64)?;
        Ok(Session {
            arch: backbone.arch,
            backbone: Rc::new(backbone.fold_batchnorm()),
            source_sha256,
            options,
            data: Dataset::new(),
            thumbs: HashMap::new(),
            stage_inputs: HashMap::new(),
            trained: None,
        })
    }

    /// A session from a web weight file (`weights::save_web`); `arch`, when given, must match it.
    pub fn from_web_weights(
        bytes: &[u8],
        arch: Option<Arch>,
        device: &Device,
        options: Options,
    ) -> Result<Session> {
        let (backbone, info) = weights::load_web(bytes, arch, device)?;
        Session::new(backbone, info.source_sha256, options)
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    pub fn device(&self) -> Device {
        self.backbone.device()
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Values per embedding view.
    pub fn dim(&self) -> usize {
        self.arch.feature_dim()
    }

    /// Class labels in insertion order.
    pub fn labels(&self) -> &[String] {
        self.data.labels()
    }

    /// Images per class, in label order.
    pub fn counts(&self) -> Vec<usize> {
        self.data.counts()
    }

    pub fn examples(&self) -> &[dataset::Example] {
        self.data.examples()
    }

    /// All views of image `id`'s embedding (evaluation view first).
    pub fn embedding(&self, id: u32) -> Option<&[Vec<f32>]> {
        self.data.get(id).map(|e| e.views.as_slice())
    }

    /// The JPEG copy of image `id` (shorter side at most 256 px).
    pub fn thumbnail(&self, id: u32) -> Option<&[u8]> {
        self.thumbs.get(&id).map(Vec::as_slice)
    }

    /// The JPEG copy of image `id`, handed over: the session keeps it no longer. A page that
    /// keeps its own copy takes it, so that 5,000 photos' thumbnails (~70 MB) are not held twice.
    pub fn take_thumbnail(&mut self, id: u32) -> Option<Vec<u8>> {
        self.thumbs.remove(&id)
    }

    pub fn trained(&self) -> Option<&Trained> {
        self.trained.as_ref()
    }

    /// Add a class with no images yet (a model's classes, a page's empty box).
    pub fn add_class(&mut self, label: &str) -> Result<String> {
        let i = self.data.class_index(label)?;
        Ok(self.data.labels()[i].clone())
    }

    /// Add an image by its saved embedding (all views concatenated, as [`Session::embedding`]
    /// gives them) and optional UI copy, without running the backbone. It has no pixels, so
    /// `finetune_last` training refuses to run while it is here.
    pub fn add_embedding(
        &mut self,
        label: &str,
        flat: &[f32],
        thumbnail: Option<Vec<u8>>,
    ) -> Result<u32> {
        let dim = self.dim();
        if flat.is_empty() || !flat.len().is_multiple_of(dim) {
            return Err(Error::Invalid(format!(
                "an embedding for {} has a multiple of {dim} values, this one {}: saved with another backbone?",
                self.arch,
                flat.len()
            )));
        }
        if flat.iter().any(|v| !v.is_finite()) {
            return Err(Error::Invalid(
                "the embedding contains NaN or infinite values".into(),
            ));
        }
        let views = flat.chunks(dim).map(<[f32]>::to_vec).collect();
        let id = self.data.push(label, views)?;
        if let Some(t) = thumbnail {
            self.thumbs.insert(id, t);
        }
        Ok(id)
    }

    /// Forget image `id` and what is kept for it; whether it was there.
    pub fn remove_image(&mut self, id: u32) -> bool {
        self.thumbs.remove(&id);
        self.stage_inputs.remove(&id);
        self.data.remove(id)
    }

    /// Rename a class; a trained model's label follows.
    pub fn rename_class(&mut self, old: &str, new: &str) -> Result<()> {
        self.data.rename_class(old, new)?;
        let new = validate_label(new)?;
        if let Some(t) = self.trained.as_mut()
            && let Some(l) = t.labels.iter_mut().find(|l| **l == old.trim())
        {
            *l = new;
        }
        Ok(())
    }

    /// Remove a class and its images; how many images went with it.
    pub fn remove_class(&mut self, label: &str) -> Result<usize> {
        let removed = self.data.remove_class(label)?;
        let live: HashSet<u32> = self.data.examples().iter().map(|e| e.id).collect();
        self.thumbs.retain(|id, _| live.contains(id));
        self.stage_inputs.retain(|id, _| live.contains(id));
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    /// The page's copy of [`super::rules`], `www/engine/rules.js`, generated from them: the page
    /// checks settings with it before any engine has started (a saved setting the engine refuses
    /// must never stop the start), and this test fails when the two differ.
    /// `SORTWISE_BLESS=1 cargo test --lib rules_js` rewrites it.
    #[test]
    fn rules_js_is_generated_from_the_rules() {
        let json = serde_json::to_string_pretty(&super::rules()).unwrap();
        let text = format!(
            "// Generated from the engine's rules() (src/session/mod.rs) by\n\
             // `SORTWISE_BLESS=1 cargo test --lib rules_js`; the test fails when they differ.\n\
             export const RULES = {json};\n"
        );
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/www/engine/rules.js");
        if std::env::var_os("SORTWISE_BLESS").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let current = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            current == text,
            "www/engine/rules.js is not the engine's rules(): run SORTWISE_BLESS=1 cargo test --lib rules_js"
        );
    }
}
