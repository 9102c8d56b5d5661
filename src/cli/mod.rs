//! The native command line. stdout carries only JSON, so scripts and the benchmark harness can
//! parse it; progress and diagnostics go to stderr.

mod doctor;
mod evaluate;
mod export;
mod folders;
mod train;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::arch::Arch;
use crate::backbone::Backbone;
use crate::device::{self, Backend, BackendChoice};
use crate::error::{Error, Result};
use crate::formats::weights::{self, StorageDtype};
use crate::model::infer::{self, Output};
use crate::preprocess::{self, Fit};
use crate::session::{Options, Session, SharedSession};
use crate::trainer::{Balance, OptimizerKind};

#[derive(Parser)]
#[command(
    name = "sortwise",
    version,
    about = "Pretrained backbones and transfer learning, natively and in the browser"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a .pth (or PyTorch-named .safetensors) checkpoint into the web weight file.
    Convert {
        #[arg(long)]
        arch: Arch,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value = "f32")]
        dtype: StorageDtype,
    },
    /// Print the metadata of a web weight file.
    Info { weights: PathBuf },
    /// ImageNet logits for each image.
    Logits(RunArgs),
    /// Pooled backbone embedding for each image.
    Embed(RunArgs),
    /// Train a classifier head on class folders and write a .sortwise model.
    Train(Box<train::TrainArgs>),
    /// Accuracy, per-class metrics and confusion matrix of a model on class folders.
    Eval(evaluate::EvalArgs),
    /// Predict images with a model: one JSON object per line.
    Predict(evaluate::PredictArgs),
    /// Check a data set: near duplicates, leaks, likely label errors, what each class needs.
    Doctor(Box<doctor::DoctorArgs>),
    /// Why the model decided: class activation maps of one photo, and one drawn over it (PNG).
    Explain(evaluate::ExplainArgs),
    /// Export a model with its backbone as one file that runs anywhere (`--format onnx`).
    Export(export::ExportArgs),
}

#[derive(Args)]
struct RunArgs {
    #[arg(long)]
    arch: Arch,
    /// Web weight file, .pth, or PyTorch-named .safetensors.
    #[arg(long)]
    weights: PathBuf,
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    #[arg(long, default_value_t = Fit::default())]
    fit: Fit,
    #[arg(long, default_value_t = infer::DEFAULT_BATCH)]
    batch: usize,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

impl clap::builder::ValueParserFactory for Arch {
    type Parser = clap::builder::ValueParser;
    fn value_parser() -> Self::Parser {
        clap::builder::ValueParser::new(|s: &str| s.parse::<Arch>().map_err(|e| e.to_string()))
    }
}

macro_rules! from_str_parser {
    ($($t:ty),*) => {$(
        impl clap::builder::ValueParserFactory for $t {
            type Parser = clap::builder::ValueParser;
            fn value_parser() -> Self::Parser {
                clap::builder::ValueParser::new(|s: &str| s.parse::<$t>().map_err(|e| e.to_string()))
            }
        }
    )*};
}
from_str_parser!(BackendChoice, Fit, StorageDtype, OptimizerKind, Balance);

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Write beside the target and rename, so an interrupted run never leaves a truncated file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Load any supported weight file for `arch`, telling the formats apart by content. Also
/// returns the sha256 of the original checkpoint, which trained models record.
pub fn load_backbone(
    arch: Arch,
    path: &Path,
    device: &burn::tensor::Device,
) -> Result<(Backbone, String)> {
    let bytes = read(path)?;
    let is_pth = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pth" | "pt" | "bin")
    );
    if is_pth {
        let sha = weights::sha256_hex(&bytes);
        drop(bytes);
        return Ok((weights::load_pth(arch, path, device)?, sha));
    }
    match weights::read_info(&bytes) {
        Ok(_) => weights::load_web(&bytes, Some(arch), device).map(|(b, i)| (b, i.source_sha256)),
        Err(Error::WeightsFormat(msg)) if msg.contains("no format metadata") => {
            let sha = weights::sha256_hex(&bytes);
            Ok((weights::load_torch_safetensors(arch, bytes, device)?, sha))
        }
        Err(e) => Err(e),
    }
}

/// The device `backend` picks, said on stderr.
fn select_device(backend: BackendChoice) -> Result<device::Selected> {
    let selected = device::select(backend)?;
    eprintln!(
        "sortwise: backend {} ({})",
        selected.backend, selected.reason
    );
    Ok(selected)
}

