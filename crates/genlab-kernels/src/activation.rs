//! ReLU, leaky ReLU and PReLU, forward and backward, as branch-free selects; tanh.

use rayon::prelude::*;

use crate::output::output;
use crate::simd::simd;

/// The slope of channel `c` (one shared slope when `alpha` has a single value).
#[inline(always)]
fn slope(alpha: &[f32], c: usize) -> f32 {
    if alpha.len() == 1 { alpha[0] } else { alpha[c] }
}

/// `v < 0 ? a : 1`, the factor PReLU and leaky ReLU apply to `v` (and to its gradient). Written
/// as a select that multiplies, so their loops vectorise without branches (`v * 1` is `v`
/// exactly, so values are those of the branchy definition, -0 and NaN included).
#[inline(always)]
fn leak(v: f32, a: f32) -> f32 {
    if v < 0.0 { a } else { 1.0 }
}

/// Elements per parallel chunk of the elementwise kernels.
const CHUNK: usize = 1 << 14;

/// PReLU, `y = x < 0 ? alpha[c] * x : x`, for `x [n, c, plane]` (burn's definition, so the
/// gradient at exactly 0 is that of the identity). Images run in parallel.
pub fn prelu_forward(x: &[f32], alpha: &[f32], channels: usize, plane: usize) -> Vec<f32> {
    let image = (channels * plane).max(1);
    // SAFETY: `y` and `x` have the same length and are cut into the same chunks (images, then
    // planes), and each value of `y` is written from the value of `x` zipped with it.
    unsafe {
        output(x.len(), |y| {
            y.par_chunks_mut(image)
                .zip(x.par_chunks(image))
                .for_each(|(yi, xi)| {
                    simd(
                        #[inline(always)]
                        || {
                            for (c, (yc, xc)) in yi
                                .chunks_mut(plane.max(1))
                                .zip(xi.chunks(plane.max(1)))
                                .enumerate()
                            {
                                let a = slope(alpha, c);
                                for (o, &v) in yc.iter_mut().zip(xc) {
                                    o.write(v * leak(v, a));
                                }
                            }
                        },
                    )
                });
        })
    }
}

/// Gradients of PReLU: `dx = dy * (x < 0 ? alpha[c] : 1)` and `dalpha[c] = Σ_{x < 0} dy * x`
/// (summed over all channels when `alpha` is a single shared slope).
pub fn prelu_backward(
    x: &[f32],
    alpha: &[f32],
    dy: &[f32],
    channels: usize,
    plane: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut dx = dy.to_vec();
    let dalpha = prelu_backward_in_place(x, alpha, &mut dx, channels, plane);
    (dx, dalpha)
}

/// [`prelu_backward`] with `dx` written over `dy`, for a gradient nothing else reads; returns
/// `dalpha`. One pass over `x` and `dy`, images in parallel.
///
/// `dalpha` is the same bits whatever the threads do: each image's sums go to a row of their
/// own, and the rows are added in image order. (A rayon `fold` / `reduce` would group the
/// images by how the work happened to be stolen, so two runs of one seed could differ.)
pub fn prelu_backward_in_place(
    x: &[f32],
    alpha: &[f32],
    dy: &mut [f32],
    channels: usize,
    plane: usize,
) -> Vec<f32> {
    assert_eq!(x.len(), dy.len(), "prelu_backward: x and dy");
    let image = (channels * plane).max(1);
    let plane = plane.max(1);
    let slopes = alpha.len();
    assert!(
        slopes == 1 || slopes == channels,
        "prelu_backward: {slopes} slopes for {channels} channels"
    );
    if slopes == 0 {
        return Vec::new(); // no channels, so no values
    }
    let mut dalpha = vec![0f32; slopes];
    // rows [images, slopes]: image i's sums.
    let mut rows = vec![0f32; dy.len().div_ceil(image) * slopes];
    dy.par_chunks_mut(image)
        .zip(x.par_chunks(image))
        .zip(rows.par_chunks_mut(slopes))
        .for_each(|((gi, xi), acc)| {
            simd(
                #[inline(always)]
                || {
                    for (c, (gc, xc)) in gi.chunks_mut(plane).zip(xi.chunks(plane)).enumerate() {
                        let a = slope(alpha, c);
                        // One pass: dx over dy, and dalpha's sum in eight lanes (vectorisable).
                        let mut lanes = [0f32; 8];
                        let step = |g: &mut f32, v: f32, lane: &mut f32| {
                            *lane += if v < 0.0 { *g * v } else { 0.0 };
                            *g *= leak(v, a);
                        };
                        let (mut g8, mut x8) = (gc.chunks_exact_mut(8), xc.chunks_exact(8));
                        for (g, x) in (&mut g8).zip(&mut x8) {
                            for k in 0..8 {
                                step(&mut g[k], x[k], &mut lanes[k]);
                            }
                        }
                        let mut tail = 0f32;
                        for (g, &v) in g8.into_remainder().iter_mut().zip(x8.remainder()) {
                            step(g, v, &mut tail);
                        }
                        acc[if slopes == 1 { 0 } else { c }] += lanes.iter().sum::<f32>() + tail;
                    }
                },
            )
        });
    for row in rows.chunks_exact(slopes) {
        for (d, r) in dalpha.iter_mut().zip(row) {
            *d += r;
        }
    }
    dalpha
}

