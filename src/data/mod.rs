//! The photos as training data: the embedding cache of classes and views (`dataset`) and the
//! seeded stratified train/validation split (`split`).

pub mod dataset;
pub mod split;
