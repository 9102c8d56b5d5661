//! The CLI contract: JSON on stdout, per-file errors, exit codes.
#![cfg(feature = "cli")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use common::*;
use serde_json::Value;
use sortwise::Arch;
use sortwise::weights::{self, StorageDtype};

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

    let (code, json, stderr) = sortwise(&[
        "embed",
        "--arch",
        "resnet18",
        "--weights",
        w,
        "--backend",
        "cpu",
        img,
        img,
    ]);
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

    // Wrong architecture: fatal, exit 2, message names both.
    let (code, json, stderr) = sortwise(&[
        "embed",
        "--arch",
        "resnet50",
        "--weights",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        fixtures().join("images/glass7_256.png").to_str().unwrap(),
    ]);
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
    let (code, json, stderr) = sortwise(&[
        "embed",
        "--arch",
        "resnet18",
        "--weights",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
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
    let (code, json, stderr) = sortwise(&[
        "embed",
        "--arch",
        "resnet18",
        "--weights",
        web.to_str().unwrap(),
        "--backend",
        "wgpu",
        img.to_str().unwrap(),
    ]);
    if code == 0 {
        assert_eq!(json["backend"], "wgpu");
    } else {
        assert_eq!(code, 2);
        assert!(stderr.contains("no usable GPU"), "{stderr}");
    }
    // auto always produces an answer, on whichever backend it found.
    let (code, json, stderr) = sortwise(&[
        "embed",
        "--arch",
        "resnet18",
        "--weights",
        web.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("backend"), "{stderr}");
    assert_eq!(
        json["images"][0]["embedding"].as_array().unwrap().len(),
        512
    );
}
