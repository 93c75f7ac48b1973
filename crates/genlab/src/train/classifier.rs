//! The feature classifier of the Fréchet distance (`genlab train classifier`): cross-entropy on
//! the labelled training split with random-shift augmentation, Adam, test accuracy every epoch.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::family::{At, EpochEnd, Family, Record, Series, Step, finite, scalar};
use super::source::{Batch, BatchSource};
use crate::config::{RunConfig, TrainConfig};
use crate::data::ImageSet;
use crate::data::{labels_tensor, shifted_batch_tensor};
use crate::error::{Error, Result};
use crate::metrics::{accuracy, correct};
use crate::models::ModelConfig;
use crate::models::classifier::{Classifier, cross_entropy};
use crate::optim::adam;
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

impl Record for ClassifierEpochRecord {
    const PLOT_TITLE: &'static str = "classifier cross-entropy per epoch";
    const PLOT_UNITS: &'static str = "nats per image";
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn line(&self) -> String {
        format!(
            "epoch {:>3}  train loss {:.4} acc {:.4}  test loss {:.4} acc {:.4}  {:.0} img/s",
            self.epoch,
            self.train_loss,
            self.train_accuracy,
            self.test_loss,
            self.test_accuracy,
            self.images_per_sec
        )
    }
    fn series() -> Vec<Series<Self>> {
        vec![("train", |r| r.train_loss), ("test", |r| r.test_loss)]
    }
}

/// The supervised family: a [`Classifier`] on a labelled dataset.
pub struct Supervised {
    t: TrainConfig,
    train: ImageSet,
    test: ImageSet,
    device: Device,
}

impl Supervised {
    /// The family for `cfg`; an error, before anything is written, if either split has no
    /// labels.
    pub fn new(cfg: &RunConfig, train: ImageSet, test: ImageSet, device: &Device) -> Result<Self> {
        labels_tensor(&train, &[], device)?;
        labels_tensor(&test, &[], device)?;
        let ModelConfig::Classifier(m) = &cfg.model else {
            return Err(Error::Unsupported(format!(
                "a {} model is not a classifier",
                cfg.model.kind()
            )));
        };
        for (split, set) in [("training", &train), ("test", &test)] {
            if let Some(l) = set
                .labels
                .as_ref()
                .and_then(|l| l.iter().find(|&&l| usize::from(l) >= m.classes))
            {
                return Err(Error::config(
                    "model.classes",
                    m.classes,
                    format!("more than every label, but the {split} split has label {l}"),
                ));
            }
        }
        Ok(Self {
            t: cfg.train.clone(),
            train,
            test,
            device: device.clone(),
        })
    }
}

impl Family for Supervised {
    type Model = Classifier;
    type Record = ClassifierEpochRecord;

    fn kind(&self) -> &'static str {
        "classifier"
    }

    fn optimizer(&self, _: &Classifier) -> ModuleOptimizer {
        adam(self.t.betas, self.t.eps)
    }

    fn source(&self) -> BatchSource<'_> {
        BatchSource::Shuffled {
            set: &self.train,
            batch_size: self.t.batch_size,
            seed: self.t.seed,
        }
    }

    fn step(
        &self,
        model: Classifier,
        optim: &mut ModuleOptimizer,
        batch: Batch<'_>,
        at: At,
    ) -> Result<(Classifier, Step)> {
        let (set, idx) = batch.images();
        let shift = model.config.shift as i64;
        // Each image moved by up to `shift` pixels each way, drawn from (seed, step).
        let mut rng = rng_for(self.t.seed, stream::TRAIN_NOISE, at.step as u64);
        let shifts: Vec<(isize, isize)> = idx
            .iter()
            .map(|_| {
                let mut draw = || rng.random_range(-shift..=shift) as isize;
                (draw(), draw())
            })
            .collect();
        let x = shifted_batch_tensor(set, idx, &shifts, &self.device); // [b, c, h, w]
        let y = labels_tensor(set, idx, &self.device)?; // [b]
        let logits = model.forward(x); // [b, classes]
        let loss_t = cross_entropy(logits.clone(), y.clone()).mean();
        let loss = finite(scalar(loss_t.clone()), "", at)?;
        let grads = GradientsParams::from_grads(loss_t.backward(), &model);
        let model = optim.step(self.t.lr, model, grads);
        let b = idx.len();
        let sums = vec![("loss", loss * b as f64), ("correct", correct(logits, y))];
        Ok((
            model,
            Step {
                loss,
                images: b,
                sums,
            },
        ))
    }

    fn summarize(&self, model: &Classifier, end: &EpochEnd<'_>) -> Result<ClassifierEpochRecord> {
        let (test_loss, test_accuracy) = accuracy(model, &self.test, 500, end.device)?;
        Ok(ClassifierEpochRecord {
            epoch: end.epoch,
            step: end.step,
            train_loss: end.sums.mean("loss"),
            train_accuracy: end.sums.mean("correct"),
            test_loss,
            test_accuracy,
            images_per_sec: end.images_per_sec,
            elapsed_secs: end.elapsed_secs,
        })
    }
}
