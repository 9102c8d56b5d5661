//! The JS API (`pkg/sortwise.js`): `Trainer` over the same engine the CLI drives. Every method
//! that touches the device returns a Promise, because WebGPU readback is asynchronous, and every
//! failure rejects with a JS `Error` carrying the engine's message.
//!
//! State lives behind `Rc<RefCell<_>>` so the futures handed to JS own what they use; no borrow
//! is held across an `await`, so overlapping calls from JS cannot trip the RefCell.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use burn::tensor::Device;
use js_sys::{Float32Array, Function, Promise, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use crate::arch::Arch;
use crate::backbone::{Backbone, LastStage, StageWeights};
use crate::classifier;
use crate::dataset::{self, Dataset, validate_label};
use crate::finetune;
use crate::head::Head;
use crate::infer::{self, Output};
use crate::model_file::{self, Model, ModelMeta};
use crate::preprocess::{self, Fit};
use crate::split;
use crate::trainer::{self, Report, TrainConfig, TrainExample, ValExample};
use crate::weights::{self, WeightsInfo};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() {
        Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// `value` as a plain JS object, through one JSON string: in the WebGPU build (pkg/) every JS
/// value handed back to wasm costs ~0.5 ms in Chromium (numbers do not), so building the object
/// field by field (serde-wasm-bindgen) took ~7.5 ms for a progress report, and training paid
/// that every epoch; JSON.parse is one such value. (Non-finite floats become `null`.)
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let json = serde_json::to_string(value).map_err(js_err)?;
    js_sys::JSON::parse(&json)
}

fn bytes_of(value: &JsValue, what: &str) -> Result<Vec<u8>, JsValue> {
    if value.is_instance_of::<Uint8Array>() {
        Ok(Uint8Array::new(value).to_vec())
    } else {
        Err(js_err(format!("{what} must be a Uint8Array")))
    }
}

#[cfg(feature = "gpu")]
thread_local! {
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// The page's WebGPU device, started on first use. burn registers one server per adapter and
/// refuses a second `init_async`, so every trainer in this thread shares it.
#[cfg(feature = "gpu")]
pub async fn webgpu_device() -> Result<Device, String> {
    if let Some(device) = WEBGPU.with(|w| w.borrow().clone()) {
        return Ok(device);
    }
    let device = Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| format!("WebGPU could not start: {e:?}"))?;
    WEBGPU.with(|w| *w.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// The CPU-only build (pkg-cpu/) has no WebGPU backend: the worker loads pkg/ for WebGPU.
#[cfg(not(feature = "gpu"))]
pub async fn webgpu_device() -> Result<Device, String> {
    Err("this is the CPU-only build (pkg-cpu/), which has no WebGPU backend".into())
}

/// `initThreadPool(n)` (JS): starts the rayon pool burn-flex and gemm run on, as `n` Web
/// Workers sharing this module's memory. The worker awaits it before creating a trainer.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Threads the CPU backend runs on: the rayon pool JS started with `initThreadPool`.
#[cfg(feature = "threads")]
pub fn cpu_threads() -> usize {
    rayon::current_num_threads()
}

/// Threads the CPU backend runs on: one, in the single-threaded build.
#[cfg(not(feature = "threads"))]
pub fn cpu_threads() -> usize {
    1
}

/// The CPU device, with its thread count in the reason when there is a pool (the page's device
/// badge shows it; the worker says why the single-threaded build runs).
fn cpu_device(why: String) -> (Device, &'static str, String) {
    let reason = match cpu_threads() {
        1 => why,
        n => format!("{why}; {n} threads"),
    };
    (Device::flex(), "cpu", reason)
}

/// `None` when a hardware WebGPU adapter is there; otherwise why the CPU is the better choice.
async fn software_or_missing_adapter() -> Option<String> {
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    if gpu.is_undefined() || gpu.is_null() {
        return Some("this browser has no WebGPU".into());
    }
    let request = get(&gpu, "requestAdapter").dyn_into::<Function>().ok()?;
    let promise = request.call0(&gpu).ok()?.dyn_into::<Promise>().ok()?;
    let adapter = match JsFuture::from(promise).await {
        Ok(a) if !a.is_null() && !a.is_undefined() => a,
        _ => return Some("no WebGPU adapter is available".into()),
    };
    let info = get(&adapter, "info");
    let fallback = get(&info, "isFallbackAdapter")
        .as_bool()
        .or_else(|| get(&adapter, "isFallbackAdapter").as_bool())
        .unwrap_or(false);
    let name = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|k| get(&info, k).as_string())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let software = ["swiftshader", "llvmpipe", "lavapipe", "software"]
        .iter()
        .any(|s| name.contains(s));
    (fallback || software).then(|| {
        format!(
            "the only WebGPU adapter is a software renderer ({name}), slower than the CPU backend"
        )
    })
}

/// `device: 'auto' | 'webgpu' | 'cpu'` -> the device, its name, and why.
async fn select_device(choice: &str) -> Result<(Device, &'static str, String), JsValue> {
    match choice {
        "cpu" => Ok(cpu_device("requested".into())),
        "webgpu" => Ok((
            webgpu_device().await.map_err(js_err)?,
            "webgpu",
            "requested".into(),
        )),
        "auto" => match software_or_missing_adapter().await {
            Some(why) => Ok(cpu_device(format!("{why}; using the CPU backend"))),
            None => match webgpu_device().await {
                Ok(d) => Ok((d, "webgpu", "hardware WebGPU adapter".into())),
                Err(e) => Ok(cpu_device(format!("{e}; using the CPU backend"))),
            },
        },
        other => Err(js_err(format!(
            "unknown device '{other}': expected 'auto', 'webgpu' or 'cpu'"
        ))),
    }
}

#[derive(Clone)]
struct Trained {
    head: Head,
    labels: Vec<String>,
    /// PyTorch-layout copy, read back once after training so `exportModel` can be synchronous.
    weight: Vec<f32>,
    bias: Vec<f32>,
    config: TrainConfig,
    report: Option<Report>,
    /// The fine-tuned last stage, when the model has one: the head was trained on it, so
    /// predictions must go through it.
    stage: Option<TunedStage>,
}

/// A fine-tuned last stage on the device (what `predict` runs) and its weights read back (what
/// `exportModel` writes). Behind `Rc`: `Trained` is cloned out of the RefCell per prediction.
#[derive(Clone)]
struct TunedStage {
    stage: Rc<LastStage>,
    weights: Rc<StageWeights>,
}

struct Inner {
    backbone: Rc<Backbone>,
    device: Device,
    backend: &'static str,
    reason: String,
    info: WeightsInfo,
    fit: Fit,
    /// Augmented views embedded per added image, besides the evaluation view.
    augment: usize,
    data: Dataset,
    /// The UI copy of each image (`preprocess::thumbnail_jpeg`), by id.
    thumbs: HashMap<u32, Vec<u8>>,
    /// Create option `finetune`: `addImage` also caches each view's stage input, which
    /// `train({finetuneLast: true})` needs. Off by default: a view's stage input is 88-800 KB
    /// where its embedding is 2-8 KB.
    finetune: bool,
    /// Stage inputs by image id, views in the same order as its embeddings. Only images added
    /// by `addImage` to a `finetune` trainer have them (`addEmbedding` has no pixels).
    stage_inputs: HashMap<u32, Rc<Vec<Vec<f32>>>>,
    trained: Option<Trained>,
}

impl Inner {
    /// Forget image `id` and what is kept for it; whether it was there.
    fn remove(&mut self, id: u32) -> bool {
        self.thumbs.remove(&id);
        self.stage_inputs.remove(&id);
        self.data.remove(id)
    }
}

/// Most augmented views per image: each costs a backbone pass when the image is added.
const MAX_AUGMENT: usize = 16;

#[wasm_bindgen]
pub struct Trainer {
    inner: Rc<RefCell<Inner>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsProgress {
    phase: String,
    epoch: usize,
    epochs: usize,
    loss: f64,
    val_loss: Option<f64>,
    val_accuracy: Option<f64>,
    done: usize,
    total: usize,
}

async fn embed_one(
    backbone: &Backbone,
    img: &image::RgbImage,
    fit: Fit,
) -> Result<Vec<f32>, JsValue> {
    let x = preprocess::eval_tensor(img, fit);
    let mut rows = infer::run(backbone, &[x], Output::Features, 1)
        .await
        .map_err(js_err)?;
    Ok(rows.remove(0))
}

/// Decoded RGB from `bytes`, with the decoder's reason when it is not an image.
fn decode(bytes: &[u8]) -> Result<image::RgbImage, JsValue> {
    preprocess::decode(bytes).map_err(js_err)
}

/// Decoded pixels `addImages` holds before they go through the backbone: eight 12-megapixel
/// phone photos would otherwise hold ~300 MB of wasm memory at once, which never shrinks.
const MAX_PENDING_PIXELS: u64 = 16_000_000;

/// [`add_decoded`] for `pending` (emptied), each id written to its slot of `out`; the ids.
async fn add_pending(
    inner: &Rc<RefCell<Inner>>,
    label: &str,
    pending: &mut Vec<(u32, image::RgbImage)>,
    out: &js_sys::Array,
) -> Result<Vec<u32>, JsValue> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let (slots, imgs): (Vec<u32>, Vec<image::RgbImage>) = pending.drain(..).unzip();
    let ids = add_decoded(inner, label, imgs).await?;
    for (&slot, &id) in slots.iter().zip(&ids) {
        out.set(slot, JsValue::from(id));
    }
    Ok(ids)
}

/// Embed decoded images of class `label` in one backbone pass (with the trainer's augmented views
/// and, when fine-tuning is on, stage inputs) and add them; their ids, in order.
async fn add_decoded(
    inner: &Rc<RefCell<Inner>>,
    label: &str,
    imgs: Vec<image::RgbImage>,
) -> Result<Vec<u32>, JsValue> {
    let thumbs = imgs
        .iter()
        .map(preprocess::thumbnail_jpeg)
        .collect::<Result<Vec<_>, _>>()
        .map_err(js_err)?;
    let (backbone, fit, augment, seed, finetune) = {
        let i = inner.borrow();
        (
            i.backbone.clone(),
            i.fit,
            i.augment,
            i.data.next_id() as u64,
            i.finetune,
        )
    };
    let batch = infer::DEFAULT_BATCH;
    if finetune {
        let cached: usize = inner.borrow().stage_inputs.values().map(|v| v.len()).sum();
        let per = 1 + augment as u64;
        finetune::check_stage_cache(backbone.arch, cached as u64, imgs.len() as u64 * per, per)
            .map_err(js_err)?;
    }
    let (views, stage_inputs): (Vec<_>, Vec<_>) = if finetune {
        finetune::embeddings_and_stage_inputs(
            &backbone,
            &imgs,
            fit,
            augment,
            seed,
            batch,
            &mut |_, _| true,
        )
        .await
        .map_err(js_err)?
        .into_iter()
        .map(|v| (v.embeddings, Some(v.stage_inputs)))
        .unzip()
    } else {
        dataset::embed_views(&backbone, &imgs, fit, augment, seed, batch, &mut |_, _| {
            true
        })
        .await
        .map_err(js_err)?
        .into_iter()
        .map(|v| (v, None))
        .unzip()
    };
    let mut i = inner.borrow_mut();
    let mut ids = Vec::with_capacity(views.len());
    for ((views, stage), thumb) in views.into_iter().zip(stage_inputs).zip(thumbs) {
        let id = i.data.push(label, views).map_err(js_err)?;
        i.thumbs.insert(id, thumb);
        if let Some(s) = stage {
            i.stage_inputs.insert(id, Rc::new(s));
        }
        ids.push(id);
    }
    Ok(ids)
}

impl Trainer {
    /// What `Trainer.create` resolves to, callable from Rust.
    pub async fn create_async(opts: JsValue) -> Result<Trainer, JsValue> {
        let arch = match get(&opts, "arch").as_string() {
            Some(a) => Some(a.parse::<Arch>().map_err(js_err)?),
            None => None,
        };
        let weights = bytes_of(
            &get(&opts, "weights"),
            "options.weights (the .safetensors weight file)",
        )?;
        Trainer::open(&opts, &weights, arch).await
    }

    /// What `Trainer.load` resolves to, callable from Rust.
    pub async fn load_async(
        model: &[u8],
        weights: &[u8],
        opts: JsValue,
    ) -> Result<Trainer, JsValue> {
        let (parsed, stage) = Model::from_bytes_with_stage(model).map_err(js_err)?;
        let trainer = Trainer::open(&opts, weights, Some(parsed.meta.arch)).await?;
        trainer.set_model(parsed, stage)?;
        Ok(trainer)
    }

    /// Make `model` (with its fine-tuned last stage, if it has one) the trained model, after
    /// checking it was made for this backbone; on error the current model stays.
    fn set_model(&self, model: Model, stage: Option<StageWeights>) -> Result<(), JsValue> {
        let mut inner = self.inner.borrow_mut();
        model
            .check_backbone(inner.info.arch, &inner.info.source_sha256)
            .map_err(js_err)?;
        // Built before anything changes, so a stage that does not fit leaves the trainer as it was.
        let stage = match stage {
            Some(w) => {
                let tuned = inner.backbone.split_last_stage().with_weights(&w);
                Some(TunedStage {
                    stage: Rc::new(tuned.map_err(js_err)?),
                    weights: Rc::new(w),
                })
            }
            None => None,
        };
        for label in &model.meta.labels {
            validate_label(label).map_err(js_err)?;
        }
        // A trainer opened for a model (`Trainer.load`) has no images yet: its classes are the
        // model's. One with images keeps its own, or training would demand images for them.
        if inner.data.examples().is_empty() {
            for label in &model.meta.labels {
                inner.data.class_index(label).map_err(js_err)?;
            }
        }
        if model.meta.fit != inner.fit && !inner.data.examples().is_empty() {
            return Err(js_err(format!(
                "the model was trained with '{}' preprocessing and the images here use '{}'",
                model.meta.fit, inner.fit
            )));
        }
        inner.fit = model.meta.fit;
        let head = Head::from_weights(&model.weight, &model.bias, model.meta.dim, &inner.device);
        inner.trained = Some(Trained {
            head,
            labels: model.meta.labels,
            weight: model.weight,
            bias: model.bias,
            config: model.meta.config,
            report: model.meta.report,
            stage,
        });
        Ok(())
    }

    async fn open(opts: &JsValue, weights: &[u8], arch: Option<Arch>) -> Result<Trainer, JsValue> {
        let device_choice = get(opts, "device")
            .as_string()
            .unwrap_or_else(|| "auto".into());
        let fit = match get(opts, "fit").as_string() {
            Some(s) => s.parse::<Fit>().map_err(js_err)?,
            None => Fit::default(),
        };
        let finetune = match get(opts, "finetune") {
            v if v.is_undefined() || v.is_null() => false,
            v => v
                .as_bool()
                .ok_or_else(|| js_err("options.finetune must be true or false"))?,
        };
        let augment = match get(opts, "augment").as_f64() {
            None => 0,
            Some(k) if k >= 0.0 && k <= MAX_AUGMENT as f64 && k.fract() == 0.0 => k as usize,
            Some(k) => {
                return Err(js_err(format!(
                    "augment must be a whole number from 0 to {MAX_AUGMENT}, not {k}"
                )));
            }
        };
        // Read the header first: a wrong file fails before the device starts.
        let info = weights::read_info(weights).map_err(js_err)?;
        let arch = arch.unwrap_or(info.arch);
        let (device, backend, reason) = select_device(&device_choice).await?;
        let (backbone, info) = weights::load_web(weights, Some(arch), &device).map_err(js_err)?;
        Ok(Trainer {
            inner: Rc::new(RefCell::new(Inner {
                backbone: Rc::new(backbone.fold_batchnorm()),
                device,
                backend,
                reason,
                info,
                fit,
                augment,
                data: Dataset::new(),
                thumbs: HashMap::new(),
                finetune,
                stage_inputs: HashMap::new(),
                trained: None,
            })),
        })
    }
}

/// Each example's cached stage inputs, in `examples` order, or why fine-tuning cannot run.
fn stage_rows_for(
    inner: &Inner,
    examples: &[dataset::Example],
) -> Result<Vec<Rc<Vec<Vec<f32>>>>, JsValue> {
    if !inner.finetune {
        return Err(js_err(
            "fine-tuning the last stage needs each image's stage input, which this trainer does \
             not keep: create it with Trainer.create({..., finetune: true}) and add the images \
             again (the Sortwise client option is the same: {finetune: true})",
        ));
    }
    let rows: Vec<_> = examples
        .iter()
        .filter_map(|e| inner.stage_inputs.get(&e.id).cloned())
        .collect();
    let missing = examples.len() - rows.len();
    if missing > 0 {
        return Err(js_err(format!(
            "{missing} of the {} images were added from a saved embedding (addEmbedding) and have \
             no pixels to fine-tune the last stage on: add them with addImage instead (from the \
             original or its thumbnail), or train without finetuneLast",
            examples.len()
        )));
    }
    Ok(rows)
}

async fn predict_image(
    inner: &Rc<RefCell<Inner>>,
    img: &image::RgbImage,
    opts: &JsValue,
) -> Result<JsValue, JsValue> {
    let threshold = get(opts, "threshold").as_f64().unwrap_or(0.0) as f32;
    let (backbone, fit, device, trained) = {
        let i = inner.borrow();
        let t = i
            .trained
            .clone()
            .ok_or_else(|| js_err("no model yet: train or load one first"))?;
        (i.backbone.clone(), i.fit, i.device.clone(), t)
    };
    let embedding = match &trained.stage {
        None => embed_one(&backbone, img, fit).await?,
        Some(s) => {
            let x = preprocess::eval_tensor(img, fit);
            finetune::tuned_features(&backbone, &s.stage, &[x], 1)
                .await
                .map_err(js_err)?
                .remove(0)
        }
    };
    let probs = trainer::probabilities(&trained.head, &[&embedding], &device)
        .await
        .map_err(js_err)?;
    to_js(&classifier::prediction(
        &trained.labels,
        &probs[0],
        threshold,
    ))
}

#[wasm_bindgen]
impl Trainer {
    /// `Trainer.create({arch, weights, device, fit})` -> `Promise<Trainer>`.
    pub fn create(opts: JsValue) -> Promise {
        future_to_promise(async move { Ok(Trainer::create_async(opts).await?.into()) })
    }

    /// `Trainer.load(modelFile, weights, {device})`: a trainer ready to predict with a saved model.
    pub fn load(model: Uint8Array, weights: Uint8Array, opts: JsValue) -> Promise {
        let (model, weights) = (model.to_vec(), weights.to_vec());
        future_to_promise(
            async move { Ok(Trainer::load_async(&model, &weights, opts).await?.into()) },
        )
    }

    /// `'webgpu'` or `'cpu'`: what actually runs.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.inner.borrow().backend.to_string()
    }

    /// Why that backend was chosen, for the page to show.
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        self.inner.borrow().reason.clone()
    }

    /// Threads the CPU backend runs on (1 on WebGPU, and in the single-threaded build).
    #[wasm_bindgen(getter)]
    pub fn threads(&self) -> usize {
        if self.inner.borrow().backend == "cpu" {
            cpu_threads()
        } else {
            1
        }
    }

    /// Embed an encoded image under `label` (creating the class); resolves to the image id.
    /// Its UI copy is kept (`thumbnail(id)`), the pixels are not; a `finetune` trainer also
    /// keeps each view's stage input.
    #[wasm_bindgen(js_name = addImage)]
    pub fn add_image(&self, label: String, bytes: Uint8Array) -> Promise {
        let inner = self.inner.clone();
        let bytes = bytes.to_vec();
        future_to_promise(async move {
            let label = validate_label(&label).map_err(js_err)?;
            let img = decode(&bytes)?;
            drop(bytes);
            let ids = add_decoded(&inner, &label, vec![img]).await?;
            Ok(JsValue::from(ids[0]))
        })
    }

    /// Several images of one class in one backbone pass (faster per image than `addImage`,
    /// most of all on several threads); resolves to an array with, per image in order, its id or,
    /// for a file that is not a usable image, the reason as a string (the others are still added).
    #[wasm_bindgen(js_name = addImages)]
    pub fn add_images(&self, label: String, images: js_sys::Array) -> Promise {
        let inner = self.inner.clone();
        let bytes: Result<Vec<Vec<u8>>, JsValue> =
            images.iter().map(|b| bytes_of(&b, "each image")).collect();
        future_to_promise(async move {
            let label = validate_label(&label).map_err(js_err)?;
            let out = js_sys::Array::new();
            // Decoded images waiting for the backbone, with their place in `out`.
            let mut pending = Vec::new();
            let mut pixels = 0u64;
            let mut added = Vec::new();
            let run = async {
                for b in bytes? {
                    match preprocess::decode(&b) {
                        Ok(img) => {
                            pixels += u64::from(img.width()) * u64::from(img.height());
                            pending.push((out.push(&JsValue::NULL) - 1, img));
                            if pixels >= MAX_PENDING_PIXELS {
                                added
                                    .extend(add_pending(&inner, &label, &mut pending, &out).await?);
                                pixels = 0;
                            }
                        }
                        Err(e) => {
                            out.push(&JsValue::from_str(&e.to_string()));
                        }
                    }
                }
                added.extend(add_pending(&inner, &label, &mut pending, &out).await?);
                Ok::<(), JsValue>(())
            };
            if let Err(e) = run.await {
                // All or nothing: photos added before the failure are taken out again, so the
                // trainer holds what the caller, seeing a rejection, thinks it holds.
                let mut i = inner.borrow_mut();
                for id in added {
                    i.remove(id);
                }
                return Err(e);
            }
            Ok(out.into())
        })
    }

    /// Add an image by its saved embedding (`embedding(id)` of an earlier session, same backbone)
    /// and optional UI copy, without running the backbone. Such an image has no pixels, so
    /// `train({finetuneLast: true})` refuses to run while it is here (add it with `addImage`,
    /// e.g. from its thumbnail, instead).
    #[wasm_bindgen(js_name = addEmbedding)]
    pub fn add_embedding(
        &self,
        label: String,
        embedding: Float32Array,
        thumbnail: Option<Uint8Array>,
    ) -> Result<u32, JsValue> {
        let mut i = self.inner.borrow_mut();
        let dim = i.info.arch.feature_dim();
        let flat = embedding.to_vec();
        if flat.is_empty() || !flat.len().is_multiple_of(dim) {
            return Err(js_err(format!(
                "an embedding for {} has a multiple of {dim} values, this one {}: saved with another backbone?",
                i.info.arch,
                flat.len()
            )));
        }
        if flat.iter().any(|v| !v.is_finite()) {
            return Err(js_err("the embedding contains NaN or infinite values"));
        }
        let views = flat.chunks(dim).map(<[f32]>::to_vec).collect();
        let id = i.data.push(&label, views).map_err(js_err)?;
        if let Some(t) = thumbnail {
            i.thumbs.insert(id, t.to_vec());
        }
        Ok(id)
    }

    /// All views of image `id`'s embedding, concatenated (evaluation view first).
    pub fn embedding(&self, id: u32) -> Option<Float32Array> {
        let i = self.inner.borrow();
        let e = i.data.get(id)?;
        let flat: Vec<f32> = e.views.concat();
        Some(Float32Array::from(flat.as_slice()))
    }

    /// The JPEG UI copy of image `id` (shorter side at most 256 px).
    pub fn thumbnail(&self, id: u32) -> Option<Uint8Array> {
        let i = self.inner.borrow();
        i.thumbs.get(&id).map(|t| Uint8Array::from(t.as_slice()))
    }

    /// Rename a class; a trained model's label follows.
    #[wasm_bindgen(js_name = renameClass)]
    pub fn rename_class(&self, old: String, new: String) -> Result<(), JsValue> {
        let mut i = self.inner.borrow_mut();
        i.data.rename_class(&old, &new).map_err(js_err)?;
        let new = validate_label(&new).map_err(js_err)?;
        if let Some(t) = i.trained.as_mut()
            && let Some(l) = t.labels.iter_mut().find(|l| **l == old.trim())
        {
            *l = new;
        }
        Ok(())
    }

    /// Remove a class and its images; resolves to how many images were removed.
    #[wasm_bindgen(js_name = removeClass)]
    pub fn remove_class(&self, label: String) -> Result<u32, JsValue> {
        let mut guard = self.inner.borrow_mut();
        let i = &mut *guard;
        let removed = i.data.remove_class(&label).map_err(js_err)?;
        let live: std::collections::HashSet<u32> = i.data.examples().iter().map(|e| e.id).collect();
        i.thumbs.retain(|id, _| live.contains(id));
        i.stage_inputs.retain(|id, _| live.contains(id));
        Ok(removed as u32)
    }

    #[wasm_bindgen(js_name = removeImage)]
    pub fn remove_image(&self, id: u32) -> bool {
        self.inner.borrow_mut().remove(id)
    }

    /// Feature dimension of the backbone (values per embedding view).
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> u32 {
        self.inner.borrow().info.arch.feature_dim() as u32
    }

    /// Whether this trainer was created with `finetune: true` (keeps stage inputs, so
    /// `train({finetuneLast: true})` can run).
    #[wasm_bindgen(getter)]
    pub fn finetune(&self) -> bool {
        self.inner.borrow().finetune
    }

    #[wasm_bindgen(getter)]
    pub fn arch(&self) -> String {
        self.inner.borrow().info.arch.to_string()
    }

    /// Class labels in insertion order.
    pub fn labels(&self) -> Vec<String> {
        self.inner.borrow().data.labels().to_vec()
    }

    /// Images per class, in label order.
    pub fn counts(&self) -> Vec<u32> {
        self.inner
            .borrow()
            .data
            .counts()
            .into_iter()
            .map(|c| c as u32)
            .collect()
    }

    /// Train a new head; `progress(p)` after every epoch, returning `false` cancels (the previous
    /// model, if any, is kept). By default the model kept is refit on every photo for the epochs
    /// the held-out run chose (progress phase `'refit'`, report `refit: true, refitEpochs`);
    /// `{refit: false}` keeps the held-out run's model.
    pub fn train(&self, opts: JsValue, progress: Option<Function>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            // Augmented views are embedded when images are added, so `augment` is a create
            // option; a different value here would silently not happen, so say so instead.
            if let Some(k) = get(&opts, "augment").as_f64() {
                let have = inner.borrow().augment;
                if k != have as f64 {
                    return Err(js_err(format!(
                        "augment is chosen when images are added (Trainer.create({{augment: {k}}})); this trainer embeds {have} augmented views per image"
                    )));
                }
            }
            let cfg: TrainConfig = if opts.is_undefined() || opts.is_null() {
                TrainConfig::default()
            } else {
                serde_wasm_bindgen::from_value(opts)
                    .map_err(|e| js_err(format!("train options: {e}")))?
            };
            let (labels, examples, device) = {
                let i = inner.borrow();
                (
                    i.data.labels().to_vec(),
                    i.data.examples().to_vec(),
                    i.device.clone(),
                )
            };
            // Checked before anything runs: a missing stage input would otherwise surface
            // after the split, or as a head-only model the user did not ask for.
            let stage_rows = if cfg.finetune_last {
                Some(stage_rows_for(&inner.borrow(), &examples)?)
            } else {
                None
            };
            let y: Vec<usize> = examples.iter().map(|e| e.label).collect();
            let (train_idx, val_idx) = split::stratified(&y, labels.len(), cfg.val_split, cfg.seed);
            let (train_set, val_set) = trainer::sets(&examples, &train_idx, &val_idx);
            let mut on_progress = async |p: &trainer::Progress| -> bool {
                let Some(f) = &progress else { return true };
                let js = JsProgress {
                    phase: p.phase.clone(),
                    epoch: p.epoch,
                    epochs: p.epochs,
                    loss: p.loss,
                    val_loss: p.val_loss,
                    val_accuracy: p.val_accuracy,
                    done: p.epoch,
                    total: p.epochs,
                };
                let Ok(ret) = to_js(&js).and_then(|v| f.call1(&JsValue::NULL, &v)) else {
                    return true;
                };
                // A callback may return a Promise (the worker does, to let a cancel message in).
                let ret = match ret.dyn_into::<Promise>() {
                    Ok(promise) => JsFuture::from(promise).await.unwrap_or(JsValue::TRUE),
                    Err(value) => value,
                };
                ret.as_bool() != Some(false)
            };
            let (head, report, stage) = match &stage_rows {
                None => {
                    // The refit trains on the validation photos' augmented views too.
                    let val_views: Vec<&[Vec<f32>]> = val_idx
                        .iter()
                        .map(|&i| examples[i].views.as_slice())
                        .collect();
                    let (head, report) = trainer::train_with_views(
                        &labels,
                        &train_set,
                        &val_set,
                        Some(&val_views),
                        &cfg,
                        &device,
                        &mut on_progress,
                    )
                    .await
                    .map_err(js_err)?;
                    (head, report, None)
                }
                Some(rows) => {
                    // The same split, over the stage inputs instead of the embeddings.
                    let train_set: Vec<TrainExample> = train_idx
                        .iter()
                        .map(|&i| TrainExample {
                            views: rows[i].as_slice(),
                            label: examples[i].label,
                        })
                        .collect();
                    let val_set: Vec<ValExample> = val_idx
                        .iter()
                        .map(|&i| ValExample {
                            embedding: &rows[i][0],
                            label: examples[i].label,
                            id: examples[i].id,
                        })
                        .collect();
                    let val_views: Vec<&[Vec<f32>]> =
                        val_idx.iter().map(|&i| rows[i].as_slice()).collect();
                    let pretrained = inner.borrow().backbone.split_last_stage();
                    let (tuned, report) = finetune::train_with_views(
                        &labels,
                        &train_set,
                        &val_set,
                        Some(&val_views),
                        &cfg,
                        pretrained,
                        &device,
                        &mut on_progress,
                    )
                    .await
                    .map_err(js_err)?;
                    let weights = tuned.stage.to_weights().await.map_err(js_err)?;
                    let stage = TunedStage {
                        stage: Rc::new(tuned.stage),
                        weights: Rc::new(weights),
                    };
                    (tuned.head, report, Some(stage))
                }
            };
            let (weight, bias) = head.to_weights().await.map_err(js_err)?;
            let js_report = to_js(&report)?;
            inner.borrow_mut().trained = Some(Trained {
                head,
                labels,
                weight,
                bias,
                config: cfg,
                report: Some(report),
                stage,
            });
            Ok(js_report)
        })
    }

    /// `predict(bytes, {threshold})` -> `{label, confidence, unsure, probs: [{label, p}]}`.
    pub fn predict(&self, bytes: Uint8Array, opts: JsValue) -> Promise {
        let inner = self.inner.clone();
        let bytes = bytes.to_vec();
        future_to_promise(async move {
            let img = decode(&bytes)?;
            predict_image(&inner, &img, &opts).await
        })
    }

    /// `predictPixels(rgba, width, height, {threshold})`: the same for canvas pixels
    /// (`ImageData.data`), e.g. webcam frames, without an encode/decode round trip.
    #[wasm_bindgen(js_name = predictPixels)]
    pub fn predict_pixels(&self, rgba: &[u8], width: u32, height: u32, opts: JsValue) -> Promise {
        let inner = self.inner.clone();
        let img = preprocess::from_rgba(rgba, width, height);
        future_to_promise(async move {
            let img = img.map_err(js_err)?;
            predict_image(&inner, &img, &opts).await
        })
    }

    /// Replace the trained model with a `.sortwise` file made for this backbone (with its
    /// fine-tuned last stage, if it has one); resolves to its labels. A wrong, truncated or newer
    /// file rejects and the current model stays.
    #[wasm_bindgen(js_name = importModel)]
    pub fn import_model(&self, bytes: &[u8]) -> Result<Vec<String>, JsValue> {
        let (model, stage) = Model::from_bytes_with_stage(bytes).map_err(js_err)?;
        let labels = model.meta.labels.clone();
        self.set_model(model, stage)?;
        Ok(labels)
    }

    /// The trained model as a `.sortwise` file (same format as the CLI's; version 2 with the
    /// `stage.*` tensors when the last stage was fine-tuned).
    #[wasm_bindgen(js_name = exportModel)]
    pub fn export_model(&self) -> Result<Uint8Array, JsValue> {
        let i = self.inner.borrow();
        let t = i
            .trained
            .as_ref()
            .ok_or_else(|| js_err("no model yet: train one first"))?;
        let model = Model {
            meta: ModelMeta {
                version: model_file::VERSION,
                arch: i.info.arch,
                backbone_source_sha256: i.info.source_sha256.clone(),
                labels: t.labels.clone(),
                fit: i.fit,
                dim: i.info.arch.feature_dim(),
                config: t.config.clone(),
                report: t.report.clone(),
                producer: format!("sortwise {} (browser)", env!("CARGO_PKG_VERSION")),
            },
            weight: t.weight.clone(),
            bias: t.bias.clone(),
        };
        let stage = t.stage.as_ref().map(|s| &*s.weights);
        let bytes = model.to_bytes_with_stage(stage).map_err(js_err)?;
        Ok(Uint8Array::from(bytes.as_slice()))
    }
}
