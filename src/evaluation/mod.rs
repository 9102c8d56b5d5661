//! How good a trained head is: accuracy, per-class metrics and the confusion matrix (`metrics`),
//! and the temperature that makes its confidence mean something (`calibration`). The trainer
//! uses both, so they sit below it.

pub mod calibration;
pub mod metrics;
