//! The training loop: one flat function, in labelled stages, shared by every reconstruction-based
//! family (autoencoder, VAE). It reports progress through an [`Observer`] (the CLI draws a
//! progress bar from it; the library never prints), checkpoints every epoch, stops cleanly when
//! asked (Ctrl-C), and refuses to continue past a NaN/inf loss.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::nn::fused::FusedAdam;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{EpochSums, RunDir, TrainState};
use crate::config::RunConfig;
use crate::data::{Batches, Dataset, ImageSet, shuffled_order};
use crate::error::{Error, Result};
use crate::image_io::{batch_tensor, save_grid};
use crate::metrics::{EvalReport, evaluate};
use crate::models::{ImageModel, ModelConfig};
use crate::nn::with_stable_ids;
use crate::plot::{Series, line_plot};
use crate::rng::{rng_for, standard_normal, stream};

pub mod classifier;
pub mod gan;
pub mod sr;

/// One line of `metrics.jsonl`: an epoch's training averages and test evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps so far.
    pub step: usize,
    /// Mean training objective over the epoch (nats per image).
    pub train_loss: f64,
    /// Mean training reconstruction term.
    pub train_recon: f64,
    /// Mean training KL term (0 for autoencoders).
    pub train_kl: f64,
    /// Evaluation on the test split.
    pub test: EvalReport,
    /// Training throughput over the epoch, images per second (excluding evaluation).
    pub images_per_sec: f64,
    /// Training wall time so far, seconds.
    pub elapsed_secs: f64,
}

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
        /// This batch's objective (nats per image).
        loss: f64,
        /// Training images per second over this epoch so far.
        images_per_sec: f64,
    },
    /// An epoch ended and was evaluated and checkpointed.
    Epoch(&'a EpochRecord),
    /// A super-resolution epoch ended and was validated and checkpointed.
    SrEpoch(&'a sr::SrEpochRecord),
    /// A GAN epoch ended and was checkpointed.
    GanEpoch(&'a gan::GanEpochRecord),
    /// A classifier epoch ended and was tested and checkpointed.
    ClassifierEpoch(&'a classifier::ClassifierEpochRecord),
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
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All epochs done; holds the last epoch's record (reconstruction families; `None` for
    /// GANs, whose records are in `metrics.jsonl`).
    Finished(Option<EpochRecord>),
    /// Stopped on request after `step` steps; `genlab train --resume` continues it.
    Interrupted {
        /// 1-based epoch the run was in.
        epoch: usize,
        /// Optimizer steps taken.
        step: usize,
    },
}

/// Trains a new run in `run` (which must not hold one yet), or resumes the one there.
pub fn train(
    run: &RunDir,
    cfg: &RunConfig,
    resume: bool,
    data: &Dataset,
    device: &Device,
    stop: &AtomicBool,
    obs: &mut dyn Observer,
) -> Result<Outcome> {
    cfg.validate()?;
    if cfg.model.image() != data.shape() {
        return Err(Error::config(
            "model.image",
            format!("{:?}", cfg.model.image()),
            format!("the dataset's image shape {:?}", data.shape()),
        ));
    }
    // Weight init draws from the device RNG: seed it so a run is reproducible.
    device.seed(cfg.train.seed);
    let ad = device.clone().autodiff();
    match &cfg.model {
        ModelConfig::Ae(m) => fit(m.init(&ad), run, cfg, resume, data, device, stop, obs),
        ModelConfig::Vae(m) => fit(m.init(&ad), run, cfg, resume, data, device, stop, obs),
        ModelConfig::Dcgan(m) => {
            gan::fit_gan(m.init(&ad), run, cfg, resume, data, device, stop, obs)
        }
        ModelConfig::VaeGan(m) => {
            gan::fit_gan(m.init(&ad), run, cfg, resume, data, device, stop, obs)
        }
        ModelConfig::Classifier(m) => {
            classifier::fit_classifier(m.init(&ad), run, cfg, resume, data, device, stop, obs)
        }
    }
}

fn adam(cfg: &RunConfig) -> ModuleOptimizer {
    FusedAdam::new(
        cfg.train.betas[0] as f32,
        cfg.train.betas[1] as f32,
        cfg.train.eps as f32,
    )
    .init()
}

#[allow(clippy::too_many_arguments)]
fn fit<M: ImageModel>(
    model: M,
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
    let mut model = with_stable_ids(model);
    let mut optim = adam(cfg);

    // (0) start fresh or pick up the saved state.
    let mut state;
    (model, optim, state) = begin(run, cfg, resume, model, optim, |run, done| {
        trim_records::<EpochRecord>(run, done, |r| r.epoch)
    })?;

    let (train_set, test_set) = splits(data, t);
    let batches = Batches::count(train_set.len(), t.batch_size);
    let latent = model.latent_dim();
    obs.on_event(Event::Start {
        epoch: state.epochs_done + 1,
        epochs: t.epochs,
        batches,
        skip: state.batches_done,
        params: model.num_params(),
    });
    let mut last = None;

    for epoch in state.epochs_done..t.epochs {
        let order = shuffled_order(train_set.len(), t.seed, epoch);
        let started = Instant::now();
        let mut seen_this_call = 0usize;
        for idx in Batches::new(&order, t.batch_size, state.batches_done) {
            // (1) forward: the objective on one batch, with this step's noise.
            let x = batch_tensor(&train_set, idx, &ad); // [b, c, h, w]
            let mut rng = rng_for(t.seed, stream::TRAIN_NOISE, state.step as u64);
            let eps = standard_normal(&mut rng, idx.len(), latent, &ad); // [b, latent]
            let obj = model.objective(x, eps);
            let loss = f64::from(obj.loss.clone().into_scalar::<f32>());

            // (2) guard: never step on a NaN/inf loss; the last checkpoint stays as it was.
            if !loss.is_finite() {
                state.status = "failed".into();
                return Err(Error::NonFiniteLoss {
                    value: if loss.is_nan() { "NaN" } else { "inf" }.into(),
                    epoch: epoch + 1,
                    step: state.step,
                });
            }

            // (3) backward and Adam step.
            let grads = GradientsParams::from_grads(obj.loss.backward(), &model);
            model = optim.step(t.lr, model, grads);

            // (4) bookkeeping.
            let b = idx.len();
            state.step += 1;
            state.batches_done += 1;
            state.partial.images += b;
            state.partial.loss += loss * b as f64;
            state.partial.recon += f64::from(obj.recon.sum().into_scalar::<f32>());
            if let Some(kl) = obj.kl {
                state.partial.kl += f64::from(kl.sum().into_scalar::<f32>());
            }
            seen_this_call += b;
            let secs = started.elapsed().as_secs_f64();
            obs.on_event(Event::Batch {
                epoch: epoch + 1,
                batch: state.batches_done,
                batches,
                loss,
                images_per_sec: seen_this_call as f64 / secs.max(1e-9),
            });

            // (5) stop on request: checkpoint mid-epoch and return.
            if let Some(out) = stop_mid_epoch(run, &model, &optim, &mut state, epoch, secs, stop)? {
                return Ok(out);
            }
        }
        let train_secs = started.elapsed().as_secs_f64();
        state.elapsed_secs += train_secs;

        // (6) end of epoch: evaluate, draw grids, log, plot, checkpoint.
        let valid = model.valid();
        let test = evaluate(&valid, &test_set, t.batch_size.max(256), t.seed, device)?;
        save_epoch_grids(
            &valid,
            run,
            &test_set,
            epoch + 1,
            t.seed,
            t.grid_images,
            device,
        )?;
        let n = state.partial.images.max(1) as f64;
        let record = EpochRecord {
            epoch: epoch + 1,
            step: state.step,
            train_loss: state.partial.loss / n,
            train_recon: state.partial.recon / n,
            train_kl: state.partial.kl / n,
            test,
            images_per_sec: seen_this_call as f64 / train_secs.max(1e-9),
            elapsed_secs: state.elapsed_secs,
        };
        append_record(run, &record)?;
        plot_losses(run)?;
        let end = end_epoch(
            run,
            &model,
            &optim,
            &mut state,
            epoch,
            t.epochs,
            stop,
            || obs.on_event(Event::Epoch(&record)),
        )?;
        last = Some(record);
        if let Some(out) = end {
            return Ok(out);
        }
    }
    Ok(Outcome::Finished(last))
}

/// Stage (0) of every training loop: creates the run folder with its config and a checkpoint of
/// the initial weights (so a run that fails in its first epoch still leaves a consistent,
/// resumable folder), or loads the saved resume pair; `trim` drops log lines past the checkpoint.
pub(crate) fn begin<M: Module>(
    run: &RunDir,
    cfg: &RunConfig,
    resume: bool,
    model: M,
    optim: ModuleOptimizer,
    trim: impl FnOnce(&RunDir, usize) -> Result<()>,
) -> Result<(M, ModuleOptimizer, TrainState)> {
    if resume {
        let state = run.load_state()?;
        if state.kind != cfg.model.kind() {
            return Err(Error::checkpoint(
                run.state(),
                format!(
                    "state is for a {} model, config.toml for a {}",
                    state.kind,
                    cfg.model.kind()
                ),
            ));
        }
        let (model, optim) = run.load_resume(model, optim, &state)?;
        trim(run, state.epochs_done)?;
        return Ok((model, optim, state));
    }
    if run.state().exists() {
        return Err(Error::checkpoint(
            run.state(),
            "a run already exists here; use --resume to continue it or choose another --out",
        ));
    }
    run.create()?;
    run.save_config(cfg)?;
    let _ = std::fs::remove_file(run.metrics());
    let mut s = TrainState {
        kind: cfg.model.kind().into(),
        step: 0,
        epochs_done: 0,
        batches_done: 0,
        partial: EpochSums::default(),
        status: "running".into(),
        elapsed_secs: 0.0,
        weights: String::new(),
        optimizer: String::new(),
    };
    run.save_checkpoint(&model, &optim, &mut s)?;
    Ok((model, optim, s))
}

/// The training and test images a run uses (capped by `max_train_images` / `max_test_images`).
pub(crate) fn splits(data: &Dataset, t: &crate::config::TrainConfig) -> (ImageSet, ImageSet) {
    let cap = |set: &ImageSet, n: usize| if n > 0 { set.take(n) } else { set.clone() };
    (
        cap(&data.train, t.max_train_images),
        cap(&data.test, t.max_test_images),
    )
}

/// Samples from fixed noise (same every epoch, so a user sees the same samples improve) and
/// reconstructions of the first test images, as PNG grids.
fn save_epoch_grids<M: ImageModel>(
    model: &M,
    run: &RunDir,
    test: &crate::data::ImageSet,
    epoch: usize,
    seed: u64,
    n: usize,
    device: &Device,
) -> Result<()> {
    let cols = (n as f64).sqrt().ceil() as usize;
    if model.can_sample() {
        let z = standard_normal(
            &mut rng_for(seed, stream::SAMPLE, 0),
            n,
            model.latent_dim(),
            device,
        );
        save_grid(model.decode_mean(z), cols, &run.samples(epoch))?;
    }
    save_reconstruction_grid(model, run, test, epoch, n, device)
}

/// The first test images and their reconstructions, in alternating rows, as a PNG grid.
pub(crate) fn save_reconstruction_grid<M: ImageModel>(
    model: &M,
    run: &RunDir,
    test: &crate::data::ImageSet,
    epoch: usize,
    n: usize,
    device: &Device,
) -> Result<()> {
    let cols = (n as f64).sqrt().ceil() as usize;
    let k = n.min(test.len()) / 2;
    if k > 0 {
        let idx: Vec<usize> = (0..k).collect();
        let x = batch_tensor(test, &idx, device); // [k, c, h, w]
        let y = model.decode_mean(model.encode_mean(x.clone()));
        let rows = interleave_rows(x, y, cols);
        save_grid(rows, cols, &run.reconstructions(epoch))?;
    }
    Ok(())
}

/// Stacks `a` and `b` (`[k, c, h, w]` each) so that rows of `cols` images alternate a, b, a, b.
pub fn interleave_rows(a: Tensor<4>, b: Tensor<4>, cols: usize) -> Tensor<4> {
    let k = a.dims()[0];
    let mut parts = Vec::new();
    let mut s = 0;
    while s < k {
        let e = (s + cols).min(k);
        parts.push(a.clone().narrow(0, s, e - s));
        parts.push(b.clone().narrow(0, s, e - s));
        s = e;
    }
    Tensor::cat(parts, 0)
}

/// A stop request (Ctrl-C) seen between two batches, the same in every trainer: the run is
/// checkpointed mid-epoch as `interrupted`, with the `secs` trained so far in this call added to
/// its clock. `Some(outcome)` means: return it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stop_mid_epoch<M: Module>(
    run: &RunDir,
    model: &M,
    optim: &ModuleOptimizer,
    state: &mut TrainState,
    epoch: usize,
    secs: f64,
    stop: &AtomicBool,
) -> Result<Option<Outcome>> {
    if !stop.load(Ordering::SeqCst) {
        return Ok(None);
    }
    state.elapsed_secs += secs;
    state.status = "interrupted".into();
    run.save_checkpoint(model, optim, state)?;
    Ok(Some(Outcome::Interrupted {
        epoch: epoch + 1,
        step: state.step,
    }))
}

/// The end of an epoch, the same in every trainer: the epoch's running sums are reset, the
/// checkpoint is written (`finished` after the last epoch, else `running`), `announce` tells the
/// observer, and a stop request that arrived during the epoch ends the run there (`interrupted`,
/// checkpointed again) unless it was the last epoch. `Some(outcome)` means: return it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn end_epoch<M: Module>(
    run: &RunDir,
    model: &M,
    optim: &ModuleOptimizer,
    state: &mut TrainState,
    epoch: usize,
    epochs: usize,
    stop: &AtomicBool,
    announce: impl FnOnce(),
) -> Result<Option<Outcome>> {
    state.epochs_done = epoch + 1;
    state.batches_done = 0;
    state.partial = EpochSums::default();
    state.status = if epoch + 1 == epochs {
        "finished"
    } else {
        "running"
    }
    .into();
    run.save_checkpoint(model, optim, state)?;
    announce();
    if stop.load(Ordering::SeqCst) && epoch + 1 < epochs {
        state.status = "interrupted".into();
        run.save_checkpoint(model, optim, state)?;
        return Ok(Some(Outcome::Interrupted {
            epoch: epoch + 1,
            step: state.step,
        }));
    }
    Ok(None)
}

/// Appends one record as a line of `metrics.jsonl`.
pub(crate) fn append_record<T: Serialize>(run: &RunDir, r: &T) -> Result<()> {
    let p = run.metrics();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(|e| Error::io(&p, "open", e))?;
    let line = serde_json::to_string(r).expect("records serialise");
    writeln!(f, "{line}").map_err(|e| Error::io(&p, "write", e))
}

/// Reads `metrics.jsonl` as records of type `T`.
pub fn read_records<T: serde::de::DeserializeOwned>(run: &RunDir) -> Result<Vec<T>> {
    let p = run.metrics();
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "read", e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::format(&p, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// Reads a generative run's `metrics.jsonl`.
pub fn read_metrics(run: &RunDir) -> Result<Vec<EpochRecord>> {
    read_records(run)
}

/// On resume: drops log lines past the checkpoint (a kill between logging an epoch and
/// checkpointing it would otherwise repeat that epoch), so the log has each epoch once.
pub(crate) fn trim_records<T: Serialize + serde::de::DeserializeOwned>(
    run: &RunDir,
    epochs_done: usize,
    epoch_of: impl Fn(&T) -> usize,
) -> Result<()> {
    if !run.metrics().exists() {
        return Ok(());
    }
    let text: String = read_records::<T>(run)?
        .into_iter()
        .filter(|r| epoch_of(r) <= epochs_done)
        .map(|r| serde_json::to_string(&r).expect("records serialise") + "\n")
        .collect();
    crate::fsutil::write_atomic(&run.metrics(), text.as_bytes())
}

fn plot_losses(run: &RunDir) -> Result<()> {
    let recs = read_metrics(run)?;
    let pts = |f: &dyn Fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
        recs.iter().map(|r| (r.epoch as f64, f(r))).collect()
    };
    line_plot(
        &run.loss_plot(),
        "loss per epoch",
        "nats per image",
        &[
            Series {
                label: "train",
                points: pts(&|r| r.train_loss),
            },
            Series {
                label: "test",
                points: pts(&|r| r.test.loss),
            },
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::load_weights;
    use crate::models::{Vae, VaeConfig};

    fn small_cfg(epochs: usize) -> RunConfig {
        let mut c = RunConfig::preset("mnist-vae").expect("preset");
        if let ModelConfig::Vae(m) = &mut c.model {
            m.hidden = vec![64];
            m.latent = 4;
        }
        c.train.epochs = epochs;
        c.train.batch_size = 32;
        c.train.max_train_images = 128;
        c.train.max_test_images = 64;
        c.train.grid_images = 4;
        c
    }

    /// Sets the stop flag after `after` batches, like a Ctrl-C.
    struct StopAfter<'a>(usize, &'a AtomicBool);
    impl Observer for StopAfter<'_> {
        fn on_event(&mut self, e: Event<'_>) {
            if let Event::Batch { .. } = e {
                self.0 -= 1;
                if self.0 == 0 {
                    self.1.store(true, Ordering::SeqCst);
                }
            }
        }
    }

    #[test]
    fn loss_falls_and_interrupted_resume_matches_uninterrupted() {
        let data = crate::data::embedded::mnist_10k().expect("embedded data");
        let d = Device::flex();
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = small_cfg(3);

        let a = RunDir::new(tmp.path().join("a"));
        let no = AtomicBool::new(false);
        let out = train(&a, &cfg, false, &data, &d, &no, &mut Silent).expect("train a");
        assert!(matches!(out, Outcome::Finished(Some(_))));
        let ra = read_metrics(&a).expect("metrics a");
        assert_eq!(ra.len(), 3);
        assert!(ra[2].train_loss < ra[0].train_loss, "{ra:?}");

        // Stop in the middle of epoch 2 (4 batches per epoch), then resume to the end.
        let b = RunDir::new(tmp.path().join("b"));
        let stop = AtomicBool::new(false);
        let out =
            train(&b, &cfg, false, &data, &d, &stop, &mut StopAfter(6, &stop)).expect("train b");
        assert_eq!(out, Outcome::Interrupted { epoch: 2, step: 6 });
        let st = b.load_state().expect("state");
        assert_eq!(
            (st.epochs_done, st.batches_done, st.status.as_str()),
            (1, 2, "interrupted")
        );
        let again = train(&b, &cfg, false, &data, &d, &no, &mut Silent)
            .unwrap_err()
            .to_string();
        assert!(again.contains("--resume"), "{again}");
        train(&b, &cfg, true, &data, &d, &no, &mut Silent).expect("resume b");
        let rb = read_metrics(&b).expect("metrics b");
        assert_eq!(rb.len(), 3);
        for (x, y) in ra.iter().zip(&rb) {
            assert_eq!(x.step, y.step);
            assert!(
                (x.train_loss - y.train_loss).abs() < 1e-3,
                "{} vs {}",
                x.train_loss,
                y.train_loss
            );
            assert!(
                (x.test.loss - y.test.loss).abs() < 1e-3,
                "{} vs {}",
                x.test.loss,
                y.test.loss
            );
        }

        // Saved weights reload to a model giving identical outputs.
        let ModelConfig::Vae(mc) = &cfg.model else {
            unreachable!("preset is a vae")
        };
        let wa: Vae = load_weights(mc.init(&d), &a.weights()).expect("load a");
        let wb: Vae =
            load_weights(VaeConfig { ..mc.clone() }.init(&d), &b.weights()).expect("load b");
        let x = batch_tensor(&data.test, &[0, 1, 2], &d);
        let ya = wa
            .decode(wa.encode(x.clone()).0)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let yb = wb
            .decode(wb.encode(x).0)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let max = ya
            .iter()
            .zip(&yb)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(max < 1e-3, "max diff {max}");
        // Only the latest resume pair is kept.
        let n = std::fs::read_dir(b.dir.join("state")).expect("ls").count();
        assert_eq!(n, 2);
    }

    #[test]
    fn non_finite_loss_stops_and_keeps_checkpoint() {
        let data = crate::data::embedded::mnist_10k().expect("embedded data");
        let d = Device::flex();
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut cfg = small_cfg(1);
        cfg.train.lr = 1e30;
        let r = RunDir::new(tmp.path().join("nan"));
        let err = train(
            &r,
            &cfg,
            false,
            &data,
            &d,
            &AtomicBool::new(false),
            &mut Silent,
        )
        .unwrap_err();
        assert!(matches!(err, Error::NonFiniteLoss { .. }), "{err}");
        let st = r.load_state().expect("initial checkpoint kept");
        assert_eq!(st.step, 0);
        let ModelConfig::Vae(mc) = &cfg.model else {
            unreachable!("preset is a vae")
        };
        load_weights(mc.init(&d), &r.weights()).expect("weights still load");
    }
}
