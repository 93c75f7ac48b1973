//! DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
//! Convolutional Generative Adversarial Networks"). The generator maps z ~ N(0, I) through a linear
//! layer and stride-2 transposed convolutions, each followed by batch norm and ReLU, to a tanh image
//! (Section 3, Figure 1); the discriminator ([`Discriminator`]) is strided convs with LeakyReLU.
//! Weights start from N(0, 0.02) (Section 4). The layer sizes follow pytorch/examples' dcgan,
//! scaled to 28x28 (MNIST, Fashion-MNIST: 7 -> 14 -> 28) and 32x32 (CIFAR-10: 4 -> 8 -> 16 -> 32).

use crate::nn::ops::activation::{relu, tanh};
use crate::nn::ops::batch_norm::batch_norm;
use crate::nn::ops::conv::conv_transpose2d;
use crate::nn::ops::linear::linear;
use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::GanLoss;
use crate::nn::gan::{DCGAN_INIT, Discriminator, dcgan_batch_norm};

/// Configuration of a [`Dcgan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DcganConfig {
    /// Noise dimensions (default 100, the paper's).
    pub latent: usize,
    /// Generator channels, image side first: `[64, 128]` means z -> 128 x h/4 x w/4 -> 64 x h/2
    /// x w/2 -> image. One stride-2 transposed conv per entry.
    pub g_channels: Vec<usize>,
    /// Discriminator channels, image side first; one stride-2 conv per entry.
    pub d_channels: Vec<usize>,
    /// Batch norm in the discriminator (all layers but the first), as in the paper.
    pub d_batch_norm: bool,
    /// `non-saturating` (the paper's) or `hinge`.
    pub loss: GanLoss,
    /// One-sided label smoothing: the discriminator's target for real images is `1 - s`
    /// (0 = off; 0.1 is common).
    pub label_smoothing: f64,
    /// Image shape `[c, h, w]`; set from the dataset when training.
    pub image: [usize; 3],
}

impl Default for DcganConfig {
    fn default() -> Self {
        Self {
            latent: 100,
            g_channels: vec![64, 128],
            d_channels: vec![64, 128],
            d_batch_norm: true,
            loss: GanLoss::NonSaturating,
            label_smoothing: 0.0,
            image: [1, 28, 28],
        }
    }
}

/// Checks a `[c, h, w]` image against a stack of `n` stride-2 layers; `field` names it in errors.
pub(crate) fn check_stack(field: &str, channels: &[usize], image: [usize; 3]) -> Result<()> {
    let [c, h, w] = image;
    if !matches!(c, 1 | 3) || h == 0 || w == 0 {
        return Err(Error::config(
            "model.image",
            format!("{image:?}"),
            "[1 or 3 channels, height > 0, width > 0]",
        ));
    }
    let n = channels.len();
    if n == 0 || channels.contains(&0) {
        return Err(Error::config(
            field,
            format!("{channels:?}"),
            "at least one layer, channels > 0",
        ));
    }
    let m = 1usize << n;
    if !h.is_multiple_of(m) || !w.is_multiple_of(m) {
        return Err(Error::config(
            "model.image",
            format!("{image:?}"),
            format!(
                "height and width divisible by 2^{n} = {m} for the {n} stride-2 layers of {field}"
            ),
        ));
    }
    Ok(())
}

impl DcganConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if self.latent == 0 {
            return Err(Error::config("model.latent", self.latent, "> 0"));
        }
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

    /// Builds the model with DCGAN's initialisation.
    pub fn init(&self, device: &Device) -> Dcgan {
        Dcgan {
            generator: Generator::new(self.latent, &self.g_channels, self.image, device),
            discriminator: Discriminator::new(
                self.image,
                &self.d_channels,
                self.d_batch_norm,
                device,
            ),
            config: self.clone(),
        }
    }
}

/// z -> image in [-1, 1].
#[derive(Module, Debug)]
pub struct Generator {
    /// z -> the first feature map, flattened.
    pub fc: Linear,
    /// Batch norm of the first feature map.
    pub fc_norm: BatchNorm,
    /// Stride-2 4x4 transposed convs (padding 1, no bias), each doubling the size.
    pub deconvs: Vec<ConvTranspose2d>,
    /// Batch norms after every transposed conv but the last.
    pub norms: Vec<BatchNorm>,
    /// `[c, h, w]` of the first feature map.
    #[module(skip)]
    pub start: [usize; 3],
}

impl Generator {
    /// A generator of `[c, h, w]` images; `channels` are listed image side first.
    pub fn new(latent: usize, channels: &[usize], image: [usize; 3], device: &Device) -> Self {
        let n = channels.len() as u32;
        let first = *channels.last().expect("validated: at least one layer");
        let start = [first, image[1] >> n, image[2] >> n];
        let fc = LinearConfig::new(latent, start.iter().product())
            .with_initializer(DCGAN_INIT)
            .init(device);
        let mut outs: Vec<usize> = channels.iter().rev().skip(1).copied().collect();
        outs.push(image[0]);
        let mut prev = first;
        let deconvs: Vec<ConvTranspose2d> = outs
            .iter()
            .map(|&c| {
                let d = ConvTranspose2dConfig::new([prev, c], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_bias(false)
                    .with_initializer(DCGAN_INIT)
                    .init(device);
                prev = c;
                d
            })
            .collect();
        let norms = outs[..outs.len() - 1]
            .iter()
            .map(|&c| dcgan_batch_norm(c, device))
            .collect();
        Self {
            fc,
            fc_norm: dcgan_batch_norm(first, device),
            deconvs,
            norms,
            start,
        }
    }

    /// # Shapes
    /// `[b, latent] -> [b, c, h, w]` in [-1, 1]
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [c, h, w] = self.start;
        let b = z.dims()[0];
        let x = linear(&self.fc, z).reshape([b, c, h, w]); // [b, c0, h / 2^n, w / 2^n]
        let mut x = relu(batch_norm(&self.fc_norm, x));
        for (i, d) in self.deconvs.iter().enumerate() {
            x = conv_transpose2d(d, x); // doubles h and w
            match self.norms.get(i) {
                Some(bn) => x = relu(batch_norm(bn, x)),
                None => x = tanh(x), // the last layer: the image
            }
        }
        x
    }
}

