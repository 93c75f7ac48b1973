//! The feature network of genlab's Fréchet distance and precision/recall: a small CNN classifier
//! trained on the same dataset as the generative models it scores. Inception-v3 (whose features
//! define FID, Heusel et al. 2017) cannot be fetched offline and knows nothing of 28x28 digits or
//! clothes; a classifier trained on the data itself is the usual substitute for MNIST-like sets
//! (e.g. the "FID with a LeNet" of Lucic et al. 2018, Section 5). Scores computed with it are
//! comparable only with other scores from the same shipped weights: they are not Inception FID.
//!
//! Two conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool) and a 128-wide hidden layer whose
//! activations are the features: `[c, h, w] -> 32 x h/2 -> 64 x h/4 -> 128 -> classes`.

use crate::nn::ops::activation::relu;
use crate::nn::ops::batch_norm::batch_norm;
use crate::nn::ops::conv::conv2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Configuration of a [`Classifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    /// Channels of the two conv blocks.
    pub channels: [usize; 2],
    /// Width of the feature layer.
    pub features: usize,
    /// Number of classes.
    pub classes: usize,
    /// Training augmentation: random shifts of up to this many pixels.
    pub shift: usize,
    /// Dropout probability on the feature layer while training (0 = none; features and
    /// inference are unaffected).
    pub dropout: f64,
    /// Image shape `[c, h, w]`; set from the dataset when training.
    pub image: [usize; 3],
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            channels: [32, 64],
            features: 128,
            classes: 10,
            shift: 2,
            dropout: 0.0,
            image: [1, 28, 28],
        }
    }
}

impl ClassifierConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let [c, h, w] = self.image;
        if !matches!(c, 1 | 3) || h < 4 || w < 4 || h % 4 != 0 || w % 4 != 0 {
            return Err(Error::config(
                "model.image",
                format!("{:?}", self.image),
                "[1 or 3 channels, height and width multiples of 4]",
            ));
        }
        if self.channels.contains(&0) || self.features == 0 || self.classes < 2 {
            return Err(Error::config(
                "model",
                format!(
                    "channels {:?}, features {}, classes {}",
                    self.channels, self.features, self.classes
                ),
                "channels > 0, features > 0, classes >= 2",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(
                "model.dropout",
                self.dropout,
                "a probability in [0, 1)",
            ));
        }
        if self.shift >= h.min(w) / 2 {
            return Err(Error::config(
                "model.shift",
                self.shift,
                "less than half the image side",
            ));
        }
        Ok(())
    }

    /// Builds the model with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Classifier {
        let conv = |i: usize, o: usize| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let [c0, c1] = self.channels;
        let [c, h, w] = self.image;
        Classifier {
            conv1: conv(c, c0),
            norm1: BatchNormConfig::new(c0).init(device),
            conv2: conv(c0, c1),
            norm2: BatchNormConfig::new(c1).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc: LinearConfig::new(c1 * (h / 4) * (w / 4), self.features).init(device),
            out: LinearConfig::new(self.features, self.classes).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            config: self.clone(),
        }
    }
}

/// A small CNN classifier whose hidden layer gives image features.
#[derive(Module, Debug)]
pub struct Classifier {
    /// First 3x3 conv.
    pub conv1: Conv2d,
    /// Its batch norm.
    pub norm1: BatchNorm,
    /// Second 3x3 conv.
    pub conv2: Conv2d,
    /// Its batch norm.
    pub norm2: BatchNorm,
    /// 2x2 max pool after each block.
    pub pool: MaxPool2d,
    /// Flattened maps -> features.
    pub fc: Linear,
    /// Features -> class logits.
    pub out: Linear,
    /// Dropout on the features (training only).
    pub dropout: Dropout,
    /// The config the model was built from.
    #[module(skip)]
    pub config: ClassifierConfig,
}

impl Classifier {
    /// The feature vector (after ReLU).
    ///
    /// # Shapes
    /// `[b, c, h, w]` in [0, 1] -> `[b, features]`
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self
            .pool
            .forward(relu(batch_norm(&self.norm1, conv2d(&self.conv1, x)))); // [b, c0, h/2, w/2]
        let x = self
            .pool
            .forward(relu(batch_norm(&self.norm2, conv2d(&self.conv2, x)))); // [b, c1, h/4, w/4]
        relu(self.fc.forward(x.flatten(1, 3))) // [b, features]
    }

    /// Class logits.
    ///
    /// # Shapes
    /// `[b, c, h, w]` in [0, 1] -> `[b, classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.out.forward(self.dropout.forward(self.features(x)))
    }
}

