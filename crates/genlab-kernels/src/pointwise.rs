//! One-pass elementwise kernels: an Adam update and the binary cross-entropy with logits.
//!
//! burn builds both from generic elementwise ops, each a pass over memory into a fresh buffer:
//! Adam is ~12 passes per parameter tensor (17% of an MLP VAE training step on flex), the BCE
//! loss ~6 forward and ~8 backward (12%). Here each is one pass, split into chunks across rayon
//! threads.

use rayon::prelude::*;

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
    let (mut p_out, mut m_out, mut v_out) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    p_out
        .par_chunks_mut(CHUNK)
        .zip(m_out.par_chunks_mut(CHUNK))
        .zip(v_out.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(i, ((po, mo), vo))| {
            let r = i * CHUNK..(i * CHUNK + po.len());
            let (p, g, m, v) = (&param[r.clone()], &grad[r.clone()], &m[r.clone()], &v[r]);
            for j in 0..po.len() {
                let g = g[j];
                let m1 = m[j] * s.beta_1 + g * f1;
                let v1 = v[j] * s.beta_2 + (g * g) * f2;
                let step = (m1 * factor) / (v1.sqrt() + eps);
                po[j] = p[j] - step * s.lr;
                mo[j] = m1;
                vo[j] = v1;
            }
        });
    (p_out, m_out, v_out)
}

/// Binary cross-entropy with logits, summed over each row of `x [rows, cols]` against targets
/// `t` in [0, 1]: `[rows]` of `sum_j max(x, 0) - x t + log1p(exp(-|x|))`, the numerically stable
/// form (as PyTorch's `binary_cross_entropy_with_logits`). Sums run in f64.
pub fn bce_with_logits_rows(x: &[f32], t: &[f32], cols: usize) -> Vec<f32> {
    assert_eq!(x.len(), t.len(), "bce_with_logits_rows: logits and targets");
    if cols == 0 {
        return Vec::new();
    }
    x.par_chunks(cols)
        .zip(t.par_chunks(cols))
        .map(|(x, t)| {
            x.iter()
                .zip(t)
                .map(|(&x, &t)| f64::from(x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()))
                .sum::<f64>() as f32
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
    let mut dx = vec![0f32; x.len()];
    if cols == 0 {
        return dx;
    }
    dx.par_chunks_mut(cols)
        .zip(x.par_chunks(cols).zip(t.par_chunks(cols)))
        .zip(dy.par_iter())
        .for_each(|((o, (x, t)), &g)| {
            for ((o, &x), &t) in o.iter_mut().zip(x).zip(t) {
                // sigmoid without overflow: exp of a non-positive number only.
                let e = (-x.abs()).exp();
                let s = if x >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                };
                *o = (s - t) * g;
            }
        });
    dx
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
