//! Conditional VAE (Sohn, Lee & Yan 2015, "Learning Structured Output Representation using Deep
//! Conditional Generative Models"): the VAE of [`super::vae`] with the class label `y` given to
//! the recognition network `q(z|x, y)`, the prior `p(z|y)` and the generation network
//! `p(x|z, y)`, and the loss `-ELBO = -log p(x|z, y) + beta * KL(q(z|x, y) || p(z|y))` (their
//! eq. 4, the label in the role of their input). The label enters as a one-hot vector: the MLP
//! encoder reads `[x, one-hot]`, the conv encoder the image with one constant plane per class
//! stacked on its channels; the decoder reads `[z, one-hot]`; the prior is `N(m_y, I)` with a
//! learned mean per class (zero at init, where it is the VAE's `N(0, I)`).
//!
//! Why the learned prior mean: with `p(z|y) = N(0, I)` the encoder, which sees the image, puts
//! the class into `z` as well (the cheaper path early in training), and a `z` drawn from the
//! prior then names some class of its own that the label must fight: on mnist-10k only 30% of
//! such samples were of the asked class after 10 epochs (BENCHMARKS.md). With `m_y`, the KL is
//! smallest where each class's codes sit, so a draw `m_y + eps` lands among codes of class `y`;
//! `eps` is the style, and one `eps` decoded in every class draws the same style in each.
//!
//! With `[model.adversarial]` the cVAE trains as a conditional VAE-GAN: Larsen et al.'s recipe
//! (see [`super::vae_gan`]) with the cGAN's projection discriminator (see [`super::cgan`]), which
//! judges reconstructions and prior samples of the batch's classes, so the decoder is pushed
//! towards images that are sharp *and* of their class. Why: on Fashion-MNIST the plain cVAE's
//! decoder blurs what tells a coat from a pullover, and even its reconstructions of training
//! coats are called coats a quarter of the time (BENCHMARKS.md, "Where the Fashion-MNIST cVAE's
//! label accuracy is lost").

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use super::cgan::{Conditioning, ProjectionDiscriminator};
use super::dcgan::check_stack;
use super::vae::Vae;
use super::vae_gan::{Recon, check_larsen};
use super::{Conditional, Generative, Likelihood, Objective, check_classes, classes_in_turn};
use crate::data::one_hot;
use crate::error::{Error, Result};
use crate::loss::{self, GanLoss};
use crate::nn::ops::linear::linear;
use crate::nn::{Arch, BodyConfig, ConvEncoder, Decoder, Encoder, Mlp};

/// `m_y` is this times the learned weights: Adam moves a weight by about its learning rate per
/// step, so the class means, which start at 0 and must travel the width of the code space,
/// get there this many times sooner than the other weights (a learning rate of their own).
const PRIOR_SCALE: f64 = 10.0;

/// Configuration of a [`Cvae`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CvaeConfig {
    /// `mlp` or `conv`.
    pub arch: Arch,
    /// MLP hidden widths (default `[400]`, as the VAE's).
    pub hidden: Vec<usize>,
    /// Conv channels (default `[32, 64]`).
    pub channels: Vec<usize>,
    /// Latent dimensions (default 20).
    pub latent: usize,
    /// Decoder likelihood: `bernoulli` (BCE) or `gaussian` (squared error).
    pub likelihood: Likelihood,
    /// Weight of the KL term (1 = the cVAE's ELBO).
    pub beta: f64,
    /// Batch norm between the decoder's layers (DCGAN's generator has it; the conditional
    /// VAE-GAN's presets turn it on).
    pub decoder_batch_norm: bool,
    /// The adversarial decoder loss of a conditional VAE-GAN; absent for the plain cVAE.
    pub adversarial: Option<CvaeAdversarial>,
    /// Class names, `classes[label]`; set from the dataset when training (default MNIST's digits).
    pub classes: Vec<String>,
    /// Image shape `[c, h, w]`; set from the dataset when training.
    pub image: [usize; 3],
}

impl Default for CvaeConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Mlp,
            hidden: vec![400],
            channels: vec![32, 64],
            latent: 20,
            likelihood: Likelihood::Bernoulli,
            beta: 1.0,
            decoder_batch_norm: false,
            adversarial: None,
            classes: crate::data::class_names(&crate::data::MNIST_CLASSES),
            image: [1, 28, 28],
        }
    }
}

