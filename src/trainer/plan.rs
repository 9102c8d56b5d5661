//! The parts of a training loop that head-only training and fine-tuning share: class counts
//! and balance, the optimizer and its schedule, batches, the epoch's loss, and early stopping.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::TrainExample;
use super::config::{Balance, OptimizerKind, TrainConfig};
use super::linear::Loss;
use super::report::{EpochStats, Progress};
use crate::error::{Error, Result};
use crate::evaluation::metrics;
use crate::tensor_io::read_rows;

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

/// `weight_decay` pulls toward 0 (burn adds `weight_decay·θ` to the gradient); 0 turns it off.
pub(crate) fn build_optimizer(cfg: &TrainConfig, weight_decay: f64) -> ModuleOptimizer {
    let decay = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
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

/// `base` with the step decay of `cfg` applied at `epoch` (1-based).
pub(crate) fn lr_at(cfg: &TrainConfig, base: f64, epoch: usize) -> f64 {
    match (epoch - 1).checked_div(cfg.step_size) {
        Some(steps) => base * cfg.gamma.powi(steps as i32),
        None => base,
    }
}

/// What a training run over `train_set` needs beyond the config: class counts, the resolved
/// balance mode and its weights, the loss, and the batch order of each epoch.
pub(crate) struct Plan {
    pub classes: usize,
    pub balance: Balance,
    class_weights: Vec<f32>,
    sample_weights: Vec<f64>,
    sample_total: f64,
    pub rng: StdRng,
}

impl Plan {
    pub fn new(
        labels: &[String],
        train_set: &[TrainExample<'_>],
        cfg: &TrainConfig,
    ) -> Result<Plan> {
        cfg.validate()?;
        let classes = labels.len();
        let mut counts = vec![0usize; classes];
        for e in train_set {
            counts[e.label] += 1;
        }
        check_counts(labels, &counts)?;
        let n = train_set.len();
        let sample_weights: Vec<f64> = train_set
            .iter()
            .map(|e| 1.0 / counts[e.label] as f64)
            .collect();
        Ok(Plan {
            classes,
            balance: resolve_balance(cfg.balance, &counts),
            class_weights: counts
                .iter()
                .map(|&c| n as f32 / (classes as f32 * c as f32))
                .collect(),
            sample_total: sample_weights.iter().sum(),
            sample_weights,
            rng: StdRng::seed_from_u64(cfg.seed),
        })
    }

    /// burn's loss for fine-tuning through the graph: [`Plan::linear_loss`]'s terms.
    pub fn loss(&self, cfg: &TrainConfig, device: &Device) -> CrossEntropyLoss {
        let Loss {
            smoothing,
            class_weights,
        } = self.linear_loss(cfg);
        CrossEntropyLossConfig::new()
            .with_smoothing((smoothing > 0.0).then_some(smoothing))
            .with_weights(class_weights)
            .init(device)
    }

    /// One epoch's example order: a seeded shuffle, or class-balanced draws for `Sample`.
    pub fn epoch_order(&mut self) -> Vec<usize> {
        let n = self.sample_weights.len();
        if self.balance == Balance::Sample {
            (0..n)
                .map(|_| {
                    let mut t = self.rng.random_range(0.0..self.sample_total);
                    self.sample_weights
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
            o.shuffle(&mut self.rng);
            o
        }
    }

    /// The loss's terms: label smoothing, and the class weights when balancing weighs the loss.
    pub fn linear_loss(&self, cfg: &TrainConfig) -> Loss {
        Loss {
            smoothing: cfg.label_smoothing as f32,
            class_weights: (self.balance == Balance::Weight).then(|| self.class_weights.clone()),
        }
    }

    /// One view of each example in `batch` (drawn at random among its views) and their classes.
    pub fn draw<'a>(
        &mut self,
        train_set: &[TrainExample<'a>],
        batch: &[usize],
    ) -> (Vec<&'a [f32]>, Vec<usize>) {
        let rows = batch
            .iter()
            .map(|&i| {
                let views = train_set[i].views;
                views[self.rng.random_range(0..views.len())].as_slice()
            })
            .collect();
        (rows, batch.iter().map(|&i| train_set[i].label).collect())
    }

    /// [`Plan::draw`], the classes as a tensor on `device`.
    pub fn batch<'a>(
        &mut self,
        train_set: &[TrainExample<'a>],
        batch: &[usize],
        device: &Device,
    ) -> (Vec<&'a [f32]>, Tensor<1, Int>) {
        let (rows, labels) = self.draw(train_set, batch);
        let targets: Vec<i64> = labels.into_iter().map(|l| l as i64).collect();
        let y = Tensor::from_data(TensorData::new(targets, [batch.len()]), device);
        (rows, y)
    }
}

/// Sum of the per-batch losses of an epoch, kept on the device until the epoch ends.
#[derive(Default)]
pub(crate) struct EpochLoss {
    sum: Option<Tensor<1>>,
    batches: usize,
}

impl EpochLoss {
    pub fn add(&mut self, loss: Tensor<1>) {
        let detached = loss.detach();
        self.sum = Some(match self.sum.take() {
            Some(s) => s + detached,
            None => detached,
        });
        self.batches += 1;
    }

    /// The mean, refusing a diverged (NaN/inf) run with a message saying what to change.
    pub async fn mean(self, epoch: usize, lr: f64) -> Result<f64> {
        let sum = self.sum.expect("at least one batch").reshape([1, 1]);
        finite_loss(
            read_rows(sum).await?[0][0] as f64 / self.batches as f64,
            epoch,
            lr,
        )
    }
}

/// An epoch's mean loss, refusing a diverged (NaN/inf) run with a message saying what to change.
pub(crate) fn finite_loss(loss: f64, epoch: usize, lr: f64) -> Result<f64> {
    if !loss.is_finite() {
        return Err(Error::Invalid(format!(
            "training diverged at epoch {epoch} (loss is {loss}): lower the learning rate (now {lr})"
        )));
    }
    Ok(loss)
}

/// An epoch's stats: its training loss, and the validation loss and accuracy from the
/// validation probabilities (`None` without a validation set).
pub(crate) fn epoch_stats(
    epoch: usize,
    loss: f64,
    probs: &[Vec<f32>],
    truth: &[usize],
    classes: usize,
) -> EpochStats {
    let (val_loss, val_accuracy) = if truth.is_empty() {
        (None, None)
    } else {
        let m = metrics::compute(probs, truth, classes);
        (Some(m.loss), Some(m.accuracy))
    };
    EpochStats {
        epoch,
        loss,
        val_loss,
        val_accuracy,
    }
}

/// Epoch history, progress reporting with cancel, and early stopping that keeps the best
/// snapshot (by validation loss, or training loss without a validation set).
pub(crate) struct Run<T> {
    pub history: Vec<EpochStats>,
    best: Option<(f64, usize, T)>,
    since_best: usize,
    patience: usize,
}

impl<T> Run<T> {
    pub fn new(patience: usize) -> Self {
        Run {
            history: Vec::new(),
            best: None,
            since_best: 0,
            patience,
        }
    }

    /// Offer a candidate without an epoch of its own (e.g. the starting point, epoch 0).
    pub fn offer(&mut self, score: f64, epoch: usize, snapshot: impl FnOnce() -> T) -> bool {
        if self.best.as_ref().is_none_or(|(b, _, _)| score < *b) {
            self.best = Some((score, epoch, snapshot()));
            self.since_best = 0;
            true
        } else {
            self.since_best += 1;
            false
        }
    }

    /// Record an epoch, report it (`Err(Cancelled)` when `progress` says stop), keep the
    /// snapshot if it is the best so far; `Ok(true)` when patience has run out.
    pub async fn end_epoch(
        &mut self,
        stats: EpochStats,
        phase: &str,
        epochs: usize,
        progress: &mut impl AsyncFnMut(&Progress) -> bool,
        snapshot: impl FnOnce() -> T,
    ) -> Result<bool> {
        let keep_going = progress(&Progress {
            phase: phase.into(),
            epoch: stats.epoch,
            epochs,
            loss: stats.loss,
            val_loss: stats.val_loss,
            val_accuracy: stats.val_accuracy,
        })
        .await;
        if !keep_going {
            return Err(Error::Cancelled);
        }
        let score = stats.val_loss.unwrap_or(stats.loss);
        let epoch = stats.epoch;
        self.history.push(stats);
        let improved = self.offer(score, epoch, snapshot);
        Ok(!improved && self.patience > 0 && self.since_best >= self.patience)
    }

    /// (best epoch, its snapshot); panics if nothing was offered.
    pub fn best(&mut self) -> (usize, T) {
        let (_, epoch, snapshot) = self.best.take().expect("at least one epoch ran");
        (epoch, snapshot)
    }
}
