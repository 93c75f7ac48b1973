//! The zero-padded channels-last image of the channels-last gradient paths, and the weight
//! reordering between `[cout, cin, taps]` and `[cout, taps, cin]`.

use std::mem::MaybeUninit;

use crate::geometry::Geom;
use crate::im2col::Padded;
use crate::output::output;
use crate::simd::{simd, transpose_rows, transpose8};

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

    /// The offsets of `at` (the test-only definition) as two tables, `at(g, pos, t) =
    /// positions[pos] + taps[t]`: `positions[pos]` is `at(g, pos, 0)` for every output
    /// position, `taps[t]` the step from there to tap `t`. The gather and scatter loops add the two rather than call
    /// `at`, whose two divisions per run of `cin` values cost more than the run's copy.
    pub(super) fn offsets(&self, g: &Geom) -> (Vec<usize>, Vec<usize>) {
        let [sh, sw] = g.stride;
        let [dh, dw] = g.dilation;
        let positions = (0..g.oh)
            .flat_map(|oy| (0..g.ow).map(move |ox| (oy * sh * self.cols + ox * sw) * g.cin))
            .collect();
        let taps = (0..g.kh)
            .flat_map(|ki| (0..g.kw).map(move |kj| (ki * dh * self.cols + kj * dw) * g.cin))
            .collect();
        (positions, taps)
    }

    /// Offset of the `cin` values that output position `pos` reads with tap `t = ki * kw + kj`:
    /// the definition [`offsets`](Self::offsets) is tested against.
    #[cfg(test)]
    fn at(&self, g: &Geom, pos: usize, t: usize) -> usize {
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

    /// Offset in the padded image of the `cin` values of input position `pos = iy * iw + ix`.
    #[inline(always)]
    fn offset(&self, g: &Geom, pos: usize) -> usize {
        ((pos / g.iw + g.pad[0]) * self.cols + pos % g.iw + g.pad[1]) * g.cin
    }

    /// Calls `f(pos, c, Piece::Block(offsets))` for blocks of 8 input positions `pos..pos + 8`
    /// and 8 channels `c..c + 8` inside the padded image (the 8x8 transposes of `pad` and
    /// `unpad_add`), `offsets` being the padded-image offsets of the 8 positions, and
    /// `f(pos, c, Piece::One(offset))` for each position and channel inside that the blocks
    /// leave over, `offset` being the position's.
    #[inline(always)]
    fn blocks(&self, g: &Geom, mut f: impl FnMut(usize, usize, Piece)) {
        let (ys, xs) = self.inside(g);
        let (cin, plane) = (g.cin, g.ih * g.iw);
        // Inside positions are whole input rows when the padded image keeps every column
        // (always, for the geometries the gradients use); else go position by position.
        let whole_rows = xs.len() == g.iw;
        let positions = if whole_rows { ys.end * g.iw } else { 0 };
        let (pos_blocks, c_blocks) = (positions / 8 * 8, cin / 8 * 8);
        for pos in (0..pos_blocks).step_by(8) {
            let offsets = std::array::from_fn(|k| self.offset(g, pos + k));
            for c in (0..c_blocks).step_by(8) {
                f(pos, c, Piece::Block(&offsets));
            }
            for (k, &offset) in offsets.iter().enumerate() {
                for c in c_blocks..cin {
                    f(pos + k, c, Piece::One(offset));
                }
            }
        }
        for pos in pos_blocks..plane {
            if (ys.contains(&(pos / g.iw))) && xs.contains(&(pos % g.iw)) {
                let offset = self.offset(g, pos);
                for c in 0..cin {
                    f(pos, c, Piece::One(offset));
                }
            }
        }
    }

    /// Writes image `x [cin, ih, iw]` into `buf` (zeros in the padding): 8x8 blocks of
    /// (channel, position) transposed in registers, rather than one strided load per value.
    pub(super) fn pad(&self, x: &[f32], g: &Geom, buf: &mut [f32]) {
        simd(
            #[inline(always)]
            || {
                buf.fill(0.0);
                let plane = g.ih * g.iw;
                self.blocks(
                    g,
                    #[inline(always)]
                    |pos, c, block| {
                        let offsets = match block {
                            Piece::Block(offsets) => offsets,
                            Piece::One(at) => return buf[at + c] = x[c * plane + pos],
                        };
                        let rows: [[f32; 8]; 8] = std::array::from_fn(
                            #[inline(always)]
                            |k| {
                                let row = &x[(c + k) * plane + pos..][..8];
                                std::array::from_fn(|i| row[i])
                            },
                        );
                        for (row, &at) in transpose8(&rows).iter().zip(offsets) {
                            buf[at + c..at + c + 8].copy_from_slice(row);
                        }
                    },
                );
            },
        )
    }

    /// Adds `buf` back onto `x [cin, ih, iw]`, dropping the padding (the adjoint of `pad`), in
    /// the same 8x8 blocks.
    pub(super) fn unpad_add(&self, buf: &[f32], g: &Geom, x: &mut [f32]) {
        simd(
            #[inline(always)]
            || {
                let plane = g.ih * g.iw;
                self.blocks(
                    g,
                    #[inline(always)]
                    |pos, c, block| {
                        let offsets = match block {
                            Piece::Block(offsets) => offsets,
                            Piece::One(at) => return x[c * plane + pos] += buf[at + c],
                        };
                        let rows: [[f32; 8]; 8] = std::array::from_fn(
                            #[inline(always)]
                            |k| {
                                let row = &buf[offsets[k] + c..][..8];
                                std::array::from_fn(|i| row[i])
                            },
                        );
                        for (k, row) in transpose8(&rows).iter().enumerate() {
                            let at = (c + k) * plane + pos;
                            for (d, &v) in x[at..at + 8].iter_mut().zip(row) {
                                *d += v;
                            }
                        }
                    },
                );
            },
        )
    }
}

