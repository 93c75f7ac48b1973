//! Adam's kernel on first moments stuck in the subnormal range, as long trainings leave them
//! (issue 22). A parameter whose gradient stays exactly 0 (a first-layer weight of a pixel that
//! is never lit) has a first moment that decays by `beta_1` per step: below 1.2e-38 it turns
//! subnormal, and at `k * 2^-149` with `k < 5`, `0.9 * m` rounds back to `m`, so without a flush
//! it stays there for good. After 200 epochs of README's VAE 13.8% of the first moments were
//! stuck so. `pointwise::adam_update` stores such moments as 0; this times steps of
//! `adam_update_in_place` on W1's 652,824 parameters whose every 7th gradient is 0, from a
//! state where those first moments are 0 (`normal`) and one where they are stuck (`stuck`),
//! median over steps 2-2000.
//! Built at a commit before the flush, `stuck` is the slower one (BENCHMARKS.md, issue 22).
//!
//! Run: `cargo run --release -p genlab-kernels --example adam_subnormal`.

use genlab_kernels::pointwise::{AdamScalars, adam_update_in_place};
use std::time::Instant;

fn median_us(stuck: bool) -> f64 {
    let n = 652_824;
    let mut p: Vec<f32> = (0..n)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let mut m: Vec<f32> = (0..n).map(|i| ((i * 11) % 13) as f32 * 1e-3).collect();
    let mut v: Vec<f32> = (0..n).map(|i| ((i * 7) % 17 + 1) as f32 * 1e-6).collect();
    let mut g: Vec<f32> = (0..n)
        .map(|i| ((i * 13) % 29) as f32 * 1e-3 - 0.0145)
        .collect(); // never 0
    for i in (0..n).step_by(7) {
        g[i] = 0.0;
        // Stuck at k * 2^-149, k in 1..=4, or at 0, where a flushed moment stays.
        m[i] = if stuck {
            f32::from_bits(1 + (i % 4) as u32)
        } else {
            0.0
        };
    }
    let mut times: Vec<f64> = (1..=2000)
        .map(|t| {
            let s = AdamScalars {
                lr: 1e-7,
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-8,
                time: t,
            };
            let start = Instant::now();
            adam_update_in_place(&mut p, &g, &mut m, &mut v, s);
            start.elapsed().as_secs_f64() * 1e6
        })
        .skip(1)
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    for round in 1..=3 {
        let (normal, stuck) = (median_us(false), median_us(true));
        println!(
            "round {round}: normal {normal:.0} µs, stuck {stuck:.0} µs, stuck / normal {:.2}",
            stuck / normal
        );
    }
}
