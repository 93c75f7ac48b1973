//! ESPCN (Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
//! Sub-Pixel Convolutional Neural Network", CVPR 2016): the comparison network for FSRCNN. It
//! also works at low resolution and upscales at the end, but with a sub-pixel convolution (a conv
//! to scale^2 channels, then a pixel shuffle) instead of a transposed convolution.
//!
//! ```text
//! LR Y [b, 1, h, w] -> conv 5x5, 64 + tanh -> conv 3x3, 32 + tanh -> conv 3x3, scale^2
//!   -> pixel shuffle -> [b, 1, scale h, scale w]
//! ```

use crate::nn::ops::activation::tanh;
use crate::nn::ops::conv::conv2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{PaddingConfig2d, PixelShuffle, PixelShuffleConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::SrNet;
use crate::error::{Error, Result};

/// Configuration of an [`Espcn`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EspcnConfig {
    /// Upscaling factor (2, 3 or 4).
    pub scale: usize,
    /// Channels of the two hidden layers (default 64, 32).
    pub channels: [usize; 2],
}

impl Default for EspcnConfig {
    fn default() -> Self {
        Self {
            scale: 2,
            channels: [64, 32],
        }
    }
}

/// ESPCN; see the module docs.
#[derive(Module, Debug)]
pub struct Espcn {
    c1: Conv2d,
    c2: Conv2d,
    c3: Conv2d,
    shuffle: PixelShuffle,
    scale: usize,
}

fn conv(cin: usize, cout: usize, k: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .init(device)
}

impl EspcnConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        super::check_scale(self.scale)
            .map_err(|_| Error::config("model.scale", self.scale, "2, 3 or 4"))?;
        if self.channels.contains(&0) {
            return Err(Error::config(
                "model.channels",
                format!("{:?}", self.channels),
                "> 0",
            ));
        }
        Ok(())
    }

    /// A freshly initialised network (burn's default init).
    pub fn init(&self, device: &Device) -> Espcn {
        let [a, b] = self.channels;
        let r = self.scale;
        Espcn {
            c1: conv(1, a, 5, device),
            c2: conv(a, b, 3, device),
            c3: conv(b, r * r, 3, device),
            shuffle: PixelShuffleConfig::new(r).init(),
            scale: r,
        }
    }
}

impl SrNet for Espcn {
    fn scale(&self) -> usize {
        self.scale
    }

    /// `[b, 1, h, w]` -> `[b, 1, scale h, scale w]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = tanh(conv2d(&self.c1, x));
        let x = tanh(conv2d(&self.c2, x));
        self.shuffle.forward(conv2d(&self.c3, x))
    }

    fn margin(&self) -> usize {
        2 + 1 + 1 + 1
    }

    fn take_output_grads(
        &self,
        grads: &mut burn::tensor::Gradients,
    ) -> burn::optim::GradientsParams {
        burn::optim::GradientsParams::from_module(grads, &self.c3)
    }
}

impl super::SrKind for EspcnConfig {
    fn scale(&self) -> usize {
        self.scale
    }
    fn set_scale(&mut self, scale: usize) {
        self.scale = scale;
    }
    fn validate(&self) -> Result<()> {
        EspcnConfig::validate(self)
    }
}
