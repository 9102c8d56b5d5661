//! Run-time choice of where tensors live: burn-flex on the CPU everywhere, wgpu where an adapter
//! exists (Vulkan/Metal natively, WebGPU in the browser) and the `gpu` feature (default) built it
//! in. The browser's own choice is in `web/device.rs` (it has to ask the browser's WebGPU).

use burn::tensor::Device;
#[cfg(all(not(target_arch = "wasm32"), feature = "gpu"))]
use burn::tensor::DeviceKind;
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

/// What runs the tensors, by one name in the CLI's output and the page's alike: `webgpu` is
/// burn-wgpu, on the browser's WebGPU or natively on Vulkan/Metal (wgpu implements WebGPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    #[serde(rename = "webgpu")]
    Gpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "webgpu",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The device actually chosen, and why, for the user to see.
#[derive(Clone, Debug)]
pub struct Selected {
    pub device: Device,
    pub backend: Backend,
    pub reason: String,
}

pub fn cpu(reason: impl Into<String>) -> Selected {
    Selected {
        device: Device::flex(),
        backend: Backend::Cpu,
        reason: reason.into(),
    }
}

/// Native selection. `auto` prefers a hardware GPU and falls back to the CPU, saying why.
#[cfg(all(not(target_arch = "wasm32"), feature = "gpu"))]
pub fn select(choice: BackendChoice) -> Result<Selected> {
    match choice {
        BackendChoice::Cpu => Ok(cpu("requested")),
        BackendChoice::Wgpu => init_wgpu(DeviceKind::DefaultDevice),
        // Only hardware GPUs: a software adapter (lavapipe, SwiftShader) is several times slower
        // than burn-flex on the same cores.
        BackendChoice::Auto => init_wgpu(DeviceKind::DiscreteGpu(0))
            .or_else(|_| init_wgpu(DeviceKind::IntegratedGpu(0)))
            .or_else(|e| Ok(cpu(format!("auto: {e}; using the CPU backend")))),
    }
}

/// Native selection in a build without the `gpu` feature (no wgpu backend compiled in).
#[cfg(all(not(target_arch = "wasm32"), not(feature = "gpu")))]
pub fn select(choice: BackendChoice) -> Result<Selected> {
    match choice {
        BackendChoice::Cpu => Ok(cpu("requested")),
        BackendChoice::Wgpu => Err(Error::NoGpu(
            "this build has no wgpu backend (built without the `gpu` feature)".into(),
        )),
        BackendChoice::Auto => Ok(cpu("auto: built without the `gpu` feature")),
    }
}

#[cfg(all(not(target_arch = "wasm32"), feature = "gpu"))]
fn init_wgpu(kind: DeviceKind) -> Result<Selected> {
    // wgpu panics in some drivers' adapter probing instead of returning an error; a panic here
    // must become "no GPU", not a crash of the whole command.
    let label = format!("{kind:?}");
    let attempt = std::panic::catch_unwind(|| Device::wgpu_options().device_kind(kind).init());
    match attempt {
        Ok(Ok(device)) => Ok(Selected {
            device,
            backend: Backend::Gpu,
            reason: format!("wgpu adapter: {label}"),
        }),
        Ok(Err(e)) => Err(Error::NoGpu(format!(
            "no wgpu adapter of kind {label} ({e})"
        ))),
        Err(_) => Err(Error::NoGpu("the wgpu adapter probe crashed".into())),
    }
}
