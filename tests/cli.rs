//! The CLI contract: JSON on stdout, per-file errors, exit codes.
#![cfg(feature = "cli")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use common::*;
use serde_json::Value;
use sortwise::Arch;
use sortwise::formats::weights::{self, StorageDtype};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn sortwise(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sortwise"))
        .args(args)
        .output()
        .expect("run sortwise");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `sortwise embed --arch ARCH --weights W [--backend B] IMAGES...`
fn embed(
    arch: &str,
    weights: &Path,
    backend: Option<&str>,
    images: &[&Path],
) -> (i32, Value, String) {
    let mut args = vec![
        "embed",
        "--arch",
        arch,
        "--weights",
        weights.to_str().unwrap(),
    ];
    if let Some(b) = backend {
        args.extend(["--backend", b]);
    }
    args.extend(images.iter().map(|p| p.to_str().unwrap()));
    sortwise(&args)
}

/// ResNet-18 with the reference's pseudo-random weights as a web file (f16) and as a
/// PyTorch-named safetensors file, in a fresh temp dir.
fn resnet18_files() -> (tempdir::Dir, PathBuf, PathBuf) {
    let dir = tempdir::Dir::new("cli");
    let r: Reference =
        serde_json::from_slice(&std::fs::read(fixtures().join("reference/resnet18.json")).unwrap())
            .unwrap();
    let bn = std::fs::read(fixtures().join("reference/resnet18_bn.safetensors")).unwrap();
    let torch = torch_safetensors(&r, &bn);
    let torch_path = dir.path().join("resnet18_torch.safetensors");
    std::fs::write(&torch_path, &torch).unwrap();
    let backbone = weights::load_torch_safetensors(Arch::Resnet18, torch, &Device::flex()).unwrap();
    let web = weights::save_web(&backbone, StorageDtype::F32, "test").unwrap();
    let web_path = dir.path().join("resnet18.safetensors");
    std::fs::write(&web_path, web).unwrap();
    (dir, torch_path, web_path)
}

mod tempdir {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "sortwise-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn logits_and_embed_follow_the_contract() {
    let (_dir, _, web) = resnet18_files();
    let img = fixtures().join("images/glass7_256.png");
    let img = img.to_str().unwrap();
    let w = web.to_str().unwrap();

    let (code, json, stderr) = sortwise(&[
        "logits",
        "--arch",
        "resnet18",
        "--weights",
        w,
        "--backend",
        "cpu",
        img,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["arch"], "resnet18");
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["file"], img);
    let logits: Vec<f32> = serde_json::from_value(images[0]["logits"].clone()).unwrap();
    assert_eq!(logits.len(), 1000);
    let r: Reference =
        serde_json::from_slice(&std::fs::read(fixtures().join("reference/resnet18.json")).unwrap())
            .unwrap();
    assert!(max_abs_diff(&logits, &r.logits[0]) <= 1e-3);

    let img_path = Path::new(img);
    let (code, json, stderr) = embed("resnet18", &web, Some("cpu"), &[img_path, img_path]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["dim"], 512);
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[1]["embedding"].as_array().unwrap().len(), 512);
}

