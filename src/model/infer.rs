//! Batched backbone inference over preprocessed images.

use crate::arch::Arch;
use crate::backbone::Backbone;
use crate::error::Result;
use crate::tensor_io::{IMAGE_SHAPE, flatten_rows, in_batches};

/// Images per backbone call: large enough to keep GEMMs efficient, small enough that ResNet-50
/// activations for the batch stay well under a browser tab's memory.
pub const DEFAULT_BATCH: usize = 16;

/// Photos a shell should hand `add_images` at once, for a backbone on the CPU with `threads`
/// threads: the batch runs as one pass per thread (`tensor_io::in_batches`), and a pass of 4
/// leaves ResNet-18's (and -34's: the same 7×7 layers) 3×3 convolutions at 7×7 16 tiles, under
/// Winograd's 32, so they ran direct with 4× the multiplies. Measured in Chromium on 2 threads
/// (bench/ab.mjs, docs/BENCHMARKS.md, 2026-12-07): ResNet-18 0.85× the time a photo at 16
/// against 8 (12: 1.16× 16's; 32: as 16); Lite0 and ResNet-50 the same at both, where 16 held
/// ~90-110 MB more wasm memory. At least 8 (one thread: one pass), at most 32.
pub fn add_batch(arch: Arch, threads: usize) -> usize {
    let per_thread = match arch {
        Arch::Resnet18 | Arch::Resnet34 => 8,
        Arch::Resnet50 | Arch::EfficientnetLite0 => 4,
    };
    (per_thread * threads.max(1)).clamp(8, 32)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_batch_gives_resnet18_passes_of_8() {
        assert_eq!(add_batch(Arch::Resnet18, 2), 16);
        assert_eq!(add_batch(Arch::Resnet34, 2), 16);
        assert_eq!(add_batch(Arch::Resnet18, 1), 8);
        assert_eq!(add_batch(Arch::Resnet18, 8), 32);
        assert_eq!(add_batch(Arch::EfficientnetLite0, 2), 8);
        assert_eq!(add_batch(Arch::Resnet50, 2), 8);
        assert_eq!(add_batch(Arch::EfficientnetLite0, 1), 8);
        assert_eq!(add_batch(Arch::EfficientnetLite0, 4), 16);
        assert_eq!(add_batch(Arch::Resnet50, 0), 8);
    }
}
