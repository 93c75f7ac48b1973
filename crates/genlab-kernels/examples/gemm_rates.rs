//! genlab's GEMM (the `gemm` crate, called as the kernels call it) on the shapes listed in a
//! file, on one thread and on two, for `bench/gemm_vs_mkl.sh`, which runs PyTorch's (MKL's) on
//! the same shapes (`bench/reference/gemm_rates.py`) and prints the ratio. Issue 22 asks how far
//! genlab's kernels are from MKL's where they cannot match it; this is that measurement.
//!
//! Run: `cargo run --release -p genlab-kernels --example gemm_rates -- bench/gemm_shapes.txt`.
//! Prints one tab-separated line per shape and thread count: name, threads, median GFLOP/s
//! over 15 windows of at least 20 ms each (the first 3 not counted).

#[path = "common/mm.rs"]
mod mm;

use mm::mm;
use std::hint::black_box;
use std::time::Instant;

struct Shape {
    name: String,
    m: usize,
    n: usize,
    k: usize,
    /// A stored as [k, m] (read transposed).
    a_t: bool,
    /// B stored as [n, k] (read transposed).
    b_t: bool,
}

fn parse(text: &str) -> Result<Vec<Shape>, String> {
    let mut shapes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || {
            format!(
                "line {}: expected `name m n k nn|nt|tn|tt`, got `{line}`",
                i + 1
            )
        };
        if f.len() != 5 || f[4].len() != 2 || !f[4].chars().all(|c| c == 'n' || c == 't') {
            return Err(bad());
        }
        let num = |s: &str| s.parse::<usize>().ok().filter(|&v| v > 0).ok_or_else(bad);
        shapes.push(Shape {
            name: f[0].to_string(),
            m: num(f[1])?,
            n: num(f[2])?,
            k: num(f[3])?,
            a_t: f[4].starts_with('t'),
            b_t: f[4].ends_with('t'),
        });
    }
    Ok(shapes)
}

impl Shape {
    /// (row stride, column stride) of A [m, k] and B [k, n] as stored.
    fn strides(&self) -> ([isize; 2], [isize; 2]) {
        let (m, n, k) = (self.m as isize, self.n as isize, self.k as isize);
        (
            if self.a_t { [1, m] } else { [k, 1] },
            if self.b_t { [1, k] } else { [n, 1] },
        )
    }
}

fn median_gflops(flop: f64, mut f: impl FnMut()) -> f64 {
    let mut rates = Vec::new();
    for w in 0..18 {
        let (t, mut calls) = (Instant::now(), 0u32);
        while calls == 0 || t.elapsed().as_secs_f64() < 0.02 {
            f();
            calls += 1;
        }
        if w >= 3 {
            rates.push(flop * f64::from(calls) / t.elapsed().as_secs_f64() / 1e9);
        }
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or("bench/gemm_shapes.txt".into());
    let shapes = match std::fs::read_to_string(&path)
        .map_err(|e| format!("{path}: {e}"))
        .and_then(|t| parse(&t).map_err(|e| format!("{path}: {e}")))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gemm_rates: {e}");
            std::process::exit(2);
        }
    };
    let two = match rayon::ThreadPoolBuilder::new().num_threads(2).build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gemm_rates: no thread pool: {e}");
            std::process::exit(1);
        }
    };
    for s in &shapes {
        // Values in [-1, 1): no zeros or subnormals for either library to take a shortcut on.
        let fill = |len: usize, seed: usize| -> Vec<f32> {
            (0..len)
                .map(|i| ((i * 7919 + seed * 104729) % 2003) as f32 / 1001.5 - 1.0)
                .collect()
        };
        let (a, b) = (fill(s.m * s.k, 1), fill(s.k * s.n, 2));
        let mut dst = vec![0f32; s.m * s.n];
        let flop = 2.0 * (s.m * s.n * s.k) as f64;
        let (sa, sb) = s.strides();
        let (m, n, k) = (s.m, s.n, s.k);
        let one = median_gflops(flop, || {
            mm(m, n, k, &mut dst, &a, sa, &b, sb, gemm::Parallelism::None);
            black_box(&dst);
        });
        let both = two.install(|| {
            median_gflops(flop, || {
                mm(
                    m,
                    n,
                    k,
                    &mut dst,
                    &a,
                    sa,
                    &b,
                    sb,
                    gemm::Parallelism::Rayon(2),
                );
                black_box(&dst);
            })
        });
        println!("{}\t1\t{one:.2}", s.name);
        println!("{}\t2\t{both:.2}", s.name);
    }
}
