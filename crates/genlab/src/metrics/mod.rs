//! Evaluation on a held-out image set: the model's loss, -ELBO (VAEs), reconstruction MSE and
//! PSNR. Every number is a mean over images; losses are in nats per image.

pub mod frechet;
pub mod generative;
pub mod iwae;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Batches, ImageSet};
use crate::data::{batch_labels, batch_tensor, labels_tensor, one_hot};
use crate::error::Result;
use crate::models::classifier::{Classifier, cross_entropy};
use crate::models::{Cvae, ImageModel, Objective};
use crate::rng::{rng_for, standard_normal, stream};

/// Evaluation results, means over `images`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Images evaluated.
    pub images: usize,
    /// The training objective (recon + beta * KL), nats per image.
    pub loss: f64,
    /// Reconstruction term, `-log p(x|z)` with one posterior sample (nats per image).
    pub recon: f64,
    /// KL term (VAEs; 0 otherwise).
    pub kl: f64,
    /// `recon + kl`: the negative ELBO for VAEs (beta = 1 whatever the training beta).
    pub neg_elbo: f64,
    /// Mean squared error per pixel of the deterministic reconstruction (posterior mean), `[0, 1]` scale.
    pub mse: f64,
    /// `10 log10(1 / mse)` dB, from the mean MSE over the set.
    pub psnr: f64,
}

/// PSNR in dB of a mean squared error on a `[0, 1]` scale.
pub fn psnr_from_mse(mse: f64) -> f64 {
    if mse <= 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / mse).log10()
    }
}

/// Evaluates `model` (in validation mode, on a plain device) on `set`. The posterior noise is
/// drawn from a fixed stream of `seed`, so the same model gives the same numbers every time.
pub fn evaluate<M: ImageModel>(
    model: &M,
    set: &ImageSet,
    batch_size: usize,
    seed: u64,
    device: &Device,
) -> Result<EvalReport> {
    evaluate_with(
        set,
        batch_size,
        seed,
        model.latent_dim(),
        device,
        |x, _, eps| {
            let o = model.objective(x.clone(), eps);
            Ok((o, model.decode_mean(model.encode_mean(x))))
        },
    )
}

/// [`evaluate`] for a conditional VAE: every term given the image's label (`-log p(x|z, y)`,
/// `KL(q(z|x, y) || p(z))`, the reconstruction from `q`'s mean given `y`).
pub fn evaluate_conditional(
    model: &Cvae,
    set: &ImageSet,
    batch_size: usize,
    seed: u64,
    device: &Device,
) -> Result<EvalReport> {
    let k = model.config.classes.len();
    evaluate_with(
        set,
        batch_size,
        seed,
        model.config.latent,
        device,
        |x, idx, eps| {
            let y = one_hot(&batch_labels(set, idx, k)?, k, device); // [b, classes]
            let o = model.objective(x.clone(), y.clone(), eps);
            Ok((o, model.reconstruct(x, y)))
        },
    )
}

/// The evaluation loop: `step(x, indices, eps)` gives a batch's objective and deterministic
/// reconstruction; sums become means over `set`.
fn evaluate_with(
    set: &ImageSet,
    batch_size: usize,
    seed: u64,
    latent: usize,
    device: &Device,
    mut step: impl FnMut(Tensor<4>, &[usize], Tensor<2>) -> Result<(Objective, Tensor<4>)>,
) -> Result<EvalReport> {
    let order: Vec<usize> = (0..set.len()).collect();
    let (mut loss, mut recon, mut kl, mut se) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (i, idx) in Batches::new(&order, batch_size, 0).enumerate() {
        let x = batch_tensor(set, idx, device); // [b, c, h, w]
        let mut rng = rng_for(seed, stream::EVAL_NOISE, i as u64);
        let eps = standard_normal(&mut rng, idx.len(), latent, device);
        let (o, y) = step(x.clone(), idx, eps)?;
        let b = idx.len() as f64;
        loss += f64::from(o.loss.into_scalar::<f32>()) * b;
        recon += f64::from(o.recon.sum().into_scalar::<f32>());
        if let Some(k) = o.kl {
            kl += f64::from(k.sum().into_scalar::<f32>());
        }
        se += f64::from((y - x).powi_scalar(2).mean().into_scalar::<f32>()) * b;
    }
    let n = set.len().max(1) as f64;
    let mse = se / n;
    Ok(EvalReport {
        images: set.len(),
        loss: loss / n,
        recon: recon / n,
        kl: kl / n,
        neg_elbo: (recon + kl) / n,
        mse,
        psnr: psnr_from_mse(mse),
    })
}

/// Number of rows whose arg-max logit is the label.
pub fn correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> f64 {
    let pred = logits.argmax(1).squeeze_dim::<1>(1); // [b]
    f64::from(pred.equal(labels).int().sum().into_scalar::<i64>() as f32)
}

/// Test cross-entropy (nats per image) and accuracy of `model` on `set` (batches of `batch`).
pub fn accuracy(
    model: &Classifier,
    set: &ImageSet,
    batch: usize,
    device: &Device,
) -> Result<(f64, f64)> {
    let (mut loss, mut right) = (0.0, 0.0);
    let all: Vec<usize> = (0..set.len()).collect();
    for idx in all.chunks(batch.max(1)) {
        let x = batch_tensor(set, idx, device);
        let y = labels_tensor(set, idx, device)?;
        let logits = model.forward(x);
        loss += f64::from(
            cross_entropy(logits.clone(), y.clone())
                .sum()
                .into_scalar::<f32>(),
        );
        right += correct(logits, y);
    }
    let n = set.len().max(1) as f64;
    Ok((loss / n, right / n))
}

#[cfg(test)]
mod tests {
    #[test]
    fn psnr_of_known_mse() {
        assert!((super::psnr_from_mse(0.01) - 20.0).abs() < 1e-12);
        assert!(super::psnr_from_mse(0.0).is_infinite());
    }
}
