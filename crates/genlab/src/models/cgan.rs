//! Conditional DCGAN: the DCGAN of [`super::dcgan`] told which class to draw. The generator
//! reads `[z, one-hot(y)]` (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets",
//! Section 3.2); the discriminator is a projection discriminator (Miyato & Koyama 2018, "cGANs
//! with Projection Discriminator", eq. 3): `D(x, y) = psi(phi(x)) + embed(y) . phi(x)`, where
//! `phi` is DCGAN's conv stack, `psi` its linear output and `embed` one learned vector per class,
//! so the discriminator asks both "is it real?" and "is it this class?". The alternative the
//! paper compares against, concatenation (`model.discriminator = "concat"`: the one-hot label as
//! constant planes beside the image's channels, Mirza & Osindero's input conditioning), is kept
//! for comparison (BENCHMARKS.md, "Class-conditional generation").

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::dcgan::{Generator, check_stack, from_tanh};
use super::{Conditional, Generative, check_classes, classes_in_turn};
use crate::data::one_hot;
use crate::error::{Error, Result};
use crate::loss::GanLoss;
use crate::nn::gan::{DCGAN_INIT, Discriminator};

/// Configuration of a [`Cgan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CganConfig {
    /// Noise dimensions (default 100, DCGAN's).
    pub latent: usize,
    /// Generator channels, image side first (as [`super::DcganConfig::g_channels`]).
    pub g_channels: Vec<usize>,
    /// Discriminator channels, image side first; one stride-2 conv per entry.
    pub d_channels: Vec<usize>,
    /// Batch norm in the discriminator (all layers but the first), as in DCGAN.
    pub d_batch_norm: bool,
    /// `non-saturating` (DCGAN's) or `hinge` (Miyato & Koyama's).
    pub loss: GanLoss,
    /// One-sided label smoothing: the discriminator's target for real images is `1 - s`.
    pub label_smoothing: f64,
    /// How the discriminator is told the class: `projection` (default) or `concat`.
    pub discriminator: Conditioning,
    /// Class names, `classes[label]`; set from the dataset when training (default MNIST's digits).
    pub classes: Vec<String>,
    /// Image shape `[c, h, w]`; set from the dataset when training.
    pub image: [usize; 3],
}

impl Default for CganConfig {
    fn default() -> Self {
        Self {
            latent: 100,
            g_channels: vec![64, 128],
            d_channels: vec![64, 128],
            d_batch_norm: true,
            loss: GanLoss::NonSaturating,
            label_smoothing: 0.0,
            discriminator: Conditioning::Projection,
            classes: crate::data::class_names(&crate::data::MNIST_CLASSES),
            image: [1, 28, 28],
        }
    }
}

/// How a conditional discriminator is told the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conditioning {
    /// `psi(phi(x)) + embed(y) . phi(x)` (Miyato & Koyama 2018).
    Projection,
    /// `D([x, y planes])`: the one-hot label as constant channels of the input.
    Concat,
}

impl CganConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if self.latent == 0 {
            return Err(Error::config("model.latent", self.latent, "> 0"));
        }
        check_classes(&self.classes)?;
        check_stack("model.g_channels", &self.g_channels, self.image)?;
        check_stack("model.d_channels", &self.d_channels, self.image)?;
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

    /// Builds the model with DCGAN's initialisation (the class embedding too).
    pub fn init(&self, device: &Device) -> Cgan {
        let k = self.classes.len();
        Cgan {
            generator: Generator::new(self.latent + k, &self.g_channels, self.image, device),
            discriminator: ProjectionDiscriminator::new(
                self.image,
                &self.d_channels,
                self.d_batch_norm,
                k,
                self.discriminator,
                device,
            ),
            config: self.clone(),
        }
    }
}

/// `(image, class) -> realness logit`: DCGAN's discriminator plus the class projection (or,
/// with `concat`, DCGAN's discriminator reading the class as extra input channels).
#[derive(Module, Debug)]
pub struct ProjectionDiscriminator {
    /// `phi` (the conv stack) and `psi` (its linear output).
    pub body: Discriminator,
    /// One-hot class -> its vector in `phi`'s space (a bias-free linear layer is an embedding);
    /// `None` for the `concat` discriminator.
    pub embed: Option<Linear>,
}

