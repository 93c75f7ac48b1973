//! The class-conditional families: the conditional VAE ([`CondVae`]) and the conditional DCGAN
//! ([`CondGan`]). Each step reads the batch's labels as well as its images. Their epoch records
//! are the unconditional families' ([`EpochRecord`], [`GanEpochRecord`]), so `metrics.jsonl`,
//! `loss.png` and the progress line read the same; their sample grids have one row per class,
//! the same fixed noise in every row, so a row shows its class and a column one style.

use burn::module::ParamGroup;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::cvae_gan::cvae_gan_step;
use super::family::{At, EpochEnd, Family, Step, finite, scalar};
use super::gan::GanEpochRecord;
use super::recon::{AdversarialParts, EpochRecord};
use super::source::{Batch, BatchSource};
use crate::config::{RunConfig, TrainConfig};
use crate::data::{ImageSet, batch_labels, batch_tensor, one_hot};
use crate::error::{Error, Result};
use crate::image_io::{interleave_rows, save_grid};
use crate::metrics::evaluate_conditional;
use crate::models::dcgan::to_tanh;
use crate::models::{Cgan, Conditional, Cvae, class_sheet};
use crate::optim::{adam, adam_per_network};
use crate::rng::{rng_for, standard_normal, stream};

/// Columns of an epoch's class sheet: one fixed noise vector each.
pub const SHEET_COLS: usize = 8;

/// The error for a conditional family (`kind`) given a dataset without labels.
pub(crate) fn needs_labels(kind: &str, dataset: &str) -> Error {
    Error::config(
        "train.dataset (--dataset)",
        dataset,
        format!(
            "a labelled dataset for a conditional {kind}: mnist-10k, mnist, fashion-mnist, \
             cifar10, or a folder with one sub-folder per class"
        ),
    )
}

/// What both conditional families hold: the training settings, the splits and the class count.
struct Labelled {
    kind: &'static str,
    t: TrainConfig,
    train: ImageSet,
    test: ImageSet,
    classes: usize,
    device: Device,
}

impl Labelled {
    /// Refuses a split without labels before anything is written: a conditional model learns
    /// nothing without them.
    fn new(cfg: &RunConfig, train: ImageSet, test: ImageSet, device: &Device) -> Result<Self> {
        if train.labels.is_none() || test.labels.is_none() {
            return Err(needs_labels(cfg.model.kind(), &cfg.train.dataset));
        }
        Ok(Self {
            kind: cfg.model.kind(),
            t: cfg.train.clone(),
            train,
            test,
            classes: cfg.model.classes().len(),
            device: device.clone(),
        })
    }

    fn source(&self) -> BatchSource<'_> {
        BatchSource::Shuffled {
            set: &self.train,
            batch_size: self.t.batch_size,
            seed: self.t.seed,
        }
    }

    /// A batch's images in [0, 1] and its labels, one-hot.
    ///
    /// # Shapes
    /// `-> ([b, c, h, w], [b, classes])`
    fn tensors(&self, batch: &Batch<'_>) -> Result<(Tensor<4>, Tensor<2>)> {
        let (set, idx) = batch.images();
        let labels = batch_labels(set, idx, self.classes)?;
        Ok((
            batch_tensor(set, idx, &self.device),
            one_hot(&labels, self.classes, &self.device),
        ))
    }

    /// The epoch's class sheet from fixed noise (the same every epoch).
    fn save_sheet<G: Conditional>(&self, model: &G, end: &EpochEnd<'_>) -> Result<()> {
        let z = standard_normal(
            &mut rng_for(self.t.seed, stream::SAMPLE, 0),
            SHEET_COLS,
            model.noise_dim(),
            end.device,
        );
        save_grid(
            class_sheet(model, z, None),
            SHEET_COLS,
            &end.run.samples(end.epoch),
        )
    }
}

/// The conditional VAE family: minimise the -ELBO given the label with Adam; every epoch,
/// evaluate on the test split given its labels, draw the class sheet and reconstructions.
pub struct CondVae(Labelled);

impl CondVae {
    /// The family for `cfg`; an error when the splits have no labels.
    pub fn new(cfg: &RunConfig, train: ImageSet, test: ImageSet, device: &Device) -> Result<Self> {
        Labelled::new(cfg, train, test, device).map(Self)
    }
}

impl Family for CondVae {
    type Model = Cvae;
    type Record = EpochRecord;

