//! FSRCNN (Dong, Loy & Tang, "Accelerating the Super-Resolution Convolutional Neural Network",
//! ECCV 2016): works on the low-resolution image directly and upscales only at the end, with a
//! learned transposed convolution ("deconvolution").
//!
//! ```text
//! LR Y [b, 1, h, w]
//!   -> conv 5x5, d      + PReLU   feature extraction   [b, d, h, w]
//!   -> conv 1x1, s      + PReLU   shrinking            [b, s, h, w]
//!   -> m x (conv 3x3, s + PReLU)  non-linear mapping   [b, s, h, w]
//!   -> conv 1x1, d      + PReLU   expanding            [b, d, h, w]
//!   -> conv-transpose 9x9, stride = scale, padding 4, output padding scale - 1
//!                                                      [b, 1, scale h, scale w]
//! ```
//! Defaults are the paper's FSRCNN(56, 12, 4). Init as the paper and its reference PyTorch ports:
//! He-normal convolutions (std = sqrt(2 / (out_channels k k))), N(0, 0.001) deconvolution, zero
//! biases, PReLU slopes 0.25.

use crate::nn::ops::activation::prelu;
use crate::nn::ops::conv::{conv_transpose2d, conv2d};
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Initializer, PRelu, PReluConfig, PaddingConfig2d};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::SrNet;
use crate::error::{Error, Result};

/// Configuration of an [`Fsrcnn`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FsrcnnConfig {
    /// Upscaling factor (2, 3 or 4).
    pub scale: usize,
    /// Feature channels `d` (default 56).
    pub d: usize,
    /// Shrunk channels `s` (default 12).
    pub s: usize,
    /// Mapping layers `m` (default 4).
    pub m: usize,
}

impl Default for FsrcnnConfig {
    fn default() -> Self {
        Self {
            scale: 2,
            d: 56,
            s: 12,
            m: 4,
        }
    }
}

/// A conv layer followed by a per-channel PReLU.
#[derive(Module, Debug)]
pub struct ConvPrelu {
    conv: Conv2d,
    act: PRelu,
}

impl ConvPrelu {
    fn new(cin: usize, cout: usize, k: usize, device: &Device) -> Self {
        let std = (2.0 / (cout * k * k) as f64).sqrt();
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(device);
        let conv = Conv2d {
            bias: conv.bias.map(|b| Param::from_tensor(b.val().zeros_like())),
            ..conv
        };
        Self {
            conv,
            act: PReluConfig::new().with_num_parameters(cout).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        prelu(&self.act, conv2d(&self.conv, x))
    }
}

/// FSRCNN; see the module docs.
#[derive(Module, Debug)]
pub struct Fsrcnn {
    layers: Vec<ConvPrelu>,
    deconv: ConvTranspose2d,
    scale: usize,
}

impl FsrcnnConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        super::check_scale(self.scale)
            .map_err(|_| Error::config("model.scale", self.scale, "2, 3 or 4"))?;
        for (k, v) in [("model.d", self.d), ("model.s", self.s)] {
            if v == 0 || v > 1024 {
                return Err(Error::config(k, v, "1 to 1024 channels"));
            }
        }
        if self.m > 64 {
            return Err(Error::config("model.m", self.m, "0 to 64 mapping layers"));
        }
        Ok(())
    }

    /// A freshly initialised network.
    pub fn init(&self, device: &Device) -> Fsrcnn {
        let (d, s) = (self.d, self.s);
        let mut layers = vec![
            ConvPrelu::new(1, d, 5, device),
            ConvPrelu::new(d, s, 1, device),
        ];
        for _ in 0..self.m {
            layers.push(ConvPrelu::new(s, s, 3, device));
        }
        layers.push(ConvPrelu::new(s, d, 1, device));
        let r = self.scale;
        let deconv = ConvTranspose2dConfig::new([d, 1], [9, 9])
            .with_stride([r, r])
            .with_padding([4, 4])
            .with_padding_out([r - 1, r - 1])
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.001,
            })
            .init(device);
        let deconv = ConvTranspose2d {
            bias: deconv
                .bias
                .map(|b| Param::from_tensor(b.val().zeros_like())),
            ..deconv
        };
        Fsrcnn {
            layers,
            deconv,
            scale: r,
        }
    }
}