/// The conditional VAE-GAN's part of a [`CvaeConfig`] (`[model.adversarial]`): Larsen et al.'s
/// recipe as [`super::VaeGanConfig`]'s `larsen` (without the balance rule, which cost the
/// VAE-GAN FD on Fashion-MNIST), the discriminator the cGAN's projection one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CvaeAdversarial {
    /// Discriminator channels, image side first; one stride-2 conv per entry.
    pub d_channels: Vec<usize>,
    /// Batch norm in the discriminator (all layers but the first).
    pub d_batch_norm: bool,
    /// Weight `lambda` of the GAN term in the decoder's loss.
    pub weight: f64,
    /// `non-saturating` or `hinge`.
    pub loss: GanLoss,
    /// Where the reconstruction error is measured: `features` (the discriminator's layer
    /// `recon_layer`, Larsen et al.'s Eq. 7) or `pixels` (the decoder's likelihood).
    pub recon: Recon,
    /// The discriminator conv layer (1-based) whose raw output is the feature space.
    pub recon_layer: usize,
    /// Weight `gamma` of the reconstruction term in the decoder's loss (the encoder sees it
    /// whole), as the VAE-GAN's.
    pub gamma: f64,
}

impl Default for CvaeAdversarial {
    fn default() -> Self {
        Self {
            d_channels: vec![64, 128],
            d_batch_norm: true,
            weight: 1.0,
            loss: GanLoss::NonSaturating,
            recon: Recon::Features,
            recon_layer: 2,
            gamma: 1e-2,
        }
    }
}

impl CvaeAdversarial {
    /// Checks every field against the image shape.
    pub fn validate(&self, image: [usize; 3]) -> Result<()> {
        check_stack("model.adversarial.d_channels", &self.d_channels, image)?;
        check_larsen(
            "model.adversarial.",
            self.weight,
            self.d_channels.len(),
            self.recon_layer,
            self.gamma,
        )
    }
}

impl CvaeConfig {
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
        check_classes(&self.classes)?;
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
        if let Some(a) = &self.adversarial {
            a.validate(self.image)?;
        }
        Ok(())
    }

    /// Builds the model with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Cvae {
        let body = self.body();
        let k = self.classes.len();
        // The VAE's encoder body, with the label's inputs added to its first layer.
        let (encoder, features) = match self.arch {
            Arch::Mlp => {
                let mut dims = vec![body.pixels() + k];
                dims.extend(&self.hidden);
                let features = *dims.last().expect("dims starts with the input");
                let mlp = Mlp::new(&dims, device);
                (
                    Encoder {
                        mlp: Some(mlp),
                        conv: None,
                    },
                    features,
                )
            }
            Arch::Conv => {
                let conv = ConvEncoder::new(self.image[0] + k, &self.channels, device);
                let encoder = Encoder {
                    mlp: None,
                    conv: Some(conv),
                };
                (encoder, Encoder::out_features(&body))
            }
        };
        Cvae {
            encoder,
            fc_mu: LinearConfig::new(features, self.latent).init(device),
            fc_logvar: LinearConfig::new(features, self.latent).init(device),
            decoder: Decoder::new(&body, self.latent + k, device),
            prior_mean: LinearConfig::new(k, self.latent)
                .with_bias(false)
                .with_initializer(Initializer::Zeros)
                .init(device),
            discriminator: self.adversarial.as_ref().map(|a| {
                ProjectionDiscriminator::new(
                    self.image,
                    &a.d_channels,
                    a.d_batch_norm,
                    k,
                    Conditioning::Projection,
                    device,
                )
            }),
            config: self.clone(),
        }
    }
}

/// A conditional VAE.
#[derive(Module, Debug)]
pub struct Cvae {
    /// `(image, one-hot)` -> features.
    pub encoder: Encoder,
    /// Features -> `mu`.
    pub fc_mu: Linear,
    /// Features -> `logvar`.
    pub fc_logvar: Linear,
    /// `[z, one-hot]` -> image logits.
    pub decoder: Decoder,
    /// One-hot -> `m_y`, the mean of the prior `p(z|y) = N(m_y, I)`.
    pub prior_mean: Linear,
    /// The conditional VAE-GAN's projection discriminator (`None` for the plain cVAE).
    pub discriminator: Option<ProjectionDiscriminator>,
    /// The config the model was built from.
    #[module(skip)]
    pub config: CvaeConfig,
}

