//! The convolution kernels alone, on the convolution layers of issue 5's W2 (conv VAE) and W3
//! (DCGAN): forward, weight gradient and input gradient of each layer at its training batch
//! size, and both gradients of the transposed convolution at once, in ms and GFLOP/s (2 · n ·
//! cout · cin·kh·kw · oh·ow per pass; two passes for the transposed gradients). A transposed
//! convolution's forward pass is its convolution's input gradient and its input gradient is the
//! convolution's forward pass, so the first three kernels cover both.
//!
//! Run: `cargo bench -p genlab-kernels --bench conv_kernels` (median of 15 timed runs after 3
//! warm-ups; prints a Markdown table).

use std::hint::black_box;
use std::time::Instant;

use genlab_kernels::{Geom, forward, input_grad, transposed_grads, weight_grad};

/// A k4 s2 p1 convolution `[n, cin, h, h] -> [n, cout, h/2, h/2]`.
fn k4s2(n: usize, cin: usize, cout: usize, h: usize) -> Geom {
    Geom {
        n,
        cin,
        ih: h,
        iw: h,
        cout,
        oh: h / 2,
        ow: h / 2,
        kh: 4,
        kw: 4,
        stride: [2, 2],
        pad: [1, 1],
        dilation: [1, 1],
    }
}

fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut runs = Vec::new();
    for i in 0..18 {
        let t = Instant::now();
        f();
        if i >= 3 {
            runs.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// Deterministic values in [-1, 1).
fn fill(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

fn main() {
    // Each geometry once: a transposed convolution is listed under the convolution whose
    // kernels it runs (W2's convT 64-32 and 32-1 are conv 32-64 and 1-32 the other way round,
    // W3's G convT 128-64 and 64-1 are D conv 64-128 and 1-64 at the same batch).
    let cases = [
        ("W2 conv 1-32 / convT 32-1, batch 128", k4s2(128, 1, 32, 28)),
        (
            "W2 conv 32-64 / convT 64-32, batch 128",
            k4s2(128, 32, 64, 14),
        ),
        ("W3 conv 1-64 / convT 64-1, batch 64", k4s2(64, 1, 64, 28)),
        (
            "W3 conv 64-128 / convT 128-64, batch 64",
            k4s2(64, 64, 128, 14),
        ),
    ];
    println!(
        "| layer | forward ms | GFLOP/s | weight grad ms | GFLOP/s | input grad ms | GFLOP/s | convT grads ms | GFLOP/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, g) in &cases {
        let x = fill(g.n * g.in_len(), 1);
        let w = fill(g.cout * g.col_rows(), 2);
        let b = fill(g.cout, 3);
        let dy = fill(g.n * g.cout * g.out_plane(), 4);
        let gflop = 2.0 * (g.n * g.cout * g.col_rows() * g.out_plane()) as f64 / 1e9;
        let f = median_ms(|| {
            black_box(forward(&x, &w, Some(&b), g));
        });
        let wg = median_ms(|| {
            black_box(weight_grad(&x, &dy, g));
        });
        let ig = median_ms(|| {
            black_box(input_grad(&w, &dy, g));
        });
        // Both gradients of the transposed convolution (`transposed_grads`: one column matrix
        // of dY per image for dX = W · col and dW += X · colᵀ), `x` in the role of its input.
        let t = median_ms(|| {
            black_box(transposed_grads(&x, &w, &dy, g));
        });
        let rate = |ms: f64| gflop / (ms / 1e3);
        println!(
            "| {name} | {f:.2} | {:.0} | {wg:.2} | {:.0} | {ig:.2} | {:.0} | {t:.2} | {:.0} |",
            rate(f),
            rate(wg),
            rate(ig),
            2.0 * rate(t)
        );
    }
}
