//! The backbone's last stage as a module of its own (ResNet `layer4`; EfficientNet-Lite0 its last
//! five blocks and `conv_head`), so "fine-tune last stage" can train it with autodiff on cached
//! stage inputs while everything before it stays frozen and is run once per image.
//!
//! BatchNorm: a split-out stage is always BatchNorm-folded (`fold.rs`). Eval-mode BatchNorm is a
//! fixed per-channel affine map, so the folded convolution computes exactly the eval-mode
//! function, and there is no BatchNorm left whose running statistics training could update or
//! whose batch statistics it could switch to. Training the folded weights is training with
//! BatchNorm frozen in eval mode, its affine absorbed into the convolution; the L2-SP distance is
//! therefore measured on the folded weights (per output channel, the unfolded conv's distance
//! scaled by γ/√(σ²+ε)). This is simpler than keeping BatchNorm modules in eval mode inside an
//! autodiff graph, and it is the form the browser and CLI backbones already run in.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::Conv2d;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Tensor;

use super::efficientnet::{self, MbConv};
use super::global_avg_pool;
use super::resnet::{self, Block};
use super::{Backbone, Net};
use crate::error::{Error, Result};

#[derive(Module, Debug)]
pub struct ResNetStage {
    pub layer4: Vec<Block>,
}

#[derive(Module, Debug)]
pub struct LiteStage {
    /// The blocks from [`super::EfficientNetLite::last_stage_start`] on.
    pub blocks: Vec<MbConv>,
    pub conv_head: Conv2d,
}

/// A trainable copy of a backbone's last stage: stage input `[N, C, H, W]` -> embedding `[N, D]`.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per training run: boxing would buy nothing
pub enum LastStage {
    ResNet(ResNetStage),
    EfficientNet(LiteStage),
}

/// Stage parameters read back from the device, named by their burn path inside the stage
/// (`layer4.0.conv1.weight`, `blocks.0.expand_conv.weight`, `conv_head.bias`), for the model file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageWeights {
    /// (path, shape, values row-major)
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

/// Collects every float parameter with its path.
#[derive(Default)]
struct Params {
    path: Vec<String>,
    found: Vec<(String, Tensor<1>, Vec<usize>)>,
}

impl ModuleVisitor for Params {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let shape = t.dims().to_vec();
        let n: usize = shape.iter().product();
        self.found
            .push((self.path.join("."), t.reshape([n]), shape));
    }
}