impl Cvae {
    /// The posterior parameters given the label.
    ///
    /// # Shapes
    /// `[b, c, h, w], [b, classes] -> ([b, latent], [b, latent])`
    pub fn encode(&self, x: Tensor<4>, y: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let f = match (&self.encoder.mlp, &self.encoder.conv) {
            // [b, c*h*w + classes] -> [b, hidden_n]
            (Some(m), _) => m.forward(Tensor::cat(vec![x.flatten(1, 3), y], 1)),
            // [b, c + classes, h, w] -> [b, features]
            (None, Some(c)) => c.forward(super::cgan::with_planes(x, y)),
            (None, None) => unreachable!("the encoder is built with exactly one body"),
        };
        let mu = linear(&self.fc_mu, f.clone()); // [b, latent]
        let logvar = linear(&self.fc_logvar, f)
            .clamp(super::vae::LOGVAR_RANGE.0, super::vae::LOGVAR_RANGE.1); // [b, latent]
        (mu, logvar)
    }

    /// The prior's mean for each row's class.
    ///
    /// # Shapes
    /// `[b, classes] -> [b, latent]`
    pub fn prior_mean(&self, y: Tensor<2>) -> Tensor<2> {
        self.prior_mean.forward(y).mul_scalar(PRIOR_SCALE)
    }

    /// Decoder logits given the label.
    ///
    /// # Shapes
    /// `[b, latent], [b, classes] -> [b, c, h, w]`
    pub fn decode_logits(&self, z: Tensor<2>, y: Tensor<2>) -> Tensor<4> {
        self.decoder.forward(Tensor::cat(vec![z, y], 1)) // [b, latent + classes] -> image
    }

    /// The decoder's mean image in `[0, 1]`.
    ///
    /// # Shapes
    /// `[b, latent], [b, classes] -> [b, c, h, w]`
    pub fn decode(&self, z: Tensor<2>, y: Tensor<2>) -> Tensor<4> {
        sigmoid(self.decode_logits(z, y))
    }

    /// Deterministic reconstructions given the labels: the decoder's mean at the posterior mean.
    ///
    /// # Shapes
    /// `[b, c, h, w], [b, classes] -> [b, c, h, w]`
    pub fn reconstruct(&self, x: Tensor<4>, y: Tensor<2>) -> Tensor<4> {
        let (mu, _) = self.encode(x, y.clone());
        self.decode(mu, y)
    }

    /// The beta-weighted negative ELBO given the labels, one posterior sample per image.
    ///
    /// # Shapes
    /// `x: [b, c, h, w]`, `y: [b, classes]` (one-hot), `eps: [b, latent]`
    pub fn objective(&self, x: Tensor<4>, y: Tensor<2>, eps: Tensor<2>) -> Objective {
        let (mu, logvar) = self.encode(x.clone(), y.clone());
        // KL(N(mu, s) || N(m_y, I)) is KL(N(mu - m_y, s) || N(0, I)).
        let shifted = mu.clone() - self.prior_mean(y.clone()); // [b, latent]
        let kl = loss::kl_standard_normal(shifted, logvar.clone()); // [b]
        let z = Vae::reparameterize(mu, logvar, eps); // [b, latent]
        let recon = self.reconstruction_nll(self.decode_logits(z, y), x); // [b]
        let per_image = recon.clone() + kl.clone().mul_scalar(self.config.beta);
        Objective {
            loss: per_image.mean(),
            recon,
            kl: Some(kl),
        }
    }
}

impl Cvae {
    /// `-log p(x|z, y)` per image from the decoder's logits, under the configured likelihood.
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
}

impl Generative for Cvae {
    fn noise_dim(&self) -> usize {
        self.config.latent
    }
    /// Every class in turn: row `i` is class `i mod classes`.
    fn generate(&self, z: Tensor<2>) -> Tensor<4> {
        let labels = classes_in_turn(z.dims()[0], self.config.classes.len());
        self.generate_given(z, &labels)
    }
}