#[test]
fn convert_then_info_and_bad_inputs() {
    let (dir, torch, _) = resnet18_files();
    let out = dir.path().join("converted.safetensors");
    let (code, json, stderr) = sortwise(&[
        "convert",
        "--arch",
        "resnet18",
        "--input",
        torch.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--dtype",
        "f16",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["dtype"], "f16");
    // torchvision counts 11,689,512 trainable values; BatchNorm running statistics add 9,600.
    assert_eq!(json["params"], 11_699_112);
    let src_sha = weights::sha256_hex(&std::fs::read(&torch).unwrap());
    assert_eq!(json["source_sha256"], src_sha.as_str());

    let (code, info, _) = sortwise(&["info", out.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(info["arch"], "resnet18");
    assert_eq!(info["dtype"], "f16");
    assert_eq!(info["source_sha256"], src_sha.as_str());
    let file_sha = weights::sha256_hex(&std::fs::read(&out).unwrap());
    assert_eq!(info["sha256"], file_sha.as_str());

    // Wrong architecture: fatal, exit 2, message names both.
    let glass = fixtures().join("images/glass7_256.png");
    let (code, json, stderr) = embed("resnet50", &out, Some("cpu"), &[&glass]);
    assert_eq!(code, 2);
    assert_eq!(json, Value::Null, "nothing on stdout for a fatal error");
    assert!(
        stderr.contains("resnet50") && stderr.contains("resnet18"),
        "{stderr}"
    );

    // An undecodable file among good ones: reported in its entry, the others still embedded.
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let good = fixtures().join("images/metal15_256.png");
    let (code, json, stderr) = embed("resnet18", &out, Some("cpu"), &[&bad, &good]);
    assert_eq!(code, 1, "{stderr}");
    let images = json["images"].as_array().unwrap();
    assert!(
        images[0]["error"].as_str().unwrap().contains("corrupt"),
        "{json}"
    );
    assert!(images[0].get("embedding").is_none());
    assert_eq!(images[1]["embedding"].as_array().unwrap().len(), 512);

    // Unknown arch and missing file: clear messages.
    let (code, _, stderr) = sortwise(&[
        "info",
        dir.path().join("nope.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("nope.safetensors"), "{stderr}");
    let (code, _, stderr) = sortwise(&["logits", "--arch", "vgg16", "--weights", "x", "y.jpg"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("vgg16"), "{stderr}");
}

#[test]
fn wgpu_backend_fails_clearly_or_works() {
    let (_dir, _, web) = resnet18_files();
    let img = fixtures().join("images/glass7_256.png");
    let (code, json, stderr) = embed("resnet18", &web, Some("wgpu"), &[&img]);
    if code == 0 {
        assert_eq!(json["backend"], "webgpu");
    } else {
        assert_eq!(code, 2);
        assert!(stderr.contains("no usable GPU"), "{stderr}");
    }
    // auto always produces an answer, on whichever backend it found.
    let (code, json, stderr) = embed("resnet18", &web, None, &[&img]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("backend"), "{stderr}");
    assert_eq!(
        json["images"][0]["embedding"].as_array().unwrap().len(),
        512
    );
}

/// `root/<class>/` with the first `n` photos of each class from trashnet-mini's `split`.
fn class_dirs(root: &Path, split: &str, classes: &[&str], n: usize) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/trashnet-mini")
        .join(split);
    for class in classes {
        let dst = root.join(class);
        std::fs::create_dir_all(&dst).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(src.join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.into_iter().take(n) {
            std::fs::copy(&f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
}

/// `sortwise eval` of `model` on the class folders in `data`, on the CPU backend.
fn eval_cpu(model: &Path, weights: &Path, data: &Path) -> (i32, Value, String) {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    sortwise(&[
        "eval",
        "--model",
        &s(model),
        "--weights",
        &s(weights),
        "--data",
        &s(data),
        "--backend",
        "cpu",
    ])
}

#[test]
fn train_eval_predict_on_class_folders() {
    let dir = tempdir::Dir::new("train");
    let (data, val) = (dir.path().join("data"), dir.path().join("val"));
    class_dirs(&data, "train", &["glass", "paper"], 10);
    class_dirs(&val, "val", &["glass", "paper"], 5);
    std::fs::write(data.join("paper/corrupt.jpg"), b"\xff\xd8\xff truncated").unwrap();
    let pth = lite0_pth();
    let model = dir.path().join("m.sortwise");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (code, json, stderr) = sortwise(&[
        "train",
        "--arch",
        "efficientnet_lite0",
        "--weights",
        &s(&pth),
        "--data",
        &s(&data),
        "--val",
        &s(&val),
        "--epochs",
        "40",
        "--augment",
        "1",
        "--backend",
        "cpu",
        "--out",
        &s(&model),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["labels"], serde_json::json!(["glass", "paper"]));
    assert_eq!(json["train_size"], 20);
    assert_eq!(json["val_size"], 10);
    assert!(json["val_accuracy"].as_f64().unwrap() >= 0.7, "{json}");
    assert_eq!(json["skipped"].as_array().unwrap().len(), 1);
    assert!(
        json["skipped"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("corrupt.jpg")
    );
    assert!(json["epochs"].as_u64().unwrap() >= 1);
    assert!(model.exists());
    // Refit by default: on the 20 training and 10 validation photos, for the best epoch count.
    assert_eq!(json["refit"], true, "{json}");
    assert_eq!(json["refit_epochs"], json["best_epoch"]);
    assert_eq!(json["refit_size"], 30);
    assert!(
        stderr.contains("refit on training + validation photos"),
        "{stderr}"
    );
    let meta = |m: &Path| {
        sortwise::formats::model_file::Model::from_bytes(&std::fs::read(m).unwrap())
            .unwrap()
            .meta
    };
    let m = meta(&model);
    assert!(m.config.refit && m.report.as_ref().unwrap().refit);
    assert_eq!(
        m.report.unwrap().refit_epochs,
        Some(json["best_epoch"].as_u64().unwrap() as usize)
    );

    let (code, json_eval, stderr) = eval_cpu(&model, &pth, &val);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json_eval["n"], 10);
    assert_eq!(json_eval["confusion"].as_array().unwrap().len(), 2);
    assert!(json_eval["per_class"]["glass"]["recall"].is_number());
    assert!(json_eval["accuracy"].as_f64().unwrap() >= 0.7);

    // --no-refit keeps the held-out run's model: the same summary (that run is the same), and
    // `eval` on the validation folder reproduces its validation numbers, which the refit model,
    // having trained on those photos, beats on loss.
    let held = dir.path().join("held.sortwise");
    let (code, held_json, stderr) = sortwise(&[
        "train",
        "--arch",
        "efficientnet_lite0",
        "--weights",
        &s(&pth),
        "--data",
        &s(&data),
        "--val",
        &s(&val),
        "--epochs",
        "40",
        "--augment",
        "1",
        "--backend",
        "cpu",
        "--no-refit",
        "--out",
        &s(&held),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(held_json["refit"], false);
    assert!(held_json["refit_epochs"].is_null());
    for k in ["val_accuracy", "val_loss", "best_epoch", "confusion"] {
        assert_eq!(held_json[k], json[k], "{k}");
    }
    assert!(!meta(&held).config.refit);
    let (_, held_eval, _) = eval_cpu(&held, &pth, &val);
    assert_eq!(held_eval["accuracy"], json["val_accuracy"]);
    let loss = |v: &Value, k: &str| v[k].as_f64().unwrap();
    // eval predicts with the calibration the run fitted on these photos: its loss is the
    // calibrated validation loss.
    let calibrated = held_json["calibration"]["lossAfter"].as_f64().unwrap();
    assert!(
        (loss(&held_eval, "loss") - calibrated).abs() < 1e-4,
        "{held_eval} vs {held_json}"
    );
    assert!(calibrated <= loss(&json, "val_loss") + 1e-9);
    assert!(
        loss(&json_eval, "loss") < loss(&held_eval, "loss"),
        "refit {json_eval} vs held-out {held_eval}"
    );

    let photo = val
        .join("glass")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = Command::new(env!("CARGO_BIN_EXE_sortwise"))
        .args([
            "predict",
            "--model",
            &s(&model),
            "--weights",
            &s(&pth),
            "--backend",
            "cpu",
        ])
        .args(["--threshold", "0.999999", &s(&photo)])
        .output()
        .unwrap();
    assert!(out.status.success());
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["label"], "unsure", "{line}");
    assert_eq!(line["unsure"], true);
    let p: f64 = line["probs"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-4);

    // The calibration the model predicts with is in the summary.
    let t = json["calibration"]["temperature"].as_f64().unwrap();
    assert!(t > 0.0, "{json}");
    assert!(json["calibration"]["eceAfter"].as_f64().is_some(), "{json}");

    // Explain: the prediction, 7×7 maps for both classes, and the photo with the map over it.
    let heat = dir.path().join("heat.png");
    let (model_arg, pth_arg, heat_arg, photo_arg) = (s(&model), s(&pth), s(&heat), s(&photo));
    let explain = |extra: &[&str]| {
        let mut args = vec!["explain", "--model", &model_arg, "--weights", &pth_arg];
        args.extend(["--backend", "cpu", "--out", &heat_arg]);
        args.extend(extra);
        args.push(&photo_arg);
        sortwise(&args)
    };
    let (code, e, stderr) = explain(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        ["glass", "paper"].contains(&e["label"].as_str().unwrap()),
        "{e}"
    );
    assert_eq!(e["class"], e["probs"][0]["label"]);
    assert_eq!(e["heatmap"]["width"], 7);
    assert_eq!(e["heatmap"]["maps"].as_array().unwrap().len(), 2);
    assert_eq!(e["heatmap"]["maps"][1].as_array().unwrap().len(), 49);
    let drawn = image::open(&heat).unwrap();
    let photo_img = image::open(&photo).unwrap();
    assert_eq!(drawn.width(), photo_img.width());
    assert_ne!(
        drawn.to_rgb8(),
        photo_img.to_rgb8(),
        "the map is drawn over the photo"
    );
    let (code, _, stderr) = explain(&["--class", "metal"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("'metal' is not a class"), "{stderr}");

    // Model against another backbone: refused.
    let (code, _, stderr) = sortwise(&[
        "eval",
        "--model",
        &s(&model),
        "--weights",
        &s(&dir.path().join("none.pth")),
        "--data",
        &s(&val),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("none.pth"), "{stderr}");

    // One class: a clear refusal, nothing written.
    let one = dir.path().join("one");
    class_dirs(&one, "train", &["metal"], 3);
    let model2 = dir.path().join("m2.sortwise");
    let (code, _, stderr) = sortwise(&[
        "train",
        "--arch",
        "efficientnet_lite0",
        "--weights",
        &s(&pth),
        "--data",
        &s(&one),
        "--backend",
        "cpu",
        "--out",
        &s(&model2),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("only one class"), "{stderr}");
    assert!(!model2.exists());
}

/// `--finetune-last`: the summary says so, the model file carries the stage, and `eval` on the
/// validation folder (the backbone with the stored stage put back) agrees with training's
/// validation numbers. A bad `--l2sp` is refused before any image is read.
#[test]
fn train_finetune_last_then_eval_uses_the_stage() {
    let dir = tempdir::Dir::new("finetune");
    let (data, val) = (dir.path().join("data"), dir.path().join("val"));
    class_dirs(&data, "train", &["glass", "paper"], 6);
    class_dirs(&val, "val", &["glass", "paper"], 4);
    let pth = lite0_pth();
    let model = dir.path().join("ft.sortwise");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train".to_string(),
            "--arch".into(),
            "efficientnet_lite0".into(),
            "--weights".into(),
            s(&pth),
            "--data".into(),
            s(&data),
            "--val".into(),
            s(&val),
            "--epochs".into(),
            "20".into(),
            "--finetune-last".into(),
            "--finetune-epochs".into(),
            "2".into(),
            // The held-out run's model, so `eval` on the validation folder must match it.
            "--no-refit".into(),
            "--backend".into(),
            "cpu".into(),
            "--out".into(),
            s(&model),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        sortwise(&refs)
    };
    let (code, json, stderr) = train(&["--l2sp", "0.5"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["finetune_last"], true);
    assert_eq!(json["l2sp"], 0.5);
    assert_eq!(json["finetune"]["epochsRun"], 2, "{json}");
    assert!(stderr.contains("finetune epoch 2/2"), "{stderr}");
    let bytes = std::fs::read(&model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.names().iter().any(|n| n.starts_with("stage.blocks.")));

    let (code, eval, stderr) = eval_cpu(&model, &pth, &val);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(eval["accuracy"], json["val_accuracy"], "{eval} vs {json}");
    let (a, b) = (
        eval["loss"].as_f64().unwrap(),
        json["calibration"]["lossAfter"].as_f64().unwrap(),
    );
    assert!(
        (a - b).abs() < 1e-4,
        "eval loss {a}, training's calibrated validation loss {b}"
    );

    for bad in ["--l2sp=-1", "--l2sp=NaN"] {
        let (code, _, stderr) = train(&[bad]);
        assert_eq!(code, 2);
        assert!(
            stderr.contains("l2sp must be a number from 0 to 10000"),
            "{stderr}"
        );
    }
}

/// `sortwise doctor`: a photo copied into the validation folder is a leak, one copied into the
/// other class a label conflict, both named by file; every class gets its advice.
#[test]
fn doctor_names_the_files() {
    let dir = tempdir::Dir::new("doctor");
    let (data, val) = (dir.path().join("data"), dir.path().join("val"));
    class_dirs(&data, "train", &["glass", "paper"], 10);
    class_dirs(&val, "val", &["glass", "paper"], 3);
    let first = |d: &Path| {
        let mut f: Vec<PathBuf> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        f.sort();
        f.remove(0)
    };
    let glass = first(&data.join("glass"));
    std::fs::copy(&glass, val.join("glass/leaked.jpg")).unwrap();
    std::fs::copy(&glass, data.join("paper/filed-twice.jpg")).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (code, json, stderr) = sortwise(&[
        "doctor",
        "--arch",
        "efficientnet_lite0",
        "--weights",
        &s(&lite0_pth()),
        "--data",
        &s(&data),
        "--val",
        &s(&val),
        "--folds",
        "3",
        "--backend",
        "cpu",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let pairs = json["pairs"].as_array().unwrap();
    let named = |p: &Value, name: &str| {
        [&p["aFile"], &p["bFile"]]
            .iter()
            .any(|f| f.as_str().unwrap().ends_with(name))
    };
    let leak = pairs
        .iter()
        .find(|p| named(p, "leaked.jpg"))
        .expect("the leak");
    assert_eq!(leak["leak"], true, "{leak}");
    assert_eq!(leak["identical"], true);
    let twice = pairs
        .iter()
        .find(|p| named(p, "filed-twice.jpg") && !named(p, "leaked.jpg"))
        .expect("the conflict");
    assert_eq!(twice["conflict"], true, "{twice}");
    assert_eq!(json["folds"], 3);
    assert_eq!(json["classes"].as_array().unwrap().len(), 2);
    assert!(
        json["classes"][0]["boundaryFiles"][0].as_str().is_some(),
        "{json}"
    );
    assert!(json["suspects"].as_array().is_some());
}
