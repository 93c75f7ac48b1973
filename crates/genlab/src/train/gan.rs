//! The adversarial families (DCGAN, VAE-GAN): each step reads as two labelled stages, update D
//! then update G, as in pytorch/examples' dcgan, with a separate Adam per network. Every epoch
//! draws the same fixed noise through the generator, so a user sees the same samples improve;
//! the VAE-GAN is also evaluated as a VAE on the test split.

use std::marker::PhantomData;

use burn::module::ParamGroup;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use super::family::{At, EpochEnd, Family, Record, Series, Step, finite, scalar};
use super::recon::{grid_cols, save_reconstruction_grid};
use super::source::{Batch, BatchSource};
use super::vae_gan;
use crate::config::{RunConfig, TrainConfig};
use crate::data::ImageSet;
use crate::data::batch_tensor;
use crate::error::Result;
use crate::image_io::save_grid;
use crate::metrics::{EvalReport, evaluate};
use crate::models::dcgan::to_tanh;
use crate::models::vae_gan::VaeGanRecipe;
use crate::models::{Dcgan, Generative, VaeGan};
use crate::optim::adam_per_network;
use crate::rng::{rng_for, standard_normal, stream};

/// One line of a GAN run's `metrics.jsonl`: the epoch's training averages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanEpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Steps so far (one D and one G update each).
    pub step: usize,
    /// Mean discriminator loss.
    pub d_loss: f64,
    /// Mean generator loss.
    pub g_loss: f64,
    /// Mean `D(x)` on real images: sigmoid of the logit (1 = "real").
    pub d_real: f64,
    /// Mean `D(G(z))` on generated images, before the discriminator's update.
    pub d_fake: f64,
    /// VAE-GAN: the VAE's terms and test evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae: Option<VaeParts>,
    /// Training throughput over the epoch, real images per second.
    pub images_per_sec: f64,
    /// Training wall time so far, seconds.
    pub elapsed_secs: f64,
}

/// A VAE-GAN epoch's VAE numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VaeParts {
    /// Mean training reconstruction term (pixel nats, or feature squared error).
    pub train_recon: f64,
    /// Mean training KL term.
    pub train_kl: f64,
    /// Mean `D(Dec(Enc(x)))` on reconstructions, before the discriminator's update.
    #[serde(default)]
    pub d_recon: f64,
    /// Share of the epoch's steps (weighted by batch size) whose discriminator update the
    /// balance rule skipped (D was winning).
    #[serde(default)]
    pub d_skipped: f64,
    /// Share of the epoch's steps whose decoder update the balance rule skipped (D was losing).
    #[serde(default)]
    pub dec_skipped: f64,
    /// The VAE's evaluation on the test split (pixel -ELBO, MSE, PSNR).
    pub test: EvalReport,
}

/// What one GAN step measured.
#[derive(Debug, Clone, Copy)]
pub struct GanStep {
    /// Discriminator loss (batch mean).
    pub d_loss: f64,
    /// Generator loss (batch mean).
    pub g_loss: f64,
    /// Sum over the batch of `D(x)`.
    pub d_real_sum: f64,
    /// Sum over the batch of `D(G(z))` before D's update.
    pub d_fake_sum: f64,
    /// VAE-GAN: sum over the batch of the reconstruction term.
    pub recon_sum: f64,
    /// VAE-GAN: sum over the batch of the KL term.
    pub kl_sum: f64,
    /// VAE-GAN: sum over the batch of `D(Dec(Enc(x)))` before D's update.
    pub d_recon_sum: f64,
    /// Larsen recipe: the balance rule skipped the discriminator's update this step.
    pub d_skipped: bool,
    /// Larsen recipe: the balance rule skipped the decoder's update this step.
    pub dec_skipped: bool,
}

