//! `sortwise train`: class folders into a session, trained, written as a `.sortwise` file.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};
use web_time::Instant;

use super::folders::{DataArgs, add_folder, check_known};
use super::{open_session, write_atomically};
use crate::device::BackendChoice;
use crate::error::Result;
use crate::preprocess::Fit;
use crate::session::{Options, Split, default_augment};
use crate::trainer::{Balance, OptimizerKind, Progress, TrainConfig};

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    set: DataArgs,
    /// Share of --data held out for validation when there is no --val.
    #[arg(long, default_value_t = TrainConfig::default().val_split)]
    val_split: f64,
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    #[arg(long, default_value_t = TrainConfig::default().optimizer)]
    optimizer: OptimizerKind,
    #[arg(long)]
    lr: Option<f64>,
    /// Augmented views embedded per training image (random resized crop + flip). Default 0, or 2
    /// with --finetune-last: the engine's defaults (`session::default_augment` says why).
    #[arg(long)]
    augment: Option<usize>,
    #[arg(long, default_value_t = TrainConfig::default().balance)]
    balance: Balance,
    #[arg(long, default_value_t = TrainConfig::default().label_smoothing)]
    label_smoothing: f64,
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch_size: usize,
    #[arg(long, default_value_t = TrainConfig::default().patience)]
    patience: usize,
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    #[arg(long, default_value_t = Fit::default())]
    fit: Fit,
    /// Also train the backbone's last stage (after head-only epochs), with the L2-SP penalty.
    #[arg(long)]
    finetune_last: bool,
    /// L2-SP strength α: adds (α/2)·‖θ−θ₀‖² over the last stage's parameters.
    #[arg(long, default_value_t = TrainConfig::default().l2sp)]
    l2sp: f64,
    /// Epochs of the fine-tuning phase.
    #[arg(long, default_value_t = TrainConfig::default().finetune_epochs)]
    finetune_epochs: usize,
    /// Learning rate of the fine-tuning phase (default: a tenth of --lr's).
    #[arg(long)]
    finetune_lr: Option<f64>,
    /// Keep the held-out run's model instead of refitting it on training + validation photos
    /// for the epochs the held-out run chose (the default refits; the reported validation
    /// metrics are the held-out run's either way).
    #[arg(long)]
    no_refit: bool,
    /// Weight decay of the head (L2, added to the gradient).
    #[arg(long, default_value_t = TrainConfig::default().weight_decay)]
    weight_decay: f64,
    #[arg(long)]
    out: PathBuf,
}

impl TrainArgs {
    fn config(&self) -> Result<TrainConfig> {
        let cfg = TrainConfig {
            epochs: self.epochs,
            optimizer: self.optimizer,
            lr: self.lr,
            batch_size: self.batch_size,
            label_smoothing: self.label_smoothing,
            val_split: if self.set.val.is_some() {
                0.0
            } else {
                self.val_split
            },
            balance: self.balance,
            seed: self.seed,
            patience: self.patience,
            finetune_last: self.finetune_last,
            l2sp: self.l2sp,
            finetune_epochs: self.finetune_epochs,
            finetune_lr: self.finetune_lr,
            refit: !self.no_refit,
            weight_decay: self.weight_decay,
            ..TrainConfig::default()
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Progress on stderr, one line an epoch.
async fn print_progress(p: &Progress) -> bool {
    if p.phase == "features" {
        eprintln!("sortwise: last-stage embeddings {}/{}", p.epoch, p.epochs);
    } else if p.phase.starts_with("refit") {
        eprintln!(
            "sortwise: {} on training + validation photos, epoch {}/{} loss {:.4}",
            p.phase, p.epoch, p.epochs, p.loss
        );
    } else {
        eprintln!(
            "sortwise: {} epoch {}/{} loss {:.4}{}",
            p.phase,
            p.epoch,
            p.epochs,
            p.loss,
            p.val_accuracy
                .map(|a| format!(" val_loss {:.4} val_acc {a:.3}", p.val_loss.unwrap_or(0.0)))
                .unwrap_or_default()
        );
    }
    true
}

pub fn train(args: &TrainArgs) -> Result<Value> {
    let started = Instant::now();
    let cfg = args.config()?;
    let augment = args.augment.unwrap_or(default_augment(cfg.finetune_last));
    // Fine-tuning trains on what enters the last stage, so the session keeps it too.
    let options = Options {
        fit: args.fit,
        augment,
        finetune: cfg.finetune_last,
        seed: args.seed,
        ..Options::default()
    };
    let (session, backend) = open_session(args.set.arch, &args.set.weights, args.backend, options)?;
    let mut files = HashMap::new();
    let (_, skipped) = add_folder(&session, &args.set.data, None, &mut files)?;
    let split = match &args.set.val {
        // The validation photos are evaluated (and refit on) with their evaluation view only.
        Some(dir) => {
            let labels = session.get().labels().to_vec();
            check_known(dir, &labels, "the training set")?;
            Split::Held(add_folder(&session, dir, Some(0), &mut files)?.0)
        }
        None => Split::Stratified,
    };
    let embed_seconds = started.elapsed().as_secs_f64();
    let mut progress = async |p: &Progress| print_progress(p).await;
    let report = pollster::block_on(session.train(cfg.clone(), &split, &mut progress))?;
    let producer = format!("sortwise {}", env!("CARGO_PKG_VERSION"));
    write_atomically(&args.out, &session.get().export_model(&producer)?)?;
    let misclassified: Vec<Value> = report
        .misclassified
        .iter()
        .map(|m| {
            json!({
                "file": files.get(&m.id),
                "label": m.label,
                "predicted": m.predicted,
                "confidence": m.confidence,
            })
        })
        .collect();
    Ok(json!({
        "arch": args.set.arch.name(),
        "backend": backend,
        "val_accuracy": report.val_accuracy,
        "val_loss": report.val_loss,
        "epochs": report.epochs_run,
        "best_epoch": report.best_epoch,
        "train_size": report.train_size,
        "val_size": report.val_size,
        "labels": report.labels,
        "per_class": report.per_class,
        "confusion": report.confusion,
        "misclassified": misclassified,
        "balance": report.balance,
        "refit": report.refit,
        "refit_epochs": report.refit_epochs,
        "refit_size": report.refit_size,
        "calibration": report.calibration,
        "augment": augment,
        "finetune_last": cfg.finetune_last,
        "l2sp": cfg.finetune_last.then_some(cfg.l2sp),
        "finetune": report.finetune,
        "skipped": skipped,
        "embed_seconds": embed_seconds,
        "train_seconds": report.seconds,
        "seconds": started.elapsed().as_secs_f64(),
        "model": args.out.display().to_string(),
    }))
}
