//! The data checks itself, from the cached embeddings: near-duplicate photos (label conflicts
//! when they are filed in different classes, leaks when one trains and the other validates),
//! photos whose label is likely wrong (out-of-fold predictions, as in confident learning:
//! Northcutt et al., "Confident Learning", JAIR 2021), and per class what it is confused with,
//! which photos lie nearest the decision boundary, and the class balance.

use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::data::dataset::Example;
use crate::error::Result;
use crate::evaluation::metrics::argmax;
use crate::tensor_io::{matrix, read_rows};
use crate::trainer::{self, Progress, TrainConfig, TrainExample};

/// Cosine similarity of the evaluation-view embeddings (centred on the set's mean) at or above
/// which two photos are called near duplicates. Measured on trashnet-mini with
/// EfficientNet-Lite0 (tests/doctor.rs, docs/BENCHMARKS.md "Duplicate threshold"): the 240
/// distinct photos' closest pair is at 0.899, copies re-encoded at JPEG quality 60 at 0.934 and
/// above, copies at twice the size at 0.972 and above, byte-identical ones at 1.
pub const DUPLICATE_SIMILARITY: f32 = 0.92;
/// Folds of the out-of-fold predictions.
pub const FOLDS: usize = 5;
/// Likely label errors listed.
pub const SUSPECTS: usize = 20;
/// Photos nearest the decision boundary listed per class.
pub const BOUNDARY: usize = 3;
/// Nearest photos whose labels a photo's is compared with.
const NEIGHBOURS: usize = 10;
/// Weight of the out-of-fold margin next to the neighbours' disagreement in the suspects' rank.
const MARGIN_WEIGHT: f32 = 0.1;
/// Rows of the similarity matrix computed per device call.
const BLOCK: usize = 256;

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub duplicate_similarity: f32,
    pub folds: usize,
    pub suspects: usize,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            duplicate_similarity: DUPLICATE_SIMILARITY,
            folds: FOLDS,
            suspects: SUSPECTS,
            seed: 0,
        }
    }
}

/// Whether two embeddings come from the same pixels: equal to within 1e-4 of the largest value.
/// Not to the bit: a photo's embedding differs in its last bits with the batch it went through
/// the backbone in (a batch runs as one pass per thread, and a pass of 4 photos and one of 2
/// take differently blocked kernels), while a copy re-encoded at JPEG quality 60 is at cosine
/// 0.93-0.98 (`DUPLICATE_SIMILARITY`), far outside this.
pub fn same_pixels(a: &[f32], b: &[f32]) -> bool {
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * scale)
}

/// Two photos that look the same to the backbone.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pair {
    pub a: u32,
    pub b: u32,
    pub similarity: f32,
    /// The same embedding but for the last bits ([`same_pixels`]): the same pixels (a
    /// byte-identical file, or a copy).
    pub identical: bool,
    /// Filed in different classes: one of the two labels is wrong.
    pub conflict: bool,
    /// One validates while the other trains: validation accuracy counts it twice.
    pub leak: bool,
}

/// A photo whose given label the out-of-fold model finds unlikely.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suspect {
    pub id: u32,
    pub label: String,
    pub p_label: f32,
    /// The class the model would give it.
    pub suggested: String,
    pub p_suggested: f32,
    /// Share of its nearest photos filed under another label.
    pub neighbours_elsewhere: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Confusion {
    pub label: String,
    /// Share of this class's photos predicted as `label`, out of fold.
    pub share: f64,
}

/// Per class: what to add next.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassAdvice {
    pub label: String,
    pub count: usize,
    /// Out-of-fold accuracy on this class.
    pub recall: f64,
    /// The classes its photos are taken for, most often first.
    pub confused_with: Vec<Confusion>,
    /// Its photos the model is least sure about (smallest margin between its two likeliest
    /// classes): more photos like these help most.
    pub boundary: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub smallest: usize,
    pub largest: usize,
    /// The largest class has at least twice the photos of the smallest (training then weights
    /// the loss, `Balance::Auto`).
    pub imbalanced: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    pub pairs: Vec<Pair>,
    pub suspects: Vec<Suspect>,
    pub classes: Vec<ClassAdvice>,
    pub balance: Balance,
    pub duplicate_similarity: f32,
    /// Folds of the out-of-fold predictions (0: too few photos a class to run them).
    pub folds: usize,
}

