//! One ONNX file with the whole classifier: the backbone as sortwise runs it (BatchNorm folded
//! into the convolutions, a fine-tuned last stage included), the head, and the calibrated
//! softmax, so onnxruntime anywhere (Python on a Raspberry Pi, C#, JS) gives the probabilities
//! the page gives.
//!
//! - Input `input`: float `[N, 3, 224, 224]`, the normalised photo (the preprocessing is in the
//!   file's metadata, `preprocessing`, and in docs/CLI.md, "Export to ONNX").
//! - Output `probs`: float `[N, classes]` = `Softmax(logits / T)`, classes in the order of the
//!   metadata's `labels`.
//! - Nodes: `Conv` (with bias; depthwise as `group`), `Relu`, `Clip(0, 6)` for ReLU6, `MaxPool`,
//!   `Add`, `GlobalAveragePool`, `Flatten`, `Gemm`, `Div`, `Softmax`, and with f16 weights a
//!   `Cast` to float after each weight; opset 17, IR version 8 (onnxruntime 1.12 and later).
//! - Weights f32, or f16 ([`Dtype::F16`], half the file): the convolution weights are stored
//!   as float16 and cast to float32 inside the graph, so every operator still computes in f32
//!   (onnxruntime's CPU provider has no f16 kernels for most of them; it folds the casts once,
//!   when the session is created). Biases, the head and the temperature stay f32.
//!
//! The protobuf types are prost's code for ONNX's official `onnx.proto` (vendored beside this
//! file, ONNX 1.20.0's), generated once by `scripts/onnx-proto-gen` (pure Rust: protox parses
//! the .proto, so no protoc is needed) and committed as `onnx.rs`.
//!
//! Nothing here touches the file system: [`export`] returns the bytes, for the CLI
//! (`sortwise export --format onnx`) to write and the page to download.

mod graph;

/// prost's types for `onnx.proto` (generated; see the module comment).
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    rustdoc::all,
    unreachable_pub,
    dead_code
)]
pub mod proto {
    include!("onnx.rs");
}

use prost::Message;
use serde_json::json;

use crate::arch::Arch;
use crate::backbone::{Backbone, Net, StageWeights};
use crate::error::{Error, Result};
use crate::formats::model_file::Model;
use crate::preprocess::{CROP, Fit, MEAN, RESIZE, STD};

/// The operator set the graph is written for (`ai.onnx`).
pub const OPSET: i64 = 17;
/// The IR version that goes with [`OPSET`] (ONNX 1.12).
pub const IR_VERSION: i64 = 8;
/// Name of the graph's input.
pub const INPUT: &str = "input";
/// Name of the graph's output.
pub const OUTPUT: &str = "probs";

/// How the backbone's convolution weights are stored in the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// float32 everywhere.
    #[default]
    F32,
    /// float16 convolution weights, cast to float32 in the graph: half the file.
    F16,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Dtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "float32" => Ok(Dtype::F32),
            "f16" | "float16" => Ok(Dtype::F16),
            _ => Err(Error::Invalid(format!(
                "unknown ONNX weight type '{s}': expected f32 or f16"
            ))),
        }
    }
}

/// What [`export`] writes besides the model itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    pub dtype: Dtype,
    /// `producer_name` and the `producer` metadata: "sortwise" and this build's version.
    pub producer_version: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            dtype: Dtype::F32,
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

impl ExportOptions {
    pub fn with_dtype(dtype: Dtype) -> Self {
        ExportOptions {
            dtype,
            ..ExportOptions::default()
        }
    }
}

/// The whole classifier as an ONNX file: `backbone` (folded or not: BatchNorm is folded here
/// as the engine folds it), with `stage` (the fine-tuned last stage of `model`, as
/// `Model::from_bytes_with_stage` gives it) in place of the pretrained one, then `model`'s head
/// and `Softmax(logits / temperature)`.
///
/// The caller checks that `model` was trained on this backbone (`Model::check_backbone`, which
/// needs the weights' source hash); this checks the architecture and the shapes. Weights are
/// read back asynchronously, so this runs on any device, WebGPU in a browser included; natively,
/// block on it (`pollster::block_on`).
pub async fn export(
    backbone: &Backbone,
    model: &Model,
    stage: Option<&StageWeights>,
    options: &ExportOptions,
) -> Result<Vec<u8>> {
    let arch = backbone.arch;
    check_model(arch, model)?;
    // A folded copy with the fine-tuned stage in it: cloning a module shares its tensors, and
    // folding an already folded backbone changes nothing.
    let net = match &backbone.net {
        Net::ResNet(m) => Net::ResNet(m.clone()),
        Net::EfficientNet(m) => Net::EfficientNet(m.clone()),
    };
    let mut folded = Backbone { arch, net }.fold_batchnorm();
    if let Some(w) = stage.filter(|w| !w.tensors.is_empty()) {
        folded.load_last_stage(w)?;
    }
    let has_stage = stage.is_some_and(|w| !w.tensors.is_empty());
    let graph = graph::build(&folded, model, options.dtype).await?;
    let producer = format!("sortwise {}", options.producer_version);
    let metadata = metadata(model, has_stage, options.dtype, &producer);
    let doc = format!(
        "Classifier of {} classes ({}) on {arch}{}: input '{INPUT}' float [N, 3, 224, 224] \
         normalised (metadata 'preprocessing'), output '{OUTPUT}' float [N, {}] = \
         softmax(logits / {}). Made by {producer}.",
        model.meta.labels.len(),
        model.meta.labels.join(", "),
        if has_stage {
            " with a fine-tuned last stage"
        } else {
            ""
        },
        model.meta.labels.len(),
        model.meta.temperature,
    );
    let proto = proto::ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("sortwise".into()),
        producer_version: Some(options.producer_version.clone()),
        domain: Some("org.sortwise".into()),
        model_version: Some(1),
        doc_string: Some(doc),
        graph: Some(graph),
        metadata_props: metadata
            .into_iter()
            .map(|(k, v)| proto::StringStringEntryProto {
                key: Some(k.into()),
                value: Some(v),
            })
            .collect(),
        ..Default::default()
    };
    Ok(proto.encode_to_vec())
}

