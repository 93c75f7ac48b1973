//! The model families, one file each, and what the training loop and the CLI need to treat them
//! alike.

/// `loads_as!(Config, method)`: the config's [`LoadModel`], which hands its loaded model to the
/// visitor's `method` (`encoder_with_prior`, `encoder`, `generator`, `conditional`,
/// `classifier`). One line in each model's file.
macro_rules! loads_as {
    ($cfg:ty, $method:ident) => {
        impl $crate::models::LoadModel for $cfg {
            fn load<T>(
                &self,
                device: &::burn::prelude::Device,
                weights: &std::path::Path,
                v: impl $crate::models::ModelVisitor<T>,
            ) -> $crate::error::Result<T> {
                Ok(v.$method($crate::checkpoint::load_weights(
                    self.init(device),
                    weights,
                )?))
            }
        }
    };
}

pub mod autoencoder;
pub mod cgan;
pub mod classifier;
pub mod cvae;
pub mod dcgan;
pub mod espcn;
pub mod fsrcnn;
pub mod vae;
pub mod vae_gan;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use autoencoder::{AeLoss, Autoencoder, AutoencoderConfig};
pub use cgan::{Cgan, CganConfig, Conditioning};
pub use classifier::{Classifier, ClassifierConfig};
pub use cvae::{Cvae, CvaeAdversarial, CvaeConfig};
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

/// What a model family's config says about itself, implemented in each model's own file.
pub trait ModelKind {
    /// Checks every field.
    fn validate(&self) -> crate::Result<()>;
    /// The image shape `[c, h, w]`.
    fn image(&self) -> [usize; 3];
    /// Sets the image shape (from the dataset).
    fn set_image(&mut self, shape: [usize; 3]);
    /// Trainable parameters of the model this config builds.
    fn num_params(&self) -> usize;
    /// Whether the family has an encoder (reconstruction, codes, ELBO).
    fn can_encode(&self) -> bool {
        false
    }
    /// Whether the family generates images from z ~ N(0, I).
    fn can_generate(&self) -> bool {
        false
    }
    /// Whether a training step may be cut into shards (`train.shards > 1`): the step's loss
    /// is a mean of per-image terms with no batch statistics (batch norm) coupling the images,
    /// so the shards' gradients sum to the batch's (`train::shard`).
    fn supports_shards(&self) -> bool {
        false
    }
    /// The class names a conditional family draws (`classes[label]`); empty for the others.
    fn classes(&self) -> &[String] {
        &[]
    }
    /// Sets the class names (from the dataset) of a conditional family; the others ignore it.
    fn set_classes(&mut self, _names: &[String]) {}
}

/// Code that takes a loaded model of any family (the CLI's commands, the studio): the family's
/// config says what its model is ([`LoadModel`], in the model's own file) and
/// [`ModelConfig::load`] calls the matching method. Closures cannot be generic, hence a trait.
pub trait ModelVisitor<T> {
    /// A model with an encoder and a prior to sample (VAE, VAE-GAN).
    fn encoder_with_prior<M: ImageModel + Generative>(self, m: M) -> T;
    /// A model with an encoder and no prior (the autoencoder).
    fn encoder<M: ImageModel>(self, m: M) -> T;
    /// A generator without an encoder (DCGAN).
    fn generator<G: Generative>(self, g: G) -> T;
    /// A generator told its class (cVAE, cGAN).
    fn conditional<G: Conditional>(self, g: G) -> T;
    /// The feature classifier.
    fn classifier(self, c: Classifier) -> T;
}

/// How a family's config loads its model for a [`ModelVisitor`]: implemented in the model's own
/// file, one line (`loads_as!`).
pub trait LoadModel {
    /// Builds the model on `device`, loads `weights` into it and hands it to `v`.
    fn load<T>(
        &self,
        device: &Device,
        weights: &std::path::Path,
        v: impl ModelVisitor<T>,
    ) -> crate::Result<T>;
}

