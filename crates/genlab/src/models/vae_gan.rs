//! VAE-GAN (Larsen, Sønderby, Larochelle & Winther 2016, "Autoencoding beyond pixels using a
//! learned similarity metric"). A [`Vae`] whose decoder doubles as the GAN's generator, and the
//! DCGAN [`Discriminator`]. The discriminator learns to tell real images from reconstructions
//! `Dec(Enc(x))` and from samples `Dec(z)`, z ~ N(0, I) (Eq. 9).
//!
//! Two recipes ([`VaeGanRecipe`]):
//! - `larsen` (the default), Algorithm 1 as the paper and its official code
//!   (andersbll/autoencoding_beyond_pixels) train it: the reconstruction error is measured in the
//!   discriminator's layer-l features (Eq. 7, [`Recon::Features`]), and each network has its own
//!   loss: encoder <- `beta KL + recon`, decoder <- `gamma recon + lambda GAN`, discriminator <-
//!   GAN only; all three are computed with the same discriminator and updated from one backward
//!   pass, and the equilibrium rule of the official code skips the discriminator's update when it
//!   is winning and the decoder's GAN update when it is losing badly.
//! - `joint`, genlab's first VAE-GAN: the encoder and decoder share `recon + beta KL + lambda
//!   GAN` (the GAN gradient reaches the encoder), pixels by default, the discriminator updated
//!   first. Runs saved before the Larsen recipe existed load as this.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Objective, Vae, VaeConfig};
use crate::error::{Error, Result};
use crate::loss::GanLoss;
use crate::models::dcgan::check_stack;
use crate::nn::gan::Discriminator;

/// How a VAE-GAN trains (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VaeGanRecipe {
    /// Larsen et al.'s Algorithm 1 (with the official code's balance rule when `balance`).
    Larsen,
    /// One loss for the encoder and decoder, the discriminator updated first.
    Joint,
}

/// Where the reconstruction error is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recon {
    /// In the discriminator's features (Eq. 7, `L_llike^Dis_l`): `larsen` reads conv layer
    /// `recon_layer` before its batch norm and takes a unit Gaussian there (half the squared
    /// error); `joint` keeps its first form, the squared error of the last conv's activations.
    Features,
    /// The decoder's pixel likelihood (the VAE's `-log p(x|z)`).
    Pixels,
}

/// Configuration of a [`VaeGan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredVaeGanConfig")]
pub struct VaeGanConfig {
    /// The VAE (encoder, decoder = generator, latent size, likelihood, beta).
    pub vae: VaeConfig,
    /// Discriminator channels, image side first; one stride-2 conv per entry.
    pub d_channels: Vec<usize>,
    /// Batch norm in the discriminator (all layers but the first).
    pub d_batch_norm: bool,
    /// Weight `lambda` of the adversarial term in the decoder's loss (and, in `joint`, the
    /// encoder's).
    pub adversarial_weight: f64,
    /// `non-saturating` or `hinge`.
    pub loss: GanLoss,
    /// One-sided label smoothing of the discriminator's real target.
    pub label_smoothing: f64,
    /// `larsen` or `joint`.
    pub recipe: VaeGanRecipe,
    /// `features` or `pixels`.
    pub recon: Recon,
    /// `larsen` with `features`: the discriminator conv layer (1-based) whose output before
    /// batch norm is the feature space. The official code uses a middle layer of a deep
    /// discriminator; genlab's small ones default to their last conv.
    pub recon_layer: usize,
    /// `larsen`: weight `gamma` of the reconstruction term in the decoder's loss (Eq. 9's
    /// `gamma L_llike + L_GAN`; the official code's `recon_vs_gan_weight`). Small because the
    /// feature error is summed over thousands of features while the GAN term is per image.
    pub gamma: f64,
    /// `larsen`: the equilibrium rule (official code, `margin_train`): skip the discriminator's
    /// update when its real or fake cross-entropy is below `equilibrium - margin` (it is
    /// winning), skip the decoder's GAN update when either is above `equilibrium + margin` (it
    /// is losing badly), and do both when both would be skipped. Off by default: on
    /// Fashion-MNIST at the 5-epoch compare budget it cost FD 380 against 245 without
    /// (BENCHMARKS.md, issue 18).
    pub balance: bool,
    /// `larsen`: the balance rule's centre, in nats (the official 0.68, about ln 2: D at chance).
    pub equilibrium: f64,
    /// `larsen`: the balance rule's margin, in nats (the official 0.35).
    pub margin: f64,
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
            recipe: VaeGanRecipe::Larsen,
            recon: Recon::Features,
            recon_layer: 2,
            gamma: 1e-2,
            balance: false,
            equilibrium: 0.68,
            margin: 0.35,
        }
    }
}

