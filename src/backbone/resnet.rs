//! ResNet-18/34/50 exactly as torchvision builds them (v1.5: the stride sits on the 3x3 conv of
//! the bottleneck). Field names mirror torchvision's state-dict keys so that loading needs only
//! the `downsample.{0,1}` remap (see `weights.rs`).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::fold::{conv_bn, conv_bn_act, conv_bn_add_act, fold_pair};
use super::global_avg_pool;
use crate::arch::Arch;
use crate::kernels::{self, Activation};

#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
    /// `None` once folded into `conv` (see `fold.rs`); likewise every `bn*` below.
    pub bn: Option<BatchNorm>,
}

/// A BasicBlock when `conv3` is absent, a Bottleneck when present. One struct instead of an enum
/// keeps the module paths identical to torchvision's (`layer1.0.conv1.weight`), with no variant
/// segment for the store to skip.
#[derive(Module, Debug)]
pub struct Block {
    pub conv1: Conv2d,
    pub bn1: Option<BatchNorm>,
    pub conv2: Conv2d,
    pub bn2: Option<BatchNorm>,
    pub conv3: Option<Conv2d>,
    pub bn3: Option<BatchNorm>,
    pub downsample: Option<Downsample>,
}

impl Block {
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(ds) => conv_bn(&ds.conv, &ds.bn, input.clone()),
            None => input.clone(),
        };
        let out = conv_bn_act(&self.conv1, &self.bn1, input, Activation::Relu);
        // Bottleneck blocks (conv3) put a ReLU after conv2; basic blocks add the skip connection
        // to conv2's output first. The ReLU after the addition is applied as the last conv writes.
        match &self.conv3 {
            Some(conv3) => {
                let out = conv_bn_act(&self.conv2, &self.bn2, out, Activation::Relu);
                conv_bn_add_act(conv3, &self.bn3, out, Some(identity), Activation::Relu)
            }
            None => conv_bn_add_act(
                &self.conv2,
                &self.bn2,
                out,
                Some(identity),
                Activation::Relu,
            ),
        }
    }

    pub(crate) fn fold_batchnorm(&mut self) {
        fold_pair(&mut self.conv1, &mut self.bn1);
        fold_pair(&mut self.conv2, &mut self.bn2);
        if let Some(conv3) = &mut self.conv3 {
            fold_pair(conv3, &mut self.bn3);
        }
        if let Some(ds) = &mut self.downsample {
            fold_pair(&mut ds.conv, &mut ds.bn);
        }
    }
}

/// `blocks` in sequence: layer4 here, and the trainable copy of it in `stage.rs`.
pub fn run_blocks(blocks: &[Block], x: Tensor<4>) -> Tensor<4> {
    blocks.iter().fold(x, |x, b| b.forward(x))
}

#[derive(Module, Debug)]
pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: Option<BatchNorm>,
    pub maxpool: MaxPool2d,
    pub layer1: Vec<Block>,
    pub layer2: Vec<Block>,
    pub layer3: Vec<Block>,
    pub layer4: Vec<Block>,
    pub fc: Linear,
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

fn bn(n: usize, device: &Device) -> Option<BatchNorm> {
    Some(BatchNormConfig::new(n).with_epsilon(1e-5).init(device))
}

/// (blocks per stage, bottleneck?) as in torchvision's `resnet18/34/50` builders.
fn layout(arch: Arch) -> ([usize; 4], bool) {
    match arch {
        Arch::Resnet18 => ([2, 2, 2, 2], false),
        Arch::Resnet34 => ([3, 4, 6, 3], false),
        Arch::Resnet50 => ([3, 4, 6, 3], true),
        Arch::EfficientnetLite0 => unreachable!("not a ResNet"),
    }
}

impl ResNet {
    pub fn init(arch: Arch, num_classes: usize, device: &Device) -> Self {
        let (depths, bottleneck) = layout(arch);
        let expansion = if bottleneck { 4 } else { 1 };
        let mut in_ch = 64;
        let mut stages: Vec<Vec<Block>> = Vec::with_capacity(4);
        for (stage, &depth) in depths.iter().enumerate() {
            let width = 64 << stage;
            let stride = if stage == 0 { 1 } else { 2 };
            let blocks = (0..depth)
                .map(|i| {
                    let s = if i == 0 { stride } else { 1 };
                    let out_ch = width * expansion;
                    let downsample = (s != 1 || in_ch != out_ch).then(|| Downsample {
                        conv: conv(in_ch, out_ch, 1, s, device),
                        bn: bn(out_ch, device),
                    });
                    let block = if bottleneck {
                        Block {
                            conv1: conv(in_ch, width, 1, 1, device),
                            bn1: bn(width, device),
                            conv2: conv(width, width, 3, s, device),
                            bn2: bn(width, device),
                            conv3: Some(conv(width, out_ch, 1, 1, device)),
                            bn3: bn(out_ch, device),
                            downsample,
                        }
                    } else {
                        Block {
                            conv1: conv(in_ch, width, 3, s, device),
                            bn1: bn(width, device),
                            conv2: conv(width, width, 3, 1, device),
                            bn2: bn(width, device),
                            conv3: None,
                            bn3: None,
                            downsample,
                        }
                    };
                    in_ch = out_ch;
                    block
                })
                .collect();
            stages.push(blocks);
        }
        let mut stages = stages.into_iter();
        let mut next = || stages.next().expect("four stages");
        ResNet {
            conv1: conv(3, 64, 7, 2, device),
            bn1: bn(64, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
            fc: LinearConfig::new(512 * expansion, num_classes).init(device),
        }
    }

    /// Everything up to the last residual stage: `[N, 3, 224, 224] -> [N, C, 7, 7]`.
    pub fn trunk(&self, x: Tensor<4>) -> Tensor<4> {
        run_blocks(&self.layer4, self.pre_layer4(x))
    }

    /// Stem and stages 1-3. Split out so that fine-tuning `layer4` can cache this output.
    pub fn pre_layer4(&self, x: Tensor<4>) -> Tensor<4> {
        let x = conv_bn_act(&self.conv1, &self.bn1, x, Activation::Relu);
        let x = kernels::max_pool2d(&self.maxpool, x);
        [&self.layer1, &self.layer2, &self.layer3]
            .into_iter()
            .flatten()
            .fold(x, |x, b| b.forward(x))
    }

    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        global_avg_pool(self.trunk(x))
    }

    pub fn fold_batchnorm(&mut self) {
        fold_pair(&mut self.conv1, &mut self.bn1);
        for block in [
            &mut self.layer1,
            &mut self.layer2,
            &mut self.layer3,
            &mut self.layer4,
        ]
        .into_iter()
        .flatten()
        {
            block.fold_batchnorm();
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.fc.forward(self.features(x))
    }
}