impl Conditional for Cvae {
    fn class_names(&self) -> &[String] {
        &self.config.classes
    }
    /// `z` is standard normal: the draw from `p(z|y)` is `m_y + z`.
    fn generate_given(&self, z: Tensor<2>, labels: &[usize]) -> Tensor<4> {
        let y = one_hot(labels, self.config.classes.len(), &z.device());
        self.decode(z + self.prior_mean(y.clone()), y)
    }
    fn has_encoder(&self) -> bool {
        true
    }
    /// The style `mu - m_y`: what `generate_given` draws from `N(0, I)`.
    fn encode_given(&self, x: Tensor<4>, labels: &[usize]) -> Option<Tensor<2>> {
        let y = one_hot(labels, self.config.classes.len(), &x.device());
        Some(self.encode(x, y.clone()).0 - self.prior_mean(y))
    }
}

loads_as!(CvaeConfig, conditional);

impl super::ModelKind for CvaeConfig {
    fn num_params(&self) -> usize {
        self.init(&Device::flex()).num_params()
    }
    fn validate(&self) -> Result<()> {
        CvaeConfig::validate(self)
    }
    fn image(&self) -> [usize; 3] {
        self.image
    }
    fn set_image(&mut self, shape: [usize; 3]) {
        self.image = shape;
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn set_classes(&mut self, names: &[String]) {
        self.classes = names.to_vec();
    }
    fn can_generate(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_for_mlp_and_conv() {
        let d = Device::flex();
        for arch in [Arch::Mlp, Arch::Conv] {
            let cfg = CvaeConfig {
                arch,
                latent: 8,
                ..CvaeConfig::default()
            };
            cfg.validate().expect("default config is valid");
            let m = cfg.init(&d);
            let x = Tensor::<4>::zeros([3, 1, 28, 28], &d);
            let y = one_hot(&[0, 4, 9], 10, &d);
            let (mu, logvar) = m.encode(x.clone(), y.clone());
            assert_eq!((mu.dims(), logvar.dims()), ([3, 8], [3, 8]));
            assert_eq!(m.decode(mu, y.clone()).dims(), [3, 1, 28, 28]);
            let o = m.objective(x, y, Tensor::zeros([3, 8], &d));
            assert_eq!(o.recon.dims(), [3]);
            assert_eq!(m.generate(Tensor::zeros([4, 8], &d)).dims(), [4, 1, 28, 28]);
        }
    }

    /// The label reaches the decoder: the same `z` with two labels decodes to two images.
    #[test]
    fn the_label_changes_the_image() {
        let d = Device::flex();
        let m = CvaeConfig::default().init(&d);
        let z = Tensor::<2>::zeros([2, 20], &d);
        let x = m.generate_given(z, &[1, 7]);
        let a = x.clone().narrow(0, 0, 1);
        let b = x.narrow(0, 1, 1);
        let diff: f32 = (a - b).abs().sum().into_scalar();
        assert!(diff > 1e-3, "labels 1 and 7 decoded alike ({diff})");
    }

    /// A config written before `[model.adversarial]` existed loads as the plain cVAE (no
    /// discriminator); the conditional VAE-GAN preset loads with one, its discriminator a
    /// projection one; a bad adversarial field is a config error naming it.
    #[test]
    fn adversarial_table_is_optional_and_checked() {
        let d = Device::flex();
        let plain: CvaeConfig = toml::from_str("arch = \"mlp\"\nlatent = 4\n").expect("old config");
        assert!(plain.adversarial.is_none() && !plain.decoder_batch_norm);
        assert!(plain.init(&d).discriminator.is_none());
        let run = crate::config::RunConfig::preset("fashion-cvae-gan").expect("preset");
        let crate::models::ModelConfig::Cvae(cfg) = run.model else {
            panic!("fashion-cvae-gan is a cvae preset")
        };
        cfg.validate().expect("the preset is valid");
        let m = cfg.init(&d);
        assert!(
            m.discriminator
                .as_ref()
                .expect("a discriminator")
                .embed
                .is_some()
        );
        let mut bad = cfg.clone();
        if let Some(a) = bad.adversarial.as_mut() {
            a.recon_layer = 3;
        }
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("model.adversarial.recon_layer"), "{e}");
        let e = toml::from_str::<CvaeConfig>("[adversarial]\nwieght = 1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("wieght"), "{e}");
    }

    #[test]
    fn too_few_classes_is_a_config_error() {
        let cfg = CvaeConfig {
            classes: vec!["only".into()],
            ..CvaeConfig::default()
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("model.classes"), "{e}");
    }
}
