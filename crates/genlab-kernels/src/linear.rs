//! Dense layers, `y = x·W + b` with `W` laid out `[in, out]` as burn's `Linear` keeps it: the
//! forward pass and the gradients as one GEMM each over the whole batch, written straight into
//! uninitialised outputs.
//!
//! Why not burn-flex's matmul: it allocates every product as a zeroed `Vec<u8>`, which the
//! `Bytes` it becomes then copies into an aligned buffer, before gemm overwrites it (a memset
//! and a memcpy of every activation and gradient of every dense layer; BENCHMARKS.md, issue 22),
//! and the bias is a further pass into a new buffer. Here the bias rows are written first and
//! gemm accumulates onto them.

use std::mem::MaybeUninit;

use crate::gemm::matmul_into;
use rayon::prelude::*;

use crate::output::output;
use crate::simd::{simd, transpose_rows};

/// Products of at least this many multiply-adds run on all of rayon's threads, smaller ones on
/// the caller's: burn-flex's threshold (192³), so the threading is the one training had. A rule
/// by shape (outputs and multiply-adds) was tried and not kept: the timings of
/// `examples/linear_threads.rs` disagree from run to run (BENCHMARKS.md, "Threads for dense
/// layers").
const PARALLEL_OPS: usize = 192 * 192 * 192;

/// Multiply-adds from which [`linear_grads`] runs a layer's two small weight products side by
/// side. W2's 3136 -> 16 heads (6.4 M, ~100 µs a product) gained: their serial share of the
/// stepping thread went from 7.7% to 0 and W2 ran 1-2% faster; W1's 400 -> 20 layers (1.0 M,
/// ~15 µs a product) did not gain over 12 rounds, the wake-up costing about what it saves
/// (BENCHMARKS.md, issue 22).
const SIDE_BY_SIDE_OPS: usize = 1 << 21;

/// Whether the dense layers run the product `[m, k]·[k, n]` on all of rayon's threads.
pub fn runs_parallel(m: usize, n: usize, k: usize) -> bool {
    m.saturating_mul(n).saturating_mul(k) >= PARALLEL_OPS
}

fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if runs_parallel(m, n, k) {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// `y [n, out] = x [n, in] · w [in, out] (+ bias [out] on every row)`.
///
/// # Panics
/// When a slice is shorter than its shape says.
pub fn linear_forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    din: usize,
    dout: usize,
) -> Vec<f32> {
    assert!(
        x.len() >= n * din && w.len() >= din * dout,
        "linear: short input"
    );
    if let Some(b) = bias {
        assert!(b.len() >= dout, "linear: short bias");
    }
    // SAFETY: every value is written: the bias rows, onto which the GEMM accumulates, or, with
    // no bias, the GEMM itself (accumulate = false never reads the destination).
    unsafe {
        output(n * dout, |y| {
            if let Some(b) = bias {
                for row in y.chunks_mut(dout.max(1)) {
                    for (v, &bj) in row.iter_mut().zip(b) {
                        *v = MaybeUninit::new(bj);
                    }
                }
            }
            gemm_into(
                y,
                n,
                dout,
                din,
                bias.is_some(),
                x,
                [din as isize, 1],
                w,
                [dout as isize, 1],
            );
        })
    }
}

/// The gradients of [`linear_forward`] from `dy [n, out]`: `dx [n, in] = dy · wᵀ` when
/// `want_x`, `dw [in, out] = xᵀ · dy` when `want_w`, and `db [out]`, the column sums of `dy`,
/// when `want_b`.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn linear_grads(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    n: usize,
    din: usize,
    dout: usize,
    [want_x, want_w, want_b]: [bool; 3],
) -> (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>) {
    assert!(
        x.len() >= n * din && w.len() >= din * dout && dy.len() >= n * dout,
        "linear: short input"
    );
    let dx = || want_x.then(|| input_grad(dy, w, n, din, dout, transposes_weights(din, dout)));
    // xᵀ [in, n]: element (i, p) is x[p, i].
    let dw = || want_w.then(|| product(din, dout, n, x, [1, din as isize], dy, [dout as isize, 1]));
    // Two products each too small for all threads (`runs_parallel`) but big enough to pay for
    // waking another (`SIDE_BY_SIDE_OPS`) run side by side, one on each of two threads, rather
    // than one after the other while the other threads wait. Each is the same single-threaded
    // GEMM either way, so the same bits.
    let ops = n * din * dout;
    let small = !runs_parallel(n, din, dout) && !runs_parallel(din, dout, n);
    let (dx, dw) = if want_x && want_w && small && ops >= SIDE_BY_SIDE_OPS {
        rayon::join(dx, dw)
    } else {
        (dx(), dw())
    };
    let db = want_b.then(|| {
        let mut db = vec![0f32; dout];
        for row in dy[..n * dout].chunks(dout.max(1)) {
            for (s, &v) in db.iter_mut().zip(row) {
                *s += v;
            }
        }
        db
    });
    (dx, dw, db)
}

