//! The training loop: one flat function, `fit` (in `fit.rs`), in labelled stages, that every model family goes
//! through. A family ([`Family`], one file each below) supplies only what differs: its optimizer,
//! its step on one batch and its end-of-epoch summary. The loop owns the rest: the run folder,
//! resume, batches ([`BatchSource`]), the stop flag (Ctrl-C), progress [`Event`]s, `metrics.jsonl`,
//! `loss.png`, checkpoints and the final status. It never steps on a NaN/inf loss and never
//! prints; the CLI draws a progress bar from the events.
//!
//! ```text
//! train(RunConfig) / train_sr(SrRunConfig)   pick the family from the config (registry below)
//!   fit(family, model)
//!     (0) begin: create the run folder + initial checkpoint, or load the resume pair
//!     per epoch, per batch from family.source():
//!       (1) family.step(model, optim, batch)  -> model', Step { loss, images, sums }
//!       (2) bookkeeping: EpochSums += sums, Event::Batch
//!       (3) stop requested? checkpoint mid-epoch, return Interrupted
//!     (4) end of epoch: family.summarize -> Record -> metrics.jsonl, loss.png, checkpoint
//! ```

use std::sync::atomic::AtomicBool;

use burn::prelude::*;

use crate::checkpoint::RunDir;
use crate::config::RunConfig;
use crate::data::{Dataset, ImageSet};
use crate::error::{Error, Result};
use crate::models::ModelConfig;

pub mod classifier;
pub mod conditional;
pub mod cvae_gan;
mod family;
mod fit;
pub mod gan;
pub mod recon;
mod records;
pub mod shard;
mod source;
pub mod sr;
pub mod vae_gan;

pub use classifier::ClassifierEpochRecord;
pub use family::{At, EpochEnd, Family, FamilyFn, Record, Series, Step, finite};
use fit::Plan;
pub use fit::{Event, Observer, Outcome, Silent};
pub use gan::{GanEpochRecord, VaeParts};
pub use recon::{AdversarialParts, EpochRecord};
pub use records::{read_records, read_records_live};
pub use source::{Batch, BatchSource, EpochBatches};
pub use sr::{SrEpochRecord, train_sr};

/// Trains a new generative or classifier run in `run` (which must not hold one yet), or resumes
/// the one there. Super-resolution runs train with [`train_sr`].
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
    check_classes(cfg, data)?;
    check_memory(cfg, data.train.image_len())?;
    // Weight init draws from the device RNG: seed it so a run is reproducible.
    device.seed(cfg.train.seed);
    let (train_set, test_set) = splits(data, &cfg.train);
    let plan = Plan {
        run,
        config_toml: cfg.to_toml(),
        epochs: cfg.train.epochs,
        resume,
        device,
        stop,
        obs,
    };
    with_family(cfg, train_set, test_set, device, plan)
}

