//! The one gemm call the GEMM examples (`gemm_shapes.rs`, `gemm_rates.rs`, `linear_threads.rs`)
//! time: a strided product written over its destination, as `genlab_kernels`' `matmul_into`
//! makes it.

/// `dst [m, n]` (row-major) = `lhs [m, k] · rhs [k, n]`, the operands given by (row, column)
/// strides, on the threads `par` says.
#[allow(clippy::too_many_arguments)]
pub fn mm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: &[f32],
    ls: [isize; 2],
    rhs: &[f32],
    rs: [isize; 2],
    par: gemm::Parallelism,
) {
    let reach =
        |r: usize, c: usize, [a, b]: [isize; 2]| (r - 1) * a as usize + (c - 1) * b as usize;
    assert!(dst.len() >= m * n && reach(m, k, ls) < lhs.len() && reach(k, n, rs) < rhs.len());
    // SAFETY: the assert keeps every element gemm reads or writes inside its slice.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            ls[1],
            ls[0],
            rhs.as_ptr(),
            rs[1],
            rs[0],
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}