/// What [`ChannelsLast::blocks`] hands its callback: an 8x8 block, with the padded-image offsets
/// of its 8 positions, or one value, with its position's offset.
enum Piece<'a> {
    Block(&'a [usize; 8]),
    One(usize),
}

/// `[outer, a, b]` reordered to `[outer, b, a]` (weights between `[cout, cin, taps]` and
/// `[cout, taps, cin]`: `reorder_taps(w, cout, cin, taps)` one way, `(w, cout, taps, cin)` back).
/// Value by value, except where `a` is large (the transposed convolution's `[rows, cout]`
/// weight gradient, `a` = 512 or 1024): there each value written lands a multiple of 1-4 KiB
/// from the last, which this CPU takes 12x longer over (236 µs against 19 µs for `[512, 64]`
/// on Zen 5, run while the other threads wait: 1.9% of W2's stepping thread), so it goes in
/// 8x8 blocks ([`transpose_rows`]). For the small `a` of the convolutions' own weights the
/// blocks were slower (85 against 74 µs for `[128, 64, 16]`).
pub(super) fn reorder_taps(w: &[f32], outer: usize, a: usize, b: usize) -> Vec<f32> {
    // SAFETY: every value is written, by `transpose_rows` (which writes all of its rows) or
    // value by value.
    unsafe {
        output(outer * a * b, |out| {
            simd(
                #[inline(always)]
                || {
                    for (dst, src) in out
                        .chunks_exact_mut(a * b)
                        .zip(w.chunks_exact(a * b))
                        .take(outer)
                    {
                        if a >= 256 {
                            transpose_rows(src, a, b, 0..b, dst);
                        } else {
                            for i in 0..a {
                                for j in 0..b {
                                    dst[j * a + i] = MaybeUninit::new(src[i * b + j]);
                                }
                            }
                        }
                    }
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ChannelsLast;
    use crate::conv::input_grad::{input_grad_channels_last, input_grad_col2im};
    use crate::conv::weight_grad::{weight_grad_channels_last, weight_grad_rows};
    use crate::test_util::{geom, lcg};

    /// `pad` and `unpad_add` against their definitions: every padded value is the input value at
    /// its position or zero, and `unpad_add` adds each padded value back onto the input value it
    /// came from. Channel counts with and without a remainder of 8, positions with and without,
    /// and a padded image that stops short of the input's far edge (position by position).
    #[test]
    fn pad_and_unpad_match_their_definitions() {
        // (cin, ih, iw, kh, kw, stride, pad)
        let cases = [
            (32, 14, 14, 4, 4, [2, 2], [1, 1]),
            (8, 4, 4, 3, 3, [1, 1], [1, 1]),
            (11, 5, 7, 3, 3, [1, 1], [2, 1]),
            (16, 11, 8, 2, 3, [3, 3], [0, 0]),
            (9, 9, 10, 3, 2, [2, 3], [2, 0]),
        ];
        for (cin, ih, iw, kh, kw, stride, pad) in cases {
            let g = geom(1, cin, [ih, iw], 2, [kh, kw], stride, pad, [1, 1]);
            let cl = ChannelsLast::of(&g);
            let x = lcg(3, g.in_len());
            let mut buf = vec![f32::NAN; cl.len_for(cin)];
            cl.pad(&x, &g, &mut buf);
            let mut back = lcg(4, g.in_len());
            let before = back.clone();
            let marks: Vec<f32> = (0..buf.len()).map(|k| k as f32).collect();
            cl.unpad_add(&marks, &g, &mut back);
            let mut expected_back = before;
            for r in 0..cl.rows {
                for t in 0..cl.cols {
                    for c in 0..cin {
                        let at = (r * cl.cols + t) * cin + c;
                        let (iy, ix) = (r as isize - pad[0] as isize, t as isize - pad[1] as isize);
                        let inside =
                            (0..ih as isize).contains(&iy) && (0..iw as isize).contains(&ix);
                        let src = (c * ih + iy.max(0) as usize) * iw + ix.max(0) as usize;
                        assert_eq!(buf[at], if inside { x[src] } else { 0.0 }, "{g:?} {at}");
                        if inside {
                            expected_back[src] += marks[at];
                        }
                    }
                }
            }
            assert_eq!(back, expected_back, "{g:?}");
        }
    }

    /// `offsets` adds up to `at` for every output position and tap, on strided, dilated and
    /// odd-sized geometries.
    #[test]
    fn offsets_add_up_to_at() {
        // (cin, ih, iw, kh, kw, stride, pad, dilation)
        let cases = [
            (32, 14, 14, 4, 4, [2, 2], [1, 1], [1, 1]),
            (9, 10, 11, 3, 2, [2, 3], [2, 0], [2, 1]),
            (8, 4, 4, 5, 5, [1, 1], [4, 4], [1, 1]),
        ];
        for (cin, ih, iw, kh, kw, stride, pad, dilation) in cases {
            let g = geom(2, cin, [ih, iw], 3, [kh, kw], stride, pad, dilation);
            let cl = ChannelsLast::of(&g);
            let (positions, taps) = cl.offsets(&g);
            assert_eq!((positions.len(), taps.len()), (g.out_plane(), kh * kw));
            for (pos, p) in positions.iter().enumerate() {
                for (t, q) in taps.iter().enumerate() {
                    assert_eq!(p + q, cl.at(&g, pos, t), "{g:?} {pos} {t}");
                }
            }
        }
    }

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

    /// `reorder_taps` against its definition, for sides with and without a remainder of 8
    /// and both directions of W3's and W2's weights.
    #[test]
    fn reorder_taps_is_the_transpose_of_each_block() {
        use super::reorder_taps;
        for (outer, a, b) in [
            (2, 64, 16),
            (3, 16, 64),
            (1, 1024, 64),
            (2, 11, 9),
            (1, 5, 3),
            (4, 8, 17),
        ] {
            let w = lcg(4, outer * a * b);
            let out = reorder_taps(&w, outer, a, b);
            for o in 0..outer {
                for i in 0..a {
                    for j in 0..b {
                        assert_eq!(
                            out[(o * b + j) * a + i],
                            w[(o * a + i) * b + j],
                            "{outer}x{a}x{b} at ({o}, {i}, {j})"
                        );
                    }
                }
            }
            assert_eq!(reorder_taps(&out, outer, b, a), w, "{outer}x{a}x{b} back");
        }
    }
}
