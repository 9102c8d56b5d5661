//! The browser's device: WebGPU when a hardware adapter is there, else the CPU backend (on the
//! rayon pool in the threaded build).

#[cfg(feature = "gpu")]
use std::cell::RefCell;

use burn::tensor::Device;
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::convert::{get, js_err};
use crate::device::Backend;

#[cfg(feature = "gpu")]
thread_local! {
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// The page's WebGPU device, started on first use. burn registers one server per adapter and
/// refuses a second `init_async`, so every trainer in this thread shares it.
#[cfg(feature = "gpu")]
pub async fn webgpu_device() -> Result<Device, String> {
    if let Some(device) = WEBGPU.with(|w| w.borrow().clone()) {
        return Ok(device);
    }
    let device = Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| format!("WebGPU could not start: {e:?}"))?;
    WEBGPU.with(|w| *w.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// The CPU-only build (pkg-cpu/) has no WebGPU backend: the worker loads pkg/ for WebGPU.
#[cfg(not(feature = "gpu"))]
pub async fn webgpu_device() -> Result<Device, String> {
    Err("this is the CPU-only build (pkg-cpu/), which has no WebGPU backend".into())
}

/// Threads the CPU backend runs on: the rayon pool JS started with `initThreadPool`, or one in
/// the single-threaded build.
pub fn cpu_threads() -> usize {
    crate::parallel::threads()
}

/// The device a trainer runs on, and why, for the page to show.
pub struct Chosen {
    pub device: Device,
    pub backend: Backend,
    pub reason: String,
}

/// The CPU device, with its thread count in the reason when there is a pool (the page's device
/// badge shows it; the worker says why the single-threaded build runs).
fn cpu(why: String) -> Chosen {
    let reason = match cpu_threads() {
        1 => why,
        n => format!("{why}; {n} threads"),
    };
    Chosen {
        device: Device::flex(),
        backend: Backend::Cpu,
        reason,
    }
}

fn webgpu(device: Device, reason: &str) -> Chosen {
    Chosen {
        device,
        backend: Backend::Gpu,
        reason: reason.into(),
    }
}

/// `None` when a hardware WebGPU adapter is there; otherwise why the CPU is the better choice.
async fn software_or_missing_adapter() -> Option<String> {
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    if gpu.is_undefined() || gpu.is_null() {
        return Some("this browser has no WebGPU".into());
    }
    let request = get(&gpu, "requestAdapter").dyn_into::<Function>().ok()?;
    let promise = request.call0(&gpu).ok()?.dyn_into::<Promise>().ok()?;
    let adapter = match JsFuture::from(promise).await {
        Ok(a) if !a.is_null() && !a.is_undefined() => a,
        _ => return Some("no WebGPU adapter is available".into()),
    };
    let info = get(&adapter, "info");
    let fallback = get(&info, "isFallbackAdapter")
        .as_bool()
        .or_else(|| get(&adapter, "isFallbackAdapter").as_bool())
        .unwrap_or(false);
    let name = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|k| get(&info, k).as_string())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let software = ["swiftshader", "llvmpipe", "lavapipe", "software"]
        .iter()
        .any(|s| name.contains(s));
    (fallback || software).then(|| {
        format!(
            "the only WebGPU adapter is a software renderer ({name}), slower than the CPU backend"
        )
    })
}

/// `device: 'auto' | 'webgpu' | 'cpu'` -> the device and why.
pub async fn select(choice: &str) -> Result<Chosen, JsValue> {
    match choice {
        "cpu" => Ok(cpu("requested".into())),
        "webgpu" => Ok(webgpu(webgpu_device().await.map_err(js_err)?, "requested")),
        "auto" => match software_or_missing_adapter().await {
            Some(why) => Ok(cpu(format!("{why}; using the CPU backend"))),
            None => match webgpu_device().await {
                Ok(d) => Ok(webgpu(d, "hardware WebGPU adapter")),
                Err(e) => Ok(cpu(format!("{e}; using the CPU backend"))),
            },
        },
        other => Err(js_err(format!(
            "unknown device '{other}': expected 'auto', 'webgpu' or 'cpu'"
        ))),
    }
}
