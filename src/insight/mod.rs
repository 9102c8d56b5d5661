//! What the engine tells the user about a model and the data, beyond its scores: class activation
//! maps (`explain`) and the data's check-up (`doctor`, which trains out-of-fold heads to find
//! likely label errors, so it sits above `trainer`).

pub mod doctor;
pub mod explain;
