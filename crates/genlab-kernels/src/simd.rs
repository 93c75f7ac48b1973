//! Run-time SIMD dispatch for the kernels' own loops, a vectorisable sum, and an 8x8 transpose
//! with the matrix transpose built of it.

use std::mem::MaybeUninit;

/// Runs `f` compiled for the widest vector instructions this CPU has: AVX-512 or AVX2+FMA,
/// detected at run time by `pulp` (the SIMD dispatch gemm itself uses), else baseline x86-64.
/// Without it this crate's own loops are SSE2 only, 4 floats wide (the default target for a
/// portable binary). Every kernel loop runs inside it, on the thread that runs the loop: a rayon
/// closure is a function of its own, so each worker's closure body is wrapped, and the helpers
/// they call are wrapped (or inlined) too. `f` is inlined into pulp's `#[target_feature]`
/// functions, so its loops are vectorised for that instruction set.
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// Whether this build runs AVX-512 kernels on this CPU: the `avx512` feature (which also gives
/// gemm its AVX-512 kernels) and a CPU with AVX-512F. Every AVX-512 choice asks this.
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    if cfg!(feature = "avx512") {
        return std::arch::is_x86_feature_detected!("avx512f");
    }
    false
}

/// The widest vector instructions the kernels (theirs and gemm's) run on this CPU in this
/// build: `"avx512"` (the `avx512` feature and a CPU with AVX-512F), `"avx2+fma"`, or
/// `"baseline"`. A speed figure carries it beside the CPU's own flags, since a build without the
/// feature runs AVX2 on an AVX-512 machine.
pub fn widest() -> &'static str {
    if avx512() {
        return "avx512";
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "avx2+fma";
        }
    }
    "baseline"
}

/// `Σ f(k)` over `range`, kept in eight independent f32 lanes (then added up) so the compiler
/// can vectorise the reduction, which it may not reorder in a single running sum.
#[inline(always)]
pub(crate) fn lane_sum(range: std::ops::Range<usize>, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let mut k = range.start;
    while k + 8 <= range.end {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(k + l);
        }
        k += 8;
    }
    let tail: f32 = (k..range.end).map(&f).sum();
    acc.iter().sum::<f32>() + tail
}

/// The transpose of an 8x8 block, `out[j][i] = r[i][j]`: the classic AVX sequence of 24
/// shuffles where the CPU has AVX (written with intrinsics: the compiler turns the same steps on
/// arrays into one insert per value), else [`transpose8_portable`].
#[inline(always)]
pub(crate) fn transpose8(r: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, checked just above.
        return unsafe { transpose8_avx(r) };
    }
    transpose8_portable(r)
}

/// Rows `cols` of the transpose of `src [a, b]` (row-major), that is `src`'s columns `cols`:
/// `dst[(j - cols.start) * a + i] = src[i * b + j]`, in 8x8 blocks ([`transpose8`]) with the
/// edges value by value; every value of `dst[..cols.len() * a]` is written. Value by value,
/// each write lands `a` values past the last, which costs 12x where `a` is a few hundred
/// (BENCHMARKS.md, issue 22). A range of rows so that threads can each take one. Call it
/// inside [`simd`].
#[inline(always)]
pub(crate) fn transpose_rows(
    src: &[f32],
    a: usize,
    b: usize,
    cols: std::ops::Range<usize>,
    dst: &mut [MaybeUninit<f32>],
) {
    assert!(
        src.len() >= a * b && cols.end <= b && dst.len() >= cols.len() * a,
        "transpose: short slice"
    );
    let (j0, a8) = (cols.start, a / 8 * 8);
    let b8 = j0 + (cols.end - j0) / 8 * 8;
    // Eight rows of `dst` at a time, written front to back, so each of their cache lines is
    // filled whole while the eight columns of `src` they read stay in L1.
    for jb in (j0..b8).step_by(8) {
        for i0 in (0..a8).step_by(8) {
            let rows: [[f32; 8]; 8] = std::array::from_fn(|r| {
                let at = (i0 + r) * b + jb;
                std::array::from_fn(|c| src[at + c])
            });
            for (c, col) in transpose8(&rows).iter().enumerate() {
                let at = (jb - j0 + c) * a + i0;
                for (d, &v) in dst[at..at + 8].iter_mut().zip(col) {
                    *d = MaybeUninit::new(v);
                }
            }
        }
    }
    for i in 0..a {
        let first = if i < a8 { b8 } else { j0 };
        for j in first..cols.end {
            dst[(j - j0) * a + i] = MaybeUninit::new(src[i * b + j]);
        }
    }
}

