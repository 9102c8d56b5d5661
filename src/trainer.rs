//! Head training on cached embeddings, written directly with burn's autodiff and `burn::optim`
//! (burn-train's learner does not run in the browser), so the same loop serves CLI and page.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::dataset::Example;
use crate::error::{Error, Result};
use crate::head::Head;
use crate::infer::read_rows;
use crate::metrics::{self, ClassMetrics};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    #[default]
    Adam,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// `weight` when the largest class has at least twice the images of the smallest.
    #[default]
    Auto,
    None,
    /// Class-weighted loss, weights inversely proportional to class size.
    Weight,
    /// Each epoch draws examples with probability inversely proportional to class size.
    Sample,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub optimizer: OptimizerKind,
    /// Default: 1e-3 for Adam, 1e-2 for SGD.
    pub lr: Option<f64>,
    pub momentum: f64,
    pub batch_size: usize,
    pub weight_decay: f64,
    pub label_smoothing: f64,
    pub val_split: f64,
    pub balance: Balance,
    pub seed: u64,
    /// Stop after this many epochs without a better validation loss (0: never).
    pub patience: usize,
    /// Step decay: multiply the learning rate by `gamma` every `step_size` epochs (0: off).
    pub step_size: usize,
    pub gamma: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 100,
            optimizer: OptimizerKind::Adam,
            lr: None,
            momentum: 0.9,
            batch_size: 32,
            weight_decay: 1e-4,
            label_smoothing: 0.1,
            val_split: 0.2,
            balance: Balance::Auto,
            seed: 0,
            patience: 20,
            step_size: 0,
            gamma: 0.1,
        }
    }
}

impl TrainConfig {
    pub fn learning_rate(&self) -> f64 {
        self.lr.unwrap_or(match self.optimizer {
            OptimizerKind::Adam => 1e-3,
            OptimizerKind::Sgd => 1e-2,
        })
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Invalid(m.to_string()));
        if self.epochs == 0 {
            return bad("epochs must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1");
        }
        let lr = self.learning_rate();
        if !(lr > 0.0 && lr.is_finite()) {
            return bad("the learning rate must be a positive number");
        }
        if !(0.0..1.0).contains(&self.val_split) {
            return bad("the validation split must be in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label smoothing must be in [0, 1)");
        }
        Ok(())
    }
}

/// One training example: its views (index 0 = evaluation view) and class.
pub struct TrainExample<'a> {
    pub views: &'a [Vec<f32>],
    pub label: usize,
}

/// One validation example: evaluation-view embedding, class, and the id the UI knows it by.
pub struct ValExample<'a> {
    pub embedding: &'a [f32],
    pub label: usize,
    pub id: u32,
}

/// Training and validation sets over cached examples, picked by index (see `split.rs`).
pub fn sets<'a>(
    examples: &'a [Example],
    train_idx: &[usize],
    val_idx: &[usize],
) -> (Vec<TrainExample<'a>>, Vec<ValExample<'a>>) {
    let train = train_idx
        .iter()
        .map(|&i| TrainExample {
            views: &examples[i].views,
            label: examples[i].label,
        })
        .collect();
    let val = val_idx
        .iter()
        .map(|&i| ValExample {
            embedding: &examples[i].views[0],
            label: examples[i].label,
            id: examples[i].id,
        })
        .collect();
    (train, val)
}

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
}

/// Checks that the class counts can train a classifier, with messages a person can act on.
pub fn check_counts(labels: &[String], counts: &[usize]) -> Result<()> {
    let with_images = counts.iter().filter(|&&c| c > 0).count();
    if labels.is_empty() || with_images == 0 {
        return Err(Error::Invalid(
            "add images to at least two classes before training".into(),
        ));
    }
    if let Some(i) = counts.iter().position(|&c| c == 0) {
        return Err(Error::Invalid(format!(
            "class '{}' has no images: add some or remove the class",
            labels[i]
        )));
    }
    if labels.len() < 2 {
        return Err(Error::Invalid(format!(
            "only one class ('{}'): a classifier needs at least two",
            labels[0]
        )));
    }
    Ok(())
}

fn resolve_balance(balance: Balance, counts: &[usize]) -> Balance {
    match balance {
        Balance::Auto => {
            let max = counts.iter().copied().max().unwrap_or(0);
            let min = counts.iter().copied().min().unwrap_or(0);
            if min > 0 && max >= 2 * min {
                Balance::Weight
            } else {
                Balance::None
            }
        }
        other => other,
    }
}

fn build_optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    let decay = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32));
    match cfg.optimizer {
        OptimizerKind::Adam => AdamConfig::new().with_weight_decay(decay).init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(cfg.momentum)
                    .with_dampening(0.0),
            ))
            .with_weight_decay(decay)
            .init(),
    }
}

fn matrix(rows: &[&[f32]], device: &Device) -> Tensor<2> {
    let dim = rows.first().map_or(0, |r| r.len());
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), dim]), device)
}

/// Softmax probabilities of `head` for each row.
pub async fn probabilities(head: &Head, rows: &[&[f32]], device: &Device) -> Result<Vec<Vec<f32>>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let x = matrix(rows, device);
    read_rows(softmax(head.forward(x), 1)).await
}