impl ProjectionDiscriminator {
    /// A discriminator of `[c, h, w]` images of `classes` classes, DCGAN's conv stack with
    /// `channels` (batch norm on all layers but the first when `batch_norm`), told the class by
    /// `conditioning`; every weight (the class embedding too) ~ N(0, 0.02).
    pub fn new(
        image: [usize; 3],
        channels: &[usize],
        batch_norm: bool,
        classes: usize,
        conditioning: Conditioning,
        device: &Device,
    ) -> Self {
        let [c, h, w] = image;
        let (input, embed) = match conditioning {
            Conditioning::Projection => {
                let features = Discriminator::features(image, channels);
                let embed = LinearConfig::new(classes, features)
                    .with_bias(false)
                    .with_initializer(DCGAN_INIT)
                    .init(device);
                (image, Some(embed))
            }
            Conditioning::Concat => ([c + classes, h, w], None),
        };
        Self {
            body: Discriminator::new(input, channels, batch_norm, device),
            embed,
        }
    }

    /// The logit and conv layer `layer`'s raw output (1-based, before its batch norm), from one
    /// pass: Larsen et al.'s `Dis_l(x)` for the conditional VAE-GAN.
    ///
    /// # Shapes
    /// `[b, c, h, w]` in [-1, 1], `[b, classes]` one-hot -> (`[b, 1]`, `[b, layer features]`)
    pub fn forward_with_layer(
        &self,
        x: Tensor<4>,
        y: Tensor<2>,
        layer: usize,
    ) -> (Tensor<2>, Tensor<2>) {
        match &self.embed {
            Some(embed) => {
                let (logit, phi, f) = self.body.forward_all(x, layer); // [b, 1], [b, features], [b, l]
                (logit + (embed.forward(y) * phi).sum_dim(1), f)
            }
            None => {
                let (logit, _, f) = self.body.forward_all(with_planes(x, y), layer);
                (logit, f)
            }
        }
    }

    /// Conv layer `layer`'s raw output (1-based, before its batch norm); the layers above it
    /// are not run.
    ///
    /// # Shapes
    /// `[b, c, h, w]` in [-1, 1], `[b, classes]` one-hot -> `[b, layer features]`
    pub fn layer_features(&self, x: Tensor<4>, y: Tensor<2>, layer: usize) -> Tensor<2> {
        match &self.embed {
            Some(_) => self.body.layer_features(x, layer),
            None => self.body.layer_features(with_planes(x, y), layer),
        }
    }

    /// # Shapes
    /// `[b, c, h, w]` in [-1, 1], `[b, classes]` one-hot -> `[b, 1]`
    pub fn forward(&self, x: Tensor<4>, y: Tensor<2>) -> Tensor<2> {
        match &self.embed {
            Some(embed) => {
                let (logit, phi) = self.body.forward_features(x); // [b, 1], [b, features]
                logit + (embed.forward(y) * phi).sum_dim(1) // + [b, 1]
            }
            None => self.body.forward_features(with_planes(x, y)).0, // [b, 1]
        }
    }
}

/// The image with one constant plane per class stacked on its channels.
///
/// # Shapes
/// `[b, c, h, w], [b, classes] -> [b, c + classes, h, w]`
pub fn with_planes(x: Tensor<4>, y: Tensor<2>) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let k = y.dims()[1];
    let planes = y.reshape([b, k, 1, 1]).repeat(&[1, 1, h, w]); // [b, classes, h, w]
    Tensor::cat(vec![x, planes], 1)
}

/// A conditional DCGAN, saved as `generator.*` and `discriminator.{body,embed}.*`.
#[derive(Module, Debug)]
pub struct Cgan {
    /// `[z, one-hot] -> image` in [-1, 1].
    pub generator: Generator,
    /// `(image, class) -> logit`.
    pub discriminator: ProjectionDiscriminator,
    /// The config the model was built from.
    #[module(skip)]
    pub config: CganConfig,
}

impl Cgan {
    /// Generated images in [-1, 1] of the classes `y`.
    ///
    /// # Shapes
    /// `[b, latent], [b, classes] -> [b, c, h, w]`
    pub fn generate_tanh(&self, z: Tensor<2>, y: Tensor<2>) -> Tensor<4> {
        self.generator.forward(Tensor::cat(vec![z, y], 1)) // [b, latent + classes] -> image
    }
}

impl Generative for Cgan {
    fn noise_dim(&self) -> usize {
        self.config.latent
    }
    /// Every class in turn: row `i` is class `i mod classes`.
    fn generate(&self, z: Tensor<2>) -> Tensor<4> {
        let labels = classes_in_turn(z.dims()[0], self.config.classes.len());
        self.generate_given(z, &labels)
    }
}

