//! The adversarial training loop (DCGAN, VAE-GAN): one flat function whose step reads as two labelled
//! stages, update D then update G, as in pytorch/examples' dcgan. Same run folder, resume,
//! Ctrl-C and NaN guard as the other families; every epoch draws the same fixed noise through the
//! generator, so a user sees the same samples improve.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::nn::fused::FusedAdam;
use burn::module::ParamGroup;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use super::{
    Event, Observer, Outcome, append_record, begin, end_epoch, read_records, splits,
    stop_mid_epoch, trim_records,
};
use crate::checkpoint::RunDir;
use crate::config::RunConfig;
use crate::data::{Batches, Dataset, ImageSet, shuffled_order};
use crate::error::{Error, Result};
use crate::image_io::{batch_tensor, save_grid};
use crate::metrics::{EvalReport, evaluate};
use crate::models::dcgan::to_tanh;
use crate::models::{Dcgan, Generative, VaeGan};
use crate::nn::with_stable_ids;
use crate::plot::{Series, line_plot};
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
    /// The VAE's evaluation on the test split (pixel -ELBO, MSE, PSNR).
    pub test: EvalReport,
}

/// Adam for each network: one [`ModuleOptimizer`] holding a separate Adam for the generator's
/// parameter group and for the discriminator's (the rest), so the two never share state and
/// the checkpoint keeps both in one file.
pub(crate) fn gan_optimizer(cfg: &RunConfig, generator: ParamGroup) -> ModuleOptimizer {
    let t = &cfg.train;
    let adam = FusedAdam::new(t.betas[0] as f32, t.betas[1] as f32, t.eps as f32);
    adam.clone().init().with_group(generator, adam, None)
}

fn scalar(t: Tensor<1>) -> f64 {
    f64::from(t.into_scalar::<f32>())
}

fn guard(value: f64, what: &str, (epoch, step): (usize, usize)) -> Result<()> {
    if value.is_finite() {
        return Ok(());
    }
    Err(Error::NonFiniteLoss {
        value: format!("{} ({what})", if value.is_nan() { "NaN" } else { "inf" }),
        epoch,
        step,
    })
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
    at: (usize, usize),
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
    guard(d_loss, "discriminator loss", at)?;
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
    guard(g_loss, "generator loss", at)?;
    let grads = GradientsParams::from_grads(g_loss_t.backward(), &gan.generator);
    gan.generator = optim.step(lr, gan.generator, grads);

    let stats = GanStep {
        d_loss,
        g_loss,
        d_real_sum: scalar(sigmoid(real_logit).sum()),
        d_fake_sum: scalar(sigmoid(fake_logit).sum()),
        recon_sum: 0.0,
        kl_sum: 0.0,
    };
    Ok((gan, stats))
}

