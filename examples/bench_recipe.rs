//! Choosing the head recipe by measurement (issue 19): trashnet-mini embedded once with
//! EfficientNet-Lite0 (its evaluation view and its horizontally flipped evaluation view), then
//! head recipes compared on those cached embeddings over several seeds and two kinds of split:
//!
//! - `val`: train on `train/` (160 photos), test on `val/` (80), as trashnet-mini is laid out;
//! - `kfold`: stratified k-fold over `train/`, each photo tested once per seed (fold assignment
//!   seeded), on 128 training photos a fold.
//!
//! Each recipe trains as `sortwise train` does on a split's training photos (20% of them held
//! out for early stopping, then refit or not), and is scored on the split's test photos, which
//! it never saw. Also times what a flipped view costs: one extra forward per photo when
//! embedding, and a batch of two instead of one per prediction (test-time flip averaging).
//!
//! ```sh
//! cargo run --release --example bench_recipe -- --weights W --data ../shared/data/trashnet-mini \
//!     [--seeds 3] [--folds 5] [--out bench/.cache/recipe]
//! ```
//!
//! Writes `OUT/embeddings.safetensors` (`eval`, `flip` `[N, dim]`, `label`, `is_val` `[N]`, f32)
//! and `OUT/splits.json` (per seed and split: train and test indices) for bench/pytorch_linear.py,
//! and prints one JSON object: per recipe and split kind, accuracy per seed, mean, spread
//! (sample standard deviation over seeds) and mean training seconds; and the timings.

use sortwise::model::embed::ViewSpec;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use image::RgbImage;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use sortwise::arch::Arch;
use sortwise::backbone::Backbone;
use sortwise::data::split;
use sortwise::evaluation::metrics;
use sortwise::formats::weights;
use sortwise::model::head::Head;
use sortwise::model::infer::{self, Output};
use sortwise::preprocess::{self, Fit};
use sortwise::trainer::{self, TrainConfig, TrainExample, ValExample};

struct Opts {
    weights: PathBuf,
    data: PathBuf,
    seeds: u64,
    folds: usize,
    out: PathBuf,
}

fn parse() -> Opts {
    let mut o = Opts {
        weights: "www/weights/efficientnet_lite0.safetensors".into(),
        data: "../shared/data/trashnet-mini".into(),
        seeds: 3,
        folds: 5,
        out: "bench/.cache/recipe".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--weights" => o.weights = val().into(),
            "--data" => o.data = val().into(),
            "--seeds" => o.seeds = val().parse().expect("seeds"),
            "--folds" => o.folds = val().parse().expect("folds"),
            "--out" => o.out = val().into(),
            _ => panic!("unknown argument {a}"),
        }
    }
    o
}

fn load(path: &Path, device: &Device) -> Backbone {
    let arch = Arch::EfficientnetLite0;
    let backbone = if path.extension().is_some_and(|e| e == "pth") {
        weights::load_pth(arch, path, device).expect("weights")
    } else {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        weights::load_web(&bytes, Some(arch), device)
            .expect("weights")
            .0
    };
    backbone.fold_batchnorm()
}

/// (label index, is in val/, image) of every photo, classes and files sorted.
fn photos(root: &Path) -> (Vec<String>, Vec<(usize, bool, RgbImage)>) {
    let mut classes: Vec<String> = std::fs::read_dir(root.join("train"))
        .expect("train/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    classes.sort();
    let mut out = Vec::new();
    for (is_val, split) in [(false, "train"), (true, "val")] {
        for (label, class) in classes.iter().enumerate() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(split).join(class))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for f in files {
                let img = preprocess::decode(&std::fs::read(&f).unwrap()).expect("a photo");
                out.push((label, is_val, img));
            }
        }
    }
    (classes, out)
}

fn embed(backbone: &Backbone, imgs: &[RgbImage]) -> Vec<Vec<f32>> {
    pollster::block_on(sortwise::model::embed::embed_views(
        backbone,
        imgs,
        ViewSpec {
            fit: Fit::Crop,
            augment: 0,
            seed: 0,
            batch: infer::DEFAULT_BATCH,
        },
        &mut |_, _| true,
    ))
    .expect("embedding")
    .into_iter()
    .map(|mut v| v.remove(0))
    .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds per prediction of one photo: preprocessing and the backbone, for the photo alone
/// and for the photo with its flipped copy in one batch (test-time flip averaging).
fn predict_cost(backbone: &Backbone, img: &RgbImage, runs: usize) -> (f64, f64) {
    let time = |flip: bool| {
        let times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let mut inputs = vec![preprocess::eval_tensor(img, Fit::Crop)];
                if flip {
                    let f = image::imageops::flip_horizontal(img);
                    inputs.push(preprocess::eval_tensor(&f, Fit::Crop));
                }
                pollster::block_on(infer::run(backbone, &inputs, Output::Features, 2))
                    .expect("forward");
                t.elapsed().as_secs_f64()
            })
            .collect();
        median(times)
    };
    time(false); // warm-up
    (time(false), time(true))
}

