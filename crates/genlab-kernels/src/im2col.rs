//! The padded, column-phase-split image and the column matrix built from it (`im2col`) or added
//! back through it (`col2im`).

use crate::geometry::{Geom, valid_range};
use crate::simd::simd;

/// The zero-padded, column-phase-split copy of one image that [`im2col`] reads and [`col2im`]
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
    phase_len: usize,
    /// `stride_w * phase_len`: one padded row.
    row_len: usize,
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
    fn run_step(&self, g: &Geom) -> usize {
        g.stride[0] * self.row_len
    }

    /// Values per channel.
    fn plane(&self) -> usize {
        self.rows * self.row_len
    }

    /// The padded image of `cin` channels, then one channel's input rows laid out as padded
    /// rows (`pad_image`'s staging area).
    fn scratch_len(&self, g: &Geom) -> usize {
        g.cin * self.plane() + g.ih * self.line_len
    }
}

/// Per-thread scratch of the column kernels: the padded image and one image's column matrix
/// `[cin*kh*kw, oh*ow]`, both empty for a pointwise convolution (its image is its own column
/// matrix).
pub(crate) struct Scratch {
    pub(crate) padded: Vec<f32>,
    pub(crate) col: Vec<f32>,
}

impl Scratch {
    pub(crate) fn new(g: &Geom) -> Self {
        Self::for_images(g, 1)
    }

    /// Room for the column matrix of `images` images side by side (`[rows, block_width]`, see
    /// [`block_width`](crate::gemm::block_width)).
    pub(crate) fn for_images(g: &Geom, images: usize) -> Self {
        if g.is_pointwise() {
            Self {
                padded: Vec::new(),
                col: Vec::new(),
            }
        } else {
            Self {
                padded: vec![0f32; Padded::of(g).scratch_len(g)],
                col: vec![0f32; g.col_rows() * crate::gemm::block_width(g, images)],
            }
        }
    }
}

/// Copies `src` into `dst` (equal lengths) in fixed 8- or 4-value blocks, the last one
/// overlapping, so a run as short as an output row (7 or 14 values here) is a few vector moves
/// rather than a call to `memcpy`.
#[inline(always)]
pub(crate) fn copy_run(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    debug_assert_eq!(n, src.len());
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            dst[i..i + 8].copy_from_slice(&src[i..i + 8]);
            i += 8;
        }
        if i < n {
            dst[n - 8..n].copy_from_slice(&src[n - 8..n]);
        }
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..n].copy_from_slice(&src[n - 4..n]);
    } else {
        dst.copy_from_slice(src);
    }
}

