//! The ONNX export (`sortwise::formats::onnx`) runs the same classifier in onnxruntime: for ResNet-18 and
//! ResNet-50 (the parity tests' pseudo-random torchvision-named weights) and the real
//! EfficientNet-Lite0, each with a head trained on trashnet-mini photos and again with a
//! fine-tuned last stage, the exported file's probabilities on onnxruntime (Python, CPU) equal
//! the session's within 1e-4, the preprocessing redone in numpy/Pillow from the documented
//! recipe (tests/onnx_check.py), and so does the Raspberry Pi example (examples/raspberry-pi/).
//! f16 files are checked against a looser bound.
//!
//! Needs Python with onnxruntime, numpy and Pillow (tests/onnx_requirements.txt, which
//! `scripts/setup.sh test` installs into `$SORTWISE_CACHE/onnx-venv`; `SORTWISE_ONNX_PYTHON`
//! names another interpreter). Without it the tests FAIL, saying so, unless
//! `SORTWISE_SKIP_ONNX=1`.
//!
//! The photos are compared as PNGs that sortwise decoded from trashnet-mini's JPEGs: sortwise's
//! JPEG decoder (zune-jpeg) and Pillow's (libjpeg-turbo) may round some pixels differently, so
//! both sides get the same pixels; the checker also reports (not checks) the difference from
//! the original JPEGs decoded by Pillow.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use common::*;
use serde_json::{Value, json};
use sortwise::backbone::Backbone;
use sortwise::formats::model_file::Model;
use sortwise::formats::onnx::{self, Dtype, ExportOptions};
use sortwise::formats::weights::{self, StorageDtype};
use sortwise::preprocess::{self, Fit};
use sortwise::session::{AddOutcome, Options, Session, SharedSession, Split};
use sortwise::trainer::TrainConfig;
use sortwise::{Arch, Error};

/// The bound on |Δprob| for f32 files.
const TOL: f64 = 1e-4;
/// f16 weights change the function itself (each weight rounded to 11 significant bits); the
/// bound is the measured worst case with headroom (see the report in `check`'s output).
const F16_TOL: f64 = 2e-2;

const CLASSES: [&str; 4] = ["glass", "metal", "paper", "plastic"];
/// Training photos per class, and checked photos per class (from `val/`).
const TRAIN_PER_CLASS: usize = 6;
const CHECK_PER_CLASS: usize = 3;

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn trashnet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/trashnet-mini")
}

/// The first `n` photos of `split/class`, by name.
fn photos(split: &str, class: &str, n: usize) -> Vec<PathBuf> {
    let dir = trashnet().join(split).join(class);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.truncate(n);
    files
}

/// A Python with onnxruntime, numpy and Pillow; `None` (skip) only with `SORTWISE_SKIP_ONNX=1`.
fn python() -> Option<PathBuf> {
    let cache = std::env::var("SORTWISE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into()))
                .join(".cache/sortwise")
        });
    let candidates: Vec<PathBuf> = match std::env::var("SORTWISE_ONNX_PYTHON") {
        Ok(p) if !p.is_empty() => vec![PathBuf::from(p)],
        _ => vec![cache.join("onnx-venv/bin/python"), PathBuf::from("python3")],
    };
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", "import onnxruntime, numpy, PIL"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py.clone());
        }
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    if std::env::var("SORTWISE_SKIP_ONNX").is_ok_and(|v| v == "1") {
        eprintln!(
            "SKIPPED: the ONNX export is not checked against onnxruntime (SORTWISE_SKIP_ONNX=1; \
             no Python with onnxruntime among {tried:?})"
        );
        return None;
    }
    panic!(
        "the ONNX export check needs Python with onnxruntime, numpy and Pillow, and none of \
         {tried:?} has them. Run `bash scripts/setup.sh test` (it installs \
         tests/onnx_requirements.txt into $SORTWISE_CACHE/onnx-venv), or point \
         SORTWISE_ONNX_PYTHON at such a Python; SORTWISE_SKIP_ONNX=1 skips this check."
    );
}

/// A backbone and the sha256 its model files name, loadable again (a session takes its own).
struct Source {
    arch: Arch,
    sha256: String,
    /// PyTorch-named safetensors (the random ResNets) or `None` for Lite0's .pth.
    torch: Option<Vec<u8>>,
}