/// A head recipe: the training config, whether training photos also give their flipped view,
/// and whether predictions average the photo's and its flip's probabilities.
struct Recipe {
    name: &'static str,
    cfg: TrainConfig,
    flip_view: bool,
    tta: bool,
}

fn recipes() -> Vec<Recipe> {
    let base = TrainConfig::default();
    let r = |name, cfg: TrainConfig, flip_view, tta| Recipe {
        name,
        cfg,
        flip_view,
        tta,
    };
    vec![
        r(
            "held-out model (no refit: the old default)",
            TrainConfig {
                refit: false,
                ..base.clone()
            },
            false,
            false,
        ),
        r("refit (default)", base.clone(), false, false),
        r(
            "refit, weight decay 0",
            TrainConfig {
                weight_decay: 0.0,
                ..base.clone()
            },
            false,
            false,
        ),
        r(
            "refit, weight decay 1e-3",
            TrainConfig {
                weight_decay: 1e-3,
                ..base.clone()
            },
            false,
            false,
        ),
        r(
            "refit, weight decay 1e-2",
            TrainConfig {
                weight_decay: 1e-2,
                ..base.clone()
            },
            false,
            false,
        ),
        r(
            "refit, label smoothing 0",
            TrainConfig {
                label_smoothing: 0.0,
                ..base.clone()
            },
            false,
            false,
        ),
        r(
            "refit, label smoothing 0.2",
            TrainConfig {
                label_smoothing: 0.2,
                ..base.clone()
            },
            false,
            false,
        ),
        r("refit + flipped view", base.clone(), true, false),
        r("refit + test-time flip", base.clone(), false, true),
        r(
            "refit + flipped view + test-time flip",
            base.clone(),
            true,
            true,
        ),
        r(
            "PyTorch's recipe in sortwise (all photos, 100 epochs, no validation)",
            TrainConfig {
                val_split: 0.0,
                patience: 0,
                ..base
            },
            false,
            false,
        ),
    ]
}

struct Data {
    labels: Vec<String>,
    y: Vec<usize>,
    eval: Vec<Vec<f32>>,
    flip: Vec<Vec<f32>>,
}

/// Train `recipe` on the photos `train` (its own 20% held out inside, as the CLI does) and
/// return (correct predictions on `test`, training seconds).
fn score(d: &Data, recipe: &Recipe, seed: u64, train: &[usize], test: &[usize]) -> (usize, f64) {
    let cfg = TrainConfig {
        seed,
        ..recipe.cfg.clone()
    };
    let views: Vec<Vec<Vec<f32>>> = train
        .iter()
        .map(|&i| {
            let mut v = vec![d.eval[i].clone()];
            if recipe.flip_view {
                v.push(d.flip[i].clone());
            }
            v
        })
        .collect();
    let y: Vec<usize> = train.iter().map(|&i| d.y[i]).collect();
    let (tr, va) = split::stratified(&y, d.labels.len(), cfg.val_split, seed);
    let train_set: Vec<TrainExample> = tr
        .iter()
        .map(|&j| TrainExample {
            views: &views[j],
            label: y[j],
        })
        .collect();
    let val_set: Vec<ValExample> = va
        .iter()
        .map(|&j| ValExample {
            embedding: &views[j][0],
            label: y[j],
            id: j as u32,
        })
        .collect();
    let val_views: Vec<&[Vec<f32>]> = va.iter().map(|&j| views[j].as_slice()).collect();
    let device = sortwise::device::cpu("bench").device;
    let sets = trainer::Sets {
        labels: &d.labels,
        train: &train_set,
        val: &val_set,
        val_views: Some(&val_views),
    };
    let (head, report) = pollster::block_on(trainer::train_with_views(
        sets,
        &cfg,
        &device,
        &mut async |_| true,
    ))
    .expect("training");
    let probs = |head: &Head, rows: &[Vec<f32>]| {
        let rows: Vec<&[f32]> = test.iter().map(|&i| rows[i].as_slice()).collect();
        pollster::block_on(head.probabilities(&rows, &device)).expect("predict")
    };
    let mut p = probs(&head, &d.eval);
    if recipe.tta {
        for (a, b) in p.iter_mut().zip(probs(&head, &d.flip)) {
            for (x, y) in a.iter_mut().zip(b) {
                *x = (*x + y) / 2.0;
            }
        }
    }
    let correct = p
        .iter()
        .zip(test)
        .filter(|(p, i)| metrics::argmax(p) == d.y[**i])
        .count();
    (correct, report.seconds)
}