/// Whether [`linear_grads`] computes `dx = dy · wᵀ` from a transposed copy of `w` instead of
/// reading `w` through transposed strides. gemm reads a strided `wᵀ` by packing all of it
/// first, on the calling thread alone before its threads start, reading values `dout` apart: for
/// W1's 400 -> 784 layer that was 4.9% of the stepping thread's samples on Zen 4. A copy made on
/// all threads in 8x8 blocks costs less where `w` is wide (`dout` >= 256) and not thin (`din` >=
/// 128); below that gemm's packing is quick and the copy does not pay (W2's 3136 -> 16 heads
/// take 145 µs strided, 180-210 with the copy). `examples/linear_threads.rs` times both ways;
/// BENCHMARKS.md (issue 22, sixth session) has a run.
pub fn transposes_weights(din: usize, dout: usize) -> bool {
    din >= 128 && dout >= 256
}

/// `dx [n, in] = dy [n, out] · wᵀ`, from `w [in, out]` read through transposed strides or from
/// a transposed copy `wᵀ [out, in]` (on the shapes measured, W1's among them, the same bits:
/// gemm packs the strided `wᵀ` into the layout the copy already has; on small shapes it may take
/// another path and sum in another order). Public so that `examples/linear_threads.rs` can time both ways; [`linear_grads`]
/// chooses by [`transposes_weights`].
pub fn input_grad(
    dy: &[f32],
    w: &[f32],
    n: usize,
    din: usize,
    dout: usize,
    transpose: bool,
) -> Vec<f32> {
    let copy = transpose.then(|| transposed(w, din, dout));
    // wᵀ [out, in]: the copy's element (p, j), or w[j, p] read through swapped strides.
    let (wt, strides) = match &copy {
        Some(wt) => (&wt[..], [din as isize, 1]),
        None => (w, [1, dout as isize]),
    };
    product(n, din, dout, dy, [dout as isize, 1], wt, strides)
}

/// `w [a, b]` transposed to `[b, a]`, each of rayon's threads writing a run of rows.
fn transposed(w: &[f32], a: usize, b: usize) -> Vec<f32> {
    // Rows per thread, whole 8x8 blocks but the last thread's.
    let per = b
        .div_ceil(rayon::current_num_threads().max(1))
        .next_multiple_of(8)
        .max(8);
    // SAFETY: each worker writes all of its run of rows (`transpose_rows` writes every value of
    // the rows it is given), and the runs cover the output.
    unsafe {
        output(a * b, |out| {
            out.par_chunks_mut(per * a.max(1))
                .enumerate()
                .for_each(|(t, rows)| {
                    simd(
                        #[inline(always)]
                        || {
                            let first = t * per;
                            transpose_rows(w, a, b, first..first + rows.len() / a, rows);
                        },
                    )
                })
        })
    }
}

/// `lhs [m, k] · rhs [k, n]` into a new `[m, n]` (each operand given by its (row, column)
/// strides).
fn product(
    m: usize,
    n: usize,
    k: usize,
    lhs: &[f32],
    lhs_strides: [isize; 2],
    rhs: &[f32],
    rhs_strides: [isize; 2],
) -> Vec<f32> {
    // SAFETY: the GEMM writes all of the output (accumulate = false).
    unsafe {
        output(m * n, |dst| {
            gemm_into(dst, m, n, k, false, lhs, lhs_strides, rhs, rhs_strides)
        })
    }
}

