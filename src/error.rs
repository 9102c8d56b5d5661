//! One error type for the core, so the CLI can print it and the wasm boundary can turn it into a
//! JS `Error` with a message a person can act on.

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    #[error(
        "unknown architecture '{0}': expected one of resnet18, resnet34, resnet50, efficientnet_lite0"
    )]
    UnknownArch(String),

    #[error("unknown backend '{0}': expected cpu, webgpu (or wgpu) or auto")]
    UnknownBackend(String),

    #[error("the weights file is not a usable {arch} checkpoint: {detail}")]
    WeightsMismatch { arch: String, detail: String },

    #[error("the weights file could not be read: {0}")]
    WeightsFormat(String),

    #[error("could not decode the image: {0}")]
    Decode(String),

    #[error("the image is {width}x{height} pixels; the limit is {limit} pixels per side")]
    ImageTooLarge { width: u32, height: u32, limit: u32 },

    #[error("no usable GPU: {0}")]
    NoGpu(String),

    #[error("the device failed: {0}")]
    Device(String),

    #[error("{0}")]
    Invalid(String),

    #[error("cancelled")]
    Cancelled,

    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