/// One DCGAN step on real images `x` (in [0, 1]) and noise `z`: update D, then update G.
/// `at` (epoch, step) names the step if a loss is not finite; then nothing is updated (D's
/// update is dropped with the returned error's model).
///
/// # Shapes
/// `x: [b, c, h, w]`, `z: [b, latent]`
pub fn dcgan_step(
    mut gan: Dcgan,
    optim: &mut ModuleOptimizer,
    x: Tensor<4>,
    z: Tensor<2>,
    lr: f64,
    at: At,
) -> Result<(Dcgan, GanStep)> {
    let (loss, real_target) = (gan.config.loss, gan.config.real_target());
    let x = to_tanh(x); // [b, c, h, w] in [-1, 1]

    // (1) update D: real images towards "real", G(z) (detached: no G gradient) towards "fake".
    let fake = gan.generator.forward(z); // [b, c, h, w]
    let real_logit = gan.discriminator.forward(x); // [b, 1]
    let fake_logit = gan.discriminator.forward(fake.clone().detach()); // [b, 1]
    let d_loss_t = loss
        .discriminator(real_logit.clone(), fake_logit.clone(), real_target)
        .mean();
    let d_loss = scalar(d_loss_t.clone());
    finite(d_loss, "discriminator loss", at)?;
    let grads = GradientsParams::from_grads(d_loss_t.backward(), &gan.discriminator);
    gan.discriminator = optim.step(lr, gan.discriminator, grads);

    // (2) update G: the updated D's verdict on the same images, pushed towards "real". D's
    // parameters are not tracked here (`no_grad` on a clone that shares their values and the
    // batch-norm running averages): the gradient still flows through D to G, but D's own weight
    // gradients, which this step would throw away, are never computed.
    let g_loss_t = loss
        .generator(gan.discriminator.clone().no_grad().forward(fake))
        .mean();
    let g_loss = scalar(g_loss_t.clone());
    finite(g_loss, "generator loss", at)?;
    let grads = GradientsParams::from_grads(g_loss_t.backward(), &gan.generator);
    gan.generator = optim.step(lr, gan.generator, grads);

    let stats = GanStep {
        d_loss,
        g_loss,
        d_real_sum: scalar(sigmoid(real_logit).sum()),
        d_fake_sum: scalar(sigmoid(fake_logit).sum()),
        recon_sum: 0.0,
        kl_sum: 0.0,
        d_recon_sum: 0.0,
        d_skipped: false,
        dec_skipped: false,
    };
    Ok((gan, stats))
}

/// What the adversarial family needs from a model: its generator's parameters (for their own
/// Adam), its step with this step's noise, and its end-of-epoch extras.
pub trait GanModel: Generative {
    /// The parameters updated in stage (2) (the generator, or the VAE).
    fn generator_group(&self) -> ParamGroup;
    /// One step with noise from `(seed, at.step)`.
    fn train_step(
        self,
        optim: &mut ModuleOptimizer,
        x: Tensor<4>,
        seed: u64,
        lr: f64,
        at: At,
    ) -> Result<(Self, GanStep)>;
    /// Test evaluation and reconstruction grid (encoding families); `None` for a plain GAN.
    fn evaluate(
        &self,
        end: &EpochEnd<'_>,
        test: &ImageSet,
        t: &TrainConfig,
    ) -> Result<Option<EvalReport>>;
}

impl GanModel for Dcgan {
    fn generator_group(&self) -> ParamGroup {
        ParamGroup::ids_from_module(self.generator.clone())
    }
    fn train_step(
        self,
        optim: &mut ModuleOptimizer,
        x: Tensor<4>,
        seed: u64,
        lr: f64,
        at: At,
    ) -> Result<(Self, GanStep)> {
        let mut rng = rng_for(seed, stream::TRAIN_NOISE, at.step as u64);
        let z = standard_normal(&mut rng, x.dims()[0], self.config.latent, &x.device());
        dcgan_step(self, optim, x, z, lr, at)
    }
    fn evaluate(
        &self,
        _: &EpochEnd<'_>,
        _: &ImageSet,
        _: &TrainConfig,
    ) -> Result<Option<EvalReport>> {
        Ok(None)
    }
}

