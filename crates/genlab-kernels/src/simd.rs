//! Run-time SIMD dispatch for the kernels' own loops, a vectorisable sum and an 8x8 transpose.

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
