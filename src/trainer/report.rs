//! What a training run tells: per-epoch progress, and the report kept in the model file.

use serde::{Deserialize, Serialize};

use super::ValExample;
use super::config::Balance;
use crate::evaluation::calibration::Calibration;
use crate::evaluation::metrics::{self, ClassMetrics};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub phase: String,
    pub epoch: usize,
    pub epochs: usize,
    pub loss: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Misclassified {
    pub id: u32,
    pub label: String,
    pub predicted: String,
    pub confidence: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerClass {
    pub label: String,
    #[serde(flatten)]
    pub metrics: ClassMetrics,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `None` when there was no validation set.
    pub val_accuracy: Option<f64>,
    pub val_loss: Option<f64>,
    pub per_class: Vec<PerClass>,
    /// `confusion[actual][predicted]` over the validation set.
    pub confusion: Vec<Vec<usize>>,
    pub labels: Vec<String>,
    pub history: Vec<EpochStats>,
    pub misclassified: Vec<Misclassified>,
    pub epochs_run: usize,
    /// Epoch whose weights were kept (best validation loss).
    pub best_epoch: usize,
    pub train_size: usize,
    pub val_size: usize,
    pub balance: Balance,
    pub seconds: f64,
    /// Present when the backbone's last stage was fine-tuned; `history` then holds the head-only
    /// epochs followed by the fine-tuning epochs, numbered on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FineTuneStats>,
    /// The returned model was refit on training + validation examples (`TrainConfig::refit`):
    /// the validation metrics above are the held-out run's, of a model that was not returned.
    /// `false` in files written before refitting existed.
    #[serde(default)]
    pub refit: bool,
    /// Head-only epochs the refit ran (the held-out run's best epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit_epochs: Option<usize>,
    /// Examples the refit trained on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit_size: Option<usize>,
    /// The refit's balance mode, `balance` recomputed on all examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit_balance: Option<Balance>,
    /// The temperature fitted on the validation set (the held-out run's model), which the
    /// model's predictions use, and the calibration error before and after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FineTuneStats {
    pub l2sp: f64,
    pub epochs_run: usize,
    /// Fine-tuning epoch whose weights were kept; 0 means none beat the head-only model, which
    /// (with the pretrained stage) was kept.
    pub best_epoch: usize,
    /// ‖θ−θ₀‖ of the kept stage, over all its (BatchNorm-folded) parameters.
    pub distance: f64,
    /// ‖θ−θ₀‖ after the last fine-tuning epoch, kept or not: how far training moved the stage.
    pub last_distance: f64,
    /// The head-only warm start's validation metrics, for comparison.
    pub head_only_val_accuracy: Option<f64>,
    pub head_only_val_loss: Option<f64>,
    /// Fine-tuning epochs of the refit (the held-out run's best fine-tuning epoch; 0: the refit
    /// kept the pretrained stage, as the held-out run did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit_epochs: Option<usize>,
    /// ‖θ−θ₀‖ of the refit's stage, the one returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit_distance: Option<f64>,
}

/// The report of a run, with validation metrics from the kept model's probabilities.
pub(crate) fn build_report(
    labels: &[String],
    history: Vec<EpochStats>,
    best_epoch: usize,
    train_size: usize,
    val_set: &[ValExample<'_>],
    balance: Balance,
    probs: &[Vec<f32>],
) -> Report {
    let epochs_run = history.len();
    let mut report = Report {
        val_accuracy: None,
        val_loss: None,
        per_class: Vec::new(),
        confusion: Vec::new(),
        labels: labels.to_vec(),
        history,
        misclassified: Vec::new(),
        epochs_run,
        best_epoch,
        train_size,
        val_size: val_set.len(),
        balance,
        seconds: 0.0,
        finetune: None,
        refit: false,
        refit_epochs: None,
        refit_size: None,
        refit_balance: None,
        calibration: None,
    };
    if val_set.is_empty() {
        return report;
    }
    let truth: Vec<usize> = val_set.iter().map(|v| v.label).collect();
    let m = metrics::compute(probs, &truth, labels.len());
    report.val_accuracy = Some(m.accuracy);
    report.val_loss = Some(m.loss);
    report.confusion = m.confusion;
    report.per_class = labels
        .iter()
        .cloned()
        .zip(m.per_class)
        .map(|(label, metrics)| PerClass { label, metrics })
        .collect();
    for (v, p) in val_set.iter().zip(probs) {
        let predicted = metrics::argmax(p);
        if predicted != v.label {
            report.misclassified.push(Misclassified {
                id: v.id,
                label: labels[v.label].clone(),
                predicted: labels[predicted].clone(),
                confidence: p[predicted],
            });
        }
    }
    report
}
