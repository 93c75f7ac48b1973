//! Blocks shared by two or more models: an MLP stack, a strided-conv encoder and a
//! transposed-conv decoder. Parameter names (`layers.0.weight`, `convs.1.bias`, ...) are part of
//! the checkpoint format: keep them stable. The operations they run, with genlab's own CPU
//! kernels forward and backward, are in [`ops`].

pub mod gan;
pub mod ops;

use crate::nn::ops::activation::relu;
use crate::nn::ops::linear::linear;
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use ops::batch_norm::batch_norm;
use ops::conv::{conv_transpose2d, conv2d};

/// Linear layers with a ReLU after every one of them.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `dims.len() - 1` linear layers.
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// Layers `dims[0] -> dims[1] -> ... -> dims[n]`; `dims = [d]` gives the identity.
    pub fn new(dims: &[usize], device: &Device) -> Self {
        let layers = dims
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Self { layers }
    }

    /// # Shapes
    /// `[b, dims[0]] -> [b, dims[n]]`
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        for l in &self.layers {
            x = relu(linear(l, x));
        }
        x
    }
}

/// Stride-2 4x4 convolutions (padding 1), each followed by ReLU, then flattened: every layer halves
/// the height and width (the DCGAN / conv-VAE encoder).
#[derive(Module, Debug)]
pub struct ConvEncoder {
    /// One conv per entry of `channels`.
    pub convs: Vec<Conv2d>,
}

impl ConvEncoder {
    /// `in_channels -> channels[0] -> ... -> channels[n-1]`.
    pub fn new(in_channels: usize, channels: &[usize], device: &Device) -> Self {
        let mut prev = in_channels;
        let convs = channels
            .iter()
            .map(|&c| {
                let conv = Conv2dConfig::new([prev, c], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device);
                prev = c;
                conv
            })
            .collect();
        Self { convs }
    }

    /// Flattened output size for an input of `[c, h, w]`.
    pub fn out_features(channels: &[usize], h: usize, w: usize) -> usize {
        let n = channels.len() as u32;
        channels.last().copied().unwrap_or(1) * (h >> n) * (w >> n)
    }

    /// # Shapes
    /// `[b, c, h, w] -> [b, channels[n-1] * (h / 2^n) * (w / 2^n)]`
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for conv in &self.convs {
            x = relu(conv2d(conv, x)); // [b, c_i, h / 2^i, w / 2^i]
        }
        x.flatten(1, 3)
    }
}

/// A linear layer to a small feature map, then stride-2 4x4 transposed convolutions (padding 1)
/// that double the size each time; ReLU between layers, none after the last (it outputs logits).
#[derive(Module, Debug)]
pub struct ConvDecoder {
    /// Latent -> first feature map.
    pub fc: Linear,
    /// Transposed convs, `channels[n-1] -> ... -> channels[0] -> out_channels`.
    pub deconvs: Vec<ConvTranspose2d>,
    /// With batch norm: one after the first feature map and after every transposed conv but
    /// the last, as in DCGAN's generator; empty without.
    pub norms: Vec<BatchNorm>,
    /// `[c, h, w]` of the first feature map.
    #[module(skip)]
    pub start: [usize; 3],
}

impl ConvDecoder {
    /// Mirror of [`ConvEncoder::new`] for an output of `[out_channels, h, w]`; `batch_norm`
    /// adds DCGAN's generator batch norms (Radford et al. 2016, Section 3).
    pub fn new(
        latent: usize,
        channels: &[usize],
        out: [usize; 3],
        batch_norm: bool,
        device: &Device,
    ) -> Self {
        let n = channels.len() as u32;
        let first = channels.last().copied().unwrap_or(out[0]);
        let start = [first, out[1] >> n, out[2] >> n];
        let fc = LinearConfig::new(latent, start.iter().product()).init(device);
        let mut outs: Vec<usize> = channels.iter().rev().skip(1).copied().collect();
        outs.push(out[0]);
        let mut prev = first;
        let deconvs = outs
            .into_iter()
            .map(|c| {
                let d = ConvTranspose2dConfig::new([prev, c], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .init(device);
                prev = c;
                d
            })
            .collect();
        let norms = if batch_norm {
            let mut widths = vec![first];
            widths.extend(channels.iter().rev().skip(1));
            widths
                .into_iter()
                .map(|c| gan::dcgan_batch_norm(c, device))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            fc,
            deconvs,
            norms,
            start,
        }
    }

    /// # Shapes
    /// `[b, latent] -> [b, out_c, h, w]` (logits)
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [c, h, w] = self.start;
        let b = z.dims()[0];
        let mut x = linear(&self.fc, z).reshape([b, c, h, w]); // [b, c, h / 2^n, w / 2^n]
        if let Some(bn) = self.norms.first() {
            x = batch_norm(bn, x);
        }
        x = relu(x);
        let last = self.deconvs.len().saturating_sub(1);
        for (i, d) in self.deconvs.iter().enumerate() {
            x = conv_transpose2d(d, x); // doubles h and w
            if i < last {
                if let Some(bn) = self.norms.get(i + 1) {
                    x = batch_norm(bn, x);
                }
                x = relu(x);
            }
        }
        x
    }
}

