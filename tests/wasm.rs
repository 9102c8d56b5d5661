//! Backbone embeddings in the browser (headless Chromium via `wasm-pack test`), on WebGPU and on
//! the wasm CPU backend, against the torchvision reference that the native tests also match.
#![cfg(target_arch = "wasm32")]

mod common;
mod corpus;

use burn::tensor::Device;
use common::*;
use sortwise::Arch;
use sortwise::formats::weights;
use sortwise::model::infer::{self, Output};
use sortwise::preprocess::{self, Fit};
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

fn resnet50() -> (Reference, Vec<u8>) {
    let r: Reference =
        serde_json::from_str(include_str!("fixtures/reference/resnet50.json")).unwrap();
    let bytes = torch_safetensors(
        &r,
        include_bytes!("fixtures/reference/resnet50_bn.safetensors"),
    );
    (r, bytes)
}

async fn check_on(device: Device) -> f32 {
    check_arch_on(Arch::Resnet18, resnet18(), device).await
}

/// The first fixture's embedding by `arch` on `device` against torchvision's; the largest
/// difference.
async fn check_arch_on(arch: Arch, (r, bytes): (Reference, Vec<u8>), device: Device) -> f32 {
    let backbone = weights::load_torch_safetensors(arch, bytes, &device).unwrap();
    let x = preprocess::preprocess(include_bytes!("fixtures/images/glass7_256.png"), Fit::Crop)
        .unwrap();
    assert_eq!(r.images[0], "glass7_256.png");
    let feats = infer::run(&backbone, &[x], Output::Features, 1)
        .await
        .unwrap();
    assert_eq!(feats.len(), 1);
    assert_eq!(feats[0].len(), arch.feature_dim());
    let d = max_abs_diff(&feats[0], &r.features[0]);
    assert!(d <= TOL, "embedding differs from torchvision by {d}");
    d
}

