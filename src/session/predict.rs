//! Prediction: a photo (its file's bytes, or pixels already decoded) through the backbone, the
//! fine-tuned stage when the model has one, and the head, into calibrated probabilities, a ranked
//! prediction with "unsure", and the class activation maps that explain it. Like every step of
//! [`SharedSession`], each copies the model out of the session before it awaits.

use std::rc::Rc;

use image::RgbImage;
use serde::Serialize;

use super::{SharedSession, Trained};
use crate::backbone::Backbone;
use crate::error::{Error, Result};
use crate::evaluation::calibration;
use crate::insight::explain::{self, Heatmap};
use crate::model::classifier::{self, Prediction};
use crate::model::embed;
use crate::model::infer::DEFAULT_BATCH;
use crate::preprocess;

/// A prediction and the maps that explain it.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    #[serde(flatten)]
    pub prediction: Prediction,
    pub heatmap: Heatmap,
}

impl SharedSession {
    /// The ranked prediction for a photo file's bytes (any format `preprocess::decode` reads);
    /// "unsure" below `threshold`. A file that is not a usable image is refused with the
    /// decoder's reason.
    pub async fn predict_bytes(&self, bytes: &[u8], threshold: f32) -> Result<Prediction> {
        self.predict(&preprocess::decode(bytes)?, threshold).await
    }

    /// [`SharedSession::explain`] for a photo file's bytes.
    pub async fn explain_bytes(&self, bytes: &[u8], threshold: f32) -> Result<Explanation> {
        self.explain(&preprocess::decode(bytes)?, threshold).await
    }

    /// The ranked prediction for one decoded photo; "unsure" below `threshold`.
    pub async fn predict(&self, img: &RgbImage, threshold: f32) -> Result<Prediction> {
        let x = preprocess::eval_tensor(img, self.get().options.fit);
        let (probs, labels) = self.probabilities(&[x]).await?;
        Ok(classifier::prediction(&labels, &probs[0], threshold))
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
}