/// One VAE-GAN step on real images `x` (in [0, 1]), posterior noise `eps` and prior noise
/// `z_p`: update D on real vs reconstructed and sampled images, then update the encoder and
/// decoder on `recon + beta KL + lambda adversarial` (Larsen et al. 2016, Algorithm 1, with the
/// encoder and decoder sharing one loss).
///
/// # Shapes
/// `x: [b, c, h, w]`, `eps, z_p: [b, latent]`
pub fn vae_gan_step(
    mut m: VaeGan,
    optim: &mut ModuleOptimizer,
    x: Tensor<4>,
    eps: Tensor<2>,
    z_p: Tensor<2>,
    lr: f64,
    at: (usize, usize),
) -> Result<(VaeGan, GanStep)> {
    let (loss, real_target, lambda) = (
        m.config.loss,
        m.config.real_target(),
        m.config.adversarial_weight,
    );
    let (obj, x_rec) = m.vae_objective(x.clone(), eps); // x_rec: [b, c, h, w]
    let x_p = m.vae.decode(z_p); // [b, c, h, w]
    let fakes = to_tanh(Tensor::cat(vec![x_rec, x_p], 0)); // [2b, c, h, w]

    // (1) update D: real images towards "real"; reconstructions and samples (detached) towards
    // "fake". The real logits are repeated so both kinds of fake weigh as much as the reals.
    let real_logit = m.discriminator.forward(to_tanh(x)); // [b, 1]
    let fake_logit = m.discriminator.forward(fakes.clone().detach()); // [2b, 1]
    let real2 = Tensor::cat(vec![real_logit.clone(), real_logit.clone()], 0); // [2b, 1]
    let d_loss_t = loss
        .discriminator(real2, fake_logit.clone(), real_target)
        .mean();
    let d_loss = scalar(d_loss_t.clone());
    guard(d_loss, "discriminator loss", at)?;
    let grads = GradientsParams::from_grads(d_loss_t.backward(), &m.discriminator);
    m.discriminator = optim.step(lr, m.discriminator, grads);

    // (2) update the encoder and decoder: the VAE loss plus lambda times the updated D's
    // adversarial loss on the same reconstructions and samples (D untracked, as in `dcgan_step`).
    let adv_t = loss
        .generator(m.discriminator.clone().no_grad().forward(fakes))
        .mean();
    let total = obj.loss.clone() + adv_t.clone().mul_scalar(lambda);
    let g_loss = scalar(adv_t);
    guard(scalar(total.clone()), "encoder/decoder loss", at)?;
    let grads = GradientsParams::from_grads(total.backward(), &m.vae);
    m.vae = optim.step(lr, m.vae, grads);

    let b = real_logit.dims()[0];
    let stats = GanStep {
        d_loss,
        g_loss,
        d_real_sum: scalar(sigmoid(real_logit).sum()),
        // D(G(z)) over the prior samples, the second half of the fakes.
        d_fake_sum: scalar(sigmoid(fake_logit.narrow(0, b, b)).sum()),
        recon_sum: scalar(obj.recon.sum()),
        kl_sum: obj.kl.map_or(0.0, |k| scalar(k.sum())),
    };
    Ok((m, stats))
}

/// What the adversarial loop needs from a family: its generator's parameters (for their own
/// Adam), its step, and its end-of-epoch extras.
pub(crate) trait Adversarial: Generative {
    /// The parameters updated in stage (2) (the generator, or the VAE).
    fn generator_group(&self) -> ParamGroup;
    /// One step with noise from `(seed, step)`.
    fn train_step(
        self,
        optim: &mut ModuleOptimizer,
        x: Tensor<4>,
        seed: u64,
        lr: f64,
        at: (usize, usize),
    ) -> Result<(Self, GanStep)>;
    /// Test evaluation and reconstruction grid (encoding families).
    fn end_of_epoch(
        &self,
        run: &RunDir,
        test: &ImageSet,
        cfg: &RunConfig,
        epoch: usize,
        device: &Device,
    ) -> Result<Option<EvalReport>>;
}

impl Adversarial for Dcgan {
    fn generator_group(&self) -> ParamGroup {
        ParamGroup::ids_from_module(self.generator.clone())
    }
    fn train_step(
        self,
        optim: &mut ModuleOptimizer,
        x: Tensor<4>,
        seed: u64,
        lr: f64,
        at: (usize, usize),
    ) -> Result<(Self, GanStep)> {
        let mut rng = rng_for(seed, stream::TRAIN_NOISE, at.1 as u64);
        let z = standard_normal(&mut rng, x.dims()[0], self.config.latent, &x.device());
        dcgan_step(self, optim, x, z, lr, at)
    }
    fn end_of_epoch(
        &self,
        _: &RunDir,
        _: &ImageSet,
        _: &RunConfig,
        _: usize,
        _: &Device,
    ) -> Result<Option<EvalReport>> {
        Ok(None)
    }
}

impl Adversarial for VaeGan {
    fn generator_group(&self) -> ParamGroup {
        ParamGroup::ids_from_module(self.vae.clone())
    }
    fn train_step(
        self,
        optim: &mut ModuleOptimizer,
        x: Tensor<4>,
        seed: u64,
        lr: f64,
        at: (usize, usize),
    ) -> Result<(Self, GanStep)> {
        let mut rng = rng_for(seed, stream::TRAIN_NOISE, at.1 as u64);
        let (b, latent, d) = (x.dims()[0], self.vae.config.latent, x.device());
        let eps = standard_normal(&mut rng, b, latent, &d);
        let z_p = standard_normal(&mut rng, b, latent, &d);
        vae_gan_step(self, optim, x, eps, z_p, lr, at)
    }
    fn end_of_epoch(
        &self,
        run: &RunDir,
        test: &ImageSet,
        cfg: &RunConfig,
        epoch: usize,
        device: &Device,
    ) -> Result<Option<EvalReport>> {
        let t = &cfg.train;
        let report = evaluate(self, test, t.batch_size.max(256), t.seed, device)?;
        super::save_reconstruction_grid(self, run, test, epoch, t.grid_images, device)?;
        Ok(Some(report))
    }
}

