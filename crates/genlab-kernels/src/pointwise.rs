//! One-pass elementwise kernels: an Adam update and the binary cross-entropy with logits.
//!
//! burn builds both from generic elementwise ops, each a pass over memory into a fresh buffer:
//! Adam is ~12 passes per parameter tensor (17% of an MLP VAE training step on flex), the BCE
//! loss ~6 forward and ~8 backward (12%). Here each is one pass, split into chunks across rayon
//! threads.

use rayon::prelude::*;

use crate::{output, simd};

/// Elements per parallel chunk: large enough that a chunk outweighs the cost of a rayon task.
const CHUNK: usize = 1 << 15;

/// The scalars of one Adam step.
#[derive(Clone, Copy, Debug)]
pub struct AdamScalars {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta_1: f32,
    /// Second-moment decay.
    pub beta_2: f32,
    /// Added to the root of the second moment.
    pub epsilon: f32,
    /// 1-based step count of this parameter (bias correction).
    pub time: i32,
}

/// One Adam step of a parameter tensor: `(param', m', v')`, in burn 0.22's `Adam` arithmetic
/// (f32, the same operations in the same order, so the result equals burn's to the bit):
///
/// ```text
/// m' = m b1 + g (1 - b1)          v' = v b2 + g² (1 - b2)
/// c2 = sqrt(1 - b2^t)             f = c2 / (1 - b1^t)
/// param' = param - lr (m' f / (sqrt(v') + eps c2))
/// ```
///
/// The first step is the same formula with `m = v = 0`.
pub fn adam_update(
    param: &[f32],
    grad: &[f32],
    m: &[f32],
    v: &[f32],
    s: AdamScalars,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = param.len();
    assert!(
        grad.len() == n && m.len() == n && v.len() == n,
        "adam_update: param {n}, grad {}, m {}, v {} elements",
        grad.len(),
        m.len(),
        v.len()
    );
    let (f1, f2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    let c2 = (1.0 - s.beta_2.powi(s.time)).sqrt();
    let factor = c2 / (1.0 - s.beta_1.powi(s.time));
    let eps = s.epsilon * c2;
    let (mut m_out, mut v_out) = (Vec::new(), Vec::new());
    let p_out = output(n, |p_out| {
        m_out = output(n, |m_out| {
            v_out = output(n, |v_out| {
                p_out
                    .par_chunks_mut(CHUNK)
                    .zip(m_out.par_chunks_mut(CHUNK))
                    .zip(v_out.par_chunks_mut(CHUNK))
                    .enumerate()
                    .for_each(|(i, ((po, mo), vo))| {
                        simd(
                            #[inline(always)]
                            || {
                                let r = i * CHUNK..(i * CHUNK + po.len());
                                let (p, g, m, v) =
                                    (&param[r.clone()], &grad[r.clone()], &m[r.clone()], &v[r]);
                                for j in 0..po.len() {
                                    let g = g[j];
                                    let m1 = m[j] * s.beta_1 + g * f1;
                                    let v1 = v[j] * s.beta_2 + (g * g) * f2;
                                    let step = (m1 * factor) / (v1.sqrt() + eps);
                                    po[j].write(p[j] - step * s.lr);
                                    mo[j].write(m1);
                                    vo[j].write(v1);
                                }
                            },
                        )
                    });
            });
        });
    });
    (p_out, m_out, v_out)
}

/// `exp(x)` for `x <= 0` (NaN stays NaN), in plain arithmetic that vectorises: Cephes' `expf`
/// (Moshier), `x = k ln2 + r` with `|r| <= ln2 / 2`, a degree-6 polynomial for `exp(r)`, and
/// `2^k` built from exponent bits in two halves so results below `f32::MIN_POSITIVE` come out
/// as the subnormal they are (and 0 below about -103.97). Within a few ulp of `f64::exp` over
/// [-104, 0] (test `exp_and_softplus_match_f64`). libm's `expf`, a call per value, was ~4% of
/// a W1 training step and its `log1pf` ~6%.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that k * LN2_HI is exact for |k| < 2^15.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round to nearest: adding 1.5 * 2^23 pushes the fraction out of the mantissa.
    const ROUND: f32 = 12_582_912.0;
    let x = if x < -104.0 { -104.0 } else { x };
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5; // Cephes' 5.0000001201e-1, which rounds to 0.5 in f32.
    let e = p * r * r + r + 1.0;
    // k in [-150, 0]: 2^k = 2^(k/2) * 2^(k - k/2), both halves normal numbers.
    let k = k as i32;
    let half = k / 2;
    let pow2 = |n: i32| f32::from_bits(((n + 127) as u32) << 23);
    e * pow2(half) * pow2(k - half)
}

