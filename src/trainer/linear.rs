//! Head-only training's arithmetic with softmax regression's gradient written out, on plain
//! slices. Through burn's autodiff a step was ~50 tensor operations on a 32-row batch, each with
//! its own allocation and graph node: in the browser 0.2 s of the page's Train step, and ~0.4 s
//! more the first time, compiling that code (bench/drop200.mjs; docs/BENCHMARKS.md). The loss and
//! the optimizers are burn's own formulas (`CrossEntropyLoss` with smoothing and class weights,
//! `Adam`, `Sgd` with momentum, weight decay added to the gradient), so a run follows the same
//! path: the tests below step both side by side. Fine-tuning a stage still needs the graph
//! (`finetune`).

use burn::tensor::Device;

use super::config::{OptimizerKind, TrainConfig};
use crate::model::head::Head;

/// A linear head being trained: `params` holds the weight `[classes, dim]` (PyTorch layout) and
/// then the bias `[classes]`, one buffer so that the optimizer steps both in one pass.
#[derive(Clone, Debug)]
pub(crate) struct LinearHead {
    pub dim: usize,
    pub classes: usize,
    pub params: Vec<f32>,
}

impl LinearHead {
    pub fn zeros(dim: usize, classes: usize) -> Self {
        LinearHead {
            dim,
            classes,
            params: vec![0.0; classes * (dim + 1)],
        }
    }

    fn split(&self) -> (&[f32], &[f32]) {
        self.params.split_at(self.classes * self.dim)
    }

    fn logits_into(&self, x: &[f32], out: &mut [f32]) {
        let (w, b) = self.split();
        for (c, o) in out.iter_mut().enumerate() {
            *o = dot(x, &w[c * self.dim..(c + 1) * self.dim]) + b[c];
        }
    }

    pub fn logits(&self, rows: &[&[f32]]) -> Vec<Vec<f32>> {
        rows.iter()
            .map(|x| {
                let mut z = vec![0.0; self.classes];
                self.logits_into(x, &mut z);
                z
            })
            .collect()
    }

    pub fn probabilities(&self, rows: &[&[f32]]) -> Vec<Vec<f32>> {
        let mut all = self.logits(rows);
        for z in &mut all {
            softmax_in_place(z);
        }
        all
    }

    /// The burn module the rest of the engine predicts and exports with, on `device`.
    pub fn to_head(&self, device: &Device) -> Head {
        let (w, b) = self.split();
        Head::from_weights(w, b, self.dim, device)
    }
}

/// The sum of `a[i]·b[i]` in eight independent lanes, which the compiler turns into SIMD (a
/// single running sum is one dependency chain it may not reorder).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn softmax_in_place(z: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
}

/// burn's `CrossEntropyLoss` as the trainer configures it: the targets smoothed by `smoothing`
/// (0: one-hot) and every class column scaled by its weight, the mean taken over the batch's
/// target weights (or its size without weights).
pub(crate) struct Loss {
    pub smoothing: f32,
    pub class_weights: Option<Vec<f32>>,
}

impl Loss {
    /// The batch's loss, and its gradient with respect to `head.params` written into `grad`.
    /// With `a_ic` the smoothed, weighted target of row `i` and class `c`, `A_i = Σ_c a_ic` and
    /// `p` the softmax, the loss is `-Σ_i Σ_c a_ic·log p_ic / N` and its gradient with respect
    /// to logit `z_ik` is `(p_ik·A_i − a_ik) / N`.
    pub fn gradient(
        &self,
        head: &LinearHead,
        rows: &[&[f32]],
        labels: &[usize],
        grad: &mut [f32],
    ) -> f32 {
        let (dim, classes) = (head.dim, head.classes);
        let weight = |c: usize| self.class_weights.as_ref().map_or(1.0, |w| w[c]);
        let norm: f32 = match &self.class_weights {
            Some(w) => labels.iter().map(|&y| w[y]).sum(),
            None => rows.len() as f32,
        };
        grad.fill(0.0);
        let (gw, gb) = grad.split_at_mut(classes * dim);
        let mut z = vec![0f32; classes];
        let mut loss = 0f32;
        for (x, &y) in rows.iter().zip(labels) {
            head.logits_into(x, &mut z);
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_sum = z.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
            let target = |c: usize| {
                let hot = if c == y { 1.0 - self.smoothing } else { 0.0 };
                (hot + self.smoothing / classes as f32) * weight(c)
            };
            let total: f32 = (0..classes).map(target).sum();
            for (c, &zc) in z.iter().enumerate() {
                let log_p = zc - max - log_sum;
                let a = target(c);
                loss -= a * log_p;
                let g = (log_p.exp() * total - a) / norm;
                gb[c] += g;
                for (gi, xi) in gw[c * dim..(c + 1) * dim].iter_mut().zip(x.iter()) {
                    *gi += g * xi;
                }
            }
        }
        loss / norm
    }
}