impl GanModel for VaeGan {
    fn generator_group(&self) -> ParamGroup {
        ParamGroup::ids_from_module(self.vae.clone())
    }
    fn train_step(
        self,
        optim: &mut ModuleOptimizer,
        x: Tensor<4>,
        seed: u64,
        lr: f64,
        at: At,
    ) -> Result<(Self, GanStep)> {
        let mut rng = rng_for(seed, stream::TRAIN_NOISE, at.step as u64);
        let (b, latent, d) = (x.dims()[0], self.vae.config.latent, x.device());
        let eps = standard_normal(&mut rng, b, latent, &d);
        let z_p = standard_normal(&mut rng, b, latent, &d);
        match self.config.recipe {
            VaeGanRecipe::Larsen => vae_gan::larsen_step(self, optim, x, eps, z_p, lr, at),
            VaeGanRecipe::Joint => vae_gan::joint_step(self, optim, x, eps, z_p, lr, at),
        }
    }
    fn evaluate(
        &self,
        end: &EpochEnd<'_>,
        test: &ImageSet,
        t: &TrainConfig,
    ) -> Result<Option<EvalReport>> {
        let report = evaluate(self, test, t.batch_size.max(256), t.seed, end.device)?;
        save_reconstruction_grid(self, end.run, test, end.epoch, t.grid_images, end.device)?;
        Ok(Some(report))
    }
}

/// The adversarial family over model type `M` ([`Dcgan`] or [`VaeGan`]).
pub struct Adversarial<M> {
    kind: &'static str,
    t: TrainConfig,
    train: ImageSet,
    test: ImageSet,
    device: Device,
    model: PhantomData<M>,
}

impl<M> Adversarial<M> {
    /// The family for `cfg`, training on `train` (and, for the VAE-GAN, evaluating on `test`);
    /// batches are made on `device` (the autodiff device).
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

impl<M: GanModel> Family for Adversarial<M> {
    type Model = M;
    type Record = GanEpochRecord;

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn optimizer(&self, model: &M) -> ModuleOptimizer {
        adam_per_network(self.t.betas, self.t.eps, model.generator_group())
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
    ) -> Result<(M, Step)> {
        let (set, idx) = batch.images();
        let b = idx.len();
        let x = batch_tensor(set, idx, &self.device); // [b, c, h, w]
        let (model, s) = model.train_step(optim, x, self.t.seed, self.t.lr, at)?;
        let step = Step {
            loss: s.d_loss + s.g_loss,
            images: b,
            sums: vec![
                ("d_loss", s.d_loss * b as f64),
                ("g_loss", s.g_loss * b as f64),
                ("d_real", s.d_real_sum),
                ("d_fake", s.d_fake_sum),
                ("recon", s.recon_sum),
                ("kl", s.kl_sum),
                ("d_recon", s.d_recon_sum),
                ("d_skipped", if s.d_skipped { b as f64 } else { 0.0 }),
                ("dec_skipped", if s.dec_skipped { b as f64 } else { 0.0 }),
            ],
        };
        Ok((model, step))
    }

