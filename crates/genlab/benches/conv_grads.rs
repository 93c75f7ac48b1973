//! Where a convolution's training time goes, layer by layer, for the convolutions of issue 5's
//! workloads W2-W4: the forward pass alone (flex's, and genlab's as training runs it),
//! forward + backward through burn's own autodiff
//! (`Conv2d::forward`, whose gradients are burn's generic formulas on flex), and forward +
//! backward through genlab's (`nn::ops::conv`, its own gradient kernels). Real batch sizes,
//! float32.
//!
//! Run: `cargo bench -p genlab --bench conv_grads` (prints a Markdown table: median ms of 9 timed
//! runs after 2 warm-up runs, interleaved burn / genlab so machine drift hits both alike).

use std::time::Instant;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use genlab::nn::ops::conv::{conv_transpose2d, conv2d};

enum Layer {
    Conv(Conv2d),
    Transposed(ConvTranspose2d),
}

struct Case {
    workload: &'static str,
    name: &'static str,
    input: [usize; 4],
    layer: Layer,
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, d: &Device) -> Layer {
    Layer::Conv(
        Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .init(d),
    )
}

fn deconv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    pad_out: usize,
    d: &Device,
) -> Layer {
    Layer::Transposed(
        ConvTranspose2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_padding([pad, pad])
            .with_padding_out([pad_out, pad_out])
            .init(d),
    )
}

fn cases(d: &Device) -> Vec<Case> {
    let c = |workload, name, input, layer| Case {
        workload,
        name,
        input,
        layer,
    };
    vec![
        c(
            "W2 conv VAE",
            "conv 1-32 k4 s2",
            [128, 1, 28, 28],
            conv(1, 32, 4, 2, 1, d),
        ),
        c(
            "W2 conv VAE",
            "conv 32-64 k4 s2",
            [128, 32, 14, 14],
            conv(32, 64, 4, 2, 1, d),
        ),
        c(
            "W2 conv VAE",
            "convT 64-32 k4 s2",
            [128, 64, 7, 7],
            deconv(64, 32, 4, 2, 1, 0, d),
        ),
        c(
            "W2 conv VAE",
            "convT 32-1 k4 s2",
            [128, 32, 14, 14],
            deconv(32, 1, 4, 2, 1, 0, d),
        ),
        c(
            "W3 DCGAN",
            "G convT 128-64 k4 s2",
            [64, 128, 7, 7],
            deconv(128, 64, 4, 2, 1, 0, d),
        ),
        c(
            "W3 DCGAN",
            "G convT 64-1 k4 s2",
            [64, 64, 14, 14],
            deconv(64, 1, 4, 2, 1, 0, d),
        ),
        c(
            "W3 DCGAN",
            "D conv 1-64 k4 s2",
            [64, 1, 28, 28],
            conv(1, 64, 4, 2, 1, d),
        ),
        c(
            "W3 DCGAN",
            "D conv 64-128 k4 s2",
            [64, 64, 14, 14],
            conv(64, 128, 4, 2, 1, d),
        ),
        c(
            "W4 FSRCNN x2",
            "conv 1-56 k5",
            [32, 1, 32, 32],
            conv(1, 56, 5, 1, 2, d),
        ),
        c(
            "W4 FSRCNN x2",
            "conv 56-12 k1",
            [32, 56, 32, 32],
            conv(56, 12, 1, 1, 0, d),
        ),
        c(
            "W4 FSRCNN x2",
            "conv 12-12 k3 (x4)",
            [32, 12, 32, 32],
            conv(12, 12, 3, 1, 1, d),
        ),
        c(
            "W4 FSRCNN x2",
            "conv 12-56 k1",
            [32, 12, 32, 32],
            conv(12, 56, 1, 1, 0, d),
        ),
        c(
            "W4 FSRCNN x2",
            "convT 56-1 k9 s2",
            [32, 56, 32, 32],
            deconv(56, 1, 9, 2, 4, 1, d),
        ),
    ]
}

/// Median milliseconds of `f` over 9 runs after 2 warm-ups.
fn median_ms(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn main() {
    let d = Device::flex().autodiff();
    println!(
        "| workload | layer | forward flex ms | forward genlab ms | fwd+bwd burn ms | fwd+bwd genlab ms | backward speed-up |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for case in cases(&d) {
        let x = Tensor::<4>::random(case.input, Distribution::Normal(0.0, 1.0), &d).require_grad();
        let burn = |x: Tensor<4>| match &case.layer {
            Layer::Conv(l) => l.forward(x),
            Layer::Transposed(l) => l.forward(x),
        };
        let ours = |x: Tensor<4>| match &case.layer {
            Layer::Conv(l) => conv2d(l, x),
            Layer::Transposed(l) => conv_transpose2d(l, x),
        };
        let step = |f: &dyn Fn(Tensor<4>) -> Tensor<4>, backward: bool| -> f64 {
            let start = Instant::now();
            let y = f(x.clone());
            if backward {
                let grads = y.sum().backward();
                std::hint::black_box(grads);
            } else {
                std::hint::black_box(y.inner());
            }
            start.elapsed().as_secs_f64() * 1e3
        };
        let (mut fwd, mut fwd_ours, mut b, mut g) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..11 {
            let f0 = step(&burn, false);
            let f1 = step(&ours, false);
            let (b0, g0) = (step(&burn, true), step(&ours, true));
            if i >= 2 {
                fwd.push(f0);
                fwd_ours.push(f1);
                b.push(b0);
                g.push(g0);
            }
        }
        let (fwd, fwd_ours) = (median_ms(fwd), median_ms(fwd_ours));
        let (b, g) = (median_ms(b), median_ms(g));
        println!(
            "| {} | {} | {fwd:.2} | {fwd_ours:.2} | {b:.2} | {g:.2} | {:.1}x |",
            case.workload,
            case.name,
            (b - fwd).max(1e-9) / (g - fwd_ours).max(1e-9)
        );
    }
}
