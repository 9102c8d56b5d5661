//! `sortwise eval | predict`: a saved model on class folders or single photos, through the same
//! session the page uses (a fine-tuned stage included).

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{Value, json};

use super::folders::{check_known, decoded_chunks};
use super::{open_session, read, write_atomically};
use crate::device::BackendChoice;
use crate::error::{Error, Result};
use crate::evaluation::calibration;
use crate::evaluation::metrics;
use crate::formats::model_file::Model;
use crate::insight::explain;
use crate::preprocess;
use crate::session::{Options, SharedSession};

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    weights: PathBuf,
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
}

#[derive(Args)]
pub struct PredictArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    weights: PathBuf,
    /// Below this confidence the label is "unsure".
    #[arg(long, default_value_t = 0.0)]
    threshold: f32,
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Args)]
pub struct ExplainArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    weights: PathBuf,
    /// The class whose map is drawn (default: the predicted one).
    #[arg(long)]
    class: Option<String>,
    /// Below this confidence the label is "unsure".
    #[arg(long, default_value_t = 0.0)]
    threshold: f32,
    /// How much of the colour covers the photo, 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    opacity: f32,
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    /// The photo with the heatmap laid over it (PNG).
    #[arg(long)]
    out: PathBuf,
    image: PathBuf,
}

/// A session holding the model at `model`, on the backbone at `weights`.
fn open_model(model: &Path, weights: &Path, backend: BackendChoice) -> Result<SharedSession> {
    let (model, stage) = Model::from_bytes_with_stage(&read(model)?)?;
    let options = Options {
        fit: model.meta.fit,
        ..Options::default()
    };
    let (session, _) = open_session(model.meta.arch, weights, backend, options)?;
    session.get_mut().set_model(model, stage)?;
    Ok(session)
}

pub fn eval(args: &EvalArgs) -> Result<Value> {
    let session = open_model(&args.model, &args.weights, args.backend)?;
    let labels = session.get().labels().to_vec();
    let fit = session.get().options().fit;
    let classes = check_known(&args.data, &labels, "this model")?;
    let mut probs = Vec::new();
    let mut truth = Vec::new();
    let mut skipped = Vec::new();
    for (class, files) in &classes {
        let label = labels.iter().position(|l| l == class).expect("checked");
        decoded_chunks(files, &mut skipped, |imgs, _| {
            let inputs: Vec<Vec<f32>> = imgs
                .iter()
                .map(|img| preprocess::eval_tensor(img, fit))
                .collect();
            let (p, _) = pollster::block_on(session.probabilities(&inputs))?;
            truth.extend(std::iter::repeat_n(label, p.len()));
            probs.extend(p);
            Ok(())
        })?;
    }
    let m = metrics::compute(&probs, &truth, labels.len());
    let per_class: serde_json::Map<String, Value> = labels
        .iter()
        .zip(&m.per_class)
        .map(|(l, c)| (l.clone(), json!(c)))
        .collect();
    Ok(json!({
        "accuracy": m.accuracy,
        "n": m.n,
        "loss": m.loss,
        "labels": labels,
        "per_class": per_class,
        "confusion": m.confusion,
        // Of the calibrated probabilities the model predicts with.
        "ece": calibration::ece(&probs, &truth),
        "skipped": skipped,
    }))
}

/// Prints one JSON object per image; returns whether any image failed.
pub fn predict(args: &PredictArgs) -> Result<bool> {
    let session = open_model(&args.model, &args.weights, args.backend)?;
    let mut failed = false;
    for path in &args.images {
        let file = path.display().to_string();
        let result =
            read(path).and_then(|b| pollster::block_on(session.predict_bytes(&b, args.threshold)));
        match result {
            Ok(p) => {
                let probs: serde_json::Map<String, Value> = p
                    .probs
                    .iter()
                    .map(|lp| (lp.label.clone(), json!(lp.p)))
                    .collect();
                println!(
                    "{}",
                    json!({"file": file, "label": p.label, "confidence": p.confidence, "unsure": p.unsure, "probs": probs})
                );
            }
            Err(e) => {
                failed = true;
                eprintln!("sortwise: {file}: {e}");
                println!("{}", json!({"file": file, "error": e.to_string()}));
            }
        }
    }
    Ok(failed)
}

/// `sortwise explain`: the prediction, every class's activation map (JSON), and the chosen
/// class's map over the photo as a PNG.
pub fn explain(args: &ExplainArgs) -> Result<Value> {
    let session = open_model(&args.model, &args.weights, args.backend)?;
    // Decoded here rather than by `explain_bytes`: the map is drawn over these pixels.
    let img = preprocess::decode(&read(&args.image)?)?;
    let e = pollster::block_on(session.explain(&img, args.threshold))?;
    let labels = session
        .get()
        .trained()
        .map(|t| t.labels.clone())
        .unwrap_or_default();
    let best = e.prediction.probs[0].label.clone();
    let class = args.class.clone().unwrap_or(best);
    let Some(c) = labels.iter().position(|l| *l == class) else {
        return Err(Error::Invalid(format!(
            "'{class}' is not a class of this model ({})",
            labels.join(", ")
        )));
    };
    let h = &e.heatmap;
    let picture = explain::overlay(&img, &h.maps[c], h.width, h.height, h.region, args.opacity);
    let mut png = Vec::new();
    picture
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Invalid(format!("could not encode the heatmap: {e}")))?;
    write_atomically(&args.out, &png)?;
    let mut out = json!(e);
    out["file"] = json!(args.image.display().to_string());
    out["class"] = json!(class);
    out["out"] = json!(args.out.display().to_string());
    Ok(out)
}
