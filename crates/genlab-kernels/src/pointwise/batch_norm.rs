//! Training-mode batch normalisation, forward and backward, and the per-channel sums it (and the
//! convolutions' bias gradient) is built on.

use rayon::prelude::*;

use crate::output::output;
use crate::simd::{lane_sum, simd};

/// Per channel `ch` of a `[n, c, plane]` tensor with `len` values, the sum of `f(ch, k)` over
/// the flat indices `k` of that channel: f32 within a plane, f64 across planes; channels in
/// parallel (also the convolutions' bias gradient).
pub(crate) fn channel_sums(
    len: usize,
    c: usize,
    plane: usize,
    f: impl Fn(usize, usize) -> f32 + Sync,
) -> Vec<f64> {
    let image = c * plane;
    (0..c)
        .into_par_iter()
        .map(|ch| {
            simd(
                #[inline(always)]
                || {
                    let mut total = 0f64;
                    for img in 0..len.checked_div(image).unwrap_or(0) {
                        let start = img * image + ch * plane;
                        // f32 partial sums per plane (short), f64 across planes.
                        total += f64::from(lane_sum(start..start + plane, |k| f(ch, k)));
                    }
                    total
                },
            )
        })
        .collect()
}

/// Training-mode batch normalisation of `x [n, c, plane]`: the per-channel batch mean and
/// biased variance (two passes, as burn's and PyTorch's definition `mean((x - mean)^2)`), and
/// `y = (x - mean) / sqrt(var + eps) * gamma + beta`. Returns `(y, mean [c], var [c])`.
pub fn batch_norm_forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    c: usize,
    plane: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let count = (x.len() / c.max(1)).max(1) as f64;
    let mean: Vec<f32> = channel_sums(x.len(), c, plane, |_, k| x[k])
        .into_iter()
        .map(|s| (s / count) as f32)
        .collect();
    let var: Vec<f32> = channel_sums(x.len(), c, plane, |ch, k| {
        let d = x[k] - mean[ch];
        d * d
    })
    .into_iter()
    .map(|s| (s / count) as f32)
    .collect();
    // y = x * scale + shift per channel.
    let scale: Vec<f32> = (0..c)
        .map(|ch| gamma[ch] / (var[ch] + eps).sqrt())
        .collect();
    let shift: Vec<f32> = (0..c).map(|ch| beta[ch] - mean[ch] * scale[ch]).collect();
    let image = (c * plane).max(1);
    // SAFETY: `y` and `x` have the same length and are cut into the same chunks (images, then
    // planes), and each value of `y` is written from the value of `x` zipped with it.
    let y = unsafe {
        output(x.len(), |y| {
            y.par_chunks_mut(image)
                .zip(x.par_chunks(image))
                .for_each(|(yi, xi)| {
                    simd(
                        #[inline(always)]
                        || {
                            for (ch, (yc, xc)) in yi
                                .chunks_mut(plane.max(1))
                                .zip(xi.chunks(plane.max(1)))
                                .enumerate()
                            {
                                let (a, b) = (scale[ch], shift[ch]);
                                for (o, &v) in yc.iter_mut().zip(xc) {
                                    o.write(v * a + b);
                                }
                            }
                        },
                    )
                });
        })
    };
    (y, mean, var)
}