/// burn's optimizers over one flat parameter buffer: Adam (its defaults: β 0.9 / 0.999, ε 1e-5)
/// or SGD with momentum (no dampening), `weight_decay·θ` added to the gradient first.
pub(crate) struct Optimizer {
    kind: OptimizerKind,
    momentum: f32,
    weight_decay: f32,
    step: i32,
    first: Vec<f32>,
    second: Vec<f32>,
}

const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-5;

impl Optimizer {
    pub fn new(cfg: &TrainConfig, weight_decay: f64, params: usize) -> Self {
        Optimizer {
            kind: cfg.optimizer,
            momentum: cfg.momentum as f32,
            weight_decay: weight_decay as f32,
            step: 0,
            first: vec![0.0; params],
            second: match cfg.optimizer {
                OptimizerKind::Adam => vec![0.0; params],
                OptimizerKind::Sgd => Vec::new(),
            },
        }
    }

    /// One step of `params` down `grad` (which it overwrites) at learning rate `lr`.
    pub fn step(&mut self, lr: f64, params: &mut [f32], grad: &mut [f32]) {
        let lr = lr as f32;
        let first_step = self.step == 0;
        self.step += 1;
        if self.weight_decay > 0.0 {
            for (g, p) in grad.iter_mut().zip(params.iter()) {
                *g += self.weight_decay * p;
            }
        }
        match self.kind {
            OptimizerKind::Sgd => {
                for ((p, g), v) in params.iter_mut().zip(grad.iter()).zip(&mut self.first) {
                    *v = if first_step {
                        *g
                    } else {
                        *g + *v * self.momentum
                    };
                    *p -= *v * lr;
                }
            }
            OptimizerKind::Adam => {
                let correction_2 = (1.0 - BETA_2.powi(self.step)).sqrt();
                let factor = correction_2 / (1.0 - BETA_1.powi(self.step));
                let eps = EPSILON * correction_2;
                let moments = self.first.iter_mut().zip(self.second.iter_mut());
                for ((p, g), (m, v)) in params.iter_mut().zip(grad.iter()).zip(moments) {
                    *m = *m * BETA_1 + *g * (1.0 - BETA_1);
                    *v = *v * BETA_2 + *g * *g * (1.0 - BETA_2);
                    *p -= (*m * factor) / (v.sqrt() + eps) * lr;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::optim::GradientsParams;
    use burn::tensor::{Int, Tensor, TensorData};

    use super::*;
    use crate::tensor_io::matrix;
    use crate::trainer::build_optimizer;

    fn noise(seed: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32 ^ seed.wrapping_mul(0x9e37_79b9)).wrapping_mul(0x85eb_ca6b);
                ((h >> 8) as f32 / (1 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// `steps` steps of the autodiff loop the trainer ran before (burn's head, loss and
    /// optimizer) and of this module's, from the same start on the same batches: the losses and
    /// the parameters after each step agree.
    fn side_by_side(optimizer: OptimizerKind, smoothing: f32, weighted: bool, decay: f64) {
        let (dim, classes, rows_n, steps) = (37, 3, 11, 6);
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let cfg = TrainConfig {
            optimizer,
            ..TrainConfig::default()
        };
        let class_weights = weighted.then(|| vec![0.5, 1.25, 2.0]);
        let mut mine = LinearHead::zeros(dim, classes);
        mine.params = noise(7, mine.params.len())
            .iter()
            .map(|v| v * 0.1)
            .collect();
        let (w, b) = mine.split();
        let mut theirs = Head::from_weights(w, b, dim, &ad);
        let loss = Loss {
            smoothing,
            class_weights: class_weights.clone(),
        };
        let burn_loss = burn::nn::loss::CrossEntropyLossConfig::new()
            .with_smoothing((smoothing > 0.0).then_some(smoothing))
            .with_weights(class_weights)
            .init(&ad);
        let mut optim = Optimizer::new(&cfg, decay, mine.params.len());
        let mut burn_optim = build_optimizer(&cfg, decay);
        let mut grad = vec![0.0; mine.params.len()];
        for step in 0..steps {
            let x = noise(100 + step, rows_n * dim);
            let rows: Vec<&[f32]> = x.chunks(dim).collect();
            let labels: Vec<usize> = (0..rows_n)
                .map(|i| (i * 7 + step as usize) % classes)
                .collect();
            let lr = 0.05 / (step + 1) as f64;

            let y = Tensor::<1, Int>::from_data(
                TensorData::new(labels.iter().map(|&l| l as i64).collect(), [rows_n]),
                &ad,
            );
            let l = burn_loss.forward(theirs.forward(matrix(&rows, &ad)), y);
            let burn_value = l
                .clone()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap()[0];
            let grads = GradientsParams::from_grads(l.backward(), &theirs);
            theirs = burn_optim.step(lr, theirs, grads);

            let value = loss.gradient(&mine, &rows, &labels, &mut grad);
            optim.step(lr, &mut mine.params, &mut grad);

            assert!(
                (value - burn_value).abs() <= 1e-5 * burn_value.abs().max(1.0),
                "step {step}: loss {value} against burn's {burn_value}"
            );
            let (w, b) = pollster::block_on(theirs.valid().to_weights()).unwrap();
            let expected: Vec<f32> = w.into_iter().chain(b).collect();
            let worst = expected
                .iter()
                .zip(&mine.params)
                .map(|(e, m)| (e - m).abs())
                .fold(0.0, f32::max);
            assert!(
                worst <= 2e-5,
                "{optimizer:?} smoothing {smoothing} weighted {weighted} decay {decay}, step {step}: parameters differ by {worst}"
            );
        }
    }

    #[test]
    fn adam_steps_as_burns_autodiff_loop() {
        side_by_side(OptimizerKind::Adam, 0.1, false, 0.01);
        side_by_side(OptimizerKind::Adam, 0.0, true, 0.0);
        side_by_side(OptimizerKind::Adam, 0.2, true, 0.01);
    }

    #[test]
    fn sgd_steps_as_burns_autodiff_loop() {
        side_by_side(OptimizerKind::Sgd, 0.1, false, 0.01);
        side_by_side(OptimizerKind::Sgd, 0.0, true, 0.0);
    }

    #[test]
    fn probabilities_are_the_softmax_of_the_logits() {
        let mut head = LinearHead::zeros(19, 4);
        head.params = noise(3, head.params.len());
        let x = noise(9, 2 * 19);
        let rows: Vec<&[f32]> = x.chunks(19).collect();
        let device = Device::flex();
        let (w, b) = head.split();
        let burn_probs =
            pollster::block_on(Head::from_weights(w, b, 19, &device).probabilities(&rows, &device))
                .unwrap();
        for (p, q) in head.probabilities(&rows).iter().zip(&burn_probs) {
            assert_eq!(p.len(), 4);
            for (a, b) in p.iter().zip(q) {
                assert!((a - b).abs() < 1e-6, "{p:?} against burn's {q:?}");
            }
        }
    }
}
