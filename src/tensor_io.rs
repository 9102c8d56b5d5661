//! Rows of `f32` on the host to tensors on the device and back, in batches. Readback is async
//! so the same code runs on WebGPU in a browser, where blocking on the GPU is not allowed;
//! native callers block on it. Everything that runs the backbone or a stage over cached rows
//! goes through [`in_batches`].

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::parallel;
use crate::preprocess::CROP;

/// `[C, H, W]` of a preprocessed image: `[3, 224, 224]`.
pub const IMAGE_SHAPE: [usize; 3] = [3, CROP as usize, CROP as usize];

/// Rows of `C·H·W` values -> one `[N, C, H, W]` tensor, refusing a row of another length.
pub fn rows_tensor(rows: &[&[f32]], shape: [usize; 3], device: &Device) -> Result<Tensor<4>> {
    let [c, h, w] = shape;
    let per = c * h * w;
    if let Some(i) = rows.iter().position(|r| r.len() != per) {
        return Err(Error::Invalid(format!(
            "input {i} has {} values, expected {per} ({c}x{h}x{w})",
            rows[i].len()
        )));
    }
    Ok(stage_batch(rows, shape, device))
}

/// Stack preprocessed `[3, 224, 224]` inputs into one `[N, 3, 224, 224]` tensor.
pub fn batch_tensor(inputs: &[&[f32]], device: &Device) -> Result<Tensor<4>> {
    rows_tensor(inputs, IMAGE_SHAPE, device)
}

/// Rows of `C·H·W` values -> a `[N, C, H, W]` tensor; the caller has checked the lengths (the
/// training loop, on rows checked once before its first epoch).
pub fn stage_batch(rows: &[&[f32]], shape: [usize; 3], device: &Device) -> Tensor<4> {
    let [c, h, w] = shape;
    Tensor::from_data(
        TensorData::new(rows.concat(), [rows.len(), c, h, w]),
        device,
    )
}

/// Values of a `[N, C, H, W]` tensor as rows of `C·H·W`.
pub fn flatten_rows(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c * h * w])
}

/// Rows of equal length -> one `[N, D]` matrix.
pub fn matrix(rows: &[&[f32]], device: &Device) -> Tensor<2> {
    let dim = rows.first().map_or(0, |r| r.len());
    // `concat` copies row by row; a flat_map collect pushed element by element and was a
    // third of head training (bench_head).
    Tensor::from_data(TensorData::new(rows.concat(), [rows.len(), dim]), device)
}

/// `[N, D]` tensor -> N rows, read back asynchronously.
pub async fn read_rows(t: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [_, d] = t.dims();
    let data = t
        .into_data_async()
        .await
        .map_err(|e| Error::Device(format!("reading results back failed: {e:?}")))?;
    let flat: Vec<f32> = data
        .convert::<f32>()
        .try_into_vec()
        .map_err(|e| Error::Device(format!("unexpected result data: {e:?}")))?;
    Ok(flat.chunks(d.max(1)).map(<[f32]>::to_vec).collect())
}

/// `forward` over `rows` (each `shape`, `C·H·W` values) in batches of `batch`, rows read back.
pub async fn in_batches(
    rows: &[&[f32]],
    shape: [usize; 3],
    batch: usize,
    device: &Device,
    forward: impl Fn(Tensor<4>) -> Tensor<2> + Sync,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(rows.len());
    let cpu = *device == Device::flex();
    for chunk in rows.chunks(batch.max(1)) {
        let x = rows_tensor(chunk, shape, device)?;
        // On the CPU the whole pass runs on one of the pool's threads (the CPU backend computes
        // as it goes, so it is done when `forward` returns): see `parallel::on_pool`.
        let y = if cpu {
            parallel::on_pool(|| forward(x))
        } else {
            forward(x)
        };
        out.extend(read_rows(y).await?);
    }
    Ok(out)
}
