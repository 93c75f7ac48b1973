//! Losses, each per image (`[b]`), summed over pixels or latent dimensions. Callers average over
//! the batch. Values are in nats.

use burn::prelude::*;

/// Binary cross-entropy of Bernoulli logits `l` against targets `x` in `[0, 1]`, summed over
/// features: `sum_j max(l_j, 0) - l_j x_j + log(1 + exp(-|l_j|))`, the numerically stable form of
/// `-sum_j x_j log sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j))` (PyTorch's
/// `binary_cross_entropy_with_logits`). This is the Bernoulli decoder's `-log p(x|z)`
/// (Kingma & Welling 2014, Appendix C.1).
///
/// # Shapes
/// `[b, n], [b, n] -> [b]`
pub fn bce_with_logits(logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let pos = logits.clone().clamp_min(0.0);
    let soft = logits.clone().abs().neg().exp().log1p();
    (pos - logits * target + soft).sum_dim(1).squeeze_dim(1)
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
