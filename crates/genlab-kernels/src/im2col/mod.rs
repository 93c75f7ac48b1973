//! The column matrix of an image, built from its padded, column-phase-split copy (`im2col`,
//! with AVX-512 paths) or added back through it (`col2im`).

mod padded;

pub(crate) use padded::Padded;
use padded::{pad_image, unpad_image};

use crate::geometry::Geom;
use crate::simd::simd;

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

/// Whether [`pad_image`] and [`copy_taps`] take their AVX-512 paths: the build runs AVX-512
/// ([`crate::simd::avx512`]) and the CPU also has AVX-512VL.
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    crate::simd::avx512() && cpu_has_avx512()
}

/// Whether this CPU has the AVX-512 subsets the AVX-512 paths use (F and VL).
#[cfg(target_arch = "x86_64")]
fn cpu_has_avx512() -> bool {
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
        use super::padded::{pad_image_avx512, pad_image_portable};
        if !cpu_has_avx512() {
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
