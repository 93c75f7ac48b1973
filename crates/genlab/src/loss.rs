//! Losses, each per image (`[b]`), summed over pixels or latent dimensions. Callers average over
//! the batch. Values are in nats.

use burn::prelude::*;

/// Binary cross-entropy of Bernoulli logits `l` against targets `x` in `[0, 1]`, summed over
/// features: `sum_j max(l_j, 0) - l_j x_j + log(1 + exp(-|l_j|))`, the numerically stable form of
/// `-sum_j x_j log sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j))` (PyTorch's
/// `binary_cross_entropy_with_logits`). This is the Bernoulli decoder's `-log p(x|z)`
/// (Kingma & Welling 2014, Appendix C.1). One fused pass, and one for its gradient, on the CPU
/// backend (`nn::ops::bce`).
///
/// # Shapes
/// `[b, n], [b, n] -> [b]`
pub fn bce_with_logits(logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    crate::nn::ops::bce::bce_with_logits_rows(logits, target)
}

/// Summed squared error `sum_j (y_j - x_j)^2`, which is the Gaussian decoder's `-log p(x|z)` with
/// variance 1/2, up to the constant `n/2 log(pi)` (left out; genlab reports it as "up to a constant").
///
/// # Shapes
/// `[b, n], [b, n] -> [b]`
pub fn squared_error(pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    (pred - target).powi_scalar(2).sum_dim(1).squeeze_dim(1)
}

/// Closed-form `KL(N(mu, exp(logvar)) || N(0, I))` summed over latent dimensions:
/// `-1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))` (Kingma & Welling 2014, Appendix B).
///
/// # Shapes
/// `[b, d], [b, d] -> [b]`
pub fn kl_standard_normal(mu: Tensor<2>, logvar: Tensor<2>) -> Tensor<1> {
    let inner = logvar.clone().add_scalar(1.0) - mu.powi_scalar(2) - logvar.exp();
    inner.sum_dim(1).squeeze_dim(1).mul_scalar(-0.5)
}

/// Mean squared error per image, averaged over features.
///
/// # Shapes
/// `[b, n], [b, n] -> [b]`
pub fn mse_per_image(pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let n = pred.dims()[1] as f64;
    squared_error(pred, target).div_scalar(n)
}

/// Which adversarial objective a GAN trains with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GanLoss {
    /// Goodfellow et al. 2014's cross-entropy discriminator, with the generator maximising
    /// `log D(G(z))` instead of minimising `log(1 - D(G(z)))` (Section 3: strong gradients early on).
    NonSaturating,
    /// The hinge loss (Lim & Ye 2017; Miyato et al. 2018, Eq. 17): `D` minimises
    /// `relu(1 - D(x)) + relu(1 + D(G(z)))`, `G` minimises `-D(G(z))`. Its discriminator stops
    /// pushing on samples it already separates by a margin, which keeps training steadier.
    Hinge,
}

impl GanLoss {
    /// The discriminator's loss per image, from its logits on real and generated images.
    /// `real_target` is 1, or `1 - s` with one-sided label smoothing (Salimans et al. 2016,
    /// Section 3.4); the hinge loss scales its real margin the same way.
    ///
    /// # Shapes
    /// `[b, 1], [b, 1] -> [b]`
    pub fn discriminator(self, real: Tensor<2>, fake: Tensor<2>, real_target: f64) -> Tensor<1> {
        match self {
            GanLoss::NonSaturating => {
                let ones = real.ones_like().mul_scalar(real_target);
                let zeros = fake.zeros_like();
                bce_with_logits(real, ones) + bce_with_logits(fake, zeros)
            }
            GanLoss::Hinge => {
                let r = real.neg().add_scalar(real_target).clamp_min(0.0);
                let f = fake.add_scalar(1.0).clamp_min(0.0);
                (r + f).squeeze_dim(1)
            }
        }
    }

