//! sortwise: transfer learning on pretrained ImageNet backbones, in the browser (WebGPU or
//! wasm CPU) and natively, from one engine.
//!
//! The device is picked at run time ([`device`]); the backbones ([`backbone`]) load
//! torchvision / lukemelas weights through burn-store ([`weights`]); images go through the
//! torchvision preprocessing pipeline ([`preprocess`]).

pub mod arch;
pub mod backbone;
pub mod classifier;
pub mod dataset;
pub mod device;
pub mod error;
pub mod finetune;
pub mod head;
pub mod infer;
pub mod metrics;
pub mod model_file;
pub mod preprocess;
pub mod split;
pub mod trainer;
pub mod weights;

#[cfg(feature = "cli")]
pub mod cli;

#[cfg(target_arch = "wasm32")]
pub mod wasm_api;

pub use arch::Arch;
pub use backbone::Backbone;
pub use error::{Error, Result};
