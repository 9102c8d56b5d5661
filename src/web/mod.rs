//! The JS API (`pkg/sortwise.js`): `Trainer`, a binding of the engine's [`SharedSession`] (the
//! same session the CLI drives). Every method that touches the device returns a Promise,
//! because WebGPU readback is asynchronous, and every failure rejects with a JS `Error` carrying
//! the engine's message.

mod convert;
mod device;

use js_sys::{Float32Array, Function, Promise, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use crate::arch::Arch;
use crate::data::dataset::validate_label;
use crate::device::Backend;
use crate::formats::model_file::Model;
use crate::formats::onnx::{Dtype, ExportOptions};
use crate::formats::weights;
use crate::insight::doctor;
use crate::model::infer;
use crate::preprocess;
use crate::session::{self, AddOutcome, Session, SharedSession, Split};
use crate::trainer::{Progress, TrainConfig};
use convert::{arch_option, bytes_of, get, js_err, labels_of, session_options, to_js};
pub use device::{cpu_threads, webgpu_device};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// `initThreadPool(n)` (JS): starts the rayon pool burn-flex and gemm run on, as `n` Web
/// Workers sharing this module's memory. The worker awaits it before creating a trainer.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// `rules()`: the limits and defaults the page must share with the engine (class-name length,
/// augmented views, the training defaults, the "unsure" label).
#[wasm_bindgen]
pub fn rules() -> Result<JsValue, JsValue> {
    to_js(&session::rules())
}

/// `validateLabel(name)`: the class name as the engine keeps it (trimmed), or an `Error` saying
/// why it is refused.
#[wasm_bindgen(js_name = validateLabel)]
pub fn validate_label_js(name: &str) -> Result<String, JsValue> {
    validate_label(name).map_err(js_err)
}

/// `sharedModel(bytes)`: the `.sortwise` file a shared link's bytes (`Trainer.shareModel`) stand
/// for, to give to `importModel` / `Trainer.load`; rejects cut or foreign bytes.
#[wasm_bindgen(js_name = sharedModel)]
pub fn shared_model(bytes: &[u8]) -> Result<Uint8Array, JsValue> {
    let model = crate::formats::share::decode(bytes).map_err(js_err)?;
    let file = model.to_bytes().map_err(js_err)?;
    Ok(Uint8Array::from(file.as_slice()))
}

#[wasm_bindgen]
pub struct Trainer {
    session: SharedSession,
    backend: Backend,
    reason: String,
}

/// What the progress callback receives (`done`/`total` repeat `epoch`/`epochs` for callers
/// written before the phases had epochs).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsProgress<'a> {
    #[serde(flatten)]
    progress: &'a Progress,
    done: usize,
    total: usize,
}

impl Trainer {
    /// What `Trainer.create` resolves to, callable from Rust.
    pub async fn create_async(opts: JsValue) -> Result<Trainer, JsValue> {
        let weights = bytes_of(
            &get(&opts, "weights"),
            "options.weights (the .safetensors weight file)",
        )?;
        Trainer::open(&opts, &weights, arch_option(&opts)?).await
    }

    /// What `Trainer.load` resolves to, callable from Rust.
    pub async fn load_async(
        model: &[u8],
        weights: &[u8],
        opts: JsValue,
    ) -> Result<Trainer, JsValue> {
        // Parsed first: a wrong file fails before the device starts.
        let (model, stage) = Model::from_bytes_with_stage(model).map_err(js_err)?;
        let trainer = Trainer::open(&opts, weights, Some(model.meta.arch)).await?;
        trainer
            .session
            .get_mut()
            .set_model(model, stage)
            .map_err(js_err)?;
        Ok(trainer)
    }

    async fn open(opts: &JsValue, weights: &[u8], arch: Option<Arch>) -> Result<Trainer, JsValue> {
        let choice = get(opts, "device")
            .as_string()
            .unwrap_or_else(|| "auto".into());
        let options = session_options(opts)?;
        // The header first: a wrong file fails before the device starts.
        let info = weights::read_info(weights).map_err(js_err)?;
        let chosen = device::select(&choice).await?;
        let session = Session::from_web_weights(
            weights,
            Some(arch.unwrap_or(info.arch)),
            &chosen.device,
            options,
        )
        .map_err(js_err)?;
        Ok(Trainer {
            session: SharedSession::new(session),
            backend: chosen.backend,
            reason: chosen.reason,
        })
    }
}

