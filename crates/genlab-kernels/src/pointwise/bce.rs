//! Binary cross-entropy with logits, forward and backward, with a vectorisable `exp` and `log1p`.

use rayon::prelude::*;

use crate::output::output;
use crate::simd::simd;

/// `exp(x)` for `x <= 0` (NaN stays NaN), in plain arithmetic that vectorises: Cephes' `expf`
/// (Moshier), `x = k ln2 + r` with `|r| <= ln2 / 2`, a degree-6 polynomial for `exp(r)`, and
/// `2^k` built from exponent bits in two halves so results below `f32::MIN_POSITIVE` come out
/// as the subnormal they are (and 0 below about -103.97). Within a few ulp of `f64::exp` over
/// [-104, 0] (test `exp_and_softplus_match_f64`). libm's `expf` and `log1pf` are a call per
/// value, which keeps the loss loops from vectorising (BENCHMARKS.md has what they cost).
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
    // SAFETY: `dx` has `x.len() = dy.len() * cols` values (asserted above), cut into the same
    // `dy.len()` rows of `cols` as `x` and `t`, and each value is written from the `x` and `t`
    // values zipped with it.
    unsafe {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