/// One GEMM of `m x k` by `k x n` into `dst` (`m * n` values), accumulating onto it or not.
#[allow(clippy::too_many_arguments)]
fn gemm_into(
    dst: &mut [MaybeUninit<f32>],
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: [isize; 2],
    rhs: &[f32],
    rhs_strides: [isize; 2],
) {
    assert!(dst.len() >= m * n, "linear: destination too small");
    if m * n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: the product is zero (gemm is not asked about it).
        if !accumulate {
            dst[..m * n].fill(MaybeUninit::new(0.0));
        }
        return;
    }
    // SAFETY: `dst` is exclusively borrowed and holds m * n values; when accumulating, the
    // caller has initialised them (the bias rows).
    unsafe {
        matmul_into(
            m,
            n,
            k,
            dst.as_mut_ptr().cast(),
            accumulate,
            lhs,
            lhs_strides,
            rhs,
            rhs_strides,
            parallelism(m, n, k),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition in f64: `y[i][j] = b[j] + sum_p x[i][p] w[p][j]` and its gradients.
    fn reference(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        dy: &[f32],
        n: usize,
        din: usize,
        dout: usize,
    ) -> [Vec<f32>; 4] {
        let mut y = vec![0f32; n * dout];
        let mut dx = vec![0f32; n * din];
        let mut dw = vec![0f32; din * dout];
        let mut db = vec![0f32; dout];
        for i in 0..n {
            for j in 0..dout {
                let mut s = b[j] as f64;
                for p in 0..din {
                    s += x[i * din + p] as f64 * w[p * dout + j] as f64;
                }
                y[i * dout + j] = s as f32;
            }
            for p in 0..din {
                let s: f64 = (0..dout)
                    .map(|j| dy[i * dout + j] as f64 * w[p * dout + j] as f64)
                    .sum();
                dx[i * din + p] = s as f32;
            }
        }
        for p in 0..din {
            for j in 0..dout {
                let s: f64 = (0..n)
                    .map(|i| x[i * din + p] as f64 * dy[i * dout + j] as f64)
                    .sum();
                dw[p * dout + j] = s as f32;
            }
        }
        for j in 0..dout {
            db[j] = (0..n).map(|i| dy[i * dout + j] as f64).sum::<f64>() as f32;
        }
        [y, dx, dw, db]
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0)
            .collect()
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// Forward and all three gradients equal the f64 definition, with and without a bias,
    /// for shapes on both sides of the threading threshold and with an empty inner size.
    #[test]
    fn forward_and_gradients_match_the_definition() {
        for (n, din, dout) in [
            (1, 1, 1),
            (3, 5, 2),
            (17, 33, 9),
            (256, 200, 200),
            (128, 3136, 16),
            (4, 0, 3),
        ] {
            let (x, w, b, dy) = (
                values(n * din, 1),
                values(din * dout, 2),
                values(dout, 3),
                values(n * dout, 4),
            );
            let [y, dx, dw, db] = reference(&x, &w, &b, &dy, n, din, dout);
            close(&linear_forward(&x, &w, Some(&b), n, din, dout), &y, "y");
            let zero = vec![0f32; dout];
            let [y0, ..] = reference(&x, &w, &zero, &dy, n, din, dout);
            close(
                &linear_forward(&x, &w, None, n, din, dout),
                &y0,
                "y without bias",
            );
            let (gx, gw, gb) = linear_grads(&x, &w, &dy, n, din, dout, [true, true, true]);
            close(&gx.expect("dx"), &dx, "dx");
            close(&gw.expect("dw"), &dw, "dw");
            close(&gb.expect("db"), &db, "db");
            let (gx, gw, gb) = linear_grads(&x, &w, &dy, n, din, dout, [false, true, false]);
            assert!(gx.is_none() && gb.is_none());
            close(&gw.expect("dw"), &dw, "dw alone");
        }
    }

    /// The two gradients of a small layer, run side by side on two threads, are the bits of
    /// the same products on one thread: W2's 3136 -> 16 head, and W1's 400 -> 20 one (which
    /// runs them one after the other).
    #[test]
    fn gradients_side_by_side_are_the_one_thread_bits() {
        let pool = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool")
        };
        let (one, two) = (pool(1), pool(2));
        for (n, din, dout) in [(128, 3136, 16), (128, 400, 20)] {
            assert!(!runs_parallel(n, din, dout) && !runs_parallel(din, dout, n));
            let (x, w, dy) = (
                values(n * din, 5),
                values(din * dout, 6),
                values(n * dout, 7),
            );
            let run = || linear_grads(&x, &w, &dy, n, din, dout, [true, true, true]);
            assert_eq!(one.install(run), two.install(run), "{n} x {din} x {dout}");
        }
    }

    /// On the shapes that take the transposed copy of the weights (W1's 400 -> 784 layer, and
    /// ragged sides), the input gradient is the strided one's bits, and `linear_grads` takes
    /// it. (On small shapes gemm may sum in another order, so this is not true of every shape.)
    #[test]
    fn input_gradient_from_transposed_weights_is_the_same() {
        for (n, din, dout) in [(128, 400, 784), (5, 131, 263)] {
            assert!(transposes_weights(din, dout));
            let (w, dy) = (values(din * dout, 8), values(n * dout, 9));
            let strided = input_grad(&dy, &w, n, din, dout, false);
            let copied = input_grad(&dy, &w, n, din, dout, true);
            assert_eq!(copied, strided, "{n} x {din} x {dout}");
            let x = values(n * din, 10);
            let (dx, _, _) = linear_grads(&x, &w, &dy, n, din, dout, [true, false, false]);
            assert_eq!(dx.expect("dx"), copied);
        }
        assert!(!transposes_weights(3136, 16) && !transposes_weights(400, 20));
    }
}
