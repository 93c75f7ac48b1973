//! The forward pass of a convolution: the weights times the column matrix of each image.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::gemm::{for_each_block, images_per_gemm, matmul, split_by_runs, unpacked_channels};
use crate::geometry::Geom;
use crate::im2col::Scratch;
use crate::output::{init, output};
use crate::simd::simd;

/// The convolution itself, `y [n, cout, oh, ow]`: per image, `W [cout, cin*kh*kw] · im2col(X_n)`
/// plus the bias, written straight into NCHW (no layout conversion). Images run in parallel.
pub fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    let plane = g.out_plane();
    let out_len = g.cout * plane;
    if g.n == 0 || out_len == 0 {
        return vec![0f32; g.n * out_len];
    }
    if let Some(b) = bias {
        assert_eq!(b.len(), g.cout, "forward: bias of {} values", b.len());
    }
    // SAFETY: every value of `y` is written: `split_by_runs` cuts it into one piece per run of
    // `image_runs`, and the runs together cover all `g.n` images; `for_each_block` hands every
    // image of a run, in blocks, to `weights_times_columns`, which writes every value of its `dst`
    // (all of it through `init` for one image, else each image's `[cout, oh*ow]` values one by
    // one).
    unsafe {
        output(g.n * out_len, |y| {
            split_by_runs(y, g.n, out_len)
                .into_par_iter()
                .for_each(|(out, run)| {
                    simd(
                        #[inline(always)]
                        || {
                            let start = run.start;
                            let mut scratch = Scratch::for_images(g, images_per_gemm(g));
                            let mut block = Vec::new();
                            for_each_block(x, g, run, &mut scratch, |first, count, col, ld| {
                                let dst = &mut out
                                    [(first - start) * out_len..(first - start + count) * out_len];
                                weights_times_columns(g, w, bias, col, ld, count, dst, &mut block);
                            });
                        },
                    )
                });
        })
    }
}

/// `W [cout, rows] · col [rows, ld]` (`ld` from [`block_width`](crate::gemm::block_width)) for `count` images
/// side by side, written into `out` (their `[cout, oh*ow]` outputs) plus `bias` per channel if
/// any. One image goes straight into `out` (the GEMM adds onto the bias); several go through
/// `block`, then are copied out image by image with the bias added.
#[allow(clippy::too_many_arguments)]
pub(super) fn weights_times_columns(
    g: &Geom,
    w: &[f32],
    bias: Option<&[f32]>,
    col: &[f32],
    ld: usize,
    count: usize,
    out: &mut [MaybeUninit<f32>],
    block: &mut Vec<f32>,
) {
    simd(
        #[inline(always)]
        || {
            let (rows, plane) = (g.col_rows(), g.out_plane());
            if count == 1 {
                let y = init(out, 0.0);
                if let Some(b) = bias {
                    for (row, &v) in y.chunks_exact_mut(plane).zip(b) {
                        row.fill(v);
                    }
                }
                matmul(
                    g.cout,
                    plane,
                    rows,
                    y,
                    bias.is_some(),
                    w,
                    [rows as isize, 1],
                    col,
                    [ld as isize, 1],
                );
                return;
            }
            block.resize(g.cout * ld, 0.0);
            // A few output channels per call, so gemm reads `col` in place (`block_width`).
            let chunk = unpacked_channels();
            for (dst, w) in block.chunks_mut(chunk * ld).zip(w.chunks(chunk * rows)) {
                matmul(
                    dst.len() / ld,
                    ld,
                    rows,
                    dst,
                    false,
                    w,
                    [rows as isize, 1],
                    col,
                    [ld as isize, 1],
                );
            }
            for (b, image) in out.chunks_exact_mut(g.cout * plane).take(count).enumerate() {
                for (c, dst) in image.chunks_exact_mut(plane).enumerate() {
                    let src = &block[c * ld + b * plane..c * ld + (b + 1) * plane];
                    let v = bias.map_or(0.0, |bias| bias[c]);
                    for (d, &s) in dst.iter_mut().zip(src) {
                        d.write(s + v);
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{geom, lcg};

    /// The forward pass (strided, stride-1, dilated, pointwise and padded-beyond-the-kernel, one
    /// image per GEMM and several) against the convolution's definition, with and without a bias.
    #[test]
    fn forward_matches_the_definition() {
        // (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation)
        let cases = [
            (2, 3, 14, 14, 4, 4, 4, [2, 2], [1, 1], [1, 1]),
            (1, 2, 9, 40, 3, 3, 3, [1, 1], [1, 1], [1, 1]),
            (2, 2, 10, 11, 5, 3, 2, [2, 3], [2, 0], [2, 1]),
            (1, 3, 6, 6, 2, 1, 1, [1, 1], [0, 0], [1, 1]),
            (1, 1, 5, 5, 2, 5, 5, [1, 1], [4, 4], [1, 1]),
            // Enough images that each thread's run is cut into several GEMM blocks
            // (`images_per_gemm`: 5 images of 7x7, then a shorter block).
            (37, 3, 14, 14, 4, 4, 4, [2, 2], [1, 1], [1, 1]),
            (9, 2, 10, 11, 5, 3, 2, [2, 3], [2, 0], [2, 1]),
        ];
        for (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation) in cases {
            let g = geom(n, cin, [ih, iw], cout, [kh, kw], stride, pad, dilation);
            let x = lcg(11, g.n * g.in_len());
            let w = lcg(12, g.cout * g.col_rows());
            let b = lcg(13, g.cout);
            for bias in [None, Some(&b[..])] {
                let y = forward(&x, &w, bias, &g);
                for (idx, &v) in y.iter().enumerate() {
                    let (img, co) = (idx / (g.cout * g.out_plane()), idx / g.out_plane() % g.cout);
                    let (oy, ox) = (idx % g.out_plane() / g.ow, idx % g.ow);
                    let mut acc = bias.map_or(0f64, |b| b[co] as f64);
                    for c in 0..cin {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let iy =
                                    (oy * stride[0] + ki * dilation[0]) as isize - pad[0] as isize;
                                let ix =
                                    (ox * stride[1] + kj * dilation[1]) as isize - pad[1] as isize;
                                if (0..ih as isize).contains(&iy) && (0..iw as isize).contains(&ix)
                                {
                                    let xv =
                                        x[((img * cin + c) * ih + iy as usize) * iw + ix as usize];
                                    let wv = w[((co * cin + c) * kh + ki) * kw + kj];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                    }
                    assert!((v as f64 - acc).abs() < 1e-4, "{g:?} y[{idx}] {v} vs {acc}");
                }
            }
        }
    }
}