impl Source {
    fn random_resnet(arch: Arch) -> Source {
        let r: Reference = serde_json::from_slice(
            &std::fs::read(fixtures().join(format!("reference/{}.json", arch.name()))).unwrap(),
        )
        .unwrap();
        let bn =
            std::fs::read(fixtures().join(format!("reference/{}_bn.safetensors", arch.name())))
                .unwrap();
        let bytes = torch_safetensors(&r, &bn);
        Source {
            arch,
            sha256: weights::sha256_hex(&bytes),
            torch: Some(bytes),
        }
    }

    fn lite0() -> Source {
        let pth = lite0_pth();
        Source {
            arch: Arch::EfficientnetLite0,
            sha256: weights::sha256_hex(&std::fs::read(&pth).unwrap()),
            torch: None,
        }
    }

    /// Unfolded, as loaded.
    fn load(&self) -> Backbone {
        match &self.torch {
            Some(bytes) => {
                weights::load_torch_safetensors(self.arch, bytes.clone(), &Device::flex()).unwrap()
            }
            None => weights::load_pth(self.arch, &lite0_pth(), &Device::flex()).unwrap(),
        }
    }
}

/// A checked photo: the PNG both sides read, its original JPEG (if any), sortwise's input.
struct Photo {
    png: PathBuf,
    jpeg: Option<PathBuf>,
    bytes: Vec<u8>,
}

/// `val/` photos of each class, decoded by sortwise and saved as PNG under `dir`, plus two
/// non-square crops (portrait and landscape, odd sides) so the resize and crop arithmetic of
/// the documented preprocessing is exercised on more than 150x150 squares.
fn check_photos(dir: &Path) -> Vec<Photo> {
    let png = |img: &image::RgbImage, path: &Path| {
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        std::fs::write(path, &out).unwrap();
        out
    };
    let mut out = Vec::new();
    for class in CLASSES {
        for jpeg in photos("val", class, CHECK_PER_CLASS) {
            let img = preprocess::decode(&std::fs::read(&jpeg).unwrap()).unwrap();
            let path = dir.join(jpeg.with_extension("png").file_name().unwrap());
            out.push(Photo {
                bytes: png(&img, &path),
                png: path,
                jpeg: Some(jpeg),
            });
        }
    }
    let first = out[0].jpeg.clone().unwrap();
    let img = preprocess::decode(&std::fs::read(first).unwrap()).unwrap();
    for (name, (x, y, w, h)) in [
        ("tall.png", (20, 3, 97, 147)),
        ("wide.png", (1, 30, 149, 101)),
    ] {
        let crop = image::imageops::crop_imm(&img, x, y, w, h).to_image();
        let path = dir.join(name);
        out.push(Photo {
            bytes: png(&crop, &path),
            png: path,
            jpeg: None,
        });
    }
    out
}

/// One trained model to export: a session over `source`'s backbone, trained on trashnet-mini.
fn trained_session(source: &Source, fit: Fit, finetune: bool) -> SharedSession {
    let options = Options {
        fit,
        finetune,
        thumbnails: false,
        limit_stage_cache: false,
        ..Options::default()
    };
    let s =
        SharedSession::new(Session::new(source.load(), source.sha256.clone(), options).unwrap());
    for class in CLASSES {
        let files = photos("train", class, TRAIN_PER_CLASS)
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        let out = block(s.add_images(class, files)).unwrap();
        assert!(
            out.iter().all(|o| matches!(o, AddOutcome::Added(_))),
            "{out:?}"
        );
    }
    // Short runs. Head only: a validation split, so the temperature is calibrated (T != 1).
    // With a fine-tuned stage: one head-only epoch, then two fine-tuning epochs without L2-SP
    // and no validation split, so the fine-tuned epoch is the one kept (a validation set may
    // keep the warm start's pretrained stage) and the stage moves (checked below).
    let cfg = TrainConfig {
        epochs: if finetune { 1 } else { 10 },
        batch_size: 8,
        val_split: if finetune { 0.0 } else { 0.25 },
        patience: 0,
        refit: false,
        seed: 3,
        finetune_last: finetune,
        finetune_epochs: 2,
        finetune_lr: Some(1e-3),
        l2sp: 0.0,
        ..TrainConfig::default()
    };
    block(s.train(cfg, &Split::Stratified, &mut async |_| true)).unwrap();
    assert_eq!(s.get().trained().unwrap().has_stage(), finetune);
    s
}