/// `dst += src` (equal lengths) in fixed 8- and 4-value blocks, then one value at a time.
#[inline(always)]
pub(crate) fn add_run(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    debug_assert_eq!(n, src.len());
    let mut i = 0;
    while i + 8 <= n {
        let (d, s) = (&mut dst[i..i + 8], &src[i..i + 8]);
        for k in 0..8 {
            d[k] += s[k];
        }
        i += 8;
    }
    if i + 4 <= n {
        let (d, s) = (&mut dst[i..i + 4], &src[i..i + 4]);
        for k in 0..4 {
            d[k] += s[k];
        }
        i += 4;
    }
    for k in i..n {
        dst[k] += src[k];
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
fn pad_image(x: &[f32], g: &Geom, p: &Padded, buf: &mut [f32]) {
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
fn pad_image_portable(x: &[f32], g: &Geom, p: &Padded, buf: &mut [f32]) {
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
unsafe fn pad_image_avx512(x: &[f32], g: &Geom, p: &Padded, buf: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(p.row_len <= 32 && g.iw <= 32);
    assert!(x.len() >= g.cin * g.ih * g.iw && buf.len() >= g.cin * p.plane());
    let (sw, [ph, pw]) = (g.stride[1], g.pad);
    // Padded value `t` (phase `q`, index `j`) is input column `j * sw + q - pw`, or a zero.
    let (mut from, mut inside) = ([0i32; 32], 0u32);
    for (t, from) in from.iter_mut().enumerate().take(p.row_len) {
        let col = (t % p.phase_len) * sw + t / p.phase_len;
        if col >= pw && col - pw < g.iw {
            *from = (col - pw) as i32;
            inside |= 1 << t;
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
fn unpad_image(buf: &[f32], g: &Geom, p: &Padded, x: &mut [f32]) {
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

/// For every column-matrix row `(c, ki, kj)`: the offset in the padded image of the first of
/// the `oh` runs of `ow` values that row reads (the runs are [`Padded::run_step`] apart), and the
/// offset of the row in a column matrix whose rows are `ld` values apart (its runs follow one
/// another).
#[inline(always)]
fn for_each_tap(g: &Geom, p: &Padded, ld: usize, mut f: impl FnMut(usize, usize)) {
    let sw = g.stride[1];
    let [dh, dw] = g.dilation;
    // Where tap column `kj` starts in a padded row (its phase, then its place in the phase),
    // worked out once per call rather than by a division per tap.
    let cols: Vec<usize> = (0..g.kw)
        .map(|kj| {
            let t = kj * dw;
            (t % sw) * p.phase_len + t / sw
        })
        .collect();
    let mut row = 0;
    for c in 0..g.cin {
        for ki in 0..g.kh {
            let base = c * p.plane() + ki * dh * p.row_len;
            for &col in &cols {
                f(base + col, row);
                row += ld;
            }
        }
    }
}

/// [`im2col_at`]'s copies for output rows of at most 16 values, with AVX-512: each run is one
/// masked load and one masked store, where the general loop takes two overlapping loads and
/// stores and their bounds checks.
///
/// # Safety
///
/// The CPU must support AVX-512 F and VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn copy_taps_avx512(g: &Geom, p: &Padded, padded: &[f32], col: &mut [f32], ld: usize) {
    use std::arch::x86_64::*;
    let (ow, step, plane) = (g.ow, p.run_step(g), g.out_plane());
    assert!(ow <= 16);
    let reach = (g.oh - 1) * step + ow;
    let mask = ((1u32 << ow) - 1) as u16;
    for_each_tap(
        g,
        p,
        ld,
        #[inline(always)]
        |from, to| {
            let (src, dst) = (&padded[from..from + reach], &mut col[to..to + plane]);
            let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
            // SAFETY (both loops): run `oy` is `src[oy * step..][..ow]` and
            // `dst[oy * ow..][..ow]`, inside both slices (`reach` and `plane` above); the masked
            // lanes past `ow` are neither read nor written.
            if ow <= 8 {
                // 8-lane moves: 16-lane ones were slower for the same copies on Zen 5
                // (BENCHMARKS.md).
                for oy in 0..g.oh {
                    unsafe {
                        let v = _mm256_maskz_loadu_ps(mask as u8, s.add(oy * step));
                        _mm256_mask_storeu_ps(d.add(oy * ow), mask as u8, v);
                    }
                }
            } else {
                for oy in 0..g.oh {
                    unsafe {
                        let v = _mm512_maskz_loadu_ps(mask, s.add(oy * step));
                        _mm512_mask_storeu_ps(d.add(oy * ow), mask, v);
                    }
                }
            }
        },
    );
}

/// `col [cin*kh*kw, oh*ow]` of one image `x [cin, ih, iw]`; zeros where a tap falls in the padding.
fn im2col(x: &[f32], g: &Geom, scratch: &mut Scratch) {
    im2col_at(x, g, &mut scratch.padded, &mut scratch.col, g.out_plane());
}

/// [`im2col`] into the columns of `col` from its start, its rows `ld` values apart (one image of
/// several side by side), through the padded-image scratch `padded`.
pub(crate) fn im2col_at(x: &[f32], g: &Geom, padded: &mut [f32], col: &mut [f32], ld: usize) {
    if g.out_plane() == 0 {
        return;
    }
    let p = Padded::of(g);
    pad_image(x, g, &p, padded);
    copy_taps(g, &p, padded, col, ld);
}

/// Whether this CPU runs the AVX-512 paths of [`pad_image`] and [`copy_taps`].
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// Copies the runs of every column-matrix row `(c, ki, kj)` out of the padded image `padded`
/// into `col`, its rows `ld` values apart: [`copy_taps_avx512`] for output rows of at most 16
/// values where the CPU has AVX-512, else [`copy_taps_portable`].
fn copy_taps(g: &Geom, p: &Padded, padded: &[f32], col: &mut [f32], ld: usize) {
    #[cfg(target_arch = "x86_64")]
    if g.ow <= 16 && has_avx512() {
        // SAFETY: the CPU has AVX-512 F and VL, checked just above.
        unsafe { copy_taps_avx512(g, p, padded, col, ld) };
        return;
    }
    copy_taps_portable(g, p, padded, col, ld)
}

/// [`copy_taps`] in plain Rust: each run is a [`copy_run`].
fn copy_taps_portable(g: &Geom, p: &Padded, padded: &[f32], col: &mut [f32], ld: usize) {
    simd(
        #[inline(always)]
        || {
            let (ow, step) = (g.ow, p.run_step(g));
            let reach = (g.oh - 1) * step + ow;
            for_each_tap(g, p, ld, |from, to| {
                let (src, dst) = (
                    &padded[from..from + reach],
                    &mut col[to..to + g.out_plane()],
                );
                for oy in 0..g.oh {
                    copy_run(
                        &mut dst[oy * ow..(oy + 1) * ow],
                        &src[oy * step..oy * step + ow],
                    );
                }
            });
        },
    )
}

/// The column matrix of one image: the image itself for a pointwise convolution, else
/// [`im2col`] into the scratch.
pub(crate) fn columns<'a>(x: &'a [f32], g: &Geom, scratch: &'a mut Scratch) -> &'a [f32] {
    if g.is_pointwise() {
        x
    } else {
        im2col(x, g, scratch);
        &scratch.col
    }
}

/// Adds the scratch's column matrix `[cin*kh*kw, oh*ow]` back onto the image `x [cin, ih, iw]`
/// (the adjoint of [`im2col`]), through the padded image.
pub(crate) fn col2im(scratch: &mut Scratch, g: &Geom, x: &mut [f32]) {
    simd(
        #[inline(always)]
        || {
            if g.out_plane() == 0 {
                return;
            }
            let p = Padded::of(g);
            let (padded, col) = (&mut scratch.padded, &scratch.col);
            padded[..g.cin * p.plane()].fill(0.0);
            let (ow, step) = (g.ow, p.run_step(g));
            let reach = (g.oh - 1) * step + ow;
            for_each_tap(g, &p, g.out_plane(), |to, from| {
                let (dst, src) = (
                    &mut padded[to..to + reach],
                    &col[from..from + g.out_plane()],
                );
                for oy in 0..g.oh {
                    add_run(
                        &mut dst[oy * step..oy * step + ow],
                        &src[oy * ow..(oy + 1) * ow],
                    );
                }
            });
            unpad_image(padded, g, &p, x);
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{geom, lcg};

    /// The AVX-512 paths of `pad_image` and `copy_taps` write the same bits as the portable ones,
    /// over strides 1 to 3, paddings up to 3, dilations 1 and 2, kernels of 1 to 5 and rows of 1
    /// to 40 values (the vector paths take up to 32 and 16), into column matrices with extra
    /// columns. (Where the CPU lacks AVX-512 there
    /// is nothing to compare: the portable paths are what runs, and the test below checks them.)
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx512_paths_match_the_portable_ones() {
        if !has_avx512() {
            eprintln!("this CPU has no AVX-512: only the portable paths run here");
            return;
        }
        let mut checked = [0usize; 2];
        for cin in [1, 3] {
            for (ih, iw) in [
                (1, 1),
                (5, 3),
                (14, 14),
                (7, 16),
                (16, 9),
                (28, 28),
                (3, 32),
                (6, 40),
            ] {
                for k in [1, 2, 4, 5] {
                    for (stride, pad, dilation) in [
                        ([1, 1], [0, 0], [1, 1]),
                        ([1, 1], [1, 2], [1, 1]),
                        ([2, 2], [1, 1], [1, 1]),
                        ([2, 3], [3, 0], [1, 2]),
                        ([3, 2], [0, 3], [2, 1]),
                        ([2, 2], [2, 2], [2, 2]),
                    ] {
                        let span = |len: usize, p: usize, d: usize| len + 2 * p > d * (k - 1);
                        if !span(ih, pad[0], dilation[0]) || !span(iw, pad[1], dilation[1]) {
                            continue;
                        }
                        let g = geom(1, cin, [ih, iw], 2, [k, k], stride, pad, dilation);
                        let p = Padded::of(&g);
                        let x = lcg((cin * 100 + ih * 10 + k) as u64, g.in_len());
                        let mut buf = [
                            vec![f32::NAN; p.scratch_len(&g)],
                            vec![f32::NAN; p.scratch_len(&g)],
                        ];
                        pad_image_portable(&x, &g, &p, &mut buf[0]);
                        let vectorised = p.row_len <= 32 && iw <= 32;
                        if vectorised {
                            // SAFETY: the CPU has AVX-512 (checked above) and the rows fit.
                            unsafe { pad_image_avx512(&x, &g, &p, &mut buf[1]) };
                            let plane = g.cin * p.plane();
                            let bits = |b: &[f32]| {
                                b[..plane].iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                            };
                            assert_eq!(bits(&buf[0]), bits(&buf[1]), "pad_image {g:?}");
                            checked[0] += 1;
                        }
                        if g.ow <= 16 {
                            let ld = g.out_plane() + 3;
                            let mut col = [
                                vec![f32::NAN; g.col_rows() * ld],
                                vec![f32::NAN; g.col_rows() * ld],
                            ];
                            copy_taps_portable(&g, &p, &buf[0], &mut col[0], ld);
                            // SAFETY: the CPU has AVX-512 (checked above).
                            unsafe { copy_taps_avx512(&g, &p, &buf[0], &mut col[1], ld) };
                            let bits =
                                |c: &[f32]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                            assert_eq!(bits(&col[0]), bits(&col[1]), "copy_taps {g:?}");
                            checked[1] += 1;
                        }
                    }
                }
            }
        }
        assert!(
            checked[0] > 50 && checked[1] > 50,
            "{checked:?} geometries compared"
        );
    }

    /// im2col against its definition, and col2im against the definition of its adjoint (each
    /// column entry added onto the input value it was read from), over geometries with strides 1
    /// to 3, paddings wider than the kernel, dilation, kernels larger than the input and outputs
    /// that stop short of the input's far edge.
    #[test]
    fn im2col_and_col2im_match_their_definitions() {
        // (cin, ih, iw, kh, kw, stride, pad, dilation)
        let cases = [
            (2, 8, 8, 4, 4, [2, 2], [1, 1], [1, 1]),
            (1, 28, 28, 4, 4, [2, 2], [1, 1], [1, 1]),
            (3, 7, 9, 3, 3, [1, 1], [1, 1], [1, 1]),
            (2, 5, 6, 3, 2, [2, 2], [1, 0], [1, 2]),
            (1, 6, 7, 5, 5, [1, 1], [2, 2], [1, 1]),
            (2, 9, 10, 3, 4, [3, 2], [0, 3], [2, 1]),
            (1, 3, 3, 5, 5, [1, 1], [4, 4], [1, 1]),
            (2, 11, 8, 2, 3, [3, 3], [0, 0], [1, 1]),
            (1, 4, 4, 9, 9, [2, 2], [4, 4], [1, 1]),
        ];
        for (cin, ih, iw, kh, kw, stride, pad, dilation) in cases {
            let g = geom(1, cin, [ih, iw], 1, [kh, kw], stride, pad, dilation);
            // Which input value (if any) column entry (row, position) reads.
            let source = |row: usize, pos: usize| -> Option<usize> {
                let (c, ki, kj) = (row / (kh * kw), row / kw % kh, row % kw);
                let (oy, ox) = (pos / g.ow, pos % g.ow);
                let iy = (oy * stride[0] + ki * dilation[0]) as isize - pad[0] as isize;
                let ix = (ox * stride[1] + kj * dilation[1]) as isize - pad[1] as isize;
                ((0..ih as isize).contains(&iy) && (0..iw as isize).contains(&ix))
                    .then(|| (c * ih + iy as usize) * iw + ix as usize)
            };
            let x = lcg(7, g.in_len());
            let mut scratch = Scratch::new(&g);
            im2col(&x, &g, &mut scratch);
            let plane = g.out_plane();
            let mut adjoint = vec![0f32; g.in_len()];
            for row in 0..g.col_rows() {
                for pos in 0..plane {
                    let expected = source(row, pos).map_or(0.0, |i| x[i]);
                    assert_eq!(
                        scratch.col[row * plane + pos],
                        expected,
                        "{g:?} {row} {pos}"
                    );
                    if let Some(i) = source(row, pos) {
                        adjoint[i] += (row * plane + pos) as f32;
                    }
                }
            }
            for (i, v) in scratch.col.iter_mut().enumerate() {
                *v = i as f32;
            }
            let mut back = vec![0f32; g.in_len()];
            col2im(&mut scratch, &g, &mut back);
            assert_eq!(back, adjoint, "{g:?}");
        }
    }
}
