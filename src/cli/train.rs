//! `sortwise train | eval | predict`: the training engine driven from class folders.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{Value, json};
use web_time::Instant;

use super::{load_backbone, read};
use crate::arch::Arch;
use crate::classifier;
use crate::dataset::{self, Dataset};
use crate::device::{self, BackendChoice};
use crate::error::{Error, Result};
use crate::finetune;
use crate::head::Head;
use crate::infer::Output;
use crate::metrics;
use crate::model_file::{self, Model, ModelMeta};
use crate::preprocess::{self, Fit};
use crate::split;
use crate::trainer::{self, Balance, OptimizerKind, TrainConfig, ValExample};

/// Default `--augment` with `--finetune-last` (see `TrainArgs::augment`).
const FINETUNE_AUGMENT: usize = 2;

/// Images decoded and embedded at a time: bounds memory for folders of large photos.
const CHUNK: usize = 32;

#[derive(Args)]
pub struct TrainArgs {
    #[arg(long)]
    arch: Arch,
    #[arg(long)]
    weights: PathBuf,
    /// One subfolder per class.
    #[arg(long)]
    data: PathBuf,
    /// Validation folder (same class subfolders); without it, --val-split of --data is held out.
    #[arg(long)]
    val: Option<PathBuf>,
    #[arg(long, default_value_t = 0.2)]
    val_split: f64,
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    #[arg(long, default_value = "adam")]
    optimizer: String,
    #[arg(long)]
    lr: Option<f64>,
    /// Augmented views embedded per training image (random resized crop + flip). Default 0 by
    /// measurement: on trashnet-mini K=1 and K=2 did not beat K=0 and cost 2-3x the embedding
    /// time (docs/BENCHMARKS.md). With --finetune-last the default is 2: a trainable stage should
    /// not see one fixed view per image, and on trashnet-mini it was no worse (docs/BENCHMARKS.md).
    #[arg(long)]
    augment: Option<usize>,
    #[arg(long, default_value = "auto")]
    balance: String,
    #[arg(long, default_value_t = 0.1)]
    label_smoothing: f64,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 20)]
    patience: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    #[arg(long, default_value = "crop")]
    fit: Fit,
    /// Also train the backbone's last stage (after head-only epochs), with the L2-SP penalty.
    #[arg(long)]
    finetune_last: bool,
    /// L2-SP strength α: adds (α/2)·‖θ−θ₀‖² over the last stage's parameters.
    #[arg(long, default_value_t = trainer::DEFAULT_L2SP)]
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

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    weights: PathBuf,
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
}

#[derive(Args)]
pub struct PredictArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    weights: PathBuf,
    /// Below this confidence the label is "unsure".
    #[arg(long, default_value_t = 0.0)]
    threshold: f32,
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

/// Class folders (sorted, hidden ones skipped) and their files (sorted).
fn class_folders(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let list = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| Error::io(d, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        v.sort();
        Ok(v)
    };
    let mut classes = Vec::new();
    for path in list(dir)?.into_iter().filter(|p| p.is_dir()) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let files = list(&path)?.into_iter().filter(|p| p.is_file()).collect();
        classes.push((name, files));
    }
    if classes.is_empty() {
        return Err(Error::Invalid(format!(
            "{} has no class subfolders (expected one folder per class)",
            dir.display()
        )));
    }
    Ok(classes)
}

struct Embedded {
    /// (class name, file, views)
    items: Vec<(String, String, Vec<Vec<f32>>)>,
    skipped: Vec<Value>,
}

