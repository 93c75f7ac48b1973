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
/// The first step is the same formula with `m = v = 0`. [`adam_update_in_place`] is the same
/// step written over its inputs.
///
/// One departure from burn's and PyTorch's arithmetic: a moment that falls below
/// `f32::MIN_POSITIVE` (1.2e-38) is stored as 0, as flush-to-zero would store it. A parameter
/// whose gradient has been exactly 0 for a while (a first-layer weight of a pixel that is rarely
/// lit) has a first moment that decays by `b1` per step through the subnormal range, about 130
/// steps at `b1 = 0.9`; after 50 epochs of README's VAE 7% of the moments were subnormal, and
/// Intel CPUs take a microcode assist (18x slower arithmetic, BENCHMARKS.md issue 22) on every
/// one of them at every step. Flushed, each such moment costs at most one assist, on the step
/// that crosses the boundary. The update a flushed moment would have made is below
/// `lr * 1.2e-38 / eps`, under one ulp of any parameter above about 1e-25 in magnitude, so the
/// parameters are the same to the bit in practice (BENCHMARKS.md has the check).
pub fn adam_update(
    param: &[f32],
    grad: &[f32],
    m: &[f32],
    v: &[f32],
    s: AdamScalars,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = check(param.len(), grad.len(), m.len(), v.len());
    let k = Step::new(s);
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
                                        let (p1, m1, v1) = k.apply(p[j], g[j], m[j], v[j]);
                                        po[j].write(p1);
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

/// [`adam_update`] written over `param`, `m` and `v`: the same values to the bit, without three
/// fresh buffers per parameter tensor per step (whose first write also reads each line into the
/// cache: 10 arrays' traffic instead of 7).
///
/// # Panics
/// When the four slices differ in length.
pub fn adam_update_in_place(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    s: AdamScalars,
) {
    check(param.len(), grad.len(), m.len(), v.len());
    let k = Step::new(s);
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            simd(
                #[inline(always)]
                || {
                    // Zipped, so the lengths are one and the loop vectorises.
                    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v) {
                        (*p, *m, *v) = k.apply(*p, g, *m, *v);
                    }
                },
            )
        });
}

fn check(n: usize, g: usize, m: usize, v: usize) -> usize {
    assert!(
        g == n && m == n && v == n,
        "adam_update: param {n}, grad {g}, m {m}, v {v} elements"
    );
    n
}

/// The per-element constants of one step, and the step (one home for the arithmetic, so both
/// entry points give the same bits).
#[derive(Clone, Copy)]
struct Step {
    b1: f32,
    b2: f32,
    f1: f32,
    f2: f32,
    factor: f32,
    eps: f32,
    lr: f32,
}

impl Step {
    fn new(s: AdamScalars) -> Self {
        let c2 = (1.0 - s.beta_2.powi(s.time)).sqrt();
        Self {
            b1: s.beta_1,
            b2: s.beta_2,
            f1: 1.0 - s.beta_1,
            f2: 1.0 - s.beta_2,
            factor: c2 / (1.0 - s.beta_1.powi(s.time)),
            eps: s.epsilon * c2,
            lr: s.lr,
        }
    }

    /// `(param', m', v')` of one element; moments below the normal range become 0
    /// ([`adam_update`] says why).
    #[inline(always)]
    fn apply(&self, p: f32, g: f32, m: f32, v: f32) -> (f32, f32, f32) {
        let m1 = flush(m * self.b1 + g * self.f1);
        let v1 = flush(v * self.b2 + (g * g) * self.f2);
        let step = (m1 * self.factor) / (v1.sqrt() + self.eps);
        (p - step * self.lr, m1, v1)
    }
}

