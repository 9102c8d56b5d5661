//! The embedding cache: the classes, and every added image as its cached views (`embed.rs`
//! makes them: each image goes through the frozen backbone once, plus K augmented views).

use crate::error::{Error, Result};

/// One photo's cached rows: its evaluation view first, then its augmented views.
pub type Views = Vec<Vec<f32>>;

#[derive(Clone, Debug)]
pub struct Example {
    pub id: u32,
    pub label: usize,
    /// `views[0]` is the evaluation-transform embedding; the rest are augmented views.
    pub views: Views,
}

#[derive(Clone, Debug, Default)]
pub struct Dataset {
    labels: Vec<String>,
    examples: Vec<Example>,
    next_id: u32,
}

/// Longest class name, in characters (the page's limit too: it reads it from `rules()`).
pub const MAX_LABEL_CHARS: usize = 100;

/// Labels are shown to people and written into model files: refuse the ones that would
/// confuse either.
pub fn validate_label(name: &str) -> Result<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(Error::Invalid("a class name cannot be empty".into()));
    }
    if trimmed.chars().count() > MAX_LABEL_CHARS {
        return Err(Error::Invalid(format!(
            "a class name can be at most {MAX_LABEL_CHARS} characters"
        )));
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