impl LastStage {
    /// The stage's output before pooling, `[N, C, 7, 7]`.
    pub fn feature_map(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            LastStage::ResNet(s) => resnet::run_blocks(&s.layer4, x),
            LastStage::EfficientNet(s) => efficientnet::tail(&s.blocks, &s.conv_head, &None, x),
        }
    }

    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        global_avg_pool(self.feature_map(x))
    }

    /// Channels of the stage input.
    pub fn input_channels(&self) -> usize {
        match self {
            LastStage::ResNet(s) => s.layer4[0].conv1.weight.dims()[1],
            LastStage::EfficientNet(s) => match &s.blocks[0].expand_conv {
                Some(conv) => conv.weight.dims()[1],
                None => s.blocks[0].depthwise_conv.weight.dims()[0],
            },
        }
    }

    /// Every parameter flattened, in a fixed order: what the L2-SP penalty compares.
    pub fn flat_params(&self) -> Vec<Tensor<1>> {
        let mut v = Params::default();
        self.visit(&mut v);
        v.found.into_iter().map(|(_, t, _)| t).collect()
    }

    /// Read the parameters back (asynchronously, so it works on WebGPU too), sorted by name.
    pub async fn to_weights(&self) -> Result<StageWeights> {
        let mut v = Params::default();
        // Visit the variant's module so paths carry no enum segment.
        match self {
            LastStage::ResNet(s) => s.visit(&mut v),
            LastStage::EfficientNet(s) => s.visit(&mut v),
        }
        let mut tensors = Vec::with_capacity(v.found.len());
        for (name, t, shape) in v.found {
            let n = shape.iter().product::<usize>();
            let row = crate::tensor_io::read_rows(t.reshape([1, n]))
                .await?
                .remove(0);
            tensors.push((name, shape, row));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(StageWeights { tensors })
    }

    /// This stage with `weights` loaded into it; refuses missing, extra or misshapen tensors.
    pub fn with_weights(mut self, weights: &StageWeights) -> Result<Self> {
        let bad = |m: String| Error::Invalid(format!("the fine-tuned stage does not fit: {m}"));
        let bytes: Vec<Vec<u8>> = weights
            .tensors
            .iter()
            .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let views = weights
            .tensors
            .iter()
            .zip(&bytes)
            .map(|((name, shape, _), b)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .map(|v| (name.clone(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let file = safetensors::serialize(views, None::<HashMap<String, String>>)
            .map_err(|e| bad(e.to_string()))?;
        let mut store = SafetensorsStore::from_bytes(Some(file)).allow_partial(true);
        let result = match &mut self {
            LastStage::ResNet(s) => s.load_from(&mut store),
            LastStage::EfficientNet(s) => s.load_from(&mut store),
        }
        .map_err(|e| bad(e.to_string()))?;
        if let Some(e) = result.errors.first() {
            return Err(bad(e.to_string()));
        }
        if let Some((k, _)) = result.missing.first() {
            return Err(bad(format!("no tensor for {k}")));
        }
        if let Some(k) = result.unused.first() {
            return Err(bad(format!("unexpected tensor {k}")));
        }
        Ok(self)
    }
}

impl Backbone {
    /// `[N, 3, 224, 224]` -> the input of the last stage, `[N, C, 14, 14]`
    /// (see [`crate::Arch::stage_input_shape`]).
    pub fn stage_input(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.net {
            Net::ResNet(m) => m.pre_layer4(x),
            Net::EfficientNet(m) => m.pre_last_stage(x),
        }
    }

    /// The pooled embedding from a stage input, through this backbone's own last stage.
    pub fn features_from_stage_input(&self, x: Tensor<4>) -> Tensor<2> {
        global_avg_pool(match &self.net {
            Net::ResNet(m) => resnet::run_blocks(&m.layer4, x),
            Net::EfficientNet(m) => {
                let start = m.last_stage_start();
                efficientnet::tail(&m.blocks[start..], &m.conv_head, &m.bn1, x)
            }
        })
    }

    /// A BatchNorm-folded copy of the last stage to train (see the module comment).
    pub fn split_last_stage(&self) -> LastStage {
        match &self.net {
            Net::ResNet(m) => {
                let mut layer4 = m.layer4.clone();
                layer4.iter_mut().for_each(Block::fold_batchnorm);
                LastStage::ResNet(ResNetStage { layer4 })
            }
            Net::EfficientNet(m) => {
                let mut blocks = m.blocks[m.last_stage_start()..].to_vec();
                blocks.iter_mut().for_each(MbConv::fold_batchnorm);
                let mut conv_head = m.conv_head.clone();
                let mut bn = m.bn1.clone();
                super::fold::fold_pair(&mut conv_head, &mut bn);
                LastStage::EfficientNet(LiteStage { blocks, conv_head })
            }
        }
    }

    /// Put a (fine-tuned) last stage into this backbone, so `features` and `forward` use it.
    /// The stage must come from [`Backbone::split_last_stage`] of the same architecture.
    pub fn set_last_stage(&mut self, stage: LastStage) -> Result<()> {
        let wrong = || {
            Error::Invalid(format!(
                "this last stage does not belong to a {} backbone",
                self.arch
            ))
        };
        match (&mut self.net, stage) {
            (Net::ResNet(m), LastStage::ResNet(s)) if s.layer4.len() == m.layer4.len() => {
                m.layer4 = s.layer4;
            }
            (Net::EfficientNet(m), LastStage::EfficientNet(s))
                if s.blocks.len() == m.blocks.len() - m.last_stage_start() =>
            {
                let start = m.last_stage_start();
                m.blocks.truncate(start);
                m.blocks.extend(s.blocks);
                m.conv_head = s.conv_head;
                m.bn1 = None;
            }
            _ => return Err(wrong()),
        }
        Ok(())
    }

    /// Load fine-tuned stage weights (from a model file) into this backbone.
    pub fn load_last_stage(&mut self, weights: &StageWeights) -> Result<()> {
        let stage = self.split_last_stage().with_weights(weights)?;
        self.set_last_stage(stage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use burn::tensor::Device;

    /// The split-out stage and the stage input reproduce the whole backbone, for every arch,
    /// and the documented stage input shapes are the real ones.
    #[test]
    fn split_stage_reproduces_the_backbone() {
        let device = Device::flex();
        for arch in [Arch::Resnet18, Arch::EfficientnetLite0] {
            let backbone = Backbone::init(arch, &device);
            let x = Tensor::<4>::random(
                [2, 3, 224, 224],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let whole = backbone.features(x.clone());
            let input = backbone.stage_input(x);
            let [_, c, h, w] = input.dims();
            assert_eq!([c, h, w], arch.stage_input_shape(), "{arch}");
            let stage = backbone.split_last_stage();
            let split = stage.features(input.clone());
            let own = backbone.features_from_stage_input(input);
            let diff = (whole.clone() - split).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-3, "{arch}: {diff}");
            let diff = (whole - own).abs().max().into_scalar::<f32>();
            assert_eq!(diff, 0.0, "{arch}");
        }
    }

    #[test]
    fn weights_round_trip_and_misfits_are_refused() {
        let device = Device::flex();
        let mut backbone = Backbone::init(Arch::EfficientnetLite0, &device);
        let stage = backbone.split_last_stage();
        let w = pollster::block_on(stage.to_weights()).unwrap();
        assert!(
            w.tensors
                .iter()
                .any(|(n, _, _)| n == "blocks.0.expand_conv.weight")
        );
        assert!(w.tensors.iter().any(|(n, _, _)| n == "conv_head.bias"));
        let back = backbone.split_last_stage().with_weights(&w).unwrap();
        assert_eq!(pollster::block_on(back.to_weights()).unwrap(), w);
        let mut short = w.clone();
        short.tensors.pop();
        let e = backbone
            .split_last_stage()
            .with_weights(&short)
            .unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        backbone.load_last_stage(&w).unwrap();
        let resnet = Backbone::init(Arch::Resnet18, &device).split_last_stage();
        assert!(backbone.set_last_stage(resnet).is_err());
    }
}