    fn summarize(&self, model: &M, end: &EpochEnd<'_>) -> Result<GanEpochRecord> {
        let t = &self.t;
        let z = standard_normal(
            &mut rng_for(t.seed, stream::SAMPLE, 0),
            t.grid_images,
            model.noise_dim(),
            end.device,
        );
        let cols = grid_cols(t.grid_images);
        save_grid(model.generate(z), cols, &end.run.samples(end.epoch))?;
        let test = model.evaluate(end, &self.test, t)?;
        let p = end.sums;
        Ok(GanEpochRecord {
            epoch: end.epoch,
            step: end.step,
            d_loss: p.mean("d_loss"),
            g_loss: p.mean("g_loss"),
            d_real: p.mean("d_real"),
            d_fake: p.mean("d_fake"),
            vae: test.map(|test| VaeParts {
                train_recon: p.mean("recon"),
                train_kl: p.mean("kl"),
                d_recon: p.mean("d_recon"),
                d_skipped: p.mean("d_skipped"),
                dec_skipped: p.mean("dec_skipped"),
                test,
            }),
            images_per_sec: end.images_per_sec,
            elapsed_secs: end.elapsed_secs,
        })
    }
}

impl Record for GanEpochRecord {
    const PLOT_TITLE: &'static str = "GAN training per epoch";
    const PLOT_UNITS: &'static str = "loss / D output";
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn line(&self) -> String {
        let vae = self.vae.map_or(String::new(), |v| {
            format!(
                "  D(recon) {:.3}  skipped D {:.0}% dec {:.0}%  test -ELBO {:.2} psnr {:.2} dB",
                v.d_recon,
                100.0 * v.d_skipped,
                100.0 * v.dec_skipped,
                v.test.neg_elbo,
                v.test.psnr
            )
        });
        format!(
            "epoch {:>3}  D loss {:.3}  G loss {:.3}  D(x) {:.3}  D(G(z)) {:.3}{vae}  {:.0} img/s",
            self.epoch, self.d_loss, self.g_loss, self.d_real, self.d_fake, self.images_per_sec
        )
    }
    fn series() -> Vec<Series<Self>> {
        vec![
            ("D loss", |r| r.d_loss),
            ("G loss", |r| r.g_loss),
            ("D(x)", |r| r.d_real),
            ("D(G(z))", |r| r.d_fake),
            // VAE-GAN only (the DCGAN's records have none: no line drawn).
            ("D(recon)", |r| r.vae.map_or(f64::NAN, |v| v.d_recon)),
            ("D update skipped", |r| {
                r.vae.map_or(f64::NAN, |v| v.d_skipped)
            }),
            ("decoder update skipped", |r| {
                r.vae.map_or(f64::NAN, |v| v.dec_skipped)
            }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator step through an untracked discriminator (`no_grad`, as `dcgan_step` does)
    /// gives the generator the same gradients as through the tracked one, computes no gradient
    /// for D, and moves D's batch-norm running averages exactly as before.
    #[test]
    fn generator_gradients_through_untracked_discriminator_are_unchanged() {
        use crate::models::DcganConfig;
        let d = Device::flex().autodiff();
        let cfg = DcganConfig {
            latent: 8,
            g_channels: vec![8, 16],
            d_channels: vec![8, 16],
            ..DcganConfig::default()
        };
        let z = Tensor::<2>::from_data(
            TensorData::new(
                (0..32).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect(),
                [4, 8],
            ),
            &d,
        );
        // One copy of the same model per variant (loaded from its record, so the running
        // averages are not shared between them).
        let base = cfg.init(&d);
        let run = |freeze: bool| {
            let gan = cfg.init(&d).load_record(base.clone().into_record());
            let disc = if freeze {
                gan.discriminator.clone().no_grad()
            } else {
                gan.discriminator.clone()
            };
            let fake = gan.generator.forward(z.clone());
            let loss = cfg.loss.generator(disc.forward(fake)).mean();
            let mut grads = loss.backward();
            let g = GradientsParams::from_module(&mut grads, &gan.generator);
            let dg = GradientsParams::from_module(&mut grads, &gan.discriminator);
            let values = |t: Tensor<4>| t.into_data().try_into_vec::<f32>().expect("f32");
            let g_deconv = values(
                g.get::<4>(gan.generator.deconvs[0].weight.id)
                    .expect("G grad"),
            );
            let running = gan.discriminator.norms[0].running_mean.value_sync();
            let running = running.into_data().try_into_vec::<f32>().expect("f32");
            (g_deconv, running, dg.len())
        };
        let (tracked, frozen) = (run(false), run(true));
        assert!(tracked.0 == frozen.0, "generator gradients differ");
        assert!(tracked.1 == frozen.1, "running means differ");
        assert!(
            tracked.1.iter().any(|&v| v != 0.0),
            "the running mean moved"
        );
        assert!(tracked.2 > 0, "the tracked D gets gradients");
        assert_eq!(frozen.2, 0, "the untracked D gets none");
    }
}