#[wasm_bindgen_test]
async fn resnet18_embedding_on_webgpu_matches_torchvision() {
    // Shared with the trainer tests: burn starts one WebGPU server per adapter.
    let device = sortwise::web::webgpu_device().await.expect(
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

/// ResNet-50's bottlenecks are 1×1 convolutions, which the wasm builds compute with their own
/// SIMD128 kernel (`kernels/pointwise_simd128.rs`; natively the `gemm` crate does).
#[wasm_bindgen_test]
async fn resnet50_embedding_on_wasm_cpu_matches_torchvision() {
    let d = check_arch_on(Arch::Resnet50, resnet50(), Device::flex()).await;
    web_sys_log(&format!("resnet50 cpu: max |Δ| = {d:.2e}"));
}

/// Max |ours − burn's| of one convolution call through `sortwise::kernels` (`act(conv(x) +
/// residual)`), on random input.
fn against_burn(
    conv: &burn::nn::conv::Conv2d,
    input: [usize; 4],
    act: sortwise::kernels::Activation,
    skip: bool,
) -> f32 {
    use burn::tensor::{Distribution, Tensor};
    let device = Device::flex();
    let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
    let theirs = conv.forward(x.clone());
    let residual =
        skip.then(|| Tensor::<4>::random(theirs.dims(), Distribution::Normal(0.0, 1.0), &device));
    let theirs = act.apply_after_add(theirs, residual.clone()).into_data();
    let ours = sortwise::kernels::conv2d_add(conv, x, residual, act).into_data();
    assert_eq!(ours.shape(), theirs.shape());
    max_abs_diff(
        ours.as_slice::<f32>().unwrap(),
        theirs.as_slice::<f32>().unwrap(),
    )
}

/// The 1×1 kernel against burn's own convolution, on the shapes its tasks have cases for:
/// planes of a ragged last column block (7×7, 31×32), smaller than a microkernel's 8 pixels
/// (2×2), output channels split among tasks unevenly, a batch, a residual, each activation.
#[wasm_bindgen_test]
fn pointwise_convolutions_match_burn() {
    use burn::nn::conv::Conv2dConfig;
    use sortwise::kernels::Activation;
    for (c_in, c_out, [n, h, w], act, skip) in [
        (24, 100, [1, 7, 7], Activation::Relu6, true),
        (48, 72, [1, 14, 14], Activation::Identity, false),
        (16, 6, [2, 31, 32], Activation::Relu, true),
        (40, 3, [3, 9, 5], Activation::Relu6, false),
        (8, 5, [2, 2, 2], Activation::Identity, true),
    ] {
        let conv = Conv2dConfig::new([c_in, c_out], [1, 1]).init(&Device::flex());
        let d = against_burn(&conv, [n, c_in, h, w], act, skip);
        assert!(
            d <= 1e-5,
            "1×1 {c_in}→{c_out} on {n}×{h}×{w}: max |Δ| = {d}"
        );
    }
}

/// The depthwise kernels against burn's convolution: in the wasm builds the 7×7 and 14×14
/// planes and every stride 2 run in channel tiles with their pixels transposed in registers
/// (`kernels/depthwise_tiles.rs`), the rest a plane at a time. Lite0's shapes ("SAME" padding
/// after only at stride 2, 3×3 and 5×5), rows whose last run of 4 pixels overlaps, channels
/// not in groups of 8 (the plane kernel), a residual, a batch.
#[wasm_bindgen_test]
fn depthwise_convolutions_match_burn() {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use sortwise::kernels::Activation;
    for (c, k, stride, pad, [n, h, w], act, skip) in [
        (16, 5, 1, [2, 2, 2, 2], [1, 7, 7], Activation::Relu6, false),
        (24, 3, 1, [1, 1, 1, 1], [2, 14, 14], Activation::Relu, true),
        (8, 3, 2, [0, 0, 1, 1], [2, 14, 14], Activation::Relu6, false),
        (
            24,
            5,
            2,
            [1, 1, 2, 2],
            [1, 14, 13],
            Activation::Identity,
            true,
        ),
        (
            16,
            3,
            2,
            [0, 0, 1, 1],
            [1, 112, 112],
            Activation::Relu6,
            false,
        ),
        (8, 3, 1, [1, 1, 1, 1], [1, 56, 56], Activation::Relu6, false),
        (6, 5, 1, [2, 2, 2, 2], [1, 7, 7], Activation::Relu6, true),
    ] {
        let conv = Conv2dConfig::new([c, c], [k, k])
            .with_groups(c)
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad[0], pad[1], pad[2], pad[3]))
            .init(&Device::flex());
        let d = against_burn(&conv, [n, c, h, w], act, skip);
        assert!(
            d <= 1e-5,
            "depthwise {c}×{k}×{k}/{stride} on {n}×{h}×{w}: max |Δ| = {d}"
        );
    }
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
    use sortwise::formats::weights::StorageDtype;
    use sortwise::web::Trainer;
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
        // A model names its backbone by a hex hash (`model_file::check_source_sha256`).
        weights::save_web(&backbone, StorageDtype::F16, &"7e57".repeat(16)).unwrap()
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

    /// A trainer loaded from `model` on `device`, and its prediction of the first fixture.
    async fn load_and_predict(model: &[u8], weights: &[u8], device: &str) -> (Trainer, JsValue) {
        let t = Trainer::load_async(model, weights, obj(&[("device", device.into())]))
            .await
            .map_err(msg)
            .unwrap();
        let p = resolve(t.predict(Uint8Array::from(PNGS[0]), JsValue::UNDEFINED))
            .await
            .unwrap();
        (t, p)
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
        let mut first_id = None;
        for (i, label) in ["recyclable 可回收物", "other"].iter().enumerate() {
            for j in 0..per_class {
                let png = PNGS[(i + j) % 3];
                let id = resolve(t.add_image(label.to_string(), Uint8Array::from(png)))
                    .await
                    .unwrap();
                first_id.get_or_insert(id.as_f64().unwrap() as u32);
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

        // Several at once: one entry per image, in order, the undecodable one a message and not
        // added; a photo embeds as it does alone (to 1e-4: batched convolutions sum in another
        // order). PNGS[0] is the first image added above.
        let list = js_sys::Array::new();
        list.push(&Uint8Array::from(PNGS[0]));
        list.push(&Uint8Array::from(&b"not an image"[..]));
        list.push(&Uint8Array::from(PNGS[1]));
        let out = js_sys::Array::from(&resolve(t.add_images("other".into(), list)).await.unwrap());
        assert_eq!(out.length(), 3);
        let batch_id = out.get(0).as_f64().expect("an id for a good image") as u32;
        let other_id = out.get(2).as_f64().expect("an id for a good image") as u32;
        let why = out.get(1).as_string().expect("a message for the bad one");
        assert!(why.contains("image"), "{why}");
        assert_eq!(t.counts(), vec![per_class as u32, per_class as u32 + 2]);
        let alone = t.embedding(first_id.unwrap()).unwrap().to_vec();
        let batched = t.embedding(batch_id).unwrap().to_vec();
        assert_eq!(alone.len(), batched.len());
        let d = alone
            .iter()
            .zip(&batched)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d <= 1e-4, "batched vs alone: max |diff| {d}");
        assert!(t.remove_image(batch_id) && t.remove_image(other_id));
        assert_eq!(t.counts(), vec![per_class as u32; 2]);

        // One class name a photo: a batch across classes. A list of the wrong length, or a
        // class that is not a name, rejects with a message and adds nothing.
        let names = js_sys::Array::of2(&"other".into(), &"recyclable 可回收物".into());
        let two = || js_sys::Array::of2(&Uint8Array::from(PNGS[0]), &Uint8Array::from(PNGS[1]));
        let out = js_sys::Array::from(&resolve(t.add_images(names.into(), two())).await.unwrap());
        assert_eq!(out.length(), 2);
        assert_eq!(t.counts(), vec![per_class as u32 + 1, per_class as u32 + 1]);
        for id in out.iter() {
            assert!(t.remove_image(id.as_f64().unwrap() as u32));
        }
        let short = js_sys::Array::of1(&"other".into());
        let err = resolve(t.add_images(short.into(), two()))
            .await
            .unwrap_err();
        assert!(err.contains("one each"), "{err}");
        let err = resolve(t.add_images(JsValue::from(3), two()))
            .await
            .unwrap_err();
        assert!(err.contains("name"), "{err}");
        assert_eq!(t.counts(), vec![per_class as u32; 2]);

        if device == "cpu" {
            // Past 16 MP of decoded pixels the pending images go through the backbone before
            // more are decoded (memory): a 16.4 MP photo, then a small one, still come back as
            // two ids in order.
            let mut big = Vec::new();
            image::RgbImage::from_pixel(4100, 4000, image::Rgb([90, 140, 60]))
                .write_to(&mut std::io::Cursor::new(&mut big), image::ImageFormat::Png)
                .unwrap();
            let list = js_sys::Array::new();
            list.push(&Uint8Array::from(big.as_slice()));
            list.push(&Uint8Array::from(PNGS[2]));
            let out =
                js_sys::Array::from(&resolve(t.add_images("other".into(), list)).await.unwrap());
            let ids: Vec<u32> = out
                .iter()
                .map(|v| v.as_f64().expect("an id") as u32)
                .collect();
            assert_eq!(ids.len(), 2);
            assert!(ids[0] < ids[1], "in order: {ids:?}");
            assert!(ids.iter().all(|&id| t.remove_image(id)));
            assert_eq!(t.counts(), vec![per_class as u32; 2]);
        }

        // The held-out epochs, then (refit is the default) the refit's, one call each.
        let calls = Rc::new(Cell::new(0));
        let refit_calls = Rc::new(Cell::new(0));
        let (c, r) = (calls.clone(), refit_calls.clone());
        let cb = Closure::<dyn Fn(JsValue) -> JsValue>::new(move |p: JsValue| {
            match field(&p, "phase").as_string().unwrap().as_str() {
                "train" => c.set(c.get() + 1),
                "refit" => r.set(r.get() + 1),
                other => panic!("unexpected progress phase {other}"),
            }
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
        assert_eq!(field(&report, "refit").as_bool(), Some(true));
        let best = field(&report, "bestEpoch").as_f64().unwrap() as u32;
        assert_eq!(
            field(&report, "refitEpochs").as_f64(),
            Some(f64::from(best))
        );
        assert_eq!(refit_calls.get(), best, "one progress call per refit epoch");
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

        // The check-up: the fixtures repeat, within a class and across the two (conflicts).
        if device == "cpu" {
            let d = resolve(t.diagnose(JsValue::UNDEFINED, None)).await.unwrap();
            let pairs = js_sys::Array::from(&field(&d, "pairs"));
            assert!(pairs.length() > 0);
            assert!(
                pairs
                    .iter()
                    .all(|p| field(&p, "identical").as_bool() == Some(true))
            );
            assert!(
                pairs
                    .iter()
                    .any(|p| field(&p, "conflict").as_bool() == Some(true))
            );
            assert_eq!(js_sys::Array::from(&field(&d, "classes")).length(), 2);
            assert_eq!(field(&d, "folds").as_f64(), Some(4.0));
        }

        // The explanation of the same photo: its prediction is predict's (the maps add up to the
        // logits), and one 7×7 map a class.
        let e = resolve(t.explain(Uint8Array::from(PNGS[0]), JsValue::UNDEFINED))
            .await
            .unwrap();
        assert_eq!(field(&e, "label").as_string().unwrap(), label);
        assert!(close(&probs(&e), &probs(&p1), 1e-4), "explain vs predict");
        let heatmap = field(&e, "heatmap");
        assert_eq!(field(&heatmap, "width").as_f64(), Some(7.0));
        let maps = js_sys::Array::from(&field(&heatmap, "maps"));
        assert_eq!(maps.length(), 2);
        assert_eq!(js_sys::Array::from(&maps.get(0)).length(), 49);

        // Shared by link and read back: the same class.
        let shared = t.share_model().unwrap();
        assert!(field(&shared, "agreement").as_f64().unwrap() >= 0.99);
        let bytes = Uint8Array::new(&field(&shared, "bytes"));
        let file = sortwise::web::shared_model(&bytes.to_vec()).unwrap();
        let p3 = load_and_predict(&file.to_vec(), &w.to_vec(), device)
            .await
            .1;
        assert_eq!(field(&p3, "label").as_string().unwrap(), label);
        assert!(close(&probs(&p3), &probs(&p1), 0.02), "shared vs full head");

        // Export, load into a new trainer, same prediction.
        let file = t.export_model().unwrap();
        assert!(file.length() > 512 * 2 * 4);
        let (t2, p2) = load_and_predict(&file.to_vec(), &w.to_vec(), device).await;
        assert_eq!(t2.labels(), t.labels());
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
        resolve(t.add_image("other".into(), Uint8Array::from(PNGS[1])))
            .await
            .unwrap();
        let err = resolve(t.train(obj(&[("finetuneLast", true.into())]), None))
            .await
            .unwrap_err();
        assert!(err.contains("finetune: true"), "{err}");
        assert!(!t.finetune());
        assert!(t.remove_class("other".into()).is_ok());
        let err = resolve(t.train(obj(&[("augment", 3.into())]), None))
            .await
            .unwrap_err();
        assert!(
            err.contains("augment is chosen when images are added"),
            "{err}"
        );
        assert!(t.export_model().is_err());
        let err = resolve(t.add_image("  ".into(), Uint8Array::from(PNGS[0])))
            .await
            .unwrap_err();
        assert!(err.contains("empty"), "{err}");
    }

    /// What the page needs to save and restore a project, follow class edits, predict on camera
    /// frames and cancel training, on the CPU backend.
    #[wasm_bindgen_test]
    async fn trainer_state_survives_a_restore() {
        let w = Uint8Array::from(weights_file().as_slice());
        let t = Trainer::create_async(obj(&[
            ("weights", w.clone().into()),
            ("device", "cpu".into()),
            ("augment", 1.into()),
        ]))
        .await
        .map_err(msg)
        .unwrap();
        assert_eq!((t.arch().as_str(), t.dim()), ("resnet18", 512));
        let mut ids = Vec::new();
        for (i, label) in ["glass", "metal", "paper"].iter().enumerate() {
            for j in 0..2 {
                let png = PNGS[(i + j) % 3];
                let id = resolve(t.add_image(label.to_string(), Uint8Array::from(png)))
                    .await
                    .unwrap();
                ids.push(id.as_f64().unwrap() as u32);
            }
        }
        // Evaluation view plus one augmented view; the UI copy is a JPEG of the whole photo.
        let e0 = t.embedding(ids[0]).unwrap().to_vec();
        assert_eq!(e0.len(), 2 * 512);
        assert_ne!(e0[..512], e0[512..]);
        let thumb = t.thumbnail(ids[0]).unwrap().to_vec();
        assert_eq!(thumb[..2], [0xFF, 0xD8]);
        assert_eq!(
            image::load_from_memory(&thumb)
                .unwrap()
                .to_rgb8()
                .dimensions(),
            (256, 256)
        );

        // A second trainer rebuilt from saved embeddings trains to the same model.
        let t2 = Trainer::create_async(obj(&[("weights", w.into()), ("device", "cpu".into())]))
            .await
            .map_err(msg)
            .unwrap();
        for (&id, label) in ids
            .iter()
            .zip(["glass", "glass", "metal", "metal", "paper", "paper"])
        {
            let e = t.embedding(id).unwrap();
            t2.add_embedding(label.into(), e, t.thumbnail(id)).unwrap();
        }
        assert_eq!(t2.counts(), vec![2, 2, 2]);
        let wrong = js_sys::Float32Array::new_with_length(100);
        assert!(msg(t2.add_embedding("glass".into(), wrong, None).unwrap_err()).contains("512"));
        let opts = || obj(&[("epochs", 5.into()), ("valSplit", 0.0.into())]);
        let r1 = resolve(t.train(opts(), None)).await.unwrap();
        let r2 = resolve(t2.train(opts(), None)).await.unwrap();
        let loss = |r: &JsValue| {
            let h = js_sys::Array::from(&field(r, "history"));
            field(&h.get(h.length() - 1), "loss").as_f64().unwrap()
        };
        assert_eq!(
            loss(&r1),
            loss(&r2),
            "same embeddings, same seed: same training"
        );

        // Camera frames (RGBA) predict what the encoded image does.
        let rgba = image::load_from_memory(PNGS[1]).unwrap().to_rgba8();
        let (wd, ht) = rgba.dimensions();
        let from_pixels = resolve(t.predict_pixels(rgba.as_raw(), wd, ht, JsValue::UNDEFINED))
            .await
            .unwrap();
        let from_bytes = resolve(t.predict(Uint8Array::from(PNGS[1]), JsValue::UNDEFINED))
            .await
            .unwrap();
        assert_eq!(
            field(&from_pixels, "confidence").as_f64(),
            field(&from_bytes, "confidence").as_f64()
        );
        let err = resolve(t.predict_pixels(&[0u8; 12], 2, 2, JsValue::UNDEFINED))
            .await
            .unwrap_err();
        assert!(err.contains("RGBA"), "{err}");

        // Importing a model: garbage is refused and the current model stays.
        let model = t.export_model().unwrap().to_vec();
        assert!(t2.import_model(b"not a model").is_err());
        assert_eq!(
            t2.import_model(&model).unwrap(),
            vec!["glass", "metal", "paper"]
        );

        // Class edits follow through to the images and the model's labels.
        t.rename_class("metal".into(), "Metall 金属".into())
            .unwrap();
        assert_eq!(t.labels(), vec!["glass", "Metall 金属", "paper"]);
        assert!(t.rename_class("glass".into(), "paper".into()).is_err());
        assert_eq!(t.remove_class("glass".into()).unwrap(), 2);
        assert_eq!(t.counts(), vec![2, 2]);
        assert!(t.thumbnail(ids[0]).is_none());
        let p = resolve(t.predict(Uint8Array::from(PNGS[1]), JsValue::UNDEFINED))
            .await
            .unwrap();
        assert_ne!(field(&p, "label").as_string().unwrap(), "metal");

        // A progress callback may return a Promise; resolving to false cancels.
        let cb = Closure::<dyn Fn(JsValue) -> JsValue>::new(|p: JsValue| {
            let go = field(&p, "epoch").as_f64().unwrap() < 2.0;
            js_sys::Promise::resolve(&JsValue::from_bool(go)).into()
        });
        let err = resolve(t.train(
            obj(&[("epochs", 10.into())]),
            Some(cb.as_ref().unchecked_ref::<js_sys::Function>().clone()),
        ))
        .await
        .unwrap_err();
        assert!(err.contains("cancel"), "{err}");
    }

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    fn probs(p: &JsValue) -> Vec<f32> {
        js_sys::Array::from(&field(p, "probs"))
            .iter()
            .map(|e| field(&e, "p").as_f64().unwrap() as f32)
            .collect()
    }

    /// "Fine-tune last stage" in the browser on the CPU backend: a `finetune` trainer caches
    /// stage inputs next to the same embeddings, trains stage and head, predicts through the
    /// tuned stage, and its exported (version 2) file loads back to the same predictions.
    #[wasm_bindgen_test]
    async fn trainer_finetunes_the_last_stage_on_cpu() {
        let weights = weights_file();
        let w = Uint8Array::from(weights.as_slice());
        let create = |finetune: bool| {
            Trainer::create_async(obj(&[
                ("weights", w.clone().into()),
                ("device", "cpu".into()),
                ("augment", 1.into()),
                ("finetune", finetune.into()),
            ]))
        };
        let t = create(true).await.map_err(msg).unwrap();
        let plain = create(false).await.map_err(msg).unwrap();
        assert!(t.finetune());
        let mut ids = Vec::new();
        for (i, label) in ["glass", "metal"].iter().enumerate() {
            for j in 0..3 {
                let png = Uint8Array::from(PNGS[(i + j) % 3]);
                let id = resolve(t.add_image(label.to_string(), png.clone()))
                    .await
                    .unwrap();
                resolve(plain.add_image(label.to_string(), png))
                    .await
                    .unwrap();
                ids.push(id.as_f64().unwrap() as u32);
            }
        }
        // The embeddings come from the cached stage inputs, and are the plain trainer's.
        for &id in &ids {
            let (a, b) = (t.embedding(id).unwrap(), plain.embedding(id).unwrap());
            assert!(close(&a.to_vec(), &b.to_vec(), 1e-5), "image {id}");
        }

        // An image without pixels cannot be fine-tuned on; head-only training still can.
        let extra = t
            .add_embedding("metal".into(), t.embedding(ids[3]).unwrap(), None)
            .unwrap();
        let err = resolve(t.train(obj(&[("finetuneLast", true.into())]), None))
            .await
            .unwrap_err();
        assert!(
            err.contains("addEmbedding") && err.contains("1 of the 7"),
            "{err}"
        );
        assert!(t.remove_image(extra));

        // Head-only first: the model a cancelled fine-tuning must leave in place.
        let head_only = obj(&[("epochs", 3.into()), ("valSplit", 0.0.into())]);
        resolve(t.train(head_only, None)).await.unwrap();
        let before = resolve(t.predict(Uint8Array::from(PNGS[2]), JsValue::UNDEFINED))
            .await
            .unwrap();

        let ft_opts = || {
            obj(&[
                ("epochs", 3.into()),
                ("valSplit", 0.0.into()),
                ("patience", 0.into()),
                ("finetuneLast", true.into()),
                ("finetuneEpochs", 3.into()),
                ("finetuneLr", 1e-3.into()),
                ("l2sp", 0.1.into()),
            ])
        };
        let cancel = Closure::<dyn Fn(JsValue) -> JsValue>::new(|p: JsValue| {
            JsValue::from_bool(field(&p, "phase").as_string().unwrap() != "finetune")
        });
        let err = resolve(t.train(
            ft_opts(),
            Some(cancel.as_ref().unchecked_ref::<js_sys::Function>().clone()),
        ))
        .await
        .unwrap_err();
        assert!(err.contains("cancel"), "{err}");
        let kept = resolve(t.predict(Uint8Array::from(PNGS[2]), JsValue::UNDEFINED))
            .await
            .unwrap();
        assert_eq!(
            probs(&kept),
            probs(&before),
            "a cancelled run keeps the model"
        );

        let phases = Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
        let seen = phases.clone();
        let cb = Closure::<dyn Fn(JsValue) -> JsValue>::new(move |p: JsValue| {
            seen.borrow_mut()
                .push(field(&p, "phase").as_string().unwrap());
            JsValue::TRUE
        });
        let report = resolve(t.train(
            ft_opts(),
            Some(cb.as_ref().unchecked_ref::<js_sys::Function>().clone()),
        ))
        .await
        .unwrap();
        let phases = phases.borrow().clone();
        let count = |name: &str| phases.iter().filter(|p| *p == name).count();
        assert!(count("features") >= 1, "{phases:?}");
        assert_eq!(count("train"), 3, "{phases:?}");
        assert_eq!(count("finetune"), 3, "{phases:?}");
        let ft = field(&report, "finetune");
        assert_eq!(field(&ft, "epochsRun").as_f64(), Some(3.0));
        let best = field(&ft, "bestEpoch").as_f64().unwrap();
        assert!(
            best >= 1.0,
            "fine-tuning lowered the training loss: best epoch {best}"
        );
        let distance = field(&ft, "distance").as_f64().unwrap();
        assert!(distance > 0.0 && distance.is_finite(), "{distance}");
        assert_eq!(js_sys::Array::from(&field(&report, "history")).length(), 6);

        // Predictions go through the tuned stage: not the head-only model's, and the same after
        // export and load (or import into a trainer that cannot fine-tune).
        let mine: Vec<JsValue> = {
            let mut v = Vec::new();
            for png in PNGS {
                v.push(
                    resolve(t.predict(Uint8Array::from(png), JsValue::UNDEFINED))
                        .await
                        .unwrap(),
                );
            }
            v
        };
        assert_ne!(probs(&mine[2]), probs(&before));
        let file = t.export_model().unwrap().to_vec();
        let (model, stage) =
            sortwise::formats::model_file::Model::from_bytes_with_stage(&file).unwrap();
        assert_eq!(model.meta.version, 2);
        assert!(model.meta.config.finetune_last);
        let err = sortwise::formats::model_file::Model::from_bytes(&file).unwrap_err();
        assert!(err.to_string().contains("fine-tune last stage"), "{err}");

        // The exported stage is the tuned one, not the pretrained stage, by the distance the
        // report states.
        let pretrained = weights::load_web(&weights, Some(Arch::Resnet18), &Device::flex())
            .unwrap()
            .0
            .fold_batchnorm()
            .split_last_stage()
            .to_weights()
            .await
            .unwrap();
        let stage = stage.unwrap();
        assert_eq!(stage.tensors.len(), pretrained.tensors.len());
        let moved = stage
            .tensors
            .iter()
            .zip(&pretrained.tensors)
            .map(|((n, _, a), (m, _, b))| {
                assert_eq!(n, m);
                a.iter()
                    .zip(b)
                    .map(|(x, y)| ((x - y) as f64).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            .sqrt();
        assert!(
            (moved - distance).abs() <= 1e-3 * distance.max(1e-6) + 1e-6,
            "{moved} vs {distance}"
        );

        let loaded = Trainer::load_async(&file, &weights, obj(&[("device", "cpu".into())]))
            .await
            .map_err(msg)
            .unwrap();
        assert_eq!(loaded.labels(), vec!["glass", "metal"]);
        assert_eq!(plain.import_model(&file).unwrap(), vec!["glass", "metal"]);
        for (png, p) in PNGS.iter().zip(&mine) {
            for other in [&loaded, &plain] {
                let q = resolve(other.predict(Uint8Array::from(*png), JsValue::UNDEFINED))
                    .await
                    .unwrap();
                assert_eq!(
                    field(&q, "label").as_string(),
                    field(p, "label").as_string()
                );
                assert!(
                    close(&probs(&q), &probs(p), 1e-5),
                    "{:?} vs {:?}",
                    probs(&q),
                    probs(p)
                );
            }
        }
        // Re-exporting the loaded model keeps the stage.
        let again = loaded.export_model().unwrap().to_vec();
        let (_, again_stage) =
            sortwise::formats::model_file::Model::from_bytes_with_stage(&again).unwrap();
        assert_eq!(again_stage.as_ref(), Some(&stage));
    }

    /// The hostile corpus (`tests/corpus`, as natively in `tests/hostile_corpus.rs`) through the
    /// `Trainer` on the CPU backend, without the two cases marked heavy (a 64 MP and a 25 MP
    /// 16-bit bomb that decode, several hundred MB each): every image case in one `addImages`
    /// call with a good photo last (bad ones a message, the good one an id); every model case
    /// through `importModel`, the trained model still predicting the same after each refusal;
    /// every weight case through `Trainer.create`. No case may trap the instance.
    #[wasm_bindgen_test]
    async fn hostile_corpus_through_the_trainer() {
        const SHA: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
        // A randomly initialised EfficientNet-Lite0: small and fast, and its v2 files are a
        // fraction of ResNet-18's.
        let device = Device::flex();
        let init = sortwise::backbone::Backbone::init(Arch::EfficientnetLite0, &device);
        let weights = weights::save_web(&init, StorageDtype::F16, SHA).unwrap();
        let (backbone, _) =
            weights::load_web(&weights, Some(Arch::EfficientnetLite0), &device).unwrap();
        let stage = backbone.split_last_stage().to_weights().await.unwrap();
        drop((init, backbone));
        let w = Uint8Array::from(weights.as_slice());
        let t = Trainer::create_async(obj(&[("weights", w.into()), ("device", "cpu".into())]))
            .await
            .map_err(msg)
            .unwrap();
        let mut problems = Vec::new();

        let cases: Vec<_> = corpus::image_cases()
            .into_iter()
            .filter(|c| !c.heavy)
            .collect();
        let list = js_sys::Array::new();
        for c in &cases {
            list.push(&Uint8Array::from(c.bytes.as_slice()));
        }
        list.push(&Uint8Array::from(PNGS[0]));
        let out = js_sys::Array::from(&resolve(t.add_images("a".into(), list)).await.unwrap());
        assert_eq!(out.length() as usize, cases.len() + 1);
        for (i, c) in cases.iter().enumerate() {
            let v = out.get(i as u32);
            let message = v.as_string();
            if message.is_none() && v.as_f64().is_none() {
                problems.push(format!("{}: neither an id nor a message", c.name));
            }
            if let Err(e) = corpus::check(c.expect, message.as_deref()) {
                problems.push(format!("{}: {e}", c.name));
            }
        }
        assert!(
            out.get(cases.len() as u32).as_f64().is_some(),
            "the good photo"
        );
        drop(cases);

        // A trained model whose predictions every refused import must leave alone.
        for png in [PNGS[1], PNGS[2]] {
            resolve(t.add_image("b".into(), Uint8Array::from(png)))
                .await
                .unwrap();
        }
        resolve(t.train(obj(&[("epochs", 2.into()), ("patience", 0.into())]), None))
            .await
            .unwrap();
        let original = t.export_model().unwrap().to_vec();
        let predict = || async {
            let p = resolve(t.predict(Uint8Array::from(PNGS[0]), JsValue::UNDEFINED))
                .await
                .unwrap();
            (
                field(&p, "label").as_string(),
                field(&p, "confidence").as_f64(),
            )
        };
        let before = predict().await;
        for c in corpus::model_cases(&corpus::Backbone {
            arch: Arch::EfficientnetLite0,
            source_sha256: SHA,
            stage: &stage,
        }) {
            let message = t.import_model(&c.bytes).err().map(msg);
            if let Err(e) = corpus::check(c.expect, message.as_deref()) {
                problems.push(format!("{}: {e}", c.name));
            }
            if message.is_some() {
                if predict().await != before {
                    problems.push(format!("{}: the refusal changed the model", c.name));
                }
            } else {
                t.import_model(&original).unwrap();
            }
        }
        for c in corpus::weight_cases(&weights) {
            let w = Uint8Array::from(c.bytes.as_slice());
            let r = Trainer::create_async(obj(&[("weights", w.into()), ("device", "cpu".into())]))
                .await;
            if let Err(e) = corpus::check(c.expect, r.err().map(msg).as_deref()) {
                problems.push(format!("{}: {e}", c.name));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
