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
    // Shared with the trainer tests: burn starts one WebGPU server per adapter.
    let device = sortwise::wasm_api::webgpu_device().await.expect(
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

mod trainer_api {
    use super::*;
    use js_sys::{Object, Reflect, Uint8Array};
    use sortwise::wasm_api::Trainer;
    use sortwise::weights::StorageDtype;
    use std::cell::Cell;
    use std::rc::Rc;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::JsFuture;

    const PNGS: [&[u8]; 3] = [
        include_bytes!("fixtures/images/glass7_256.png"),
        include_bytes!("fixtures/images/metal15_256.png"),
        include_bytes!("fixtures/images/paper19_256.png"),
    ];

    /// A small backbone file generated for tests: ResNet-18 with the reference's pseudo-random
    /// weights, as an f16 web weight file.
    fn weights_file() -> Vec<u8> {
        let (_, bytes) = resnet18();
        let backbone =
            weights::load_torch_safetensors(Arch::Resnet18, bytes, &Device::flex()).unwrap();
        weights::save_web(&backbone, StorageDtype::F16, "test-source").unwrap()
    }

    fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
        let o = Object::new();
        for (k, v) in pairs {
            Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
        }
        o.into()
    }

    fn field(v: &JsValue, k: &str) -> JsValue {
        Reflect::get(v, &JsValue::from_str(k)).unwrap()
    }

    fn msg(e: JsValue) -> String {
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_default()
    }

    async fn resolve(p: js_sys::Promise) -> Result<JsValue, String> {
        JsFuture::from(p).await.map_err(msg)
    }

    async fn round_trip(device: &str) {
        let weights = weights_file();
        let w = Uint8Array::from(weights.as_slice());
        let opts = obj(&[
            ("arch", "resnet18".into()),
            ("weights", w.clone().into()),
            ("device", device.into()),
        ]);
        let t = Trainer::create_async(opts).await.map_err(msg).unwrap();
        let expected_backend = if device == "cpu" { "cpu" } else { "webgpu" };
        assert_eq!(t.backend(), expected_backend);

        // Two classes, `per_class` images each (the three fixtures and repeats). SwiftShader runs
        // WebGPU on the CPU, so that path gets the smallest set that still has a validation split.
        let per_class: usize = if device == "cpu" { 4 } else { 2 };
        for (i, label) in ["recyclable 可回收物", "other"].iter().enumerate() {
            for j in 0..per_class {
                let png = PNGS[(i + j) % 3];
                let id = resolve(t.add_image(label.to_string(), Uint8Array::from(png)))
                    .await
                    .unwrap();
                assert!(id.as_f64().is_some());
            }
        }
        assert_eq!(
            t.labels(),
            vec!["recyclable 可回收物".to_string(), "other".to_string()]
        );
        assert_eq!(t.counts(), vec![per_class as u32; 2]);

        // Undecodable bytes reject with a message, and nothing is added.
        let err = resolve(t.add_image("other".into(), Uint8Array::from(&b"not an image"[..])))
            .await
            .unwrap_err();
        assert!(err.contains("image"), "{err}");
        assert_eq!(t.counts(), vec![per_class as u32; 2]);

        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let cb = Closure::<dyn Fn(JsValue) -> JsValue>::new(move |p: JsValue| {
            c.set(c.get() + 1);
            assert_eq!(field(&p, "phase").as_string().unwrap(), "train");
            assert!(field(&p, "loss").as_f64().unwrap().is_finite());
            JsValue::TRUE
        });
        let train_opts = obj(&[
            ("epochs", 3.into()),
            ("valSplit", 0.5.into()),
            ("patience", 0.into()),
        ]);
        let report = resolve(t.train(
            train_opts,
            Some(cb.as_ref().unchecked_ref::<js_sys::Function>().clone()),
        ))
        .await
        .unwrap();
        assert_eq!(calls.get(), 3, "one progress call per epoch");
        assert_eq!(js_sys::Array::from(&field(&report, "history")).length(), 3);
        assert!(field(&report, "valAccuracy").as_f64().is_some());
        assert_eq!(
            js_sys::Array::from(&field(&report, "confusion")).length(),
            2
        );

        let p1 = resolve(t.predict(Uint8Array::from(PNGS[0]), obj(&[("threshold", 0.0.into())])))
            .await
            .unwrap();
        let label = field(&p1, "label").as_string().unwrap();
        assert!(t.labels().contains(&label), "{label}");
        let unsure = resolve(t.predict(
            Uint8Array::from(PNGS[0]),
            obj(&[("threshold", 1.01.into())]),
        ))
        .await
        .unwrap();
        assert_eq!(field(&unsure, "label").as_string().unwrap(), "unsure");

        // Export, load into a new trainer, same prediction.
        let file = t.export_model().unwrap();
        assert!(file.length() > 512 * 2 * 4);
        let t2 = Trainer::load_async(
            &file.to_vec(),
            &w.to_vec(),
            obj(&[("device", device.into())]),
        )
        .await
        .map_err(msg)
        .unwrap();
        assert_eq!(t2.labels(), t.labels());
        let p2 = resolve(t2.predict(Uint8Array::from(PNGS[0]), JsValue::UNDEFINED))
            .await
            .unwrap();
        assert_eq!(field(&p2, "label").as_string().unwrap(), label);
        let (c1, c2) = (
            field(&p1, "confidence").as_f64().unwrap(),
            field(&p2, "confidence").as_f64().unwrap(),
        );
        assert!((c1 - c2).abs() < 1e-5, "{c1} vs {c2}");
    }

    #[wasm_bindgen_test]
    async fn trainer_round_trip_on_cpu() {
        round_trip("cpu").await;
    }

    #[wasm_bindgen_test]
    async fn trainer_round_trip_on_webgpu() {
        round_trip("webgpu").await;
    }

    #[wasm_bindgen_test]
    async fn trainer_errors_are_js_errors() {
        let err = resolve(Trainer::create(obj(&[("arch", "resnet18".into())])))
            .await
            .unwrap_err();
        assert!(err.contains("weights"), "{err}");
        let junk = Uint8Array::from(&b"definitely not safetensors"[..]);
        let err = resolve(Trainer::create(obj(&[
            ("weights", junk.into()),
            ("device", "cpu".into()),
        ])))
        .await
        .unwrap_err();
        assert!(err.contains("safetensors"), "{err}");
        let w = Uint8Array::from(weights_file().as_slice());
        let err = resolve(Trainer::create(obj(&[
            ("arch", "resnet50".into()),
            ("weights", w.clone().into()),
            ("device", "cpu".into()),
        ])))
        .await
        .unwrap_err();
        assert!(
            err.contains("resnet50") && err.contains("resnet18"),
            "{err}"
        );
        let t = Trainer::create_async(obj(&[("weights", w.into()), ("device", "cpu".into())]))
            .await
            .map_err(msg)
            .unwrap();
        resolve(t.add_image("only".into(), Uint8Array::from(PNGS[0])))
            .await
            .unwrap();
        let err = resolve(t.train(JsValue::UNDEFINED, None))
            .await
            .unwrap_err();
        assert!(err.contains("only one class"), "{err}");
        assert!(t.export_model().is_err());
        let err = resolve(t.add_image("  ".into(), Uint8Array::from(PNGS[0])))
            .await
            .unwrap_err();
        assert!(err.contains("empty"), "{err}");
    }
}
