//! A one-pass Adam update.

use rayon::prelude::*;

use crate::output::output;
use crate::simd::simd;

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
    // SAFETY: this block holds all three `output` calls (the inner two in its closures).
    // `p_out`, `m_out` and `v_out` all have `n` values, cut into the same `CHUNK`s, and the
    // innermost closure writes index `j` of all three for every `j` of each chunk, so each
    // buffer is fully written before its own `fill` returns.
    let p_out = unsafe {
        output(n, |p_out| {
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
        })
    };
    (p_out, m_out, v_out)
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
}
