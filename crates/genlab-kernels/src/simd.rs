//! Run-time SIMD dispatch for the kernels' own loops, and a vectorisable sum.

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
