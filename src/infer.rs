//! Batched backbone inference. Readback is async so the same code runs on WebGPU in a browser,
//! where blocking on the GPU is not allowed; native callers block on it.

use burn::tensor::{Device, Tensor, TensorData};

use crate::backbone::Backbone;
use crate::error::{Error, Result};
use crate::preprocess::CROP;

/// Images per backbone call: large enough to keep GEMMs efficient, small enough that ResNet-50
/// activations for the batch stay well under a browser tab's memory.
pub const DEFAULT_BATCH: usize = 16;

/// Stack preprocessed `[3, 224, 224]` inputs into one `[N, 3, 224, 224]` tensor.
pub fn batch_tensor(inputs: &[&[f32]], device: &Device) -> Result<Tensor<4>> {
    let side = CROP as usize;
    let per = 3 * side * side;
    let mut flat = Vec::with_capacity(inputs.len() * per);
    for (i, x) in inputs.iter().enumerate() {
        if x.len() != per {
            return Err(Error::Invalid(format!(
                "input {i} has {} values, expected {per} (3x{side}x{side})",
                x.len()
            )));
        }
        flat.extend_from_slice(x);
    }
    Ok(Tensor::from_data(
        TensorData::new(flat, [inputs.len(), 3, side, side]),
        device,
    ))
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Pooled embedding, `Arch::feature_dim` wide.
    Features,
    /// The 1000 ImageNet logits.
    Logits,
    /// What enters the last stage, flattened to `C·H·W` (see `Arch::stage_input_shape`): the
    /// cache of "fine-tune last stage".
    StageInput,
}

/// Run the backbone over many inputs in batches of `batch`.
pub async fn run(
    backbone: &Backbone,
    inputs: &[Vec<f32>],
    output: Output,
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    in_batches(inputs, batch, &backbone.device(), |x| match output {
        Output::Features => backbone.features(x),
        Output::Logits => backbone.forward(x),
        Output::StageInput => crate::backbone::stage::flatten_rows(backbone.stage_input(x)),
    })
    .await
}

/// `forward` over preprocessed `[3, 224, 224]` inputs in batches of `batch`, rows read back.
pub async fn in_batches(
    inputs: &[Vec<f32>],
    batch: usize,
    device: &Device,
    forward: impl Fn(Tensor<4>) -> Tensor<2>,
) -> Result<Vec<Vec<f32>>> {
    let mut rows = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(batch.max(1)) {
        let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
        rows.extend(read_rows(forward(batch_tensor(&refs, device)?)).await?);
    }
    Ok(rows)
}