/// [`transpose8`] on plain arrays.
fn transpose8_portable(r: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
    std::array::from_fn(|j| std::array::from_fn(|i| r[i][j]))
}

/// [`transpose8`] with AVX: unpack pairs of rows, shuffle pairs of those, then swap 128-bit
/// lanes.
///
/// # Safety
///
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose8_avx(r: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
    use std::arch::x86_64::*;
    // SAFETY: each row is 8 f32 values, read and written unaligned.
    unsafe {
        let v: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(r[i].as_ptr()));
        let t = [
            _mm256_unpacklo_ps(v[0], v[1]),
            _mm256_unpackhi_ps(v[0], v[1]),
            _mm256_unpacklo_ps(v[2], v[3]),
            _mm256_unpackhi_ps(v[2], v[3]),
            _mm256_unpacklo_ps(v[4], v[5]),
            _mm256_unpackhi_ps(v[4], v[5]),
            _mm256_unpacklo_ps(v[6], v[7]),
            _mm256_unpackhi_ps(v[6], v[7]),
        ];
        let s = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        let o = [
            _mm256_permute2f128_ps::<0x20>(s[0], s[4]),
            _mm256_permute2f128_ps::<0x20>(s[1], s[5]),
            _mm256_permute2f128_ps::<0x20>(s[2], s[6]),
            _mm256_permute2f128_ps::<0x20>(s[3], s[7]),
            _mm256_permute2f128_ps::<0x31>(s[0], s[4]),
            _mm256_permute2f128_ps::<0x31>(s[1], s[5]),
            _mm256_permute2f128_ps::<0x31>(s[2], s[6]),
            _mm256_permute2f128_ps::<0x31>(s[3], s[7]),
        ];
        let mut out = [[0f32; 8]; 8];
        for (row, v) in out.iter_mut().zip(o) {
            _mm256_storeu_ps(row.as_mut_ptr(), v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every range of rows of the transpose, against the definition, on shapes with and
    /// without whole 8x8 blocks.
    #[test]
    fn transpose_rows_is_the_transpose() {
        for (a, b) in [(1, 1), (3, 5), (8, 8), (17, 40), (24, 9), (400, 21)] {
            let src: Vec<f32> = (0..a * b).map(|v| v as f32).collect();
            for cols in [0..b, 0..b / 2, b / 3..b, 1.min(b)..b] {
                let mut dst = vec![MaybeUninit::new(f32::NAN); cols.len() * a];
                transpose_rows(&src, a, b, cols.clone(), &mut dst);
                // SAFETY: initialised above (NaN where a value was not written).
                let dst: Vec<f32> = dst.iter().map(|v| unsafe { v.assume_init() }).collect();
                for j in cols.clone() {
                    for i in 0..a {
                        assert_eq!(
                            dst[(j - cols.start) * a + i],
                            src[i * b + j],
                            "{a}x{b} {cols:?}"
                        );
                    }
                }
            }
        }
    }

    /// Both transposes against the definition.
    #[test]
    fn transpose8_transposes() {
        let r: [[f32; 8]; 8] = std::array::from_fn(|i| std::array::from_fn(|j| (i * 8 + j) as f32));
        for t in [transpose8(&r), transpose8_portable(&r)] {
            for (i, row) in r.iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    assert_eq!(t[j][i], v, "({i}, {j})");
                }
            }
        }
    }
}
