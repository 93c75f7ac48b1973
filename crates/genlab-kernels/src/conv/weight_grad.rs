//! The weight gradient of a convolution, through a row-major or a position-major column matrix.

use rayon::prelude::*;

use super::channels_last::{ChannelsLast, reorder_taps};
use crate::gemm::{image_runs, matmul, sum_partials};
use crate::geometry::Geom;
use crate::im2col::{Scratch, columns, copy_run};
use crate::simd::simd;

/// dL/dW `[cout, cin, kh, kw]` of a convolution: Σ_n dY_n `[cout, oh*ow]` · im2col(X_n)ᵀ.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    if g.channels_last() {
        weight_grad_channels_last(x, dy, g)
    } else {
        weight_grad_rows(x, dy, g)
    }
}

/// [`weight_grad`] through a position-major column matrix. Per image the input is copied into a
/// zero-padded channels-last image `[rows, cols, cin]`, `colᵀ [oh*ow, kh*kw*cin]` is filled
/// with one run of `cin` values per output position and tap, and
/// `dW' [cout, kh*kw*cin] += dY_n · colᵀ` reads it contiguously (which the GEMM packs faster
/// than the transposed view of a row-major column matrix); `dW'` is reordered to
/// `[cout, cin, kh, kw]` at the end.
pub(super) fn weight_grad_channels_last(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    let rows = g.col_rows();
    let plane = g.out_plane();
    if g.n == 0 || plane == 0 {
        return vec![0f32; g.cout * rows];
    }
    let cl = ChannelsLast::of(g);
    let (positions, taps) = cl.offsets(g);
    let partials: Vec<Vec<f32>> = image_runs(g.n)
        .into_par_iter()
        .map(|run| {
            simd(
                #[inline(always)]
                || {
                    let mut acc = vec![0f32; g.cout * rows];
                    let mut padded = vec![0f32; cl.len_for(g.cin)];
                    let mut colt = vec![0f32; plane * rows];
                    for i in run {
                        cl.pad(&x[i * g.in_len()..(i + 1) * g.in_len()], g, &mut padded);
                        for (dst, p) in colt.chunks_exact_mut(rows).zip(&positions) {
                            for (run, t) in dst.chunks_exact_mut(g.cin).zip(&taps) {
                                let at = p + t;
                                copy_run(run, &padded[at..at + g.cin]);
                            }
                        }
                        let dyi = &dy[i * g.cout * plane..(i + 1) * g.cout * plane];
                        // dW' [cout, rows'] += dY_i [cout, plane] · colᵀ [plane, rows'].
                        matmul(
                            g.cout,
                            rows,
                            plane,
                            &mut acc,
                            true,
                            dyi,
                            [plane as isize, 1],
                            &colt,
                            [rows as isize, 1],
                        );
                    }
                    acc
                },
            )
        })
        .collect();
    let dw = sum_partials(partials, g.cout * rows);
    reorder_taps(&dw, g.cout, g.kh * g.kw, g.cin)
}

/// [`weight_grad`] through the row-major column matrix.
pub(super) fn weight_grad_rows(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    let rows = g.col_rows();
    let plane = g.out_plane();
    let partials: Vec<Vec<f32>> = image_runs(g.n)
        .into_par_iter()
        .map(|run| {
            simd(
                #[inline(always)]
                || {
                    let mut acc = vec![0f32; g.cout * rows];
                    let mut scratch = Scratch::new(g);
                    for i in run {
                        let xi = &x[i * g.in_len()..(i + 1) * g.in_len()];
                        let col = columns(xi, g, &mut scratch);
                        let dyi = &dy[i * g.cout * plane..(i + 1) * g.cout * plane];
                        // [cout, plane] · [plane, rows], the right side read transposed from col.
                        matmul(
                            g.cout,
                            rows,
                            plane,
                            &mut acc,
                            true,
                            dyi,
                            [plane as isize, 1],
                            col,
                            [1, plane as isize],
                        );
                    }
                    acc
                },
            )
        })
        .collect();
    sum_partials(partials, g.cout * rows)
}