/// What a model of a run is for: which commands and which run-config type go with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Generative and classifier models of [`crate::RunConfig`] (`genlab train vae|ae|gan|...`).
    Images,
    /// Super-resolution networks of [`crate::SrRunConfig`] (`genlab train sr`, `upscale`).
    SuperResolution,
}

/// The registry: one line per model kind, `Variant(Config) = "kind"`, makes the config enum
/// (tagged by `kind` in `config.toml`), its [`ModelKind`] dispatch, and the name table
/// [`KINDS`]. A new family adds its line here and implements [`ModelKind`] and [`LoadModel`] in
/// its own file.
macro_rules! registry {
    (
        images { $($iv:ident($icfg:ty) = $iname:literal, $idoc:literal;)* }
        super_resolution { $($sv:ident($scfg:ty) = $sname:literal, $sdoc:literal;)* }
    ) => {
        /// The model part of a run's config: which family, and its settings.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum ModelConfig {
            $(#[doc = $idoc] #[serde(rename = $iname)] $iv($icfg),)*
        }

        /// The model part of a super-resolution run's config.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum SrModelConfig {
            $(#[doc = $sdoc] #[serde(rename = $sname)] $sv($scfg),)*
        }

        /// Every model kind genlab knows, with what it is for.
        pub const KINDS: &[(&str, Task)] = &[
            $(($iname, Task::Images),)*
            $(($sname, Task::SuperResolution),)*
        ];

        impl ModelConfig {
            /// The family name as `config.toml` and the CLI spell it (`ae`, `vae`, ...).
            pub fn kind(&self) -> &'static str {
                match self { $(ModelConfig::$iv(_) => $iname,)* }
            }
            fn as_kind(&self) -> &dyn ModelKind {
                match self { $(ModelConfig::$iv(c) => c,)* }
            }
            fn as_kind_mut(&mut self) -> &mut dyn ModelKind {
                match self { $(ModelConfig::$iv(c) => c,)* }
            }
        }

        impl ModelConfig {
            /// Loads the model with `weights` and hands it to `v` as what it is (each family's
            /// [`LoadModel`] says which): code that takes any family has no match of its own.
            pub fn load<T>(
                &self,
                device: &Device,
                weights: &std::path::Path,
                v: impl ModelVisitor<T>,
            ) -> crate::Result<T> {
                match self { $(ModelConfig::$iv(c) => LoadModel::load(c, device, weights, v),)* }
            }
        }

        impl SrModelConfig {
            /// The family name (`fsrcnn`, `espcn`).
            pub fn kind(&self) -> &'static str {
                match self { $(SrModelConfig::$sv(_) => $sname,)* }
            }
            fn as_sr(&self) -> &dyn SrKind {
                match self { $(SrModelConfig::$sv(c) => c,)* }
            }
            fn as_sr_mut(&mut self) -> &mut dyn SrKind {
                match self { $(SrModelConfig::$sv(c) => c,)* }
            }
        }
    };
}

registry! {
    images {
        Ae(AutoencoderConfig) = "ae", "A plain autoencoder.";
        Vae(VaeConfig) = "vae", "A (beta-)VAE.";
        Dcgan(DcganConfig) = "dcgan", "A DCGAN.";
        VaeGan(VaeGanConfig) = "vae-gan", "A VAE-GAN.";
        Classifier(ClassifierConfig) = "classifier", "The feature classifier of the Fréchet distance.";
        Cvae(CvaeConfig) = "cvae", "A conditional VAE (the label given to encoder and decoder).";
        Cgan(CganConfig) = "cgan", "A conditional DCGAN (projection discriminator).";
    }
    super_resolution {
        Fsrcnn(FsrcnnConfig) = "fsrcnn", "FSRCNN (transposed-convolution upsampler).";
        Espcn(EspcnConfig) = "espcn", "ESPCN (sub-pixel upsampler).";
    }
}

/// What a model kind is for; `None` for a name that is not in [`KINDS`].
pub fn task_of(kind: &str) -> Option<Task> {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, t)| *t)
}