/// The evaluation-view embeddings centred on the set's mean and scaled to unit length: pooled
/// ReLU features are all positive, so raw cosines of any two photos are high and close together;
/// centred, the features every photo here shares (the white background, the lighting) stop
/// counting.
fn centred_units(examples: &[Example]) -> Vec<Vec<f32>> {
    let dim = examples.first().map_or(0, |e| e.views[0].len());
    let mut mean = vec![0f64; dim];
    for e in examples {
        for (m, &v) in mean.iter_mut().zip(&e.views[0]) {
            *m += f64::from(v);
        }
    }
    let n = examples.len().max(1) as f64;
    examples
        .iter()
        .map(|e| {
            let v: Vec<f32> = e.views[0]
                .iter()
                .zip(&mean)
                .map(|(&x, m)| (f64::from(x) - m / n) as f32)
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// `visit(i, similarities of i to every example)` for every example, a block of rows per device
/// call.
async fn similarities(
    unit: &[Vec<f32>],
    device: &Device,
    mut visit: impl FnMut(usize, &[f32]),
) -> Result<()> {
    let rows: Vec<&[f32]> = unit.iter().map(Vec::as_slice).collect();
    let all = matrix(&rows, device).transpose();
    for (b, block) in rows.chunks(BLOCK).enumerate() {
        let sims = read_rows(matrix(block, device).matmul(all.clone())).await?;
        for (di, row) in sims.iter().enumerate() {
            visit(b * BLOCK + di, row);
        }
    }
    Ok(())
}

/// Every pair at or above `threshold` similarity, most similar first; and for each example the
/// share of its `NEIGHBOURS` nearest others filed under another label.
async fn pairs_and_neighbours(
    examples: &[Example],
    validation: &[u32],
    threshold: f32,
    device: &Device,
) -> Result<(Vec<Pair>, Vec<f32>)> {
    let unit = centred_units(examples);
    let mut out = Vec::new();
    let mut disagree = vec![0f32; examples.len()];
    similarities(&unit, device, |i, row| {
        for (j, &s) in row.iter().enumerate().skip(i + 1) {
            if s >= threshold {
                let (a, b) = (&examples[i], &examples[j]);
                out.push(Pair {
                    a: a.id,
                    b: b.id,
                    similarity: s.min(1.0),
                    identical: same_pixels(&a.views[0], &b.views[0]),
                    conflict: a.label != b.label,
                    leak: validation.contains(&a.id) != validation.contains(&b.id),
                });
            }
        }
        let mut near: Vec<(f32, usize)> = row
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, &s)| (s, j))
            .collect();
        near.sort_by(|a, b| b.0.total_cmp(&a.0));
        let k = near.len().min(NEIGHBOURS);
        let other = near[..k]
            .iter()
            .filter(|(_, j)| examples[*j].label != examples[i].label)
            .count();
        disagree[i] = other as f32 / k.max(1) as f32;
    })
    .await?;
    out.sort_by(|x, y| y.similarity.total_cmp(&x.similarity));
    Ok((out, disagree))
}

/// Each example's fold: per class, a seeded shuffle dealt round the folds.
fn folds(examples: &[Example], classes: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold = vec![0; examples.len()];
    for c in 0..classes {
        let mut idx: Vec<usize> = (0..examples.len())
            .filter(|&i| examples[i].label == c)
            .collect();
        idx.shuffle(&mut rng);
        for (n, i) in idx.into_iter().enumerate() {
            fold[i] = n % k;
        }
    }
    fold
}

/// Out-of-fold probabilities: for each fold, a head trained on the others (the run's recipe,
/// no refit, no validation) predicts it.
async fn out_of_fold(
    labels: &[String],
    examples: &[Example],
    k: usize,
    cfg: &TrainConfig,
    device: &Device,
    progress: &mut impl AsyncFnMut(&Progress) -> bool,
) -> Result<Vec<Vec<f32>>> {
    let fold = folds(examples, labels.len(), k, cfg.seed);
    let cfg = TrainConfig {
        refit: false,
        finetune_last: false,
        val_split: 0.0,
        ..cfg.clone()
    };
    let mut probs = vec![Vec::new(); examples.len()];
    for f in 0..k {
        let train: Vec<TrainExample> = examples
            .iter()
            .zip(&fold)
            .filter(|(_, g)| **g != f)
            .map(|(e, _)| TrainExample {
                views: &e.views,
                label: e.label,
            })
            .collect();
        let quiet = &mut async |_: &Progress| true;
        let (head, _) = trainer::train(labels, &train, &[], &cfg, device, quiet).await?;
        let held: Vec<usize> = (0..examples.len()).filter(|&i| fold[i] == f).collect();
        let rows: Vec<&[f32]> = held
            .iter()
            .map(|&i| examples[i].views[0].as_slice())
            .collect();
        for (i, p) in held
            .into_iter()
            .zip(head.probabilities(&rows, device).await?)
        {
            probs[i] = p;
        }
        let p = Progress {
            phase: "doctor".into(),
            epoch: f + 1,
            epochs: k,
            loss: 0.0,
            val_loss: None,
            val_accuracy: None,
        };
        if !progress(&p).await {
            return Err(crate::Error::Cancelled);
        }
    }
    Ok(probs)
}

/// The best class other than `label`, and its probability.
fn runner_up(p: &[f32], label: usize) -> (usize, f32) {
    p.iter()
        .enumerate()
        .filter(|(c, _)| *c != label)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or((label, 0.0), |(c, &v)| (c, v))
}

/// Everything above, for `examples` of `labels`; `validation` holds the ids the last run
/// validated on (for leaks), `cfg` its recipe (for the out-of-fold heads).
pub async fn diagnose(
    labels: &[String],
    examples: &[Example],
    validation: &[u32],
    cfg: &TrainConfig,
    device: &Device,
    opts: &Options,
    progress: &mut impl AsyncFnMut(&Progress) -> bool,
) -> Result<Diagnosis> {
    let mut counts = vec![0usize; labels.len()];
    for e in examples {
        counts[e.label] += 1;
    }
    trainer::check_counts(labels, &counts)?;
    let (pairs, disagree) =
        pairs_and_neighbours(examples, validation, opts.duplicate_similarity, device).await?;
    let smallest = counts.iter().copied().min().unwrap_or(0);
    let largest = counts.iter().copied().max().unwrap_or(0);
    // Every fold's training part needs every class.
    let k = opts.folds.min(smallest);
    let probs = if k >= 2 {
        out_of_fold(labels, examples, k, cfg, device, progress).await?
    } else {
        Vec::new()
    };

    // Among the photos the out-of-fold head takes for another class, ranked by how many of their
    // nearest neighbours are filed elsewhere (the margin breaks ties): a mislabelled photo is a
    // typical member of its true class, so its neighbours say so, while a hard one lies between
    // classes. On trashnet-mini with 10 flipped labels this found 7.0 of 10 in the top 20 over
    // 8 seeds, the head's margin alone 6.6 (docs/BENCHMARKS.md, "Label errors").
    let mut suspects: Vec<(f32, Suspect)> = examples
        .iter()
        .zip(&probs)
        .zip(&disagree)
        .filter_map(|((e, p), &d)| {
            let (other, p_other) = runner_up(p, e.label);
            (p_other > p[e.label]).then(|| {
                let s = Suspect {
                    id: e.id,
                    label: labels[e.label].clone(),
                    p_label: p[e.label],
                    suggested: labels[other].clone(),
                    p_suggested: p_other,
                    neighbours_elsewhere: d,
                };
                (d + MARGIN_WEIGHT * (p_other - p[e.label]), s)
            })
        })
        .collect();
    suspects.sort_by(|x, y| y.0.total_cmp(&x.0));
    let suspects: Vec<Suspect> = suspects
        .into_iter()
        .take(opts.suspects)
        .map(|(_, s)| s)
        .collect();

    let classes = (0..labels.len())
        .map(|c| {
            let mine: Vec<(&Example, &Vec<f32>)> = examples
                .iter()
                .zip(&probs)
                .filter(|(e, _)| e.label == c)
                .collect();
            let mut taken = vec![0usize; labels.len()];
            for (_, p) in &mine {
                taken[argmax(p)] += 1;
            }
            let n = mine.len().max(1) as f64;
            let mut confused_with: Vec<Confusion> = (0..labels.len())
                .filter(|&d| d != c && taken[d] > 0)
                .map(|d| Confusion {
                    label: labels[d].clone(),
                    share: taken[d] as f64 / n,
                })
                .collect();
            confused_with.sort_by(|a, b| b.share.total_cmp(&a.share));
            let mut margins: Vec<(f32, u32)> = mine
                .iter()
                .map(|(e, p)| {
                    let best = argmax(p);
                    (p[best] - runner_up(p, best).1, e.id)
                })
                .collect();
            margins.sort_by(|a, b| a.0.total_cmp(&b.0));
            ClassAdvice {
                label: labels[c].clone(),
                count: counts[c],
                recall: if probs.is_empty() {
                    0.0
                } else {
                    taken[c] as f64 / n
                },
                confused_with,
                boundary: margins
                    .into_iter()
                    .take(BOUNDARY)
                    .map(|(_, id)| id)
                    .collect(),
            }
        })
        .collect();
    Ok(Diagnosis {
        pairs,
        suspects,
        classes,
        balance: Balance {
            smallest,
            largest,
            imbalanced: smallest > 0 && largest >= 2 * smallest,
        },
        duplicate_similarity: opts.duplicate_similarity,
        folds: if k >= 2 { k } else { 0 },
    })
}

#[cfg(test)]
mod tests {
    use super::same_pixels;

    #[test]
    fn same_pixels_allows_the_last_bits_only() {
        let a: Vec<f32> = (0..1280).map(|i| ((i * 37) % 101) as f32 / 50.0).collect();
        let max = 2.0;
        let nudged: Vec<f32> = a.iter().map(|v| v + 1e-6 * max).collect();
        assert!(same_pixels(&a, &a));
        assert!(same_pixels(&a, &nudged));
        let mut other = a.clone();
        other[7] += 1e-3 * max;
        assert!(!same_pixels(&a, &other));
        assert!(!same_pixels(&a, &a[..1279]));
    }
}
