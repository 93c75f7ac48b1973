//! The model families, one file each, and what the training loop and the CLI need to treat them
//! alike.

pub mod autoencoder;
pub mod classifier;
pub mod dcgan;
pub mod espcn;
pub mod fsrcnn;
pub mod vae;
pub mod vae_gan;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use autoencoder::{AeLoss, Autoencoder, AutoencoderConfig};
pub use classifier::{Classifier, ClassifierConfig};
pub use dcgan::{Dcgan, DcganConfig};
pub use espcn::{Espcn, EspcnConfig};
pub use fsrcnn::{Fsrcnn, FsrcnnConfig};
pub use vae::{Vae, VaeConfig};
pub use vae_gan::{VaeGan, VaeGanConfig};

/// Decoder likelihood of a VAE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Likelihood {
    /// Bernoulli over pixels in `[0, 1]`: binary cross-entropy.
    Bernoulli,
    /// Gaussian with fixed variance: squared error.
    Gaussian,
}

/// A loss for one batch, and its per-image parts for logging.
pub struct Objective {
    /// The scalar to minimise (mean over the batch), `[1]`.
    pub loss: Tensor<1>,
    /// Reconstruction term per image, `[b]`.
    pub recon: Tensor<1>,
    /// KL term per image, `[b]` (VAEs only).
    pub kl: Option<Tensor<1>>,
}

/// The model part of a run's config: which family, and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelConfig {
    /// A plain autoencoder.
    Ae(AutoencoderConfig),
    /// A (beta-)VAE.
    Vae(VaeConfig),
    /// A DCGAN.
    Dcgan(DcganConfig),
    /// A VAE-GAN.
    VaeGan(VaeGanConfig),
    /// The feature classifier of the Fréchet distance.
    Classifier(ClassifierConfig),
}

impl ModelConfig {
    /// The family name as the CLI spells it (`ae`, `vae`).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelConfig::Ae(_) => "ae",
            ModelConfig::Vae(_) => "vae",
            ModelConfig::Dcgan(_) => "dcgan",
            ModelConfig::VaeGan(_) => "vae-gan",
            ModelConfig::Classifier(_) => "classifier",
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            ModelConfig::Ae(c) => c.validate(),
            ModelConfig::Vae(c) => c.validate(),
            ModelConfig::Dcgan(c) => c.validate(),
            ModelConfig::VaeGan(c) => c.validate(),
            ModelConfig::Classifier(c) => c.validate(),
        }
    }

    /// Sets the image shape (from the dataset).
    pub fn set_image(&mut self, shape: [usize; 3]) {
        match self {
            ModelConfig::Ae(c) => c.image = shape,
            ModelConfig::Vae(c) => c.image = shape,
            ModelConfig::Dcgan(c) => c.image = shape,
            ModelConfig::VaeGan(c) => c.vae.image = shape,
            ModelConfig::Classifier(c) => c.image = shape,
        }
    }

    /// The image shape `[c, h, w]`.
    pub fn image(&self) -> [usize; 3] {
        match self {
            ModelConfig::Ae(c) => c.image,
            ModelConfig::Vae(c) => c.image,
            ModelConfig::Dcgan(c) => c.image,
            ModelConfig::VaeGan(c) => c.vae.image,
            ModelConfig::Classifier(c) => c.image,
        }
    }

    /// Whether the family has an encoder (reconstruction, codes, ELBO).
    pub fn can_encode(&self) -> bool {
        matches!(
            self,
            ModelConfig::Ae(_) | ModelConfig::Vae(_) | ModelConfig::VaeGan(_)
        )
    }

    /// Whether the family generates images from z ~ N(0, I).
    pub fn can_generate(&self) -> bool {
        matches!(
            self,
            ModelConfig::Vae(_) | ModelConfig::Dcgan(_) | ModelConfig::VaeGan(_)
        )
    }
}

/// A model that turns noise z ~ N(0, I) into images: what `genlab sample`, `interpolate` and the
/// Fréchet distance need.
pub trait Generative: Module + Sized {
    /// Width of z.
    fn noise_dim(&self) -> usize;
    /// Images in `[0, 1]`.
    ///
    /// # Shapes
    /// `[b, noise_dim] -> [b, c, h, w]`
    fn generate(&self, z: Tensor<2>) -> Tensor<4>;
}

impl Generative for Vae {
    fn noise_dim(&self) -> usize {
        self.config.latent
    }
    fn generate(&self, z: Tensor<2>) -> Tensor<4> {
        self.decode(z)
    }
}

impl Generative for VaeGan {
    fn noise_dim(&self) -> usize {
        self.vae.config.latent
    }
    fn generate(&self, z: Tensor<2>) -> Tensor<4> {
        self.vae.decode(z)
    }
}