impl ModelConfig {
    /// Checks every field.
    pub fn validate(&self) -> crate::Result<()> {
        self.as_kind().validate()
    }

    /// Sets the image shape (from the dataset).
    pub fn set_image(&mut self, shape: [usize; 3]) {
        self.as_kind_mut().set_image(shape)
    }

    /// The image shape `[c, h, w]`.
    pub fn image(&self) -> [usize; 3] {
        self.as_kind().image()
    }

    /// Whether the family has an encoder (reconstruction, codes, ELBO).
    pub fn can_encode(&self) -> bool {
        self.as_kind().can_encode()
    }

    /// Trainable parameters of the model (built once on the CPU to count them).
    pub fn num_params(&self) -> usize {
        self.as_kind().num_params()
    }

    /// Whether the family generates images from z ~ N(0, I).
    pub fn can_generate(&self) -> bool {
        self.as_kind().can_generate()
    }

    /// Whether a training step may be cut into shards (`train.shards > 1`, `train::shard`).
    pub fn supports_shards(&self) -> bool {
        self.as_kind().supports_shards()
    }

    /// The class names of a conditional family (`classes[label]`); empty for the others.
    pub fn classes(&self) -> &[String] {
        self.as_kind().classes()
    }

    /// Whether the family generates images of a chosen class.
    pub fn is_conditional(&self) -> bool {
        !self.classes().is_empty()
    }

    /// Sets a conditional family's class names (from the dataset); the others ignore it.
    pub fn set_classes(&mut self, names: &[String]) {
        self.as_kind_mut().set_classes(names)
    }

    /// `shards` (`train.shards`) for this model: any for a family without batch norm, else 1.
    pub fn check_shards(&self, shards: usize) -> crate::Result<()> {
        if shards > 1 && !self.supports_shards() {
            return Err(crate::Error::config(
                "train.shards (--shards)",
                shards,
                format!(
                    "1 for a {} model: only ae and vae without decoder batch norm train in \
                     shards (batch norm would normalise each shard on its own, so shards would \
                     change what it learns)",
                    self.kind()
                ),
            ));
        }
        Ok(())
    }
}

/// A model that turns noise z ~ N(0, I) into images: what `genlab sample`, `interpolate` and the
/// Fréchet distance need.
/// (`Sync + 'static`: a loaded model is shared by the studio's threads, `explore::Explore`.)
pub trait Generative: Module + Sync + Sized + 'static {
    /// Width of z.
    fn noise_dim(&self) -> usize;
    /// Images in `[0, 1]`.
    ///
    /// # Shapes
    /// `[b, noise_dim] -> [b, c, h, w]`
    fn generate(&self, z: Tensor<2>) -> Tensor<4>;
}

/// A generator told which class to draw (cVAE, cGAN): what `genlab sample --class`, the
/// per-class sheets and the label accuracy need. As a plain [`Generative`] it draws the classes
/// in turn (row `i` is class `i mod classes`), so every command that samples treats all classes
/// alike.
pub trait Conditional: Generative {
    /// The class names, `names[label]`.
    fn class_names(&self) -> &[String];
    /// Images in `[0, 1]` of the classes `labels` (one per row of `z`, each below the class
    /// count).
    ///
    /// # Shapes
    /// `[b, noise_dim], b labels -> [b, c, h, w]`
    fn generate_given(&self, z: Tensor<2>, labels: &[usize]) -> Tensor<4>;
    /// Whether [`Conditional::encode_given`] gives codes (the cVAE).
    fn has_encoder(&self) -> bool {
        false
    }
    /// The noise that `generate_given` would turn into these images of these classes (the
    /// cVAE's posterior mean less the prior mean: the style), or `None` without an encoder.
    ///
    /// # Shapes
    /// `[b, c, h, w], b labels -> [b, noise_dim]`
    fn encode_given(&self, _x: Tensor<4>, _labels: &[usize]) -> Option<Tensor<2>> {
        None
    }
}

