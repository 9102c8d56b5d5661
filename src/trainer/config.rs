//! What a training run is asked to do: [`TrainConfig`] and its defaults, the one source of
//! the training defaults (the CLI's flags and the page's settings read them).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    #[default]
    Adam,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// `weight` when the largest class has at least twice the images of the smallest.
    #[default]
    Auto,
    None,
    /// Class-weighted loss, weights inversely proportional to class size.
    Weight,
    /// Each epoch draws examples with probability inversely proportional to class size.
    Sample,
}

impl OptimizerKind {
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
        }
    }
}

impl Balance {
    pub fn name(self) -> &'static str {
        match self {
            Balance::Auto => "auto",
            Balance::None => "none",
            Balance::Weight => "weight",
            Balance::Sample => "sample",
        }
    }
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Balance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [OptimizerKind::Sgd, OptimizerKind::Adam]
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| Error::Invalid(format!("unknown optimizer '{s}': expected sgd or adam")))
    }
}

impl std::str::FromStr for Balance {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [
            Balance::Auto,
            Balance::None,
            Balance::Weight,
            Balance::Sample,
        ]
        .into_iter()
        .find(|b| b.name() == s)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "unknown balance '{s}': expected auto, none, weight or sample"
            ))
        })
    }
}

/// Default L2-SP strength, α = 0.1: the value Li et al. (2018) found to work across their
/// transfer tasks, kept after a measurement on trashnet-mini (docs/BENCHMARKS.md).
pub const DEFAULT_L2SP: f64 = 0.1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub optimizer: OptimizerKind,
    /// Default: 1e-3 for Adam, 1e-2 for SGD.
    pub lr: Option<f64>,
    pub momentum: f64,
    pub batch_size: usize,
    pub weight_decay: f64,
    pub label_smoothing: f64,
    pub val_split: f64,
    pub balance: Balance,
    pub seed: u64,
    /// Stop after this many epochs without a better validation loss (0: never).
    pub patience: usize,
    /// Step decay: multiply the learning rate by `gamma` every `step_size` epochs (0: off).
    pub step_size: usize,
    pub gamma: f64,
    /// Also train the backbone's last stage (see `finetune.rs`), after a head-only warm start.
    pub finetune_last: bool,
    /// L2-SP strength α: the fine-tuning loss adds (α/2)·‖θ−θ₀‖² over the last stage's
    /// parameters θ (θ₀ pretrained), in place of weight decay toward 0 there.
    pub l2sp: f64,
    /// Epochs of the fine-tuning phase (after the head-only epochs).
    pub finetune_epochs: usize,
    /// Learning rate of the fine-tuning phase. Default: a tenth of `lr`'s.
    pub finetune_lr: Option<f64>,
    /// After the held-out run has chosen the epoch count, train the final model again from
    /// scratch on training + validation examples for that many epochs (same seed and recipe),
    /// so that it learns from every photo; the report keeps the held-out run's validation
    /// metrics. Without a validation set there is nothing to add and no refit.
    pub refit: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 100,
            optimizer: OptimizerKind::Adam,
            lr: None,
            momentum: 0.9,
            batch_size: 32,
            // 1e-2 (was 1e-4) by measurement with refit, over 3 seeds on trashnet-mini's val
            // split and 5-fold splits: the only setting at least as accurate as the PyTorch
            // linear head on both (docs/BENCHMARKS.md, "Head recipes vs the PyTorch linear head").
            weight_decay: 1e-2,
            label_smoothing: 0.1,
            val_split: 0.2,
            balance: Balance::Auto,
            seed: 0,
            patience: 20,
            step_size: 0,
            gamma: 0.1,
            finetune_last: false,
            l2sp: DEFAULT_L2SP,
            finetune_epochs: 10,
            finetune_lr: None,
            refit: true,
        }
    }
}

impl TrainConfig {
    pub fn learning_rate(&self) -> f64 {
        self.lr.unwrap_or(match self.optimizer {
            OptimizerKind::Adam => 1e-3,
            OptimizerKind::Sgd => 1e-2,
        })
    }

    pub fn finetune_learning_rate(&self) -> f64 {
        self.finetune_lr.unwrap_or(self.learning_rate() / 10.0)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let mut values = vec![
            ("epochs", self.epochs as f64),
            ("batchSize", self.batch_size as f64),
            ("lr", self.learning_rate()),
            ("momentum", self.momentum),
            ("weightDecay", self.weight_decay),
            ("labelSmoothing", self.label_smoothing),
            ("valSplit", self.val_split),
            ("seed", self.seed as f64),
            ("patience", self.patience as f64),
            ("stepSize", self.step_size as f64),
            ("gamma", self.gamma),
            ("l2sp", self.l2sp),
            ("finetuneEpochs", self.finetune_epochs as f64),
        ];
        if self.finetune_last {
            values.push(("finetuneLr", self.finetune_learning_rate()));
        }
        for (key, v) in values {
            if let Some(setting) = TRAIN_SETTINGS.iter().find(|s| s.key == key) {
                setting.check_number(v)?;
            }
        }
        Ok(())
    }
}

