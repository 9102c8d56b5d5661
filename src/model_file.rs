//! The `.sortwise` model file: one safetensors file holding the head in PyTorch layout
//! (`weight` `[classes, dim]`, `bias` `[classes]`, so `torch.nn.Linear(dim, classes)
//! .load_state_dict(safetensors.torch.load_file(path))` works) and, in its metadata, everything
//! needed to use it again: labels, backbone, preprocessing, training config and metrics.
//!
//! A model trained with "fine-tune last stage" also holds the stage's fine-tuned parameters
//! under `stage.<burn path>` (`stage.layer4.0.conv1.weight`, `stage.blocks.0.expand_conv.weight`,
//! `stage.conv_head.bias`; BatchNorm folded into the convolutions, see `backbone/stage.rs`), and
//! its metadata says so (`stage`). Such files are version 2, so a sortwise that predates them
//! refuses them instead of silently predicting with the pretrained stage; head-only files stay
//! version 1. PyTorch still loads the head from either: pass `strict=False`, or keep only
//! `weight` and `bias`, for a version 2 file.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::backbone::StageWeights;
use crate::dataset::validate_label;
use crate::error::{Error, Result};
use crate::preprocess::Fit;
use crate::trainer::{Report, TrainConfig};

pub const FORMAT: &str = "sortwise-model";
/// Version of head-only files (what every sortwise reads).
pub const VERSION: u32 = 1;
/// Version of files that carry a fine-tuned last stage; also the newest this build reads.
pub const VERSION_WITH_STAGE: u32 = 2;
/// Prefix of the fine-tuned stage's tensor names.
pub const STAGE_PREFIX: &str = "stage.";

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
    /// Predictions are `softmax(logits / temperature)` (`calibration.rs`). Files written before
    /// calibration existed read as 1; readers that predate it ignore the field.
    #[serde(default = "unit_temperature")]
    pub temperature: f64,
}

fn unit_temperature() -> f64 {
    1.0
}

#[derive(Clone, Debug)]
pub struct Model {
    pub meta: ModelMeta,
    /// `[classes, dim]`, row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// At most `n` characters of `s`, for quoting untrusted text in a message.
pub fn truncate_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Which part of the backbone a stored stage replaces, for the file's metadata.
fn stage_part(arch: Arch) -> &'static str {
    match arch {
        Arch::EfficientnetLite0 => "the last five blocks (from index 11) and conv_head",
        _ => "layer4",
    }
}