/// A DCGAN: generator and discriminator, saved together (`generator.*`, `discriminator.*`).
#[derive(Module, Debug)]
pub struct Dcgan {
    /// z -> image.
    pub generator: Generator,
    /// Image -> realness logit.
    pub discriminator: Discriminator,
    /// The config the model was built from.
    #[module(skip)]
    pub config: DcganConfig,
}

impl Dcgan {
    /// Generated images in [0, 1].
    ///
    /// # Shapes
    /// `[b, latent] -> [b, c, h, w]`
    pub fn generate(&self, z: Tensor<2>) -> Tensor<4> {
        from_tanh(self.generator.forward(z))
    }
}

/// `[0, 1]` pixels -> the `[-1, 1]` range of a tanh generator and its discriminator.
pub fn to_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.mul_scalar(2.0).sub_scalar(1.0)
}

/// `[-1, 1]` -> `[0, 1]` pixels.
pub fn from_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.add_scalar(1.0).mul_scalar(0.5)
}

loads_as!(DcganConfig, generator);

impl super::ModelKind for DcganConfig {
    fn num_params(&self) -> usize {
        self.init(&Device::flex()).num_params()
    }
    fn validate(&self) -> Result<()> {
        DcganConfig::validate(self)
    }
    fn image(&self) -> [usize; 3] {
        self.image
    }
    fn set_image(&mut self, shape: [usize; 3]) {
        self.image = shape;
    }
    fn can_generate(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_for_grey_and_rgb_presets() {
        let d = Device::flex();
        for (image, g, dc) in [
            ([1, 28, 28], vec![64, 128], vec![64, 128]),
            ([3, 32, 32], vec![64, 128, 256], vec![64, 128, 256]),
        ] {
            let cfg = DcganConfig {
                image,
                g_channels: g,
                d_channels: dc,
                ..DcganConfig::default()
            };
            cfg.validate().expect("valid");
            let m = cfg.init(&d);
            let x = m.generate(Tensor::zeros([2, 100], &d));
            assert_eq!(x.dims(), [2, image[0], image[1], image[2]]);
            let v = x.clone().into_data().try_into_vec::<f32>().expect("f32");
            assert!(v.iter().all(|p| (0.0..=1.0).contains(p)));
            assert_eq!(m.discriminator.forward(to_tanh(x)).dims(), [2, 1]);
        }
    }

    /// A small DCGAN (latent 10, channels 8/16) initialised and saved by PyTorch 2.15
    /// (`python3 bench/reference/dcgan.py --make-fixture
    /// crates/genlab/tests/fixtures/dcgan-seed0.safetensors`, module names = genlab's parameter
    /// paths), loaded here and run in inference mode (batch norm with running statistics) on the
    /// same z; the script printed the values below.
    #[test]
    fn forward_matches_pytorch() {
        let d = Device::flex();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/dcgan-seed0.safetensors");
        let cfg = DcganConfig {
            latent: 10,
            g_channels: vec![8, 16],
            d_channels: vec![8, 16],
            ..DcganConfig::default()
        };
        let m: Dcgan = crate::checkpoint::load_weights(cfg.init(&d), &path).expect("fixture");
        let z: Vec<f32> = (0..20).map(|i| ((i % 7) as f32 - 3.0) / 3.0).collect();
        let z = Tensor::<1>::from_floats(z.as_slice(), &d).reshape([2, 10]);
        let x = m.generator.forward(z); // [2, 1, 28, 28] in [-1, 1]
        let logits = m
            .discriminator
            .forward(x.clone())
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let v = x.into_data().try_into_vec::<f32>().expect("f32");
        let close = |a: f32, b: f32| assert!((a - b).abs() < 2e-5, "{a} vs {b}");
        let row0 = [0.02394, 0.196428, 0.008421, -0.101695, -0.175061, -0.065388];
        for (k, want) in row0.iter().enumerate() {
            close(v[k], *want);
        }
        let row = [
            -0.41829, -0.099759, -0.416766, -0.206495, -0.138268, -0.046602,
        ];
        for (k, want) in row.iter().enumerate() {
            close(v[784 + 14 * 28 + 10 + k], *want);
        }
        let sum: f32 = v.iter().sum();
        assert!((sum + 87.24136).abs() < 1e-3, "sum {sum}");
        close(logits[0], -1.937349);
        close(logits[1], 0.069095);
    }

    #[test]
    fn bad_sizes_are_config_errors() {
        let cfg = DcganConfig {
            image: [1, 30, 30],
            ..DcganConfig::default()
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("divisible by 2^2 = 4"), "{e}");
        let cfg = DcganConfig {
            label_smoothing: 0.7,
            ..DcganConfig::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("label_smoothing")
        );
    }
}
