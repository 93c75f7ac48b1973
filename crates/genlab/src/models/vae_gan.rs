//! VAE-GAN (Larsen, Sønderby, Larochelle & Winther 2016, "Autoencoding beyond pixels using a
//! learned similarity metric"). A [`Vae`] whose decoder doubles as the GAN's generator, and the
//! DCGAN [`Discriminator`]. The discriminator learns to tell real images from reconstructions
//! `Dec(Enc(x))` and from samples `Dec(z)`, z ~ N(0, I) (Eq. 9); the encoder and decoder minimise
//! `recon + beta * KL + lambda * adversarial`. With `feature_recon` the reconstruction term is the
//! paper's feature-wise one (Section 2.2, Eq. 7): squared error between the discriminator's
//! last-conv activations of `x` and of its reconstruction, instead of the pixel likelihood.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Objective, Vae, VaeConfig};
use crate::error::{Error, Result};
use crate::loss::GanLoss;
use crate::models::dcgan::check_stack;
use crate::nn::gan::Discriminator;

/// Configuration of a [`VaeGan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaeGanConfig {
    /// The VAE (encoder, decoder = generator, latent size, likelihood, beta).
    pub vae: VaeConfig,
    /// Discriminator channels, image side first; one stride-2 conv per entry.
    pub d_channels: Vec<usize>,
    /// Batch norm in the discriminator (all layers but the first).
    pub d_batch_norm: bool,
    /// Weight `lambda` of the adversarial term in the encoder/decoder loss.
    pub adversarial_weight: f64,
    /// `non-saturating` or `hinge`.
    pub loss: GanLoss,
    /// One-sided label smoothing of the discriminator's real target.
    pub label_smoothing: f64,
    /// Reconstruct in the discriminator's feature space (Larsen et al.'s `L_llike^Dis_l`)
    /// instead of pixels.
    pub feature_recon: bool,
}

impl Default for VaeGanConfig {
    fn default() -> Self {
        Self {
            vae: VaeConfig {
                arch: crate::nn::Arch::Conv,
                latent: 16,
                ..VaeConfig::default()
            },
            d_channels: vec![64, 128],
            d_batch_norm: true,
            adversarial_weight: 1.0,
            loss: GanLoss::NonSaturating,
            label_smoothing: 0.0,
            feature_recon: false,
        }
    }
}

impl VaeGanConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        self.vae.validate()?;
        check_stack("model.d_channels", &self.d_channels, self.vae.image)?;
        if !(self.adversarial_weight.is_finite() && self.adversarial_weight >= 0.0) {
            return Err(Error::config(
                "model.adversarial_weight",
                self.adversarial_weight,
                "a finite number >= 0",
            ));
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return Err(Error::config(
                "model.label_smoothing",
                self.label_smoothing,
                "in [0, 0.5)",
            ));
        }
        Ok(())
    }

    /// The discriminator's target for real images.
    pub fn real_target(&self) -> f64 {
        1.0 - self.label_smoothing
    }

    /// Builds the model with freshly initialised weights.
    pub fn init(&self, device: &Device) -> VaeGan {
        VaeGan {
            vae: self.vae.init(device),
            discriminator: Discriminator::new(
                self.vae.image,
                &self.d_channels,
                self.d_batch_norm,
                device,
            ),
            config: self.clone(),
        }
    }
}

/// A VAE-GAN: saved as `vae.*` (loadable as a plain VAE) and `discriminator.*`.
#[derive(Module, Debug)]
pub struct VaeGan {
    /// Encoder and decoder (the generator).
    pub vae: Vae,
    /// Image -> realness logit.
    pub discriminator: Discriminator,
    /// The config the model was built from.
    #[module(skip)]
    pub config: VaeGanConfig,
}

impl VaeGan {
    /// The VAE part of the encoder/decoder loss (adversarial term excluded) with its
    /// reconstructions, for the training step.
    ///
    /// # Shapes
    /// `x: [b, c, h, w]`, `eps: [b, latent]` -> (objective, reconstructions `[b, c, h, w]` in [0, 1])
    pub fn vae_objective(&self, x: Tensor<4>, eps: Tensor<2>) -> (Objective, Tensor<4>) {
        let (mu, logvar) = self.vae.encode(x.clone());
        let kl = crate::loss::kl_standard_normal(mu.clone(), logvar.clone()); // [b]
        let z = Vae::reparameterize(mu, logvar, eps); // [b, latent]
        let logits = self.vae.decode_logits(z); // [b, c, h, w]
        let x_rec = burn::tensor::activation::sigmoid(logits.clone());
        let recon = if self.config.feature_recon {
            // Eq. 7: a Gaussian in D's feature space; the real image's features are the target.
            let (_, f_real) = self
                .discriminator
                .forward_features(super::dcgan::to_tanh(x));
            let (_, f_rec) = self
                .discriminator
                .forward_features(super::dcgan::to_tanh(x_rec.clone()));
            crate::loss::squared_error(f_rec, f_real.detach()) // [b]
        } else {
            self.vae.reconstruction_nll(logits, x) // [b]
        };
        let per_image = recon.clone() + kl.clone().mul_scalar(self.vae.config.beta);
        (
            Objective {
                loss: per_image.mean(),
                recon,
                kl: Some(kl),
            },
            x_rec,
        )
    }
}

impl super::ModelKind for VaeGanConfig {
    fn num_params(&self) -> usize {
        self.init(&Device::flex()).num_params()
    }
    fn validate(&self) -> Result<()> {
        VaeGanConfig::validate(self)
    }
    fn image(&self) -> [usize; 3] {
        self.vae.image
    }
    fn set_image(&mut self, shape: [usize; 3]) {
        self.vae.image = shape;
    }
    fn can_encode(&self) -> bool {
        true
    }
    fn can_generate(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_weight_names_reuse_the_vae() {
        let d = Device::flex();
        let cfg = VaeGanConfig::default();
        cfg.validate().expect("valid");
        let m = cfg.init(&d);
        let x = Tensor::<4>::zeros([2, 1, 28, 28], &d);
        for feature_recon in [false, true] {
            let m = VaeGan {
                config: VaeGanConfig {
                    feature_recon,
                    ..cfg.clone()
                },
                ..m.clone()
            };
            let (o, rec) = m.vae_objective(x.clone(), Tensor::zeros([2, 16], &d));
            assert_eq!(o.recon.dims(), [2]);
            assert_eq!(rec.dims(), [2, 1, 28, 28]);
        }
        let bad = VaeGanConfig {
            d_channels: vec![8, 8, 8],
            ..VaeGanConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("2^3"));
    }
}