/// The session a command works in: the backbone `arch` from `weights`, on the device `backend`
/// picks, with `options` as the CLI takes them (no thumbnails, and no stage-input limit: the
/// machine's memory is the limit, not a browser tab's). Also what runs: `cpu` or `webgpu`.
pub(crate) fn open_session(
    arch: Arch,
    weights: &Path,
    backend: BackendChoice,
    options: Options,
) -> Result<(SharedSession, Backend)> {
    let selected = select_device(backend)?;
    let (backbone, source_sha) = load_backbone(arch, weights, &selected.device)?;
    let options = Options {
        thumbnails: false,
        limit_stage_cache: false,
        ..options
    };
    let session = Session::new(backbone, source_sha, options)?;
    Ok((SharedSession::new(session), selected.backend))
}

fn convert(arch: Arch, input: &Path, output: &Path, dtype: StorageDtype) -> Result<Value> {
    let started = Instant::now();
    let source = read(input)?;
    let source_sha256 = weights::sha256_hex(&source);
    drop(source);
    let cpu = device::cpu("conversion");
    let (backbone, _) = load_backbone(arch, input, &cpu.device)?;
    let bytes = weights::save_web(&backbone, dtype, &source_sha256)?;
    write_atomically(output, &bytes)?;
    Ok(json!({
        "arch": arch.name(),
        "dtype": dtype.name(),
        "output": output.display().to_string(),
        "bytes": bytes.len(),
        "params": weights::num_params(&backbone),
        "source_sha256": source_sha256,
        "sha256": weights::sha256_hex(&bytes),
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

fn run_images(args: &RunArgs, output: Output) -> Result<(Value, bool)> {
    let selected = select_device(args.backend)?;
    let backbone = load_backbone(args.arch, &args.weights, &selected.device)?
        .0
        .fold_batchnorm();
    let mut inputs = Vec::new();
    let mut entries: Vec<Value> = Vec::new();
    let mut ok_index = Vec::new();
    let mut any_failed = false;
    for path in &args.images {
        let file = path.display().to_string();
        match read(path).and_then(|b| preprocess::preprocess(&b, args.fit)) {
            Ok(x) => {
                ok_index.push(entries.len());
                inputs.push(x);
                entries.push(json!({ "file": file }));
            }
            Err(e) => {
                eprintln!("sortwise: {file}: {e}");
                any_failed = true;
                entries.push(json!({ "file": file, "error": e.to_string() }));
            }
        }
    }
    let started = Instant::now();
    let rows = pollster::block_on(infer::run(&backbone, &inputs, output, args.batch))?;
    eprintln!(
        "sortwise: {} image(s) in {:.2}s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    let key = match output {
        Output::Features => "embedding",
        Output::Logits => "logits",
        Output::StageInput => "stage_input",
    };
    for (i, row) in ok_index.into_iter().zip(rows) {
        entries[i][key] = json!(row);
    }
    let out = match output {
        Output::Features => json!({
            "arch": args.arch.name(),
            "dim": args.arch.feature_dim(),
            "backend": selected.backend,
            "images": entries,
        }),
        Output::Logits | Output::StageInput => json!({
            "arch": args.arch.name(),
            "backend": selected.backend,
            "images": entries,
        }),
    };
    Ok((out, any_failed))
}

/// Entry point of the `sortwise` binary; returns the process exit code.
pub fn main() -> i32 {
    crate::allocator::keep_freed_memory();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Convert {
            arch,
            input,
            output,
            dtype,
        } => convert(*arch, input, output, *dtype).map(|v| (v, false)),
        // The file's own hash is computed here only, not on every load.
        Command::Info { weights } => read(weights).and_then(|b| {
            let mut info = json!(weights::read_info(&b)?);
            info["sha256"] = json!(weights::sha256_hex(&b));
            Ok((info, false))
        }),
        Command::Logits(args) => run_images(args, Output::Logits),
        Command::Embed(args) => run_images(args, Output::Features),
        Command::Train(args) => train::train(args).map(|v| (v, false)),
        Command::Eval(args) => evaluate::eval(args).map(|v| (v, false)),
        Command::Doctor(args) => doctor::doctor(args).map(|v| (v, false)),
        Command::Explain(args) => evaluate::explain(args).map(|v| (v, false)),
        Command::Export(args) => export::export(args).map(|v| (v, false)),
        Command::Predict(args) => match evaluate::predict(args) {
            // Predict prints its own JSON lines as it goes.
            Ok(failed) => return if failed { 1 } else { 0 },
            Err(e) => Err(e),
        },
    };
    match result {
        Ok((value, partial)) => {
            println!("{value}");
            if partial { 1 } else { 0 }
        }
        Err(e) => {
            eprintln!("sortwise: error: {e}");
            2
        }
    }
}