/// Train a new head. `progress` is awaited after every epoch; resolving to `false` cancels, and
/// then nothing of the run is kept. It is async so a browser caller can yield to its event loop
/// there (the CPU backend never does otherwise, and a cancel message could not arrive).
pub async fn train(
    labels: &[String],
    train_set: &[TrainExample<'_>],
    val_set: &[ValExample<'_>],
    cfg: &TrainConfig,
    device: &Device,
    progress: &mut impl AsyncFnMut(&Progress) -> bool,
) -> Result<(Head, Report)> {
    cfg.validate()?;
    let started = Instant::now();
    let classes = labels.len();
    let mut counts = vec![0usize; classes];
    for e in train_set {
        counts[e.label] += 1;
    }
    check_counts(labels, &counts)?;
    let dim = train_set[0].views[0].len();
    let balance = resolve_balance(cfg.balance, &counts);
    let n = train_set.len();
    let class_weights: Vec<f32> = counts
        .iter()
        .map(|&c| n as f32 / (classes as f32 * c as f32))
        .collect();

    let ad = device.clone().autodiff();
    let mut head = Head::zeros(dim, classes, &ad);
    let mut optim = build_optimizer(cfg);
    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing((cfg.label_smoothing > 0.0).then_some(cfg.label_smoothing as f32))
        .with_weights((balance == Balance::Weight).then(|| class_weights.clone()))
        .init(&ad);
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let sample_weights: Vec<f64> = train_set
        .iter()
        .map(|e| 1.0 / counts[e.label] as f64)
        .collect();
    let sample_total: f64 = sample_weights.iter().sum();

    let val_rows: Vec<&[f32]> = val_set.iter().map(|v| v.embedding).collect();
    let val_truth: Vec<usize> = val_set.iter().map(|v| v.label).collect();
    let mut history = Vec::new();
    let mut best: Option<(f64, usize, Head)> = None;
    let mut since_best = 0;

    for epoch in 1..=cfg.epochs {
        let order: Vec<usize> = if balance == Balance::Sample {
            (0..n)
                .map(|_| {
                    let mut t = rng.random_range(0.0..sample_total);
                    sample_weights
                        .iter()
                        .position(|w| {
                            t -= w;
                            t < 0.0
                        })
                        .unwrap_or(n - 1)
                })
                .collect()
        } else {
            let mut o: Vec<usize> = (0..n).collect();
            o.shuffle(&mut rng);
            o
        };
        let lr = match (epoch - 1).checked_div(cfg.step_size) {
            Some(steps) => cfg.learning_rate() * cfg.gamma.powi(steps as i32),
            None => cfg.learning_rate(),
        };
        let mut loss_sum: Option<Tensor<1>> = None;
        let mut batches = 0usize;
        for batch in order.chunks(cfg.batch_size) {
            let rows: Vec<&[f32]> = batch
                .iter()
                .map(|&i| {
                    let views = train_set[i].views;
                    views[rng.random_range(0..views.len())].as_slice()
                })
                .collect();
            let targets: Vec<i64> = batch.iter().map(|&i| train_set[i].label as i64).collect();
            let x = matrix(&rows, &ad);
            let y = Tensor::<1, Int>::from_data(TensorData::new(targets, [batch.len()]), &ad);
            let loss = loss_fn.forward(head.forward(x), y);
            let detached = loss.clone().detach();
            loss_sum = Some(match loss_sum {
                Some(s) => s + detached,
                None => detached,
            });
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &head);
            head = optim.step(lr, head, grads);
        }
        let loss = read_rows(loss_sum.expect("at least one batch").reshape([1, 1])).await?[0][0]
            as f64
            / batches as f64;
        if !loss.is_finite() {
            return Err(Error::Invalid(format!(
                "training diverged at epoch {epoch} (loss is {loss}): lower the learning rate (now {})",
                cfg.learning_rate()
            )));
        }
        let (val_loss, val_accuracy) = if val_set.is_empty() {
            (None, None)
        } else {
            let probs = probabilities(&head.valid(), &val_rows, device).await?;
            let m = metrics::compute(&probs, &val_truth, classes);
            (Some(m.loss), Some(m.accuracy))
        };
        history.push(EpochStats {
            epoch,
            loss,
            val_loss,
            val_accuracy,
        });
        let cancelled = !progress(&Progress {
            phase: "train".into(),
            epoch,
            epochs: cfg.epochs,
            loss,
            val_loss,
            val_accuracy,
        })
        .await;
        if cancelled {
            return Err(Error::Cancelled);
        }
        let score = val_loss.unwrap_or(loss);
        if best.as_ref().is_none_or(|(b, _, _)| score < *b) {
            best = Some((score, epoch, head.valid()));
            since_best = 0;
        } else {
            since_best += 1;
            if cfg.patience > 0 && since_best >= cfg.patience {
                break;
            }
        }
    }

    let (_, best_epoch, best_head) = best.expect("at least one epoch ran");
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
        train_size: n,
        val_size: val_set.len(),
        balance,
        seconds: 0.0,
    };
    if !val_set.is_empty() {
        let probs = probabilities(&best_head, &val_rows, device).await?;
        let m = metrics::compute(&probs, &val_truth, classes);
        report.val_accuracy = Some(m.accuracy);
        report.val_loss = Some(m.loss);
        report.confusion = m.confusion;
        report.per_class = labels
            .iter()
            .cloned()
            .zip(m.per_class)
            .map(|(label, metrics)| PerClass { label, metrics })
            .collect();
        for (v, p) in val_set.iter().zip(&probs) {
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
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok((best_head, report))
}