impl Fsrcnn {
    /// Mapping layers `m`.
    pub fn mapping_layers(&self) -> usize {
        self.layers.len() - 3
    }

    /// The same function with `m` mapping layers: the new ones go just before the expanding
    /// layer and start as the identity (3x3 kernels with a 1 at the centre of their own
    /// channel, zero bias, PReLU slope 1), the "Net2DeeperNet" growth of Chen, Goodfellow &
    /// Shlens (2016). Training then starts from everything the shallower network learned.
    /// `m` below the current depth is an error (layers are never dropped).
    pub fn deepen(mut self, m: usize) -> Result<Self> {
        let have = self.mapping_layers();
        if m < have {
            return Err(Error::config(
                "model.m",
                m,
                format!("at least the {have} mapping layers of the network it grows from"),
            ));
        }
        let expand = self.layers.pop().expect("FSRCNN has an expanding layer");
        let s = expand.conv.weight.dims()[1];
        let device = expand.conv.weight.device();
        for _ in have..m {
            // [s, s, 3, 3]: w[o][i][1][1] = (o == i).
            let w: Vec<f32> = (0..s * s * 9)
                .map(|k| {
                    let (o, i, tap) = (k / (s * 9), (k / 9) % s, k % 9);
                    if o == i && tap == 4 { 1.0 } else { 0.0 }
                })
                .collect();
            let mut l = ConvPrelu::new(s, s, 3, &device);
            l.conv.weight = Param::from_tensor(
                Tensor::<1>::from_floats(w.as_slice(), &device).reshape([s, s, 3, 3]),
            );
            l.act.alpha = Param::from_tensor(Tensor::ones([s], &device));
            self.layers.push(l);
        }
        self.layers.push(expand);
        Ok(self)
    }
}

impl SrNet for Fsrcnn {
    fn scale(&self) -> usize {
        self.scale
    }

    /// `[b, 1, h, w]` LR Y in [0, 1] -> `[b, 1, scale h, scale w]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = x;
        for l in &self.layers {
            x = l.forward(x);
        }
        conv_transpose2d(&self.deconv, x)
    }

    fn margin(&self) -> usize {
        // LR pixels that reach an output pixel: 2 (5x5) + m (3x3 layers) + ceil(4 / scale) + 1.
        2 + self.layers.len().saturating_sub(3) + 4usize.div_ceil(self.scale) + 1
    }

    fn take_output_grads(
        &self,
        grads: &mut burn::tensor::Gradients,
    ) -> burn::optim::GradientsParams {
        burn::optim::GradientsParams::from_module(grads, &self.deconv)
    }
}

