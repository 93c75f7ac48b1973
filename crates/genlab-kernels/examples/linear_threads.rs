//! The dense layers' threading rule (`runs_parallel` in `src/linear.rs`) against the clock: each
//! product `[m, k]·[k, n]` of the workloads' dense layers (forward and both gradients, batch 128
//! or 64), and a few square-ish ones around the threshold, timed on the caller's thread alone
//! and on all of rayon's threads, as the `gemm` crate runs them for `linear_forward` and
//! `linear_grads`. BENCHMARKS.md ("Threads for dense layers") has a run. A second table times
//! the input gradient `dx = dy · wᵀ` both ways `linear_input_grad` can compute it (`wᵀ` read
//! through strides, which gemm packs on the calling thread, or a transposed copy made on all
//! threads), against the rule `transposes_weights` (BENCHMARKS.md, issue 22).
//!
//! Run: `cargo run --release -p genlab-kernels --example linear_threads` (median of 300 calls).

#[path = "common/mm.rs"]
mod mm;

use mm::mm;
use std::time::Instant;

fn median_us(mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..300)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let shapes = [
        // W2's conv VAE heads (3136 -> 16) and decoder input (16 -> 3136), batch 128.
        (128, 16, 3136),
        (128, 3136, 16),
        (3136, 16, 128),
        (16, 3136, 128),
        // W1's MLP VAE (784 -> 400 -> 20), batch 128.
        (128, 400, 784),
        (784, 400, 128),
        (128, 20, 400),
        (400, 20, 128),
        // Few outputs, a long inner size: a 32- or 64-wide head on conv features.
        (128, 32, 3136),
        (128, 64, 2048),
        (128, 16, 6272),
        // W3's DCGAN generator input (100 -> 6272), batch 64.
        (64, 6272, 100),
        // Around the threshold.
        (128, 128, 128),
        (128, 128, 256),
        (256, 256, 64),
        (64, 64, 1024),
        (16, 3136, 64),
    ];
    println!(
        "| m | n | k | M multiply-adds | outputs | one thread µs | all threads µs | one / all | rule |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (m, n, k) in shapes {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0f32; m * n];
        let mut t = [0.0; 2];
        for (i, par) in [gemm::Parallelism::None, gemm::Parallelism::Rayon(0)]
            .into_iter()
            .enumerate()
        {
            t[i] = median_us(|| {
                mm(
                    m,
                    n,
                    k,
                    &mut c,
                    &a,
                    [k as isize, 1],
                    &b,
                    [n as isize, 1],
                    par,
                )
            });
        }
        let rule = if genlab_kernels::runs_parallel(m, n, k) {
            "all threads"
        } else {
            "one thread"
        };
        println!(
            "| {m} | {n} | {k} | {:.1} | {} | {:.1} | {:.1} | {:.2} | {rule} |",
            (m * n * k) as f64 / 1e6,
            m * n,
            t[0],
            t[1],
            t[0] / t[1]
        );
    }
    println!();
    println!("| n | in | out | strided wᵀ µs | transposed copy µs | strided / copy | rule |");
    println!("|---:|---:|---:|---:|---:|---:|---|");
    for (n, din, dout) in [
        (128, 400, 784),
        (128, 784, 400),
        (32, 400, 784),
        (128, 256, 256),
        (128, 128, 512),
        (128, 512, 128),
        (64, 1024, 256),
        (128, 3136, 16),
        (128, 16, 3136),
        (128, 400, 20),
        (128, 20, 400),
        (64, 6272, 100),
    ] {
        let dy: Vec<f32> = (0..n * dout).map(|i| (i % 7) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..din * dout).map(|i| (i % 5) as f32 * 0.1).collect();
        let t: [f64; 2] = std::array::from_fn(|i| {
            median_us(|| {
                std::hint::black_box(genlab_kernels::linear_input_grad(
                    &dy,
                    &w,
                    n,
                    din,
                    dout,
                    i == 1,
                ));
            })
        });
        let rule = if genlab_kernels::transposes_weights(din, dout) {
            "copy"
        } else {
            "strided"
        };
        println!(
            "| {n} | {din} | {dout} | {:.1} | {:.1} | {:.2} | {rule} |",
            t[0],
            t[1],
            t[0] / t[1]
        );
    }
}
