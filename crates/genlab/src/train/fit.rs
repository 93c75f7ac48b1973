//! The one training loop, [`fit`], and what it tells its observer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;

use super::family::{At, EpochEnd, Family, FamilyFn, Record};
use super::records;
use crate::checkpoint::{EpochSums, RunDir, Status, TrainState};
use crate::error::{Error, Result};
use crate::fsutil::FolderLock;
use crate::nn::with_stable_ids;

/// What the loop tells its observer.
#[derive(Debug)]
pub enum Event<'a> {
    /// Training is about to start or resume.
    Start {
        /// Epoch (1-based) training starts in.
        epoch: usize,
        /// Total epochs.
        epochs: usize,
        /// Batches per epoch.
        batches: usize,
        /// Batches of that epoch already done (resume).
        skip: usize,
        /// Parameters in the model.
        params: usize,
    },
    /// One optimizer step finished.
    Batch {
        /// 1-based epoch.
        epoch: usize,
        /// Batches done in this epoch.
        batch: usize,
        /// Batches per epoch.
        batches: usize,
        /// This batch's objective.
        loss: f64,
        /// Training images per second over this epoch so far.
        images_per_sec: f64,
    },
    /// An epoch ended and was evaluated, logged and checkpointed.
    Epoch {
        /// 1-based epoch.
        epoch: usize,
        /// The family's one-line summary of it.
        line: &'a str,
        /// The `metrics.jsonl` record, as JSON.
        record: &'a serde_json::Value,
    },
}

/// Receives progress [`Event`]s.
pub trait Observer {
    /// Called for every event; must be cheap.
    fn on_event(&mut self, event: Event<'_>);
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {
    fn on_event(&mut self, _: Event<'_>) {}
}

/// How a training call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs done; `metrics.jsonl` holds one record per epoch.
    Finished {
        /// Epochs trained in all.
        epochs: usize,
        /// Optimizer steps taken in all.
        step: usize,
    },
    /// Stopped on request after `step` steps; `genlab train --resume` continues it.
    Interrupted {
        /// 1-based epoch the run was in.
        epoch: usize,
        /// Optimizer steps taken.
        step: usize,
    },
}

/// Everything [`fit`] needs besides the family: where, how long, and whom to tell.
pub(crate) struct Plan<'a> {
    pub run: &'a RunDir,
    /// The run's `config.toml`, written when the run is created.
    pub config_toml: String,
    pub epochs: usize,
    pub resume: bool,
    pub device: &'a Device,
    pub stop: &'a AtomicBool,
    pub obs: &'a mut dyn Observer,
}

impl FamilyFn<Outcome> for Plan<'_> {
    fn call<F: Family>(self, family: F, model: F::Model) -> Result<Outcome> {
        fit(&family, model, self)
    }
}

/// The one training loop: stages (0)-(4) of the module documentation.
pub(crate) fn fit<F: Family>(fam: &F, model: F::Model, p: Plan<'_>) -> Result<Outcome> {
    let Plan {
        run,
        epochs,
        device,
        stop,
        obs,
        ..
    } = p;
    let ad = device.clone().autodiff();
    let model = with_stable_ids(model);
    let optim = fam.optimizer(&model);
    let source = fam.source();
    let batches = source.batches_per_epoch();
    if batches == 0 {
        return Err(Error::config(
            "training images",
            0,
            "at least one (the dataset's training split is empty)",
        ));
    }

    // (0) start fresh or pick up the saved state; the run folder stays locked until we return.
    let (_lock, mut model, mut optim, mut state) = begin(
        fam,
        run,
        &p.config_toml,
        p.resume,
        epochs,
        batches,
        model,
        optim,
    )?;

    obs.on_event(Event::Start {
        epoch: state.epochs_done + 1,
        epochs,
        batches,
        skip: state.batches_done,
        params: model.num_params(),
    });

    // Whatever ends the loop early (a NaN loss, a full disk), state.json says `failed`.
    let result = (|| {
        for epoch in state.epochs_done..epochs {
            let started = Instant::now();
            let mut seen_this_call = 0usize;
            for batch in source.epoch(epoch, state.batches_done, state.step, &ad) {
                // (1) the family's step: forward, NaN guard, backward, update.
                let at = At {
                    epoch,
                    step: state.step,
                };
                let s;
                (model, s) = fam.step(model, &mut optim, batch, at)?;

                // (2) bookkeeping.
                state.step += 1;
                state.batches_done += 1;
                state.partial.images += s.images;
                for (name, v) in &s.sums {
                    state.partial.add(name, *v);
                }
                seen_this_call += s.images;
                let secs = started.elapsed().as_secs_f64();
                obs.on_event(Event::Batch {
                    epoch: epoch + 1,
                    batch: state.batches_done,
                    batches,
                    loss: s.loss,
                    images_per_sec: seen_this_call as f64 / secs.max(1e-9),
                });

                // (3) stop on request: checkpoint mid-epoch and return. On the epoch's last
                // batch the epoch is finished first (summary, record, checkpoint at (4)), so
                // the checkpoint never says "all batches done" of an unlogged epoch.
                if stop.load(Ordering::SeqCst) && state.batches_done < batches {
                    state.elapsed_secs += secs;
                    return interrupt(run, &model, &optim, &mut state, epoch);
                }
            }
            let train_secs = started.elapsed().as_secs_f64();
            state.elapsed_secs += train_secs;

            // (4) end of epoch: evaluate and draw (the family), log, plot, checkpoint.
            let record = fam.summarize(
                &model.valid(),
                &EpochEnd {
                    run,
                    epoch: epoch + 1,
                    step: state.step,
                    sums: &state.partial,
                    images_per_sec: seen_this_call as f64 / train_secs.max(1e-9),
                    elapsed_secs: state.elapsed_secs,
                    device,
                },
            )?;
            records::append_record(run, &record)?;
            crate::fsutil::pause_point("epoch-logged");
            records::plot_records::<F::Record>(run)?;
            state.epochs_done = epoch + 1;
            state.batches_done = 0;
            state.partial = EpochSums::default();
            let last = epoch + 1 == epochs;
            state.status = if last {
                Status::Finished
            } else {
                Status::Running
            };
            run.save_checkpoint(&model, &optim, &mut state)?;
            let json = serde_json::to_value(&record).expect("records serialise");
            obs.on_event(Event::Epoch {
                epoch: epoch + 1,
                line: &record.line(),
                record: &json,
            });
            // A stop request that arrived during the epoch's summary ends the run here.
            if stop.load(Ordering::SeqCst) && !last {
                return interrupt(run, &model, &optim, &mut state, epoch);
            }
        }
        Ok(Outcome::Finished {
            epochs: state.epochs_done,
            step: state.step,
        })
    })();
    if result.is_err() {
        mark_failed(run);
    }
    result
}