fn check_model(arch: Arch, model: &Model) -> Result<()> {
    let meta = &model.meta;
    let classes = meta.labels.len();
    if meta.arch != arch {
        return Err(Error::Invalid(format!(
            "this model was trained on {}, but the backbone is {arch}",
            meta.arch
        )));
    }
    if meta.dim != arch.feature_dim()
        || model.bias.len() != classes
        || model.weight.len() != classes * meta.dim
    {
        return Err(Error::Invalid(format!(
            "the model's head ({} values, {} biases, {classes} labels) does not fit {arch}",
            model.weight.len(),
            model.bias.len()
        )));
    }
    if !(meta.temperature > 0.0 && meta.temperature.is_finite()) {
        return Err(Error::Invalid(format!(
            "the model's temperature is {}, not a positive number",
            meta.temperature
        )));
    }
    Ok(())
}

/// The documented preprocessing, as the engine's `preprocess::eval_tensor` does it.
pub fn preprocessing(fit: Fit) -> serde_json::Value {
    // The f32 constants as the decimals they were written as (0.485, not 0.48500001430511475):
    // a float32 array of these is bit for bit the engine's.
    let decimal = |v: [f32; 3]| v.map(|x| x.to_string().parse::<f64>().unwrap_or(f64::from(x)));
    let common = json!({
        "decode": "RGB, 8 bits per channel; EXIF orientation applied; transparency composited on white",
        "scale": "divide by 255",
        "mean": decimal(MEAN),
        "std": decimal(STD),
        "channels": "RGB",
        "layout": "NCHW",
        "dtype": "float32",
        "input": INPUT,
    });
    let mut v = match fit {
        Fit::Crop => json!({
            "fit": fit.to_string(),
            "resize": RESIZE,
            "crop": CROP,
            "resample": "bilinear, antialiased (Pillow Image.BILINEAR)",
            "steps": [
                format!("resize so the shorter side is {RESIZE}: the longer side becomes floor({RESIZE} * long / short)"),
                format!("center crop {CROP}x{CROP}: offsets round((side - {CROP}) / 2), halves to even"),
                "x / 255, then (x - mean) / std per channel",
            ],
        }),
        Fit::Letterbox => json!({
            "fit": fit.to_string(),
            "size": CROP,
            "resample": "bilinear, antialiased (Pillow Image.BILINEAR)",
            "fill": MEAN.map(|m| (m * 255.0).round() as u8),
            "steps": [
                format!("resize so the longer side is {CROP}: each side round(side * {CROP} / long), at least 1"),
                format!("paste at ((({CROP} - width) // 2, ({CROP} - height) // 2)) on a {CROP}x{CROP} image of the fill colour"),
                "x / 255, then (x - mean) / std per channel",
            ],
        }),
    };
    if let (Some(v), Some(c)) = (v.as_object_mut(), common.as_object()) {
        v.extend(c.clone());
    }
    v
}

/// `metadata_props`, in a fixed order.
fn metadata(
    model: &Model,
    has_stage: bool,
    dtype: Dtype,
    producer: &str,
) -> Vec<(&'static str, String)> {
    let meta = &model.meta;
    vec![
        ("labels", json!(meta.labels).to_string()),
        ("arch", meta.arch.name().to_string()),
        ("fit", meta.fit.to_string()),
        ("preprocessing", preprocessing(meta.fit).to_string()),
        ("temperature", json!(meta.temperature).to_string()),
        (
            "output",
            format!("{OUTPUT} = softmax(logits / temperature)"),
        ),
        ("fine_tuned_stage", has_stage.to_string()),
        ("weights_dtype", dtype.name().to_string()),
        (
            "backbone_source_sha256",
            meta.backbone_source_sha256.clone(),
        ),
        ("producer", producer.to_string()),
    ]
}
