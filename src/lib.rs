//! sortwise: transfer learning on pretrained ImageNet backbones, in the browser (WebGPU or
//! wasm CPU) and natively, from one engine.
//!
//! One photo's way, layer by layer (docs/ARCHITECTURE.md): bytes are decoded and fitted to
//! 224×224 ([`preprocess`]), run through a frozen pretrained backbone ([`backbone`], its CPU
//! convolutions in [`kernels`], weights read by [`weights`]) into cached rows ([`embed`],
//! [`dataset`]), on which a head is trained ([`head`], [`trainer`], [`finetune`]) and
//! evaluated ([`metrics`]) and saved ([`model_file`]). [`session`] is the user's session over
//! all of it, which the two shells drive: the wasm API ([`web`]) and the CLI (`cli`).

#[cfg(not(target_arch = "wasm32"))]
pub mod allocator;
pub mod arch;
pub mod backbone;
pub mod calibration;
pub mod classifier;
pub mod dataset;
pub mod device;
pub mod doctor;
pub mod embed;
pub mod error;
pub mod explain;
pub mod finetune;
pub mod head;
pub mod infer;
pub mod kernels;
pub mod metrics;
pub mod model_file;
pub mod onnx;
mod parallel;
pub mod preprocess;
pub mod session;
pub mod share;
pub mod split;
pub mod tensor_io;
pub mod trainer;
pub mod weights;

#[cfg(feature = "cli")]
pub mod cli;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use arch::Arch;
pub use backbone::Backbone;
pub use error::{Error, Result};
