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
    if *device == Device::flex() {
        for chunk in rows.chunks(batch.max(1)) {
            for y in cpu_pass(chunk, shape, device, &forward)? {
                out.extend(read_rows(y).await?);
            }
        }
        return Ok(out);
    }
    for chunk in rows.chunks(batch.max(1)) {
        out.extend(read_rows(forward(rows_tensor(chunk, shape, device)?)).await?);
    }
    Ok(out)
}

/// `forward` over one batch on the CPU, on the pool (the CPU backend computes as it goes, so a
/// pass is done when `forward` returns): the batch split into one part per thread, each part's
/// whole pass a task of its own. Each layer's loop split among the threads ended in a wait for the
/// slowest share (~50 of them a pass); in a Lite0 profile each thread idled 16-20% of a batch
/// that way. A thread done early steals from the other part's loops. See `parallel::on_pool_each`.
fn cpu_pass(
    rows: &[&[f32]],
    shape: [usize; 3],
    device: &Device,
    forward: &(impl Fn(Tensor<4>) -> Tensor<2> + Sync),
) -> Result<Vec<Tensor<2>>> {
    let parts: Vec<&[&[f32]]> = rows
        .chunks(
            rows.len()
                .div_ceil(parallel::threads().clamp(1, rows.len().max(1))),
        )
        .collect();
    parallel::on_pool_each(parts.len(), |i| {
        rows_tensor(parts[i], shape, device).map(forward)
    })
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch split into one pass per thread comes back whole and in order, for batch sizes
    /// that do and do not divide evenly among the threads.
    #[test]
    fn cpu_batches_come_back_in_order() {
        let device = Device::flex();
        let shape = [2, 3, 3];
        let rows: Vec<Vec<f32>> = (0..11)
            .map(|i| (0..18).map(|j| (i * 100 + j) as f32).collect())
            .collect();
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        for batch in [1, 2, 3, 8, 11, 16] {
            let out = pollster::block_on(in_batches(&refs, shape, batch, &device, |x| {
                flatten_rows(x * 2.0)
            }))
            .unwrap();
            assert_eq!(out.len(), rows.len(), "batch {batch}");
            for (i, (o, r)) in out.iter().zip(&rows).enumerate() {
                let want: Vec<f32> = r.iter().map(|v| v * 2.0).collect();
                assert_eq!(o, &want, "batch {batch}, row {i}");
            }
        }
        let short = [0.0; 17];
        let err = pollster::block_on(in_batches(&[&short[..]], shape, 4, &device, flatten_rows));
        assert!(err.unwrap_err().to_string().contains("expected 18"));
    }
}