    fn kind(&self) -> &'static str {
        self.0.kind
    }

    fn optimizer(&self, _: &Cvae) -> ModuleOptimizer {
        adam(self.0.t.betas, self.0.t.eps)
    }

    fn source(&self) -> BatchSource<'_> {
        self.0.source()
    }

    fn step(
        &self,
        model: Cvae,
        optim: &mut ModuleOptimizer,
        batch: Batch<'_>,
        at: At,
    ) -> Result<(Cvae, Step)> {
        let t = &self.0.t;
        let (x, y) = self.0.tensors(&batch)?; // [b, c, h, w], [b, classes]
        let b = x.dims()[0];
        let mut rng = rng_for(t.seed, stream::TRAIN_NOISE, at.step as u64);
        let eps = standard_normal(&mut rng, b, model.config.latent, &self.0.device);
        let mut model = model;
        // A conditional VAE-GAN: its discriminator is taken out for the step and put back by it.
        if let Some(a) = model.config.adversarial.clone()
            && let Some(d) = model.discriminator.take()
        {
            // The conditional VAE-GAN: prior noise for the batch's classes too.
            let z_p = standard_normal(&mut rng, b, model.config.latent, &self.0.device);
            let (model, s) = cvae_gan_step(model, d, &a, optim, x, y, eps, z_p, t.lr, at)?;
            let loss = (s.pixel_nll_sum + model.config.beta * s.kl_sum) / b as f64;
            let sums = vec![
                ("loss", loss * b as f64),
                ("recon", s.pixel_nll_sum),
                ("kl", s.kl_sum),
                ("adv_recon", s.recon_sum),
                ("d_loss", s.d_loss * b as f64),
                ("g_loss", s.g_loss * b as f64),
                ("d_real", s.d_real_sum),
                ("d_fake", s.d_fake_sum),
                ("d_recon", s.d_recon_sum),
            ];
            let step = Step {
                loss,
                images: b,
                sums,
            };
            return Ok((model, step));
        }
        let obj = model.objective(x, y, eps);
        let loss = finite(scalar(obj.loss.clone()), "", at)?;
        let recon = scalar(obj.recon.sum());
        let kl = obj.kl.map_or(0.0, |k| scalar(k.sum()));
        let grads = GradientsParams::from_grads(obj.loss.backward(), &model);
        let model = optim.step(t.lr, model, grads);
        let sums = vec![("loss", loss * b as f64), ("recon", recon), ("kl", kl)];
        Ok((
            model,
            Step {
                loss,
                images: b,
                sums,
            },
        ))
    }

    fn summarize(&self, model: &Cvae, end: &EpochEnd<'_>) -> Result<EpochRecord> {
        let (t, test) = (&self.0.t, &self.0.test);
        let report = evaluate_conditional(model, test, t.batch_size.max(256), t.seed, end.device)?;
        let at = At {
            epoch: end.epoch - 1,
            step: end.step,
        };
        finite(report.loss, "test loss", at)?;
        self.0.save_sheet(model, end)?;
        save_conditional_reconstructions(
            model,
            test,
            t.grid_images,
            &end.run.reconstructions(end.epoch),
            end.device,
        )?;
        Ok(EpochRecord {
            epoch: end.epoch,
            step: end.step,
            train_loss: end.sums.mean("loss"),
            train_recon: end.sums.mean("recon"),
            train_kl: end.sums.mean("kl"),
            test: report,
            adversarial: model.discriminator.as_ref().map(|_| {
                let p = end.sums;
                AdversarialParts {
                    d_loss: p.mean("d_loss"),
                    g_loss: p.mean("g_loss"),
                    d_real: p.mean("d_real"),
                    d_fake: p.mean("d_fake"),
                    d_recon: p.mean("d_recon"),
                    train_recon: p.mean("adv_recon"),
                }
            }),
            images_per_sec: end.images_per_sec,
            elapsed_secs: end.elapsed_secs,
        })
    }
}

/// The first test images above their reconstructions given their labels, as a PNG grid.
pub fn save_conditional_reconstructions(
    model: &Cvae,
    test: &ImageSet,
    n: usize,
    path: &std::path::Path,
    d: &Device,
) -> Result<()> {
    let k = n.min(test.len()) / 2;
    if k == 0 {
        return Ok(());
    }
    let classes = model.config.classes.len();
    let idx: Vec<usize> = (0..k).collect();
    let x = batch_tensor(test, &idx, d); // [k, c, h, w]
    let y = one_hot(&batch_labels(test, &idx, classes)?, classes, d);
    let cols = super::recon::grid_cols(n);
    save_grid(
        interleave_rows(x.clone(), model.reconstruct(x, y), cols),
        cols,
        path,
    )
}

