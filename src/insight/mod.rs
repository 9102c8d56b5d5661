//! What the engine tells the user about a model and the data: metrics, the calibrated
//! temperature, class activation maps (`explain`) and the data's check-up (`doctor`).

pub mod calibration;
pub mod doctor;
pub mod explain;
pub mod metrics;
