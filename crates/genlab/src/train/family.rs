//! What a model family supplies to the one training loop (`fit`): its optimizer, its
//! step on one batch, and its end-of-epoch summary. Everything else (run folder, resume, batches,
//! stop flag, records, plot, checkpoints, the final status) is the loop's.

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::source::{Batch, BatchSource};
use crate::checkpoint::{EpochSums, RunDir};
use crate::error::{Error, Result};

/// Where a step stands: what an error names, and what draws its noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// 0-based epoch.
    pub epoch: usize,
    /// Optimizer steps taken before this one.
    pub step: usize,
}

/// What one training step measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The batch's objective, shown on the progress bar.
    pub loss: f64,
    /// Images (or patches) in the batch.
    pub images: usize,
    /// Named sums over the batch, added to the epoch's running [`EpochSums`].
    pub sums: Vec<(&'static str, f64)>,
}

/// What the loop knows at the end of an epoch, handed to [`Family::summarize`].
#[derive(Debug, Clone, Copy)]
pub struct EpochEnd<'a> {
    /// The run folder (for the epoch's image grids).
    pub run: &'a RunDir,
    /// 1-based epoch that just ended.
    pub epoch: usize,
    /// Optimizer steps so far.
    pub step: usize,
    /// The epoch's running sums.
    pub sums: &'a EpochSums,
    /// Training images (or patches) per second over the epoch, evaluation excluded.
    pub images_per_sec: f64,
    /// Training wall time so far, seconds.
    pub elapsed_secs: f64,
    /// The (non-autodiff) device to evaluate on.
    pub device: &'a Device,
}

/// A model family as the training loop sees it. One implementation per family, in its own file
/// under `train/`; `train::train` picks it from the run's config.
pub trait Family {
    /// Everything the family trains, on the autodiff device (a GAN's G and D together).
    type Model: Module;
    /// One line of the run's `metrics.jsonl`.
    type Record: Record;

    /// The `kind` written to `state.json` and checked on resume.
    fn kind(&self) -> &'static str;
    /// Sub-folders of the run folder the family writes image grids into.
    fn folders(&self) -> &'static [&'static str] {
        &["samples", "reconstructions"]
    }
    /// The optimizer: one [`ModuleOptimizer`], with a parameter group per network where the
    /// family has several, so the checkpoint keeps all their moments in one file.
    fn optimizer(&self, model: &Self::Model) -> ModuleOptimizer;
    /// Where the training batches come from.
    fn source(&self) -> BatchSource<'_>;
    /// One training step: forward, the [`finite`] guard before every update, backward, update.
    /// On an error nothing of this step is kept (the model is consumed).
    fn step(
        &self,
        model: Self::Model,
        optim: &mut ModuleOptimizer,
        batch: Batch<'_>,
        at: At,
    ) -> Result<(Self::Model, Step)>;
    /// The epoch's record: averages from `end.sums`, evaluation of `model` (in eval mode) and
    /// the epoch's image grids.
    fn summarize(&self, model: &Self::Model, end: &EpochEnd<'_>) -> Result<Self::Record>;
}

/// A function generic over the family (closures cannot be generic): what the registry
/// (`train::with_family`, `train::sr::with_sr_family`) calls with the family a config names.
pub trait FamilyFn<T> {
    /// Runs with the family and its freshly initialised model.
    fn call<F: Family>(self, family: F, model: F::Model) -> Result<T>;
}

/// One curve of `loss.png`: its label and the value a record plots.
pub type Series<R> = (&'static str, fn(&R) -> f64);

/// A line of `metrics.jsonl`, as the loop and its observers use it.
pub trait Record: Serialize + DeserializeOwned {
    /// `loss.png`'s title.
    const PLOT_TITLE: &'static str;
    /// `loss.png`'s y axis.
    const PLOT_UNITS: &'static str;
    /// 1-based epoch.
    fn epoch(&self) -> usize;
    /// The line a progress display prints for this epoch.
    fn line(&self) -> String;
    /// The curves of `loss.png`: a label and the value each record plots (non-finite values
    /// are left out).
    fn series() -> Vec<Series<Self>>;
}

/// The NaN guard, the same for every family: `Ok(value)` when it is finite, else the error that
/// stops the run (`what` names the loss when a step has several). Called before every
/// optimizer update, so a run never steps on a NaN or infinite loss.
pub fn finite(value: f64, what: &str, at: At) -> Result<f64> {
    if value.is_finite() {
        return Ok(value);
    }
    let v = if value.is_nan() { "NaN" } else { "inf" };
    Err(Error::NonFiniteLoss {
        value: if what.is_empty() {
            v.into()
        } else {
            format!("{v} ({what})")
        },
        epoch: at.epoch + 1,
        step: at.step,
    })
}

/// A scalar tensor read back as `f64`.
pub(crate) fn scalar(t: Tensor<1>) -> f64 {
    f64::from(t.into_scalar::<f32>())
}