impl Conditional for Cgan {
    fn class_names(&self) -> &[String] {
        &self.config.classes
    }
    fn generate_given(&self, z: Tensor<2>, labels: &[usize]) -> Tensor<4> {
        let y = one_hot(labels, self.config.classes.len(), &z.device());
        from_tanh(self.generate_tanh(z, y))
    }
}

loads_as!(CganConfig, conditional);

impl super::ModelKind for CganConfig {
    fn num_params(&self) -> usize {
        self.init(&Device::flex()).num_params()
    }
    fn validate(&self) -> Result<()> {
        CganConfig::validate(self)
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

    /// A small cGAN (4-wide noise, 4-8 channels) with the given way of telling the class.
    fn small(discriminator: Conditioning) -> CganConfig {
        CganConfig {
            latent: 4,
            g_channels: vec![4, 8],
            d_channels: vec![4, 8],
            discriminator,
            ..CganConfig::default()
        }
    }

    #[test]
    fn shapes_for_grey_and_rgb() {
        let d = Device::flex();
        for (image, ch) in [([1, 28, 28], vec![8, 16]), ([3, 32, 32], vec![8, 16, 32])] {
            let cfg = CganConfig {
                image,
                latent: 12,
                g_channels: ch.clone(),
                d_channels: ch,
                ..CganConfig::default()
            };
            cfg.validate().expect("valid");
            let m = cfg.init(&d);
            let x = m.generate_given(Tensor::zeros([3, 12], &d), &[0, 5, 9]);
            assert_eq!(x.dims(), [3, image[0], image[1], image[2]]);
            let y = one_hot(&[0, 5, 9], 10, &d);
            assert_eq!(m.discriminator.forward(x, y).dims(), [3, 1]);
        }
    }

    /// The `concat` discriminator reads the class as constant input planes: its first conv has
    /// `c + classes` input channels, it has no embedding, and the class changes its logit.
    #[test]
    fn concat_reads_the_class_as_input_channels() {
        let d = Device::flex();
        let m = small(Conditioning::Concat).init(&d);
        assert!(m.discriminator.embed.is_none());
        assert_eq!(m.discriminator.body.convs[0].weight.dims(), [4, 11, 4, 4]);
        let x = crate::models::dcgan::to_tanh(m.generate_given(Tensor::ones([1, 4], &d), &[2]));
        let a = m.discriminator.forward(x.clone(), one_hot(&[2], 10, &d));
        let b = m.discriminator.forward(x, one_hot(&[7], 10, &d));
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert!(diff > 0.0);
    }

    /// The one-pass `forward_with_layer` gives `forward`'s logit and `layer_features`' output,
    /// for both ways of telling the class.
    #[test]
    fn forward_with_layer_agrees_with_its_parts() {
        let d = Device::flex();
        for discriminator in [Conditioning::Projection, Conditioning::Concat] {
            let m = small(discriminator).init(&d);
            let x = crate::models::dcgan::to_tanh(
                m.generate_given(Tensor::ones([3, 4], &d), &[1, 4, 8]),
            );
            let y = one_hot(&[1, 4, 8], 10, &d);
            for layer in [1, 2] {
                let (logit, f) = m
                    .discriminator
                    .forward_with_layer(x.clone(), y.clone(), layer);
                let want = m.discriminator.forward(x.clone(), y.clone());
                let f_want = m.discriminator.layer_features(x.clone(), y.clone(), layer);
                let diff: f32 = (logit - want).abs().max().into_scalar();
                let f_diff: f32 = (f - f_want).abs().max().into_scalar();
                assert!(diff < 1e-5 && f_diff < 1e-5, "{discriminator:?} {layer}");
            }
        }
    }

    /// The projection term is `embed(y) . phi(x)`: with the class vectors zeroed, the logit is
    /// the unconditional discriminator's; with them set, it moves by exactly that dot product.
    #[test]
    fn projection_adds_the_class_dot_product() {
        let d = Device::flex();
        let cfg = CganConfig {
            d_batch_norm: false,
            ..small(Conditioning::Projection)
        };
        let m = cfg.init(&d);
        let x = m.generate_given(Tensor::ones([2, 4], &d), &[2, 3]);
        let x = crate::models::dcgan::to_tanh(x);
        let y = one_hot(&[2, 3], 10, &d);
        let (plain, phi) = m.discriminator.body.forward_features(x.clone());
        let logit = m.discriminator.forward(x, y);
        let w = m
            .discriminator
            .embed
            .as_ref()
            .expect("projection")
            .weight
            .val(); // [classes, features]
        let want = plain + (phi * w.select(0, Tensor::from_ints([2, 3], &d))).sum_dim(1);
        let diff: f32 = (logit - want).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
    }
}
