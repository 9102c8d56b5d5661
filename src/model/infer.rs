//! Batched backbone inference over preprocessed images.

use crate::backbone::Backbone;
use crate::error::Result;
use crate::tensor_io::{IMAGE_SHAPE, flatten_rows, in_batches};

/// Images per backbone call: large enough to keep GEMMs efficient, small enough that ResNet-50
/// activations for the batch stay well under a browser tab's memory.
pub const DEFAULT_BATCH: usize = 16;

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

/// Run the backbone over many `[3, 224, 224]` inputs in batches of `batch`.
pub async fn run(
    backbone: &Backbone,
    inputs: &[Vec<f32>],
    output: Output,
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    let rows: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    in_batches(
        &rows,
        IMAGE_SHAPE,
        batch,
        &backbone.device(),
        |x| match output {
            Output::Features => backbone.features(x),
            Output::Logits => backbone.forward(x),
            Output::StageInput => flatten_rows(backbone.stage_input(x)),
        },
    )
    .await
}