/// `log1p(y)` for `y` in [0, 1] (NaN stays NaN) as `2 atanh(s)`, `s = y / (2 + y)` in [0, 1/3],
/// by its odd series to `s^15` (the next term is below 2^-28 relative): vectorises, and is
/// accurate for small `y` too (no `1 + y` rounding).
#[inline(always)]
pub(crate) fn log1p_unit(y: f32) -> f32 {
    let s = y / (2.0 + y);
    let z = s * s;
    let p = 1.0
        + z * (1.0 / 3.0
            + z * (1.0 / 5.0
                + z * (1.0 / 7.0
                    + z * (1.0 / 9.0 + z * (1.0 / 11.0 + z * (1.0 / 13.0 + z * (1.0 / 15.0)))))));
    2.0 * s * p
}

/// `log1p(exp(-|x|))`, the part of the logistic losses that needs care (softplus of `-|x|`).
#[inline(always)]
fn softplus_neg_abs(x: f32) -> f32 {
    log1p_unit(exp_nonpositive(-x.abs()))
}

/// Binary cross-entropy with logits, summed over each row of `x [rows, cols]` against targets
/// `t` in [0, 1]: `[rows]` of `sum_j max(x, 0) - x t + log1p(exp(-|x|))`, the numerically stable
/// form (as PyTorch's `binary_cross_entropy_with_logits`). Each term in f32 with the vectorised
/// `exp`/`log1p` above; the row sums run in f64 (eight lanes, then added up).
pub fn bce_with_logits_rows(x: &[f32], t: &[f32], cols: usize) -> Vec<f32> {
    assert_eq!(x.len(), t.len(), "bce_with_logits_rows: logits and targets");
    if cols == 0 {
        return Vec::new();
    }
    let term = |x: f32, t: f32| f64::from(x.max(0.0) - x * t + softplus_neg_abs(x));
    x.par_chunks(cols)
        .zip(t.par_chunks(cols))
        .map(|(x, t)| {
            simd(
                #[inline(always)]
                || {
                    let mut lanes = [0f64; 8];
                    let (x8, t8) = (x.chunks_exact(8), t.chunks_exact(8));
                    let tail: f64 = x8
                        .remainder()
                        .iter()
                        .zip(t8.remainder())
                        .map(|(&x, &t)| term(x, t))
                        .sum();
                    for (x, t) in x8.zip(t8) {
                        for l in 0..8 {
                            lanes[l] += term(x[l], t[l]);
                        }
                    }
                    (lanes.iter().sum::<f64>() + tail) as f32
                },
            )
        })
        .collect()
}

