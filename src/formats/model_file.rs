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

use std::collections::{HashMap, HashSet};

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::backbone::StageWeights;
use crate::data::dataset::{MAX_LABEL_CHARS, validate_label};
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

/// Most classes a model file or a shared link may hold, checked before any work per label: a
/// file of 200,000 labels took 57 s to refuse when every label was compared with the ones before
/// it. The page stops at 100 classes (`www/project/project.js`); the CLI has no limit of its own, and a
/// head of 1,000 classes is already ImageNet's.
pub const MAX_CLASSES: usize = 1_000;

/// Longest class name in bytes that can still be `MAX_LABEL_CHARS` characters (UTF-8 takes at
/// most 4 bytes a character): a length known without reading the text.
pub const MAX_LABEL_BYTES: usize = 4 * MAX_LABEL_CHARS;

/// Hex digits of the backbone checkpoint's sha256 that a shared link keeps (`share.rs`): the
/// shortest hash a model may name its backbone by, enough to tell checkpoints apart.
pub const SHA_PREFIX: usize = 16;

/// Hex digits of a whole sha256.
pub const SHA_HEX: usize = 64;

/// What makes a model's classes or backbone hash unusable, whether it came in a file or a link;
/// each reader says which of the two it was reading.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("it has fewer than two classes ({0})")]
    TooFewClasses(usize),
    #[error("it has {0} classes; sortwise reads at most {MAX_CLASSES}")]
    TooManyClasses(usize),
    #[error(
        "class name {index} is {bytes} bytes long; a class name can be at most {MAX_LABEL_CHARS} characters"
    )]
    LabelTooLong { index: usize, bytes: usize },
    #[error("class name {index} ({shown}) is refused: {reason}")]
    BadLabel {
        index: usize,
        shown: String,
        reason: String,
    },
    /// Trimming would change it: the page and the session would know the class by another name.
    #[error("class name {index} ({shown}) has surrounding spaces")]
    Padded { index: usize, shown: String },
    #[error("class name {0} appears twice")]
    Duplicate(String),
    #[error(
        "it does not name the backbone checkpoint it was trained on (its backbone source sha256 is empty)"
    )]
    MissingSourceSha256,
    #[error(
        "its backbone source sha256 ({0}) is not {SHA_PREFIX} to {SHA_HEX} lowercase hex digits"
    )]
    MalformedSourceSha256(String),
}

/// Untrusted text for a message: at most 40 characters, quoted, control, direction and
/// invisible characters escaped (`\u{202e}`), so the message shows what the text really holds.
fn quoted(text: &str) -> String {
    format!("'{}'", truncate_chars(text, 40).escape_debug())
}

/// The class count and every label's length in bytes, which cost nothing to check: readers
/// call it before any work per label (and before comparing the head's shape, which is as long).
pub fn check_class_bounds(labels: &[String]) -> Result<(), MetaError> {
    match labels.len() {
        n if n < 2 => return Err(MetaError::TooFewClasses(n)),
        n if n > MAX_CLASSES => return Err(MetaError::TooManyClasses(n)),
        _ => {}
    }
    match labels.iter().position(|l| l.len() > MAX_LABEL_BYTES) {
        Some(index) => Err(MetaError::LabelTooLong {
            index,
            bytes: labels[index].len(),
        }),
        None => Ok(()),
    }
}

/// Every label as the engine keeps class names (`validate_label`, the page's rule too), already
/// in that form, and none twice. Linear in the labels; call [`check_class_bounds`] first.
pub fn check_class_names(labels: &[String]) -> Result<(), MetaError> {
    let mut seen = HashSet::with_capacity(labels.len());
    for (index, label) in labels.iter().enumerate() {
        let kept = validate_label(label).map_err(|e| MetaError::BadLabel {
            index,
            shown: quoted(label),
            reason: e.to_string(),
        })?;
        if kept != *label {
            return Err(MetaError::Padded {
                index,
                shown: quoted(label),
            });
        }
        if !seen.insert(label.as_str()) {
            return Err(MetaError::Duplicate(quoted(label)));
        }
    }
    Ok(())
}

/// The whole rule for a model's classes, for a reader with no head shape to compare between
/// [`check_class_bounds`] and [`check_class_names`] (`share::decode`).
pub fn check_labels(labels: &[String]) -> Result<(), MetaError> {
    check_class_bounds(labels)?;
    check_class_names(labels)
}