/// What [`begin`] hands the loop: the run folder's lock, the model, its optimizer, the state.
type Begun<M> = (FolderLock, M, ModuleOptimizer, TrainState);

/// Stage (0): creates the run folder (new or empty, locked) with its config and a checkpoint of
/// the initial weights (so a run that fails in its first epoch still leaves a consistent,
/// resumable folder); or locks an existing run, checks that its state, log and the plan agree,
/// and loads its resume pair.
#[allow(clippy::too_many_arguments)]
fn begin<F: Family>(
    fam: &F,
    run: &RunDir,
    config_toml: &str,
    resume: bool,
    epochs: usize,
    batches: usize,
    model: F::Model,
    optim: ModuleOptimizer,
) -> Result<Begun<F::Model>> {
    if !resume {
        let lock = run.create_new(fam.folders())?;
        crate::fsutil::write_atomic(&run.config(), config_toml.as_bytes())?;
        let mut s = TrainState::new(fam.kind());
        run.save_checkpoint(&model, &optim, &mut s)?;
        return Ok((lock, model, optim, s));
    }
    let (lock, state) = run.open_for_resume(fam.folders())?;
    let bad = |msg: String| Err(Error::checkpoint(run.state(), msg));
    if state.kind != fam.kind() {
        return bad(format!(
            "state is for a {} model, config.toml for a {}",
            state.kind,
            fam.kind()
        ));
    }
    // Read-only checks first: nothing is written unless the run can continue.
    let metrics = records::check_records::<F::Record>(run, state.epochs_done)?;
    if epochs < state.epochs_done {
        return Err(Error::config(
            "train.epochs (--epochs)",
            epochs,
            format!(
                "at least {} (the run has {} epochs done; genlab never shortens a run)",
                state.epochs_done, state.epochs_done
            ),
        ));
    }
    if epochs == state.epochs_done {
        return Err(Error::config(
            "train.epochs (--epochs)",
            epochs,
            format!(
                "more than {} to continue: all {epochs} epochs of this run are done (nothing to resume)",
                state.epochs_done
            ),
        ));
    }
    // `batches_done == batches`: an epoch whose batches were all done but whose summary was
    // not (genlab before 2026-12-02 checkpointed a stop on an epoch's last batch that way);
    // the loop then runs no batch and goes straight to the summary.
    if state.batches_done > batches
        || state.step != state.epochs_done * batches + state.batches_done
    {
        return bad(format!(
            "says step {} after {} epoch(s) and {} batch(es), which does not fit {batches} batches per epoch (was the dataset or the batch size changed?)",
            state.step, state.epochs_done, state.batches_done
        ));
    }
    let (model, optim) = run.load_resume(model, optim, &state)?;
    run.remove_stale_pairs(&state);
    if let Some(text) = metrics {
        records::write_records(run, &text)?;
    }
    // `--epochs` extends the run: the config says so from now on.
    let on_disk = std::fs::read_to_string(run.config()).unwrap_or_default();
    if on_disk != config_toml {
        crate::fsutil::write_atomic(&run.config(), config_toml.as_bytes())?;
    }
    Ok((lock, model, optim, state))
}

/// A stop request: the run is checkpointed as `interrupted` where it stands.
fn interrupt<M: Module>(
    run: &RunDir,
    model: &M,
    optim: &ModuleOptimizer,
    state: &mut TrainState,
    epoch: usize,
) -> Result<Outcome> {
    state.status = Status::Interrupted;
    run.save_checkpoint(model, optim, state)?;
    Ok(Outcome::Interrupted {
        epoch: epoch + 1,
        step: state.step,
    })
}

/// After a failed step: the last checkpoint stays as it was, and its `state.json` says `failed`.
/// Best effort: the step's own error is what the caller reports.
fn mark_failed(run: &RunDir) {
    if let Ok(mut s) = run.load_state() {
        s.status = Status::Failed;
        let _ = run.save_state(&s);
    }
}