    /// The generator's loss per image, from the discriminator's logits on its images.
    ///
    /// # Shapes
    /// `[b, 1] -> [b]`
    pub fn generator(self, fake: Tensor<2>) -> Tensor<1> {
        match self {
            GanLoss::NonSaturating => {
                let ones = fake.ones_like();
                bce_with_logits(fake, ones)
            }
            GanLoss::Hinge => fake.neg().squeeze_dim(1),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Reference values from PyTorch 2.15 (float64), bench/reference/oracles.py:
    //! ```python
    //! l = torch.tensor([[-2.0, -0.5, 0.0, 0.5, 3.0, 20.0]], dtype=torch.float64)
    //! t = torch.tensor([[0.0, 0.2, 0.5, 1.0, 0.9, 1.0]], dtype=torch.float64)
    //! F.binary_cross_entropy_with_logits(l, t, reduction='none').sum(dim=1)   # 2.216816513598027
    //! mu = torch.tensor([[0.5, -1.0, 0.0], [2.0, 0.1, -0.3]], dtype=torch.float64)
    //! lv = torch.tensor([[0.0, 0.5, -1.0], [-2.0, 1.0, 0.3]], dtype=torch.float64)
    //! -0.5 * (1 + lv - mu**2 - lv.exp()).sum(dim=1)  # [0.8833003559357853, 3.0017379596358307]
    //! ```
    use super::*;

    fn close(a: f32, b: f64) {
        assert!(
            (f64::from(a) - b).abs() < 1e-5 * b.abs().max(1.0),
            "{a} vs {b}"
        );
    }

    #[test]
    fn bce_matches_pytorch() {
        let d = Device::flex();
        let l = Tensor::<2>::from_floats([[-2.0, -0.5, 0.0, 0.5, 3.0, 20.0]], &d);
        let t = Tensor::<2>::from_floats([[0.0, 0.2, 0.5, 1.0, 0.9, 1.0]], &d);
        close(
            bce_with_logits(l, t).into_scalar::<f32>(),
            2.216816513598027,
        );
    }

    #[test]
    fn kl_matches_pytorch() {
        let d = Device::flex();
        let mu = Tensor::<2>::from_floats([[0.5, -1.0, 0.0], [2.0, 0.1, -0.3]], &d);
        let lv = Tensor::<2>::from_floats([[0.0, 0.5, -1.0], [-2.0, 1.0, 0.3]], &d);
        let v = kl_standard_normal(mu, lv)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        close(v[0], 0.8833003559357853);
        close(v[1], 3.0017379596358307);
    }

    /// PyTorch 2.15, float64:
    /// ```python
    /// r = torch.tensor([2.0, -1.0, 0.3]); f = torch.tensor([-0.5, 1.5, 0.0])
    /// bce = lambda l, t: F.binary_cross_entropy_with_logits(l, torch.full_like(l, t), reduction='none')
    /// bce(r, 0.9) + bce(f, 0.0)  # [0.8010049952230791, 2.9146749655009754, 1.2775024250284726]
    /// bce(f, 1.0)                # [0.9740769841801067, 0.2014132779827524, 0.6931471805599453]
    /// F.relu(0.9 - r) + F.relu(1 + f)  # [0.5, 4.4, 1.6]
    /// ```
    #[test]
    fn gan_losses_match_pytorch() {
        let d = Device::flex();
        let r = Tensor::<2>::from_floats([[2.0], [-1.0], [0.3]], &d);
        let f = Tensor::<2>::from_floats([[-0.5], [1.5], [0.0]], &d);
        let v = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().expect("f32");
        let ns = GanLoss::NonSaturating;
        for (a, b) in v(ns.discriminator(r.clone(), f.clone(), 0.9))
            .into_iter()
            .zip([0.8010049952230791, 2.9146749655009754, 1.2775024250284726])
        {
            close(a, b);
        }
        for (a, b) in v(ns.generator(f.clone())).into_iter().zip([
            0.9740769841801067,
            0.2014132779827524,
            std::f64::consts::LN_2,
        ]) {
            close(a, b);
        }
        for (a, b) in v(GanLoss::Hinge.discriminator(r, f.clone(), 0.9))
            .into_iter()
            .zip([0.5, 4.4, 1.6])
        {
            close(a, b);
        }
        assert_eq!(v(GanLoss::Hinge.generator(f)), vec![0.5, -1.5, 0.0]);
    }

    #[test]
    fn squared_error_and_mse() {
        let d = Device::flex();
        let a = Tensor::<2>::from_floats([[1.0, 2.0], [0.0, 0.0]], &d);
        let b = Tensor::<2>::from_floats([[0.0, 0.0], [0.0, 3.0]], &d);
        let v = mse_per_image(a, b)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        assert_eq!(v, vec![2.5, 4.5]);
    }
}
