//! The training engine: synthetic checks of the loop, and a real run on trashnet-mini with the
//! real EfficientNet-Lite0 weights.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use sortwise::model::embed::ViewSpec;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::Device;
use common::lite0_pth;
use rand::{RngExt, SeedableRng};
use sortwise::data::dataset::Dataset;
use sortwise::formats::model_file::{Model, ModelMeta};
use sortwise::formats::weights;
use sortwise::model::head::Head;
use sortwise::preprocess::{self, Fit};
use sortwise::trainer::{self, Balance, OptimizerKind, TrainConfig, TrainExample, ValExample};
use sortwise::{Arch, Error};

fn blobs(n_per: &[usize], dim: usize, seed: u64) -> Vec<(Vec<Vec<f32>>, usize)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centers: Vec<Vec<f32>> = (0..n_per.len())
        .map(|c| {
            (0..dim)
                .map(|d| if d % n_per.len() == c { 3.0 } else { 0.0 })
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for (c, &n) in n_per.iter().enumerate() {
        for _ in 0..n {
            let v = centers[c]
                .iter()
                .map(|m| m + rng.random_range(-1.5f32..1.5))
                .collect();
            out.push((vec![v], c));
        }
    }
    out
}

fn run(
    data: &[(Vec<Vec<f32>>, usize)],
    val: &[(Vec<Vec<f32>>, usize)],
    labels: &[String],
    cfg: &TrainConfig,
) -> sortwise::Result<(Head, trainer::Report)> {
    let (train_set, val_set) = common::example_sets(data, val);
    pollster::block_on(trainer::train(
        labels,
        &train_set,
        &val_set,
        cfg,
        &Device::flex(),
        &mut async |_: &trainer::Progress| true,
    ))
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("class {i}")).collect()
}

#[test]
fn learns_separable_blobs_deterministically() {
    let train = blobs(&[40, 40, 40], 12, 1);
    let val = blobs(&[10, 10, 10], 12, 2);
    let cfg = TrainConfig {
        epochs: 30,
        seed: 3,
        ..TrainConfig::default()
    };
    let (head, report) = run(&train, &val, &names(3), &cfg).unwrap();
    assert!(
        report.val_accuracy.unwrap() >= 0.9,
        "{:?}",
        report.val_accuracy
    );
    assert_eq!(report.confusion.len(), 3);
    assert_eq!(report.confusion.iter().flatten().sum::<usize>(), 30);
    assert_eq!(report.history.len(), report.epochs_run);
    assert!(report.history.last().unwrap().loss < report.history[0].loss);
    let (head2, report2) = run(&train, &val, &names(3), &cfg).unwrap();
    let w1 = pollster::block_on(head.to_weights()).unwrap();
    let w2 = pollster::block_on(head2.to_weights()).unwrap();
    assert_eq!(w1, w2, "same seed, same weights on the CPU backend");
    assert_eq!(report.history, report2.history);
    // SGD with momentum (the classic recipe) learns it too.
    let sgd = TrainConfig {
        optimizer: OptimizerKind::Sgd,
        epochs: 30,
        ..TrainConfig::default()
    };
    assert!(
        run(&train, &val, &names(3), &sgd)
            .unwrap()
            .1
            .val_accuracy
            .unwrap()
            >= 0.9
    );
}

