//! One training run of the session: which photos train and which validate, then the head (or
//! the last stage and the head) trained on their cached rows.

use std::rc::Rc;

use burn::tensor::Device;

use super::Session;
use super::model::{Trained, TunedStage};
use crate::backbone::LastStage;
use crate::data::dataset::{Example, Views};
use crate::data::split;
use crate::error::{Error, Result};
use crate::finetune;
use crate::trainer::{self, Progress, Sets, TrainConfig, TrainExample, ValExample};

/// Which photos validate.
#[derive(Clone, Debug, PartialEq)]
pub enum Split {
    /// `val_split` of each class, drawn with the config's seed (`split::stratified`).
    Stratified,
    /// These image ids (e.g. a separate validation folder); the others train.
    Held(Vec<u32>),
}

/// What a run needs, copied out of the session so it can be awaited without a borrow.
pub(super) struct TrainJob {
    labels: Vec<String>,
    examples: Vec<Example>,
    train_idx: Vec<usize>,
    val_idx: Vec<usize>,
    /// With `finetune_last`: each example's stage inputs, and the pretrained stage to start
    /// from.
    stage: Option<(Vec<Rc<Views>>, LastStage)>,
    cfg: TrainConfig,
    device: Device,
}

impl Session {
    /// Check everything a run needs before it starts: a missing stage input would otherwise
    /// surface after the split, or as a head-only model the user did not ask for.
    pub(super) fn train_job(&self, cfg: TrainConfig, split: &Split) -> Result<TrainJob> {
        cfg.validate()?;
        let labels = self.data.labels().to_vec();
        let examples = self.data.examples().to_vec();
        let (train_idx, val_idx) = match split {
            Split::Stratified => {
                let y: Vec<usize> = examples.iter().map(|e| e.label).collect();
                split::stratified(&y, labels.len(), cfg.val_split, cfg.seed)
            }
            Split::Held(ids) => held_out(&examples, ids)?,
        };
        let stage = if cfg.finetune_last {
            Some((
                self.stage_rows(&examples)?,
                self.backbone.split_last_stage(),
            ))
        } else {
            None
        };
        Ok(TrainJob {
            labels,
            examples,
            train_idx,
            val_idx,
            stage,
            cfg,
            device: self.backbone.device(),
        })
    }

    /// Each example's cached stage inputs, in order, or why fine-tuning cannot run.
    fn stage_rows(&self, examples: &[Example]) -> Result<Vec<Rc<Views>>> {
        if !self.options.finetune {
            return Err(Error::Invalid(
                "fine-tuning the last stage needs each image's stage input, which this session \
                 does not keep: create it with {finetune: true} (Trainer.create, or the Sortwise \
                 client) and add the images again"
                    .into(),
            ));
        }
        let rows: Vec<_> = examples
            .iter()
            .filter_map(|e| self.stage_inputs.get(&e.id).cloned())
            .collect();
        let missing = examples.len() - rows.len();
        if missing > 0 {
            return Err(Error::Invalid(format!(
                "{missing} of the {} images were added from a saved embedding (addEmbedding) and \
                 have no pixels to fine-tune the last stage on: add them with addImage instead \
                 (from the original or its thumbnail), or train without finetuneLast",
                examples.len()
            )));
        }
        Ok(rows)
    }
}

/// (train, validation) indices of `examples` when `ids` validate.
fn held_out(examples: &[Example], ids: &[u32]) -> Result<(Vec<usize>, Vec<usize>)> {
    let val = ids
        .iter()
        .map(|id| {
            examples
                .iter()
                .position(|e| e.id == *id)
                .ok_or_else(|| Error::Invalid(format!("there is no image {id} to validate on")))
        })
        .collect::<Result<Vec<_>>>()?;
    let train = (0..examples.len()).filter(|i| !val.contains(i)).collect();
    Ok((train, val))
}

impl TrainJob {
    /// Train; `progress` is awaited after every epoch (see `trainer::train_with_views`) and
    /// resolving to `false` cancels.
    pub(super) async fn run(
        self,
        progress: &mut impl AsyncFnMut(&Progress) -> bool,
    ) -> Result<Trained> {
        let (examples, train_idx, val_idx) = (&self.examples, &self.train_idx, &self.val_idx);
        let (labels, cfg, device) = (&self.labels, &self.cfg, &self.device);
        let (head, report, stage) = match self.stage {
            None => {
                let (train_set, val_set) = trainer::sets(examples, train_idx, val_idx);
                // The refit trains on the validation photos' augmented views too.
                let val_views: Vec<&[Vec<f32>]> = val_idx
                    .iter()
                    .map(|&i| examples[i].views.as_slice())
                    .collect();
                let sets = Sets {
                    labels,
                    train: &train_set,
                    val: &val_set,
                    val_views: Some(&val_views),
                };
                let (head, report) = trainer::train_with_views(sets, cfg, device, progress).await?;
                (head, report, None)
            }
            Some((rows, pretrained)) => {
                // The same split, over the stage inputs instead of the embeddings.
                let train_set: Vec<TrainExample> = train_idx
                    .iter()
                    .map(|&i| TrainExample {
                        views: rows[i].as_slice(),
                        label: examples[i].label,
                    })
                    .collect();
                let val_set: Vec<ValExample> = val_idx
                    .iter()
                    .map(|&i| ValExample {
                        embedding: &rows[i][0],
                        label: examples[i].label,
                        id: examples[i].id,
                    })
                    .collect();
                let val_views: Vec<&[Vec<f32>]> =
                    val_idx.iter().map(|&i| rows[i].as_slice()).collect();
                let sets = Sets {
                    labels,
                    train: &train_set,
                    val: &val_set,
                    val_views: Some(&val_views),
                };
                let (tuned, report) =
                    finetune::train_with_views(sets, cfg, pretrained, device, progress).await?;
                let weights = tuned.stage.to_weights().await?;
                let stage = TunedStage {
                    stage: Rc::new(tuned.stage),
                    weights: Rc::new(weights),
                };
                (tuned.head, report, Some(stage))
            }
        };
        let (weight, bias) = head.to_weights().await?;
        let temperature = report.calibration.as_ref().map_or(1.0, |c| c.temperature);
        let validation = self.val_idx.iter().map(|&i| self.examples[i].id).collect();
        Ok(Trained {
            head,
            labels: self.labels,
            weight,
            bias,
            config: self.cfg,
            report: Some(report),
            stage,
            temperature,
            validation,
        })
    }
}
