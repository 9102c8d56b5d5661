//! The backbones sortwise knows, and the facts about each that the rest of the code needs.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Resnet18,
    Resnet34,
    Resnet50,
    EfficientnetLite0,
}

impl Arch {
    pub const ALL: [Arch; 4] = [
        Arch::Resnet18,
        Arch::Resnet34,
        Arch::Resnet50,
        Arch::EfficientnetLite0,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet18 => "resnet18",
            Arch::Resnet34 => "resnet34",
            Arch::Resnet50 => "resnet50",
            Arch::EfficientnetLite0 => "efficientnet_lite0",
        }
    }

    /// Width of the pooled embedding that the head is trained on.
    pub fn feature_dim(self) -> usize {
        match self {
            Arch::Resnet18 | Arch::Resnet34 => 512,
            Arch::Resnet50 => 2048,
            Arch::EfficientnetLite0 => 1280,
        }
    }

    /// `[C, H, W]` of what enters the last stage at a 224 input: ResNet `layer4` takes layer3's
    /// output (stride 16), EfficientNet-Lite0's last stage takes block 10's 112 channels. This is
    /// what "fine-tune last stage" caches per view (4·C·H·W bytes: 88 KB for Lite0, 200 KB for
    /// ResNet-18/34, 800 KB for ResNet-50).
    pub fn stage_input_shape(self) -> [usize; 3] {
        match self {
            Arch::Resnet18 | Arch::Resnet34 => [256, 14, 14],
            Arch::Resnet50 => [1024, 14, 14],
            Arch::EfficientnetLite0 => [112, 14, 14],
        }
    }

    /// Input side the backbone was trained at (and, for EfficientNet-Lite0, the only size its
    /// static TF-style padding is correct for).
    pub fn input_size(self) -> usize {
        224
    }

    /// BatchNorm epsilon of the reference implementation: lukemelas' EfficientNet follows
    /// TensorFlow's 1e-3, torchvision uses PyTorch's default 1e-5.
    pub fn bn_epsilon(self) -> f64 {
        match self {
            Arch::EfficientnetLite0 => 1e-3,
            _ => 1e-5,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        match norm.as_str() {
            "resnet18" | "resnet_18" => Ok(Arch::Resnet18),
            "resnet34" | "resnet_34" => Ok(Arch::Resnet34),
            "resnet50" | "resnet_50" => Ok(Arch::Resnet50),
            "efficientnet_lite0" | "efficientnetlite0" => Ok(Arch::EfficientnetLite0),
            _ => Err(Error::UnknownArch(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for arch in Arch::ALL {
            assert_eq!(arch.name().parse::<Arch>().unwrap(), arch);
        }
        assert_eq!(
            "EfficientNet-Lite0".parse::<Arch>().unwrap(),
            Arch::EfficientnetLite0
        );
        let err = "vgg16".parse::<Arch>().unwrap_err().to_string();
        assert!(err.contains("vgg16") && err.contains("resnet18"), "{err}");
    }
}
