//! Class folders (one subfolder per class) into a session, for `train` and `eval`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Args;
use image::RgbImage;
use serde_json::{Value, json};

use super::read;
use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::preprocess;
use crate::session::SharedSession;

/// The backbone and the class folders a command reads.
#[derive(Args)]
pub struct DataArgs {
    #[arg(long)]
    pub arch: Arch,
    /// Web weight file, .pth, or PyTorch-named .safetensors.
    #[arg(long)]
    pub weights: PathBuf,
    /// One subfolder per class.
    #[arg(long)]
    pub data: PathBuf,
    /// A validation folder with the same class subfolders: it validates (train), and its photos
    /// that duplicate training photos are leaks (doctor).
    #[arg(long)]
    pub val: Option<PathBuf>,
}

/// Photos decoded and embedded at a time: bounds memory for folders of large photos.
pub const CHUNK: usize = 32;

/// Class folders (sorted, hidden ones skipped) and their files (sorted).
pub fn class_folders(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let list = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| Error::io(d, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        v.sort();
        Ok(v)
    };
    let mut classes = Vec::new();
    for path in list(dir)?.into_iter().filter(|p| p.is_dir()) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let files = list(&path)?.into_iter().filter(|p| p.is_file()).collect();
        classes.push((name, files));
    }
    if classes.is_empty() {
        return Err(Error::Invalid(format!(
            "{} has no class subfolders (expected one folder per class)",
            dir.display()
        )));
    }
    Ok(classes)
}

/// Each readable photo of `files` decoded, `CHUNK` at a time, handed to `each` with its path;
/// the others are reported on stderr and listed in `skipped`.
pub fn decoded_chunks(
    files: &[PathBuf],
    skipped: &mut Vec<Value>,
    mut each: impl FnMut(Vec<RgbImage>, Vec<String>) -> Result<()>,
) -> Result<()> {
    for chunk in files.chunks(CHUNK) {
        let mut imgs = Vec::with_capacity(chunk.len());
        let mut names = Vec::with_capacity(chunk.len());
        for path in chunk {
            match read(path).and_then(|b| preprocess::decode(&b)) {
                Ok(img) => {
                    imgs.push(img);
                    names.push(path.display().to_string());
                }
                Err(e) => {
                    eprintln!("sortwise: skipped {}: {e}", path.display());
                    skipped
                        .push(json!({"file": path.display().to_string(), "error": e.to_string()}));
                }
            }
        }
        if !imgs.is_empty() {
            each(imgs, names)?;
        }
    }
    Ok(())
}

/// Every photo of the class folders in `dir` added to `session` (with `augment` views, or the
/// session's), each id's file recorded in `files`; the ids, in order, and the skipped files.
pub fn add_folder(
    session: &SharedSession,
    dir: &Path,
    augment: Option<usize>,
    files: &mut HashMap<u32, String>,
) -> Result<(Vec<u32>, Vec<Value>)> {
    let classes = class_folders(dir)?;
    let total: usize = classes.iter().map(|(_, f)| f.len()).sum();
    let mut ids = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = 0;
    for (class, paths) in &classes {
        decoded_chunks(paths, &mut skipped, |imgs, names| {
            seen += imgs.len();
            let added = pollster::block_on(session.add_decoded(class, imgs, augment))?;
            eprintln!("sortwise: embedded {seen}/{total}");
            for (id, name) in added.iter().zip(names) {
                files.insert(*id, name);
            }
            ids.extend(added);
            Ok(())
        })?;
    }
    Ok((ids, skipped))
}

/// Refuse a folder of classes the model or training set does not have, naming them.
pub fn check_known(
    dir: &Path,
    labels: &[String],
    what: &str,
) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let classes = class_folders(dir)?;
    if let Some((class, _)) = classes.iter().find(|(c, _)| !labels.contains(c)) {
        return Err(Error::Invalid(format!(
            "folder '{class}' is not a class of {what} ({})",
            labels.join(", ")
        )));
    }
    Ok(classes)
}