impl Model {
    /// A head-only file (version 1).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.to_bytes_with_stage(None)
    }

    /// The file, with the fine-tuned last stage when there is one (then version 2).
    pub fn to_bytes_with_stage(&self, stage: Option<&StageWeights>) -> Result<Vec<u8>> {
        let classes = self.meta.labels.len();
        if self.bias.len() != classes || self.weight.len() != classes * self.meta.dim {
            return Err(Error::Invalid(
                "head shape does not match the labels".into(),
            ));
        }
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![
            (
                "weight".into(),
                vec![classes, self.meta.dim],
                f32_bytes(&self.weight),
            ),
            ("bias".into(), vec![classes], f32_bytes(&self.bias)),
        ];
        let stage = stage.filter(|s| !s.tensors.is_empty());
        for (name, shape, values) in stage.map_or(&[][..], |s| &s.tensors[..]) {
            if shape.iter().product::<usize>() != values.len() {
                return Err(Error::Invalid(format!(
                    "stage tensor {name} has {} values for shape {shape:?}",
                    values.len()
                )));
            }
            tensors.push((
                format!("{STAGE_PREFIX}{name}"),
                shape.clone(),
                f32_bytes(values),
            ));
        }
        let views = tensors
            .iter()
            .map(|(n, shape, b)| {
                safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), b)
                    .map(|v| (n.as_str(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let version = if stage.is_some() {
            VERSION_WITH_STAGE
        } else {
            VERSION
        };
        let meta = ModelMeta {
            version,
            ..self.meta.clone()
        };
        let meta = serde_json::to_string(&meta).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut info = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("version".to_string(), version.to_string()),
            ("sortwise".to_string(), meta),
        ]);
        if let Some(s) = stage {
            let description = serde_json::json!({
                "prefix": STAGE_PREFIX,
                "part": stage_part(self.meta.arch),
                "batchnorm": "folded into the convolutions",
                "tensors": s.tensors.len(),
            });
            info.insert("stage".to_string(), description.to_string());
        }
        safetensors::serialize(views, Some(info)).map_err(|e| Error::Invalid(e.to_string()))
    }

    /// A model file for callers that use the head only; a file with a fine-tuned stage is
    /// refused, since its head is wrong on the pretrained stage.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        match Model::from_bytes_with_stage(bytes)? {
            (model, None) => Ok(model),
            (_, Some(_)) => Err(Error::Invalid(
                "this model was trained with 'fine-tune last stage' and needs its fine-tuned \
                 stage, which this part of sortwise cannot load yet"
                    .into(),
            )),
        }
    }

    /// The model and, when it was trained with "fine-tune last stage", the stage's weights
    /// (load them with `Backbone::load_last_stage`).
    pub fn from_bytes_with_stage(bytes: &[u8]) -> Result<(Model, Option<StageWeights>)> {
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
        if version > VERSION_WITH_STAGE {
            return Err(Error::Invalid(format!(
                "this model file is version {version}, made by a newer sortwise; this one reads up to version {VERSION_WITH_STAGE}"
            )));
        }
        let meta: ModelMeta = serde_json::from_str(info.get("sortwise").map_or("", String::as_str))
            .map_err(|e| bad(format!("metadata ({e})")))?;
        if !(meta.temperature > 0.0 && meta.temperature.is_finite()) {
            return Err(bad(format!(
                "its temperature is {}, not a positive number",
                meta.temperature
            )));
        }
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("the file is truncated or corrupt ({e})")))?;
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = st
                .tensor(name)
                .map_err(|_| bad(format!("no '{name}' tensor")))?;
            if t.dtype() != Dtype::F32 {
                return Err(bad(format!(
                    "'{name}' is stored as {:?}, expected F32",
                    t.dtype()
                )));
            }
            if t.shape() != shape {
                return Err(bad(format!(
                    "'{name}' has shape {:?}, expected {shape:?}",
                    t.shape()
                )));
            }
            let values: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            // A NaN or infinite weight makes every prediction NaN, which no threshold catches.
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "'{name}' holds a non-finite value ({} at index {i}): the file is damaged",
                    values[i]
                )));
            }
            Ok(values)
        };
        let classes = meta.labels.len();
        if classes < 2 {
            return Err(bad("it has fewer than two classes".into()));
        }
        for (i, label) in meta.labels.iter().enumerate() {
            let shown = truncate_chars(label, 40);
            if validate_label(label).ok().as_deref() != Some(label.as_str()) {
                return Err(bad(format!(
                    "class name {i} ('{shown}') is empty, too long, has control characters or \
                     surrounding spaces"
                )));
            }
            if meta.labels[..i].contains(label) {
                return Err(bad(format!("class name '{shown}' appears twice")));
            }
        }
        if meta.dim != meta.arch.feature_dim() {
            return Err(bad(format!(
                "embedding width {} does not fit {}",
                meta.dim, meta.arch
            )));
        }
        let weight = read("weight", &[classes, meta.dim])?;
        let bias = read("bias", &[classes])?;
        // Sorted by name, the order `LastStage::to_weights` gives too.
        let mut names: Vec<&str> = st
            .names()
            .into_iter()
            .filter(|n| n.starts_with(STAGE_PREFIX))
            .collect();
        names.sort_unstable();
        if names.is_empty() == info.contains_key("stage") {
            return Err(bad(
                "its metadata and its stage tensors disagree about a fine-tuned stage".into(),
            ));
        }
        let stage = if names.is_empty() {
            None
        } else {
            let mut tensors = Vec::with_capacity(names.len());
            for name in names {
                let shape = st
                    .tensor(name)
                    .map(|t| t.shape().to_vec())
                    .unwrap_or_default();
                let values = read(name, &shape)?;
                let short = name.strip_prefix(STAGE_PREFIX).unwrap_or(name);
                tensors.push((short.to_string(), shape, values));
            }
            Some(StageWeights { tensors })
        };
        Ok((Model { meta, weight, bias }, stage))
    }

    /// Refuse to pair this head with a backbone it was not trained on.
    pub fn check_backbone(&self, arch: Arch, source_sha256: &str) -> Result<()> {
        if arch != self.meta.arch {
            return Err(Error::Invalid(format!(
                "this model was trained on {}, but the weights are {arch}",
                self.meta.arch
            )));
        }
        let mine = &self.meta.backbone_source_sha256;
        // A shared link names the checkpoint by a prefix of its hash (`share::SHA_PREFIX`).
        let prefix =
            mine.len() >= crate::share::SHA_PREFIX && source_sha256.starts_with(mine.as_str());
        if !mine.is_empty() && !source_sha256.is_empty() && source_sha256 != mine && !prefix {
            // Both strings come from files (the model's metadata, the weights' metadata): cut
            // by characters, since a byte index can fall inside a multi-byte character.
            return Err(Error::Invalid(format!(
                "this model was trained on other {arch} weights (source sha256 {}…, these are {}…)",
                truncate_chars(&self.meta.backbone_source_sha256, 12),
                truncate_chars(source_sha256, 12)
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
                temperature: 1.0,
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
    fn stage_round_trip_and_version() {
        let stage = StageWeights {
            tensors: vec![
                ("layer4.0.conv1.bias".into(), vec![2], vec![0.25, -1.0]),
                (
                    "layer4.0.conv1.weight".into(),
                    vec![2, 1, 1, 1],
                    vec![3.0, 4.0],
                ),
            ],
        };
        let head_only = model().to_bytes().unwrap();
        let bytes = model().to_bytes_with_stage(Some(&stage)).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let info = header.metadata().clone().unwrap();
        assert_eq!(info["version"], "2");
        assert!(info["stage"].contains("layer4"), "{}", info["stage"]);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            st.tensor("stage.layer4.0.conv1.weight").unwrap().shape(),
            &[2, 1, 1, 1]
        );
        let (back, back_stage) = Model::from_bytes_with_stage(&bytes).unwrap();
        assert_eq!(back_stage.as_ref(), Some(&stage));
        assert_eq!(back.meta.version, 2);
        assert_eq!(back.weight, model().weight);
        // Head-only callers are told why they cannot use it; head-only files stay version 1.
        let e = Model::from_bytes(&bytes).unwrap_err().to_string();
        assert!(e.contains("fine-tune last stage"), "{e}");
        assert_eq!(Model::from_bytes_with_stage(&head_only).unwrap().1, None);
        let (_, header) = SafeTensors::read_metadata(&head_only).unwrap();
        assert_eq!(header.metadata().as_ref().unwrap()["version"], "1");
        // Stage tensors without the metadata that announces them: refused.
        let mut info = info.clone();
        info.remove("stage");
        let e = Model::from_bytes_with_stage(
            &safetensors::serialize(st.tensors(), Some(info)).unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("disagree"), "{e}");
    }

    #[test]
    fn non_ascii_backbone_hashes_are_quoted_not_sliced() {
        // Byte 12 of "x€€€€€" falls inside the fourth '€': slicing there used to panic.
        let mut m = model();
        m.meta.backbone_source_sha256 = "x€€€€€€€€€€€€€€".into();
        let bytes = m.to_bytes().unwrap();
        let back = Model::from_bytes(&bytes).unwrap();
        let e = back
            .check_backbone(Arch::Resnet18, &"cd".repeat(32))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x€€€€€€€€€€€…") && e.contains("cdcdcdcdcdcd…"),
            "{e}"
        );
        let e = model()
            .check_backbone(Arch::Resnet18, "é€ü😀".repeat(9).as_str())
            .unwrap_err()
            .to_string();
        assert!(e.contains("other resnet18 weights"), "{e}");
        assert_eq!(truncate_chars("ab€d", 3), "ab€");
        assert_eq!(truncate_chars("ab", 3), "ab");
    }

    /// `model()` re-serialised with its tensors replaced by `tensors`.
    fn with_tensors(tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)>, stage: bool) -> Vec<u8> {
        let bytes = model().to_bytes().unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut info = header.metadata().clone().unwrap();
        if stage {
            info.insert("stage".into(), "{}".into());
            info.insert("version".into(), "2".into());
        }
        let views: Vec<_> = tensors
            .iter()
            .map(|(n, d, s, b)| {
                (
                    n.to_string(),
                    safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, Some(info)).unwrap()
    }

    #[test]
    fn non_finite_weights_and_wrong_dtypes_are_refused() {
        let m = model();
        let mut weight = m.weight.clone();
        weight[700] = f32::NAN;
        let e = Model::from_bytes(&with_tensors(
            vec![
                ("weight", Dtype::F32, vec![2, 512], f32_bytes(&weight)),
                ("bias", Dtype::F32, vec![2], f32_bytes(&m.bias)),
            ],
            false,
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("'weight'") && e.contains("NaN at index 700"),
            "{e}"
        );
        let e = Model::from_bytes_with_stage(&with_tensors(
            vec![
                ("weight", Dtype::F32, vec![2, 512], f32_bytes(&m.weight)),
                ("bias", Dtype::F32, vec![2], f32_bytes(&m.bias)),
                (
                    "stage.layer4.0.conv1.bias",
                    Dtype::F32,
                    vec![2],
                    f32_bytes(&[1.0, f32::NEG_INFINITY]),
                ),
            ],
            true,
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("stage.layer4.0.conv1.bias") && e.contains("-inf"),
            "{e}"
        );
        let e = Model::from_bytes(&with_tensors(
            vec![
                ("weight", Dtype::F16, vec![2, 512], vec![0; 2048]),
                ("bias", Dtype::F32, vec![2], f32_bytes(&m.bias)),
            ],
            false,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("stored as F16"), "{e}");
    }

    #[test]
    fn bad_or_duplicate_class_names_are_refused() {
        for (labels, expected) in [
            (vec!["a", "a"], "appears twice"),
            (vec!["a", "b\u{7}"], "control characters"),
            (vec!["a", " b"], "surrounding spaces"),
            (vec!["a", ""], "empty"),
        ] {
            let mut m = model();
            m.meta.labels = labels.iter().map(|l| l.to_string()).collect();
            let e = Model::from_bytes(&m.to_bytes().unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{labels:?}: {e}");
        }
    }

    #[test]
    fn future_versions_and_foreign_files_are_refused() {
        let bytes = model().to_bytes().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut info = header.metadata().clone().unwrap();
        info.insert("version".into(), "3".into());
        let tensors: Vec<_> = st.tensors();
        let future = safetensors::serialize(tensors, Some(info)).unwrap();
        let e = Model::from_bytes(&future).unwrap_err().to_string();
        assert!(e.contains("version 3") && e.contains("newer"), "{e}");
        let plain = safetensors::serialize(st.tensors(), None).unwrap();
        let e = Model::from_bytes(&plain).unwrap_err().to_string();
        assert!(e.contains("no sortwise model metadata"), "{e}");
        let e = Model::from_bytes(&[]).unwrap_err().to_string();
        assert!(e.contains("not a usable .sortwise model file"), "{e}");
    }
}