/// Leaky ReLU, `y = x < 0 ? slope * x : x` (burn's definition), any shape. Chunks run in
/// parallel.
pub fn leaky_relu_forward(x: &[f32], slope: f32) -> Vec<f32> {
    // SAFETY: `y` and `x` have the same length and are cut into the same chunks, and each value of
    // `y` is written from the value of `x` zipped with it.
    unsafe {
        output(x.len(), |y| {
            y.par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK))
                .for_each(move |(o, x)| {
                    simd(
                        #[inline(always)]
                        || {
                            for (o, &v) in o.iter_mut().zip(x) {
                                o.write(v * leak(v, slope));
                            }
                        },
                    )
                });
        })
    }
}

/// The input gradient of leaky ReLU: `dx = dy * (x < 0 ? slope : 1)`. Chunks run in parallel.
pub fn leaky_relu_backward(x: &[f32], slope: f32, dy: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), dy.len(), "leaky_relu_backward: x and dy");
    // SAFETY: `dx`, `x` and `dy` have the same length (asserted above) and are cut into the same
    // chunks, and each value of `dx` is written from the values of `x` and `dy` zipped with it.
    unsafe {
        output(x.len(), |dx| {
            dx.par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
                .for_each(move |(o, (x, g))| {
                    simd(
                        #[inline(always)]
                        || {
                            for ((o, &v), &g) in o.iter_mut().zip(x).zip(g) {
                                o.write(g * leak(v, slope));
                            }
                        },
                    )
                });
        })
    }
}

/// [`leaky_relu_backward`] with `dx` written over `dy`, for a gradient nothing else reads.
pub fn leaky_relu_backward_in_place(x: &[f32], slope: f32, dy: &mut [f32]) {
    assert_eq!(x.len(), dy.len(), "leaky_relu_backward: x and dy");
    dy.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(move |(g, x)| {
            simd(
                #[inline(always)]
                || {
                    for (g, &v) in g.iter_mut().zip(x) {
                        *g *= leak(v, slope);
                    }
                },
            )
        });
}

/// ReLU, `y = x <= 0 ? 0 : x` (burn's definition: +0 for every non-positive input, NaN kept),
/// any shape, as a select (vectorised). Chunks run in parallel.
pub fn relu_forward(x: &[f32]) -> Vec<f32> {
    // SAFETY: `y` and `x` have the same length and are cut into the same chunks, and each value of
    // `y` is written from the value of `x` zipped with it.
    unsafe {
        output(x.len(), |y| {
            y.par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK))
                .for_each(|(o, x)| {
                    simd(
                        #[inline(always)]
                        || {
                            for (o, &v) in o.iter_mut().zip(x) {
                                o.write(if v <= 0.0 { 0.0 } else { v });
                            }
                        },
                    )
                });
        })
    }
}

/// The input gradient of ReLU: `dx = x <= 0 ? 0 : dy` (burn masks on its output `y <= 0`, the
/// same positions, so ReLU's output may stand in for `x`). Chunks run in parallel.
pub fn relu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), dy.len(), "relu_backward: x and dy");
    // SAFETY: `dx`, `x` and `dy` have the same length (asserted above) and are cut into the same
    // chunks, and each value of `dx` is written from the values of `x` and `dy` zipped with it.
    unsafe {
        output(x.len(), |dx| {
            dx.par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
                .for_each(|(o, (x, g))| {
                    simd(
                        #[inline(always)]
                        || {
                            for ((o, &v), &g) in o.iter_mut().zip(x).zip(g) {
                                o.write(if v <= 0.0 { 0.0 } else { g });
                            }
                        },
                    )
                });
        })
    }
}

/// [`relu_forward`] in place, `x = x <= 0 ? 0 : x`: for an input nothing else reads, so the
/// output reuses its memory instead of a fresh buffer.
pub fn relu_in_place(x: &mut [f32]) {
    x.par_chunks_mut(CHUNK).for_each(|x| {
        simd(
            #[inline(always)]
            || {
                for v in x.iter_mut() {
                    *v = if *v <= 0.0 { 0.0 } else { *v };
                }
            },
        )
    });
}

