//! Backbone weights in and out.
//!
//! Three inputs, one model: a torchvision / lukemelas `.pth` (through burn-store's
//! `PytorchStore`, native only), a safetensors file with the same PyTorch key names (what the
//! test fixtures and many model hubs use), and sortwise's own web weight file. The web file is a
//! safetensors file with burn's parameter paths, f32 or f16 storage, and metadata naming the
//! architecture, so a wrong file is refused before any tensor is touched.

use std::collections::HashMap;

use burn::module::Module;
use burn::store::{ApplyResult, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::Device;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::arch::Arch;
use crate::backbone::{Backbone, Net};
use crate::error::{Error, Result};

/// Identifies sortwise web weight files; bump when the key layout changes.
pub const FORMAT: &str = "sortwise-backbone-v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageDtype {
    F32,
    F16,
}

impl std::str::FromStr for StorageDtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "float32" => Ok(StorageDtype::F32),
            "f16" | "float16" | "half" => Ok(StorageDtype::F16),
            _ => Err(Error::Invalid(format!(
                "unknown dtype '{s}': expected f32 or f16"
            ))),
        }
    }
}

impl StorageDtype {
    pub fn name(self) -> &'static str {
        match self {
            StorageDtype::F32 => "f32",
            StorageDtype::F16 => "f16",
        }
    }
}

/// What a web weight file says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightsInfo {
    pub arch: Arch,
    pub dtype: StorageDtype,
    /// sha256 of the checkpoint the file was converted from; trained models record it to refuse
    /// another backbone.
    pub source_sha256: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// PyTorch key -> burn path rewrites for each architecture (regex, replacement).
pub fn torch_key_remaps(arch: Arch) -> Vec<(&'static str, &'static str)> {
    match arch {
        Arch::EfficientnetLite0 => vec![(r"^_", ""), (r"\._", ".")],
        _ => vec![
            (r"(.+)\.downsample\.0\.(.+)", "$1.downsample.conv.$2"),
            (r"(.+)\.downsample\.1\.(.+)", "$1.downsample.bn.$2"),
        ],
    }
}

/// PyTorch bookkeeping with no counterpart in the model: ignored, not an error.
fn is_ignorable(key: &str) -> bool {
    key.ends_with("num_batches_tracked")
}

fn check_apply(arch: Arch, result: ApplyResult) -> Result<()> {
    let mismatch = |detail: String| Error::WeightsMismatch {
        arch: arch.name().to_string(),
        detail,
    };
    if let Some(err) = result.errors.first() {
        return Err(mismatch(err.to_string()));
    }
    if !result.missing.is_empty() {
        let names: Vec<&str> = result
            .missing
            .iter()
            .map(|(k, _)| k.as_str())
            .take(5)
            .collect();
        return Err(mismatch(format!(
            "{} parameter(s) missing, e.g. {}",
            result.missing.len(),
            names.join(", ")
        )));
    }
    let unused: Vec<&String> = result.unused.iter().filter(|k| !is_ignorable(k)).collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|k| k.as_str()).take(5).collect();
        return Err(mismatch(format!(
            "{} unexpected tensor(s), e.g. {}",
            unused.len(),
            names.join(", ")
        )));
    }
    Ok(())
}

fn store_error(arch: Arch, err: impl std::fmt::Display) -> Error {
    let detail = err.to_string();
    // burn-store reports shape and missing-key problems through its error type too; both mean
    // "this is another network", which deserves the clearer message.
    if detail.contains("hape") || detail.contains("issing") || detail.contains("not found") {
        Error::WeightsMismatch {
            arch: arch.name().to_string(),
            detail,
        }
    } else {
        Error::WeightsFormat(detail)
    }
}

fn apply<S: burn::store::ModuleStore>(
    arch: Arch,
    store: &mut S,
    device: &Device,
) -> Result<Backbone> {
    let mut backbone = Backbone::init(arch, device);
    let result = match &mut backbone.net {
        Net::ResNet(m) => m.load_from(store),
        Net::EfficientNet(m) => m.load_from(store),
    }
    .map_err(|e| store_error(arch, e))?;
    check_apply(arch, result)?;
    Ok(backbone)
}

/// Load a torchvision (ResNet) or lukemelas (EfficientNet-Lite0) `.pth` state dict.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_pth(arch: Arch, path: &std::path::Path, device: &Device) -> Result<Backbone> {
    use burn::store::PytorchStore;
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    let mut store = PytorchStore::from_file(path).allow_partial(true);
    for (from, to) in torch_key_remaps(arch) {
        store = store.with_key_remapping(from, to);
    }
    apply(arch, &mut store, device)
}

/// Refuse a file with a NaN or infinite parameter: it loads, and then every embedding and
/// prediction is NaN with no message anywhere.
fn check_finite(bytes: &[u8]) -> Result<()> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::WeightsFormat(format!("corrupt safetensors file ({e})")))?;
    for (name, view) in st.iter() {
        let data = view.data();
        let finite = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite()),
            Dtype::F16 => data
                .chunks_exact(2)
                .all(|c| half::f16::from_le_bytes([c[0], c[1]]).is_finite()),
            Dtype::BF16 => data
                .chunks_exact(2)
                .all(|c| half::bf16::from_le_bytes([c[0], c[1]]).is_finite()),
            Dtype::F64 => data
                .chunks_exact(8)
                .all(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])).is_finite()),
            _ => true,
        };
        if !finite {
            return Err(Error::WeightsFormat(format!(
                "tensor {name} holds NaN or infinite values: the weight file is damaged"
            )));
        }
    }
    Ok(())
}