impl super::SrKind for FsrcnnConfig {
    fn scale(&self) -> usize {
        self.scale
    }
    fn set_scale(&mut self, scale: usize) {
        self.scale = scale;
    }
    fn validate(&self) -> Result<()> {
        FsrcnnConfig::validate(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::load_weights;

    /// PyTorch as the oracle: a randomly initialised FSRCNN x3 saved by
    /// `python3 bench/reference/fsrcnn.py --make-fixture crates/genlab/tests/fixtures/fsrcnn-x3-seed0.safetensors`
    /// (torch.nn.Conv2d / PReLU / ConvTranspose2d(stride 3, padding 4, output_padding 2)), loaded
    /// here, run on the same input; the script printed the values below.
    #[test]
    fn forward_matches_pytorch() {
        let device = Device::flex();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fsrcnn-x3-seed0.safetensors");
        let net = load_weights(
            FsrcnnConfig {
                scale: 3,
                ..Default::default()
            }
            .init(&device),
            &path,
        )
        .expect("fixture weights");
        // (3 y + 5 x) % 11 / 10 on a 6 x 7 grid.
        let x: Vec<f32> = (0..6)
            .flat_map(|y| (0..7).map(move |x| ((3 * y + 5 * x) % 11) as f32 / 10.0))
            .collect();
        let x = Tensor::<1>::from_floats(x.as_slice(), &device).reshape([1, 1, 6, 7]);
        let y = net.forward(x);
        assert_eq!(y.dims(), [1, 1, 18, 21]);
        let v = y.into_data().try_into_vec::<f32>().expect("f32");
        let row0 = [
            0.065459, 0.072784, 0.095739, -0.006908, 0.068096, 0.096823, -0.009443, 0.067791,
        ];
        let row5 = [
            0.046561, 0.018441, -0.016151, 0.070648, 0.002556, -0.013042, 0.076606, 0.00098,
        ];
        for (k, want) in row0.iter().enumerate() {
            assert!(
                (v[k] - want).abs() < 2e-5,
                "row 0 col {k}: {} vs {want}",
                v[k]
            );
        }
        for (k, want) in row5.iter().enumerate() {
            assert!(
                (v[5 * 21 + k] - want).abs() < 2e-5,
                "row 5 col {k}: {} vs {want}",
                v[5 * 21 + k]
            );
        }
        let sum: f32 = v.iter().sum();
        assert!((sum - 12.64356).abs() < 1e-3, "sum {sum}");
    }

    /// Largest |after - before| over a parameter tensor.
    fn max_change<const D: usize>(before: &Tensor<D>, after: &Tensor<D>) -> f32 {
        (after.clone() - before.clone())
            .abs()
            .max()
            .into_scalar::<f32>()
    }

    /// A whole FSRCNN's gradients through genlab's layers (nn::ops) equal those through
    /// burn's own layers, parameter by parameter.
    #[test]
    fn gradients_match_burns_layers() {
        let ad = Device::flex().autodiff();
        let net = FsrcnnConfig::default().init(&ad);
        let x = Tensor::<4>::random([4, 1, 12, 10], burn::tensor::Distribution::Default, &ad);
        let y = Tensor::<4>::random([4, 1, 24, 20], burn::tensor::Distribution::Default, &ad);
        let burn_forward = |x: Tensor<4>| {
            let mut x = x;
            for l in &net.layers {
                x = l.act.forward(l.conv.forward(x));
            }
            net.deconv.forward(x)
        };
        let ours = (net.forward(x.clone()) - y.clone())
            .powi_scalar(2)
            .mean()
            .backward();
        let theirs = (burn_forward(x) - y).powi_scalar(2).mean().backward();
        let mut params: Vec<Tensor<4>> = Vec::new();
        let mut small: Vec<Tensor<1>> = Vec::new();
        for l in &net.layers {
            params.push(l.conv.weight.val());
            small.extend(l.conv.bias.as_ref().map(|b| b.val()));
            small.push(l.act.alpha.val());
        }
        params.push(net.deconv.weight.val());
        small.extend(net.deconv.bias.as_ref().map(|b| b.val()));
        let tol = burn::tensor::Tolerance::rel_abs(1e-4, 1e-6);
        for p in &params {
            let (a, b) = (p.grad(&ours).expect("grad"), p.grad(&theirs).expect("grad"));
            a.into_data().assert_approx_eq::<f32>(&b.into_data(), tol);
        }
        for p in &small {
            let (a, b) = (p.grad(&ours).expect("grad"), p.grad(&theirs).expect("grad"));
            a.into_data().assert_approx_eq::<f32>(&b.into_data(), tol);
        }
    }

    /// Adam's first step moves every weight by about `lr` (m / sqrt(v) = sign(g)), so after one
    /// `adam_step` the transposed convolution moves by about `lr * output_lr_scale` and every
    /// other layer by about `lr`: the two rates really reach their layers.
    #[test]
    fn output_layer_learns_at_its_own_rate() {
        use burn::optim::{AdamConfig, ModuleOptimizer};
        let ad = Device::flex().autodiff();
        let net = FsrcnnConfig::default().init(&ad);
        let (first_before, deconv_before) =
            (net.layers[0].conv.weight.val(), net.deconv.weight.val());
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Default, &ad);
        let y = Tensor::<4>::random([2, 1, 16, 16], burn::tensor::Distribution::Default, &ad);
        let loss = (net.forward(x) - y).powi_scalar(2).mean();
        // A tiny epsilon: the first layer's gradients are ~1e-7 behind the small-init deconv.
        let mut optim: ModuleOptimizer = AdamConfig::new().with_epsilon(1e-15).init();
        let (lr, scale) = (1e-2, 0.1);
        let net = crate::train::sr::adam_step(&mut optim, net, loss, lr, scale);
        let first = max_change(&first_before, &net.layers[0].conv.weight.val());
        let deconv = max_change(&deconv_before, &net.deconv.weight.val());
        assert!((first - 1e-2).abs() < 1e-4, "first conv moved {first}");
        assert!((deconv - 1e-3).abs() < 1e-5, "deconv moved {deconv}");
        // And with the scale at 1 both move by lr.
        let net = FsrcnnConfig::default().init(&ad);
        let deconv_before = net.deconv.weight.val();
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Default, &ad);
        let y = Tensor::<4>::random([2, 1, 16, 16], burn::tensor::Distribution::Default, &ad);
        let loss = (net.forward(x) - y).powi_scalar(2).mean();
        let mut optim: ModuleOptimizer = AdamConfig::new().with_epsilon(1e-15).init();
        let net = crate::train::sr::adam_step(&mut optim, net, loss, lr, 1.0);
        let deconv = max_change(&deconv_before, &net.deconv.weight.val());
        assert!(
            (deconv - 1e-2).abs() < 1e-4,
            "deconv moved {deconv} at scale 1"
        );
    }

