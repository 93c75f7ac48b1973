//! Single-thread GEMM rates (the `gemm` crate, as the kernels call it) of the operand layouts
//! the convolution kernels choose between, on the per-image GEMMs of W2's conv 32-64 and W3's
//! conv 64-128 (k4 s2, 7x7 output: `plane` = 49, `rows` = cin·16). It is the measurement behind
//! the layouts in `lib.rs`: forward `W · col` with a row-major column matrix; input gradient as
//! `colᵀ = dYᵀ · W'` (position-major, so the GEMM's long side is `rows`); weight gradient
//! reading a contiguous position-major `colᵀ`; and the same GEMMs over 2-16 images at once
//! (the forward and input-gradient blocks of `images_per_gemm`; the weight gradient gains
//! nothing from it); and the transposed convolution's weight gradient from a row-major column
//! matrix, as `dW += X · colᵀ` or as `dWᵀ += col · Xᵀ`. BENCHMARKS.md has a run.
//!
//! Run: `cargo run --release -p genlab-kernels --example gemm_shapes` (median of 20 windows of
//! 64 GEMMs each).

#[path = "common/mm.rs"]
mod mm;

use mm::mm;

/// Every GEMM here runs on the calling thread.
const ONE: gemm::Parallelism = gemm::Parallelism::None;
use std::hint::black_box;
use std::time::Instant;

fn time(name: &str, flop: f64, mut f: impl FnMut()) {
    let mut v = Vec::new();
    for i in 0..25 {
        let t = Instant::now();
        for _ in 0..64 {
            f();
        }
        if i >= 5 {
            v.push(t.elapsed().as_secs_f64() / 64.0);
        }
    }
    v.sort_by(f64::total_cmp);
    let t = v[v.len() / 2];
    println!("| {name} | {:.1} | {:.0} |", t * 1e6, flop / t / 1e9);
}

