//! Confidence that means something: one temperature `T` fitted on the validation set after
//! training (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017), so that
//! `softmax(z / T)` is as likely as it can be of the true labels, and the expected calibration
//! error that says how far confidences are from accuracies. `T` changes no ranking: only how
//! sure the model says it is, which is what the "unsure" threshold reads.

use serde::{Deserialize, Serialize};

/// Where the search for `1/T` looks: `T` from 1/20 to 20.
const BETA_RANGE: (f64, f64) = (0.05, 20.0);
/// Equal-width confidence bins of the ECE, as Guo et al.
pub const ECE_BINS: usize = 15;

/// The temperature fitted after a run, and the calibration error on the validation set with
/// and without it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Calibration {
    pub temperature: f64,
    /// ECE of the uncalibrated probabilities (`T = 1`).
    pub ece_before: f64,
    /// ECE with the fitted temperature.
    pub ece_after: f64,
    /// Validation loss (mean cross-entropy) without and with the temperature: `loss_after` is
    /// what the model's own predictions score on these photos (`eval` on them gives it).
    pub loss_before: f64,
    pub loss_after: f64,
    /// Validation photos it was fitted on.
    pub n: usize,
}

/// `softmax(z / temperature)` of each row, in f64 for the sums, as f32.
pub fn softmax(logits: &[Vec<f32>], temperature: f64) -> Vec<Vec<f32>> {
    logits
        .iter()
        .map(|z| {
            let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let e: Vec<f64> = z
                .iter()
                .map(|&v| ((v as f64 - m) / temperature).exp())
                .collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| (v / s) as f32).collect()
        })
        .collect()
}

/// Mean negative log-likelihood of `truth` under `softmax(β·z)`.
fn nll(logits: &[Vec<f32>], truth: &[usize], beta: f64) -> f64 {
    let total: f64 = logits
        .iter()
        .zip(truth)
        .map(|(z, &t)| {
            let m = z
                .iter()
                .fold(f64::NEG_INFINITY, |a, &b| a.max(beta * b as f64));
            let lse = m + z
                .iter()
                .map(|&v| (beta * v as f64 - m).exp())
                .sum::<f64>()
                .ln();
            lse - beta * z[t] as f64
        })
        .sum();
    total / logits.len().max(1) as f64
}

/// The temperature minimising the validation NLL. The NLL is convex in `β = 1/T` (a
/// log-sum-exp of lines in β, minus a line), so a golden-section search finds its minimum.
/// Without validation photos, or when they hold no information (all logits equal), `T = 1`.
pub fn fit_temperature(logits: &[Vec<f32>], truth: &[usize]) -> f64 {
    if logits.is_empty() || logits.iter().flatten().any(|v| !v.is_finite()) {
        return 1.0;
    }
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    // Searched in ln β: the range spans 400x.
    let (mut a, mut b) = (BETA_RANGE.0.ln(), BETA_RANGE.1.ln());
    let f = |x: f64| nll(logits, truth, x.exp());
    let (mut c, mut d) = (b - phi * (b - a), a + phi * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..80 {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - phi * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + phi * (b - a);
            fd = f(d);
        }
    }
    let beta = ((a + b) / 2.0).exp();
    // A flat NLL (no signal) leaves the model as it was.
    if (f(0.0) - f(beta.ln())).abs() < 1e-12 {
        1.0
    } else {
        1.0 / beta
    }
}

/// Expected calibration error: over equal-width bins of top-1 confidence, the mean
/// |accuracy − confidence| weighted by the share of examples in the bin.
pub fn ece(probs: &[Vec<f32>], truth: &[usize]) -> f64 {
    let mut count = [0usize; ECE_BINS];
    let mut conf = [0f64; ECE_BINS];
    let mut correct = [0f64; ECE_BINS];
    for (p, &t) in probs.iter().zip(truth) {
        let best = crate::evaluation::metrics::argmax(p);
        let c = p[best] as f64;
        let bin = ((c * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        count[bin] += 1;
        conf[bin] += c;
        correct[bin] += f64::from(u8::from(best == t));
    }
    let n = probs.len().max(1) as f64;
    (0..ECE_BINS)
        .filter(|&i| count[i] > 0)
        .map(|i| (correct[i] - conf[i]).abs() / n)
        .sum()
}

/// [`fit_temperature`] on the validation logits, with the ECE before and after; `None`
/// without validation photos.
pub fn calibrate(logits: &[Vec<f32>], truth: &[usize]) -> Option<Calibration> {
    if logits.is_empty() {
        return None;
    }
    let temperature = fit_temperature(logits, truth);
    Some(Calibration {
        temperature,
        ece_before: ece(&softmax(logits, 1.0), truth),
        ece_after: ece(&softmax(logits, temperature), truth),
        loss_before: nll(logits, truth, 1.0),
        loss_after: nll(logits, truth, 1.0 / temperature),
        n: logits.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_temperature_that_made_the_labels() {
        // Logits of a model 3x too sure: labels drawn from softmax(z/3) are best explained by
        // T = 3, and the search finds it (to sampling noise).
        let mut state = 7u64;
        let mut rand = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut logits = Vec::new();
        let mut truth = Vec::new();
        for _ in 0..4000 {
            let z: Vec<f32> = (0..4).map(|_| (rand() * 12.0 - 6.0) as f32).collect();
            let p = &softmax(std::slice::from_ref(&z), 3.0)[0];
            let u = rand() as f32;
            let mut acc = 0.0;
            let t = p.iter().position(|&q| {
                acc += q;
                u < acc
            });
            truth.push(t.unwrap_or(3));
            logits.push(z);
        }
        let t = fit_temperature(&logits, &truth);
        assert!((t - 3.0).abs() < 0.3, "T = {t}");
        let c = calibrate(&logits, &truth).unwrap();
        assert!(c.ece_after < c.ece_before / 2.0, "{c:?}");
        assert!(nll(&logits, &truth, 1.0 / t) <= nll(&logits, &truth, 1.0));
    }

    #[test]
    fn ece_of_perfect_and_overconfident_predictions() {
        // Right every time at confidence 1: no error. Right half the time at 0.9: 0.4.
        assert_eq!(ece(&[vec![1.0, 0.0], vec![0.0, 1.0]], &[0, 1]), 0.0);
        let e = ece(&[vec![0.9, 0.1], vec![0.9, 0.1]], &[0, 1]);
        assert!((e - 0.4).abs() < 1e-6, "{e}");
    }

    #[test]
    fn nothing_to_fit_leaves_the_model_alone() {
        assert_eq!(fit_temperature(&[], &[]), 1.0);
        assert_eq!(fit_temperature(&vec![vec![0.0, 0.0]; 3], &[0, 1, 0]), 1.0);
        assert_eq!(fit_temperature(&[vec![f32::NAN, 0.0]], &[0]), 1.0);
        assert!(calibrate(&[], &[]).is_none());
        let p = softmax(&[vec![1.0, 2.0, 3.0]], 1.0);
        let s: f32 = p[0].iter().sum();
        assert!((s - 1.0).abs() < 1e-6 && p[0][2] > p[0][1]);
    }
}