/// The gradient of [`bce_with_logits_rows`] with respect to the logits, for upstream row
/// gradients `dy [rows]`: `dx = (sigmoid(x) - t) dy_row`.
pub fn bce_with_logits_rows_backward(x: &[f32], t: &[f32], dy: &[f32], cols: usize) -> Vec<f32> {
    assert_eq!(
        x.len(),
        t.len(),
        "bce_with_logits_rows_backward: logits and targets"
    );
    assert_eq!(
        x.len(),
        dy.len() * cols,
        "bce_with_logits_rows_backward: rows"
    );
    if cols == 0 {
        return vec![0f32; x.len()];
    }
    output(x.len(), |dx| {
        dx.par_chunks_mut(cols)
            .zip(x.par_chunks(cols).zip(t.par_chunks(cols)))
            .zip(dy.par_iter())
            .for_each(|((o, (x, t)), &g)| {
                simd(
                    #[inline(always)]
                    || {
                        for ((o, &x), &t) in o.iter_mut().zip(x).zip(t) {
                            // sigmoid without overflow: exp of a non-positive number only.
                            let e = exp_nonpositive(-x.abs());
                            let s = if x >= 0.0 {
                                1.0 / (1.0 + e)
                            } else {
                                e / (1.0 + e)
                            };
                            o.write((s - t) * g);
                        }
                    },
                )
            });
    })
}

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
                        total += f64::from(crate::lane_sum(start..start + plane, |k| f(ch, k)));
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
    let y = output(x.len(), |y| {
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
    });
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
    let dx = output(x.len(), |dx| {
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
    });
    (
        dx,
        dgamma.into_iter().map(|v| v as f32).collect(),
        dbeta.into_iter().map(|v| v as f32).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam against the textbook formula (Kingma & Ba, Algorithm 1) in f64, over several steps,
    /// with a tensor larger than one chunk.
    #[test]
    fn adam_matches_the_textbook_formula() {
        let n = CHUNK + 77;
        let s = AdamScalars {
            lr: 1e-2,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            time: 0,
        };
        let mut p: Vec<f32> = (0..n)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
        let mut p64: Vec<f64> = p.iter().map(|&x| f64::from(x)).collect();
        let (mut m64, mut v64) = (vec![0f64; n], vec![0f64; n]);
        for t in 1..=5 {
            let g: Vec<f32> = (0..n)
                .map(|i| (((i * 13 + t * 7) % 29) as f32 - 14.0) / 10.0)
                .collect();
            (p, m, v) = adam_update(
                &p,
                &g,
                &m,
                &v,
                AdamScalars {
                    time: t as i32,
                    ..s
                },
            );
            let (b1, b2) = (0.9f64, 0.999f64);
            for i in 0..n {
                let gi = f64::from(g[i]);
                m64[i] = b1 * m64[i] + (1.0 - b1) * gi;
                v64[i] = b2 * v64[i] + (1.0 - b2) * gi * gi;
                let mh = m64[i] / (1.0 - b1.powi(t as i32));
                let vh = v64[i] / (1.0 - b2.powi(t as i32));
                p64[i] -= 1e-2 * mh / (vh.sqrt() + 1e-8);
            }
        }
        for i in (0..n).step_by(997).chain([n - 1]) {
            assert!(
                (f64::from(p[i]) - p64[i]).abs() < 1e-5,
                "{i}: {} vs {}",
                p[i],
                p64[i]
            );
            assert!((f64::from(m[i]) - m64[i]).abs() < 1e-5, "{i}");
            assert!((f64::from(v[i]) - v64[i]).abs() < 1e-5, "{i}");
        }
    }

    /// The loss against the naive formula -(t log σ(x) + (1 - t) log(1 - σ(x))) in f64, and
    /// the gradient against central finite differences of the loss in f64.
    #[test]
    fn bce_matches_the_formula_and_finite_differences() {
        let (rows, cols) = (3, 7);
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 11) % 17) as f32 / 2.0 - 4.0)
            .collect();
        let t: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 5) % 9) as f32 / 8.0)
            .collect();
        let loss = bce_with_logits_rows(&x, &t, cols);
        let naive = |x: f64, t: f64| {
            let s = 1.0 / (1.0 + (-x).exp());
            -(t * s.ln() + (1.0 - t) * (1.0 - s).ln())
        };
        for r in 0..rows {
            let want: f64 = (0..cols)
                .map(|j| naive(f64::from(x[r * cols + j]), f64::from(t[r * cols + j])))
                .sum();
            assert!((f64::from(loss[r]) - want).abs() < 1e-5, "row {r}");
        }
        let dy = [0.5f32, -1.0, 2.0];
        let dx = bce_with_logits_rows_backward(&x, &t, &dy, cols);
        for i in 0..rows * cols {
            let (xi, ti) = (f64::from(x[i]), f64::from(t[i]));
            let h = 1e-5;
            let fd = (naive(xi + h, ti) - naive(xi - h, ti)) / (2.0 * h) * f64::from(dy[i / cols]);
            assert!(
                (f64::from(dx[i]) - fd).abs() < 1e-5,
                "{i}: {} vs {fd}",
                dx[i]
            );
        }
    }

    /// The vectorised `exp` and `log1p(exp(-|x|))` against f64 on a dense sweep: within 4 ulp
    /// where the result is a normal number, within two subnormal steps below that, exactly 0
    /// past the underflow, and NaN for NaN.
    #[test]
    fn exp_and_softplus_match_f64() {
        let ulp = |v: f64| (v.abs() as f32).max(f32::MIN_POSITIVE).to_bits();
        let close = |got: f32, want: f64, what: &str, x: f32| {
            if want.abs() >= f64::from(f32::MIN_POSITIVE) {
                let diff = (f64::from(got) - want).abs();
                let step = f64::from(f32::from_bits(ulp(want) + 1) - f32::from_bits(ulp(want)));
                assert!(diff <= 4.0 * step, "{what}({x}) = {got}, f64 {want}");
            } else {
                let tiny = f64::from(f32::from_bits(1));
                assert!(
                    (f64::from(got) - want).abs() <= 2.0 * tiny,
                    "{what}({x}) = {got}, f64 {want}"
                );
            }
        };
        for i in 0..=220_000 {
            let x = -110.0 + i as f32 * 0.001;
            if x <= 0.0 {
                close(exp_nonpositive(x), f64::from(x).exp(), "exp", x);
            }
            let want = (-f64::from(x).abs()).exp().ln_1p();
            close(softplus_neg_abs(x), want, "softplus", x);
        }
        for x in [
            0.0f32,
            -0.0,
            -1e-30,
            -1e-8,
            -0.5,
            -87.3,
            -103.9,
            -104.5,
            -1e4,
            f32::NEG_INFINITY,
        ] {
            close(exp_nonpositive(x), f64::from(x).exp(), "exp", x);
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-200.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f32::NAN).is_nan());
        assert!(softplus_neg_abs(f32::NAN).is_nan());
        assert_eq!(log1p_unit(0.0), 0.0);
    }

    /// Extreme logits give finite losses and gradients (no exp overflow).
    #[test]
    fn bce_is_finite_for_extreme_logits() {
        let x = [-1e4f32, -100.0, 100.0, 1e4];
        let t = [0.0f32, 1.0, 0.0, 1.0];
        let l = bce_with_logits_rows(&x, &t, 4);
        assert!(l[0].is_finite() && (l[0] - 200.0).abs() < 1e-3, "{l:?}");
        let g = bce_with_logits_rows_backward(&x, &t, &[1.0], 4);
        assert_eq!(g, vec![0.0, -1.0, 1.0, 0.0]);
    }

    /// Batch norm against its definition in f64 (statistics and output), and its gradients
    /// against central finite differences of `sum(y * r)` in f64.
    #[test]
    fn batch_norm_matches_definition_and_finite_differences() {
        let (n, c, plane, eps) = (3usize, 2usize, 5usize, 1e-5f32);
        // Values in [-1.5, 2.5).
        let vals = |seed: u64, len: usize| -> Vec<f32> {
            crate::tests::lcg(seed, len)
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