/// [`relu_backward`] in place on `dy`, masked by ReLU's output `y` instead of its input:
/// `dy = y <= 0 ? 0 : dy`. `y <= 0` holds exactly where `x <= 0` does (`y` is +0 there, and NaN
/// where `x` is NaN), so the result is the same.
pub fn relu_backward_in_place(y: &[f32], dy: &mut [f32]) {
    by_output(y, dy, "relu_backward_in_place", |y, g| {
        if y <= 0.0 { 0.0 } else { g }
    });
}

/// `dy = rule(y, dy)` value by value, for a gradient that is a function of the activation's
/// output `y` alone; chunks in parallel, each loop vectorised.
#[inline(always)]
fn by_output(y: &[f32], dy: &mut [f32], name: &str, rule: impl Fn(f32, f32) -> f32 + Sync) {
    assert_eq!(y.len(), dy.len(), "{name}: y and dy");
    dy.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .for_each(|(g, y)| {
            simd(
                #[inline(always)]
                || {
                    for (g, &v) in g.iter_mut().zip(y) {
                        *g = rule(v, *g);
                    }
                },
            )
        });
}

/// tanh in place, value by value with the C library's `tanhf` (what `f32::tanh` and burn-flex's
/// tanh call), so the values are those of burn's tanh. Chunks run in parallel.
pub fn tanh_in_place(x: &mut [f32]) {
    x.par_chunks_mut(CHUNK).for_each(|x| {
        for v in x.iter_mut() {
            *v = v.tanh();
        }
    });
}