/// `x`, or 0 when it is subnormal (a compare and a blend: vectorises).
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
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

    /// The in-place step gives the out-of-place step's bits, over several steps and a ragged
    /// last chunk, with subnormal and zero gradients (moments that would turn subnormal).
    #[test]
    fn in_place_is_the_same_bits() {
        let n = 2 * CHUNK + 5;
        let mut p: Vec<f32> = (0..n)
            .map(|i| ((i * 31) % 97) as f32 / 40.0 - 1.2)
            .collect();
        let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
        let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
        for t in 1..=4 {
            let g: Vec<f32> = (0..n)
                .map(|i| match i % 5 {
                    0 => 1e-39,
                    1 => 0.0,
                    _ => (((i * 17 + t * 3) % 23) as f32 - 11.0) / 7.0,
                })
                .collect();
            let s = AdamScalars {
                lr: 1e-3,
                beta_1: 0.5,
                beta_2: 0.999,
                epsilon: 1e-8,
                time: t as i32,
            };
            (p, m, v) = adam_update(&p, &g, &m, &v, s);
            adam_update_in_place(&mut p2, &g, &mut m2, &mut v2, s);
            for (a, b) in [(&p, &p2), (&m, &m2), (&v, &v2)] {
                assert!(
                    a.iter()
                        .zip(b.iter())
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "step {t}"
                );
            }
        }
    }

    fn scalars(beta_1: f32, beta_2: f32, time: i32) -> AdamScalars {
        AdamScalars {
            lr: 1e-3,
            beta_1,
            beta_2,
            epsilon: 1e-8,
            time,
        }
    }

    /// A moment that falls below the normal range is stored as 0 by both entry points, one read
    /// in as subnormal (a checkpoint of burn's Adam) comes out 0, and normal ones are untouched.
    #[test]
    fn subnormal_moments_are_stored_as_zero() {
        let n = CHUNK + 3;
        // Element i % 3: 0, a normal moment halved into the subnormal range; 1, a subnormal
        // moment read in; 2, a normal moment that stays normal.
        let pick = |i: usize, a: f32, b: f32, c: f32| [a, b, c][i % 3];
        let m: Vec<f32> = (0..n).map(|i| pick(i, 2e-38, 1e-39, 1.0)).collect();
        let v: Vec<f32> = (0..n).map(|i| pick(i, 2e-38, 1e-40, 0.25)).collect();
        let p = vec![0.5f32; n];
        let g = vec![0f32; n];
        let s = scalars(0.5, 0.5, 3);
        let (p1, m1, v1) = adam_update(&p, &g, &m, &v, s);
        let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
        adam_update_in_place(&mut p2, &g, &mut m2, &mut v2, s);
        for (i, (((&p1, &m1), &v1), ((&p2, &m2), &v2))) in p1
            .iter()
            .zip(&m1)
            .zip(&v1)
            .zip(p2.iter().zip(&m2).zip(&v2))
            .enumerate()
        {
            assert_eq!(
                (p1.to_bits(), m1.to_bits(), v1.to_bits()),
                (p2.to_bits(), m2.to_bits(), v2.to_bits()),
                "{i}"
            );
            if i % 3 == 2 {
                assert_eq!((m1, v1), (0.5, 0.125), "{i}: a normal moment is kept");
                assert!(p1 < 0.5, "{i}: and moves its parameter");
            } else {
                assert_eq!((m1.to_bits(), v1.to_bits()), (0, 0), "{i}: flushed to +0");
                assert_eq!(p1, 0.5, "{i}: a zero moment moves nothing");
            }
        }
    }

    /// The flush changes no parameter: 2000 steps of gradients that stop for 850 steps or more
    /// at a time (moments decaying through the subnormal range, as a rarely lit pixel's
    /// weights do) give the bits of the same arithmetic without it, and no stored moment is
    /// ever subnormal.
    #[test]
    fn flushing_changes_no_parameter() {
        let n = 64;
        let mut p: Vec<f32> = (0..n).map(|i| (i as f32 - 31.5) / 40.0).collect();
        let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
        let (mut pr, mut mr, mut vr) = (p.clone(), m.clone(), v.clone());
        let mut subnormal_unflushed = 0;
        for t in 1..=2000 {
            // Element i has a gradient every 850 + 5 i steps from step 1, and 0 otherwise: its
            // first moment decays by 0.9 per step, below 1.2e-38 after about 800 steps.
            let g: Vec<f32> = (0..n)
                .map(|i| {
                    if (t - 1) % (850 + 5 * i) == 0 {
                        ((i % 7) as f32 - 3.1) / 5.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let s = scalars(0.9, 0.999, t as i32);
            adam_update_in_place(&mut p, &g, &mut m, &mut v, s);
            let k = Step::new(s);
            for i in 0..n {
                // Step::apply without the flush.
                mr[i] = mr[i] * k.b1 + g[i] * k.f1;
                vr[i] = vr[i] * k.b2 + (g[i] * g[i]) * k.f2;
                pr[i] -= (mr[i] * k.factor) / (vr[i].sqrt() + k.eps) * k.lr;
                subnormal_unflushed += usize::from(mr[i].is_subnormal());
            }
            assert!(m.iter().chain(&v).all(|x| !x.is_subnormal()), "step {t}");
            let same = p.iter().zip(&pr).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "step {t}");
        }
        assert!(
            subnormal_unflushed > 1000,
            "the case must reach the subnormal range"
        );
    }
}
