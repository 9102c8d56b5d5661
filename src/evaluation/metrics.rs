//! Classification metrics from predicted probabilities, computed on the host.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub n: usize,
    /// Mean cross-entropy of the true class.
    pub loss: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[actual][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

pub fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// `probs[i]` is a probability row for example i, `truth[i]` its class.
pub fn compute(probs: &[Vec<f32>], truth: &[usize], classes: usize) -> Metrics {
    let mut confusion = vec![vec![0usize; classes]; classes];
    let mut loss = 0.0;
    for (p, &t) in probs.iter().zip(truth) {
        confusion[t][argmax(p)] += 1;
        loss -= (p[t].max(1e-12) as f64).ln();
    }
    let n = truth.len();
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let per_class = (0..classes)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[c]).sum();
            let precision = if predicted > 0 {
                tp / predicted as f64
            } else {
                0.0
            };
            let recall = if support > 0 {
                tp / support as f64
            } else {
                0.0
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassMetrics {
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    Metrics {
        accuracy: if n > 0 {
            correct as f64 / n as f64
        } else {
            0.0
        },
        n,
        loss: if n > 0 { loss / n as f64 } else { 0.0 },
        per_class,
        confusion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        let probs = vec![
            vec![0.9, 0.1],
            vec![0.2, 0.8],
            vec![0.6, 0.4],
            vec![0.3, 0.7],
        ];
        let m = compute(&probs, &[0, 1, 1, 1], 2);
        assert_eq!(m.confusion, vec![vec![1, 0], vec![1, 2]]);
        assert_eq!(m.accuracy, 0.75);
        assert_eq!(m.per_class[0].precision, 0.5);
        assert_eq!(m.per_class[1].recall, 2.0 / 3.0);
        assert_eq!(m.per_class[1].support, 3);
        let want_loss = -((0.9f32.ln() + 0.8f32.ln() + 0.4f32.ln() + 0.7f32.ln()) as f64) / 4.0;
        assert!((m.loss - want_loss).abs() < 1e-6);
    }
}
