//! The GPU path against the CPU, run by CI on Mesa's software Vulkan (lavapipe) where there is no
//! GPU: `cargo test -p genlab --features wgpu --test devices` (see `.ci/run`). Every family trains
//! a few steps on `wgpu` and on the CPU from the same seed, so from the same initial weights
//! (`train::with_family` initialises on the CPU, then moves the model); their losses must agree
//! within [`TOLERANCE`]. The shipped x2 FSRCNN upscales one picture on both, within one grey level.
//! Without the `wgpu` feature this file is empty.
#![cfg(feature = "wgpu")]

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use burn::prelude::*;
use genlab::checkpoint::{RunDir, load_weights_bytes};
use genlab::models::SrModelConfig;
use genlab::train::{Silent, read_records, train, train_sr};

/// Largest relative difference allowed between a CPU and a wgpu loss after the same few steps
/// from the same weights: different summation orders in the kernels, amplified by Adam's first
/// steps (each parameter moves by about `lr` whatever its gradient's size).
const TOLERANCE: f64 = 2e-3;

fn wgpu() -> Device {
    Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)
}

/// Every number in the records (losses, test metrics), by key path.
fn numbers(v: &serde_json::Value, at: &str, out: &mut Vec<(String, f64)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if !matches!(
                    k.as_str(),
                    "images_per_sec" | "patches_per_sec" | "elapsed_secs"
                ) {
                    numbers(x, &format!("{at}.{k}"), out);
                }
            }
        }
        serde_json::Value::Number(n) => out.push((at.to_string(), n.as_f64().expect("f64"))),
        _ => {}
    }
}

fn record_numbers(run: &RunDir) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (i, r) in read_records(run).expect("records").iter().enumerate() {
        numbers(r, &format!("epoch {}", i + 1), &mut out);
    }
    out
}

fn assert_agree(name: &str, cpu: &[(String, f64)], gpu: &[(String, f64)]) {
    assert_eq!(cpu.len(), gpu.len(), "{name}: records differ in shape");
    let mut worst = 0f64;
    for ((k, a), (k2, b)) in cpu.iter().zip(gpu) {
        assert_eq!(k, k2, "{name}");
        let rel = (a - b).abs() / a.abs().max(1e-3);
        worst = worst.max(rel);
        assert!(
            rel <= TOLERANCE,
            "{name} {k}: cpu {a} vs wgpu {b} ({rel:.2e})"
        );
    }
    eprintln!(
        "{name}: {} numbers, largest relative difference {worst:.2e}",
        cpu.len()
    );
}

/// One test, so the two devices' RNGs are seeded and drawn from by one training at a time.
#[test]
fn every_family_trains_on_wgpu_as_on_the_cpu_and_upscales_alike() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = genlab::data::embedded::mnist_10k().expect("embedded data");
    let no = AtomicBool::new(false);
    // The shared small runs, and the two bodies they leave out.
    let mut cases = common::image_families(1);
    cases.push(("conv-vae", common::small("mnist-conv-vae", 1, |_| {})));
    cases.push(("ae", common::small("mnist-ae", 1, |_| {})));
    for (name, mut c) in cases {
        c.model.set_image(data.shape());
        let mut runs = Vec::new();
        for (dev, device) in [("cpu", Device::flex()), ("wgpu", wgpu())] {
            let run = RunDir::new(tmp.path().join(format!("{name}-{dev}")));
            train(&run, &c, false, &data, &device, &no, &mut Silent)
                .unwrap_or_else(|e| panic!("{name} on {dev}: {e}"));
            runs.push(record_numbers(&run));
        }
        assert_agree(name, &runs[0], &runs[1]);
    }

    let photos = common::photos(tmp.path());
    let sr = common::small_sr(&photos, 1);
    let mut runs = Vec::new();
    for (dev, device) in [("cpu", Device::flex()), ("wgpu", wgpu())] {
        let run = RunDir::new(tmp.path().join(format!("sr-{dev}")));
        train_sr(&run, &sr, false, &device, &no, &mut Silent)
            .unwrap_or_else(|e| panic!("sr on {dev}: {e}"));
        runs.push(record_numbers(&run));
    }
    assert_agree("fsrcnn", &runs[0], &runs[1]);

    // The shipped x2 model upscaling a photo on both devices.
    let (shipped, cfg) = genlab::sr::shipped::shipped(2).expect("shipped x2");
    let SrModelConfig::Fsrcnn(fc) = &cfg.model else {
        panic!("the shipped x2 is an FSRCNN")
    };
    let pic = genlab::sr::Picture::read(&photos.join("p1.png")).expect("photo");
    let mut outs = Vec::new();
    for device in [Device::flex(), wgpu()] {
        let net = load_weights_bytes(
            fc.init(&device),
            shipped.weights.to_vec(),
            Path::new(shipped.path),
        )
        .expect("weights");
        let up =
            genlab::sr::upscale::upscale(&net, &pic, 64, &device, &mut |_, _| {}).expect("upscale");
        outs.push(up.pixels);
    }
    let worst = outs[0]
        .iter()
        .zip(&outs[1])
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .expect("pixels");
    assert!(
        worst <= 1,
        "upscaled pixels differ by up to {worst} grey levels"
    );
    eprintln!("upscale x2: largest pixel difference {worst}");
}
