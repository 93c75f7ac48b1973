//! The zero-padded, column-phase-split copy of an image that the column matrix is built from:
//! written from the image (`pad_image`, with an AVX-512 path) and added back onto it
//! (`unpad_image`).

#[cfg(target_arch = "x86_64")]
use super::has_avx512;
use super::{add_run, copy_run};
use crate::geometry::{Geom, valid_range};
use crate::simd::simd;

/// The zero-padded, column-phase-split copy of one image that [`im2col`](super::im2col) reads and [`col2im`](super::col2im)
/// writes. Padded row `r` holds input row `r - pad_h` (zeros outside the image); its padded
/// columns `t` are stored phase by phase, `t = j * stride_w + q` at `[q][j]`. Every tap of a row
/// of output positions then reads (or, in `col2im`, adds onto) one contiguous run of `ow` values:
/// output column `ox` with tap `kj` reads `t = ox * stride_w + kj * dilation_w`, which is phase
/// `(kj * dilation_w) % stride_w`, index `ox + (kj * dilation_w) / stride_w`. No bounds logic is
/// left in the inner loops and a strided convolution needs no per-element gather.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Padded {
    /// Padded rows the output reaches: `stride_h * (oh - 1) + dilation_h * (kh - 1) + 1`.
    pub(crate) rows: usize,
    /// Values per phase: the padded columns the output reaches, divided by `stride_w` (rounded up).
    pub(super) phase_len: usize,
    /// `stride_w * phase_len`: one padded row.
    pub(super) row_len: usize,
    /// One input row laid out as a padded row before its phase split (`pad_image`): room for
    /// the part the output reaches and for the whole input row, in 16-value blocks.
    line_len: usize,
}

impl Padded {
    pub(crate) fn of(g: &Geom) -> Self {
        if g.oh == 0 || g.ow == 0 {
            return Self {
                rows: 0,
                phase_len: 0,
                row_len: 0,
                line_len: 0,
            };
        }
        let rows = g.stride[0] * (g.oh - 1) + g.dilation[0] * (g.kh - 1) + 1;
        let cols = g.stride[1] * (g.ow - 1) + g.dilation[1] * (g.kw - 1) + 1;
        let phase_len = cols.div_ceil(g.stride[1]);
        let row_len = g.stride[1] * phase_len;
        Self {
            rows,
            phase_len,
            row_len,
            line_len: row_len.max(g.pad[1] + g.iw).next_multiple_of(16),
        }
    }

    /// Values between the runs of consecutive output rows: `stride_h` padded rows.
    pub(super) fn run_step(&self, g: &Geom) -> usize {
        g.stride[0] * self.row_len
    }

    /// Values per channel.
    pub(super) fn plane(&self) -> usize {
        self.rows * self.row_len
    }

    /// The padded image of `cin` channels, then one channel's input rows laid out as padded
    /// rows (`pad_image`'s staging area).
    pub(super) fn scratch_len(&self, g: &Geom) -> usize {
        g.cin * self.plane() + g.ih * self.line_len
    }
}

/// For each phase `q` of a padded row: the index range `[lo, hi)` of its values that lie inside
/// the image (index `j` is input column `j * stride_w + q - pad_w`).
fn phase_ranges(g: &Geom, p: &Padded) -> Vec<(usize, usize)> {
    (0..g.stride[1])
        .map(|q| valid_range(p.phase_len, g.iw, g.stride[1], q, g.pad[1]))
        .collect()
}

/// Writes the [`Padded`] copy of one image `x [cin, ih, iw]` into the start of `buf` (of
/// [`Padded::scratch_len`] values): [`pad_image_avx512`] where the rows fit two AVX-512 vectors
/// and the CPU has it, else [`pad_image_portable`].
pub(super) fn pad_image(x: &[f32], g: &Geom, p: &Padded, buf: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if p.row_len <= 32 && g.iw <= 32 && has_avx512() {
        // SAFETY: the CPU has AVX-512 F, checked just above, and the rows fit two vectors.
        unsafe { pad_image_avx512(x, g, p, buf) };
        return;
    }
    pad_image_portable(x, g, p, buf)
}

