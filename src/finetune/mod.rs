//! "Fine-tune last stage": the backbone's last stage (ResNet `layer4`, EfficientNet-Lite0's last
//! five blocks and `conv_head`) trained together with the head, with the L2-SP penalty toward
//! the pretrained stage (Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning
//! with Convolutional Networks", ICML 2018).
//!
//! Everything before the stage stays frozen, so each image (and augmented view) goes through it
//! once and only the stage input is cached (`embed::stage_inputs`), as head-only training caches
//! embeddings. [`train`] then runs in two phases:
//!
//! 1. Head-only warm start: the frozen stage turns every cached input into its embedding and a
//!    head is trained on those exactly as head-only training does (`trainer::train`). Fine-tuning
//!    from a zero head would first spend epochs, each a pass through the stage, on what the cheap
//!    head-only phase does in a fraction of a second, and an untrained head sends uninformative
//!    gradients into the pretrained weights (the "linear probe, then fine-tune" argument of
//!    Kumar et al., ICLR 2022).
//! 2. Stage and head train together for `finetune_epochs` at `finetune_learning_rate`, with loss
//!    cross-entropy + (α/2)·‖θ−θ₀‖² over the stage's parameters (α = `l2sp`, θ₀ pretrained). The
//!    stage gets no weight decay toward 0 (L2-SP replaces it); the new head keeps its plain weight
//!    decay, so each has its own optimizer. BatchNorm stays in eval mode: the stage is trained in
//!    BatchNorm-folded form (see `backbone/stage.rs`), so the distance is over folded weights.
//!
//! The kept model is the best epoch by validation loss, the warm start (epoch 0, pretrained
//! stage) included: fine-tuning never ends with a worse validation loss than head-only training.
//! With `refit` (the default), that held-out run only chooses the epoch counts: the model
//! returned is trained again the same way on training + validation photos ([`train_with_views`]).

mod cache;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use web_time::Instant;

use crate::backbone::LastStage;
use crate::error::{Error, Result};
use crate::model::head::Head;
use crate::tensor_io::{in_batches, read_rows, stage_batch};

use crate::trainer::{
    self, EpochLoss, FineTuneStats, Plan, Progress, Report, Run, Sets, TrainConfig, TrainExample,
    ValExample, build_optimizer, build_report, epoch_stats, lr_at, refit_set,
};
pub use cache::{MAX_STAGE_CACHE_BYTES, check_stage_cache, max_stage_views, stage_view_bytes};

/// A fine-tuned last stage and the head trained on it.
#[derive(Module, Debug)]
pub struct FineTuned {
    pub stage: LastStage,
    pub head: Head,
}

/// `[C, H, W]` of the rows, from the stage's input channels (H = W: the stage input is square).
fn input_shape(stage: &LastStage, row_len: usize) -> Result<[usize; 3]> {
    let c = stage.input_channels();
    let side = ((row_len / c.max(1)) as f64).sqrt().round() as usize;
    if c * side * side != row_len || side == 0 {
        return Err(Error::Invalid(format!(
            "a cached stage input has {row_len} values, which is not {c} channels of a square map: \
             were embeddings passed instead of stage inputs?"
        )));
    }
    Ok([c, side, side])
}

/// Pooled embeddings of stage inputs through `stage`, `batch` rows at a time.
pub async fn stage_features(
    stage: &LastStage,
    rows: &[&[f32]],
    shape: [usize; 3],
    device: &Device,
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    in_batches(rows, shape, batch, device, |x| stage.features(x)).await
}

impl FineTuned {
    /// Softmax probabilities for stage inputs, `batch` rows at a time.
    pub async fn probabilities(
        &self,
        rows: &[&[f32]],
        shape: [usize; 3],
        device: &Device,
        batch: usize,
    ) -> Result<Vec<Vec<f32>>> {
        in_batches(rows, shape, batch, device, |x| {
            softmax(self.head.forward(self.stage.features(x)), 1)
        })
        .await
    }
}

/// Σ‖θ−θ₀‖² over the stage's parameters, in the autodiff graph when `stage` is.
fn squared_distance(stage: &LastStage, theta0: &[Tensor<1>]) -> Tensor<1> {
    stage
        .flat_params()
        .into_iter()
        .zip(theta0)
        .map(|(p, p0)| (p - p0.clone()).powi_scalar(2).sum())
        .reduce(|a, b| a + b)
        .expect("the stage has parameters")
}

