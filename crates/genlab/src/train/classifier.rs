//! Training the feature classifier of the Fréchet distance (`genlab train classifier`):
//! cross-entropy on the labelled training split with random-shift augmentation, Adam, test
//! accuracy every epoch. Same run folder, resume, Ctrl-C and NaN guard as the other families.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::nn::fused::FusedAdam;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{
    Event, Observer, Outcome, append_record, begin, end_epoch, read_records, splits,
    stop_mid_epoch, trim_records,
};
use crate::checkpoint::RunDir;
use crate::config::RunConfig;
use crate::data::{Batches, Dataset, ImageSet, shuffled_order};
use crate::error::{Error, Result};
use crate::image_io::{batch_tensor, shifted_batch_tensor};
use crate::models::classifier::{Classifier, cross_entropy};
use crate::nn::with_stable_ids;
use crate::plot::{Series, line_plot};
use crate::rng::{rng_for, stream};

/// One line of a classifier run's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierEpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps so far.
    pub step: usize,
    /// Mean training cross-entropy (nats), on augmented images.
    pub train_loss: f64,
    /// Training accuracy on augmented images.
    pub train_accuracy: f64,
    /// Test cross-entropy (nats).
    pub test_loss: f64,
    /// Test accuracy (no augmentation).
    pub test_accuracy: f64,
    /// Training images per second over the epoch.
    pub images_per_sec: f64,
    /// Training wall time so far, seconds.
    pub elapsed_secs: f64,
}

/// The labels of `set` at `indices` as an int tensor, or an error naming the dataset.
pub fn labels_tensor(set: &ImageSet, indices: &[usize], device: &Device) -> Result<Tensor<1, Int>> {
    let labels = set.labels.as_ref().ok_or_else(|| {
        Error::Unsupported(
            "this dataset has no class labels (an image folder?); the classifier needs a labelled dataset such as mnist or fashion-mnist".into(),
        )
    })?;
    let v: Vec<i64> = indices.iter().map(|&i| i64::from(labels[i])).collect();
    Ok(Tensor::from_data(
        TensorData::new(v, [indices.len()]),
        device,
    ))
}

/// Number of rows whose arg-max logit is the label.
fn correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> f64 {
    let pred = logits.argmax(1).squeeze_dim::<1>(1); // [b]
    f64::from(pred.equal(labels).int().sum().into_scalar::<i64>() as f32)
}

/// Test cross-entropy and accuracy of `model` on `set` (batches of `batch`).
pub fn accuracy(
    model: &Classifier,
    set: &ImageSet,
    batch: usize,
    device: &Device,
) -> Result<(f64, f64)> {
    let (mut loss, mut right) = (0.0, 0.0);
    let all: Vec<usize> = (0..set.len()).collect();
    for idx in all.chunks(batch.max(1)) {
        let x = batch_tensor(set, idx, device);
        let y = labels_tensor(set, idx, device)?;
        let logits = model.forward(x);
        loss += f64::from(
            cross_entropy(logits.clone(), y.clone())
                .sum()
                .into_scalar::<f32>(),
        );
        right += correct(logits, y);
    }
    let n = set.len().max(1) as f64;
    Ok((loss / n, right / n))
}