/// The conditional DCGAN family: update D on real and generated images of the batch's classes,
/// then G, with an Adam per network; every epoch, draw the class sheet.
pub struct CondGan(Labelled);

impl CondGan {
    /// The family for `cfg`; an error when the splits have no labels.
    pub fn new(cfg: &RunConfig, train: ImageSet, test: ImageSet, device: &Device) -> Result<Self> {
        Labelled::new(cfg, train, test, device).map(Self)
    }
}

impl Family for CondGan {
    type Model = Cgan;
    type Record = GanEpochRecord;

    fn kind(&self) -> &'static str {
        self.0.kind
    }

    fn folders(&self) -> &'static [&'static str] {
        &["samples"]
    }

    fn optimizer(&self, model: &Cgan) -> ModuleOptimizer {
        let g = ParamGroup::ids_from_module(model.generator.clone());
        adam_per_network(self.0.t.betas, self.0.t.eps, g)
    }

    fn source(&self) -> BatchSource<'_> {
        self.0.source()
    }

    fn step(
        &self,
        mut gan: Cgan,
        optim: &mut ModuleOptimizer,
        batch: Batch<'_>,
        at: At,
    ) -> Result<(Cgan, Step)> {
        let t = &self.0.t;
        let (x, y) = self.0.tensors(&batch)?; // [b, c, h, w], [b, classes]
        let b = x.dims()[0];
        let x = to_tanh(x); // [b, c, h, w] in [-1, 1]
        let mut rng = rng_for(t.seed, stream::TRAIN_NOISE, at.step as u64);
        let z = standard_normal(&mut rng, b, gan.config.latent, &self.0.device); // [b, latent]
        let (loss, real_target) = (gan.config.loss, gan.config.real_target());

        // (1) update D: real images of their classes towards "real", G(z, y) for the same
        // classes (detached: no G gradient) towards "fake".
        let fake = gan.generate_tanh(z, y.clone()); // [b, c, h, w]
        let real_logit = gan.discriminator.forward(x, y.clone()); // [b, 1]
        let fake_logit = gan.discriminator.forward(fake.clone().detach(), y.clone()); // [b, 1]
        let d_loss_t = loss
            .discriminator(real_logit.clone(), fake_logit.clone(), real_target)
            .mean();
        let d_loss = finite(scalar(d_loss_t.clone()), "discriminator loss", at)?;
        let grads = GradientsParams::from_grads(d_loss_t.backward(), &gan.discriminator);
        gan.discriminator = optim.step(t.lr, gan.discriminator, grads);

        // (2) update G: the updated D's verdict on the same images and classes, pushed towards
        // "real" (D untracked, as in the DCGAN's step: its gradients would be thrown away).
        let g_loss_t = loss
            .generator(gan.discriminator.clone().no_grad().forward(fake, y))
            .mean();
        let g_loss = finite(scalar(g_loss_t.clone()), "generator loss", at)?;
        let grads = GradientsParams::from_grads(g_loss_t.backward(), &gan.generator);
        gan.generator = optim.step(t.lr, gan.generator, grads);

        let step = Step {
            loss: d_loss + g_loss,
            images: b,
            sums: vec![
                ("d_loss", d_loss * b as f64),
                ("g_loss", g_loss * b as f64),
                ("d_real", scalar(sigmoid(real_logit).sum())),
                ("d_fake", scalar(sigmoid(fake_logit).sum())),
            ],
        };
        Ok((gan, step))
    }

    fn summarize(&self, model: &Cgan, end: &EpochEnd<'_>) -> Result<GanEpochRecord> {
        self.0.save_sheet(model, end)?;
        let p = end.sums;
        Ok(GanEpochRecord {
            epoch: end.epoch,
            step: end.step,
            d_loss: p.mean("d_loss"),
            g_loss: p.mean("g_loss"),
            d_real: p.mean("d_real"),
            d_fake: p.mean("d_fake"),
            vae: None,
            images_per_sec: end.images_per_sec,
            elapsed_secs: end.elapsed_secs,
        })
    }
}