/// ‖θ−θ₀‖, read back.
async fn norm(stage: &LastStage, theta0: &[Tensor<1>]) -> Result<f64> {
    let sq = read_rows(squared_distance(stage, theta0).reshape([1, 1])).await?[0][0];
    Ok((sq.max(0.0) as f64).sqrt())
}

/// Phase 1's embeddings: every cached row through the pretrained `stage` (progress phase
/// `"features"`), in order.
async fn stage_embeddings(
    rows: &[&[f32]],
    stage: &LastStage,
    shape: [usize; 3],
    device: &Device,
    batch: usize,
    progress: &mut impl AsyncFnMut(&Progress) -> bool,
) -> Result<Vec<Vec<f32>>> {
    let per = shape.iter().product::<usize>();
    if let Some(bad) = rows.iter().find(|r| r.len() != per) {
        return Err(Error::Invalid(format!(
            "cached stage inputs differ in size ({} and {per} values): were they made with \
             another backbone?",
            bad.len()
        )));
    }
    let mut embedded = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(batch) {
        embedded.extend(stage_features(stage, chunk, shape, device, batch).await?);
        let p = Progress {
            phase: "features".into(),
            epoch: embedded.len(),
            epochs: rows.len(),
            loss: 0.0,
            val_loss: None,
            val_accuracy: None,
        };
        if !progress(&p).await {
            return Err(Error::Cancelled);
        }
    }
    Ok(embedded)
}

/// Rows of `embedded` regrouped into one view list per example (`lens[i]` views each).
fn regroup(embedded: &[Vec<f32>], lens: impl Iterator<Item = usize>) -> Vec<Vec<Vec<f32>>> {
    let mut rest = embedded;
    lens.map(|n| {
        let (mine, tail) = rest.split_at(n);
        rest = tail;
        mine.to_vec()
    })
    .collect()
}

/// Stage and head trained together over one set: its plan, the two optimizers (the stage gets
/// no weight decay toward 0, L2-SP replaces it; the new head keeps its plain weight decay), the
/// loss, and what every epoch shares.
struct Tuning<'a> {
    plan: Plan,
    optims: (ModuleOptimizer, ModuleOptimizer),
    loss_fn: CrossEntropyLoss,
    shape: [usize; 3],
    theta0: &'a [Tensor<1>],
    cfg: &'a TrainConfig,
    ad: Device,
}

impl<'a> Tuning<'a> {
    fn new(
        plan: Plan,
        shape: [usize; 3],
        theta0: &'a [Tensor<1>],
        cfg: &'a TrainConfig,
        device: &Device,
    ) -> Self {
        let ad = device.clone().autodiff();
        Tuning {
            optims: (
                build_optimizer(cfg, 0.0),
                build_optimizer(cfg, cfg.weight_decay),
            ),
            loss_fn: plan.loss(cfg, &ad),
            plan,
            shape,
            theta0,
            cfg,
            ad,
        }
    }

    /// One epoch over `set` in the plan's order; the model after it and the mean
    /// cross-entropy.
    async fn epoch(
        &mut self,
        set: &[TrainExample<'_>],
        (mut stage_t, mut head_t): (LastStage, Head),
        epoch: usize,
    ) -> Result<(LastStage, Head, f64)> {
        let (cfg, ad) = (self.cfg, &self.ad);
        let base_lr = cfg.finetune_learning_rate();
        let lr = lr_at(cfg, base_lr, epoch);
        let order = self.plan.epoch_order();
        let mut epoch_loss = EpochLoss::default();
        for chunk in order.chunks(cfg.batch_size) {
            let (rows, y) = self.plan.batch(set, chunk, ad);
            let logits = head_t.forward(stage_t.features(stage_batch(&rows, self.shape, ad)));
            let ce = self.loss_fn.forward(logits, y);
            epoch_loss.add(ce.clone());
            let loss = if cfg.l2sp > 0.0 {
                ce + squared_distance(&stage_t, self.theta0).mul_scalar(cfg.l2sp / 2.0)
            } else {
                ce
            };
            let mut grads = loss.backward();
            let stage_grads = GradientsParams::from_module(&mut grads, &stage_t);
            let head_grads = GradientsParams::from_module(&mut grads, &head_t);
            stage_t = self.optims.0.step(lr, stage_t, stage_grads);
            head_t = self.optims.1.step(lr, head_t, head_grads);
        }
        let loss = epoch_loss.mean(epoch, base_lr).await?;
        Ok((stage_t, head_t, loss))
    }
}

fn example_sets<'a>(
    views: &'a [Vec<Vec<f32>>],
    like: &[TrainExample<'_>],
) -> Vec<TrainExample<'a>> {
    views
        .iter()
        .zip(like)
        .map(|(v, e)| TrainExample {
            views: v,
            label: e.label,
        })
        .collect()
}

