//! The embedding cache: every added image is decoded, preprocessed and run through the frozen
//! backbone once (plus K augmented views), and only the embeddings are kept.

use image::RgbImage;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::backbone::Backbone;
use crate::error::{Error, Result};
use crate::infer::{self, Output};
use crate::preprocess::{self, Fit};

#[derive(Clone, Debug)]
pub struct Example {
    pub id: u32,
    pub label: usize,
    /// `views[0]` is the evaluation-transform embedding; the rest are augmented views.
    pub views: Vec<Vec<f32>>,
}

#[derive(Clone, Debug, Default)]
pub struct Dataset {
    labels: Vec<String>,
    examples: Vec<Example>,
    next_id: u32,
}

/// Labels are shown to people and written into model files: refuse the ones that would
/// confuse either.
pub fn validate_label(name: &str) -> Result<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(Error::Invalid("a class name cannot be empty".into()));
    }
    if trimmed.chars().count() > 100 {
        return Err(Error::Invalid(
            "a class name can be at most 100 characters".into(),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "a class name cannot contain control characters".into(),
        ));
    }
    Ok(trimmed.to_string())
}

impl Dataset {
    pub fn new() -> Self {
        Self::default()
    }

    /// Class labels in insertion order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn examples(&self) -> &[Example] {
        &self.examples
    }

    /// Index of `name`, adding the class if it is new.
    pub fn class_index(&mut self, name: &str) -> Result<usize> {
        let name = validate_label(name)?;
        if let Some(i) = self.labels.iter().position(|l| *l == name) {
            return Ok(i);
        }
        self.labels.push(name);
        Ok(self.labels.len() - 1)
    }

    pub fn push(&mut self, label: &str, views: Vec<Vec<f32>>) -> Result<u32> {
        if views.is_empty() {
            return Err(Error::Invalid(
                "an example needs at least one embedding".into(),
            ));
        }
        let label = self.class_index(label)?;
        let id = self.next_id;
        self.next_id += 1;
        self.examples.push(Example { id, label, views });
        Ok(id)
    }

    /// The id the next pushed example will get.
    pub fn next_id(&self) -> u32 {
        self.next_id
    }

    pub fn get(&self, id: u32) -> Option<&Example> {
        self.examples.iter().find(|e| e.id == id)
    }

    /// Rename a class in place, keeping its position and images.
    pub fn rename_class(&mut self, old: &str, new: &str) -> Result<()> {
        let new = validate_label(new)?;
        let i = self.position(old)?;
        if self
            .labels
            .iter()
            .enumerate()
            .any(|(j, l)| j != i && *l == new)
        {
            return Err(Error::Invalid(format!("there is already a class '{new}'")));
        }
        self.labels[i] = new;
        Ok(())
    }

    /// Remove a class and all its images; returns how many images went with it.
    pub fn remove_class(&mut self, name: &str) -> Result<usize> {
        let i = self.position(name)?;
        self.labels.remove(i);
        let before = self.examples.len();
        self.examples.retain(|e| e.label != i);
        for e in &mut self.examples {
            if e.label > i {
                e.label -= 1;
            }
        }
        Ok(before - self.examples.len())
    }

    fn position(&self, name: &str) -> Result<usize> {
        let name = name.trim();
        self.labels
            .iter()
            .position(|l| l == name)
            .ok_or_else(|| Error::Invalid(format!("there is no class '{name}'")))
    }

    pub fn remove(&mut self, id: u32) -> bool {
        let before = self.examples.len();
        self.examples.retain(|e| e.id != id);
        before != self.examples.len()
    }

    /// Images per class, in label order.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.labels.len()];
        for e in &self.examples {
            counts[e.label] += 1;
        }
        counts
    }

    /// Bytes held by embeddings: what the cache costs in memory.
    pub fn embedding_bytes(&self) -> usize {
        self.examples
            .iter()
            .map(|e| e.views.iter().map(|v| v.len() * 4).sum::<usize>())
            .sum()
    }
}