/// Which kind of network body a model uses, and its sizes. Shared by the autoencoder and the VAE.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyConfig {
    /// `mlp` (dense layers on the flattened image) or `conv` (strided convs / transposed convs).
    pub arch: Arch,
    /// MLP hidden widths, input side first; the decoder mirrors them. Ignored by `conv`.
    pub hidden: Vec<usize>,
    /// Conv channels of the stride-2 layers, input side first; the decoder mirrors them.
    /// Ignored by `mlp`.
    pub channels: Vec<usize>,
    /// Batch norm in the conv decoder (DCGAN's generator layout). Ignored by `mlp`.
    pub decoder_batch_norm: bool,
    /// Image shape `[c, h, w]` (set from the dataset when training).
    pub image: [usize; 3],
}

/// Network family of an encoder/decoder pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Dense layers.
    Mlp,
    /// Strided convolutions and transposed convolutions.
    Conv,
}

impl BodyConfig {
    /// Checks sizes; `prefix` names the TOML table in errors (e.g. `model`).
    pub fn validate(&self, prefix: &str) -> crate::Result<()> {
        let [c, h, w] = self.image;
        if !matches!(c, 1 | 3) || h == 0 || w == 0 {
            return Err(crate::Error::config(
                format!("{prefix}.image"),
                format!("{:?}", self.image),
                "[1 or 3 channels, height > 0, width > 0]",
            ));
        }
        match self.arch {
            Arch::Mlp => {
                if self.hidden.contains(&0) {
                    return Err(crate::Error::config(
                        format!("{prefix}.hidden"),
                        format!("{:?}", self.hidden),
                        "widths > 0",
                    ));
                }
            }
            Arch::Conv => {
                let n = self.channels.len();
                let m = 1usize << n;
                if n == 0 || self.channels.contains(&0) {
                    return Err(crate::Error::config(
                        format!("{prefix}.channels"),
                        format!("{:?}", self.channels),
                        "at least one conv layer, channels > 0",
                    ));
                }
                if !h.is_multiple_of(m) || !w.is_multiple_of(m) {
                    return Err(crate::Error::config(
                        format!("{prefix}.image"),
                        format!("{:?}", self.image),
                        format!(
                            "height and width divisible by 2^{n} = {m} for {n} stride-2 conv layers"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.image.iter().product()
    }
}

/// Image -> feature vector, by an MLP or a conv stack (exactly one of the two is present).
#[derive(Module, Debug)]
pub struct Encoder {
    /// Dense body.
    pub mlp: Option<Mlp>,
    /// Conv body.
    pub conv: Option<ConvEncoder>,
}

impl Encoder {
    /// Builds the body described by `cfg`.
    pub fn new(cfg: &BodyConfig, device: &Device) -> Self {
        match cfg.arch {
            Arch::Mlp => {
                let mut dims = vec![cfg.pixels()];
                dims.extend(&cfg.hidden);
                Self {
                    mlp: Some(Mlp::new(&dims, device)),
                    conv: None,
                }
            }
            Arch::Conv => Self {
                mlp: None,
                conv: Some(ConvEncoder::new(cfg.image[0], &cfg.channels, device)),
            },
        }
    }

    /// Width of the feature vector.
    pub fn out_features(cfg: &BodyConfig) -> usize {
        match cfg.arch {
            Arch::Mlp => cfg.hidden.last().copied().unwrap_or(cfg.pixels()),
            Arch::Conv => ConvEncoder::out_features(&cfg.channels, cfg.image[1], cfg.image[2]),
        }
    }

    /// # Shapes
    /// `[b, c, h, w] -> [b, features]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match (&self.mlp, &self.conv) {
            (Some(m), _) => m.forward(x.flatten(1, 3)), // [b, c*h*w] -> [b, hidden_n]
            (None, Some(c)) => c.forward(x),
            (None, None) => unreachable!("Encoder is built with exactly one body"),
        }
    }
}

/// MLP decoder: hidden layers (mirrored) then a linear layer to all pixels.
#[derive(Module, Debug)]
pub struct MlpDecoder {
    /// `latent -> hidden_n -> ... -> hidden_1`, ReLU after each.
    pub hidden: Mlp,
    /// `hidden_1 -> c*h*w` logits.
    pub out: Linear,
    /// `[c, h, w]` of the output.
    #[module(skip)]
    pub image: [usize; 3],
}

/// Latent vector -> image logits, by an MLP or transposed convs (exactly one is present).
#[derive(Module, Debug)]
pub struct Decoder {
    /// Dense body.
    pub mlp: Option<MlpDecoder>,
    /// Transposed-conv body.
    pub conv: Option<ConvDecoder>,
}

impl Decoder {
    /// Mirror of [`Encoder::new`] from a `latent`-wide code.
    pub fn new(cfg: &BodyConfig, latent: usize, device: &Device) -> Self {
        match cfg.arch {
            Arch::Mlp => {
                let mut dims = vec![latent];
                dims.extend(cfg.hidden.iter().rev());
                let last = *dims.last().expect("dims starts with latent");
                Self {
                    mlp: Some(MlpDecoder {
                        hidden: Mlp::new(&dims, device),
                        out: LinearConfig::new(last, cfg.pixels()).init(device),
                        image: cfg.image,
                    }),
                    conv: None,
                }
            }
            Arch::Conv => Self {
                mlp: None,
                conv: Some(ConvDecoder::new(
                    latent,
                    &cfg.channels,
                    cfg.image,
                    cfg.decoder_batch_norm,
                    device,
                )),
            },
        }
    }

    /// # Shapes
    /// `[b, latent] -> [b, c, h, w]` logits
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        match (&self.mlp, &self.conv) {
            (Some(m), _) => {
                let b = z.dims()[0];
                let [c, h, w] = m.image;
                linear(&m.out, m.hidden.forward(z)).reshape([b, c, h, w]) // [b, c*h*w] -> [b, c, h, w]
            }
            (None, Some(c)) => c.forward(z),
            (None, None) => unreachable!("Decoder is built with exactly one body"),
        }
    }
}

/// Gives every parameter an id derived from its path (`encoder.layers.0.weight`), so optimizer
/// state saved with a checkpoint finds its parameters again after the weights are reloaded.
#[derive(Default)]
pub struct StableParamIds {
    path: Vec<String>,
}

impl ModuleMapper for StableParamIds {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, tensor, mapper) = param.consume();
        // FNV-1a over the dotted path: stable across runs, platforms and Rust versions.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.path.join(".").bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Param::from_mapped_value(ParamId::from(h), tensor, mapper)
    }
}

/// Applies [`StableParamIds`] to a module.
pub fn with_stable_ids<M: Module>(m: M) -> M {
    m.map(&mut StableParamIds::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_encoder_decoder_shapes() {
        let device = Device::flex();
        let enc = ConvEncoder::new(1, &[32, 64], &device);
        let x = Tensor::<4>::zeros([2, 1, 28, 28], &device);
        assert_eq!(enc.forward(x).dims(), [2, 64 * 7 * 7]);
        assert_eq!(ConvEncoder::out_features(&[32, 64], 28, 28), 3136);
        let dec = ConvDecoder::new(16, &[32, 64], [1, 28, 28], false, &device);
        let z = Tensor::<2>::zeros([2, 16], &device);
        assert_eq!(dec.forward(z.clone()).dims(), [2, 1, 28, 28]);
        assert!(dec.norms.is_empty());
        // DCGAN's generator layout: a norm on the 64-channel first map and on the 32-channel
        // one, none on the output.
        let bn = ConvDecoder::new(16, &[32, 64], [1, 28, 28], true, &device);
        let widths: Vec<usize> = bn.norms.iter().map(|n| n.gamma.dims()[0]).collect();
        assert_eq!(widths, [64, 32]);
        assert_eq!(bn.forward(z).dims(), [2, 1, 28, 28]);
    }

    /// In training (autodiff device) the decoder's batch norms normalise with the batch's own
    /// statistics: with no bias in the first layer, codes scaled by 3 give a first map scaled
    /// by 3, which batch norm undoes, so both decode alike; without batch norm they do not.
    #[test]
    fn decoder_batch_norm_uses_batch_statistics_in_training() {
        let d = Device::flex().autodiff();
        let z = Tensor::<2>::from_data(
            TensorData::new(
                (0..32).map(|i| ((i * 5 % 7) as f32) - 3.0).collect(),
                [4, 8],
            ),
            &d,
        );
        let gap = |bn: bool| {
            let mut dec = ConvDecoder::new(8, &[4, 8], [1, 8, 8], bn, &d);
            dec.fc.bias = None;
            let run = |z: Tensor<2>| {
                dec.forward(z)
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("f32")
            };
            let (a, b) = (run(z.clone()), run(z.clone().mul_scalar(3.0)));
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max)
        };
        assert!(gap(true) < 1e-3, "{}", gap(true));
        assert!(gap(false) > 1e-2, "{}", gap(false));
    }

    /// Conv and transposed-conv layers against PyTorch 2.15 (bench/reference/oracles.py):
    /// ```python
    /// ct = nn.ConvTranspose2d(2, 1, kernel_size=4, stride=2, padding=1)
    /// ct.weight = torch.arange(32.).reshape(2, 1, 4, 4) * 0.01 - 0.1; ct.bias = [0.05]
    /// ct(torch.arange(18.).reshape(1, 2, 3, 3) * 0.1 - 0.5).flatten()
    /// c = nn.Conv2d(1, 2, kernel_size=4, stride=2, padding=1)
    /// c.weight = torch.arange(32.).reshape(2, 1, 4, 4) * 0.01 - 0.15; c.bias = [0.1, -0.2]
    /// c(torch.arange(36.).reshape(1, 1, 6, 6) * 0.05 - 0.8).flatten()
    /// ```
    /// Same weight layout as PyTorch (conv `[out, in, k, k]`, transposed `[in, out, k, k]`), which
    /// is what lets weights.safetensors load into the PyTorch reference models.
    #[test]
    fn conv_layers_match_pytorch() {
        use burn::module::Param;
        let d = Device::flex();
        let ramp = |n: usize, scale: f32, shift: f32| -> Vec<f32> {
            (0..n).map(|i| i as f32 * scale + shift).collect()
        };
        let mut dec = ConvDecoder::new(1, &[2], [1, 6, 6], false, &d);
        let ct = &mut dec.deconvs[0];
        ct.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(ramp(32, 0.01, -0.1), [2, 1, 4, 4]),
            &d,
        ));
        ct.bias = Some(Param::from_tensor(Tensor::from_floats([0.05], &d)));
        let x = Tensor::<4>::from_data(TensorData::new(ramp(18, 0.1, -0.5), [1, 2, 3, 3]), &d);
        let y = ct
            .forward(x)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let want_ct = [
            0.1190, 0.1920, 0.1920, 0.2040, 0.2080, 0.1340, 0.1820, 0.3220, 0.3340, 0.3460, 0.3660,
            0.2180, 0.1980, 0.3700, 0.3820, 0.4260, 0.4460, 0.2660, 0.2180, 0.3940, 0.4300, 0.4180,
            0.4620, 0.2660, 0.2820, 0.5380, 0.5740, 0.5940, 0.6380, 0.3620, 0.1990, 0.3600, 0.3840,
            0.3880, 0.4160, 0.2420,
        ];
        for (a, b) in y.iter().zip(want_ct) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert_eq!(y.len(), 36);

        let mut enc = ConvEncoder::new(1, &[2], &d);
        let c = &mut enc.convs[0];
        c.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(ramp(32, 0.01, -0.15), [2, 1, 4, 4]),
            &d,
        ));
        c.bias = Some(Param::from_tensor(Tensor::from_floats([0.1, -0.2], &d)));
        let x = Tensor::<4>::from_data(TensorData::new(ramp(36, 0.05, -0.8), [1, 1, 6, 6]), &d);
        let y = c.forward(x).into_data().try_into_vec::<f32>().expect("f32");
        let want_c = [
            0.3775, 0.4510, 0.3370, 0.2840, 0.2600, 0.1400, -0.1895, -0.3950, -0.3650, -0.5705,
            -0.5690, -0.3950, -0.0160, 0.1520, 0.1280, 0.1585, 0.3130, 0.1990,
        ];
        for (a, b) in y.iter().zip(want_c) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert_eq!(y.len(), 18);
    }

    #[test]
    fn mlp_shapes() {
        let device = Device::flex();
        let m = Mlp::new(&[784, 400, 20], &device);
        assert_eq!(m.forward(Tensor::zeros([3, 784], &device)).dims(), [3, 20]);
    }
}
