//! Deterministic autoencoder (Hinton & Salakhutdinov 2006): an encoder to a small code and a
//! decoder back to the image, trained on reconstruction alone. The dense default is the classic
//! 784-256-784 (one 256-unit ReLU code layer); the conv variant shares the VAE's conv body.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use super::Objective;
use crate::error::{Error, Result};
use crate::loss;
use crate::nn::ops::activation::relu;
use crate::nn::ops::linear::linear;
use crate::nn::{Arch, BodyConfig, Decoder, Encoder};

/// Reconstruction loss of an autoencoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AeLoss {
    /// Mean squared error per pixel (of the sigmoid output).
    Mse,
    /// Binary cross-entropy summed over pixels (of the logits).
    Bce,
}

/// Configuration of an [`Autoencoder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoencoderConfig {
    /// `mlp` or `conv`.
    pub arch: Arch,
    /// MLP hidden widths before the code layer (default none: 784-256-784).
    pub hidden: Vec<usize>,
    /// Conv channels (default `[32, 64]`).
    pub channels: Vec<usize>,
    /// Code size (default 256).
    pub code: usize,
    /// `mse` or `bce`.
    pub loss: AeLoss,
    /// Image shape `[c, h, w]`; set from the dataset when training.
    pub image: [usize; 3],
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Mlp,
            hidden: vec![],
            channels: vec![32, 64],
            code: 256,
            loss: AeLoss::Mse,
            image: [1, 28, 28],
        }
    }
}

impl AutoencoderConfig {
    /// The encoder/decoder body part of the config.
    pub fn body(&self) -> BodyConfig {
        BodyConfig {
            arch: self.arch,
            hidden: self.hidden.clone(),
            channels: self.channels.clone(),
            decoder_batch_norm: false,
            image: self.image,
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        self.body().validate("model")?;
        if self.code == 0 {
            return Err(Error::config("model.code", self.code, "> 0"));
        }
        Ok(())
    }

    /// Builds the model with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Autoencoder {
        let body = self.body();
        Autoencoder {
            encoder: Encoder::new(&body, device),
            fc_code: LinearConfig::new(Encoder::out_features(&body), self.code).init(device),
            decoder: Decoder::new(&body, self.code, device),
            config: self.clone(),
        }
    }
}

/// A plain autoencoder.
#[derive(Module, Debug)]
pub struct Autoencoder {
    /// Image -> features.
    pub encoder: Encoder,
    /// Features -> code (ReLU).
    pub fc_code: Linear,
    /// Code -> image logits.
    pub decoder: Decoder,
    /// The config the model was built from.
    #[module(skip)]
    pub config: AutoencoderConfig,
}

impl Autoencoder {
    /// # Shapes
    /// `[b, c, h, w] -> [b, code]`
    pub fn encode(&self, x: Tensor<4>) -> Tensor<2> {
        relu(linear(&self.fc_code, self.encoder.forward(x)))
    }

    /// The reconstruction in `[0, 1]`.
    ///
    /// # Shapes
    /// `[b, code] -> [b, c, h, w]`
    pub fn decode(&self, code: Tensor<2>) -> Tensor<4> {
        sigmoid(self.decoder.forward(code))
    }

    /// Reconstruction loss per image.
    ///
    /// # Shapes
    /// `x: [b, c, h, w]`
    pub fn objective(&self, x: Tensor<4>) -> Objective {
        let logits = self.decoder.forward(self.encode(x.clone())).flatten(1, 3); // [b, c*h*w]
        let t = x.flatten(1, 3);
        let recon = match self.config.loss {
            AeLoss::Mse => loss::mse_per_image(sigmoid(logits), t),
            AeLoss::Bce => loss::bce_with_logits(logits, t),
        };
        Objective {
            loss: recon.clone().mean(),
            recon,
            kl: None,
        }
    }
}

loads_as!(AutoencoderConfig, encoder);

impl super::ModelKind for AutoencoderConfig {
    fn num_params(&self) -> usize {
        self.init(&Device::flex()).num_params()
    }
    fn validate(&self) -> Result<()> {
        AutoencoderConfig::validate(self)
    }
    fn image(&self) -> [usize; 3] {
        self.image
    }
    fn set_image(&mut self, shape: [usize; 3]) {
        self.image = shape;
    }
    fn can_encode(&self) -> bool {
        true
    }
    fn supports_shards(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_dense_and_conv() {
        let d = Device::flex();
        for arch in [Arch::Mlp, Arch::Conv] {
            let cfg = AutoencoderConfig {
                arch,
                code: 32,
                ..AutoencoderConfig::default()
            };
            let m = cfg.init(&d);
            let x = Tensor::<4>::zeros([2, 1, 28, 28], &d);
            assert_eq!(m.encode(x.clone()).dims(), [2, 32]);
            assert_eq!(m.decode(m.encode(x.clone())).dims(), [2, 1, 28, 28]);
            assert_eq!(m.objective(x).recon.dims(), [2]);
        }
    }

    #[test]
    fn dense_default_is_784_256_784() {
        let m = AutoencoderConfig::default().init(&Device::flex());
        // 784*256 + 256 + 256*784 + 784 parameters.
        assert_eq!(m.num_params(), 784 * 256 + 256 + 256 * 784 + 784);
    }
}
