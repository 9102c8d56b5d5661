//! `sortwise export --format onnx`: a `.sortwise` model and its backbone as one ONNX file
//! (`crate::formats::onnx`), which onnxruntime runs anywhere with the same probabilities.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::{load_backbone, read, write_atomically};
use crate::device;
use crate::error::Result;
use crate::formats::model_file::Model;
use crate::formats::onnx::{self, Dtype, ExportOptions};
use crate::formats::weights;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// One ONNX file: backbone, head and calibrated softmax (opset 17).
    Onnx,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DtypeArg {
    F32,
    F16,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "onnx")]
    format: Format,
    /// The trained .sortwise model (with its fine-tuned stage, if it has one).
    #[arg(long)]
    model: PathBuf,
    /// The backbone it was trained on: web weight file, .pth, or PyTorch-named .safetensors.
    #[arg(long)]
    weights: PathBuf,
    /// Where to write the .onnx file.
    #[arg(long)]
    out: PathBuf,
    /// How the backbone's convolution weights are stored: f16 halves the file (computed in f32).
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DtypeArg,
}

pub fn export(args: &ExportArgs) -> Result<Value> {
    let started = Instant::now();
    let Format::Onnx = args.format;
    let (model, stage) = Model::from_bytes_with_stage(&read(&args.model)?)?;
    // The CPU: the weights are only read, and the file is the same from any device.
    let cpu = device::cpu("export");
    let (backbone, source_sha) = load_backbone(model.meta.arch, &args.weights, &cpu.device)?;
    model.check_backbone(backbone.arch, &source_sha)?;
    let dtype = match args.dtype {
        DtypeArg::F32 => Dtype::F32,
        DtypeArg::F16 => Dtype::F16,
    };
    let options = ExportOptions::with_dtype(dtype);
    let bytes = pollster::block_on(onnx::export(&backbone, &model, stage.as_ref(), &options))?;
    write_atomically(&args.out, &bytes)?;
    Ok(json!({
        "format": "onnx",
        "out": args.out.display().to_string(),
        "bytes": bytes.len(),
        "sha256": weights::sha256_hex(&bytes),
        "dtype": dtype.name(),
        "arch": model.meta.arch.name(),
        "labels": model.meta.labels,
        "fit": model.meta.fit,
        "temperature": model.meta.temperature,
        "fine_tuned_stage": stage.is_some(),
        "opset": onnx::OPSET,
        "ir_version": onnx::IR_VERSION,
        "input": onnx::INPUT,
        "output": onnx::OUTPUT,
        "preprocessing": onnx::preprocessing(model.meta.fit),
        "seconds": started.elapsed().as_secs_f64(),
    }))
}
