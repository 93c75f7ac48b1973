//! The reconstruction families (autoencoder, VAE): minimise the model's objective on each batch
//! with Adam; every epoch, evaluate on the test split (loss, -ELBO, MSE, PSNR) and draw samples
//! from fixed noise and reconstructions of the first test images.

use std::marker::PhantomData;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::family::{At, EpochEnd, Family, Record, Series, Step, finite, scalar};
use super::shard::{noise_rows, shard_range, shard_weight, sum_grads};
use super::source::{Batch, BatchSource};
use crate::checkpoint::RunDir;
use crate::config::{RunConfig, TrainConfig};
use crate::data::ImageSet;
use crate::data::batch_tensor;
use crate::image_io::{interleave_rows, save_grid};
use crate::metrics::{EvalReport, evaluate};
use crate::models::ImageModel;
use crate::optim::adam;
use crate::rng::{rng_for, standard_normal, stream};

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
    /// The conditional VAE-GAN's adversarial terms (absent for every other family).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adversarial: Option<AdversarialParts>,
    /// Training throughput over the epoch, images per second (excluding evaluation).
    pub images_per_sec: f64,
    /// Training wall time so far, seconds.
    pub elapsed_secs: f64,
}

/// A conditional VAE-GAN epoch's adversarial numbers (means over the epoch, each from the
/// discriminator before its update).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdversarialParts {
    /// Discriminator loss.
    pub d_loss: f64,
    /// The decoder's GAN loss.
    pub g_loss: f64,
    /// `D(x, y)` on real images (sigmoid of the logit).
    pub d_real: f64,
    /// `D(Dec(z, y), y)` on prior samples.
    pub d_fake: f64,
    /// `D(Dec(Enc(x, y), y), y)` on reconstructions.
    pub d_recon: f64,
    /// The reconstruction error the encoder and decoder train on (feature or pixel units).
    pub train_recon: f64,
}

impl Record for EpochRecord {
    const PLOT_TITLE: &'static str = "loss per epoch";
    const PLOT_UNITS: &'static str = "nats per image";
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn line(&self) -> String {
        let kl = if self.train_kl > 0.0 {
            format!(" (recon {:.2} + kl {:.2})", self.test.recon, self.test.kl)
        } else {
            String::new()
        };
        let adv = self.adversarial.map_or(String::new(), |a| {
            format!(
                "  D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2}",
                a.d_loss, a.g_loss, a.d_real, a.d_fake
            )
        });
        format!(
            "epoch {:>3}  train {:.3}  test {:.3}{kl}  psnr {:.2} dB{adv}  {:.0} img/s",
            self.epoch, self.train_loss, self.test.loss, self.test.psnr, self.images_per_sec
        )
    }
    fn series() -> Vec<Series<Self>> {
        vec![("train", |r| r.train_loss), ("test", |r| r.test.loss)]
    }
}

/// The autoencoder / VAE family over model type `M`.
pub struct Recon<M> {
    kind: &'static str,
    t: TrainConfig,
    train: ImageSet,
    test: ImageSet,
    device: Device,
    model: PhantomData<M>,
}

impl<M> Recon<M> {
    /// The family for `cfg`, training on `train` and evaluating on `test`; batches are made on
    /// `device` (the autodiff device).
    pub fn new(cfg: &RunConfig, train: ImageSet, test: ImageSet, device: &Device) -> Self {
        Self {
            kind: cfg.model.kind(),
            t: cfg.train.clone(),
            train,
            test,
            device: device.clone(),
            model: PhantomData,
        }
    }
}