/// Refuses a conditional model on a dataset without labels, or with other classes than the
/// model's (`set_classes` takes them from the dataset for a new run).
fn check_classes(cfg: &RunConfig, data: &Dataset) -> Result<()> {
    let want = cfg.model.classes();
    if want.is_empty() {
        return Ok(());
    }
    if data.classes.is_empty() || data.train.labels.is_none() {
        return Err(conditional::needs_labels(cfg.model.kind(), &data.name));
    }
    if want != data.classes.as_slice() {
        return Err(Error::config(
            "model.classes",
            format!("{} classes ({})", want.len(), want.join(", ")),
            format!(
                "the dataset's {} classes ({})",
                data.classes.len(),
                data.classes.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Refuses a training whose model and batches (of images of `image_len` values) would not fit
/// in memory, naming the model's largest size setting, the parameters and the batch. [`train`]
/// calls it; `genlab train --dry-run` calls it with the run it stands in for.
pub fn check_memory(cfg: &RunConfig, image_len: usize) -> Result<()> {
    let t = &cfg.train;
    let params = cfg.model.num_params();
    // A sharded step holds one shard's activations at a time.
    let batch = t.batch_size.div_ceil(t.shards.max(1)).max(t.grid_images);
    let model_part = crate::memory::training_bytes(params, 0, 0);
    let batch_part = crate::memory::training_bytes(0, batch, image_len);
    // Name what dominates: the model's largest size setting, or the batch.
    let what = if model_part >= batch_part {
        format!(
            "{}{params} parameters",
            crate::config::largest_size(&cfg.model)
                .map(|s| s + " gives ")
                .unwrap_or_default()
        )
    } else {
        let shards = if t.shards > 1 {
            format!(" in {} shards", t.shards)
        } else {
            String::new()
        };
        format!(
            "batch_size {}{shards} of {image_len}-value images",
            t.batch_size
        )
    };
    crate::memory::ensure(
        format!("training this {} ({what})", cfg.model.kind()),
        model_part + batch_part,
    )
}

/// The registry of trainable families: builds the family a config names, with its model
/// initialised on `device`'s autodiff device, and hands both to `f`. [`train`] and
/// `genlab bench` both come through here, so a benchmark times the step training runs.
pub fn with_family<T>(
    cfg: &RunConfig,
    train_set: ImageSet,
    test_set: ImageSet,
    device: &Device,
    f: impl FamilyFn<T>,
) -> Result<T> {
    let ad = device.clone().autodiff();
    let seed = cfg.train.seed;
    match &cfg.model {
        ModelConfig::Ae(m) => f.call(
            recon::Recon::new(cfg, train_set, test_set, &ad),
            init_on_cpu(seed, &ad, |d| m.init(d)),
        ),
        ModelConfig::Vae(m) => f.call(
            recon::Recon::new(cfg, train_set, test_set, &ad),
            init_on_cpu(seed, &ad, |d| m.init(d)),
        ),
        ModelConfig::Dcgan(m) => f.call(
            gan::Adversarial::new(cfg, train_set, test_set, &ad),
            init_on_cpu(seed, &ad, |d| m.init(d)),
        ),
        ModelConfig::VaeGan(m) => f.call(
            gan::Adversarial::new(cfg, train_set, test_set, &ad),
            init_on_cpu(seed, &ad, |d| m.init(d)),
        ),
        ModelConfig::Classifier(m) => f.call(
            classifier::Supervised::new(cfg, train_set, test_set, &ad)?,
            init_on_cpu(seed, &ad, |d| m.init(d)),
        ),
        ModelConfig::Cvae(m) => f.call(
            conditional::CondVae::new(cfg, train_set, test_set, &ad)?,
            init_on_cpu(seed, &ad, |d| m.init(d)),
        ),
        ModelConfig::Cgan(m) => f.call(
            conditional::CondGan::new(cfg, train_set, test_set, &ad)?,
            init_on_cpu(seed, &ad, |d| m.init(d)),
        ),
    }
}

/// A model initialised as on the CPU whatever device `ad` (an autodiff device) is, so a seed
/// gives the same initial weights on every device and a run can be reproduced on another: weight
/// init draws from the device's RNG, and each backend has its own. On the CPU itself the model is
/// initialised in place (lazily, as burn does); elsewhere it is initialised on the CPU from
/// `seed`, every parameter materialised there in module order, then forked onto `ad`.
pub(crate) fn init_on_cpu<M: burn::module::Module>(
    seed: u64,
    ad: &Device,
    init: impl FnOnce(&Device) -> M,
) -> M {
    let cpu = Device::flex();
    if ad.clone().without_autodiff() == cpu {
        return init(ad);
    }
    cpu.seed(seed);
    init(&cpu.autodiff()).map(&mut Materialise).fork(ad)
}

/// Initialises every lazy float parameter where it is (a parameter's value is computed on first
/// access; [`burn::module::Param::map`] accesses it).
struct Materialise;

impl burn::module::ModuleMapper for Materialise {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        param.map(|t| t)
    }
}

/// The training and test images a run uses (capped by `max_train_images` / `max_test_images`).
pub(crate) fn splits(data: &Dataset, t: &crate::config::TrainConfig) -> (ImageSet, ImageSet) {
    let cap = |set: &ImageSet, n: usize| if n > 0 { set.take(n) } else { set.clone() };
    (
        cap(&data.train, t.max_train_images),
        cap(&data.test, t.max_test_images),
    )
}

// The loop's own tests are `tests/train_loop.rs`: a process of their own, because weights are
// initialised from burn's process-wide device RNG, which other tests running in parallel would
// draw from.