/// Stratified k-fold of `idx` (photos of `y`), seeded: the test indices of each fold.
fn kfold(idx: &[usize], y: &[usize], classes: usize, k: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut folds = vec![Vec::new(); k];
    for c in 0..classes {
        let mut of: Vec<usize> = idx.iter().copied().filter(|&i| y[i] == c).collect();
        of.shuffle(&mut rng);
        for (n, i) in of.into_iter().enumerate() {
            folds[n % k].push(i);
        }
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    folds
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn f32_bytes(rows: &[Vec<f32>]) -> Vec<u8> {
    rows.iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect()
}

fn main() {
    let o = parse();
    let device = sortwise::device::cpu("bench").device;
    let backbone = load(&o.weights, &device);
    let (labels, photos) = photos(&o.data);
    let imgs: Vec<RgbImage> = photos.iter().map(|(_, _, i)| i.clone()).collect();
    let flipped: Vec<RgbImage> = imgs.iter().map(image::imageops::flip_horizontal).collect();
    let t = Instant::now();
    let eval = embed(&backbone, &imgs);
    let embed_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let flip = embed(&backbone, &flipped);
    let flip_s = t.elapsed().as_secs_f64();
    let (predict_s, predict_tta_s) = predict_cost(&backbone, &imgs[0], 9);
    eprintln!(
        "embedded {} photos in {embed_s:.1} s (+{flip_s:.1} s flipped)",
        imgs.len()
    );
    let d = Data {
        labels,
        y: photos.iter().map(|(l, _, _)| *l).collect(),
        eval,
        flip,
    };
    let is_val: Vec<bool> = photos.iter().map(|(_, v, _)| *v).collect();
    let train_idx: Vec<usize> = (0..d.y.len()).filter(|&i| !is_val[i]).collect();
    let val_idx: Vec<usize> = (0..d.y.len()).filter(|&i| is_val[i]).collect();

    // Splits, shared with bench/pytorch_linear.py.
    let mut splits = Vec::new();
    for seed in 0..o.seeds {
        splits.push(json!({"seed": seed, "kind": "val", "train": train_idx, "test": val_idx}));
        for test in kfold(&train_idx, &d.y, d.labels.len(), o.folds, seed) {
            let train: Vec<usize> = train_idx
                .iter()
                .copied()
                .filter(|i| test.binary_search(i).is_err())
                .collect();
            splits.push(json!({"seed": seed, "kind": "kfold", "train": train, "test": test}));
        }
    }
    std::fs::create_dir_all(&o.out).unwrap();
    let n = d.y.len();
    let dim = d.eval[0].len();
    let label_f: Vec<f32> = d.y.iter().map(|&l| l as f32).collect();
    let val_f: Vec<f32> = is_val.iter().map(|&v| v as u8 as f32).collect();
    let tensors = [
        ("eval", vec![n, dim], f32_bytes(&d.eval)),
        ("flip", vec![n, dim], f32_bytes(&d.flip)),
        ("label", vec![n], f32_bytes(&[label_f])),
        ("is_val", vec![n], f32_bytes(&[val_f])),
    ];
    let views: Vec<(&str, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(name, shape, b)| {
            (
                *name,
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let meta = HashMap::from([("labels".to_string(), d.labels.join(","))]);
    std::fs::write(
        o.out.join("embeddings.safetensors"),
        safetensors::serialize(views, Some(meta)).unwrap(),
    )
    .unwrap();
    std::fs::write(o.out.join("splits.json"), json!(splits).to_string()).unwrap();

    let mut results = Vec::new();
    for recipe in recipes() {
        let t = Instant::now();
        let mut per_kind: HashMap<&str, (Vec<f64>, Vec<f64>)> = HashMap::new();
        for seed in 0..o.seeds {
            for kind in ["val", "kfold"] {
                let (mut right, mut total, mut secs) = (0, 0, Vec::new());
                for s in splits
                    .iter()
                    .filter(|s| s["seed"] == seed && s["kind"] == kind)
                {
                    let ids = |k: &str| -> Vec<usize> {
                        s[k].as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_u64().unwrap() as usize)
                            .collect()
                    };
                    let test = ids("test");
                    let (c, sec) = score(&d, &recipe, seed, &ids("train"), &test);
                    right += c;
                    total += test.len();
                    secs.push(sec);
                }
                let e = per_kind.entry(kind).or_default();
                e.0.push(right as f64 / total as f64);
                e.1.push(secs.iter().sum::<f64>() / secs.len() as f64);
            }
        }
        let kinds: serde_json::Map<String, Value> = per_kind
            .iter()
            .map(|(k, (acc, secs))| {
                let (mean, sd) = mean_sd(acc);
                (
                    k.to_string(),
                    json!({"accuracy": acc, "mean": mean, "sd": sd,
                           "train_seconds": secs.iter().sum::<f64>() / secs.len() as f64}),
                )
            })
            .collect();
        eprintln!(
            "{}: {:.1} s, {}",
            recipe.name,
            t.elapsed().as_secs_f64(),
            Value::Object(kinds.clone())
        );
        results.push(json!({"recipe": recipe.name, "splits": kinds}));
    }
    println!(
        "{}",
        json!({
            "photos": n,
            "seeds": o.seeds,
            "folds": o.folds,
            "embed_seconds": embed_s,
            "flip_embed_seconds": flip_s,
            "predict_seconds": predict_s,
            "predict_tta_seconds": predict_tta_s,
            "recipes": results,
        })
    );
}
