//! The input gradient of a convolution (and so a transposed convolution's forward pass), through
//! col2im or a channels-last image.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::channels_last::{ChannelsLast, reorder_taps};
use crate::gemm::{images_per_gemm, matmul, split_by_runs};
use crate::geometry::Geom;
use crate::im2col::{Scratch, add_run, col2im};
use crate::output::{init, output};
use crate::simd::simd;

/// dL/dX `[n, cin, ih, iw]` of a convolution (and so the forward pass of a transposed
/// convolution): per image, the column matrix `Wᵀ · dY_n` added back onto the input's positions.
/// With `cin >= 8` the column matrix is built position-major and added in channel runs
/// (`input_grad_channels_last`), else row-major through the padded image (col2im).
pub fn input_grad(w: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    input_grad_onto(w, dy, None, g)
}

/// [`input_grad`] added onto `start [cin]` per channel (zeros when `None`).
pub(super) fn input_grad_onto(w: &[f32], dy: &[f32], start: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    if let Some(b) = start {
        assert_eq!(
            b.len(),
            g.cin,
            "transposed_forward: bias of {} values",
            b.len()
        );
    }
    if g.n == 0 || g.in_len() == 0 {
        return Vec::new();
    }
    if g.out_plane() == 0 {
        // No output position reads the input: dx is its starting values.
        // SAFETY: `chunks_exact_mut` cuts `dx` (`g.n * g.in_len()` values, `g.in_len() > 0` here)
        // into its `g.n` images, and `init_image` writes every value of each (through `init`).
        return unsafe {
            output(g.n * g.in_len(), |dx| {
                for image in dx.chunks_exact_mut(g.in_len()) {
                    init_image(image, start, g.ih * g.iw);
                }
            })
        };
    }
    if g.channels_last() {
        input_grad_channels_last(w, dy, start, g)
    } else {
        input_grad_col2im(w, dy, start, g)
    }
}

/// One image of an [`output`] `[channels, plane]` initialised to `start[c]` per channel (zeros
/// when `None`).
fn init_image<'a>(
    buf: &'a mut [MaybeUninit<f32>],
    start: Option<&[f32]>,
    plane: usize,
) -> &'a mut [f32] {
    match start {
        None => init(buf, 0.0),
        Some(b) => {
            let image = init(buf, 0.0);
            for (row, &v) in image.chunks_exact_mut(plane.max(1)).zip(b) {
                row.fill(v);
            }
            image
        }
    }
}

