//! Run-time choice of where tensors live: burn-flex on the CPU everywhere, wgpu where an adapter
//! exists (Vulkan/Metal natively, WebGPU in the browser).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    Cpu,
    Wgpu,
    #[default]
    Auto,
}

impl std::str::FromStr for BackendChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(BackendChoice::Cpu),
            "wgpu" | "webgpu" | "gpu" => Ok(BackendChoice::Wgpu),
            "auto" => Ok(BackendChoice::Auto),
            _ => Err(Error::UnknownBackend(s.to_string())),
        }
    }
}

/// The device actually chosen, and why, for the user to see.
#[derive(Clone, Debug)]
pub struct Selected {
    pub device: Device,
    /// `"cpu"` or `"wgpu"`.
    pub backend: &'static str,
    pub reason: String,
}

pub fn cpu(reason: impl Into<String>) -> Selected {
    Selected {
        device: Device::flex(),
        backend: "cpu",
        reason: reason.into(),
    }
}

/// Native selection. `auto` prefers a hardware GPU and falls back to the CPU, saying why.
#[cfg(not(target_arch = "wasm32"))]
pub fn select(choice: BackendChoice) -> Result<Selected> {
    match choice {
        BackendChoice::Cpu => Ok(cpu("requested")),
        BackendChoice::Wgpu => init_wgpu(),
        BackendChoice::Auto => {
            Ok(init_wgpu().unwrap_or_else(|e| cpu(format!("auto: {e}; using the CPU backend"))))
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn init_wgpu() -> Result<Selected> {
    // wgpu panics in some drivers' adapter probing instead of returning an error; a panic here
    // must become "no GPU", not a crash of the whole command.
    let attempt = std::panic::catch_unwind(|| Device::wgpu_options().init());
    match attempt {
        Ok(Ok(device)) => Ok(Selected {
            device,
            backend: "wgpu",
            reason: "wgpu adapter found".into(),
        }),
        Ok(Err(e)) => Err(Error::NoGpu(format!("no wgpu adapter ({e})"))),
        Err(_) => Err(Error::NoGpu("the wgpu adapter probe crashed".into())),
    }
}
