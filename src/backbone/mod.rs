//! Pretrained ImageNet backbones behind one type, so callers pick the architecture at run time
//! the same way they pick the device.

pub mod efficientnet;
mod fold;
pub mod resnet;
pub mod stage;

use burn::tensor::{Device, Tensor};

use crate::arch::Arch;
pub use efficientnet::EfficientNetLite;
pub use resnet::ResNet;
pub use stage::{LastStage, StageWeights};

/// `[N, C, H, W] -> [N, C]`, PyTorch's `AdaptiveAvgPool2d(1)` followed by `flatten(1)`.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Net {
    ResNet(ResNet),
    EfficientNet(EfficientNetLite),
}

/// A backbone with its ImageNet classifier; [`Backbone::features`] is what transfer learning
/// uses, [`Backbone::forward`] gives the 1000 ImageNet logits.
#[derive(Debug)]
pub struct Backbone {
    pub arch: Arch,
    pub net: Net,
}

impl Backbone {
    /// Randomly initialised; load weights with [`crate::formats::weights`].
    pub fn init(arch: Arch, device: &Device) -> Self {
        let net = match arch {
            Arch::EfficientnetLite0 => {
                Net::EfficientNet(EfficientNetLite::init_lite0(1000, device))
            }
            _ => Net::ResNet(ResNet::init(arch, 1000, device)),
        };
        Backbone { arch, net }
    }

    /// Fold every BatchNorm into its convolution for inference (see `fold.rs`). A folded
    /// backbone has other parameters, so save web files before folding, not after.
    pub fn fold_batchnorm(mut self) -> Self {
        match &mut self.net {
            Net::ResNet(m) => m.fold_batchnorm(),
            Net::EfficientNet(m) => m.fold_batchnorm(),
        }
        self
    }

    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        match &self.net {
            Net::ResNet(m) => m.features(x),
            Net::EfficientNet(m) => m.features(x),
        }
    }

    /// The last feature map before pooling, `[N, C, 7, 7]`: [`Backbone::features`] is its mean
    /// over positions (what class activation maps are made of, `explain.rs`).
    pub fn feature_map(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.net {
            Net::ResNet(m) => m.trunk(x),
            Net::EfficientNet(m) => m.trunk(x),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match &self.net {
            Net::ResNet(m) => m.forward(x),
            Net::EfficientNet(m) => m.forward(x),
        }
    }

    pub fn device(&self) -> Device {
        match &self.net {
            Net::ResNet(m) => m.fc.weight.device(),
            Net::EfficientNet(m) => m.fc.weight.device(),
        }
    }
}