/// A VAE-GAN config as stored: today's fields, or one written before the Larsen recipe, which
/// has `feature_recon` and none of `recipe`, `recon`, `gamma`, `balance`, ... and trained with
/// the joint recipe.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredVaeGanConfig {
    #[serde(default = "default_vae")]
    vae: VaeConfig,
    #[serde(default = "default_d_channels")]
    d_channels: Vec<usize>,
    #[serde(default = "yes")]
    d_batch_norm: bool,
    #[serde(default = "one")]
    adversarial_weight: f64,
    #[serde(default)]
    loss: Option<GanLoss>,
    #[serde(default)]
    label_smoothing: f64,
    #[serde(default)]
    feature_recon: Option<bool>,
    #[serde(default)]
    recipe: Option<VaeGanRecipe>,
    #[serde(default)]
    recon: Option<Recon>,
    #[serde(default)]
    recon_layer: Option<usize>,
    #[serde(default)]
    gamma: Option<f64>,
    #[serde(default)]
    balance: Option<bool>,
    #[serde(default)]
    equilibrium: Option<f64>,
    #[serde(default)]
    margin: Option<f64>,
}

fn default_vae() -> VaeConfig {
    VaeGanConfig::default().vae
}
fn default_d_channels() -> Vec<usize> {
    VaeGanConfig::default().d_channels
}
fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}

impl From<StoredVaeGanConfig> for VaeGanConfig {
    fn from(s: StoredVaeGanConfig) -> Self {
        let d = VaeGanConfig::default();
        // A legacy config: `feature_recon` is its only recipe switch.
        let legacy = s.feature_recon.map(|f| {
            (
                VaeGanRecipe::Joint,
                if f { Recon::Features } else { Recon::Pixels },
            )
        });
        let (recipe, recon) = match legacy {
            Some((r, c)) => (s.recipe.unwrap_or(r), s.recon.unwrap_or(c)),
            None => (s.recipe.unwrap_or(d.recipe), s.recon.unwrap_or(d.recon)),
        };
        let layers = s.d_channels.len();
        Self {
            vae: s.vae,
            d_channels: s.d_channels,
            d_batch_norm: s.d_batch_norm,
            adversarial_weight: s.adversarial_weight,
            loss: s.loss.unwrap_or(d.loss),
            label_smoothing: s.label_smoothing,
            recipe,
            recon,
            recon_layer: s.recon_layer.unwrap_or(layers),
            gamma: s.gamma.unwrap_or(d.gamma),
            balance: s.balance.unwrap_or(d.balance),
            equilibrium: s.equilibrium.unwrap_or(d.equilibrium),
            margin: s.margin.unwrap_or(d.margin),
        }
    }
}

/// Checks the settings Larsen et al.'s recipe shares between the VAE-GAN and the conditional
/// VAE-GAN, each named under `prefix` (`model.` or `model.adversarial.`): the GAN weight
/// (`adversarial_weight`, or `weight` in the cVAE's table), the feature layer among `layers`
/// discriminator convs, and gamma.
pub(crate) fn check_larsen(
    prefix: &str,
    weight: f64,
    layers: usize,
    recon_layer: usize,
    gamma: f64,
) -> Result<()> {
    if !(weight.is_finite() && weight >= 0.0) {
        let key = if prefix == "model." {
            "adversarial_weight"
        } else {
            "weight"
        };
        return Err(Error::config(
            format!("{prefix}{key}"),
            weight,
            "a finite number >= 0",
        ));
    }
    if !(1..=layers).contains(&recon_layer) {
        return Err(Error::config(
            format!("{prefix}recon_layer"),
            recon_layer,
            format!("a discriminator conv layer, 1 to {layers} ({prefix}d_channels has {layers})"),
        ));
    }
    // 1e-12..1e6: gamma divides the reconstruction gradient on its way to the encoder.
    if !(gamma.is_finite() && (1e-12..=1e6).contains(&gamma)) {
        return Err(Error::config(
            format!("{prefix}gamma"),
            gamma,
            "a number from 1e-12 to 1e6",
        ));
    }
    Ok(())
}

