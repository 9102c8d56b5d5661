//! Head training on cached embeddings, written directly with burn's autodiff and `burn::optim`
//! (burn-train's learner does not run in the browser), so the same loop serves CLI and page.

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
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

/// Default L2-SP strength, α = 0.1: the value Li et al. (2018) found to work across their
/// transfer tasks, kept after a measurement on trashnet-mini (docs/BENCHMARKS.md).
pub const DEFAULT_L2SP: f64 = 0.1;

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
    /// Also train the backbone's last stage (see `finetune.rs`), after a head-only warm start.
    pub finetune_last: bool,
    /// L2-SP strength α: the fine-tuning loss adds (α/2)·‖θ−θ₀‖² over the last stage's
    /// parameters θ (θ₀ pretrained), in place of weight decay toward 0 there.
    pub l2sp: f64,
    /// Epochs of the fine-tuning phase (after the head-only epochs).
    pub finetune_epochs: usize,
    /// Learning rate of the fine-tuning phase. Default: a tenth of `lr`'s.
    pub finetune_lr: Option<f64>,
    /// After the held-out run has chosen the epoch count, train the final model again from
    /// scratch on training + validation examples for that many epochs (same seed and recipe),
    /// so that it learns from every photo; the report keeps the held-out run's validation
    /// metrics. Without a validation set there is nothing to add and no refit.
    pub refit: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 100,
            optimizer: OptimizerKind::Adam,
            lr: None,
            momentum: 0.9,
            batch_size: 32,
            // 1e-2 (was 1e-4) by measurement with refit, over 3 seeds on trashnet-mini's val
            // split and 5-fold splits: the only setting at least as accurate as the PyTorch
            // linear head on both (docs/BENCHMARKS.md, "Head recipes vs the PyTorch linear head").
            weight_decay: 1e-2,
            label_smoothing: 0.1,
            val_split: 0.2,
            balance: Balance::Auto,
            seed: 0,
            patience: 20,
            step_size: 0,
            gamma: 0.1,
            finetune_last: false,
            l2sp: DEFAULT_L2SP,
            finetune_epochs: 10,
            finetune_lr: None,
            refit: true,
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

    pub fn finetune_learning_rate(&self) -> f64 {
        self.finetune_lr.unwrap_or(self.learning_rate() / 10.0)
    }

    pub(crate) fn validate(&self) -> Result<()> {
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
        if !(self.l2sp >= 0.0 && self.l2sp.is_finite()) {
            return Err(Error::Invalid(format!(
                "l2sp must be a non-negative number (got {})",
                self.l2sp
            )));
        }
        let ft_lr = self.finetune_learning_rate();
        if self.finetune_last && !(ft_lr > 0.0 && ft_lr.is_finite()) {
            return bad("the fine-tuning learning rate must be a positive number");
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

pub(crate) fn matrix(rows: &[&[f32]], device: &Device) -> Tensor<2> {
    let dim = rows.first().map_or(0, |r| r.len());
    // `concat` copies row by row; a flat_map collect pushed element by element and was a
    // third of head training (bench_head).
    Tensor::from_data(TensorData::new(rows.concat(), [rows.len(), dim]), device)
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

    pub fn loss(&self, cfg: &TrainConfig, device: &Device) -> CrossEntropyLoss {
        CrossEntropyLossConfig::new()
            .with_smoothing((cfg.label_smoothing > 0.0).then_some(cfg.label_smoothing as f32))
            .with_weights((self.balance == Balance::Weight).then(|| self.class_weights.clone()))
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

    /// One view of each example in `batch` (drawn at random among its views) and the targets.
    pub fn batch<'a>(
        &mut self,
        train_set: &[TrainExample<'a>],
        batch: &[usize],
        device: &Device,
    ) -> (Vec<&'a [f32]>, Tensor<1, Int>) {
        let rows = batch
            .iter()
            .map(|&i| {
                let views = train_set[i].views;
                views[self.rng.random_range(0..views.len())].as_slice()
            })
            .collect();
        let targets: Vec<i64> = batch.iter().map(|&i| train_set[i].label as i64).collect();
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
        let loss = read_rows(sum).await?[0][0] as f64 / self.batches as f64;
        if !loss.is_finite() {
            return Err(Error::Invalid(format!(
                "training diverged at epoch {epoch} (loss is {loss}): lower the learning rate (now {lr})"
            )));
        }
        Ok(loss)
    }
}

/// Validation loss and accuracy from probabilities (`None` without a validation set).
pub(crate) fn val_stats(
    probs: &[Vec<f32>],
    truth: &[usize],
    classes: usize,
) -> (Option<f64>, Option<f64>) {
    if truth.is_empty() {
        return (None, None);
    }
    let m = metrics::compute(probs, truth, classes);
    (Some(m.loss), Some(m.accuracy))
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
///
/// With `cfg.refit` (the default) and a validation set, the returned head is the refit on
/// training + validation examples (see [`train_with_views`]); the validation photos take part
/// with their evaluation view only.
pub async fn train(
    labels: &[String],
    train_set: &[TrainExample<'_>],
    val_set: &[ValExample<'_>],
    cfg: &TrainConfig,
    device: &Device,
    progress: &mut impl AsyncFnMut(&Progress) -> bool,
) -> Result<(Head, Report)> {
    train_with_views(labels, train_set, val_set, None, cfg, device, progress).await
}

/// The training + validation examples a refit trains on: `val_views[i]` holds every view of
/// `val_set[i]` (its augmented views too, as training photos have theirs), or `None` for the
/// evaluation views alone (then copied into `storage`).
pub(crate) fn refit_set<'a>(
    train_set: &[TrainExample<'a>],
    val_set: &[ValExample<'_>],
    val_views: Option<&[&'a [Vec<f32>]]>,
    storage: &'a mut Vec<Vec<Vec<f32>>>,
) -> Result<Vec<TrainExample<'a>>> {
    let mut all: Vec<TrainExample<'a>> = train_set
        .iter()
        .map(|e| TrainExample {
            views: e.views,
            label: e.label,
        })
        .collect();
    match val_views {
        Some(views) => {
            if views.len() != val_set.len() {
                return Err(Error::Invalid(format!(
                    "{} validation examples but views for {}",
                    val_set.len(),
                    views.len()
                )));
            }
            all.extend(views.iter().zip(val_set).map(|(v, e)| TrainExample {
                views: v,
                label: e.label,
            }));
        }
        None => {
            *storage = val_set.iter().map(|v| vec![v.embedding.to_vec()]).collect();
            let stored: &'a [Vec<Vec<f32>>] = storage;
            all.extend(stored.iter().zip(val_set).map(|(v, e)| TrainExample {
                views: v,
                label: e.label,
            }));
        }
    }
    Ok(all)
}

/// One epoch of head training over `set` in `plan`'s order; the mean loss.
#[allow(clippy::too_many_arguments)]
async fn head_epoch(
    plan: &mut Plan,
    set: &[TrainExample<'_>],
    head: Head,
    optim: &mut ModuleOptimizer,
    loss_fn: &CrossEntropyLoss,
    cfg: &TrainConfig,
    epoch: usize,
    ad: &Device,
) -> Result<(Head, f64)> {
    let order = plan.epoch_order();
    let lr = lr_at(cfg, cfg.learning_rate(), epoch);
    let mut head = head;
    let mut epoch_loss = EpochLoss::default();
    for batch in order.chunks(cfg.batch_size) {
        let (rows, y) = plan.batch(set, batch, ad);
        let loss = loss_fn.forward(head.forward(matrix(&rows, ad)), y);
        epoch_loss.add(loss.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &head);
        head = optim.step(lr, head, grads);
    }
    let loss = epoch_loss.mean(epoch, cfg.learning_rate()).await?;
    Ok((head, loss))
}

/// A head trained from zeros on `set` for exactly `epochs` epochs, as the held-out run trains
/// (same seed, optimizer, loss, balance rule, here applied to `set`'s counts), without
/// validation or early stopping. Progress phase `"refit"`. Returns the head, the resolved balance
/// and the last epoch's loss.
pub async fn refit_head(
    labels: &[String],
    set: &[TrainExample<'_>],
    cfg: &TrainConfig,
    epochs: usize,
    device: &Device,
    progress: &mut impl AsyncFnMut(&Progress) -> bool,
) -> Result<(Head, Balance, f64)> {
    let mut plan = Plan::new(labels, set, cfg)?;
    let dim = set[0].views[0].len();
    let ad = device.clone().autodiff();
    let mut head = Head::zeros(dim, plan.classes, &ad);
    let mut optim = build_optimizer(cfg, cfg.weight_decay);
    let loss_fn = plan.loss(cfg, &ad);
    let mut last = f64::NAN;
    for epoch in 1..=epochs {
        let (h, loss) =
            head_epoch(&mut plan, set, head, &mut optim, &loss_fn, cfg, epoch, &ad).await?;
        head = h;
        last = loss;
        let p = Progress {
            phase: "refit".into(),
            epoch,
            epochs,
            loss,
            val_loss: None,
            val_accuracy: None,
        };
        if !progress(&p).await {
            return Err(Error::Cancelled);
        }
    }
    Ok((head.valid(), plan.balance, last))
}

/// [`train`], with every view of each validation photo for the refit (`val_views`, in `val_set`
/// order; `None`: evaluation views only). The held-out run trains on `train_set`, validates on
/// `val_set` and keeps its best epoch by validation loss; with `cfg.refit` and a validation set
/// a new head is then trained from zeros on both for that many epochs and returned, and the
/// report (the held-out run's metrics) says so.
pub async fn train_with_views(
    labels: &[String],
    train_set: &[TrainExample<'_>],
    val_set: &[ValExample<'_>],
    val_views: Option<&[&[Vec<f32>]]>,
    cfg: &TrainConfig,
    device: &Device,
    progress: &mut impl AsyncFnMut(&Progress) -> bool,
) -> Result<(Head, Report)> {
    if cfg.finetune_last {
        // The examples here are embeddings; fine-tuning needs each image's last-stage input.
        return Err(Error::Invalid(
            "'fine-tune last stage' (finetuneLast) needs each image's last-stage input, which \
             this trainer does not keep: train the head only, or use finetune::train"
                .into(),
        ));
    }
    let started = Instant::now();
    let mut plan = Plan::new(labels, train_set, cfg)?;
    let dim = train_set[0].views[0].len();
    let ad = device.clone().autodiff();
    let mut head = Head::zeros(dim, plan.classes, &ad);
    let mut optim = build_optimizer(cfg, cfg.weight_decay);
    let loss_fn = plan.loss(cfg, &ad);
    let val_rows: Vec<&[f32]> = val_set.iter().map(|v| v.embedding).collect();
    let val_truth: Vec<usize> = val_set.iter().map(|v| v.label).collect();
    let mut run = Run::new(cfg.patience);

    for epoch in 1..=cfg.epochs {
        let (h, loss) = head_epoch(
            &mut plan, train_set, head, &mut optim, &loss_fn, cfg, epoch, &ad,
        )
        .await?;
        head = h;
        let probs = probabilities(&head.valid(), &val_rows, device).await?;
        let (val_loss, val_accuracy) = val_stats(&probs, &val_truth, plan.classes);
        let stats = EpochStats {
            epoch,
            loss,
            val_loss,
            val_accuracy,
        };
        if run
            .end_epoch(stats, "train", cfg.epochs, progress, || head.valid())
            .await?
        {
            break;
        }
    }

    let (best_epoch, best_head) = run.best();
    let probs = probabilities(&best_head, &val_rows, device).await?;
    let mut report = build_report(
        labels,
        run.history,
        best_epoch,
        train_set.len(),
        val_set,
        plan.balance,
        &probs,
    );
    let mut head = best_head;
    if cfg.refit && !val_set.is_empty() {
        let mut storage = Vec::new();
        let all = refit_set(train_set, val_set, val_views, &mut storage)?;
        let (refit, balance, _) =
            refit_head(labels, &all, cfg, best_epoch, device, progress).await?;
        head = refit;
        report.refit = true;
        report.refit_epochs = Some(best_epoch);
        report.refit_size = Some(all.len());
        report.refit_balance = Some(balance);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok((head, report))
}
