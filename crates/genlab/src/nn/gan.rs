//! The DCGAN discriminator (Radford et al. 2016, Section 3): strided 4x4 convolutions with
//! LeakyReLU(0.2), batch norm on every layer but the first, no pooling, and a linear layer to one
//! logit. Shared by the DCGAN and the VAE-GAN (Larsen et al. 2016), whose feature-wise
//! reconstruction loss reads the last conv layer's activations.

use super::ops::activation::leaky_relu;
use super::ops::batch_norm::batch_norm;
use super::ops::conv::conv2d;
use super::ops::linear::linear;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

/// DCGAN's weight init (Section 4): every conv / transposed-conv / linear weight ~ N(0, 0.02).
pub const DCGAN_INIT: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 0.02,
};

/// LeakyReLU slope in the discriminator (Section 3).
pub const LEAKY_SLOPE: f64 = 0.2;

/// A batch norm with DCGAN's init: scale ~ N(1, 0.02), shift 0 (pytorch/examples dcgan
/// `weights_init`).
pub fn dcgan_batch_norm(features: usize, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(features).init(device);
    bn.gamma = Param::from_tensor(
        Initializer::Normal {
            mean: 1.0,
            std: 0.02,
        }
        .init([features], device)
        .val(),
    );
    bn
}

/// Image -> realness logit.
#[derive(Module, Debug)]
pub struct Discriminator {
    /// Stride-2 4x4 convs (padding 1, no bias), `c -> channels[0] -> ... -> channels[n-1]`.
    pub convs: Vec<Conv2d>,
    /// Batch norms after `convs[1..]` (empty when batch norm is off).
    pub norms: Vec<BatchNorm>,
    /// Flattened features -> 1 logit.
    pub fc: Linear,
}

impl Discriminator {
    /// A discriminator for `[c, h, w]` images; `h` and `w` must be divisible by `2^channels.len()`.
    pub fn new(image: [usize; 3], channels: &[usize], batch_norm: bool, device: &Device) -> Self {
        let mut prev = image[0];
        let convs: Vec<Conv2d> = channels
            .iter()
            .map(|&c| {
                let conv = Conv2dConfig::new([prev, c], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_bias(false)
                    .with_initializer(DCGAN_INIT)
                    .init(device);
                prev = c;
                conv
            })
            .collect();
        let norms = if batch_norm {
            channels[1..]
                .iter()
                .map(|&c| dcgan_batch_norm(c, device))
                .collect()
        } else {
            Vec::new()
        };
        let features = Self::features(image, channels);
        let fc = LinearConfig::new(features, 1)
            .with_initializer(DCGAN_INIT)
            .init(device);
        Self { convs, norms, fc }
    }

    /// Width of the flattened last conv layer.
    pub fn features(image: [usize; 3], channels: &[usize]) -> usize {
        let n = channels.len() as u32;
        channels.last().copied().unwrap_or(image[0]) * (image[1] >> n) * (image[2] >> n)
    }

    /// Logits and the last conv layer's activations (after its LeakyReLU), flattened.
    ///
    /// # Shapes
    /// `[b, c, h, w]` in [-1, 1] -> (`[b, 1]`, `[b, features]`)
    pub fn forward_features(&self, mut x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv2d(conv, x); // [b, channels[i], h / 2^(i+1), w / 2^(i+1)]
            if i > 0
                && let Some(bn) = self.norms.get(i - 1)
            {
                x = batch_norm(bn, x);
            }
            x = leaky_relu(x, LEAKY_SLOPE);
        }
        let f = x.flatten(1, 3); // [b, features]
        (linear(&self.fc, f.clone()), f)
    }

    /// Logits and conv layer `layer`'s output (1-based) before its batch norm and activation,
    /// flattened: Larsen et al.'s `Dis_l(x)` (the official code reads the 4th conv's output
    /// before batch norm). One pass gives both, so the discriminator's real batch also yields
    /// the reconstruction target.
    ///
    /// # Shapes
    /// `[b, c, h, w]` in [-1, 1] -> (`[b, 1]`, `[b, channels[layer-1] * h/2^layer * w/2^layer]`)
    pub fn forward_with_layer(&self, x: Tensor<4>, layer: usize) -> (Tensor<2>, Tensor<2>) {
        let (logit, _, f) = self.forward_all(x, layer);
        (logit, f)
    }