/// Embeddings of the evaluation view and `augment` augmented views of each image, computed in
/// batches. Augmentation for image `i` draws from a RNG seeded with `seed + i`, so the views do
/// not depend on batch boundaries. `progress(done, total)` is called after every batch;
/// returning `false` cancels with [`Error::Cancelled`].
pub async fn embed_views(
    backbone: &Backbone,
    images: &[RgbImage],
    fit: Fit,
    augment: usize,
    seed: u64,
    batch: usize,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<Vec<Vec<f32>>>> {
    views(
        backbone,
        images,
        fit,
        augment,
        seed,
        batch,
        Output::Features,
        progress,
    )
    .await
}

/// [`embed_views`] for any backbone [`Output`], e.g. the stage inputs fine-tuning caches.
#[allow(clippy::too_many_arguments)]
pub async fn views(
    backbone: &Backbone,
    images: &[RgbImage],
    fit: Fit,
    augment: usize,
    seed: u64,
    batch: usize,
    output: Output,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let per = 1 + augment;
    let mut out = Vec::with_capacity(images.len());
    // Group whole images so one backbone call sees up to `batch` inputs.
    let images_per_call = (batch / per).max(1);
    for (chunk_i, chunk) in images.chunks(images_per_call).enumerate() {
        let mut inputs = Vec::with_capacity(chunk.len() * per);
        for (j, img) in chunk.iter().enumerate() {
            let index = (chunk_i * images_per_call + j) as u64;
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(index));
            inputs.push(preprocess::eval_tensor(img, fit));
            for _ in 0..augment {
                inputs.push(preprocess::augment(img, &mut rng));
            }
        }
        let rows = infer::run(backbone, &inputs, output, inputs.len()).await?;
        let mut rows = rows.into_iter();
        for _ in chunk {
            out.push(rows.by_ref().take(per).collect());
        }
        if !progress(out.len(), images.len()) {
            return Err(Error::Cancelled);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_insertion_order_and_reject_bad_names() {
        let mut d = Dataset::new();
        let a = d.push("可回收物", vec![vec![1.0]]).unwrap();
        d.push("  other ", vec![vec![2.0]]).unwrap();
        d.push("可回收物", vec![vec![3.0]]).unwrap();
        assert_eq!(d.labels(), ["可回收物", "other"]);
        assert_eq!(d.counts(), vec![2, 1]);
        assert!(d.remove(a));
        assert!(!d.remove(a));
        assert_eq!(d.counts(), vec![1, 1]);
        assert!(
            d.push("   ", vec![vec![0.0]])
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(d.push("a\u{0}b", vec![vec![0.0]]).is_err());
        assert!(d.push("x", vec![]).is_err());
    }

    #[test]
    fn classes_rename_and_remove_with_their_images() {
        let mut d = Dataset::new();
        let a = d.push("glass", vec![vec![1.0]]).unwrap();
        let b = d.push("metal", vec![vec![2.0]]).unwrap();
        let c = d.push("paper", vec![vec![3.0]]).unwrap();
        d.rename_class("metal", "Metall").unwrap();
        assert_eq!(d.labels(), ["glass", "Metall", "paper"]);
        assert!(
            d.rename_class("glass", "paper")
                .unwrap_err()
                .to_string()
                .contains("already")
        );
        assert!(
            d.rename_class("nope", "x")
                .unwrap_err()
                .to_string()
                .contains("no class")
        );
        assert_eq!(d.remove_class("glass").unwrap(), 1);
        assert_eq!(d.labels(), ["Metall", "paper"]);
        assert!(d.get(a).is_none());
        assert_eq!(d.get(b).unwrap().label, 0);
        assert_eq!(d.get(c).unwrap().label, 1);
        assert_eq!(d.counts(), vec![1, 1]);
    }
}
