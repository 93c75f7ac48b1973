//! Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes") and
//! beta-VAE (Higgins et al. 2017). A Gaussian encoder `q(z|x) = N(mu, diag(exp(logvar)))`, the
//! reparameterization `z = mu + exp(logvar / 2) * eps` (Section 2.4), a Bernoulli or Gaussian
//! decoder, and the loss `-ELBO_beta = -log p(x|z) + beta * KL(q(z|x) || N(0, I))` with the KL in
//! closed form (Appendix B). The MLP default is pytorch/examples' 784-400-20.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use super::{Likelihood, Objective};
use crate::error::{Error, Result};
use crate::loss;
use crate::nn::ops::linear::linear;
use crate::nn::{Arch, BodyConfig, Decoder, Encoder};

/// `logvar` is clamped to this range before `exp`, so one bad batch cannot overflow to inf.
/// `exp(-30/2)` is a standard deviation of 3e-7, `exp(20/2)` one of 2e4: far outside anything a
/// trained model produces, so the clamp changes nothing in normal training.
pub(crate) const LOGVAR_RANGE: (f32, f32) = (-30.0, 20.0);

/// Configuration of a [`Vae`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaeConfig {
    /// `mlp` or `conv`.
    pub arch: Arch,
    /// MLP hidden widths (default `[400]`, pytorch/examples' VAE).
    pub hidden: Vec<usize>,
    /// Conv channels (default `[32, 64]`).
    pub channels: Vec<usize>,
    /// Batch norm in the conv decoder, as in DCGAN's generator (default off; the VAE-GAN's
    /// presets turn it on, where the decoder is also the generator).
    pub decoder_batch_norm: bool,
    /// Latent dimensions (default 20).
    pub latent: usize,
    /// Decoder likelihood: `bernoulli` (BCE) or `gaussian` (squared error).
    pub likelihood: Likelihood,
    /// Weight of the KL term: 1 is the VAE, > 1 the beta-VAE.
    pub beta: f64,
    /// Image shape `[c, h, w]`; set from the dataset when training.
    pub image: [usize; 3],
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Mlp,
            hidden: vec![400],
            channels: vec![32, 64],
            decoder_batch_norm: false,
            latent: 20,
            likelihood: Likelihood::Bernoulli,
            beta: 1.0,
            image: [1, 28, 28],
        }
    }
}

impl VaeConfig {
    /// The encoder/decoder body part of the config.
    pub fn body(&self) -> BodyConfig {
        BodyConfig {
            arch: self.arch,
            hidden: self.hidden.clone(),
            channels: self.channels.clone(),
            decoder_batch_norm: self.decoder_batch_norm,
            image: self.image,
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        self.body().validate("model")?;
        if self.latent == 0 {
            return Err(Error::config("model.latent", self.latent, "> 0"));
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(Error::config(
                "model.beta",
                self.beta,
                "a finite number >= 0",
            ));
        }
        Ok(())
    }

    /// Builds the model with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Vae {
        let body = self.body();
        let features = Encoder::out_features(&body);
        Vae {
            encoder: Encoder::new(&body, device),
            fc_mu: LinearConfig::new(features, self.latent).init(device),
            fc_logvar: LinearConfig::new(features, self.latent).init(device),
            decoder: Decoder::new(&body, self.latent, device),
            config: self.clone(),
        }
    }
}

/// A (beta-)VAE.
#[derive(Module, Debug)]
pub struct Vae {
    /// Image -> features.
    pub encoder: Encoder,
    /// Features -> `mu`.
    pub fc_mu: Linear,
    /// Features -> `logvar`.
    pub fc_logvar: Linear,
    /// `z` -> image logits.
    pub decoder: Decoder,
    /// The config the model was built from.
    #[module(skip)]
    pub config: VaeConfig,
}

