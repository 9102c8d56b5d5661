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
    check_visible(trimmed)?;
    Ok(trimmed.to_string())
}

/// Why a character cannot be in a class name, or `None`. Two names that differ only by these
/// look the same on a chip, and a direction control can make one read backwards.
fn hidden_kind(c: char) -> Option<&'static str> {
    match c {
        '\u{200E}'
        | '\u{200F}'
        | '\u{061C}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => Some("text-direction control"),
        // Zero-width and format characters that draw nothing (Unicode category Cf, and the
        // Hangul fillers, which render blank). The prepended marks of Arabic, Syriac and Kaithi
        // (U+0600–U+0605, U+06DD, …) are Cf too but visible, so they stay allowed.
        '\u{00AD}'
        | '\u{180E}'
        | '\u{200B}'
        | '\u{2060}'..='\u{2065}'
        | '\u{206A}'..='\u{206F}'
        | '\u{3164}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}' => Some("invisible character"),
        _ => None,
    }
}

/// Zero-width joiner and non-joiner: they shape Persian, Indic scripts and emoji sequences
/// (👩‍🔬) when they sit between two characters, and are invisible anywhere else.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// Tag characters spell a subdivision flag after U+1F3F4 (🏴󠁧󠁢󠁳󠁣󠁴󠁿, ended by U+E007F); anywhere
/// else they are invisible text.
fn is_tag(c: char) -> bool {
    ('\u{E0020}'..='\u{E007F}').contains(&c)
}

const BLACK_FLAG: char = '\u{1F3F4}';
const CANCEL_TAG: char = '\u{E007F}';

fn refuse(what: &str, c: char) -> Error {
    Error::Invalid(format!(
        "a class name cannot contain the {what} U+{:04X}",
        u32::from(c)
    ))
}

/// Refuses characters a person cannot see in `name`, allowing joiners between two visible
/// characters and tags inside a flag emoji.
fn check_visible(name: &str) -> Result<()> {
    let chars: Vec<char> = name.chars().collect();
    // Whether the characters just read are a flag's tags: U+1F3F4, then tags.
    let mut tags = 0;
    let mut in_flag = false;
    for (i, &c) in chars.iter().enumerate() {
        if let Some(what) = hidden_kind(c) {
            return Err(refuse(what, c));
        }
        if is_tag(c) {
            if !in_flag || (c == CANCEL_TAG && tags == 0) {
                return Err(Error::Invalid(format!(
                    "a class name can contain the tag character U+{:04X} only inside a flag \
                     emoji (after U+1F3F4)",
                    u32::from(c)
                )));
            }
            tags += 1;
            if c == CANCEL_TAG {
                in_flag = false;
            }
            continue;
        }
        if in_flag && tags > 0 {
            return Err(unended_flag());
        }
        in_flag = c == BLACK_FLAG;
        tags = 0;
        if is_joiner(c) {
            let visible =
                |n: Option<&char>| n.is_some_and(|n| !n.is_whitespace() && !is_joiner(*n));
            if !visible(i.checked_sub(1).and_then(|p| chars.get(p))) || !visible(chars.get(i + 1)) {
                return Err(Error::Invalid(format!(
                    "a class name can contain the joiner U+{:04X} only between two visible \
                     characters",
                    u32::from(c)
                )));
            }
        }
    }
    if in_flag && tags > 0 {
        return Err(unended_flag());
    }
    Ok(())
}

fn unended_flag() -> Error {
    Error::Invalid(
        "a class name cannot contain a flag emoji's tag characters without their end (U+E007F)"
            .into(),
    )
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

    fn refusal(name: &str) -> String {
        validate_label(name).unwrap_err().to_string()
    }

    #[test]
    fn direction_controls_are_refused_by_code_point() {
        for c in ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}'] {
            let e = refusal(&format!("glass{c}ssalg"));
            assert_eq!(
                e,
                format!(
                    "a class name cannot contain the text-direction control U+{:04X}",
                    c as u32
                )
            );
        }
        for c in [
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            let e = refusal(&format!("ملصق{c} עברית"));
            assert!(e.contains("text-direction control U+"), "{c:?}: {e}");
        }
        // Right-to-left text needs no marks: its direction comes from its letters.
        assert_eq!(validate_label("ملصق עברית").unwrap(), "ملصق עברית");
    }

    #[test]
    fn invisible_characters_are_refused_by_code_point() {
        for c in [
            '\u{200B}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{180E}',
            '\u{FFF9}',
            '\u{FFFA}',
            '\u{FFFB}',
            '\u{206F}',
            '\u{3164}',
            '\u{1D173}',
            '\u{E0001}',
        ] {
            // Inside, and at either end: trimming does not remove them (they are not spaces).
            for name in [
                format!("gl{c}ass"),
                format!("{c}glass"),
                format!("glass{c}"),
            ] {
                assert_eq!(
                    refusal(&name),
                    format!(
                        "a class name cannot contain the invisible character U+{:04X}",
                        c as u32
                    ),
                    "{name:?}"
                );
            }
        }
        assert!(refusal("\u{200B}").contains("U+200B"));
        // Visible format characters stay: the Arabic number sign spans the digits after it.
        assert!(validate_label("\u{0600}١٢٣").is_ok());
    }

    #[test]
    fn joiners_are_kept_between_two_visible_characters_only() {
        for name in [
            "می\u{200C}خواهم",        // Persian: ZWNJ inside a word
            "क्\u{200D}ष",             // Devanagari: ZWJ for a half form
            "👩\u{200D}🔬 scientist", // an emoji ZWJ sequence
            "❤\u{FE0F}\u{200D}🔥",    // after a variation selector
            "👩🏽\u{200D}🔬",           // after a skin tone
            "🏴\u{200D}☠\u{FE0F}",    // the pirate flag is a ZWJ sequence too
        ] {
            assert_eq!(validate_label(name).unwrap(), name);
        }
        for name in [
            "\u{200D}glass",
            "glass\u{200C}",
            "glass \u{200D}metal",
            "glass\u{200D} metal",
            "gl\u{200D}\u{200D}ass",
            "\u{200C}",
        ] {
            let e = refusal(name);
            assert!(
                e.contains("joiner U+200") && e.contains("between two visible characters"),
                "{name:?}: {e}"
            );
        }
    }

    #[test]
    fn tag_characters_are_kept_in_flag_emoji_only() {
        // Scotland and Wales: U+1F3F4, the region's letters as tags, U+E007F.
        let scotland = "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        let wales = "🏴\u{E0067}\u{E0062}\u{E0077}\u{E006C}\u{E0073}\u{E007F}";
        for name in [
            scotland.to_string(),
            format!("{scotland} rugby"),
            format!("{scotland}{wales}"),
            "🏴 black flag".to_string(),
        ] {
            assert_eq!(validate_label(&name).unwrap(), name);
        }
        for (name, expected) in [
            (
                "glass\u{E0067}".to_string(),
                "tag character U+E0067 only inside a flag",
            ),
            (
                format!("{scotland}\u{E0067}"),
                "tag character U+E0067 only inside a flag",
            ),
            (
                "🏴\u{E007F}".into(),
                "tag character U+E007F only inside a flag",
            ),
            ("🏴\u{E0067}\u{E0062}".into(), "without their end (U+E007F)"),
            (
                "🏴\u{E0067}\u{E0062} x".into(),
                "without their end (U+E007F)",
            ),
        ] {
            let e = refusal(&name);
            assert!(e.contains(expected), "{name:?}: {e}");
        }
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
