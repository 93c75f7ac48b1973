//! The GPU path against the CPU, run by CI on Mesa's software Vulkan (lavapipe) where there is no
//! GPU: `cargo test -p genlab --features wgpu --test devices` (see `.ci/run`). Every family trains
//! a few steps on `wgpu` and on the CPU from the same seed, so from the same initial weights
//! (`train::with_family` initialises on the CPU, then moves the model); their losses must agree
//! within [`TOLERANCE`]. The shipped x2 FSRCNN upscales one picture on both, within one grey level.
//! Without the `wgpu` feature this file is empty.
#![cfg(feature = "wgpu")]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use burn::prelude::*;
use genlab::checkpoint::{RunDir, load_weights_bytes};
use genlab::config::{RunConfig, SrRunConfig, SrTrainConfig};
use genlab::models::{DcganConfig, FsrcnnConfig, ModelConfig, SrModelConfig};
use genlab::train::{Silent, read_records, train, train_sr};

/// Largest relative difference allowed between a CPU and a wgpu loss after the same few steps
/// from the same weights: different summation orders in the kernels, amplified by Adam's first
/// steps (each parameter moves by about `lr` whatever its gradient's size).
const TOLERANCE: f64 = 2e-3;

fn wgpu() -> Device {
    Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)
}

fn small(preset: &str, edit: impl FnOnce(&mut ModelConfig)) -> RunConfig {
    let mut c = RunConfig::preset(preset).expect("preset");
    edit(&mut c.model);
    c.train.epochs = 1;
    c.train.batch_size = 16;
    c.train.max_train_images = 64;
    c.train.max_test_images = 32;
    c.train.grid_images = 4;
    c
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

fn photos(dir: &Path) -> PathBuf {
    let p = dir.join("photos");
    std::fs::create_dir(&p).expect("mkdir");
    for k in 0..3u32 {
        image::RgbImage::from_fn(40 + k * 4, 36, |x, y| {
            let v = ((x * 5 + y * 3 + k * 20) % 200) as u8 + if x > 20 { 40 } else { 0 };
            image::Rgb([v, v / 2 + 30, 255 - v])
        })
        .save(p.join(format!("p{k}.png")))
        .expect("write png");
    }
    p
}

/// One test, so the two devices' RNGs are seeded and drawn from by one training at a time.
#[test]
fn every_family_trains_on_wgpu_as_on_the_cpu_and_upscales_alike() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = genlab::data::embedded::mnist_10k().expect("embedded data");
    let no = AtomicBool::new(false);
    let cases: Vec<(&str, RunConfig)> = vec![
        (
            "vae",
            small("mnist-vae", |m| {
                if let ModelConfig::Vae(v) = m {
                    v.hidden = vec![64];
                    v.latent = 4;
                }
            }),
        ),
        ("conv-vae", small("mnist-conv-vae", |_| {})),
        ("ae", small("mnist-ae", |_| {})),
        (
            "dcgan",
            small("mnist-dcgan", |m| {
                *m = ModelConfig::Dcgan(DcganConfig {
                    latent: 8,
                    g_channels: vec![8, 16],
                    d_channels: vec![8, 16],
                    ..DcganConfig::default()
                });
            }),
        ),
        (
            "vae-gan",
            small("mnist-vae-gan", |m| {
                if let ModelConfig::VaeGan(v) = m {
                    v.d_channels = vec![8, 16];
                }
            }),
        ),
        (
            "classifier",
            small("mnist-classifier", |m| {
                // Dropout masks come from each device's own RNG: off, so both runs are the same
                // computation.
                if let ModelConfig::Classifier(c) = m {
                    c.dropout = 0.0;
                }
            }),
        ),
    ];
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

    let photos = photos(tmp.path());
    let sr = SrRunConfig {
        model: SrModelConfig::Fsrcnn(FsrcnnConfig {
            scale: 2,
            d: 8,
            s: 4,
            m: 1,
        }),
        train: SrTrainConfig {
            images: photos.display().to_string(),
            val: photos.display().to_string(),
            epochs: 1,
            steps_per_epoch: 4,
            batch_size: 4,
            patch: 8,
            loss_border: 2,
            lr: 3e-3,
            ..Default::default()
        },
    };
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