/// Trains (or resumes) a DCGAN or VAE-GAN run.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_gan<M: Adversarial>(
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
    let mut gan = with_stable_ids(model);
    let mut optim = gan_optimizer(cfg, gan.generator_group());
    let latent = gan.noise_dim();

    // (0) start fresh or pick up the saved state.
    let mut state;
    (gan, optim, state) = begin(run, cfg, resume, gan, optim, |run, done| {
        trim_records::<GanEpochRecord>(run, done, |r| r.epoch)
    })?;

    let (train_set, test_set) = splits(data, t);
    let batches = Batches::count(train_set.len(), t.batch_size);
    obs.on_event(Event::Start {
        epoch: state.epochs_done + 1,
        epochs: t.epochs,
        batches,
        skip: state.batches_done,
        params: gan.num_params(),
    });

    for epoch in state.epochs_done..t.epochs {
        let order = shuffled_order(train_set.len(), t.seed, epoch);
        let started = Instant::now();
        let mut seen_this_call = 0usize;
        for idx in Batches::new(&order, t.batch_size, state.batches_done) {
            let b = idx.len();
            let x = batch_tensor(&train_set, idx, &ad); // [b, c, h, w]
            let s;
            (gan, s) = gan.train_step(&mut optim, x, t.seed, t.lr, (epoch + 1, state.step))?;

            // (3) bookkeeping.
            let p = &mut state.partial;
            p.images += b;
            p.d_loss += s.d_loss * b as f64;
            p.g_loss += s.g_loss * b as f64;
            p.d_real += s.d_real_sum;
            p.d_fake += s.d_fake_sum;
            p.recon += s.recon_sum;
            p.kl += s.kl_sum;
            state.step += 1;
            state.batches_done += 1;
            seen_this_call += b;
            let secs = started.elapsed().as_secs_f64();
            obs.on_event(Event::Batch {
                epoch: epoch + 1,
                batch: state.batches_done,
                batches,
                loss: s.d_loss + s.g_loss,
                images_per_sec: seen_this_call as f64 / secs.max(1e-9),
            });

            // (4) stop on request: checkpoint mid-epoch and return.
            if let Some(out) = stop_mid_epoch(run, &gan, &optim, &mut state, epoch, secs, stop)? {
                return Ok(out);
            }
        }
        let train_secs = started.elapsed().as_secs_f64();
        state.elapsed_secs += train_secs;

        // (5) end of epoch: samples from the fixed noise, log, plot, checkpoint.
        let valid = gan.valid();
        let z = standard_normal(
            &mut rng_for(t.seed, stream::SAMPLE, 0),
            t.grid_images,
            latent,
            device,
        );
        let cols = (t.grid_images as f64).sqrt().ceil() as usize;
        save_grid(valid.generate(z), cols, &run.samples(epoch + 1))?;
        let test = valid.end_of_epoch(run, &test_set, cfg, epoch + 1, device)?;
        let p = state.partial;
        let n = p.images.max(1) as f64;
        let record = GanEpochRecord {
            epoch: epoch + 1,
            step: state.step,
            d_loss: p.d_loss / n,
            g_loss: p.g_loss / n,
            d_real: p.d_real / n,
            d_fake: p.d_fake / n,
            vae: test.map(|test| VaeParts {
                train_recon: p.recon / n,
                train_kl: p.kl / n,
                test,
            }),
            images_per_sec: seen_this_call as f64 / train_secs.max(1e-9),
            elapsed_secs: state.elapsed_secs,
        };
        append_record(run, &record)?;
        plot_gan(run)?;
        let end = end_epoch(run, &gan, &optim, &mut state, epoch, t.epochs, stop, || {
            obs.on_event(Event::GanEpoch(&record))
        })?;
        if let Some(out) = end {
            return Ok(out);
        }
    }
    Ok(Outcome::Finished(None))
}

