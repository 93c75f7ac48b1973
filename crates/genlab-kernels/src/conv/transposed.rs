//! The transposed convolution: its forward pass with a bias, and both its gradients at once.

use rayon::prelude::*;

use super::channels_last::reorder_taps;
use super::forward::weights_times_columns;
use super::input_grad::input_grad_onto;
use crate::gemm::{for_each_block, images_per_gemm, matmul, split_by_runs, sum_partials};
use crate::geometry::Geom;
use crate::im2col::Scratch;
use crate::output::output;
use crate::simd::simd;

/// The forward pass of a transposed convolution with an optional bias: [`input_grad`] with `x`
/// (the transposed convolution's input `[n, cout, oh, ow]` in `g`'s terms) in the role of dY,
/// added onto `bias [cin]` per channel (each worker starts its images from the bias, so there is
/// no separate pass over the output).
///
/// [`input_grad`]: crate::input_grad
pub fn transposed_forward(w: &[f32], x: &[f32], bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    input_grad_onto(w, x, bias, g)
}

/// Both gradients of a transposed convolution, sharing one column matrix per image. `g` is the
/// geometry of the convolution that maps the transposed convolution's output back to its input
/// (as everywhere here), `dy` the gradient of that output and `x` the transposed convolution's
/// input: per image, `col = im2col(dY_n)` is built once, then `dX_n = W · col` (what
/// [`forward`] computes, without bias) and `dW += X_n · colᵀ` (what [`weight_grad`] computes
/// with `x` in the role of dY). Returns `(dx, dw)`, equal to those two calls.
///
/// [`forward`]: crate::forward
/// [`weight_grad`]: crate::weight_grad
pub fn transposed_grads(dy: &[f32], w: &[f32], x: &[f32], g: &Geom) -> (Vec<f32>, Vec<f32>) {
    let rows = g.col_rows();
    let plane = g.out_plane();
    let out_len = g.cout * plane;
    if g.n == 0 || out_len == 0 {
        return (vec![0f32; g.n * out_len], vec![0f32; g.cout * rows]);
    }
    let transposed = transposed_weight_grad(g);
    let mut partials: Vec<Vec<f32>> = Vec::new();
    // SAFETY: every value of `dx` is written, as in `forward`: `split_by_runs` cuts it into one
    // piece per run of `image_runs`, and the runs together cover all `g.n` images; `for_each_block`
    // hands every image of a run to `weights_times_columns`, which writes every value of its `dst`.
    let dx = unsafe {
        output(g.n * out_len, |dx| {
            partials = split_by_runs(dx, g.n, out_len)
                .into_par_iter()
                .map(|(out, run)| {
                    simd(
                        #[inline(always)]
                        || {
                            let start = run.start;
                            let mut acc = vec![0f32; g.cout * rows];
                            let mut scratch = Scratch::for_images(g, images_per_gemm(g));
                            let mut block = Vec::new();
                            for_each_block(dy, g, run, &mut scratch, |first, count, col, ld| {
                                // dX = W [cout, rows] · col [rows, count * plane], image by image.
                                let dst = &mut out
                                    [(first - start) * out_len..(first - start + count) * out_len];
                                weights_times_columns(g, w, None, col, ld, count, dst, &mut block);
                                for b in 0..count {
                                    let (i, col) = (first + b, &col[b * plane..]);
                                    let xi = &x[i * out_len..(i + 1) * out_len];
                                    if transposed {
                                        // dWᵀ [rows, cout] += col [rows, plane] · X_iᵀ.
                                        let (cs, xs) = ([ld as isize, 1], [1, plane as isize]);
                                        matmul(
                                            rows, g.cout, plane, &mut acc, true, col, cs, xi, xs,
                                        );
                                    } else {
                                        // dW [cout, rows] += X_i [cout, plane] · colᵀ.
                                        let (xs, cs) = ([plane as isize, 1], [1, ld as isize]);
                                        matmul(
                                            g.cout, rows, plane, &mut acc, true, xi, xs, col, cs,
                                        );
                                    }
                                }
                            });
                            acc
                        },
                    )
                })
                .collect();
        })
    };
    let dw = sum_partials(partials, g.cout * rows);
    if transposed {
        (dx, reorder_taps(&dw, 1, rows, g.cout))
    } else {
        (dx, dw)
    }
}