/// Each image's views through the backbone: embeddings, or stage inputs for fine-tuning.
fn embed_folder(
    backbone: &crate::Backbone,
    dir: &Path,
    fit: Fit,
    augment: usize,
    seed: u64,
    output: Output,
) -> Result<Embedded> {
    let mut jobs = Vec::new();
    for (class, files) in class_folders(dir)? {
        for f in files {
            jobs.push((class.clone(), f));
        }
    }
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let total = jobs.len();
    for (chunk_i, chunk) in jobs.chunks(CHUNK).enumerate() {
        let mut imgs = Vec::new();
        let mut meta = Vec::new();
        for (class, path) in chunk {
            match read(path).and_then(|b| preprocess::decode(&b)) {
                Ok(img) => {
                    imgs.push(img);
                    meta.push((class.clone(), path.display().to_string()));
                }
                Err(e) => {
                    eprintln!("sortwise: skipped {}: {e}", path.display());
                    skipped
                        .push(json!({"file": path.display().to_string(), "error": e.to_string()}));
                }
            }
        }
        let chunk_seed = seed.wrapping_add((chunk_i * CHUNK) as u64);
        let views = pollster::block_on(dataset::views(
            backbone,
            &imgs,
            fit,
            augment,
            chunk_seed,
            crate::infer::DEFAULT_BATCH,
            output,
            &mut |done, _| {
                eprintln!("sortwise: embedded {}/{total}", chunk_i * CHUNK + done);
                true
            },
        ))?;
        for ((class, file), v) in meta.into_iter().zip(views) {
            items.push((class, file, v));
        }
    }
    Ok(Embedded { items, skipped })
}

fn parse_optimizer(s: &str) -> Result<OptimizerKind> {
    match s {
        "adam" => Ok(OptimizerKind::Adam),
        "sgd" => Ok(OptimizerKind::Sgd),
        _ => Err(Error::Invalid(format!(
            "unknown optimizer '{s}': expected sgd or adam"
        ))),
    }
}

fn parse_balance(s: &str) -> Result<Balance> {
    match s {
        "auto" => Ok(Balance::Auto),
        "none" => Ok(Balance::None),
        "weight" => Ok(Balance::Weight),
        "sample" => Ok(Balance::Sample),
        _ => Err(Error::Invalid(format!(
            "unknown balance '{s}': expected auto, none, weight or sample"
        ))),
    }
}