impl Vae {
    /// The posterior parameters.
    ///
    /// # Shapes
    /// `[b, c, h, w] -> ([b, latent], [b, latent])`
    pub fn encode(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let f = self.encoder.forward(x); // [b, features]
        let mu = linear(&self.fc_mu, f.clone()); // [b, latent]
        let logvar = linear(&self.fc_logvar, f).clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1); // [b, latent]
        (mu, logvar)
    }

    /// Decoder logits.
    ///
    /// # Shapes
    /// `[b, latent] -> [b, c, h, w]`
    pub fn decode_logits(&self, z: Tensor<2>) -> Tensor<4> {
        self.decoder.forward(z)
    }

    /// The decoder's mean image in `[0, 1]`.
    ///
    /// # Shapes
    /// `[b, latent] -> [b, c, h, w]`
    pub fn decode(&self, z: Tensor<2>) -> Tensor<4> {
        sigmoid(self.decode_logits(z))
    }

    /// `z = mu + sigma * eps`, with `eps ~ N(0, I)` given by the caller (so the caller owns the RNG).
    ///
    /// # Shapes
    /// `[b, latent] x3 -> [b, latent]`
    pub fn reparameterize(mu: Tensor<2>, logvar: Tensor<2>, eps: Tensor<2>) -> Tensor<2> {
        mu + logvar.mul_scalar(0.5).exp() * eps
    }

    /// Per-image `-log p(x|z)` from decoder logits, in nats (Gaussian: up to a constant).
    ///
    /// # Shapes
    /// `[b, c, h, w], [b, c, h, w] -> [b]`
    pub fn reconstruction_nll(&self, logits: Tensor<4>, x: Tensor<4>) -> Tensor<1> {
        let (l, t) = (logits.flatten(1, 3), x.flatten(1, 3)); // [b, c*h*w]
        match self.config.likelihood {
            Likelihood::Bernoulli => loss::bce_with_logits(l, t),
            Likelihood::Gaussian => loss::squared_error(sigmoid(l), t),
        }
    }

    /// The beta-weighted negative ELBO with one posterior sample per image.
    ///
    /// # Shapes
    /// `x: [b, c, h, w]`, `eps: [b, latent]`
    pub fn objective(&self, x: Tensor<4>, eps: Tensor<2>) -> Objective {
        let (mu, logvar) = self.encode(x.clone());
        let kl = loss::kl_standard_normal(mu.clone(), logvar.clone()); // [b]
        let z = Self::reparameterize(mu, logvar, eps); // [b, latent]
        let recon = self.reconstruction_nll(self.decode_logits(z), x); // [b]
        let per_image = recon.clone() + kl.clone().mul_scalar(self.config.beta);
        Objective {
            loss: per_image.mean(),
            recon,
            kl: Some(kl),
        }
    }
}

loads_as!(VaeConfig, encoder_with_prior);

impl super::ModelKind for VaeConfig {
    fn num_params(&self) -> usize {
        self.init(&Device::flex()).num_params()
    }
    fn validate(&self) -> Result<()> {
        VaeConfig::validate(self)
    }
    fn image(&self) -> [usize; 3] {
        self.image
    }
    fn set_image(&mut self, shape: [usize; 3]) {
        self.image = shape;
    }
    fn can_encode(&self) -> bool {
        true
    }
    fn can_generate(&self) -> bool {
        true
    }
    fn supports_shards(&self) -> bool {
        // The conv decoder's batch norm normalises each shard with its own statistics.
        !(self.arch == crate::nn::Arch::Conv && self.decoder_batch_norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn shapes_for_mlp_and_conv() {
        for arch in [Arch::Mlp, Arch::Conv] {
            let cfg = VaeConfig {
                arch,
                latent: 16,
                ..VaeConfig::default()
            };
            cfg.validate().expect("default config is valid");
            let m = cfg.init(&device());
            let x = Tensor::<4>::zeros([3, 1, 28, 28], &device());
            let (mu, logvar) = m.encode(x.clone());
            assert_eq!(mu.dims(), [3, 16]);
            assert_eq!(logvar.dims(), [3, 16]);
            assert_eq!(m.decode(mu).dims(), [3, 1, 28, 28]);
            let o = m.objective(x, Tensor::zeros([3, 16], &device()));
            assert_eq!(o.recon.dims(), [3]);
        }
    }

    #[test]
    fn conv_needs_divisible_size() {
        let cfg = VaeConfig {
            arch: Arch::Conv,
            image: [1, 30, 30],
            ..VaeConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("divisible by 2^2 = 4"), "{err}");
    }

    #[test]
    fn eps_zero_gives_z_equal_mu() {
        let d = device();
        let mu = Tensor::<2>::from_floats([[1.0, -2.0]], &d);
        let lv = Tensor::<2>::from_floats([[0.3, 0.1]], &d);
        let z = Vae::reparameterize(mu.clone(), lv, Tensor::zeros([1, 2], &d));
        assert_eq!(z.into_data(), mu.into_data());
    }
}
