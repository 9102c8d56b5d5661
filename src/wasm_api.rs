//! The JS API (`pkg/sortwise.js`): `Trainer` over the same engine the CLI drives. Every method
//! that touches the device returns a Promise, because WebGPU readback is asynchronous, and every
//! failure rejects with a JS `Error` carrying the engine's message.
//!
//! State lives behind `Rc<RefCell<_>>` so the futures handed to JS own what they use; no borrow
//! is held across an `await`, so overlapping calls from JS cannot trip the RefCell.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use js_sys::{Function, Promise, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use crate::arch::Arch;
use crate::backbone::Backbone;
use crate::classifier;
use crate::dataset::{Dataset, validate_label};
use crate::head::Head;
use crate::infer::{self, Output};
use crate::model_file::{self, Model, ModelMeta};
use crate::preprocess::{self, Fit};
use crate::split;
use crate::trainer::{self, Report, TrainConfig};
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

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(js_err)
}

fn bytes_of(value: &JsValue, what: &str) -> Result<Vec<u8>, JsValue> {
    if value.is_instance_of::<Uint8Array>() {
        Ok(Uint8Array::new(value).to_vec())
    } else {
        Err(js_err(format!("{what} must be a Uint8Array")))
    }
}

thread_local! {
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// The page's WebGPU device, started on first use. burn registers one server per adapter and
/// refuses a second `init_async`, so every trainer in this thread shares it.
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
        "cpu" => Ok((Device::flex(), "cpu", "requested".into())),
        "webgpu" => Ok((
            webgpu_device().await.map_err(js_err)?,
            "webgpu",
            "requested".into(),
        )),
        "auto" => match software_or_missing_adapter().await {
            Some(why) => Ok((
                Device::flex(),
                "cpu",
                format!("{why}; using the CPU backend"),
            )),
            None => match webgpu_device().await {
                Ok(d) => Ok((d, "webgpu", "hardware WebGPU adapter".into())),
                Err(e) => Ok((Device::flex(), "cpu", format!("{e}; using the CPU backend"))),
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
}

struct Inner {
    backbone: Rc<Backbone>,
    device: Device,
    backend: &'static str,
    reason: String,
    info: WeightsInfo,
    fit: Fit,
    data: Dataset,
    trained: Option<Trained>,
}

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

async fn embed_one(backbone: &Backbone, bytes: &[u8], fit: Fit) -> Result<Vec<f32>, JsValue> {
    let x = preprocess::preprocess(bytes, fit).map_err(js_err)?;
    let mut rows = infer::run(backbone, &[x], Output::Features, 1)
        .await
        .map_err(js_err)?;
    Ok(rows.remove(0))
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
        let model = Model::from_bytes(model).map_err(js_err)?;
        let trainer = Trainer::open(&opts, weights, Some(model.meta.arch)).await?;
        {
            let mut inner = trainer.inner.borrow_mut();
            model
                .check_backbone(inner.info.arch, &inner.info.source_sha256)
                .map_err(js_err)?;
            for label in &model.meta.labels {
                inner.data.class_index(label).map_err(js_err)?;
            }
            inner.fit = model.meta.fit;
            let head =
                Head::from_weights(&model.weight, &model.bias, model.meta.dim, &inner.device);
            inner.trained = Some(Trained {
                head,
                labels: model.meta.labels.clone(),
                weight: model.weight,
                bias: model.bias,
                config: model.meta.config,
                report: model.meta.report,
            });
        }
        Ok(trainer)
    }

    async fn open(opts: &JsValue, weights: &[u8], arch: Option<Arch>) -> Result<Trainer, JsValue> {
        let device_choice = get(opts, "device")
            .as_string()
            .unwrap_or_else(|| "auto".into());
        let fit = match get(opts, "fit").as_string() {
            Some(s) => s.parse::<Fit>().map_err(js_err)?,
            None => Fit::default(),
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
                data: Dataset::new(),
                trained: None,
            })),
        })
    }
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

    /// Embed an encoded image under `label` (creating the class); resolves to the image id.
    #[wasm_bindgen(js_name = addImage)]
    pub fn add_image(&self, label: String, bytes: Uint8Array) -> Promise {
        let inner = self.inner.clone();
        let bytes = bytes.to_vec();
        future_to_promise(async move {
            let label = validate_label(&label).map_err(js_err)?;
            let (backbone, fit) = {
                let i = inner.borrow();
                (i.backbone.clone(), i.fit)
            };
            let embedding = embed_one(&backbone, &bytes, fit).await?;
            let id = inner
                .borrow_mut()
                .data
                .push(&label, vec![embedding])
                .map_err(js_err)?;
            Ok(JsValue::from(id))
        })
    }

    #[wasm_bindgen(js_name = removeImage)]
    pub fn remove_image(&self, id: u32) -> bool {
        self.inner.borrow_mut().data.remove(id)
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
    /// model, if any, is kept).
    pub fn train(&self, opts: JsValue, progress: Option<Function>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
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
            let (head, report) = trainer::train(
                &labels,
                &train_set,
                &val_set,
                &cfg,
                &device,
                &mut on_progress,
            )
            .await
            .map_err(js_err)?;
            let (weight, bias) = head.to_weights().await.map_err(js_err)?;
            let js_report = to_js(&report)?;
            inner.borrow_mut().trained = Some(Trained {
                head,
                labels,
                weight,
                bias,
                config: cfg,
                report: Some(report),
            });
            Ok(js_report)
        })
    }

    /// `predict(bytes, {threshold})` -> `{label, confidence, unsure, probs: [{label, p}]}`.
    pub fn predict(&self, bytes: Uint8Array, opts: JsValue) -> Promise {
        let inner = self.inner.clone();
        let bytes = bytes.to_vec();
        future_to_promise(async move {
            let threshold = get(&opts, "threshold").as_f64().unwrap_or(0.0) as f32;
            let (backbone, fit, device, trained) = {
                let i = inner.borrow();
                let t = i
                    .trained
                    .clone()
                    .ok_or_else(|| js_err("no model yet: train or load one first"))?;
                (i.backbone.clone(), i.fit, i.device.clone(), t)
            };
            let embedding = embed_one(&backbone, &bytes, fit).await?;
            let probs = trainer::probabilities(&trained.head, &[&embedding], &device)
                .await
                .map_err(js_err)?;
            to_js(&classifier::prediction(
                &trained.labels,
                &probs[0],
                threshold,
            ))
        })
    }

    /// The trained model as a `.sortwise` file (same format as the CLI's).
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
        let bytes = model.to_bytes().map_err(js_err)?;
        Ok(Uint8Array::from(bytes.as_slice()))
    }
}