pub fn train(args: &TrainArgs) -> Result<Value> {
    let started = Instant::now();
    let cfg = TrainConfig {
        epochs: args.epochs,
        optimizer: parse_optimizer(&args.optimizer)?,
        lr: args.lr,
        batch_size: args.batch_size,
        label_smoothing: args.label_smoothing,
        val_split: if args.val.is_some() {
            0.0
        } else {
            args.val_split
        },
        balance: parse_balance(&args.balance)?,
        seed: args.seed,
        patience: args.patience,
        finetune_last: args.finetune_last,
        l2sp: args.l2sp,
        finetune_epochs: args.finetune_epochs,
        finetune_lr: args.finetune_lr,
        refit: !args.no_refit,
        weight_decay: args.weight_decay,
        ..TrainConfig::default()
    };
    cfg.validate()?;
    let selected = device::select(args.backend)?;
    eprintln!(
        "sortwise: backend {} ({})",
        selected.backend, selected.reason
    );
    let (backbone, source_sha) = load_backbone(args.arch, &args.weights, &selected.device)?;
    let backbone = backbone.fold_batchnorm();

    // Fine-tuning caches what enters the last stage instead of the embedding.
    let output = if cfg.finetune_last {
        Output::StageInput
    } else {
        Output::Features
    };
    let augment = args.augment.unwrap_or(if cfg.finetune_last {
        FINETUNE_AUGMENT
    } else {
        0
    });
    let train_emb = embed_folder(&backbone, &args.data, args.fit, augment, args.seed, output)?;
    let mut data = Dataset::new();
    for (class, _, views) in &train_emb.items {
        data.push(class, views.clone())?;
    }
    let val_emb = match &args.val {
        Some(dir) => Some(embed_folder(
            &backbone, dir, args.fit, 0, args.seed, output,
        )?),
        None => None,
    };
    let embed_seconds = started.elapsed().as_secs_f64();

    let labels = data.labels().to_vec();
    let examples = data.examples();
    let (train_idx, val_idx) = match &val_emb {
        Some(_) => ((0..examples.len()).collect(), Vec::new()),
        None => {
            let y: Vec<usize> = examples.iter().map(|e| e.label).collect();
            split::stratified(&y, labels.len(), cfg.val_split, cfg.seed)
        }
    };
    let (train_set, mut val_set) = trainer::sets(examples, &train_idx, &val_idx);
    // Every view of each validation photo, for the refit, in `val_set` order.
    let mut val_views: Vec<&[Vec<f32>]> = val_idx
        .iter()
        .map(|&i| examples[i].views.as_slice())
        .collect();
    let mut val_files: Vec<String> = val_idx
        .iter()
        .map(|&i| train_emb.items[i].1.clone())
        .collect();
    if let Some(v) = &val_emb {
        for (i, (class, file, views)) in v.items.iter().enumerate() {
            let label = labels.iter().position(|l| l == class).ok_or_else(|| {
                Error::Invalid(format!(
                    "validation class '{class}' is not among the training classes"
                ))
            })?;
            val_set.push(ValExample {
                embedding: &views[0],
                label,
                id: i as u32,
            });
            val_views.push(views);
            val_files.push(file.clone());
        }
    }

    let mut on_progress = async |p: &trainer::Progress| {
        if p.phase == "features" {
            eprintln!("sortwise: last-stage embeddings {}/{}", p.epoch, p.epochs);
            return true;
        }
        if p.phase.starts_with("refit") {
            eprintln!(
                "sortwise: {} on training + validation photos, epoch {}/{} loss {:.4}",
                p.phase, p.epoch, p.epochs, p.loss
            );
            return true;
        }
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
        true
    };
    let (head, stage, report) = if cfg.finetune_last {
        let (ft, report) = pollster::block_on(finetune::train_with_views(
            &labels,
            &train_set,
            &val_set,
            Some(&val_views),
            &cfg,
            backbone.split_last_stage(),
            &selected.device,
            &mut on_progress,
        ))?;
        let stage = pollster::block_on(ft.stage.to_weights())?;
        (ft.head, Some(stage), report)
    } else {
        let (head, report) = pollster::block_on(trainer::train_with_views(
            &labels,
            &train_set,
            &val_set,
            Some(&val_views),
            &cfg,
            &selected.device,
            &mut on_progress,
        ))?;
        (head, None, report)
    };
    let (weight, bias) = pollster::block_on(head.to_weights())?;
    let model = Model {
        meta: ModelMeta {
            version: model_file::VERSION,
            arch: args.arch,
            backbone_source_sha256: source_sha,
            labels: labels.clone(),
            fit: args.fit,
            dim: args.arch.feature_dim(),
            config: cfg.clone(),
            report: Some(report.clone()),
            producer: format!("sortwise {}", env!("CARGO_PKG_VERSION")),
        },
        weight,
        bias,
    };
    super::write_atomically(&args.out, &model.to_bytes_with_stage(stage.as_ref())?)?;
    let misclassified: Vec<Value> = report
        .misclassified
        .iter()
        .map(|m| {
            let pos = val_set.iter().position(|v| v.id == m.id);
            json!({
                "file": pos.map(|p| val_files[p].clone()),
                "label": m.label,
                "predicted": m.predicted,
                "confidence": m.confidence,
            })
        })
        .collect();
    Ok(json!({
        "arch": args.arch.name(),
        "backend": selected.backend,
        "val_accuracy": report.val_accuracy,
        "val_loss": report.val_loss,
        "epochs": report.epochs_run,
        "best_epoch": report.best_epoch,
        "train_size": report.train_size,
        "val_size": report.val_size,
        "labels": labels,
        "per_class": report.per_class,
        "confusion": report.confusion,
        "misclassified": misclassified,
        "balance": report.balance,
        "refit": report.refit,
        "refit_epochs": report.refit_epochs,
        "refit_size": report.refit_size,
        "augment": augment,
        "finetune_last": cfg.finetune_last,
        "l2sp": cfg.finetune_last.then_some(cfg.l2sp),
        "finetune": report.finetune,
        "skipped": train_emb.skipped,
        "embed_seconds": embed_seconds,
        "train_seconds": report.seconds,
        "seconds": started.elapsed().as_secs_f64(),
        "model": args.out.display().to_string(),
    }))
}