/// Load a safetensors file that uses PyTorch key names and layouts.
pub fn load_torch_safetensors(arch: Arch, bytes: Vec<u8>, device: &Device) -> Result<Backbone> {
    check_finite(&bytes)?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(true);
    for (from, to) in torch_key_remaps(arch) {
        store = store.with_key_remapping(from, to);
    }
    apply(arch, &mut store, device)
}

/// Read the metadata of a web weight file without loading it.
pub fn read_info(bytes: &[u8]) -> Result<WeightsInfo> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::WeightsFormat(format!("not a safetensors weight file ({e})")))?;
    let map = meta.metadata().clone().unwrap_or_default();
    let get = |k: &str| map.get(k).cloned();
    match get("format").as_deref() {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(Error::WeightsFormat(format!(
                "weight format '{other}' is not supported by this version (expected {FORMAT})"
            )));
        }
        None => {
            return Err(Error::WeightsFormat(
                "this safetensors file was not made by `sortwise convert` (no format metadata)"
                    .into(),
            ));
        }
    }
    let arch: Arch = get("arch")
        .ok_or_else(|| Error::WeightsFormat("metadata has no 'arch'".into()))?
        .parse()?;
    let dtype: StorageDtype = get("dtype").unwrap_or_else(|| "f32".into()).parse()?;
    Ok(WeightsInfo {
        arch,
        dtype,
        source_sha256: get("source_sha256").unwrap_or_default(),
    })
}

/// Load a web weight file made by [`save_web`]. `expected` refuses a file for another
/// architecture with a message that names both.
pub fn load_web(
    bytes: &[u8],
    expected: Option<Arch>,
    device: &Device,
) -> Result<(Backbone, WeightsInfo)> {
    let info = read_info(bytes)?;
    if let Some(arch) = expected
        && arch != info.arch
    {
        return Err(Error::WeightsMismatch {
            arch: arch.name().into(),
            detail: format!("this file holds {} weights", info.arch),
        });
    }
    check_finite(bytes)?;
    // f16 is a storage format only: widen before loading, since burn-store keeps the dtype a
    // file declares and we want f32 arithmetic.
    let f32_bytes = widen_to_f32(bytes)?;
    let mut store = SafetensorsStore::from_bytes(Some(f32_bytes)).allow_partial(true);
    let backbone = apply(info.arch, &mut store, device)?;
    Ok((backbone, info))
}

fn widen_to_f32(bytes: &[u8]) -> Result<Vec<u8>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::WeightsFormat(format!("corrupt safetensors file ({e})")))?;
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| Error::WeightsFormat(e.to_string()))?;
    if st.iter().all(|(_, v)| v.dtype() != Dtype::F16) {
        return Ok(bytes.to_vec());
    }
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.iter() {
        let data = match view.dtype() {
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .flat_map(|c| {
                    half::f16::from_le_bytes([c[0], c[1]])
                        .to_f32()
                        .to_le_bytes()
                })
                .collect(),
            Dtype::F32 => view.data().to_vec(),
            other => {
                return Err(Error::WeightsFormat(format!(
                    "tensor {name} has unsupported dtype {other:?}"
                )));
            }
        };
        owned.push((name.to_string(), view.shape().to_vec(), data));
    }
    serialize(&owned, meta.metadata().clone())
}

fn serialize(
    tensors: &[(String, Vec<usize>, Vec<u8>)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    serialize_typed(
        tensors
            .iter()
            .map(|(n, s, d)| (n.as_str(), Dtype::F32, s.as_slice(), d.as_slice())),
        metadata,
    )
}

fn serialize_typed<'a>(
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let views = tensors
        .map(|(name, dtype, shape, data)| {
            safetensors::tensor::TensorView::new(dtype, shape.to_vec(), data)
                .map(|v| (name.to_string(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::WeightsFormat(e.to_string()))?;
    safetensors::serialize(views, metadata).map_err(|e| Error::WeightsFormat(e.to_string()))
}

/// Write a backbone as a web weight file: burn parameter paths, `dtype` storage, metadata.
pub fn save_web(backbone: &Backbone, dtype: StorageDtype, source_sha256: &str) -> Result<Vec<u8>> {
    let tensors = match &backbone.net {
        Net::ResNet(m) => m.collect(None, None, false),
        Net::EfficientNet(m) => m.collect(None, None, false),
    };
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for t in tensors {
        let (name, tdtype, shape, _, bytes) = t
            .into_parts()
            .map_err(|e| Error::WeightsFormat(format!("reading parameters: {e}")))?;
        if tdtype != burn::tensor::DType::F32 {
            return Err(Error::WeightsFormat(format!(
                "parameter {name} is {tdtype:?}, expected f32"
            )));
        }
        let (st_dtype, data) = match dtype {
            StorageDtype::F32 => (Dtype::F32, bytes.to_vec()),
            StorageDtype::F16 => (
                Dtype::F16,
                bytes
                    .chunks_exact(4)
                    .flat_map(|c| {
                        half::f16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .to_le_bytes()
                    })
                    .collect(),
            ),
        };
        owned.push((name, st_dtype, shape.to_vec(), data));
    }
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("arch".to_string(), backbone.arch.name().to_string()),
        ("dtype".to_string(), dtype.name().to_string()),
        ("source_sha256".to_string(), source_sha256.to_string()),
        (
            "preprocess".to_string(),
            crate::preprocess::PREPROCESS_DESCRIPTION.to_string(),
        ),
    ]);
    serialize_typed(
        owned
            .iter()
            .map(|(n, d, s, b)| (n.as_str(), *d, s.as_slice(), b.as_slice())),
        Some(metadata),
    )
}

/// Parameter count, for reporting.
pub fn num_params(backbone: &Backbone) -> usize {
    match &backbone.net {
        Net::ResNet(m) => m.num_params(),
        Net::EfficientNet(m) => m.num_params(),
    }
}