/// The largest |Δ| between the pretrained last stage and the session's fine-tuned one.
fn stage_moved(source: &Source, model_file: &[u8]) -> f32 {
    let (_, stage) = Model::from_bytes_with_stage(model_file).unwrap();
    let tuned = stage.expect("a fine-tuned stage");
    let pretrained = block(source.load().split_last_stage().to_weights()).unwrap();
    assert_eq!(tuned.tensors.len(), pretrained.tensors.len());
    tuned
        .tensors
        .iter()
        .zip(&pretrained.tensors)
        .map(|((_, _, a), (_, _, b))| max_abs_diff(a, b))
        .fold(0.0, f32::max)
}

/// Export `s`'s model (f32 and f16) into `dir` and describe the checker's cases for it.
fn cases(
    name: &str,
    source: &Source,
    s: &SharedSession,
    photos: &[Photo],
    dir: &Path,
) -> Vec<Value> {
    let fit = s.get().options().fit;
    let inputs: Vec<Vec<f32>> = photos
        .iter()
        .map(|p| preprocess::preprocess(&p.bytes, fit).unwrap())
        .collect();
    let (probs, labels) = block(s.probabilities(&inputs)).unwrap();
    assert_eq!(labels, CLASSES);
    let trained = s.get().trained().unwrap().clone();
    let model_file = s.get().export_model("sortwise test").unwrap();
    if trained.has_stage() {
        let moved = stage_moved(source, &model_file);
        // The same head on the pretrained stage predicts measurably otherwise, so the f32
        // bound (1e-4) cannot pass with the pretrained stage in the file.
        let (model, _) = Model::from_bytes_with_stage(&model_file).unwrap();
        let mut pretrained = Session::new(
            source.load(),
            source.sha256.clone(),
            Options {
                fit,
                ..Options::default()
            },
        )
        .unwrap();
        pretrained.set_model(model, None).unwrap();
        let (other, _) = block(SharedSession::new(pretrained).probabilities(&inputs)).unwrap();
        let apart = probs
            .iter()
            .zip(&other)
            .map(|(a, b)| max_abs_diff(a, b))
            .fold(0.0, f32::max);
        eprintln!(
            "{name}: the fine-tuned stage moved by up to {moved:.2e}; with the pretrained \
             stage the probabilities differ by up to {apart:.2e}"
        );
        assert!(
            f64::from(apart) > 10.0 * TOL,
            "{name}: the fine-tuned stage barely changes the probabilities ({apart})"
        );
    }
    let photos_json: Vec<Value> = photos
        .iter()
        .zip(&probs)
        .map(|(p, probs)| json!({"png": p.png, "jpeg": p.jpeg, "probs": probs}))
        .collect();
    let mut out = Vec::new();
    for dtype in [Dtype::F32, Dtype::F16] {
        let bytes = block(
            s.get()
                .export_onnx(&ExportOptions::with_dtype(dtype))
                .unwrap(),
        )
        .unwrap();
        if dtype == Dtype::F32 {
            // The library function on the unfolded backbone and the `.sortwise` file (what the
            // CLI does) writes the very same file as the session.
            let (model, stage) = Model::from_bytes_with_stage(&model_file).unwrap();
            let again = block(onnx::export(
                &source.load(),
                &model,
                stage.as_ref(),
                &ExportOptions::default(),
            ))
            .unwrap();
            assert!(again == bytes, "{name}: export from the file differs");
        }
        let path = dir.join(format!("{name}-{dtype}.onnx"));
        std::fs::write(&path, &bytes).unwrap();
        eprintln!(
            "{name}: {dtype} file {} bytes (temperature {})",
            bytes.len(),
            trained.temperature
        );
        out.push(json!({
            "name": format!("{name} {dtype}"),
            "onnx": path,
            "bytes": bytes.len(),
            "dtype": dtype.name(),
            "tolerance": if dtype == Dtype::F32 { TOL } else { F16_TOL },
            "same_top1": dtype == Dtype::F32,
            "fit": fit.to_string(),
            "arch": source.arch.name(),
            "labels": labels,
            "fine_tuned": trained.has_stage(),
            "temperature": trained.temperature,
            "source_sha256": source.sha256,
            "photos": photos_json,
        }));
    }
    out
}