/// A model's backbone hash: the checkpoint's sha256 (`sortwise convert` writes all 64 digits)
/// or a link's prefix of it, never empty, since an empty hash used to skip the backbone check.
pub fn check_source_sha256(sha: &str) -> Result<(), MetaError> {
    if sha.is_empty() {
        return Err(MetaError::MissingSourceSha256);
    }
    let hex = sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex || !(SHA_PREFIX..=SHA_HEX).contains(&sha.len()) {
        return Err(MetaError::MalformedSourceSha256(quoted(sha)));
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelMeta {
    pub version: u32,
    pub arch: Arch,
    /// sha256 of the pretrained checkpoint the backbone came from (the `.pth`), shared by its
    /// f32 and f16 web files: lowercase hex, all 64 digits or a link's prefix of at least
    /// `SHA_PREFIX` (`check_source_sha256`).
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
        let meta_bad = |e: MetaError| bad(e.to_string());
        check_source_sha256(&meta.backbone_source_sha256).map_err(meta_bad)?;
        // The count and lengths first, then the head's shape, and only then the work per label.
        check_class_bounds(&meta.labels).map_err(meta_bad)?;
        let classes = meta.labels.len();
        if meta.dim != meta.arch.feature_dim() {
            return Err(bad(format!(
                "embedding width {} does not fit {}",
                meta.dim, meta.arch
            )));
        }
        let weight = read("weight", &[classes, meta.dim])?;
        let bias = read("bias", &[classes])?;
        check_class_names(&meta.labels).map_err(meta_bad)?;
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
        // Parsing refuses such a hash already; a `Model` built in code has not been parsed.
        check_source_sha256(mine).map_err(|e| {
            Error::Invalid(format!(
                "this model cannot be checked against the backbone: {e}"
            ))
        })?;
        // Every weight file `sortwise convert` writes records its checkpoint's hash: one
        // without it is hand-made, and pairing any head with it would be a guess.
        if source_sha256.is_empty() {
            return Err(Error::Invalid(format!(
                "these {arch} weights do not record the checkpoint they were converted from \
                 (no source_sha256), so no model can be checked against them: convert the \
                 checkpoint again with `sortwise convert`"
            )));
        }
        // A shared link names the checkpoint by a prefix of its hash (`SHA_PREFIX` digits).
        if !source_sha256.starts_with(mine.as_str()) {
            // The weights' hash comes from a file: cut by characters, since a byte index can
            // fall inside a multi-byte character.
            return Err(Error::Invalid(format!(
                "this model was trained on other {arch} weights (source sha256 {}…, these are {}…)",
                truncate_chars(mine, 12),
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
        m.meta.backbone_source_sha256 = "x€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€".into();
        let e = Model::from_bytes(&m.to_bytes().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("('x€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€')")
                && e.contains("not 16 to 64 lowercase hex digits"),
            "{e}"
        );
        // A model built in code is checked the same way when it meets a backbone.
        let e = m
            .check_backbone(Arch::Resnet18, &"cd".repeat(32))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be checked against the backbone"), "{e}");
        // The weights' hash comes from a file too.
        let e = model()
            .check_backbone(Arch::Resnet18, "é€ü😀".repeat(9).as_str())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("other resnet18 weights") && e.contains("é€ü😀é€ü😀é€ü😀…"),
            "{e}"
        );
        assert_eq!(truncate_chars("ab€d", 3), "ab€");
        assert_eq!(truncate_chars("ab", 3), "ab");
    }

    #[test]
    fn empty_or_malformed_backbone_hashes_are_refused() {
        for (sha, expected) in [
            ("", "its backbone source sha256 is empty"),
            (
                "ABABABABABABABABAB",
                "('ABABABABABABABABAB') is not 16 to 64",
            ),
            ("abababababababa", "not 16 to 64 lowercase hex digits"),
            (&"ab".repeat(33), "not 16 to 64 lowercase hex digits"),
            ("abababababababag", "not 16 to 64 lowercase hex digits"),
            ("abababab abababab", "not 16 to 64 lowercase hex digits"),
        ] {
            let mut m = model();
            m.meta.backbone_source_sha256 = sha.to_string();
            let e = Model::from_bytes(&m.to_bytes().unwrap())
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("not a usable .sortwise model file: ") && e.contains(expected),
                "{sha:?}: {e}"
            );
            // An unparsed model with such a hash never passes the backbone check.
            assert!(m.check_backbone(Arch::Resnet18, sha).is_err(), "{sha:?}");
            assert!(m.check_backbone(Arch::Resnet18, &"ab".repeat(32)).is_err());
        }
        // A link's prefix of the checkpoint's hash is a hash too, and pairs with it.
        let mut m = model();
        m.meta.backbone_source_sha256 = "ab".repeat(8);
        let back = Model::from_bytes(&m.to_bytes().unwrap()).unwrap();
        back.check_backbone(Arch::Resnet18, &"ab".repeat(32))
            .unwrap();
        let e = back
            .check_backbone(Arch::Resnet18, &"cd".repeat(32))
            .unwrap_err()
            .to_string();
        assert!(e.contains("other resnet18 weights"), "{e}");
        // Weights that do not record their checkpoint cannot vouch for any model.
        let e = model()
            .check_backbone(Arch::Resnet18, "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("do not record the checkpoint"), "{e}");
    }

    /// `model()`'s tensors under the metadata `meta`, which need not fit them.
    fn with_meta(meta: &ModelMeta) -> Vec<u8> {
        let bytes = model().to_bytes().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut info = header.metadata().clone().unwrap();
        info.insert("sortwise".into(), serde_json::to_string(meta).unwrap());
        safetensors::serialize(st.tensors(), Some(info)).unwrap()
    }

    #[test]
    fn class_count_and_label_lengths_are_capped_before_any_work_per_label() {
        let mut meta = model().meta;
        // 200,000 labels took 57 s to refuse (a quadratic duplicate check); each is a
        // duplicate here, so only the cap can refuse them before that work.
        meta.labels = vec!["glass".to_string(); 200_000];
        let e = Model::from_bytes(&with_meta(&meta))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("it has 200000 classes; sortwise reads at most 1000"),
            "{e}"
        );
        meta.labels = vec!["a".into(), "b".repeat(64 * 1024)];
        let e = Model::from_bytes(&with_meta(&meta))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("class name 1 is 65536 bytes long; a class name can be at most 100"),
            "{e}"
        );
        // Within the byte cap but over the character limit: the label rule's own message.
        meta.labels = vec!["a".into(), "é".repeat(MAX_LABEL_CHARS + 1)];
        let e = Model::from_bytes(&with_meta(&meta))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 100 characters"), "{e}");
        // The head's shape is compared before the names are read: duplicates of the wrong
        // count are refused by their shape.
        meta.labels = vec!["a".to_string(); 3];
        let e = Model::from_bytes(&with_meta(&meta))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'weight' has shape [2, 512], expected [3, 512]"),
            "{e}"
        );
    }

    #[test]
    fn the_class_cap_itself_is_allowed() {
        let mut m = model();
        m.meta.labels = (0..MAX_CLASSES).map(|c| format!("class {c}")).collect();
        m.weight = vec![0.25; MAX_CLASSES * 512];
        m.bias = vec![0.0; MAX_CLASSES];
        let back = Model::from_bytes(&m.to_bytes().unwrap()).unwrap();
        assert_eq!(back.meta.labels.len(), MAX_CLASSES);
        m.meta.labels.push("one more".into());
        m.weight.extend([0.0; 512]);
        m.bias.push(0.0);
        let e = Model::from_bytes(&m.to_bytes().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("1001 classes"), "{e}");
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
            (vec!["a", "a"], "class name 'a' appears twice"),
            (vec!["a", "b", "c", "b"], "class name 'b' appears twice"),
            (
                vec!["a", "b\u{7}"],
                "class name 1 ('b\\u{7}') is refused: a class name cannot contain control characters",
            ),
            (
                vec!["a", " b"],
                "class name 1 (' b') has surrounding spaces",
            ),
            (vec!["a", ""], "cannot be empty"),
            (
                vec!["gla\u{202E}ss", "b"],
                "class name 0 ('gla\\u{202e}ss') is refused: a class name cannot contain the \
                 text-direction control U+202E",
            ),
            (
                vec!["a", "a\u{200B}"],
                "a class name cannot contain the invisible character U+200B",
            ),
            (vec!["a"], "fewer than two classes (1)"),
            (vec![], "fewer than two classes (0)"),
        ] {
            let mut m = model();
            m.meta.labels = labels.iter().map(|l| l.to_string()).collect();
            m.weight = vec![0.25; labels.len() * 512];
            m.bias = vec![0.0; labels.len()];
            let e = Model::from_bytes(&m.to_bytes().unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{labels:?}: {e}");
        }
        // Joined emoji and flag tags are names, not hidden text.
        let mut m = model();
        m.meta.labels = vec![
            "👩\u{200D}🔬".into(),
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}".into(),
        ];
        let back = Model::from_bytes(&m.to_bytes().unwrap()).unwrap();
        assert_eq!(back.meta.labels, m.meta.labels);
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