impl<M: ImageModel> Family for Recon<M> {
    type Model = M;
    type Record = EpochRecord;

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn optimizer(&self, _: &M) -> ModuleOptimizer {
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
        model: M,
        optim: &mut ModuleOptimizer,
        batch: Batch<'_>,
        at: At,
    ) -> crate::Result<(M, Step)> {
        let (set, idx) = batch.images();
        let b = idx.len();
        let mut rng = rng_for(self.t.seed, stream::TRAIN_NOISE, at.step as u64);
        // The whole batch's noise, drawn once: image i gets row i whatever the shards are.
        let eps = standard_normal(&mut rng, b, model.latent_dim(), &self.device); // [b, latent]
        let world = self.t.shards.min(b);
        let (mut loss, mut recon, mut kl) = (0.0, 0.0, None::<f64>);
        let mut grads = Vec::with_capacity(world);
        for rank in 0..world {
            let r = shard_range(b, rank, world);
            let w = shard_weight(&r, b);
            let x = batch_tensor(set, &idx[r.clone()], &self.device); // [n_r, c, h, w]
            // One shard (the default) is the plain step: no slice, no weight.
            let eps_r = if world == 1 {
                eps.clone()
            } else {
                noise_rows(&eps, r)
            };
            let obj = model.objective(x, eps_r);
            // The guard sees each shard's loss before any gradient is taken.
            loss += w * finite(scalar(obj.loss.clone()), "", at)?;
            recon += scalar(obj.recon.sum());
            if let Some(k) = obj.kl {
                *kl.get_or_insert(0.0) += scalar(k.sum());
            }
            let l = if world == 1 {
                obj.loss
            } else {
                obj.loss.mul_scalar(w)
            };
            grads.push(GradientsParams::from_grads(l.backward(), &model));
        }
        let grads = sum_grads(&model, grads);
        let model = optim.step(self.t.lr, model, grads);
        let mut sums = vec![("loss", loss * b as f64), ("recon", recon)];
        if let Some(kl) = kl {
            sums.push(("kl", kl));
        }
        Ok((
            model,
            Step {
                loss,
                images: b,
                sums,
            },
        ))
    }

    fn summarize(&self, model: &M, end: &EpochEnd<'_>) -> crate::Result<EpochRecord> {
        let t = &self.t;
        let test = evaluate(model, &self.test, t.batch_size.max(256), t.seed, end.device)?;
        // The last step's update can leave non-finite weights behind a finite loss: say so as
        // the NaN guard does, before drawing grids of NaN.
        let at = At {
            epoch: end.epoch - 1,
            step: end.step,
        };
        finite(test.loss, "test loss", at)?;
        if model.can_sample() {
            save_samples(model, end.run, end.epoch, t, end.device)?;
        }
        save_reconstruction_grid(
            model,
            end.run,
            &self.test,
            end.epoch,
            t.grid_images,
            end.device,
        )?;
        Ok(EpochRecord {
            epoch: end.epoch,
            step: end.step,
            train_loss: end.sums.mean("loss"),
            train_recon: end.sums.mean("recon"),
            train_kl: end.sums.mean("kl"),
            test,
            adversarial: None,
            images_per_sec: end.images_per_sec,
            elapsed_secs: end.elapsed_secs,
        })
    }
}

/// Columns of an epoch grid of `n` images.
pub(crate) fn grid_cols(n: usize) -> usize {
    (n as f64).sqrt().ceil() as usize
}

/// Samples from fixed noise (the same every epoch, so a user sees the same samples improve).
fn save_samples<M: ImageModel>(
    model: &M,
    run: &RunDir,
    epoch: usize,
    t: &TrainConfig,
    device: &Device,
) -> crate::Result<()> {
    let n = t.grid_images;
    let z = standard_normal(
        &mut rng_for(t.seed, stream::SAMPLE, 0),
        n,
        model.latent_dim(),
        device,
    );
    save_grid(model.decode_mean(z), grid_cols(n), &run.samples(epoch))
}

/// The first test images and their reconstructions, in alternating rows, as a PNG grid.
pub(crate) fn save_reconstruction_grid<M: ImageModel>(
    model: &M,
    run: &RunDir,
    test: &ImageSet,
    epoch: usize,
    n: usize,
    device: &Device,
) -> crate::Result<()> {
    let cols = grid_cols(n);
    let k = n.min(test.len()) / 2;
    if k > 0 {
        let idx: Vec<usize> = (0..k).collect();
        let x = batch_tensor(test, &idx, device); // [k, c, h, w]
        let y = model.decode_mean(model.encode_mean(x.clone()));
        save_grid(
            interleave_rows(x, y, cols),
            cols,
            &run.reconstructions(epoch),
        )?;
    }
    Ok(())
}