    #[test]
    fn output_is_scale_times_input_for_every_scale() {
        let device = Device::flex();
        for scale in [2, 3, 4] {
            let net = FsrcnnConfig {
                scale,
                ..Default::default()
            }
            .init(&device);
            let y = net.forward(Tensor::<4>::zeros([2, 1, 9, 11], &device));
            assert_eq!(y.dims(), [2, 1, 9 * scale, 11 * scale]);
        }
        assert!(
            FsrcnnConfig {
                scale: 5,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }

    /// Growing a trained-looking network (random weights, non-zero biases and slopes) to more
    /// mapping layers leaves its output unchanged, the grown network saves and loads as a plain
    /// FSRCNN with the new `m`, and shrinking is refused.
    #[test]
    fn deepen_keeps_the_function_and_loads_as_the_deeper_config() {
        let device = Device::flex();
        let cfg = FsrcnnConfig {
            scale: 3,
            ..Default::default()
        };
        let mut net = cfg.init(&device);
        for l in &mut net.layers {
            let b = l.conv.bias.take().expect("bias").val();
            l.conv.bias = Some(Param::from_tensor(
                b.random_like(burn::tensor::Distribution::Normal(0.0, 0.1)),
            ));
            let a = l.act.alpha.val();
            l.act.alpha =
                Param::from_tensor(a.random_like(burn::tensor::Distribution::Uniform(-0.5, 0.5)));
        }
        let x = Tensor::<4>::random([2, 1, 10, 9], burn::tensor::Distribution::Default, &device);
        let before = net.forward(x.clone());
        let grown = net.deepen(6).expect("deepen");
        assert_eq!(grown.mapping_layers(), 6);
        let after = grown.forward(x.clone());
        assert!(
            max_change(&before, &after) < 1e-6,
            "{}",
            max_change(&before, &after)
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.safetensors");
        crate::checkpoint::save_weights(&grown, &path, "fsrcnn", 0).expect("save");
        let deeper = FsrcnnConfig {
            m: 6,
            ..cfg.clone()
        }
        .init(&device);
        let loaded = load_weights(deeper, &path).expect("the grown net is an FSRCNN(56, 12, 6)");
        assert!(max_change(&before, &loaded.forward(x)) < 1e-6);

        assert!(loaded.deepen(5).is_err());
    }
}