/// What values one setting takes. The page reads these through `rules()` to check settings
/// from a project zip, a saved project or its form before they reach the engine, so that a
/// value the engine would refuse never gets stored (a stored one would stop every later start).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Range {
    /// A whole number in `min..=max`.
    Int {
        min: u64,
        max: u64,
    },
    /// A finite number in `min..=max`.
    Number {
        min: f64,
        max: f64,
    },
    Choice {
        choices: &'static [&'static str],
    },
    Bool,
}

/// One setting a shell may pass: its camelCase key (`TrainConfig`'s serde name, or a session
/// option's) and its range. `optional`: null stands for the engine's default.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    pub key: &'static str,
    #[serde(flatten)]
    pub range: Range,
    pub optional: bool,
}

const fn int(key: &'static str, min: u64, max: u64) -> Setting {
    Setting {
        key,
        range: Range::Int { min, max },
        optional: false,
    }
}

const fn number(key: &'static str, min: f64, max: f64, optional: bool) -> Setting {
    Setting {
        key,
        range: Range::Number { min, max },
        optional,
    }
}

const fn choice(key: &'static str, choices: &'static [&'static str]) -> Setting {
    Setting {
        key,
        range: Range::Choice { choices },
        optional: false,
    }
}

const fn flag(key: &'static str) -> Setting {
    Setting {
        key,
        range: Range::Bool,
        optional: false,
    }
}

/// Every [`TrainConfig`] field a shell may set, with the values [`TrainConfig::validate`]
/// accepts: the one list of them (the page's form, its imports and the CLI all check against
/// it). The bounds are wide enough for any sensible run and narrow enough that a typo or a
/// crafted file cannot ask for a year of epochs.
pub const TRAIN_SETTINGS: &[Setting] = &[
    int("epochs", 1, 10_000),
    choice("optimizer", &["sgd", "adam"]),
    number("lr", 1e-7, 10.0, true),
    number("momentum", 0.0, 0.999, false),
    int("batchSize", 1, 4096),
    number("weightDecay", 0.0, 1.0, false),
    number("labelSmoothing", 0.0, 0.9, false),
    number("valSplit", 0.0, 0.9, false),
    choice("balance", &["auto", "none", "weight", "sample"]),
    // A JavaScript number holds integers exactly up to 2^53; the page offers 32 bits.
    int("seed", 0, u32::MAX as u64),
    int("patience", 0, 10_000),
    int("stepSize", 0, 10_000),
    number("gamma", 0.0, 1.0, false),
    flag("finetuneLast"),
    number("l2sp", 0.0, 10_000.0, false),
    int("finetuneEpochs", 1, 1000),
    number("finetuneLr", 1e-7, 10.0, true),
    flag("refit"),
];

impl Setting {
    /// `v` against a numeric range, with the page's words for the setting.
    pub fn check_number(&self, v: f64) -> Result<()> {
        let (ok, what) = match self.range {
            Range::Int { min, max } => (
                v.fract() == 0.0 && v >= min as f64 && v <= max as f64,
                format!("a whole number from {min} to {max}"),
            ),
            Range::Number { min, max } => (
                v.is_finite() && v >= min && v <= max,
                format!("a number from {min} to {max}"),
            ),
            Range::Choice { .. } | Range::Bool => (true, String::new()),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "{} must be {what}, not {v}",
                self.key
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_in_range_and_every_checked_key_is_listed() {
        TrainConfig::default().validate().unwrap();
        let ft = TrainConfig {
            finetune_last: true,
            ..TrainConfig::default()
        };
        ft.validate().unwrap();
        // Each key validate() checks must be in the list, or its check would be skipped.
        let src = include_str!("config.rs");
        let body = &src[src.find("fn validate").unwrap()..src.find("/// What values one").unwrap()];
        for key in body
            .split("(\"")
            .skip(1)
            .map(|s| &s[..s.find('"').unwrap()])
        {
            assert!(TRAIN_SETTINGS.iter().any(|s| s.key == key), "{key}");
        }
        // The keys are TrainConfig's own serde names.
        let json = serde_json::to_value(TrainConfig::default()).unwrap();
        for s in TRAIN_SETTINGS {
            assert!(json.get(s.key).is_some(), "{}", s.key);
        }
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_bounds() {
        for (cfg, msg) in [
            (
                TrainConfig {
                    epochs: 0,
                    ..TrainConfig::default()
                },
                "epochs must be a whole number from 1 to 10000, not 0",
            ),
            (
                TrainConfig {
                    val_split: 1.0,
                    ..TrainConfig::default()
                },
                "valSplit must be a number from 0 to 0.9, not 1",
            ),
            (
                TrainConfig {
                    lr: Some(f64::NAN),
                    ..TrainConfig::default()
                },
                "lr must be a number from 0.0000001 to 10, not NaN",
            ),
            (
                TrainConfig {
                    l2sp: -1.0,
                    ..TrainConfig::default()
                },
                "l2sp must be a number from 0 to 10000, not -1",
            ),
        ] {
            assert_eq!(cfg.validate().unwrap_err().to_string(), msg);
        }
    }
}