/// Run tests/onnx_check.py on `cases`; fails the test on any case off its bound.
fn check(python: &Path, dir: &Path, cases: Vec<Value>) -> Value {
    let manifest = dir.join("manifest.json");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/raspberry-pi/sorter.py");
    std::fs::write(
        &manifest,
        serde_json::to_vec_pretty(&json!({ "cases": cases, "example": example })).unwrap(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx_check.py");
    let out = Command::new(python)
        // No __pycache__ beside the checker and the example in the work tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(&script)
        .arg(&manifest)
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("onnx_check.py gave no summary: {stdout}\n{stderr}"));
    assert!(
        out.status.success(),
        "onnxruntime's probabilities differ from sortwise's: {summary:#}"
    );
    summary
}

fn workdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("onnx-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Head-only and fine-tuned models of `source`, f32 and f16, checked in onnxruntime.
fn check_backbone(name: &str, source: &Source, extra: &[(&str, Fit, bool)]) {
    let Some(python) = python() else { return };
    let dir = workdir(name);
    let photos = check_photos(&dir);
    let mut all = Vec::new();
    let runs = [("head", Fit::Crop, false), ("finetuned", Fit::Crop, true)];
    for &(what, fit, finetune) in runs.iter().chain(extra) {
        let s = trained_session(source, fit, finetune);
        all.extend(cases(&format!("{name}-{what}"), source, &s, &photos, &dir));
    }
    let summary = check(&python, &dir, all);
    eprintln!("{name}: {summary}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resnet18_onnx_matches_sortwise() {
    let source = Source::random_resnet(Arch::Resnet18);
    // A letterboxed model too: the other documented preprocessing.
    check_backbone("resnet18", &source, &[("letterbox", Fit::Letterbox, false)]);
}

#[test]
fn resnet50_onnx_matches_sortwise() {
    check_backbone("resnet50", &Source::random_resnet(Arch::Resnet50), &[]);
}

#[test]
fn efficientnet_lite0_onnx_matches_sortwise() {
    check_backbone("efficientnet_lite0", &Source::lite0(), &[]);
}

/// `sortwise export --format onnx` writes what the library does, from a web weight file, and
/// refuses a model trained on other weights. No Python needed.
#[test]
fn cli_export_writes_the_library_file() {
    let source = Source::random_resnet(Arch::Resnet18);
    let dir = workdir("cli");
    let s = trained_session(&source, Fit::Crop, false);
    let model = dir.join("sorter.sortwise");
    std::fs::write(&model, s.get().export_model("test").unwrap()).unwrap();
    let web = dir.join("resnet18.safetensors");
    std::fs::write(
        &web,
        weights::save_web(&source.load(), StorageDtype::F32, &source.sha256).unwrap(),
    )
    .unwrap();
    let out_path = dir.join("sorter.onnx");
    let run = |weights: &Path, dtype: &str| {
        Command::new(env!("CARGO_BIN_EXE_sortwise"))
            .args(["export", "--format", "onnx", "--model"])
            .arg(&model)
            .arg("--weights")
            .arg(weights)
            .arg("--out")
            .arg(&out_path)
            .args(["--dtype", dtype])
            .output()
            .unwrap()
    };
    for dtype in [Dtype::F32, Dtype::F16] {
        let out = run(&web, dtype.name());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let bytes = std::fs::read(&out_path).unwrap();
        assert_eq!(v["format"], "onnx");
        assert_eq!(v["dtype"], dtype.name());
        assert_eq!(v["bytes"], bytes.len());
        assert_eq!(v["labels"], json!(CLASSES));
        assert_eq!(v["opset"], onnx::OPSET);
        assert_eq!(v["fine_tuned_stage"], false);
        let want = block(
            s.get()
                .export_onnx(&ExportOptions::with_dtype(dtype))
                .unwrap(),
        )
        .unwrap();
        assert!(
            bytes == want,
            "the CLI's {dtype} file differs from the session's"
        );
        eprintln!("cli {dtype}: {} bytes", bytes.len());
    }
    // Another checkpoint: refused, and nothing is written.
    std::fs::remove_file(&out_path).unwrap();
    let other = dir.join("other.safetensors");
    std::fs::write(
        &other,
        weights::save_web(&source.load(), StorageDtype::F32, &"ab".repeat(32)).unwrap(),
    )
    .unwrap();
    let out = run(&other, "f32");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("other resnet18 weights"), "{stderr}");
    assert!(!out_path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The file's structure, read back with the same protobuf types: opset, IR version, input and
/// output, metadata, f16 weights behind casts; and a model that does not fit is refused.
#[test]
fn file_structure_and_refusals() {
    use prost::Message;
    use sortwise::formats::onnx::proto;

    let source = Source::random_resnet(Arch::Resnet18);
    let s = trained_session(&source, Fit::Crop, false);
    let read = |dtype| {
        let bytes = block(
            s.get()
                .export_onnx(&ExportOptions::with_dtype(dtype))
                .unwrap(),
        )
        .unwrap();
        (bytes.len(), proto::ModelProto::decode(&bytes[..]).unwrap())
    };
    let (n32, m32) = read(Dtype::F32);
    let (n16, m16) = read(Dtype::F16);
    assert_eq!(m32.ir_version, Some(onnx::IR_VERSION));
    assert_eq!(m32.opset_import[0].version, Some(17));
    assert_eq!(m32.producer_name.as_deref(), Some("sortwise"));
    let meta: std::collections::HashMap<_, _> = m32
        .metadata_props
        .iter()
        .map(|e| (e.key.clone().unwrap(), e.value.clone().unwrap()))
        .collect();
    assert_eq!(meta["labels"], json!(CLASSES).to_string());
    assert_eq!(meta["arch"], "resnet18");
    assert_eq!(meta["backbone_source_sha256"], source.sha256);
    assert_eq!(
        meta["producer"],
        format!("sortwise {}", env!("CARGO_PKG_VERSION"))
    );
    let pre: Value = serde_json::from_str(&meta["preprocessing"]).unwrap();
    assert_eq!(pre["fit"], "crop");
    assert_eq!(pre["resize"], 256);
    assert_eq!(pre["crop"], 224);
    let t: f64 = meta["temperature"].parse().unwrap();
    assert_eq!(t, s.get().trained().unwrap().temperature);
    let g = m32.graph.as_ref().unwrap();
    assert_eq!(g.input[0].name.as_deref(), Some("input"));
    assert_eq!(g.output[0].name.as_deref(), Some("probs"));
    let ops = |g: &proto::GraphProto, op: &str| {
        g.node
            .iter()
            .filter(|n| n.op_type.as_deref() == Some(op))
            .count()
    };
    // ResNet-18: 20 convolutions (17 + 3 downsamples), no BatchNorm left.
    assert_eq!(ops(g, "Conv"), 20);
    assert_eq!(ops(g, "BatchNormalization"), 0);
    assert_eq!(ops(g, "Softmax"), 1);
    assert_eq!(ops(g, "Cast"), 0);
    let g16 = m16.graph.as_ref().unwrap();
    assert_eq!(ops(g16, "Cast"), 20);
    let f16_inits = g16
        .initializer
        .iter()
        .filter(|t| t.data_type == Some(proto::tensor_proto::DataType::Float16 as i32))
        .count();
    assert_eq!(f16_inits, 20);
    eprintln!("resnet18: f32 {n32} bytes, f16 {n16} bytes");
    assert!(n16 < n32 * 52 / 100, "f16 {n16} vs f32 {n32}");

    // A head for another backbone, or of the wrong shape, is refused.
    let (mut model, _) =
        Model::from_bytes_with_stage(&s.get().export_model("test").unwrap()).unwrap();
    let backbone = source.load();
    model.meta.arch = Arch::Resnet50;
    let e = block(onnx::export(
        &backbone,
        &model,
        None,
        &ExportOptions::default(),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("trained on resnet50"), "{e}");
    model.meta.arch = Arch::Resnet18;
    model.bias.pop();
    let e = block(onnx::export(
        &backbone,
        &model,
        None,
        &ExportOptions::default(),
    ))
    .unwrap_err();
    assert!(
        matches!(e, Error::Invalid(_)) && e.to_string().contains("does not fit"),
        "{e}"
    );
    // No model yet: an error before any future.
    let empty = Session::new(source.load(), source.sha256.clone(), Options::default()).unwrap();
    let e = empty
        .export_onnx(&ExportOptions::default())
        .err()
        .expect("no model to export");
    assert!(e.to_string().contains("no model yet"), "{e}");
}