/// Train the last stage and a head on cached stage inputs (`train_set` views and `val_set`
/// embeddings hold `embed::stage_inputs` rows). `stage` is the pretrained starting point
/// (`Backbone::split_last_stage`) on `device`. `progress` is awaited per batch of the
/// embedding pass (phase `"features"`, epoch = rows done of epochs = total), after every
/// head-only epoch (`"train"`) and every fine-tuning epoch (`"finetune"`), then for the refit's
/// epochs (`"refit"`, `"refit-finetune"`); resolving to `false` cancels with
/// [`Error::Cancelled`]. With `cfg.refit` and a validation set, the returned model is the refit
/// (see [`train_with_views`]); the validation photos take part with their evaluation view only.
pub async fn train(
    labels: &[String],
    train_set: &[TrainExample<'_>],
    val_set: &[ValExample<'_>],
    cfg: &TrainConfig,
    stage: LastStage,
    device: &Device,
    progress: &mut impl AsyncFnMut(&Progress) -> bool,
) -> Result<(FineTuned, Report)> {
    let sets = Sets::new(labels, train_set, val_set);
    train_with_views(sets, cfg, stage, device, progress).await
}

/// [`train`], with every view's stage input of each validation photo for the refit
/// (`sets.val_views`).
///
/// The held-out run chooses: the head-only warm start's best epoch E and the fine-tuning phase's
/// best epoch F (0: the warm start was kept). With `cfg.refit` and a validation set, the model
/// is then trained again on training + validation photos the same way, without validation: a
/// head from zeros for E epochs on the pretrained stage's embeddings, then (F > 0) stage and head
/// together from there for F epochs. The report holds the held-out run's metrics.
pub async fn train_with_views(
    sets: Sets<'_>,
    cfg: &TrainConfig,
    stage: LastStage,
    device: &Device,
    progress: &mut impl AsyncFnMut(&Progress) -> bool,
) -> Result<(FineTuned, Report)> {
    let (labels, train_set, val_set) = (sets.labels, sets.train, sets.val);
    let started = Instant::now();
    let plan = Plan::new(labels, train_set, cfg)?;
    let shape = input_shape(&stage, train_set[0].views[0].len())?;
    let batch = cfg.batch_size;
    let refit = cfg.refit && !val_set.is_empty();
    let mut storage = Vec::new();
    let all = if refit {
        refit_set(train_set, val_set, sets.val_views, &mut storage)?
    } else {
        Vec::new()
    };
    let n_train = train_set.len();

    // Phase 1 inputs: the training views, the validation photos' evaluation views, and for the
    // refit their other views.
    let train_rows = train_set
        .iter()
        .flat_map(|e| e.views.iter().map(Vec::as_slice));
    let val_rows: Vec<&[f32]> = val_set.iter().map(|v| v.embedding).collect();
    let extra_rows = all
        .iter()
        .skip(n_train)
        .flat_map(|e| e.views.iter().skip(1).map(Vec::as_slice));
    let rows: Vec<&[f32]> = train_rows
        .chain(val_rows.iter().copied())
        .chain(extra_rows)
        .collect();
    let embedded = stage_embeddings(&rows, &stage, shape, device, batch, progress).await?;
    let n_train_rows: usize = train_set.iter().map(|e| e.views.len()).sum();
    let (train_emb, rest) = embedded.split_at(n_train_rows);
    let (val_emb, extra_emb) = rest.split_at(val_set.len());
    let train_views = regroup(train_emb, train_set.iter().map(|e| e.views.len()));
    let head_train = example_sets(&train_views, train_set);
    let head_val: Vec<ValExample> = val_set
        .iter()
        .zip(val_emb)
        .map(|(v, e)| ValExample {
            embedding: e,
            label: v.label,
            id: v.id,
        })
        .collect();
    let head_only = TrainConfig {
        finetune_last: false,
        refit: false,
        ..cfg.clone()
    };
    let (head0, warm) =
        trainer::train(labels, &head_train, &head_val, &head_only, device, progress).await?;

    // Phase 2: stage + head with L2-SP.
    let theta0: Vec<Tensor<1>> = stage.flat_params();
    let start_score = warm
        .val_loss
        .unwrap_or(warm.history[warm.best_epoch - 1].loss);
    let mut run = Run::new(cfg.patience);
    run.offer(start_score, 0, || FineTuned {
        stage: stage.clone(),
        head: head0.clone(),
    });
    let mut model = (stage.clone().train(), head0.train());
    let mut tuning = Tuning::new(plan, shape, &theta0, cfg, device);
    let val_truth: Vec<usize> = val_set.iter().map(|v| v.label).collect();
    for epoch in 1..=cfg.finetune_epochs {
        let (stage_t, head_t, loss) = tuning.epoch(train_set, model, epoch).await?;
        let current = FineTuned {
            stage: stage_t.valid(),
            head: head_t.valid(),
        };
        model = (stage_t, head_t);
        let probs = current
            .probabilities(&val_rows, shape, device, batch)
            .await?;
        let stats = epoch_stats(epoch, loss, &probs, &val_truth, tuning.plan.classes);
        if run
            .end_epoch(
                stats,
                "finetune",
                cfg.finetune_epochs,
                progress,
                move || current,
            )
            .await?
        {
            break;
        }
    }

    let (best_ft_epoch, best) = run.best();
    let distance = norm(&best.stage, &theta0).await?;
    let last_distance = norm(&model.0.valid(), &theta0).await?;
    let val_logits = in_batches(&val_rows, shape, batch, device, |x| {
        best.head.forward(best.stage.features(x))
    })
    .await?;
    let probs = crate::evaluation::calibration::softmax(&val_logits, 1.0);
    let warm_epochs = warm.history.len();
    let ft_epochs = run.history.len();
    let mut history = warm.history;
    history.extend(run.history.into_iter().map(|mut s| {
        s.epoch += warm_epochs;
        s
    }));
    let best_epoch = match best_ft_epoch {
        0 => warm.best_epoch,
        k => warm_epochs + k,
    };
    let mut report = build_report(
        labels,
        history,
        best_epoch,
        n_train,
        val_set,
        tuning.plan.balance,
        &probs,
    );
    let mut stats = FineTuneStats {
        l2sp: cfg.l2sp,
        epochs_run: ft_epochs,
        best_epoch: best_ft_epoch,
        distance,
        last_distance,
        head_only_val_accuracy: warm.val_accuracy,
        head_only_val_loss: warm.val_loss,
        refit_epochs: None,
        refit_distance: None,
    };
    let mut kept = best;
    if refit {
        // The head-only refit on all photos' pretrained-stage embeddings...
        let mut extra = extra_emb;
        let mut all_views = train_views.clone();
        for (e, v) in all[n_train..].iter().zip(val_emb) {
            let (mine, tail) = extra.split_at(e.views.len() - 1);
            extra = tail;
            all_views.push(std::iter::once(v.clone()).chain(mine.to_vec()).collect());
        }
        let head_all = example_sets(&all_views, &all);
        let (head, balance, _) = trainer::refit_head(
            labels,
            &head_all,
            &head_only,
            warm.best_epoch,
            device,
            progress,
        )
        .await?;
        // ...then stage and head together for the held-out run's fine-tuning epochs.
        let mut model = (stage.train(), head.train());
        if best_ft_epoch > 0 {
            let mut tuning =
                Tuning::new(Plan::new(labels, &all, cfg)?, shape, &theta0, cfg, device);
            for epoch in 1..=best_ft_epoch {
                let (stage_t, head_t, loss) = tuning.epoch(&all, model, epoch).await?;
                model = (stage_t, head_t);
                let p = Progress {
                    phase: "refit-finetune".into(),
                    epoch,
                    epochs: best_ft_epoch,
                    loss,
                    val_loss: None,
                    val_accuracy: None,
                };
                if !progress(&p).await {
                    return Err(Error::Cancelled);
                }
            }
        }
        kept = FineTuned {
            stage: model.0.valid(),
            head: model.1.valid(),
        };
        stats.refit_epochs = Some(best_ft_epoch);
        stats.refit_distance = Some(norm(&kept.stage, &theta0).await?);
        report.refit = true;
        report.refit_epochs = Some(warm.best_epoch);
        report.refit_size = Some(all.len());
        report.refit_balance = Some(balance);
    }
    report.calibration = crate::evaluation::calibration::calibrate(&val_logits, &val_truth);
    report.finetune = Some(stats);
    report.seconds = started.elapsed().as_secs_f64();
    Ok((kept, report))
}
