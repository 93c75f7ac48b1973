//! The zero-padded channels-last image of the channels-last gradient paths, and the weight
//! reordering between `[cout, cin, taps]` and `[cout, taps, cin]`.

use crate::geometry::Geom;
use crate::im2col::Padded;
use crate::simd::simd;

/// The zero-padded channels-last image `[rows, cols, cin]` of one input image that the
/// channels-last kernels read or add onto: padded position `(r, t)` is input position
/// `(r - pad_h, t - pad_w)`, and only the rows and columns the output reaches are kept.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChannelsLast {
    rows: usize,
    cols: usize,
}

impl ChannelsLast {
    pub(super) fn of(g: &Geom) -> Self {
        let p = Padded::of(g);
        Self {
            rows: p.rows,
            cols: if p.rows == 0 {
                0
            } else {
                g.stride[1] * (g.ow - 1) + g.dilation[1] * (g.kw - 1) + 1
            },
        }
    }

    /// Values of the padded image of `cin` channels.
    pub(super) fn len_for(&self, cin: usize) -> usize {
        self.rows * self.cols * cin
    }

    /// Offset of the `cin` values that output position `pos` reads with tap `t = ki * kw + kj`.
    #[inline(always)]
    pub(super) fn at(&self, g: &Geom, pos: usize, t: usize) -> usize {
        let (oy, ox) = (pos / g.ow, pos % g.ow);
        let (ki, kj) = (t / g.kw, t % g.kw);
        ((oy * g.stride[0] + ki * g.dilation[0]) * self.cols
            + ox * g.stride[1]
            + kj * g.dilation[1])
            * g.cin
    }

    /// The input positions `(iy, ix)` that lie inside the padded image, as the ranges of `iy`
    /// and `ix`.
    fn inside(&self, g: &Geom) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let [ph, pw] = g.pad;
        (
            0..g.ih.min(self.rows.saturating_sub(ph)),
            0..g.iw.min(self.cols.saturating_sub(pw)),
        )
    }

    /// Writes image `x [cin, ih, iw]` into `buf` (zeros in the padding).
    pub(super) fn pad(&self, x: &[f32], g: &Geom, buf: &mut [f32]) {
        simd(
            #[inline(always)]
            || {
                buf.fill(0.0);
                let (ys, xs) = self.inside(g);
                let [ph, pw] = g.pad;
                let cin = g.cin;
                for iy in ys {
                    for ix in xs.clone() {
                        let at = ((iy + ph) * self.cols + ix + pw) * cin;
                        let pos = iy * g.iw + ix;
                        for (c, d) in buf[at..at + cin].iter_mut().enumerate() {
                            *d = x[c * g.ih * g.iw + pos];
                        }
                    }
                }
            },
        )
    }

    /// Adds `buf` back onto `x [cin, ih, iw]`, dropping the padding (the adjoint of `pad`).
    pub(super) fn unpad_add(&self, buf: &[f32], g: &Geom, x: &mut [f32]) {
        simd(
            #[inline(always)]
            || {
                let (ys, xs) = self.inside(g);
                let [ph, pw] = g.pad;
                let cin = g.cin;
                for iy in ys {
                    for ix in xs.clone() {
                        let at = ((iy + ph) * self.cols + ix + pw) * cin;
                        let pos = iy * g.iw + ix;
                        for (c, &v) in buf[at..at + cin].iter().enumerate() {
                            x[c * g.ih * g.iw + pos] += v;
                        }
                    }
                }
            },
        )
    }
}

/// `[outer, a, b]` reordered to `[outer, b, a]` (weights between `[cout, cin, taps]` and
/// `[cout, taps, cin]`: `reorder_taps(w, cout, cin, taps)` one way, `(w, cout, taps, cin)` back).
pub(super) fn reorder_taps(w: &[f32], outer: usize, a: usize, b: usize) -> Vec<f32> {
    simd(
        #[inline(always)]
        || {
            let mut out = vec![0f32; outer * a * b];
            for (dst, src) in out
                .chunks_exact_mut(a * b)
                .zip(w.chunks_exact(a * b))
                .take(outer)
            {
                for (i, row) in src.chunks_exact(b).enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        dst[j * a + i] = v;
                    }
                }
            }
            out
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::conv::input_grad::{input_grad_channels_last, input_grad_col2im};
    use crate::conv::weight_grad::{weight_grad_channels_last, weight_grad_rows};
    use crate::test_util::{geom, lcg};

    /// The channels-last input and weight gradients equal the col2im / row-major ones (checked
    /// against finite differences in `conv::tests`) on W2/W3's strided layers and on padded,
    /// dilated, odd-sized ones, including a padding wider than the kernel reaches, an output that
    /// stops short of the input's far edge, and enough images for several GEMM blocks.
    #[test]
    fn channels_last_gradients_equal_the_row_major_ones() {
        // (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation)
        let cases = [
            (3, 8, 14, 14, 4, 4, 4, [2, 2], [1, 1], [1, 1]),
            (2, 16, 7, 9, 3, 3, 3, [1, 1], [1, 1], [1, 1]),
            (2, 9, 10, 11, 5, 3, 2, [2, 3], [2, 0], [2, 1]),
            (1, 8, 4, 4, 2, 5, 5, [1, 1], [4, 4], [1, 1]),
            (2, 8, 11, 8, 3, 2, 3, [3, 3], [0, 0], [1, 1]),
            // Several GEMM blocks per thread (`images_per_gemm`: 5 images of 7x7, then 1).
            (12, 8, 14, 14, 4, 4, 4, [2, 2], [1, 1], [1, 1]),
        ];
        for (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation) in cases {
            let g = geom(n, cin, [ih, iw], cout, [kh, kw], stride, pad, dilation);
            let w = lcg(5, g.cout * g.col_rows());
            let dy = lcg(6, g.n * g.cout * g.out_plane());
            let x = lcg(7, g.n * g.in_len());
            for (a, b) in [
                (
                    input_grad_channels_last(&w, &dy, None, &g),
                    input_grad_col2im(&w, &dy, None, &g),
                ),
                (
                    weight_grad_channels_last(&x, &dy, &g),
                    weight_grad_rows(&x, &dy, &g),
                ),
            ] {
                assert_eq!(a.len(), b.len());
                for (u, v) in a.iter().zip(&b) {
                    assert!((u - v).abs() <= 1e-5 * (1.0 + v.abs()), "{g:?}: {u} vs {v}");
                }
            }
        }
    }
}