/// [`input_grad`] through a position-major column matrix. The weights are reordered once to
/// `W' [cout, kh, kw, cin]`; per image `colᵀ [oh*ow, kh*kw*cin] = dY_nᵀ · W'` (the GEMM's long
/// side is then the `kh*kw*cin` rows, which tiles well, where `oh*ow` such as 7x7 = 49 does
/// not), each output position's `kh*kw` runs of `cin` values are added onto a zero-padded
/// channels-last image `[rows, cols, cin]`, and that is transposed back onto `dx` without its
/// padding.
pub(super) fn input_grad_channels_last(
    w: &[f32],
    dy: &[f32],
    start: Option<&[f32]>,
    g: &Geom,
) -> Vec<f32> {
    let rows = g.col_rows();
    let plane = g.out_plane();
    let in_plane = g.ih * g.iw;
    if g.n == 0 || g.in_len() == 0 || plane == 0 {
        return Vec::new();
    }
    let wt = reorder_taps(w, g.cout, g.cin, g.kh * g.kw); // W' [cout, taps, cin]
    // SAFETY: every value of `dx` is written: `split_by_runs` cuts it into one piece per run of
    // `image_runs`, and the runs together cover all `g.n` images; the blocks of a run cover its
    // images, and `init_image` writes each image `k` of a block in full (through `init`) before
    // anything is added onto it.
    let cl = ChannelsLast::of(g);
    let (positions, taps) = cl.offsets(g);
    unsafe {
        output(g.n * g.in_len(), |dx| {
            split_by_runs(dx, g.n, g.in_len())
                .into_par_iter()
                .for_each(|(out, run)| {
                    simd(
                        #[inline(always)]
                        || {
                            let per = images_per_gemm(g);
                            let mut colt = vec![0f32; per * plane * rows];
                            let mut dy_block = vec![0f32; g.cout * per * plane];
                            let mut padded = vec![0f32; cl.len_for(g.cin)];
                            let start_image = run.start;
                            let mut first = run.start;
                            while first < run.end {
                                let count = per.min(run.end - first);
                                let ld = count * plane;
                                // colᵀ [count*plane, rows'] = dYᵀ · W' [cout, rows'] for `count`
                                // images at once, their dY gathered side by side as
                                // `[cout, count*plane]` first (one image's 7x7 = 49 positions tile
                                // the GEMM poorly; see `images_per_gemm`).
                                let lhs = if count == 1 {
                                    &dy[first * g.cout * plane..(first + 1) * g.cout * plane]
                                } else {
                                    for b in 0..count {
                                        let dyi = &dy[(first + b) * g.cout * plane..];
                                        for c in 0..g.cout {
                                            dy_block[c * ld + b * plane..c * ld + (b + 1) * plane]
                                                .copy_from_slice(&dyi[c * plane..(c + 1) * plane]);
                                        }
                                    }
                                    &dy_block[..g.cout * ld]
                                };
                                matmul(
                                    ld,
                                    rows,
                                    g.cout,
                                    &mut colt,
                                    false,
                                    lhs,
                                    [1, ld as isize],
                                    &wt,
                                    [rows as isize, 1],
                                );
                                for b in 0..count {
                                    let k = first + b - start_image;
                                    let dxi = init_image(
                                        &mut out[k * g.in_len()..(k + 1) * g.in_len()],
                                        start,
                                        in_plane,
                                    );
                                    padded.fill(0.0);
                                    let image = &colt[b * plane * rows..(b + 1) * plane * rows];
                                    for (src, p) in image.chunks_exact(rows).zip(&positions) {
                                        for (run, t) in src.chunks_exact(g.cin).zip(&taps) {
                                            let at = p + t;
                                            add_run(&mut padded[at..at + g.cin], run);
                                        }
                                    }
                                    cl.unpad_add(&padded, g, dxi);
                                }
                                first += count;
                            }
                        },
                    )
                });
        })
    }
}

/// [`input_grad`] through the row-major column matrix and [`col2im`].
pub(super) fn input_grad_col2im(
    w: &[f32],
    dy: &[f32],
    start: Option<&[f32]>,
    g: &Geom,
) -> Vec<f32> {
    let rows = g.col_rows();
    let plane = g.out_plane();
    let in_plane = g.ih * g.iw;
    if g.n == 0 || g.in_len() == 0 {
        // SAFETY: every value of `dx` is written: `split_by_runs` cuts it into one piece per run of
        // `image_runs`, and the runs together cover all `g.n` images; each worker writes every
        // image `k` of its run in full with `init_image` (through `init`) before the GEMM or
        // `col2im` adds onto it.
        return Vec::new();
    }
    unsafe {
        output(g.n * g.in_len(), |dx| {
            split_by_runs(dx, g.n, g.in_len())
                .into_par_iter()
                .for_each(|(out, run)| {
                    simd(
                        #[inline(always)]
                        || {
                            let mut scratch = Scratch::new(g);
                            for (k, i) in run.enumerate() {
                                let dyi = &dy[i * g.cout * plane..(i + 1) * g.cout * plane];
                                let xi = init_image(
                                    &mut out[k * g.in_len()..(k + 1) * g.in_len()],
                                    start,
                                    in_plane,
                                );
                                // Wᵀ [rows, cout] (W is [cout, rows]) · dY_i [cout, plane].
                                let lhs_strides = [1, rows as isize];
                                if g.is_pointwise() {
                                    // Onto the starting values (the bias) if any, else over the
                                    // zeros.
                                    matmul(
                                        rows,
                                        plane,
                                        g.cout,
                                        xi,
                                        start.is_some(),
                                        w,
                                        lhs_strides,
                                        dyi,
                                        [plane as isize, 1],
                                    );
                                } else {
                                    matmul(
                                        rows,
                                        plane,
                                        g.cout,
                                        &mut scratch.col,
                                        false,
                                        w,
                                        lhs_strides,
                                        dyi,
                                        [plane as isize, 1],
                                    );
                                    col2im(&mut scratch, g, xi);
                                }
                            }
                        },
                    )
                });
        })
    }
}