#[test]
fn imbalance_turns_on_class_weights_and_sampling_works() {
    let train = blobs(&[60, 10], 8, 4);
    let val = blobs(&[10, 10], 8, 5);
    let (_, r) = run(
        &train,
        &val,
        &names(2),
        &TrainConfig {
            epochs: 20,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    assert_eq!(r.balance, Balance::Weight);
    assert!(r.per_class[1].metrics.recall >= 0.8, "{:?}", r.per_class);
    let cfg = TrainConfig {
        epochs: 20,
        balance: Balance::Sample,
        ..TrainConfig::default()
    };
    let (_, r) = run(&train, &val, &names(2), &cfg).unwrap();
    assert_eq!(r.balance, Balance::Sample);
    assert!(r.per_class[1].metrics.recall >= 0.8, "{:?}", r.per_class);
    let balanced = blobs(&[20, 20], 8, 6);
    let (_, r) = run(
        &balanced,
        &val,
        &names(2),
        &TrainConfig {
            epochs: 2,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    assert_eq!(r.balance, Balance::None);
}

#[test]
fn bad_setups_fail_clearly() {
    let two = blobs(&[5, 5], 4, 7);
    let err = |data: &[(Vec<Vec<f32>>, usize)], labels: &[String], cfg: &TrainConfig| {
        run(data, &[], labels, cfg).unwrap_err().to_string()
    };
    let cfg = TrainConfig {
        epochs: 3,
        ..TrainConfig::default()
    };
    let one: Vec<_> = two.iter().filter(|(_, l)| *l == 0).cloned().collect();
    assert!(err(&one, &names(1), &cfg).contains("only one class"));
    assert!(err(&one, &names(2), &cfg).contains("'class 1' has no images"));
    assert!(err(&[], &[], &cfg).contains("at least two classes"));
    // The largest learning rate the settings allow, on features of a magnitude no backbone
    // gives: the loss overflows, which is reported as divergence rather than trained on.
    let diverge = TrainConfig {
        optimizer: OptimizerKind::Sgd,
        lr: Some(10.0),
        epochs: 5,
        ..TrainConfig::default()
    };
    let huge: Vec<_> = two
        .iter()
        .map(|(views, l)| {
            let views = views
                .iter()
                .map(|v| v.iter().map(|x| x * 1e30).collect())
                .collect();
            (views, *l)
        })
        .collect();
    let e = err(&huge, &names(2), &diverge);
    assert!(e.contains("diverged") && e.contains("learning rate"), "{e}");
    // A learning rate past the settings' range is refused before training, naming the range.
    let e = err(
        &two,
        &names(2),
        &TrainConfig {
            lr: Some(1e30),
            ..diverge.clone()
        },
    );
    assert!(e.contains("lr must be a number from"), "{e}");
    assert!(
        err(
            &two,
            &names(2),
            &TrainConfig {
                epochs: 0,
                ..cfg.clone()
            }
        )
        .contains("epochs")
    );

    // Cancelling after the second epoch returns Cancelled.
    let set: Vec<TrainExample> = two
        .iter()
        .map(|(v, l)| TrainExample {
            views: v,
            label: *l,
        })
        .collect();
    let r = pollster::block_on(trainer::train(
        &names(2),
        &set,
        &[],
        &cfg,
        &Device::flex(),
        &mut async |p: &trainer::Progress| p.epoch < 2,
    ));
    assert!(matches!(r, Err(Error::Cancelled)));
}

fn trashnet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/trashnet-mini")
}

struct Embedded {
    train: Dataset,
    val: Vec<(Vec<f32>, usize)>,
}

/// trashnet-mini embedded once with EfficientNet-Lite0 (1 augmented view per training image).
fn embedded() -> &'static Embedded {
    static CELL: OnceLock<Embedded> = OnceLock::new();
    CELL.get_or_init(|| {
        let path = lite0_pth();
        assert!(
            path.exists(),
            "{} missing: run scripts/weights.sh",
            path.display()
        );
        let backbone = weights::load_pth(Arch::EfficientnetLite0, &path, &Device::flex())
            .unwrap()
            .fold_batchnorm();
        let mut train = Dataset::new();
        let mut val = Vec::new();
        for class in ["glass", "metal", "paper", "plastic"] {
            for (split, augment) in [("train", 1), ("val", 0)] {
                let dir = trashnet().join(split).join(class);
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
                files.sort();
                let imgs: Vec<_> = files
                    .iter()
                    .map(|f| preprocess::decode(&std::fs::read(f).unwrap()).unwrap())
                    .collect();
                let mut calls = Vec::new();
                let views = pollster::block_on(sortwise::model::embed::embed_views(
                    &backbone,
                    &imgs,
                    ViewSpec {
                        fit: Fit::Crop,
                        augment,
                        seed: 11,
                        batch: 16,
                    },
                    &mut |done, total| {
                        calls.push((done, total));
                        true
                    },
                ))
                .unwrap();
                // Progress after every batch, ending at the total.
                assert_eq!(calls.last(), Some(&(imgs.len(), imgs.len())));
                assert!(calls.len() >= imgs.len() / 16);
                for v in views {
                    if split == "train" {
                        train.push(class, v).unwrap();
                    } else {
                        let label = train.labels().iter().position(|l| l == class).unwrap();
                        val.push((v[0].clone(), label));
                    }
                }
            }
        }
        Embedded { train, val }
    })
}

/// Quality floor on real photos: chance is 25%; the stated floor is 70% (measured 80%).
#[test]
fn trashnet_mini_accuracy_floor_and_model_file_round_trip() {
    let e = embedded();
    let labels = e.train.labels().to_vec();
    assert_eq!(labels, ["glass", "metal", "paper", "plastic"]);
    let train_set: Vec<TrainExample> = e
        .train
        .examples()
        .iter()
        .map(|x| TrainExample {
            views: &x.views,
            label: x.label,
        })
        .collect();
    assert!(
        train_set
            .iter()
            .all(|t| t.views.len() == 2 && t.views[0].len() == 1280)
    );
    let val_set: Vec<ValExample> = e
        .val
        .iter()
        .enumerate()
        .map(|(i, (v, l))| ValExample {
            embedding: v,
            label: *l,
            id: i as u32,
        })
        .collect();
    let cfg = TrainConfig {
        seed: 5,
        ..TrainConfig::default()
    };
    let (head, report) = pollster::block_on(trainer::train(
        &labels,
        &train_set,
        &val_set,
        &cfg,
        &Device::flex(),
        &mut async |_: &trainer::Progress| true,
    ))
    .unwrap();
    let acc = report.val_accuracy.unwrap();
    eprintln!(
        "trashnet-mini val accuracy {acc:.3} after {} epochs (best {})",
        report.epochs_run, report.best_epoch
    );
    assert!(acc >= 0.70, "val accuracy {acc}");
    assert_eq!(report.val_size, 80);
    assert_eq!(
        report.misclassified.len(),
        ((1.0 - acc) * 80.0).round() as usize
    );

    // Export, reload, same probabilities.
    let (weight, bias) = pollster::block_on(head.to_weights()).unwrap();
    let model = Model {
        meta: ModelMeta {
            version: 1,
            arch: Arch::EfficientnetLite0,
            backbone_source_sha256: "579344248a93e230".into(),
            labels: labels.clone(),
            fit: Fit::Crop,
            dim: 1280,
            config: cfg,
            report: Some(report),
            producer: "test".into(),
            temperature: 1.0,
        },
        weight,
        bias,
    };
    let bytes = model.to_bytes().unwrap();
    let back = Model::from_bytes(&bytes).unwrap();
    assert_eq!(back.meta, model.meta);
    let rows: Vec<&[f32]> = e.val.iter().map(|(v, _)| v.as_slice()).collect();
    let head2 = Head::from_weights(&back.weight, &back.bias, 1280, &Device::flex());
    let p1 = pollster::block_on(head.probabilities(&rows, &Device::flex())).unwrap();
    let p2 = pollster::block_on(head2.probabilities(&rows, &Device::flex())).unwrap();
    assert_eq!(p1, p2);

    // Bad files: truncated, not a model, wrong backbone.
    assert!(
        Model::from_bytes(&bytes[..bytes.len() - 100])
            .unwrap_err()
            .to_string()
            .contains("truncated or corrupt")
    );
    assert!(Model::from_bytes(b"junk").is_err());
    assert!(
        back.check_backbone(Arch::Resnet18, "")
            .unwrap_err()
            .to_string()
            .contains("trained on efficientnet_lite0")
    );
    assert!(
        back.check_backbone(Arch::EfficientnetLite0, "ffff")
            .unwrap_err()
            .to_string()
            .contains("other")
    );
    back.check_backbone(Arch::EfficientnetLite0, "579344248a93e230")
        .unwrap();
}

#[test]
fn embedding_can_be_cancelled() {
    let backbone = weights::load_pth(Arch::EfficientnetLite0, &lite0_pth(), &Device::flex())
        .unwrap()
        .fold_batchnorm();
    let img = image::RgbImage::from_pixel(64, 48, image::Rgb([10, 200, 30]));
    let imgs = vec![img.clone(), img.clone(), img];
    let mut seen = 0;
    let r = pollster::block_on(sortwise::model::embed::embed_views(
        &backbone,
        &imgs,
        ViewSpec {
            fit: Fit::Crop,
            augment: 0,
            seed: 0,
            batch: 1,
        },
        &mut |done, _| {
            seen = done;
            false
        },
    ));
    assert!(matches!(r, Err(Error::Cancelled)));
    assert_eq!(seen, 1, "stops after the first batch");
}

/// Sizes users reach: 50 classes, a class with a single image (it trains, it cannot also be
/// validated), and retraining after more images arrive.
#[test]
fn fifty_classes_a_single_image_class_and_retraining() {
    let mut per = vec![10usize; 50];
    per[7] = 1;
    let data = blobs(&per, 50, 11);
    let labels: Vec<usize> = data.iter().map(|(_, l)| *l).collect();
    let (train_idx, val_idx) = sortwise::data::split::stratified(&labels, 50, 0.25, 3);
    assert!(train_idx.iter().any(|&i| labels[i] == 7));
    assert!(!val_idx.iter().any(|&i| labels[i] == 7));
    let pick = |idx: &[usize]| idx.iter().map(|&i| data[i].clone()).collect::<Vec<_>>();
    let cfg = TrainConfig {
        epochs: 100,
        lr: Some(1e-2),
        patience: 0,
        ..TrainConfig::default()
    };
    let (head, report) = run(&pick(&train_idx), &pick(&val_idx), &names(50), &cfg).unwrap();
    assert_eq!(head.dims(), (50, 50));
    assert_eq!(report.confusion.len(), 50);
    assert!(report.confusion.iter().all(|row| row.len() == 50));
    let total: usize = report.confusion.iter().flatten().sum();
    assert_eq!(total, val_idx.len());
    assert_eq!(report.train_size + report.val_size, 49 * 10 + 1);
    assert_eq!(
        report.balance,
        Balance::Weight,
        "1 vs 10 images: class weights on"
    );
    let first = report.val_accuracy.unwrap();
    assert!(
        first > 0.5,
        "50 separable blobs: val accuracy {first} (chance 0.02)"
    );

    // Retrain with twice the images per class: a fresh head, trained on all of them.
    let more = blobs(&[16; 50], 50, 12);
    let (_, again) = run(&more, &pick(&val_idx), &names(50), &cfg).unwrap();
    assert_eq!(again.train_size, 800);
    assert!(again.val_accuracy.unwrap() >= first - 0.1);
}

/// Refit (the default): the held-out run chooses the epoch count, then a head trained from zeros
/// on training + validation examples for exactly that many epochs is returned. Everything the
/// report says about validation is the held-out run's; `refit: false` returns that run's head.
#[test]
fn refit_retrains_on_all_examples_for_the_best_epoch_count() {
    let train = blobs(&[30, 30, 30], 12, 21);
    let val = blobs(&[8, 8, 8], 12, 22);
    let cfg = TrainConfig {
        epochs: 40,
        seed: 4,
        ..TrainConfig::default()
    };
    assert!(cfg.refit, "refit is the default");
    let held_cfg = TrainConfig {
        refit: false,
        ..cfg.clone()
    };
    let (refit, r) = run(&train, &val, &names(3), &cfg).unwrap();
    let (held, h) = run(&train, &val, &names(3), &held_cfg).unwrap();
    assert!(r.refit && !h.refit);
    assert_eq!(r.refit_epochs, Some(r.best_epoch));
    assert_eq!(r.refit_size, Some(90 + 24));
    assert_eq!(r.refit_balance, Some(Balance::None));
    assert_eq!((h.refit_epochs, h.refit_size), (None, None));
    // The held-out run is the same run either way: same history, same validation metrics.
    assert_eq!(r.history, h.history);
    assert_eq!(r.best_epoch, h.best_epoch);
    assert_eq!(
        (r.val_accuracy, r.val_loss, &r.confusion, &r.misclassified),
        (h.val_accuracy, h.val_loss, &h.confusion, &h.misclassified)
    );
    let w = |head: &Head| pollster::block_on(head.to_weights()).unwrap();
    assert_ne!(w(&refit), w(&held), "the refit is another model");
    // Deterministic, and exactly a from-scratch run on all examples for the best epoch count
    // (no validation set, so that run neither early-stops nor refits).
    let (refit2, _) = run(&train, &val, &names(3), &cfg).unwrap();
    assert_eq!(w(&refit), w(&refit2));
    let all: Vec<_> = train.iter().chain(&val).cloned().collect();
    let (scratch, s) = run(
        &all,
        &[],
        &names(3),
        &TrainConfig {
            epochs: r.best_epoch,
            patience: 0,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert!(!s.refit);
    assert_eq!(
        s.best_epoch, r.best_epoch,
        "training loss falls every epoch here, so the last epoch is kept"
    );
    assert_eq!(w(&refit), w(&scratch));
    // Without a validation set there is nothing to refit on.
    let (_, none) = run(&train, &[], &names(3), &cfg).unwrap();
    assert!(!none.refit && none.refit_epochs.is_none());
    // The balance rule is applied to all examples' counts: 20 vs 9 train with class weights,
    // 20+2 vs 9+9 (below 2:1) refit without.
    let (_, b) = run(
        &blobs(&[20, 9], 8, 23),
        &blobs(&[2, 9], 8, 24),
        &names(2),
        &TrainConfig {
            epochs: 5,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    assert_eq!(
        (b.balance, b.refit_balance),
        (Balance::Weight, Some(Balance::None))
    );
    // Cancelling during the refit cancels the whole run.
    let (train_set, val_set) = common::example_sets(&train, &val);
    let c = pollster::block_on(trainer::train(
        &names(3),
        &train_set,
        &val_set,
        &cfg,
        &Device::flex(),
        &mut async |p: &trainer::Progress| p.phase != "refit",
    ));
    assert!(matches!(c, Err(Error::Cancelled)), "{c:?}");
}

/// On real photos: the refit has seen the validation photos (the ones the held-out model gets
/// wrong become more likely to get their own label), and on photos neither run saw
/// (trashnet-mini's val/, with the held-out split taken from train/), it is not less accurate
/// than the held-out model beyond a photo or two, for each of three seeds.
#[test]
fn trashnet_mini_refit_sees_validation_photos_and_holds_accuracy_on_unseen_ones() {
    let e = embedded();
    let labels = e.train.labels().to_vec();
    let examples = e.train.examples();
    let device = Device::flex();
    let probs = |head: &Head, rows: &[&[f32]]| {
        pollster::block_on(head.probabilities(rows, &device)).unwrap()
    };
    let accuracy = |head: &Head| {
        let rows: Vec<&[f32]> = e.val.iter().map(|(v, _)| v.as_slice()).collect();
        let p = probs(head, &rows);
        let right = p
            .iter()
            .zip(&e.val)
            .filter(|(p, (_, l))| sortwise::evaluation::metrics::argmax(p) == *l)
            .count();
        right as f64 / e.val.len() as f64
    };
    let y: Vec<usize> = examples.iter().map(|x| x.label).collect();
    let (mut sum_refit, mut sum_held) = (0.0, 0.0);
    for seed in 0..3u64 {
        let (train_idx, val_idx) = sortwise::data::split::stratified(&y, labels.len(), 0.2, seed);
        let (train_set, val_set) = trainer::sets(examples, &train_idx, &val_idx);
        let val_views: Vec<&[Vec<f32>]> = val_idx
            .iter()
            .map(|&i| examples[i].views.as_slice())
            .collect();
        let train = |refit: bool| {
            let cfg = TrainConfig {
                seed,
                refit,
                ..TrainConfig::default()
            };
            let sets = trainer::Sets {
                labels: &labels,
                train: &train_set,
                val: &val_set,
                val_views: Some(&val_views),
            };
            pollster::block_on(trainer::train_with_views(
                sets,
                &cfg,
                &device,
                &mut async |_: &trainer::Progress| true,
            ))
            .unwrap()
        };
        let (refit, r) = train(true);
        let (held, h) = train(false);
        assert_eq!(r.refit_size, Some(160));
        assert_eq!(r.val_accuracy, h.val_accuracy);
        // The held-out model's mistakes on its validation photos, seen by the refit.
        let wrong: Vec<&[f32]> = val_set
            .iter()
            .filter(|v| h.misclassified.iter().any(|m| m.id == v.id))
            .map(|v| v.embedding)
            .collect();
        let truth: Vec<usize> = val_set
            .iter()
            .filter(|v| h.misclassified.iter().any(|m| m.id == v.id))
            .map(|v| v.label)
            .collect();
        assert!(!wrong.is_empty(), "seed {seed}: no validation mistakes");
        let mean_true = |head: &Head| {
            probs(head, &wrong)
                .iter()
                .zip(&truth)
                .map(|(p, &t)| p[t] as f64)
                .sum::<f64>()
                / truth.len() as f64
        };
        let (p_refit, p_held) = (mean_true(&refit), mean_true(&held));
        let (a_refit, a_held) = (accuracy(&refit), accuracy(&held));
        eprintln!(
            "seed {seed}: best epoch {}, held-out mistakes {} p(true) {p_held:.3} -> refit \
             {p_refit:.3}; unseen val/ accuracy held {a_held:.3} refit {a_refit:.3}",
            r.best_epoch,
            wrong.len()
        );
        assert!(
            p_refit > p_held,
            "seed {seed}: refit did not learn from the validation photos"
        );
        assert!(a_refit >= 0.70, "seed {seed}: unseen accuracy {a_refit}");
        assert!(
            a_refit >= a_held - 0.0375,
            "seed {seed}: {a_refit} vs {a_held}"
        );
        sum_refit += a_refit;
        sum_held += a_held;
    }
    // Mean over the seeds: within one photo of 80.
    assert!(
        sum_refit / 3.0 >= sum_held / 3.0 - 0.0125,
        "refit {} vs held-out {}",
        sum_refit / 3.0,
        sum_held / 3.0
    );
}