/// Cross-entropy of class logits against integer labels, per image:
/// `logsumexp(l) - l[y]` (PyTorch's `cross_entropy(reduction='none')`).
///
/// # Shapes
/// `[b, k], [b] (int) -> [b]`
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let max = logits.clone().max_dim(1).detach(); // [b, 1]
    let lse = (logits.clone() - max.clone()).exp().sum_dim(1).log() + max; // [b, 1]
    let picked = logits.gather(1, labels.unsqueeze_dim(1)); // [b, 1]
    (lse - picked).squeeze_dim(1)
}

loads_as!(ClassifierConfig, classifier);

impl super::ModelKind for ClassifierConfig {
    fn num_params(&self) -> usize {
        self.init(&Device::flex()).num_params()
    }
    fn validate(&self) -> Result<()> {
        ClassifierConfig::validate(self)
    }
    fn image(&self) -> [usize; 3] {
        self.image
    }
    fn set_image(&mut self, shape: [usize; 3]) {
        self.image = shape;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let d = Device::flex();
        for image in [[1, 28, 28], [3, 32, 32]] {
            let cfg = ClassifierConfig {
                image,
                ..ClassifierConfig::default()
            };
            cfg.validate().expect("valid");
            let m = cfg.init(&d);
            let x = Tensor::zeros([2, image[0], image[1], image[2]], &d);
            assert_eq!(m.features(x.clone()).dims(), [2, 128]);
            assert_eq!(m.forward(x).dims(), [2, 10]);
        }
    }

    /// Dropout acts only while training (on the autodiff device), so logits at evaluation are
    /// deterministic; a probability outside [0, 1) is a config error.
    #[test]
    fn dropout_is_training_only_and_validated() {
        let d = Device::flex();
        let cfg = ClassifierConfig {
            dropout: 0.5,
            ..ClassifierConfig::default()
        };
        cfg.validate().expect("valid");
        let m = cfg.init(&d);
        let x = Tensor::<4>::random([4, 1, 28, 28], burn::tensor::Distribution::Default, &d);
        let a = m.forward(x.clone()).into_data();
        let b = m.forward(x.clone()).into_data();
        assert_eq!(a, b);
        // On the training device two passes drop different features.
        let ad = d.clone().autodiff();
        let m = cfg.init(&ad);
        let x = x.to_device(&ad);
        let a = m.forward(x.clone()).into_data();
        let b = m.forward(x).into_data();
        assert_ne!(a, b);
        for p in [-0.1, 1.0, f64::NAN] {
            let bad = ClassifierConfig {
                dropout: p,
                ..ClassifierConfig::default()
            };
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains("model.dropout"), "{e}");
        }
    }

    /// PyTorch 2.15, float64:
    /// ```python
    /// l = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]]); y = torch.tensor([2, 1])
    /// F.cross_entropy(l, y, reduction='none')  # [1.7413112966571571, 0.05498523537714723]
    /// ```
    #[test]
    fn cross_entropy_matches_pytorch() {
        let d = Device::flex();
        let l = Tensor::<2>::from_floats([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], &d);
        let y = Tensor::<1, Int>::from_ints([2, 1], &d);
        let v = cross_entropy(l, y)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        assert!((v[0] - 1.741_311_3).abs() < 1e-5, "{v:?}");
        assert!((v[1] - 0.054_985_235).abs() < 1e-5, "{v:?}");
    }
}