/// Whether [`transposed_grads`] accumulates the weight gradient transposed, `dWᵀ [rows, cout]
/// += col · X_iᵀ`, rather than `dW += X_i · colᵀ`: the same products, which gemm runs faster
/// this way round for a tall column matrix and at most 64 channels, and slower for 128 channels
/// or a 16-row column matrix (measured on Zen 5, BENCHMARKS.md; the sums are the same bits).
fn transposed_weight_grad(g: &Geom) -> bool {
    g.cout <= 64 && g.col_rows() >= g.cout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::forward::forward;
    use crate::conv::input_grad::input_grad;
    use crate::conv::weight_grad::weight_grad;
    use crate::test_util::{geom, lcg};

    /// The shared-column transposed-convolution gradients equal the two separate kernels, for
    /// a strided/padded geometry, a 1x1 one, and more images than threads.
    #[test]
    fn transposed_grads_equal_the_separate_kernels() {
        let strided = Geom {
            n: 5,
            cin: 3,
            ih: 8,
            iw: 8,
            cout: 4,
            oh: 4,
            ow: 4,
            kh: 4,
            kw: 4,
            stride: [2, 2],
            pad: [1, 1],
            dilation: [1, 1],
        };
        let pointwise = Geom {
            kh: 1,
            kw: 1,
            stride: [1, 1],
            pad: [0, 0],
            oh: 8,
            ow: 8,
            ..strided
        };
        for g in [strided, pointwise] {
            let dy = lcg(1, g.n * g.in_len());
            let w = lcg(2, g.cout * g.col_rows());
            let x = lcg(3, g.n * g.cout * g.out_plane());
            let (dx, dw) = transposed_grads(&dy, &w, &x, &g);
            let (dx_ref, dw_ref) = (forward(&dy, &w, None, &g), weight_grad(&dy, &x, &g));
            for (a, b) in dx.iter().zip(&dx_ref).chain(dw.iter().zip(&dw_ref)) {
                assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
            }
            assert_eq!((dx.len(), dw.len()), (dx_ref.len(), dw_ref.len()));
        }
    }

    /// A transposed convolution's forward pass with a bias is the input gradient plus the bias
    /// per channel, on every path: channels-last (`cin >= 8`), col2im, pointwise (one GEMM onto
    /// the bias) and an output with no positions (the bias alone).
    #[test]
    fn transposed_forward_adds_the_bias() {
        // (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation)
        let cases = [
            (3, 8, 14, 14, 4, 4, 4, [2, 2], [1, 1], [1, 1]),
            (2, 3, 14, 14, 5, 4, 4, [2, 2], [1, 1], [1, 1]),
            (2, 9, 10, 11, 5, 3, 2, [2, 3], [2, 0], [2, 1]),
            (2, 4, 5, 6, 3, 1, 1, [1, 1], [0, 0], [1, 1]),
            (2, 2, 3, 3, 3, 3, 3, [1, 1], [0, 0], [1, 1]),
        ];
        for (i, (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation)) in
            cases.into_iter().enumerate()
        {
            let mut g = geom(n, cin, [ih, iw], cout, [kh, kw], stride, pad, dilation);
            if i == cases.len() - 1 {
                // No output positions at all.
                (g.oh, g.ow) = (0, 0);
            }
            let w = lcg(8, g.cout * g.col_rows());
            let x = lcg(9, g.n * g.cout * g.out_plane());
            let b = lcg(10, g.cin);
            let plain = input_grad(&w, &x, &g);
            let with_bias = transposed_forward(&w, &x, Some(&b), &g);
            assert_eq!(with_bias.len(), plain.len(), "{g:?}");
            let plane = g.ih * g.iw;
            for (k, (u, v)) in with_bias.iter().zip(&plain).enumerate() {
                let want = v + b[(k / plane) % g.cin];
                assert!(
                    (u - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{g:?} at {k}: {u} vs {want}"
                );
            }
            assert_eq!(transposed_forward(&w, &x, None, &g), plain, "{g:?}");
        }
    }
}