/// Gradients of [`batch_norm_forward`] (through the batch statistics) for `dy [n, c, plane]`:
/// with `xhat = (x - mean) / sqrt(var + eps)` and `N = n * plane`,
/// `dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat))`,
/// `dgamma = sum(dy * xhat)`, `dbeta = sum(dy)` per channel. Returns `(dx, dgamma, dbeta)`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    dy: &[f32],
    c: usize,
    plane: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let count = (x.len() / c.max(1)).max(1) as f64;
    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let dbeta = channel_sums(dy.len(), c, plane, |_, k| dy[k]);
    let dgamma = channel_sums(dy.len(), c, plane, |ch, k| {
        dy[k] * (x[k] - mean[ch]) * inv_std[ch]
    });
    // dx = k1 * dy + k2 * (x - mean) + k3 per channel.
    let k1: Vec<f32> = (0..c).map(|ch| gamma[ch] * inv_std[ch]).collect();
    let k2: Vec<f32> = (0..c)
        .map(|ch| -k1[ch] * inv_std[ch] * (dgamma[ch] / count) as f32)
        .collect();
    let k3: Vec<f32> = (0..c)
        .map(|ch| -k1[ch] * (dbeta[ch] / count) as f32)
        .collect();
    assert_eq!(x.len(), dy.len(), "batch_norm_backward: x and dy");
    let image = (c * plane).max(1);
    // SAFETY: `dx`, `x` and `dy` have the same length (asserted above) and are cut into the same
    // chunks (images, then planes), and each value of `dx` is written from the values of `x` and
    // `dy` zipped with it.
    let dx = unsafe {
        output(x.len(), |dx| {
            dx.par_chunks_mut(image)
                .zip(x.par_chunks(image).zip(dy.par_chunks(image)))
                .for_each(|(dxi, (xi, dyi))| {
                    simd(
                        #[inline(always)]
                        || {
                            let p = plane.max(1);
                            for (ch, (o, (xc, gc))) in dxi
                                .chunks_mut(p)
                                .zip(xi.chunks(p).zip(dyi.chunks(p)))
                                .enumerate()
                            {
                                let (a, b, m, k) = (k1[ch], k2[ch], mean[ch], k3[ch]);
                                for (d, (&v, &g)) in o.iter_mut().zip(xc.iter().zip(gc)) {
                                    d.write(a * g + b * (v - m) + k);
                                }
                            }
                        },
                    )
                });
        })
    };
    (
        dx,
        dgamma.into_iter().map(|v| v as f32).collect(),
        dbeta.into_iter().map(|v| v as f32).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batch norm against its definition in f64 (statistics and output), and its gradients
    /// against central finite differences of `sum(y * r)` in f64.
    #[test]
    fn batch_norm_matches_definition_and_finite_differences() {
        let (n, c, plane, eps) = (3usize, 2usize, 5usize, 1e-5f32);
        // Values in [-1.5, 2.5).
        let vals = |seed: u64, len: usize| -> Vec<f32> {
            crate::test_util::lcg(seed, len)
                .into_iter()
                .map(|v| v * 2.0 + 0.5)
                .collect()
        };
        let x = vals(1, n * c * plane);
        let r = vals(2, n * c * plane);
        let gamma = [1.3f32, -0.7];
        let beta = [0.2f32, 0.5];
        // The definition, f64: y and sum(y * r).
        let reference = |x: &[f32], gamma: &[f32], beta: &[f32]| -> (Vec<f64>, f64) {
            let mut y = vec![0f64; x.len()];
            for ch in 0..c {
                let idx: Vec<usize> = (0..n)
                    .flat_map(|i| (0..plane).map(move |p| (i * c + ch) * plane + p))
                    .collect();
                let m = idx.iter().map(|&k| f64::from(x[k])).sum::<f64>() / idx.len() as f64;
                let v = idx
                    .iter()
                    .map(|&k| (f64::from(x[k]) - m).powi(2))
                    .sum::<f64>()
                    / idx.len() as f64;
                for &k in &idx {
                    y[k] = (f64::from(x[k]) - m) / (v + f64::from(eps)).sqrt()
                        * f64::from(gamma[ch])
                        + f64::from(beta[ch]);
                }
            }
            let loss = y.iter().zip(&r).map(|(a, b)| a * f64::from(*b)).sum();
            (y, loss)
        };
        let (y, mean, var) = batch_norm_forward(&x, &gamma, &beta, c, plane, eps);
        let (y_ref, _) = reference(&x, &gamma, &beta);
        for (a, b) in y.iter().zip(&y_ref) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "{a} vs {b}");
        }
        let (dx, dgamma, dbeta) = batch_norm_backward(&x, &gamma, &mean, &var, &r, c, plane, eps);
        let h = 1e-3f32;
        let fd = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * f64::from(h));
        for k in 0..x.len() {
            let num = fd(&|d| {
                let mut x2 = x.clone();
                x2[k] += d;
                reference(&x2, &gamma, &beta).1
            });
            assert!(
                (num - f64::from(dx[k])).abs() < 2e-3,
                "dx[{k}]: {num} vs {}",
                dx[k]
            );
        }
        for ch in 0..c {
            let num_g = fd(&|d| {
                let mut g2 = gamma;
                g2[ch] += d;
                reference(&x, &g2, &beta).1
            });
            let num_b = fd(&|d| {
                let mut b2 = beta;
                b2[ch] += d;
                reference(&x, &gamma, &b2).1
            });
            assert!((num_g - f64::from(dgamma[ch])).abs() < 2e-3, "dgamma[{ch}]");
            assert!((num_b - f64::from(dbeta[ch])).abs() < 2e-3, "dbeta[{ch}]");
        }
    }
}