/// Calls `progress(p)` (when given) and awaits what it returns when that is a Promise (the
/// worker returns one, to let a cancel message in); `false` cancels.
async fn report_progress(progress: &Option<Function>, p: &Progress) -> bool {
    let Some(f) = progress else { return true };
    let js = JsProgress {
        progress: p,
        done: p.epoch,
        total: p.epochs,
    };
    let Ok(ret) = to_js(&js).and_then(|v| f.call1(&JsValue::NULL, &v)) else {
        return true;
    };
    let ret = match ret.dyn_into::<Promise>() {
        Ok(promise) => JsFuture::from(promise).await.unwrap_or(JsValue::TRUE),
        Err(value) => value,
    };
    ret.as_bool() != Some(false)
}

impl Trainer {
    /// What `ask` answers for the session and `opts.threshold`, as a Promise.
    fn answer<T: Serialize>(
        &self,
        opts: JsValue,
        ask: impl AsyncFnOnce(SharedSession, f32) -> crate::Result<T> + 'static,
    ) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            let threshold = get(&opts, "threshold").as_f64().unwrap_or(0.0) as f32;
            to_js(&ask(session, threshold).await.map_err(js_err)?)
        })
    }
}

#[wasm_bindgen]
impl Trainer {
    /// `Trainer.create({arch, weights, device, fit, finetune, augment})` -> `Promise<Trainer>`.
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
        self.backend.name().to_string()
    }

    /// Why that backend was chosen, for the page to show.
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        self.reason.clone()
    }

    /// Threads the CPU backend runs on (1 on WebGPU, and in the single-threaded build).
    #[wasm_bindgen(getter)]
    pub fn threads(&self) -> usize {
        match self.backend {
            Backend::Cpu => cpu_threads(),
            Backend::Gpu => 1,
        }
    }

    /// Photos to hand `addImages` at once for the fastest embedding a photo on this backbone and
    /// thread count (`model::infer::add_batch`); 8 on WebGPU.
    #[wasm_bindgen(getter, js_name = addBatch)]
    pub fn add_batch(&self) -> usize {
        match self.backend {
            Backend::Cpu => infer::add_batch(self.session.get().arch(), cpu_threads()),
            Backend::Gpu => 8,
        }
    }

    /// Embed an encoded image under `label` (creating the class); resolves to the image id.
    /// Its UI copy is kept (`thumbnail(id)`), the pixels are not; a `finetune` trainer also
    /// keeps each view's stage input.
    #[wasm_bindgen(js_name = addImage)]
    pub fn add_image(&self, label: String, bytes: Uint8Array) -> Promise {
        let session = self.session.clone();
        let bytes = bytes.to_vec();
        future_to_promise(async move {
            let id = session.add_image(&label, bytes).await.map_err(js_err)?;
            Ok(JsValue::from(id))
        })
    }

    /// Several images in one backbone pass (faster per image than `addImage`, most of all on
    /// several threads), all of class `label` or, with an array of names, each of its own
    /// (`label[i]` for `images[i]`); resolves to an array with, per image in order, its id or,
    /// for a file that is not a usable image, the reason as a string (the others are still added).
    /// If the engine fails, it rejects and none of them is added.
    #[wasm_bindgen(js_name = addImages)]
    pub fn add_images(&self, label: JsValue, images: js_sys::Array) -> Promise {
        let session = self.session.clone();
        let files: Result<Vec<Vec<u8>>, JsValue> =
            images.iter().map(|b| bytes_of(&b, "each image")).collect();
        let labels = labels_of(&label, images.length() as usize);
        future_to_promise(async move {
            let outcomes = session
                .add_images_each(labels?, files?)
                .await
                .map_err(js_err)?;
            let out = js_sys::Array::new();
            for o in outcomes {
                out.push(&match o {
                    AddOutcome::Added(id) => JsValue::from(id),
                    AddOutcome::Skipped(why) => JsValue::from_str(&why),
                });
            }
            Ok(out.into())
        })
    }

    /// `warmUp(images)`: that many synthetic photos through the backbone, nothing kept
    /// (`SharedSession::warm_up`); the worker runs it while the engine is idle after its start.
    #[wasm_bindgen(js_name = warmUp)]
    pub fn warm_up(&self, images: u32) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            session.warm_up(images as usize).await.map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
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
        self.session
            .get_mut()
            .add_embedding(&label, &embedding.to_vec(), thumbnail.map(|t| t.to_vec()))
            .map_err(js_err)
    }

    /// All views of image `id`'s embedding, concatenated (evaluation view first).
    pub fn embedding(&self, id: u32) -> Option<Float32Array> {
        let s = self.session.get();
        let flat: Vec<f32> = s.embedding(id)?.concat();
        Some(Float32Array::from(flat.as_slice()))
    }

    /// The JPEG UI copy of image `id` (shorter side at most 256 px).
    pub fn thumbnail(&self, id: u32) -> Option<Uint8Array> {
        self.session.get().thumbnail(id).map(Uint8Array::from)
    }

    /// The JPEG UI copy of image `id`, handed over: `thumbnail(id)` has none afterwards. The
    /// page's worker takes each one, since the page keeps the thumbnails itself.
    #[wasm_bindgen(js_name = takeThumbnail)]
    pub fn take_thumbnail(&self, id: u32) -> Option<Uint8Array> {
        self.session
            .get_mut()
            .take_thumbnail(id)
            .map(|t| Uint8Array::from(t.as_slice()))
    }

    /// Rename a class; a trained model's label follows.
    #[wasm_bindgen(js_name = renameClass)]
    pub fn rename_class(&self, old: String, new: String) -> Result<(), JsValue> {
        self.session
            .get_mut()
            .rename_class(&old, &new)
            .map_err(js_err)
    }

    /// Remove a class and its images; how many images were removed.
    #[wasm_bindgen(js_name = removeClass)]
    pub fn remove_class(&self, label: String) -> Result<u32, JsValue> {
        let removed = self
            .session
            .get_mut()
            .remove_class(&label)
            .map_err(js_err)?;
        Ok(removed as u32)
    }

    #[wasm_bindgen(js_name = removeImage)]
    pub fn remove_image(&self, id: u32) -> bool {
        self.session.get_mut().remove_image(id)
    }

    /// Feature dimension of the backbone (values per embedding view).
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> u32 {
        self.session.get().dim() as u32
    }

    /// Whether this trainer was created with `finetune: true` (keeps stage inputs, so
    /// `train({finetuneLast: true})` can run).
    #[wasm_bindgen(getter)]
    pub fn finetune(&self) -> bool {
        self.session.get().options().finetune
    }

    #[wasm_bindgen(getter)]
    pub fn arch(&self) -> String {
        self.session.get().arch().to_string()
    }

    /// Class labels in insertion order.
    pub fn labels(&self) -> Vec<String> {
        self.session.get().labels().to_vec()
    }

    /// Images per class, in label order.
    pub fn counts(&self) -> Vec<u32> {
        let s = self.session.get();
        s.counts().into_iter().map(|c| c as u32).collect()
    }

    /// Train a new model; `progress(p)` after every epoch, returning `false` cancels (the
    /// previous model, if any, is kept). By default the model kept is refit on every photo for the
    /// epochs the held-out run chose (progress phase `'refit'`, report `refit: true,
    /// refitEpochs`); `{refit: false}` keeps the held-out run's model.
    pub fn train(&self, opts: JsValue, progress: Option<Function>) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            // Augmented views are embedded when images are added, so `augment` is a create
            // option; a different value here would silently not happen, so say so instead.
            if let Some(k) = get(&opts, "augment").as_f64() {
                let have = session.get().options().augment;
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
            let mut on_progress = async |p: &Progress| report_progress(&progress, p).await;
            let report = session
                .train(cfg, &Split::Stratified, &mut on_progress)
                .await
                .map_err(js_err)?;
            to_js(&report)
        })
    }

    /// `predict(bytes, {threshold})` -> `{label, confidence, unsure, probs: [{label, p}]}`.
    pub fn predict(&self, bytes: Uint8Array, opts: JsValue) -> Promise {
        let bytes = bytes.to_vec();
        self.answer(opts, async move |s, threshold| {
            s.predict_bytes(&bytes, threshold).await
        })
    }

    /// `predictPixels(rgba, width, height, {threshold})`: the same for canvas pixels
    /// (`ImageData.data`), e.g. webcam frames, without an encode/decode round trip.
    #[wasm_bindgen(js_name = predictPixels)]
    pub fn predict_pixels(&self, rgba: &[u8], width: u32, height: u32, opts: JsValue) -> Promise {
        let img = preprocess::from_rgba(rgba, width, height);
        self.answer(opts, async move |s, threshold| {
            s.predict(&img?, threshold).await
        })
    }

    /// `explain(bytes, {threshold})`: the prediction (as `predict`'s) and `heatmap: {width,
    /// height, maps, region}`, every class's activation map from the same forward pass
    /// (`maps[c]` in label order, `height × width` values in logit units; `region` is where the
    /// map lies on the photo, as fractions).
    pub fn explain(&self, bytes: Uint8Array, opts: JsValue) -> Promise {
        let bytes = bytes.to_vec();
        self.answer(opts, async move |s, threshold| {
            s.explain_bytes(&bytes, threshold).await
        })
    }

    /// `explainPixels(rgba, width, height, {threshold})`: `explain` for canvas pixels.
    #[wasm_bindgen(js_name = explainPixels)]
    pub fn explain_pixels(&self, rgba: &[u8], width: u32, height: u32, opts: JsValue) -> Promise {
        let img = preprocess::from_rgba(rgba, width, height);
        self.answer(opts, async move |s, threshold| {
            s.explain(&img?, threshold).await
        })
    }

    /// `diagnose({similarity, folds, suspects}, progress)`: the data's check-up (near-duplicate
    /// pairs with conflict/leak flags, likely label errors, per-class advice, balance) from the
    /// cached embeddings; leaks are against the last training's validation photos. `progress(p)`
    /// after each out-of-fold head (phase `'doctor'`); returning `false` cancels.
    pub fn diagnose(&self, opts: JsValue, progress: Option<Function>) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            let mut o = doctor::Options::default();
            if let Some(v) = get(&opts, "similarity").as_f64() {
                o.duplicate_similarity = v as f32;
            }
            if let Some(v) = get(&opts, "folds").as_f64() {
                o.folds = v as usize;
            }
            if let Some(v) = get(&opts, "suspects").as_f64() {
                o.suspects = v as usize;
            }
            let mut on_progress = async |p: &Progress| report_progress(&progress, p).await;
            to_js(
                &session
                    .diagnose(&o, &mut on_progress)
                    .await
                    .map_err(js_err)?,
            )
        })
    }

    /// Replace the trained model with a `.sortwise` file made for this backbone (with its
    /// fine-tuned last stage, if it has one); resolves to its labels. A wrong, truncated or newer
    /// file rejects and the current model stays.
    #[wasm_bindgen(js_name = importModel)]
    pub fn import_model(&self, bytes: &[u8]) -> Result<Vec<String>, JsValue> {
        self.session.get_mut().import_model(bytes).map_err(js_err)
    }

    /// `shareModel()` -> `{bytes, precision, agreement, n}`: the trained model as the bytes of a
    /// link, its head at the smallest precision (`int4`, `int8`, `f16`) that picks the full head's
    /// class on at least 99% of the `n` validation photos (`agreement`). Deflating and encoding
    /// them is the page's (www/share/share-link.js).
    #[wasm_bindgen(js_name = shareModel)]
    pub fn share_model(&self) -> Result<JsValue, JsValue> {
        let shared = self.session.get().share().map_err(js_err)?;
        let out = to_js(&shared)?;
        js_sys::Reflect::set(
            &out,
            &JsValue::from_str("bytes"),
            &Uint8Array::from(shared.bytes.as_slice()),
        )?;
        Ok(out)
    }

    /// `exportOnnx({dtype: 'f32' | 'f16'})`: the trained model with its backbone as one ONNX
    /// file (`crate::formats::onnx`; the same bytes as `sortwise export --format onnx` but for the
    /// producer), for onnxruntime anywhere.
    #[wasm_bindgen(js_name = exportOnnx)]
    pub fn export_onnx(&self, opts: JsValue) -> Promise {
        let dtype = match get(&opts, "dtype").as_string().as_deref() {
            Some("f16") => Dtype::F16,
            _ => Dtype::F32,
        };
        let options = ExportOptions {
            dtype,
            producer_version: format!("{} (browser)", env!("CARGO_PKG_VERSION")),
        };
        let export = self.session.get().export_onnx(&options);
        future_to_promise(async move {
            let bytes = export.map_err(js_err)?.await.map_err(js_err)?;
            Ok(Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// The trained model as a `.sortwise` file (same format as the CLI's).
    #[wasm_bindgen(js_name = exportModel)]
    pub fn export_model(&self) -> Result<Uint8Array, JsValue> {
        let producer = format!("sortwise {} (browser)", env!("CARGO_PKG_VERSION"));
        let bytes = self.session.get().export_model(&producer).map_err(js_err)?;
        Ok(Uint8Array::from(bytes.as_slice()))
    }
}