fn load_model(
    model: &Path,
    weights: &Path,
    backend: BackendChoice,
) -> Result<(Model, crate::Backbone, device::Selected)> {
    let (model, stage) = Model::from_bytes_with_stage(&read(model)?)?;
    let selected = device::select(backend)?;
    eprintln!(
        "sortwise: backend {} ({})",
        selected.backend, selected.reason
    );
    let (backbone, source_sha) = load_backbone(model.meta.arch, weights, &selected.device)?;
    model.check_backbone(model.meta.arch, &source_sha)?;
    let mut backbone = backbone.fold_batchnorm();
    if let Some(stage) = &stage {
        backbone.load_last_stage(stage)?;
    }
    Ok((model, backbone, selected))
}

fn head_of(model: &Model, device: &burn::tensor::Device) -> Head {
    Head::from_weights(&model.weight, &model.bias, model.meta.dim, device)
}

pub fn eval(args: &EvalArgs) -> Result<Value> {
    let (model, backbone, selected) = load_model(&args.model, &args.weights, args.backend)?;
    let emb = embed_folder(
        &backbone,
        &args.data,
        model.meta.fit,
        0,
        0,
        Output::Features,
    )?;
    let labels = &model.meta.labels;
    let mut truth = Vec::new();
    for (class, _, _) in &emb.items {
        truth.push(labels.iter().position(|l| l == class).ok_or_else(|| {
            Error::Invalid(format!(
                "folder '{class}' is not a class of this model ({})",
                labels.join(", ")
            ))
        })?);
    }
    let rows: Vec<&[f32]> = emb.items.iter().map(|(_, _, v)| v[0].as_slice()).collect();
    let head = head_of(&model, &selected.device);
    let probs = pollster::block_on(trainer::probabilities(&head, &rows, &selected.device))?;
    let m = metrics::compute(&probs, &truth, labels.len());
    let per_class: serde_json::Map<String, Value> = labels
        .iter()
        .zip(&m.per_class)
        .map(|(l, c)| (l.clone(), json!(c)))
        .collect();
    Ok(json!({
        "accuracy": m.accuracy,
        "n": m.n,
        "loss": m.loss,
        "labels": labels,
        "per_class": per_class,
        "confusion": m.confusion,
        "skipped": emb.skipped,
    }))
}

/// Prints one JSON object per image; returns whether any image failed.
pub fn predict(args: &PredictArgs) -> Result<bool> {
    let (model, backbone, selected) = load_model(&args.model, &args.weights, args.backend)?;
    let head = head_of(&model, &selected.device);
    let mut failed = false;
    for path in &args.images {
        let file = path.display().to_string();
        let result = read(path)
            .and_then(|b| preprocess::preprocess(&b, model.meta.fit))
            .and_then(|x| {
                let emb = pollster::block_on(crate::infer::run(
                    &backbone,
                    &[x],
                    crate::infer::Output::Features,
                    1,
                ))?;
                pollster::block_on(trainer::probabilities(&head, &[&emb[0]], &selected.device))
            });
        match result {
            Ok(probs) => {
                let p = classifier::prediction(&model.meta.labels, &probs[0], args.threshold);
                let probs: serde_json::Map<String, Value> = p
                    .probs
                    .iter()
                    .map(|lp| (lp.label.clone(), json!(lp.p)))
                    .collect();
                println!(
                    "{}",
                    json!({"file": file, "label": p.label, "confidence": p.confidence, "unsure": p.unsure, "probs": probs})
                );
            }
            Err(e) => {
                failed = true;
                eprintln!("sortwise: {file}: {e}");
                println!("{}", json!({"file": file, "error": e.to_string()}));
            }
        }
    }
    Ok(failed)
}
