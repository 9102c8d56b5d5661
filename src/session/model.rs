//! The session's trained model: made by training, read from and written to `.sortwise` files.

use std::rc::Rc;

use super::Session;
use crate::backbone::{LastStage, StageWeights};
use crate::data::dataset::validate_label;
use crate::error::{Error, Result};
use crate::formats::model_file::{self, Model, ModelMeta};
use crate::formats::share::{self, Precision};
use crate::model::head::Head;
use crate::trainer::{Report, TrainConfig};

/// A trained head, its classes, and the fine-tuned last stage when it has one. Cloned out of
/// the session for each prediction: the big parts are behind `Rc`.
#[derive(Clone)]
pub struct Trained {
    pub(super) head: Head,
    pub labels: Vec<String>,
    /// PyTorch-layout copy, read back once after training so exporting is synchronous.
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
    pub config: TrainConfig,
    pub report: Option<Report>,
    /// The head was trained on this stage's embeddings, so predictions go through it.
    pub(super) stage: Option<TunedStage>,
    /// Predictions are `softmax(logits / temperature)`, fitted on the validation set.
    pub temperature: f64,
    /// The image ids the run validated on (none for a model read from a file).
    pub validation: Vec<u32>,
}

/// A trained model as link bytes (`share.rs`), at the precision chosen and how often it agrees
/// with the full head.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Shared {
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub precision: Precision,
    /// Share of `n` photos on which it picks the full head's class.
    pub agreement: f64,
    pub n: usize,
}

/// A fine-tuned last stage on the device (what predictions run) and its weights read back
/// (what a model file holds).
#[derive(Clone)]
pub(super) struct TunedStage {
    pub stage: Rc<LastStage>,
    pub weights: Rc<StageWeights>,
}

impl Trained {
    /// Whether the backbone's last stage was fine-tuned.
    pub fn has_stage(&self) -> bool {
        self.stage.is_some()
    }
}

impl Session {
    /// Make a `.sortwise` file the trained model, after checking it was made for this backbone
    /// (and its fine-tuned stage fits); its labels. On any error the session stays as it was.
    pub fn import_model(&mut self, bytes: &[u8]) -> Result<Vec<String>> {
        let (model, stage) = Model::from_bytes_with_stage(bytes)?;
        let labels = model.meta.labels.clone();
        self.set_model(model, stage)?;
        Ok(labels)
    }

    /// [`Session::import_model`] for a file already parsed.
    pub fn set_model(&mut self, model: Model, stage: Option<StageWeights>) -> Result<()> {
        model.check_backbone(self.arch, &self.source_sha256)?;
        // Everything that can fail comes before the first change.
        let stage = match stage {
            Some(w) => Some(TunedStage {
                stage: Rc::new(self.backbone.split_last_stage().with_weights(&w)?),
                weights: Rc::new(w),
            }),
            None => None,
        };
        for label in &model.meta.labels {
            validate_label(label)?;
        }
        let empty = self.data.examples().is_empty();
        if model.meta.fit != self.options.fit && !empty {
            return Err(Error::Invalid(format!(
                "the model was trained with '{}' preprocessing and the images here use '{}'",
                model.meta.fit, self.options.fit
            )));
        }
        // A session opened for a model has no images yet: its classes are the model's. One with
        // images keeps its own, or training would demand images for them.
        if empty {
            for label in &model.meta.labels {
                self.data.class_index(label)?;
            }
        }
        self.options.fit = model.meta.fit;
        let head = Head::from_weights(
            &model.weight,
            &model.bias,
            model.meta.dim,
            &self.backbone.device(),
        );
        self.trained = Some(Trained {
            head,
            labels: model.meta.labels,
            weight: model.weight,
            bias: model.bias,
            config: model.meta.config,
            report: model.meta.report,
            stage,
            temperature: model.meta.temperature,
            validation: Vec::new(),
        });
        Ok(())
    }

    /// The trained model as a `.sortwise` file (version 2 with the `stage.*` tensors when the
    /// last stage was fine-tuned); `producer` names the program that wrote it.
    pub fn export_model(&self, producer: &str) -> Result<Vec<u8>> {
        let (model, t) = self.model(producer)?;
        model.to_bytes_with_stage(t.stage.as_ref().map(|s| &*s.weights))
    }

    /// The trained model for a link (`share.rs`): int8 when its top class agrees with the full
    /// head's on at least 99% of the last run's validation photos (every photo here when there
    /// was none), else f16. A fine-tuned stage is megabytes: such a model is refused.
    pub fn share(&self) -> Result<Shared> {
        let (model, t) = self.model("")?;
        if t.stage.is_some() {
            return Err(Error::Invalid(
                "a model with a fine-tuned last stage is too large for a link: share its \
                 .sortwise file instead"
                    .into(),
            ));
        }
        let rows: Vec<&[f32]> = if t.validation.is_empty() {
            self.data
                .examples()
                .iter()
                .map(|e| e.views[0].as_slice())
                .collect()
        } else {
            t.validation
                .iter()
                .filter_map(|id| self.data.get(*id))
                .map(|e| e.views[0].as_slice())
                .collect()
        };
        // The smallest precision that keeps the predictions; f16 whatever it gives.
        let (precision, agreement) = Precision::ALL
            .into_iter()
            .map(|p| (p, share::agreement(&model.weight, &model.bias, &rows, p)))
            .find(|&(p, a)| a >= share::MIN_AGREEMENT || p == Precision::F16)
            .expect("f16 ends the list");
        Ok(Shared {
            bytes: share::encode(&model, precision)?,
            precision,
            agreement,
            n: rows.len(),
        })
    }

    fn model(&self, producer: &str) -> Result<(Model, &Trained)> {
        let t = self
            .trained
            .as_ref()
            .ok_or_else(|| Error::Invalid("no model yet: train one first".into()))?;
        let model = Model {
            meta: ModelMeta {
                version: model_file::VERSION,
                arch: self.arch,
                backbone_source_sha256: self.source_sha256.clone(),
                labels: t.labels.clone(),
                fit: self.options.fit,
                dim: self.dim(),
                config: t.config.clone(),
                report: t.report.clone(),
                producer: producer.to_string(),
                temperature: t.temperature,
            },
            weight: t.weight.clone(),
            bias: t.bias.clone(),
        };
        Ok((model, t))
    }
}