/// The VAE-GAN's encoder and decoder are a VAE's: it reconstructs, encodes and reports the
/// VAE's pixel -ELBO (the adversarial term has no likelihood meaning).
impl ImageModel for VaeGan {
    fn latent_dim(&self) -> usize {
        self.vae.config.latent
    }
    fn objective(&self, x: Tensor<4>, eps: Tensor<2>) -> Objective {
        self.vae.objective(x, eps)
    }
    fn encode_mean(&self, x: Tensor<4>) -> Tensor<2> {
        self.vae.encode(x).0
    }
    fn decode_mean(&self, z: Tensor<2>) -> Tensor<4> {
        self.vae.decode(z)
    }
    fn can_sample(&self) -> bool {
        true
    }
}

impl Generative for Dcgan {
    fn noise_dim(&self) -> usize {
        self.config.latent
    }
    fn generate(&self, z: Tensor<2>) -> Tensor<4> {
        Dcgan::generate(self, z)
    }
}

/// What the training loop and the commands need from a model family.
pub trait ImageModel: Module + Sized {
    /// Width of the latent / code vector.
    fn latent_dim(&self) -> usize;
    /// Loss on a batch in `[0, 1]`; `eps` is standard-normal noise `[b, latent]` (unused by
    /// deterministic models).
    fn objective(&self, x: Tensor<4>, eps: Tensor<2>) -> Objective;
    /// Deterministic encoding (a VAE's posterior mean).
    fn encode_mean(&self, x: Tensor<4>) -> Tensor<2>;
    /// Decoded images in `[0, 1]`.
    fn decode_mean(&self, z: Tensor<2>) -> Tensor<4>;
    /// Whether `decode_mean(z)` with `z ~ N(0, I)` is a meaningful sample.
    fn can_sample(&self) -> bool;
}

impl ImageModel for Vae {
    fn latent_dim(&self) -> usize {
        self.config.latent
    }
    fn objective(&self, x: Tensor<4>, eps: Tensor<2>) -> Objective {
        Vae::objective(self, x, eps)
    }
    fn encode_mean(&self, x: Tensor<4>) -> Tensor<2> {
        self.encode(x).0
    }
    fn decode_mean(&self, z: Tensor<2>) -> Tensor<4> {
        self.decode(z)
    }
    fn can_sample(&self) -> bool {
        true
    }
}

impl ImageModel for Autoencoder {
    fn latent_dim(&self) -> usize {
        self.config.code
    }
    fn objective(&self, x: Tensor<4>, _eps: Tensor<2>) -> Objective {
        Autoencoder::objective(self, x)
    }
    fn encode_mean(&self, x: Tensor<4>) -> Tensor<2> {
        self.encode(x)
    }
    fn decode_mean(&self, z: Tensor<2>) -> Tensor<4> {
        self.decode(z)
    }
    fn can_sample(&self) -> bool {
        false
    }
}

/// A super-resolution network: low-resolution Y in, high-resolution Y out.
pub trait SrNet: Module + Sized {
    /// The upscaling factor.
    fn scale(&self) -> usize;
    /// `[b, 1, h, w]` in [0, 1] -> `[b, 1, scale h, scale w]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4>;
    /// Low-resolution pixels beyond a tile's edge that affect its output (for seamless tiling).
    fn margin(&self) -> usize;
    /// Moves the gradients of the output layer (FSRCNN's transposed convolution, ESPCN's last
    /// convolution) out of `grads`, so the trainer can give that layer its own learning rate.
    fn take_output_grads(
        &self,
        grads: &mut burn::tensor::Gradients,
    ) -> burn::optim::GradientsParams;
}

/// The model part of a super-resolution run's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SrModelConfig {
    /// FSRCNN (transposed-convolution upsampler).
    Fsrcnn(FsrcnnConfig),
    /// ESPCN (sub-pixel upsampler).
    Espcn(EspcnConfig),
}

impl SrModelConfig {
    /// The family name (`fsrcnn`, `espcn`).
    pub fn kind(&self) -> &'static str {
        match self {
            SrModelConfig::Fsrcnn(_) => "fsrcnn",
            SrModelConfig::Espcn(_) => "espcn",
        }
    }

    /// The upscaling factor.
    pub fn scale(&self) -> usize {
        match self {
            SrModelConfig::Fsrcnn(c) => c.scale,
            SrModelConfig::Espcn(c) => c.scale,
        }
    }

    /// Sets the upscaling factor.
    pub fn set_scale(&mut self, scale: usize) {
        match self {
            SrModelConfig::Fsrcnn(c) => c.scale = scale,
            SrModelConfig::Espcn(c) => c.scale = scale,
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            SrModelConfig::Fsrcnn(c) => c.validate(),
            SrModelConfig::Espcn(c) => c.validate(),
        }
    }
}
