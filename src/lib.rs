//! sortwise: transfer learning on pretrained ImageNet backbones, in the browser (WebGPU or
//! wasm CPU) and natively, from one engine.
//!
//! One photo's way, layer by layer (docs/ARCHITECTURE.md): bytes are decoded and fitted to
//! 224×224 ([`preprocess`]), run through a frozen pretrained backbone ([`backbone`], its CPU
//! convolutions in [`kernels`], weights read by [`formats::weights`]) into cached rows
//! ([`model::embed`], [`data::dataset`]), on which a head is trained ([`model::head`],
//! [`trainer`], [`finetune`]) and scored ([`evaluation`]), explained ([`insight`]) and saved
//! ([`formats`]).
//! [`session`] is the user's session over all of it, which the two shells drive: the wasm API
//! (`web`) and the CLI (`cli`).

#[cfg(not(target_arch = "wasm32"))]
pub mod allocator;
pub mod arch;
pub mod backbone;
pub mod data;
pub mod device;
pub mod error;
pub mod evaluation;
pub mod finetune;
pub mod formats;
pub mod insight;
pub mod kernels;
pub mod model;
mod parallel;
pub mod preprocess;
pub mod session;
pub mod tensor_io;
pub mod trainer;

#[cfg(feature = "cli")]
pub mod cli;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use arch::Arch;
pub use backbone::Backbone;
pub use error::{Error, Result};
