//! EfficientNet-Lite0 as the PyPI package `efficientnet-lite-pytorch` (lukemelas' EfficientNet
//! with the TF "lite" changes) builds it: ReLU6, no squeeze-excitation, stem and head not
//! scaled, BatchNorm eps 1e-3, TensorFlow "SAME" padding fixed for a 224x224 input.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::fold::{conv_bn_act, conv_bn_add_act, fold_pair};
use super::global_avg_pool;
use crate::kernels::Activation;

/// (repeats, kernel, stride, expand ratio, in, out) from `efficientnet_lite_builder.py`.
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

const EPS: f64 = 1e-3;

/// TF "SAME" padding for a known input side, as `Conv2dStaticSamePadding` computes it: the odd
/// pixel goes to the bottom/right, which a symmetric padding cannot express.
fn same_padding(input: usize, k: usize, stride: usize) -> PaddingConfig2d {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + k).saturating_sub(input);
    let (lo, hi) = (total / 2, total - total / 2);
    PaddingConfig2d::Explicit(lo, lo, hi, hi)
}

fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
    input: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_groups(groups)
        .with_padding(same_padding(input, k, stride))
        .with_bias(false)
        .init(device)
}

fn bn(n: usize, device: &Device) -> Option<BatchNorm> {
    Some(BatchNormConfig::new(n).with_epsilon(EPS).init(device))
}

#[derive(Module, Debug)]
pub struct MbConv {
    pub expand_conv: Option<Conv2d>,
    /// `None` once folded into the conv before it (see `fold.rs`); likewise every `bn*` below.
    pub bn0: Option<BatchNorm>,
    pub depthwise_conv: Conv2d,
    pub bn1: Option<BatchNorm>,
    pub project_conv: Conv2d,
    pub bn2: Option<BatchNorm>,
    pub residual: bool,
}

impl MbConv {
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = match &self.expand_conv {
            Some(conv) => conv_bn_act(conv, &self.bn0, input.clone(), Activation::Relu6),
            None => input.clone(),
        };
        let x = conv_bn_act(&self.depthwise_conv, &self.bn1, x, Activation::Relu6);
        let skip = self.residual.then_some(input);
        conv_bn_add_act(&self.project_conv, &self.bn2, x, skip, Activation::Identity)
    }

    pub(crate) fn fold_batchnorm(&mut self) {
        if let Some(conv) = &mut self.expand_conv {
            fold_pair(conv, &mut self.bn0);
        }
        fold_pair(&mut self.depthwise_conv, &mut self.bn1);
        fold_pair(&mut self.project_conv, &mut self.bn2);
    }
}

/// The last stage's blocks and the 1x1 head convolution: the part after
/// [`EfficientNetLite::pre_last_stage`], here and in the trainable copy in `stage.rs`.
pub fn tail(
    blocks: &[MbConv],
    conv_head: &Conv2d,
    bn: &Option<BatchNorm>,
    x: Tensor<4>,
) -> Tensor<4> {
    let x = blocks.iter().fold(x, |x, b| b.forward(x));
    conv_bn_act(conv_head, bn, x, Activation::Relu6)
}

#[derive(Module, Debug)]
pub struct EfficientNetLite {
    pub conv_stem: Conv2d,
    pub bn0: Option<BatchNorm>,
    pub blocks: Vec<MbConv>,
    pub conv_head: Conv2d,
    pub bn1: Option<BatchNorm>,
    pub fc: Linear,
}

impl EfficientNetLite {
    pub fn init_lite0(num_classes: usize, device: &Device) -> Self {
        let mut size = 224;
        let conv_stem = conv(3, 32, 3, 2, 1, size, device);
        size = size.div_ceil(2);
        let mut blocks = Vec::new();
        for &(repeats, k, stride, expand, cin, cout) in STAGES.iter() {
            for r in 0..repeats {
                let (cin, s) = if r == 0 { (cin, stride) } else { (cout, 1) };
                let mid = cin * expand;
                let (expand_conv, bn0) = if expand != 1 {
                    (Some(conv(cin, mid, 1, 1, 1, size, device)), bn(mid, device))
                } else {
                    (None, None)
                };
                let depthwise_conv = conv(mid, mid, k, s, mid, size, device);
                size = size.div_ceil(s);
                blocks.push(MbConv {
                    expand_conv,
                    bn0,
                    depthwise_conv,
                    bn1: bn(mid, device),
                    project_conv: conv(mid, cout, 1, 1, 1, size, device),
                    bn2: bn(cout, device),
                    residual: s == 1 && cin == cout,
                });
            }
        }
        EfficientNetLite {
            conv_stem,
            bn0: bn(32, device),
            blocks,
            conv_head: conv(320, 1280, 1, 1, 1, size, device),
            bn1: bn(1280, device),
            fc: LinearConfig::new(1280, num_classes).init(device),
        }
    }

    /// Index of the first block of the last two stages (192 and 320 channels): the part that
    /// "fine-tune last stage" trains, analogous to ResNet's layer4.
    pub fn last_stage_start(&self) -> usize {
        self.blocks.len() - 5
    }

    pub fn pre_last_stage(&self, x: Tensor<4>) -> Tensor<4> {
        let x = conv_bn_act(&self.conv_stem, &self.bn0, x, Activation::Relu6);
        let end = self.last_stage_start();
        self.blocks[..end].iter().fold(x, |x, b| b.forward(x))
    }

    pub fn trunk(&self, x: Tensor<4>) -> Tensor<4> {
        let start = self.last_stage_start();
        tail(
            &self.blocks[start..],
            &self.conv_head,
            &self.bn1,
            self.pre_last_stage(x),
        )
    }

    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        global_avg_pool(self.trunk(x))
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.fc.forward(self.features(x))
    }

    pub fn fold_batchnorm(&mut self) {
        fold_pair(&mut self.conv_stem, &mut self.bn0);
        self.blocks.iter_mut().for_each(MbConv::fold_batchnorm);
        fold_pair(&mut self.conv_head, &mut self.bn1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_static_same_padding() {
        // Values Conv2dStaticSamePadding computes for lite0 at 224: (input, k, stride) -> pads.
        let cases = [
            ((224, 3, 2), (0, 1)),
            ((112, 3, 1), (1, 1)),
            ((56, 5, 2), (1, 2)),
            ((14, 5, 1), (2, 2)),
            ((7, 1, 1), (0, 0)),
        ];
        for ((input, k, s), (lo, hi)) in cases {
            assert_eq!(
                same_padding(input, k, s),
                PaddingConfig2d::Explicit(lo, lo, hi, hi)
            );
        }
    }
}
