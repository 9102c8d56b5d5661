//! `sortwise doctor`: the data's check-up on class folders, as the page's doctor panel shows it
//! (`doctor.rs`), with file names for image ids.

use std::collections::HashMap;

use clap::Args;
use serde_json::{Value, json};

use super::folders::{DataArgs, add_folder, check_known};
use super::open_session;
use crate::device::BackendChoice;
use crate::error::Result;
use crate::insight::doctor;
use crate::preprocess::Fit;
use crate::session::Options;
use crate::trainer::Progress;

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    set: DataArgs,
    /// Cosine similarity at or above which two photos are near duplicates.
    #[arg(long, default_value_t = doctor::DUPLICATE_SIMILARITY)]
    similarity: f32,
    #[arg(long, default_value_t = doctor::FOLDS)]
    folds: usize,
    /// Likely label errors listed.
    #[arg(long, default_value_t = doctor::SUSPECTS)]
    suspects: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = Fit::default())]
    fit: Fit,
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
}

pub fn doctor(args: &DoctorArgs) -> Result<Value> {
    let options = Options {
        fit: args.fit,
        ..Options::default()
    };
    let (session, _) = open_session(args.set.arch, &args.set.weights, args.backend, options)?;
    let mut files = HashMap::new();
    let (_, skipped) = add_folder(&session, &args.set.data, None, &mut files)?;
    let validation = match &args.set.val {
        Some(dir) => {
            let labels = session.get().labels().to_vec();
            check_known(dir, &labels, "the training set")?;
            add_folder(&session, dir, Some(0), &mut files)?.0
        }
        None => Vec::new(),
    };
    let opts = doctor::Options {
        duplicate_similarity: args.similarity,
        folds: args.folds,
        suspects: args.suspects,
        seed: args.seed,
    };
    let mut progress = async |p: &Progress| {
        eprintln!("sortwise: out-of-fold heads {}/{}", p.epoch, p.epochs);
        true
    };
    let d =
        pollster::block_on(session.diagnose_with_validation(&opts, &validation, &mut progress))?;
    let file = |id: &u32| json!(files.get(id));
    let mut out = json!(d);
    for (pair, j) in d
        .pairs
        .iter()
        .zip(out["pairs"].as_array_mut().into_iter().flatten())
    {
        j["aFile"] = file(&pair.a);
        j["bFile"] = file(&pair.b);
    }
    for (s, j) in d
        .suspects
        .iter()
        .zip(out["suspects"].as_array_mut().into_iter().flatten())
    {
        j["file"] = file(&s.id);
    }
    for (c, j) in d
        .classes
        .iter()
        .zip(out["classes"].as_array_mut().into_iter().flatten())
    {
        j["boundaryFiles"] = json!(c.boundary.iter().map(file).collect::<Vec<_>>());
    }
    out["skipped"] = json!(skipped);
    Ok(out)
}
