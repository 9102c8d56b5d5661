//! The `.sortwise` model file: one safetensors file holding the head in PyTorch layout
//! (`weight` `[classes, dim]`, `bias` `[classes]`, so `torch.nn.Linear(dim, classes)
//! .load_state_dict(safetensors.torch.load_file(path))` works) and, in its metadata, everything
//! needed to use it again: labels, backbone, preprocessing, training config and metrics.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::preprocess::Fit;
use crate::trainer::{Report, TrainConfig};

pub const FORMAT: &str = "sortwise-model";
pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelMeta {
    pub version: u32,
    pub arch: Arch,
    /// sha256 of the pretrained checkpoint the backbone came from (the `.pth`), shared by its
    /// f32 and f16 web files.
    pub backbone_source_sha256: String,
    pub labels: Vec<String>,
    pub fit: Fit,
    pub dim: usize,
    pub config: TrainConfig,
    pub report: Option<Report>,
    pub producer: String,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub meta: ModelMeta,
    /// `[classes, dim]`, row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Model {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let classes = self.meta.labels.len();
        if self.bias.len() != classes || self.weight.len() != classes * self.meta.dim {
            return Err(Error::Invalid(
                "head shape does not match the labels".into(),
            ));
        }
        let w = f32_bytes(&self.weight);
        let b = f32_bytes(&self.bias);
        let views = [
            (
                "weight",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![classes, self.meta.dim], &w),
            ),
            (
                "bias",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![classes], &b),
            ),
        ]
        .into_iter()
        .map(|(n, v)| v.map(|v| (n, v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid(e.to_string()))?;
        let meta = serde_json::to_string(&self.meta).map_err(|e| Error::Invalid(e.to_string()))?;
        let info = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("version".to_string(), VERSION.to_string()),
            ("sortwise".to_string(), meta),
        ]);
        safetensors::serialize(views, Some(info)).map_err(|e| Error::Invalid(e.to_string()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        let bad = |m: String| Error::Invalid(format!("not a usable .sortwise model file: {m}"));
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("the file is truncated or corrupt ({e})")))?;
        let info = header.metadata().clone().unwrap_or_default();
        if info.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad("it has no sortwise model metadata".into()));
        }
        let version: u32 = info
            .get("version")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("missing version".into()))?;
        if version > VERSION {
            return Err(Error::Invalid(format!(
                "this model file is version {version}, made by a newer sortwise; this one reads up to version {VERSION}"
            )));
        }
        let meta: ModelMeta = serde_json::from_str(info.get("sortwise").map_or("", String::as_str))
            .map_err(|e| bad(format!("metadata ({e})")))?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("the file is truncated or corrupt ({e})")))?;
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = st
                .tensor(name)
                .map_err(|_| bad(format!("no '{name}' tensor")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(bad(format!(
                    "'{name}' has shape {:?}, expected {shape:?}",
                    t.shape()
                )));
            }
            Ok(t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let classes = meta.labels.len();
        if classes < 2 {
            return Err(bad("it has fewer than two classes".into()));
        }
        if meta.dim != meta.arch.feature_dim() {
            return Err(bad(format!(
                "embedding width {} does not fit {}",
                meta.dim, meta.arch
            )));
        }
        let weight = read("weight", &[classes, meta.dim])?;
        let bias = read("bias", &[classes])?;
        Ok(Model { meta, weight, bias })
    }

    /// Refuse to pair this head with a backbone it was not trained on.
    pub fn check_backbone(&self, arch: Arch, source_sha256: &str) -> Result<()> {
        if arch != self.meta.arch {
            return Err(Error::Invalid(format!(
                "this model was trained on {}, but the weights are {arch}",
                self.meta.arch
            )));
        }
        if !self.meta.backbone_source_sha256.is_empty()
            && !source_sha256.is_empty()
            && source_sha256 != self.meta.backbone_source_sha256
        {
            return Err(Error::Invalid(format!(
                "this model was trained on other {arch} weights (source sha256 {}…, these are {}…)",
                &self.meta.backbone_source_sha256[..12.min(self.meta.backbone_source_sha256.len())],
                &source_sha256[..12.min(source_sha256.len())]
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model {
            meta: ModelMeta {
                version: VERSION,
                arch: Arch::Resnet18,
                backbone_source_sha256: "ab".repeat(32),
                labels: vec!["可回收物".into(), "有害垃圾 🔋".into()],
                fit: Fit::Crop,
                dim: 512,
                config: TrainConfig::default(),
                report: None,
                producer: "test".into(),
            },
            weight: (0..1024).map(|i| i as f32 / 1024.0).collect(),
            bias: vec![0.5, -0.5],
        }
    }

    #[test]
    fn round_trip_keeps_unicode_labels_and_pytorch_layout() {
        let bytes = model().to_bytes().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("weight").unwrap().shape(), &[2, 512]);
        let back = Model::from_bytes(&bytes).unwrap();
        assert_eq!(back.meta, model().meta);
        assert_eq!(back.weight, model().weight);
        assert_eq!(back.bias, model().bias);
    }

    #[test]
    fn future_versions_and_foreign_files_are_refused() {
        let bytes = model().to_bytes().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut info = header.metadata().clone().unwrap();
        info.insert("version".into(), "2".into());
        let tensors: Vec<_> = st.tensors();
        let future = safetensors::serialize(tensors, Some(info)).unwrap();
        let e = Model::from_bytes(&future).unwrap_err().to_string();
        assert!(e.contains("version 2") && e.contains("newer"), "{e}");
        let plain = safetensors::serialize(st.tensors(), None).unwrap();
        let e = Model::from_bytes(&plain).unwrap_err().to_string();
        assert!(e.contains("no sortwise model metadata"), "{e}");
        let e = Model::from_bytes(&[]).unwrap_err().to_string();
        assert!(e.contains("not a usable .sortwise model file"), "{e}");
    }
}