fn main() {
    println!("| GEMM (one call: one image, or the images named) | µs | GFLOP/s |");
    println!("|---|---:|---:|");
    for (cin, cout) in [(32usize, 64usize), (64, 128)] {
        let (rows, plane) = (cin * 16, 49);
        let w = vec![0.5f32; cout * rows];
        let col = vec![0.25f32; rows * plane];
        let dy = vec![0.1f32; cout * plane];
        let mut out = vec![0f32; rows * cout];
        let flop = 2.0 * (cout * rows * plane) as f64;
        let l = |s: &str| format!("conv {cin}-{cout}: {s}");
        let (r, p) = (rows as isize, plane as isize);
        time(&l("forward Y = W · col (used)"), flop, || {
            mm(cout, plane, rows, &mut out, &w, [r, 1], &col, [p, 1], ONE);
            black_box(&out);
        });
        time(
            &l("forward Y = W · colᵀᵀ (col stored position-major)"),
            flop,
            || {
                mm(cout, plane, rows, &mut out, &w, [r, 1], &col, [1, r], ONE);
                black_box(&out);
            },
        );
        for b in [2usize, 4, 8, 16] {
            let colb = vec![0.25f32; rows * plane * b];
            let mut outb = vec![0f32; cout * plane * b];
            let pb = (plane * b) as isize;
            time(
                &l(&format!("forward, {b} images side by side: Y = W · col")),
                flop * b as f64,
                || {
                    mm(
                        cout,
                        plane * b,
                        rows,
                        &mut outb,
                        &w,
                        [r, 1],
                        &colb,
                        [pb, 1],
                        ONE,
                    );
                    black_box(&outb);
                },
            );
            let dyb = vec![0.1f32; cout * plane * b];
            let mut colbt = vec![0f32; rows * plane * b];
            time(
                &l(&format!("input grad, {b} images: colᵀ = dYᵀ · W'")),
                flop * b as f64,
                || {
                    mm(
                        plane * b,
                        rows,
                        cout,
                        &mut colbt,
                        &dyb,
                        [1, pb],
                        &w,
                        [r, 1],
                        ONE,
                    );
                    black_box(&colbt);
                },
            );
            time(
                &l(&format!("weight grad, {b} images: dW' = dY · colᵀ")),
                flop * b as f64,
                || {
                    mm(
                        cout,
                        rows,
                        plane * b,
                        &mut out,
                        &dyb,
                        [pb, 1],
                        &colb,
                        [r, 1],
                        ONE,
                    );
                    black_box(&out);
                },
            );
            time(
                &l(&format!(
                    "forward, {b} images: Y = W · colᵀᵀ (position-major)"
                )),
                flop * b as f64,
                || {
                    mm(
                        cout,
                        plane * b,
                        rows,
                        &mut outb,
                        &w,
                        [r, 1],
                        &colb,
                        [1, r],
                        ONE,
                    );
                    black_box(&outb);
                },
            );
        }
        // Five 7x7 images padded to 256 columns (`block_width`), as one call and as calls of at
        // most 48 output channels (`unpacked_channels`), where gemm reads the columns in place.
        let (colp, mut outp) = (vec![0.25f32; rows * 256], vec![0f32; cout * 256]);
        for chunk in [cout, 48] {
            time(
                &l(&format!(
                    "forward, 5 images padded to 256 columns, {chunk} channels per call"
                )),
                flop * 5.0,
                || {
                    for (dst, w) in outp.chunks_mut(chunk * 256).zip(w.chunks(chunk * rows)) {
                        mm(
                            dst.len() / 256,
                            256,
                            rows,
                            dst,
                            w,
                            [r, 1],
                            &colp,
                            [256, 1],
                            ONE,
                        );
                    }
                    black_box(&outp);
                },
            );
        }
        // The transposed convolution's weight gradient (`transposed_grads`), image by image
        // out of a block of five 7x7 images padded to 256 columns, in both orientations, and
        // over the whole block at once (X's images side by side): the orientation matters, the
        // block does not.
        let xb = vec![0.1f32; cout * 256];
        for (name, images, k) in [
            ("5 images one by one", 5, plane),
            ("5 images as one block", 1, 256),
        ] {
            for (form, transposed) in [("dW += X · colᵀ", false), ("dWᵀ += col · Xᵀ", true)]
            {
                // `transposed_weight_grad`: image by image, the transposed form for at most 64
                // channels, the other for more.
                let used = images > 1 && transposed == (cout <= 64);
                let used = if used { " (used)" } else { "" };
                let name = format!("transposed weight grad, {name}: {form}{used}");
                time(&l(&name), flop * 5.0, || {
                    for b in 0..images {
                        let (x, c) = (&xb[b * plane..], &colp[b * plane..]);
                        if transposed {
                            mm(rows, cout, k, &mut out, c, [256, 1], x, [1, 256], ONE);
                        } else {
                            mm(cout, rows, k, &mut out, x, [256, 1], c, [1, 256], ONE);
                        }
                    }
                    black_box(&out);
                });
            }
        }
        time(&l("forward Yᵀ = colᵀ · Wᵀ"), flop, || {
            mm(plane, cout, rows, &mut out, &col, [1, p], &w, [1, r], ONE);
            black_box(&out);
        });
        time(&l("input grad col = Wᵀ · dY"), flop, || {
            mm(rows, plane, cout, &mut out, &w, [1, r], &dy, [p, 1], ONE);
            black_box(&out);
        });
        time(&l("input grad colᵀ = dYᵀ · W' (used)"), flop, || {
            mm(plane, rows, cout, &mut out, &dy, [1, p], &w, [r, 1], ONE);
            black_box(&out);
        });
        time(
            &l("weight grad dW = dY · (row-major col)ᵀ"),
            flop,
            || {
                mm(cout, rows, plane, &mut out, &dy, [p, 1], &col, [1, p], ONE);
                black_box(&out);
            },
        );
        time(&l("weight grad dW' = dY · colᵀ (used)"), flop, || {
            mm(cout, rows, plane, &mut out, &dy, [p, 1], &col, [r, 1], ONE);
            black_box(&out);
        });
    }
}