    /// Logits, the last conv layer's activations (as [`Self::forward_features`]) and conv layer
    /// `layer`'s raw output (as [`Self::forward_with_layer`]), from one pass: the projection
    /// discriminator needs the first two, the conditional VAE-GAN all three.
    ///
    /// # Shapes
    /// `[b, c, h, w]` in [-1, 1] -> (`[b, 1]`, `[b, features]`, `[b, layer features]`)
    pub fn forward_all(&self, x: Tensor<4>, layer: usize) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let (x, f) = self.through(x, layer, true);
        let phi = x.flatten(1, 3); // [b, features]
        (linear(&self.fc, phi.clone()), phi, f)
    }

    /// Conv layer `layer`'s output (1-based) before its batch norm and activation, flattened;
    /// the layers above it are not run.
    ///
    /// # Shapes
    /// `[b, c, h, w]` in [-1, 1] -> `[b, channels[layer-1] * h/2^layer * w/2^layer]`
    pub fn layer_features(&self, x: Tensor<4>, layer: usize) -> Tensor<2> {
        self.through(x, layer, false).1
    }

    /// Runs the convs (all of them when `to_end`, else up to `layer`), keeping conv `layer`'s
    /// raw output.
    fn through(&self, mut x: Tensor<4>, layer: usize, to_end: bool) -> (Tensor<4>, Tensor<2>) {
        let mut kept = None;
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv2d(conv, x); // [b, channels[i], h / 2^(i+1), w / 2^(i+1)]
            if i + 1 == layer {
                kept = Some(x.clone().flatten(1, 3));
                if !to_end {
                    break;
                }
            }
            if i > 0
                && let Some(bn) = self.norms.get(i - 1)
            {
                x = batch_norm(bn, x);
            }
            x = leaky_relu(x, LEAKY_SLOPE);
        }
        let kept = kept.unwrap_or_else(|| x.clone().flatten(1, 3));
        (x, kept)
    }

    /// Realness logits.
    ///
    /// # Shapes
    /// `[b, c, h, w]` in [-1, 1] -> `[b, 1]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_features(x).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_init() {
        let d = Device::flex();
        d.seed(1);
        let disc = Discriminator::new([1, 28, 28], &[64, 128], true, &d);
        assert_eq!(disc.norms.len(), 1);
        let (logit, f) = disc.forward_features(Tensor::zeros([3, 1, 28, 28], &d));
        assert_eq!(logit.dims(), [3, 1]);
        assert_eq!(f.dims(), [3, 128 * 7 * 7]);
        let w = disc.convs[1]
            .weight
            .val()
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        let std = (w.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / w.len() as f32).sqrt();
        assert!(
            mean.abs() < 0.002 && (std - 0.02).abs() < 0.002,
            "{mean} {std}"
        );
        assert!(disc.convs[0].bias.is_none());
        // The layer features: the raw conv outputs, from one pass or from the layers below.
        let x = Tensor::<4>::random([3, 1, 28, 28], burn::tensor::Distribution::Default, &d);
        let values = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().expect("f32");
        for layer in [1, 2] {
            let (logit, f) = disc.forward_with_layer(x.clone(), layer);
            assert_eq!(values(logit), values(disc.forward(x.clone())));
            assert_eq!(
                values(f.clone()),
                values(disc.layer_features(x.clone(), layer))
            );
            assert_eq!(f.dims(), [3, [64 * 14 * 14, 128 * 7 * 7][layer - 1]]);
        }
        let raw = conv2d(&disc.convs[0], x.clone()).flatten(1, 3);
        assert_eq!(values(disc.layer_features(x, 1)), values(raw));
        let rgb = Discriminator::new([3, 32, 32], &[64, 128, 256], false, &d);
        assert!(rgb.norms.is_empty());
        assert_eq!(
            rgb.forward(Tensor::zeros([2, 3, 32, 32], &d)).dims(),
            [2, 1]
        );
    }

    /// The discriminator's parameter gradients through genlab's layers (nn::ops) equal
    /// those through burn's own conv and leaky ReLU, batch norm included.
    #[test]
    fn gradients_match_burns_layers() {
        let d = Device::flex().autodiff();
        let disc = Discriminator::new([1, 16, 16], &[8, 16], true, &d);
        let x = Tensor::<4>::random([6, 1, 16, 16], burn::tensor::Distribution::Default, &d);
        let burn_forward = |mut x: Tensor<4>| {
            for (i, conv) in disc.convs.iter().enumerate() {
                x = conv.forward(x);
                if i > 0
                    && let Some(bn) = disc.norms.get(i - 1)
                {
                    x = bn.forward(x);
                }
                x = burn::tensor::activation::leaky_relu(x, LEAKY_SLOPE);
            }
            disc.fc.forward(x.flatten::<2>(1, 3))
        };
        let ours = disc.forward(x.clone()).sum().backward();
        let theirs = burn_forward(x).sum().backward();
        // Batch norm's backward sums in f64 here and in f32 in burn, and some gradient entries
        // are differences of near-equal terms: compare each entry to within 1e-4 of the
        // gradient's largest magnitude (an entry-relative bound alone failed ~1 run in 8 on
        // random inputs, at 1.7e-4 relative on an entry 1/10 of the largest).
        let check = |a: Tensor<2>, b: Tensor<2>| {
            let scale = b.clone().abs().max().into_scalar::<f32>();
            let tol = burn::tensor::Tolerance::rel_abs(1e-4, 1e-4 * scale);
            a.into_data().assert_approx_eq::<f32>(&b.into_data(), tol);
        };
        for conv in &disc.convs {
            let w = conv.weight.val();
            let (a, b) = (w.grad(&ours).expect("grad"), w.grad(&theirs).expect("grad"));
            check(a.flatten(1, 3), b.flatten(1, 3));
        }
        let w = disc.fc.weight.val();
        check(w.grad(&ours).expect("grad"), w.grad(&theirs).expect("grad"));
    }
}