/// Trains (or resumes) a classifier run.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_classifier(
    model: Classifier,
    run: &RunDir,
    cfg: &RunConfig,
    resume: bool,
    data: &Dataset,
    device: &Device,
    stop: &AtomicBool,
    obs: &mut dyn Observer,
) -> Result<Outcome> {
    let t = &cfg.train;
    let ad = device.clone().autodiff();
    let (train_set, test_set) = splits(data, t);
    // Fail before creating anything if the data has no labels.
    labels_tensor(&train_set, &[], device)?;
    labels_tensor(&test_set, &[], device)?;
    let mut model = with_stable_ids(model);
    let mut optim = FusedAdam::new(t.betas[0] as f32, t.betas[1] as f32, t.eps as f32).init();
    let shift = model.config.shift as i64;

    // (0) start fresh or pick up the saved state.
    let mut state;
    (model, optim, state) = begin(run, cfg, resume, model, optim, |run, done| {
        trim_records::<ClassifierEpochRecord>(run, done, |r| r.epoch)
    })?;

    let batches = Batches::count(train_set.len(), t.batch_size);
    obs.on_event(Event::Start {
        epoch: state.epochs_done + 1,
        epochs: t.epochs,
        batches,
        skip: state.batches_done,
        params: model.num_params(),
    });

    for epoch in state.epochs_done..t.epochs {
        let order = shuffled_order(train_set.len(), t.seed, epoch);
        let started = Instant::now();
        let mut seen_this_call = 0usize;
        for idx in Batches::new(&order, t.batch_size, state.batches_done) {
            // (1) forward on a randomly shifted batch.
            let mut rng = rng_for(t.seed, stream::TRAIN_NOISE, state.step as u64);
            let shifts: Vec<(isize, isize)> = idx
                .iter()
                .map(|_| {
                    let mut draw = || rng.random_range(-shift..=shift) as isize;
                    (draw(), draw())
                })
                .collect();
            let x = shifted_batch_tensor(&train_set, idx, &shifts, &ad); // [b, c, h, w]
            let y = labels_tensor(&train_set, idx, &ad)?; // [b]
            let logits = model.forward(x); // [b, classes]
            let loss_t = cross_entropy(logits.clone(), y.clone()).mean();
            let loss = f64::from(loss_t.clone().into_scalar::<f32>());

            // (2) guard, then backward and Adam step.
            if !loss.is_finite() {
                return Err(Error::NonFiniteLoss {
                    value: if loss.is_nan() { "NaN" } else { "inf" }.into(),
                    epoch: epoch + 1,
                    step: state.step,
                });
            }
            let grads = GradientsParams::from_grads(loss_t.backward(), &model);
            model = optim.step(t.lr, model, grads);

            // (3) bookkeeping.
            let b = idx.len();
            state.step += 1;
            state.batches_done += 1;
            state.partial.images += b;
            state.partial.loss += loss * b as f64;
            state.partial.correct += correct(logits, y);
            seen_this_call += b;
            let secs = started.elapsed().as_secs_f64();
            obs.on_event(Event::Batch {
                epoch: epoch + 1,
                batch: state.batches_done,
                batches,
                loss,
                images_per_sec: seen_this_call as f64 / secs.max(1e-9),
            });

            // (4) stop on request.
            if let Some(out) = stop_mid_epoch(run, &model, &optim, &mut state, epoch, secs, stop)? {
                return Ok(out);
            }
        }
        let train_secs = started.elapsed().as_secs_f64();
        state.elapsed_secs += train_secs;

        // (5) end of epoch: test accuracy, log, plot, checkpoint.
        let (test_loss, test_accuracy) = accuracy(&model.valid(), &test_set, 500, device)?;
        let n = state.partial.images.max(1) as f64;
        let record = ClassifierEpochRecord {
            epoch: epoch + 1,
            step: state.step,
            train_loss: state.partial.loss / n,
            train_accuracy: state.partial.correct / n,
            test_loss,
            test_accuracy,
            images_per_sec: seen_this_call as f64 / train_secs.max(1e-9),
            elapsed_secs: state.elapsed_secs,
        };
        append_record(run, &record)?;
        plot_classifier(run)?;
        let end = end_epoch(
            run,
            &model,
            &optim,
            &mut state,
            epoch,
            t.epochs,
            stop,
            || obs.on_event(Event::ClassifierEpoch(&record)),
        )?;
        if let Some(out) = end {
            return Ok(out);
        }
    }
    Ok(Outcome::Finished(None))
}

/// Reads a classifier run's `metrics.jsonl`.
pub fn read_classifier_metrics(run: &RunDir) -> Result<Vec<ClassifierEpochRecord>> {
    read_records(run)
}

fn plot_classifier(run: &RunDir) -> Result<()> {
    let recs = read_classifier_metrics(run)?;
    let pts = |f: &dyn Fn(&ClassifierEpochRecord) -> f64| -> Vec<(f64, f64)> {
        recs.iter().map(|r| (r.epoch as f64, f(r))).collect()
    };
    line_plot(
        &run.loss_plot(),
        "classifier cross-entropy per epoch",
        "nats per image",
        &[
            Series {
                label: "train",
                points: pts(&|r| r.train_loss),
            },
            Series {
                label: "test",
                points: pts(&|r| r.test_loss),
            },
        ],
    )
}
