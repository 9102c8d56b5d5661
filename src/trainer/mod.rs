//! Head training on cached embeddings, one loop for the CLI and the page (burn-train's learner
//! does not run in the browser).
//!
//! `config` holds what a run is asked to do, `plan` the loop's shared parts, `report` what it
//! tells, `linear` the head's gradient and optimizer step written out (burn's formulas, without
//! the autodiff graph); this file trains the head. Fine-tuning the last stage (`finetune`)
//! reuses `plan` and trains through burn's autodiff.

mod config;
mod linear;
mod plan;
mod report;

use burn::tensor::Device;
use web_time::Instant;

use crate::data::dataset::Example;
use crate::error::{Error, Result};
use crate::evaluation::calibration::calibrate;
use crate::model::head::Head;
use linear::LinearHead;

pub use config::{
    Balance, DEFAULT_L2SP, OptimizerKind, Range, Setting, TRAIN_SETTINGS, TrainConfig,
};
pub use plan::check_counts;
pub(crate) use plan::{EpochLoss, Plan, Run, build_optimizer, epoch_stats, finite_loss, lr_at};
pub(crate) use report::build_report;
pub use report::{EpochStats, FineTuneStats, Misclassified, PerClass, Progress, Report};

/// The examples of one run: the classes, the training and validation examples, and (for the
/// refit) every view of each validation photo, in `val` order (`None`: evaluation views only).
#[derive(Clone, Copy)]
pub struct Sets<'a> {
    pub labels: &'a [String],
    pub train: &'a [TrainExample<'a>],
    pub val: &'a [ValExample<'a>],
    pub val_views: Option<&'a [&'a [Vec<f32>]]>,
}

impl<'a> Sets<'a> {
    /// The sets, the validation photos with their evaluation view only.
    pub fn new(
        labels: &'a [String],
        train: &'a [TrainExample<'a>],
        val: &'a [ValExample<'a>],
    ) -> Self {
        Sets {
            labels,
            train,
            val,
            val_views: None,
        }
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
    let sets = Sets::new(labels, train_set, val_set);
    train_with_views(sets, cfg, device, progress).await
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
fn head_epoch(
    plan: &mut Plan,
    set: &[TrainExample<'_>],
    head: &mut LinearHead,
    optim: &mut linear::Optimizer,
    loss: &linear::Loss,
    cfg: &TrainConfig,
    epoch: usize,
) -> Result<f64> {
    let order = plan.epoch_order();
    let lr = lr_at(cfg, cfg.learning_rate(), epoch);
    let mut grad = vec![0.0; head.params.len()];
    let mut sum = 0.0;
    let mut batches = 0;
    for batch in order.chunks(cfg.batch_size) {
        let (rows, labels) = plan.draw(set, batch);
        sum += loss.gradient(head, &rows, &labels, &mut grad) as f64;
        optim.step(lr, &mut head.params, &mut grad);
        batches += 1;
    }
    finite_loss(sum / batches as f64, epoch, cfg.learning_rate())
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
    let mut head = LinearHead::zeros(set[0].views[0].len(), plan.classes);
    let mut optim = linear::Optimizer::new(cfg, cfg.weight_decay, head.params.len());
    let loss_fn = plan.linear_loss(cfg);
    let mut last = f64::NAN;
    for epoch in 1..=epochs {
        last = head_epoch(&mut plan, set, &mut head, &mut optim, &loss_fn, cfg, epoch)?;
        let p = Progress {
            phase: "refit".into(),
            epoch,
            epochs,
            loss: last,
            val_loss: None,
            val_accuracy: None,
        };
        if !progress(&p).await {
            return Err(Error::Cancelled);
        }
    }
    Ok((head.to_head(device), plan.balance, last))
}

/// [`train`], with every view of each validation photo for the refit (`sets.val_views`). The
/// held-out run trains on `sets.train`, validates on `sets.val` and keeps its best epoch by
/// validation loss; with `cfg.refit` and a validation set a new head is then trained from zeros
/// on both for that many epochs and returned, and the report (the held-out run's metrics) says
/// so.
pub async fn train_with_views(
    sets: Sets<'_>,
    cfg: &TrainConfig,
    device: &Device,
    progress: &mut impl AsyncFnMut(&Progress) -> bool,
) -> Result<(Head, Report)> {
    let (labels, train_set, val_set) = (sets.labels, sets.train, sets.val);
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
    let mut head = LinearHead::zeros(train_set[0].views[0].len(), plan.classes);
    let mut optim = linear::Optimizer::new(cfg, cfg.weight_decay, head.params.len());
    let loss_fn = plan.linear_loss(cfg);
    let val_rows: Vec<&[f32]> = val_set.iter().map(|v| v.embedding).collect();
    let val_truth: Vec<usize> = val_set.iter().map(|v| v.label).collect();
    let mut run = Run::new(cfg.patience);

    for epoch in 1..=cfg.epochs {
        let loss = head_epoch(
            &mut plan, train_set, &mut head, &mut optim, &loss_fn, cfg, epoch,
        )?;
        let probs = head.probabilities(&val_rows);
        let stats = epoch_stats(epoch, loss, &probs, &val_truth, plan.classes);
        if run
            .end_epoch(stats, "train", cfg.epochs, progress, || head.clone())
            .await?
        {
            break;
        }
    }

    let (best_epoch, best_head) = run.best();
    let probs = best_head.probabilities(&val_rows);
    let mut report = build_report(
        labels,
        run.history,
        best_epoch,
        train_set.len(),
        val_set,
        plan.balance,
        &probs,
    );
    report.calibration = calibrate(&best_head.logits(&val_rows), &val_truth);
    let mut head = best_head.to_head(device);
    if cfg.refit && !val_set.is_empty() {
        let mut storage = Vec::new();
        let all = refit_set(train_set, val_set, sets.val_views, &mut storage)?;
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
