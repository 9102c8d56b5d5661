//! Images to cached rows: the evaluation view and `augment` augmented views of each image
//! through the frozen backbone, in batches. Head-only training caches the embeddings; fine-tuning
//! the last stage caches what enters that stage (and, from it, the same embeddings).

use image::RgbImage;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::backbone::{Backbone, LastStage};
use crate::error::{Error, Result};
use crate::model::infer::{self, Output};
use crate::parallel;
use crate::preprocess::{self, Fit};
use crate::tensor_io::{IMAGE_SHAPE, flatten_rows, in_batches};

/// Which views of each image are embedded, and how many inputs one backbone call takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewSpec {
    /// How the evaluation view fits the image into 224×224.
    pub fit: Fit,
    /// Augmented views per image, besides the evaluation view.
    pub augment: usize,
    /// Image `i`'s augmentations draw from a RNG seeded with `seed + i`, so the views do not
    /// depend on batch boundaries.
    pub seed: u64,
    pub batch: usize,
}

impl ViewSpec {
    /// The evaluation view alone, [`infer::DEFAULT_BATCH`] inputs a call.
    pub fn eval(fit: Fit) -> Self {
        ViewSpec {
            fit,
            augment: 0,
            seed: 0,
            batch: infer::DEFAULT_BATCH,
        }
    }

    pub fn with_augment(self, augment: usize, seed: u64) -> Self {
        ViewSpec {
            augment,
            seed,
            ..self
        }
    }

    pub fn with_batch(self, batch: usize) -> Self {
        ViewSpec { batch, ..self }
    }
}

/// Each image's views as backbone `output` rows. `progress(done, total)` is called after every
/// batch; returning `false` cancels with [`Error::Cancelled`].
pub async fn views(
    backbone: &Backbone,
    images: &[RgbImage],
    spec: ViewSpec,
    output: Output,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let per = 1 + spec.augment;
    let mut out = Vec::with_capacity(images.len());
    // Group whole images so one backbone call sees up to `batch` inputs.
    let images_per_call = (spec.batch / per).max(1);
    for (chunk_i, chunk) in images.chunks(images_per_call).enumerate() {
        // Each image's views from its own seed, so they do not depend on which thread made them.
        let views = parallel::par_map(chunk, |j, img| {
            let index = (chunk_i * images_per_call + j) as u64;
            let mut rng = StdRng::seed_from_u64(spec.seed.wrapping_add(index));
            let mut v = Vec::with_capacity(per);
            v.push(preprocess::eval_tensor(img, spec.fit));
            for _ in 0..spec.augment {
                v.push(preprocess::augment(img, &mut rng));
            }
            v
        });
        let inputs: Vec<Vec<f32>> = views.into_iter().flatten().collect();
        let rows = infer::run(backbone, &inputs, output, inputs.len()).await?;
        let mut rows = rows.into_iter();
        for _ in chunk {
            out.push(rows.by_ref().take(per).collect());
        }
        if !progress(out.len(), images.len()) {
            return Err(Error::Cancelled);
        }
    }
    Ok(out)
}

/// [`views`] as pooled embeddings.
pub async fn embed_views(
    backbone: &Backbone,
    images: &[RgbImage],
    spec: ViewSpec,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<Vec<Vec<f32>>>> {
    views(backbone, images, spec, Output::Features, progress).await
}

/// [`views`] as last-stage inputs, flattened to `C·H·W` values (`Arch::stage_input_shape`).
pub async fn stage_inputs(
    backbone: &Backbone,
    images: &[RgbImage],
    spec: ViewSpec,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<Vec<Vec<f32>>>> {
    views(backbone, images, spec, Output::StageInput, progress).await
}

/// One image's views as both caches: the stage inputs fine-tuning trains on and the embeddings
/// head-only training (and a saved project) use.
pub struct StageViews {
    pub embeddings: Vec<Vec<f32>>,
    pub stage_inputs: Vec<Vec<f32>>,
}

/// [`stage_inputs`] and, from them through the backbone's own last stage, the embeddings: the
/// frozen layers before the stage run once per view instead of once per cache. The embeddings
/// are those of [`embed_views`] (same views and seeds; the split is exact, see
/// `backbone/stage.rs`), so a session that can fine-tune still trains its head-only models on
/// the same numbers as one that cannot.
pub async fn embeddings_and_stage_inputs(
    backbone: &Backbone,
    images: &[RgbImage],
    spec: ViewSpec,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<StageViews>> {
    let inputs = stage_inputs(backbone, images, spec, progress).await?;
    let shape = backbone.arch.stage_input_shape();
    let device = backbone.device();
    let mut out = Vec::with_capacity(inputs.len());
    for views in inputs {
        let rows: Vec<&[f32]> = views.iter().map(Vec::as_slice).collect();
        let embeddings = in_batches(&rows, shape, spec.batch, &device, |x| {
            backbone.features_from_stage_input(x)
        })
        .await?;
        out.push(StageViews {
            embeddings,
            stage_inputs: views,
        });
    }
    Ok(out)
}

/// Embeddings of preprocessed `[3, 224, 224]` inputs for prediction: through the backbone, or
/// with a fine-tuned `stage` in place of its last stage, without copying the backbone to put
/// the stage into it (`Backbone::set_last_stage` does that, for a backbone kept whole).
pub async fn features(
    backbone: &Backbone,
    stage: Option<&LastStage>,
    inputs: &[Vec<f32>],
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    let Some(stage) = stage else {
        return infer::run(backbone, inputs, Output::Features, batch).await;
    };
    let rows: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    in_batches(&rows, IMAGE_SHAPE, batch, &backbone.device(), |x| {
        stage.features(backbone.stage_input(x))
    })
    .await
}

/// The last feature maps of preprocessed inputs (through a fine-tuned `stage` when given), each
/// flattened `C·H·W`: one forward gives both the embedding (their mean over positions) and the
/// class activation maps (`explain.rs`).
pub async fn feature_maps(
    backbone: &Backbone,
    stage: Option<&LastStage>,
    inputs: &[Vec<f32>],
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    let rows: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    in_batches(&rows, IMAGE_SHAPE, batch, &backbone.device(), |x| {
        flatten_rows(match stage {
            Some(stage) => stage.feature_map(backbone.stage_input(x)),
            None => backbone.feature_map(x),
        })
    })
    .await
}
