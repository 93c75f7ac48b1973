//! The GEMM wrapper, and how images are split across threads and grouped into GEMMs.

use crate::geometry::Geom;
use crate::im2col::{Scratch, im2col_at};
use crate::simd::simd;

/// Images whose column matrices one forward GEMM takes side by side: enough that its long side
/// (`images * oh*ow` columns) is about 256 positions, at most 16 (5 images of 7x7, one of 14x14
/// or more). One 7x7 image's 49 columns tile the AVX-512 microkernel poorly, and a few images
/// side by side tile it better (`gemm_shapes` measures both; BENCHMARKS.md has the numbers).
/// About 256 columns takes most of the gain: three times as many triples the column matrix (3 MB
/// a thread) for no further gain in `conv_kernels`. A pointwise convolution's image is its own
/// column matrix: one.
pub(crate) fn images_per_gemm(g: &Geom) -> usize {
    if g.is_pointwise() {
        1
    } else {
        (256 / g.out_plane().max(1)).clamp(1, 16)
    }
}

/// Columns of the column matrix of `count` images side by side: `count * oh*ow`, rounded up to
/// a multiple of 16 for several images. gemm copies ("packs") the column matrix of a forward
/// GEMM into its own layout unless the GEMM's long side is a whole number of 16-value vectors
/// and [`unpacked_channels`] holds (`do_prepack_lhs` and `do_pack_lhs` in gemm-common's
/// `gemm.rs`, which sees `Yᵀ = colᵀ · Wᵀ`); the padding columns cost a few percent more
/// arithmetic on results nobody reads, and save that copy (BENCHMARKS.md has the timings).
/// One image's GEMM writes straight into the output, whose rows are `oh*ow` apart: no padding.
pub(crate) fn block_width(g: &Geom, count: usize) -> usize {
    let cols = count * g.out_plane();
    if count > 1 {
        cols.next_multiple_of(16)
    } else {
        cols
    }
}

/// Output channels per gemm call in a forward GEMM over a padded block: gemm reads a column
/// matrix in place only when the call has at most 8 microkernel widths of them (its default
/// `lhs_packing_threshold_single_thread`, 8, times the width: 6 with AVX-512, 4 with AVX2).
pub(crate) fn unpacked_channels() -> usize {
    if crate::simd::avx512() { 48 } else { 32 }
}

/// Runs `f(first, count, col, ld)` for consecutive blocks of up to [`images_per_gemm`] images
/// of `run`, where `col [rows, count * oh*ow]` (rows `ld` apart) holds the column matrices of
/// images `first..first + count` of `input` (`[n, cin, ih, iw]`) side by side, and `ld` is
/// [`block_width`] (any columns past the images' hold stale values).
pub(crate) fn for_each_block(
    input: &[f32],
    g: &Geom,
    run: std::ops::Range<usize>,
    scratch: &mut Scratch,
    mut f: impl FnMut(usize, usize, &[f32], usize),
) {
    let per = images_per_gemm(g);
    let plane = g.out_plane();
    let image = |i: usize| &input[i * g.in_len()..(i + 1) * g.in_len()];
    let mut first = run.start;
    while first < run.end {
        let count = per.min(run.end - first);
        if g.is_pointwise() {
            f(first, 1, image(first), plane);
        } else {
            let ld = block_width(g, count);
            let Scratch { padded, col } = scratch;
            for b in 0..count {
                im2col_at(image(first + b), g, padded, &mut col[b * plane..], ld);
            }
            f(first, count, &col[..g.col_rows() * ld], ld);
        }
        first += count;
    }
}

/// `dst = (accumulate ? dst : 0) + lhs · rhs` for row-major matrices given by (row, col) strides.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: [isize; 2],
    rhs: &[f32],
    rhs_strides: [isize; 2],
) {
    assert!(dst.len() >= m * n, "matmul: destination too small");
    // SAFETY: `dst` is exclusively borrowed and holds `m * n` initialised values.
    unsafe {
        matmul_into(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            accumulate,
            lhs,
            lhs_strides,
            rhs,
            rhs_strides,
            gemm::Parallelism::None,
        )
    }
}

/// [`matmul`] into a raw destination of `m * n` values, on `parallelism`'s threads. With
/// `accumulate` false gemm never reads `dst`, so it may be uninitialised; every value is
/// written.
///
/// # Safety
///
/// `dst` must be valid for writes of `m * n` f32 values (and initialised when `accumulate`),
/// and no other reference may alias it during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul_into(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: [isize; 2],
    rhs: &[f32],
    rhs_strides: [isize; 2],
    parallelism: gemm::Parallelism,
) {
    // The last element each operand's strides reach must lie in its slice (O(1) checks that
    // keep the unsafe call below in bounds whatever a caller passes).
    let reach = |rows: usize, cols: usize, [rs, cs]: [isize; 2]| {
        (rows.max(1) - 1) * rs as usize + (cols.max(1) - 1) * cs as usize
    };
    assert!(
        m * k == 0 || reach(m, k, lhs_strides) < lhs.len(),
        "matmul: lhs too small"
    );
    assert!(
        k * n == 0 || reach(k, n, rhs_strides) < rhs.len(),
        "matmul: rhs too small"
    );
    // SAFETY: gemm reads lhs at (i, p) for i < m, p < k and rhs at (p, j) for j < n through the
    // given (non-negative) strides, and writes dst at (i, j) row-major: the asserts above keep
    // every read inside its slice, and the caller guarantees dst's m * n values.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_strides[1],
            lhs_strides[0],
            rhs.as_ptr(),
            rhs_strides[1],
            rhs_strides[0],
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Splits `n` images into one contiguous run per rayon thread.
pub(crate) fn image_runs(n: usize) -> Vec<std::ops::Range<usize>> {
    let parts = rayon::current_num_threads().clamp(1, n.max(1));
    (0..parts)
        .map(|p| (p * n / parts)..((p + 1) * n / parts))
        .filter(|r| !r.is_empty())
        .collect()
}

/// `buf` (`n` images of `per_image` values) cut into one mutable piece per `image_runs` run,
/// each with its image indices, so threads can write disjoint images.
pub(crate) fn split_by_runs<T>(
    buf: &mut [T],
    n: usize,
    per_image: usize,
) -> Vec<(&mut [T], std::ops::Range<usize>)> {
    let mut rest = buf;
    let mut out = Vec::new();
    for run in image_runs(n) {
        let (head, tail) = rest.split_at_mut(run.len() * per_image);
        out.push((head, run));
        rest = tail;
    }
    out
}

/// The elementwise sum of the per-thread accumulators (zeros of `len` when there are none).
pub(crate) fn sum_partials(partials: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    simd(
        #[inline(always)]
        || {
            let mut parts = partials.into_iter();
            let mut total = parts.next().unwrap_or_else(|| vec![0f32; len]);
            for p in parts {
                for (t, v) in total.iter_mut().zip(p) {
                    *t += v;
                }
            }
            total
        },
    )
}
