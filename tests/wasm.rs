//! Backbone embeddings in the browser (headless Chromium via `wasm-pack test`), on WebGPU and on
//! the wasm CPU backend, against the torchvision reference that the native tests also match.
#![cfg(target_arch = "wasm32")]

mod common;

use burn::tensor::Device;
use common::*;
use sortwise::Arch;
use sortwise::infer::{self, Output};
use sortwise::preprocess::{self, Fit};
use sortwise::weights;
use wasm_bindgen_test::*;

// Long wasm work on the page's main thread trips chromedriver's renderer timeout.
wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// Stated tolerance for GPU vs torchvision CPU (different summation order in the kernels).
const TOL: f32 = 2e-3;

fn resnet18() -> (Reference, Vec<u8>) {
    let r: Reference =
        serde_json::from_str(include_str!("fixtures/reference/resnet18.json")).unwrap();
    let bytes = torch_safetensors(
        &r,
        include_bytes!("fixtures/reference/resnet18_bn.safetensors"),
    );
    (r, bytes)
}

async fn check_on(device: Device) -> f32 {
    let (r, bytes) = resnet18();
    let backbone = weights::load_torch_safetensors(Arch::Resnet18, bytes, &device).unwrap();
    let x = preprocess::preprocess(include_bytes!("fixtures/images/glass7_256.png"), Fit::Crop)
        .unwrap();
    assert_eq!(r.images[0], "glass7_256.png");
    let feats = infer::run(&backbone, &[x], Output::Features, 1)
        .await
        .unwrap();
    assert_eq!(feats.len(), 1);
    assert_eq!(feats[0].len(), 512);
    let d = max_abs_diff(&feats[0], &r.features[0]);
    assert!(d <= TOL, "embedding differs from torchvision by {d}");
    d
}

#[wasm_bindgen_test]
async fn resnet18_embedding_on_webgpu_matches_torchvision() {
    let device = Device::wgpu_options().init_async().await.expect(
        "WebGPU adapter (Chromium needs --enable-unsafe-webgpu --enable-unsafe-swiftshader)",
    );
    let d = check_on(device).await;
    web_sys_log(&format!("webgpu: max |Δ| = {d:.2e}"));
}

#[wasm_bindgen_test]
async fn resnet18_embedding_on_wasm_cpu_matches_torchvision() {
    let d = check_on(Device::flex()).await;
    web_sys_log(&format!("cpu: max |Δ| = {d:.2e}"));
}

#[wasm_bindgen_test]
fn bad_image_bytes_are_an_error_not_a_trap() {
    let e = preprocess::preprocess(b"\x89PNG\r\n\x1a\ntruncated", Fit::Crop).unwrap_err();
    assert!(e.to_string().contains("corrupt"), "{e}");
}

fn web_sys_log(msg: &str) {
    wasm_bindgen_test::console_log!("{msg}");
}