/// `n` labels taking the `classes` in turn: `0, 1, ..., classes - 1, 0, 1, ...`.
pub fn classes_in_turn(n: usize, classes: usize) -> Vec<usize> {
    (0..n).map(|i| i % classes.max(1)).collect()
}

/// One row per class, the same noise in every row (column `j` is `z[j]` in every class: the
/// "analogy" sheet), in row-major order for [`crate::image_io::save_grid`] with `cols` = the
/// rows of `z`; `classes` picks the rows (all of them, in order, when `None`).
///
/// # Shapes
/// `[cols, noise_dim] -> [rows * cols, c, h, w]`
pub fn class_sheet<G: Conditional>(g: &G, z: Tensor<2>, classes: Option<&[usize]>) -> Tensor<4> {
    let cols = z.dims()[0];
    let all: Vec<usize> = (0..g.class_names().len()).collect();
    let rows = classes.unwrap_or(&all);
    let labels: Vec<usize> = rows
        .iter()
        .flat_map(|&k| std::iter::repeat_n(k, cols))
        .collect();
    let z = z.repeat_dim(0, rows.len()); // [rows * cols, noise]: z[j] at every row's column j
    g.generate_given(z, &labels)
}

/// Checks a conditional family's class names: 2 to 256 of them (labels are bytes), none empty.
pub(crate) fn check_classes(names: &[String]) -> crate::Result<()> {
    if !(2..=256).contains(&names.len()) || names.iter().any(|n| n.trim().is_empty()) {
        return Err(crate::Error::config(
            "model.classes",
            format!("{} names", names.len()),
            "2 to 256 non-empty class names (set from a labelled dataset)",
        ));
    }
    Ok(())
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
pub trait ImageModel: Module + Sync + Sized + 'static {
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

/// Checks a super-resolution factor: 2, 3 or 4.
pub fn check_scale(scale: usize) -> crate::Result<()> {
    if (2..=4).contains(&scale) {
        Ok(())
    } else {
        Err(crate::Error::config("scale", scale, "2, 3 or 4"))
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

/// A function generic over the SR network (closures cannot be generic): what the commands that
/// load a super-resolution network call with it.
pub trait SrNetFn<T> {
    /// Runs with the loaded network.
    fn call<N: SrNet>(self, net: N) -> crate::Result<T>;
}

/// What a super-resolution network's config says about itself.
pub trait SrKind {
    /// The upscaling factor.
    fn scale(&self) -> usize;
    /// Sets the upscaling factor.
    fn set_scale(&mut self, scale: usize);
    /// Checks every field.
    fn validate(&self) -> crate::Result<()>;
}

impl SrModelConfig {
    /// The upscaling factor.
    pub fn scale(&self) -> usize {
        self.as_sr().scale()
    }

    /// Sets the upscaling factor.
    pub fn set_scale(&mut self, scale: usize) {
        self.as_sr_mut().set_scale(scale)
    }

    /// Checks every field.
    pub fn validate(&self) -> crate::Result<()> {
        self.as_sr().validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sheet is class-major: row `r` is class `rows[r]`, column `j` is `z[j]` in every row.
    #[test]
    fn class_sheet_puts_each_class_on_a_row_with_the_same_noise_per_column() {
        let d = Device::flex();
        let m = CganConfig {
            latent: 3,
            g_channels: vec![4, 8],
            d_channels: vec![4, 8],
            classes: vec!["a".into(), "b".into(), "c".into()],
            ..CganConfig::default()
        }
        .init(&d);
        let z = crate::rng::standard_normal(&mut crate::rng::rng_for(1, 0, 0), 2, 3, &d);
        let sheet = class_sheet(&m, z.clone(), Some(&[2, 0])); // [4, 1, 28, 28]
        let want = m.generate_given(z.repeat_dim(0, 2), &[2, 2, 0, 0]);
        let diff: f32 = (sheet - want).abs().max().into_scalar();
        assert!(diff < 1e-6, "{diff}");
        assert_eq!(classes_in_turn(7, 3), vec![0, 1, 2, 0, 1, 2, 0]);
    }
}