/// The gradient of tanh from its output `y`, in place on `dy`: `dy * (1 - y * y)`. burn's
/// backward computes `tanh(x)` again, then `-(y * y) + 1` and the product, each a pass; the
/// values are the same (`-(a) + 1` is `1 - a` exactly).
pub fn tanh_backward_in_place(y: &[f32], dy: &mut [f32]) {
    by_output(y, dy, "tanh_backward_in_place", |y, g| g * (1.0 - y * y));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PReLU's dalpha is a sum over images; it must not depend on how rayon splits them (the
    /// same seed gives the same training run on a busy machine and an idle one). Every pool size,
    /// many times over, gives the bits of the one-thread result.
    #[test]
    fn prelu_dalpha_does_not_depend_on_the_threads() {
        let (n, c, plane) = (96, 3, 37);
        let x: Vec<f32> = (0..n * c * plane)
            .map(|i| ((i * 7919 % 1013) as f32 - 600.0) / 97.0)
            .collect();
        let dy: Vec<f32> = (0..x.len())
            .map(|i| ((i * 31 % 97) as f32 - 48.0) / 7.0)
            .collect();
        for alpha in [vec![0.25f32], vec![0.1, 0.2, 0.3]] {
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a rayon pool for the test");
                pool.install(|| prelu_backward(&x, &alpha, &dy, c, plane))
            };
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let (dx1, da1) = run(1);
            for threads in [2, 3, 4, 8] {
                for _ in 0..25 {
                    let (dx, da) = run(threads);
                    assert_eq!(bits(&dx), bits(&dx1));
                    assert_eq!(
                        bits(&da),
                        bits(&da1),
                        "{threads} threads, {} slopes",
                        alpha.len()
                    );
                }
            }
        }
    }

    /// tanh and its gradient equal burn's formulas bit for bit (`f32::tanh`, then
    /// `dy * (-(y * y) + 1)`), and the gradient 1 - tanh² in f64.
    #[test]
    fn tanh_matches_burns_formulas() {
        let mut x: Vec<f32> = (0..CHUNK + 37)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 97.0)
            .collect();
        x[..7].copy_from_slice(&[
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-40,
            9.5,
        ]);
        let dy: Vec<f32> = (0..x.len()).map(|i| (i % 17) as f32 - 8.5).collect();
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let mut y = x.clone();
        tanh_in_place(&mut y);
        assert_eq!(
            bits(&y),
            bits(&x.iter().map(|v| v.tanh()).collect::<Vec<_>>())
        );
        let mut dx = dy.clone();
        tanh_backward_in_place(&y, &mut dx);
        let want: Vec<f32> = dy
            .iter()
            .zip(&y)
            .map(|(g, y)| g * (-(y * y) + 1.0))
            .collect();
        assert_eq!(bits(&dx), bits(&want));
        for (i, (&xv, &g)) in x.iter().zip(&dy).enumerate().skip(7).step_by(97) {
            let t = f64::from(xv).tanh();
            let want = f64::from(g) * (1.0 - t * t);
            assert!((f64::from(dx[i]) - want).abs() < 1e-5, "{xv}");
        }
    }

    /// The in-place ReLU, its in-place gradient (masked by the output) and leaky ReLU's in-place
    /// gradient equal the out-of-place kernels bit for bit, on signed zeros, NaN, infinities and more values than
    /// one parallel chunk.
    #[test]
    fn relu_in_place_equals_relu() {
        let mut x: Vec<f32> = (0..CHUNK + 37)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 97.0)
            .collect();
        x[..6].copy_from_slice(&[0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-40]);
        let dy: Vec<f32> = (0..x.len()).map(|i| (i % 17) as f32 - 8.5).collect();
        let y = relu_forward(&x);
        let mut y_in = x.clone();
        relu_in_place(&mut y_in);
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y_in), bits(&y));
        let mut dx_in = dy.clone();
        relu_backward_in_place(&y, &mut dx_in);
        assert_eq!(bits(&dx_in), bits(&relu_backward(&x, &dy)));
        let mut dx_leaky = dy.clone();
        leaky_relu_backward_in_place(&x, 0.2, &mut dx_leaky);
        assert_eq!(bits(&dx_leaky), bits(&leaky_relu_backward(&x, 0.2, &dy)));
    }

    /// PReLU against its definition, and its gradients against central finite differences of
    /// sum(prelu(x) * r).
    #[test]
    fn prelu_matches_definition_and_finite_differences() {
        let (n, c, plane) = (3, 2, 13); // 13: one 8-value block and a tail per plane
        // No value of x is 0, where the derivative has its kink.
        let x: Vec<f32> = (0..n * c * plane)
            .map(|i| ((i * 37 % 23) as f32 - 11.5) / 7.0)
            .collect();
        let r: Vec<f32> = (0..n * c * plane)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) / 5.0)
            .collect();
        for alpha in [vec![0.25f32, -0.5], vec![0.1]] {
            let y = prelu_forward(&x, &alpha, c, plane);
            for (i, (&v, &o)) in x.iter().zip(&y).enumerate() {
                let a = slope(&alpha, (i / plane) % c);
                assert_eq!(o, if v < 0.0 { a * v } else { v });
            }
            let loss = |x: &[f32], alpha: &[f32]| -> f64 {
                prelu_forward(x, alpha, c, plane)
                    .iter()
                    .zip(&r)
                    .map(|(a, b)| (*a as f64) * (*b as f64))
                    .sum()
            };
            let (dx, da) = prelu_backward(&x, &alpha, &r, c, plane);
            let eps = 1e-3f32;
            for i in 0..x.len() {
                let (mut p, mut m) = (x.clone(), x.clone());
                p[i] += eps;
                m[i] -= eps;
                let num = (loss(&p, &alpha) - loss(&m, &alpha)) / (2.0 * eps as f64);
                assert!(
                    (num - dx[i] as f64).abs() < 1e-3,
                    "dx[{i}] {num} vs {}",
                    dx[i]
                );
            }
            for k in 0..alpha.len() {
                let (mut p, mut m) = (alpha.clone(), alpha.clone());
                p[k] += eps;
                m[k] -= eps;
                let num = (loss(&x, &p) - loss(&x, &m)) / (2.0 * eps as f64);
                assert!(
                    (num - da[k] as f64).abs() < 1e-2,
                    "dalpha[{k}] {num} vs {}",
                    da[k]
                );
            }
        }
    }

    #[test]
    fn relu_matches_its_definition() {
        let x = [-2.0f32, -0.0, 0.0, 0.25, f32::NAN, 3.0];
        let dy = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = relu_forward(&x);
        assert_eq!(&y[..4], &[0.0, 0.0, 0.0, 0.25]);
        assert!(y[1].is_sign_positive() && y[4].is_nan() && y[5] == 3.0);
        assert_eq!(relu_backward(&x, &dy)[..4], [0.0, 0.0, 0.0, 4.0]);
        assert_eq!(relu_backward(&x, &dy)[4..], [5.0, 6.0]);
    }

    #[test]
    fn leaky_relu_matches_its_definition() {
        let x = [-2.0f32, -0.5, 0.0, 0.25, 3.0];
        let dy = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(
            leaky_relu_forward(&x, 0.2),
            vec![-0.4, -0.1, 0.0, 0.25, 3.0]
        );
        assert_eq!(
            leaky_relu_backward(&x, 0.2, &dy),
            vec![0.2, 0.4, 3.0, 4.0, 5.0]
        );
    }
}