impl VaeGanConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        self.vae.validate()?;
        check_stack("model.d_channels", &self.d_channels, self.vae.image)?;
        check_larsen(
            "model.",
            self.adversarial_weight,
            self.d_channels.len(),
            self.recon_layer,
            self.gamma,
        )?;
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return Err(Error::config(
                "model.label_smoothing",
                self.label_smoothing,
                "in [0, 0.5)",
            ));
        }
        for (key, v, range) in [
            ("model.equilibrium", self.equilibrium, 0.0..=10.0),
            ("model.margin", self.margin, 0.0..=10.0),
        ] {
            if !(v.is_finite() && range.contains(&v)) {
                return Err(Error::config(key, v, "a number from 0 to 10 (nats)"));
            }
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
    /// The joint recipe's VAE part of the encoder/decoder loss (adversarial term excluded)
    /// with its reconstructions.
    ///
    /// # Shapes
    /// `x: [b, c, h, w]`, `eps: [b, latent]` -> (objective, reconstructions `[b, c, h, w]` in [0, 1])
    pub fn vae_objective(&self, x: Tensor<4>, eps: Tensor<2>) -> (Objective, Tensor<4>) {
        let (mu, logvar) = self.vae.encode(x.clone());
        let kl = crate::loss::kl_standard_normal(mu.clone(), logvar.clone()); // [b]
        let z = Vae::reparameterize(mu, logvar, eps); // [b, latent]
        let logits = self.vae.decode_logits(z); // [b, c, h, w]
        let x_rec = burn::tensor::activation::sigmoid(logits.clone());
        let recon = if self.config.recon == Recon::Features {
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

loads_as!(VaeGanConfig, encoder_with_prior);

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
        for recon in [Recon::Pixels, Recon::Features] {
            let m = VaeGan {
                config: VaeGanConfig {
                    recon,
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

    /// A run saved before the Larsen recipe (its config has `feature_recon` and none of the new
    /// keys) loads as the joint recipe it trained with; a config without either gets the new
    /// defaults; and the round trip keeps every field.
    #[test]
    fn configs_written_before_the_larsen_recipe_load_as_joint() {
        let legacy = |fr: bool| {
            format!(
                "[model]\nkind = \"vae-gan\"\nd_channels = [64, 128]\nd_batch_norm = true\n\
                 adversarial_weight = 1.0\nloss = \"non-saturating\"\nlabel_smoothing = 0.0\n\
                 feature_recon = {fr}\n\n[model.vae]\narch = \"conv\"\nlatent = 16\n\n[train]\n\
                 dataset = \"mnist-10k\"\n"
            )
        };
        let model = |text: &str| match crate::config::RunConfig::from_toml(
            text,
            std::path::Path::new("config.toml"),
        )
        .expect("parses")
        .model
        {
            crate::models::ModelConfig::VaeGan(m) => m,
            other => panic!("{other:?}"),
        };
        let old = model(&legacy(false));
        assert_eq!(
            (old.recipe, old.recon),
            (VaeGanRecipe::Joint, Recon::Pixels)
        );
        let old = model(&legacy(true));
        assert_eq!(
            (old.recipe, old.recon),
            (VaeGanRecipe::Joint, Recon::Features)
        );
        let new = model("[model]\nkind = \"vae-gan\"\n[train]\n");
        assert_eq!(new, VaeGanConfig::default());
        let mut cfg = crate::config::RunConfig::preset("fashion-vae-gan").expect("preset");
        if let crate::models::ModelConfig::VaeGan(m) = &mut cfg.model {
            m.gamma = 3e-4;
            m.balance = !m.balance;
        }
        let back = crate::config::RunConfig::from_toml(
            &cfg.to_toml(),
            std::path::Path::new("config.toml"),
        )
        .expect("round trip");
        assert_eq!(back.model, cfg.model);
        for (field, bad) in [("recon_layer", "3"), ("gamma", "0.0"), ("margin", "-1.0")] {
            let text = format!("[model]\nkind = \"vae-gan\"\n{field} = {bad}\n[train]\n");
            let err = model(&text).validate().expect_err(field).to_string();
            assert!(err.contains(&format!("model.{field}")), "{err}");
        }
    }
}