/// [`pad_image`] in plain Rust, for any row length. With stride 1 each row is copied between
/// zeros. With a larger stride, each channel's input rows are first laid out as padded rows in
/// the staging area at the end of `buf` (`pad_w` zeros, the row, zeros up to a whole number of
/// 16-value blocks), then split into their phases in fixed-size blocks: no bounds logic or short
/// fills per row, which for the 14- and 28-value rows of the MNIST-sized layers cost more than
/// the column copies did. All of a channel's rows are laid out before any is split, so the
/// split's 16-value loads do not wait on the copy's narrower stores of the same bytes (a
/// store-forwarding stall).
pub(super) fn pad_image_portable(x: &[f32], g: &Geom, p: &Padded, buf: &mut [f32]) {
    simd(
        #[inline(always)]
        || {
            let sw = g.stride[1];
            let [ph, pw] = g.pad;
            let (buf, lines) = buf.split_at_mut(g.cin * p.plane());
            if sw == 1 {
                // One phase: each padded row is its input row between zeros, copied straight.
                let (lo, hi) = (pw.min(p.row_len), (pw + g.iw).min(p.row_len));
                for (c, chan) in buf.chunks_exact_mut(p.plane()).enumerate() {
                    let xc = &x[c * g.ih * g.iw..(c + 1) * g.ih * g.iw];
                    for (r, row) in chan.chunks_exact_mut(p.row_len).enumerate() {
                        if r < ph || r - ph >= g.ih {
                            row.fill(0.0);
                            continue;
                        }
                        let src = &xc[(r - ph) * g.iw..(r - ph) * g.iw + (hi - lo)];
                        row[..lo].fill(0.0);
                        copy_run(&mut row[lo..hi], src);
                        row[hi..].fill(0.0);
                    }
                }
                return;
            }
            let len = p.line_len;
            let lines = &mut lines[..g.ih * len];
            // The staging rows' padding: zeros, which the copies below never overwrite (one
            // fill of the whole area is cheaper than two short ones per row).
            lines.fill(0.0);
            for (c, chan) in buf.chunks_exact_mut(p.plane()).enumerate() {
                let xc = &x[c * g.ih * g.iw..(c + 1) * g.ih * g.iw];
                for (line, src) in lines
                    .chunks_exact_mut(len)
                    .zip(xc.chunks_exact(g.iw.max(1)))
                {
                    copy_run(&mut line[pw..pw + g.iw], src);
                }
                for (r, row) in chan.chunks_exact_mut(p.row_len).enumerate() {
                    if r < ph || r - ph >= g.ih {
                        row.fill(0.0);
                        continue;
                    }
                    let line = &lines[(r - ph) * len..(r - ph + 1) * len];
                    match sw {
                        2 => split_even_odd(line, row, p.phase_len),
                        _ => {
                            for (q, phase) in row.chunks_exact_mut(p.phase_len).enumerate() {
                                for (j, v) in phase.iter_mut().enumerate() {
                                    *v = line[j * sw + q];
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// [`pad_image`] for rows of at most 32 values, in and out, with AVX-512: each padded row is
/// one or two masked loads of its input row, one permutation of them per 16 values out (with
/// the zeros of the padding masked in) and a masked store each, for any stride. The MNIST-sized layers'
/// 14- and 28-value input rows spent more time in the general path's short copies, fills and
/// bounds checks than in moving their values (BENCHMARKS.md).
///
/// # Safety
///
/// The CPU must support AVX-512 F, and `p.row_len` and `g.iw` must be at most 32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pad_image_avx512(x: &[f32], g: &Geom, p: &Padded, buf: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(p.row_len <= 32 && g.iw <= 32);
    assert!(x.len() >= g.cin * g.ih * g.iw && buf.len() >= g.cin * p.plane());
    let (sw, [ph, pw]) = (g.stride[1], g.pad);
    // Padded value `t` (phase `q`, index `j`) is input column `j * sw + q - pw`, or a zero.
    let (mut from, mut inside) = ([0i32; 32], 0u32);
    for q in 0..sw {
        for j in 0..p.phase_len {
            let (t, col) = (q * p.phase_len + j, j * sw + q);
            if col >= pw && col - pw < g.iw {
                from[t] = (col - pw) as i32;
                inside |= 1 << t;
            }
        }
    }
    let ones = |n: usize| ((1u64 << n) - 1) as u32;
    let (load, store) = (ones(g.iw), ones(p.row_len));
    let halves = |m: u32| [m as u16, (m >> 16) as u16];
    let ([load0, load1], [store0, store1], [inside0, inside1]) =
        (halves(load), halves(store), halves(inside));
    // SAFETY: the asserts above keep every access in bounds: each input row read is `g.iw`
    // values of `x` (masked: lanes past them are neither read nor faulted on), each padded row
    // written is `p.row_len` values of the first `g.cin * p.plane()` of `buf`.
    unsafe {
        let from0 = _mm512_loadu_si512(from.as_ptr().cast());
        let from1 = _mm512_loadu_si512(from[16..].as_ptr().cast());
        let zero = _mm512_setzero_ps();
        let inside_image = |r: usize| r >= ph && r - ph < g.ih;
        if p.row_len <= 16 && g.iw <= 16 {
            // One vector per row: half the work of the loop below.
            for c in 0..g.cin {
                for r in 0..p.rows {
                    let dst = buf.as_mut_ptr().add(c * p.plane() + r * p.row_len);
                    let out = if inside_image(r) {
                        let src = x.as_ptr().add((c * g.ih + r - ph) * g.iw);
                        _mm512_maskz_permutexvar_ps(
                            inside0,
                            from0,
                            _mm512_maskz_loadu_ps(load0, src),
                        )
                    } else {
                        zero
                    };
                    _mm512_mask_storeu_ps(dst, store0, out);
                }
            }
            return;
        }
        for c in 0..g.cin {
            for r in 0..p.rows {
                let dst = buf.as_mut_ptr().add(c * p.plane() + r * p.row_len);
                let (out0, out1) = if !inside_image(r) {
                    (zero, zero)
                } else {
                    let src = x.as_ptr().add((c * g.ih + r - ph) * g.iw);
                    let a = _mm512_maskz_loadu_ps(load0, src);
                    let b = _mm512_maskz_loadu_ps(load1, src.add(16));
                    (
                        _mm512_maskz_permutex2var_ps(inside0, a, from0, b),
                        _mm512_maskz_permutex2var_ps(inside1, a, from1, b),
                    )
                };
                _mm512_mask_storeu_ps(dst, store0, out0);
                _mm512_mask_storeu_ps(dst.add(16), store1, out1);
            }
        }
    }
}

/// `row = [line[0], line[2], ..] ++ [line[1], line[3], ..]`, `half` values each, sixteen values
/// of `line` at a time (`line` holds `half` rounded up to 8, doubled).
#[inline(always)]
fn split_even_odd(line: &[f32], row: &mut [f32], half: usize) {
    let (even, odd) = row.split_at_mut(half);
    let mut j = 0;
    while j < half {
        let s = &line[2 * j..2 * j + 16];
        let (mut e, mut o) = ([0f32; 8], [0f32; 8]);
        for k in 0..8 {
            e[k] = s[2 * k];
            o[k] = s[2 * k + 1];
        }
        let m = (half - j).min(8);
        if m == 8 {
            even[j..j + 8].copy_from_slice(&e);
            odd[j..j + 8].copy_from_slice(&o);
        } else {
            even[j..half].copy_from_slice(&e[..m]);
            odd[j..half].copy_from_slice(&o[..m]);
        }
        j += 8;
    }
}

/// `dst[2 * j] += src[j]`, eight values at a time where `dst` holds sixteen more.
#[inline(always)]
fn scatter_add_even(dst: &mut [f32], src: &[f32]) {
    let mut j = 0;
    while j + 8 <= src.len() && 2 * j + 16 <= dst.len() {
        let (d, s) = (&mut dst[2 * j..2 * j + 16], &src[j..j + 8]);
        for k in 0..8 {
            d[2 * k] += s[k];
        }
        j += 8;
    }
    for k in j..src.len() {
        dst[2 * k] += src[k];
    }
}

/// Adds the [`Padded`] image `buf` back onto `x [cin, ih, iw]`, dropping the padding (the
/// adjoint of [`pad_image`]).
pub(super) fn unpad_image(buf: &[f32], g: &Geom, p: &Padded, x: &mut [f32]) {
    simd(
        #[inline(always)]
        || {
            let sw = g.stride[1];
            let [ph, pw] = g.pad;
            let ranges = phase_ranges(g, p);
            for (c, chan) in buf.chunks_exact(p.plane()).take(g.cin).enumerate() {
                let xc = &mut x[c * g.ih * g.iw..(c + 1) * g.ih * g.iw];
                for (r, row) in chan.chunks_exact(p.row_len).enumerate() {
                    if r < ph || r - ph >= g.ih {
                        continue;
                    }
                    let dst = &mut xc[(r - ph) * g.iw..(r - ph + 1) * g.iw];
                    for (q, (phase, &(lo, hi))) in
                        row.chunks_exact(p.phase_len).zip(&ranges).enumerate()
                    {
                        if lo < hi {
                            let dst = &mut dst[lo * sw + q - pw..];
                            let src = &phase[lo..hi];
                            match sw {
                                1 => add_run(&mut dst[..src.len()], src),
                                2 => scatter_add_even(dst, src),
                                _ => {
                                    for (d, s) in dst.iter_mut().step_by(sw).zip(src) {
                                        *d += *s;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