/// Reads a GAN run's `metrics.jsonl`.
pub fn read_gan_metrics(run: &RunDir) -> Result<Vec<GanEpochRecord>> {
    read_records(run)
}

/// `loss.png`: both networks' losses and D's mean verdicts, per epoch.
fn plot_gan(run: &RunDir) -> Result<()> {
    let recs = read_gan_metrics(run)?;
    let pts = |f: &dyn Fn(&GanEpochRecord) -> f64| -> Vec<(f64, f64)> {
        recs.iter().map(|r| (r.epoch as f64, f(r))).collect()
    };
    line_plot(
        &run.loss_plot(),
        "GAN training per epoch",
        "loss / D output",
        &[
            Series {
                label: "D loss",
                points: pts(&|r| r.d_loss),
            },
            Series {
                label: "G loss",
                points: pts(&|r| r.g_loss),
            },
            Series {
                label: "D(x)",
                points: pts(&|r| r.d_real),
            },
            Series {
                label: "D(G(z))",
                points: pts(&|r| r.d_fake),
            },
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    use crate::checkpoint::load_weights;
    use crate::models::{DcganConfig, ModelConfig};
    use crate::train::{Silent, train};

    fn small_cfg(epochs: usize) -> RunConfig {
        let mut c = RunConfig::preset("mnist-dcgan").expect("preset");
        if let ModelConfig::Dcgan(m) = &mut c.model {
            m.latent = 8;
            m.g_channels = vec![8, 16];
            m.d_channels = vec![8, 16];
        }
        c.train.epochs = epochs;
        c.train.batch_size = 16;
        c.train.max_train_images = 64;
        c.train.grid_images = 4;
        c
    }

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

    #[test]
    fn interrupted_resume_matches_uninterrupted() {
        let data = crate::data::embedded::mnist_10k().expect("embedded data");
        let d = Device::flex();
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = small_cfg(2);
        let no = AtomicBool::new(false);

        let a = RunDir::new(tmp.path().join("a"));
        train(&a, &cfg, false, &data, &d, &no, &mut Silent).expect("train a");
        let ra = read_gan_metrics(&a).expect("metrics a");
        assert_eq!(ra.len(), 2);
        assert!(a.samples(2).is_file() && a.loss_plot().is_file());
        assert!(ra.iter().all(|r| (0.0..=1.0).contains(&r.d_real)));

        // Stop after 6 of the 8 steps (4 per epoch), then resume to the end.
        let b = RunDir::new(tmp.path().join("b"));
        let stop = AtomicBool::new(false);
        let out =
            train(&b, &cfg, false, &data, &d, &stop, &mut StopAfter(6, &stop)).expect("train b");
        assert_eq!(out, Outcome::Interrupted { epoch: 2, step: 6 });
        train(&b, &cfg, true, &data, &d, &no, &mut Silent).expect("resume b");
        let rb = read_gan_metrics(&b).expect("metrics b");
        assert_eq!(rb.len(), 2);
        for (x, y) in ra.iter().zip(&rb) {
            assert_eq!(x.step, y.step);
            for (p, q) in [
                (x.d_loss, y.d_loss),
                (x.g_loss, y.g_loss),
                (x.d_fake, y.d_fake),
            ] {
                assert!((p - q).abs() < 1e-3, "{x:?} vs {y:?}");
            }
        }

        // The saved generator reloads and generates the same images.
        let ModelConfig::Dcgan(mc) = &cfg.model else {
            unreachable!("preset is a dcgan")
        };
        let ga: crate::models::Dcgan = load_weights(mc.init(&d), &a.weights()).expect("load a");
        let gb: crate::models::Dcgan =
            load_weights(DcganConfig { ..mc.clone() }.init(&d), &b.weights()).expect("load b");
        let z = standard_normal(&mut rng_for(0, stream::SAMPLE, 9), 3, 8, &d);
        let ya = ga
            .generate(z.clone())
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let yb = gb
            .generate(z)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let max = ya
            .iter()
            .zip(&yb)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(max < 1e-3, "max diff {max}");
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
        assert_eq!(r.load_state().expect("initial checkpoint kept").step, 0);
    }
}
