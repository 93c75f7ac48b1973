//! Training-speed measurement (`genlab bench`): the training step of a model family, timed in
//! windows after a warm-up, reported as the median images/s. The step timed is the family's own
//! [`Family::step`], reached through the same registry as `genlab train`
//! ([`crate::train::with_family`]), with the batches of its [`crate::train::BatchSource`]: what
//! a benchmark times is what training runs.
//!
//! Workloads are the reference architectures of BENCHMARKS.md (see [`WORKLOADS`]); the PyTorch
//! side is `bench/reference/vae.py --speed` with the same windows, so a ratio taken in one run on
//! one machine compares like with like.

use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use crate::config::{RunConfig, SrRunConfig, SrTrainConfig};
use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::models::{FsrcnnConfig, SrModelConfig};
use crate::nn::with_stable_ids;
use crate::rng::{rng_for, stream};
use crate::sr::Plane;
use crate::sr::patches::Pair;
use crate::train::sr::with_sr_family;
use crate::train::{At, Family, FamilyFn, with_family};

/// What a workload times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Training steps of the generative model in the named preset (images/s).
    Train(&'static str),
    /// Training steps of FSRCNN x2 (56, 12, 4) on 32x32 LR patches of a noise picture
    /// (patches/s).
    SrTrain,
    /// The shipped FSRCNN x2 upscaling a 1000x1000 Y plane (input megapixels/s).
    Upscale,
}

/// A benchmark workload.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// The `--workload` name.
    pub name: &'static str,
    /// What it is, for the report.
    pub about: &'static str,
    /// What it times.
    pub kind: Kind,
    /// Images (patches) per step, as BENCHMARKS.md states it.
    pub batch_size: usize,
}

impl Workload {
    /// Whether this workload times upscaling (inference) rather than training.
    pub fn is_upscale(&self) -> bool {
        self.kind == Kind::Upscale
    }
}

/// The workloads `genlab bench` knows (W1-W4 of BENCHMARKS.md, and upscaling).
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "mlp-vae",
        about: "W1: MLP VAE 784-400-20, Bernoulli, Adam",
        kind: Kind::Train("mnist-vae"),
        batch_size: 128,
    },
    Workload {
        name: "conv-vae",
        about: "W2: conv VAE 1-32-64 (k4 s2 p1), latent 16, convT 64-32-1, Adam",
        kind: Kind::Train("mnist-conv-vae"),
        batch_size: 128,
    },
    Workload {
        name: "dcgan",
        about: "W3: DCGAN 28x28, G linear-BN-convT(128-64)-BN-convT(64-1), D conv(1-64)-conv(64-128)-BN-linear, batch 64, one D + one G step",
        kind: Kind::Train("mnist-dcgan"),
        batch_size: 64,
    },
    Workload {
        name: "fsrcnn",
        about: "W4: FSRCNN x2 (56,12,4), LR 32x32 patches, 9x9 stride-2 convT, MSE, Adam",
        kind: Kind::SrTrain,
        batch_size: 32,
    },
    Workload {
        name: "fsrcnn-upscale",
        about: "shipped FSRCNN x2 upscaling a 1000x1000 Y plane (tiles of 128), input MP/s",
        kind: Kind::Upscale,
        batch_size: 1,
    },
];

/// Times the shipped FSRCNN x2 upscaling a `side x side` Y plane, the way `genlab upscale` runs
/// it (tiles with margins). Reports input megapixels/s as "images"/s x 1e-6 in `windows`.
pub fn upscale_speed(side: usize, opts: &SpeedOptions, device: &Device) -> Result<SpeedReport> {
    use crate::checkpoint::load_weights_bytes;
    use crate::models::SrModelConfig;
    use crate::sr::upscale::{DEFAULT_TILE, upscale_y};
    let (shipped, cfg) = crate::sr::shipped::shipped(2)?;
    let SrModelConfig::Fsrcnn(c) = &cfg.model else {
        return Err(Error::Unsupported(
            "the shipped x2 model is not an FSRCNN".into(),
        ));
    };
    let net = load_weights_bytes(
        c.init(device),
        shipped.weights.to_vec(),
        std::path::Path::new(shipped.path),
    )?;
    let mut rng = rng_for(opts.seed, stream::SHUFFLE, 0);
    let y = crate::sr::Plane::new(
        side,
        side,
        (0..side * side)
            .map(|_| f64::from(rand::RngExt::random::<u8>(&mut rng)))
            .collect(),
    );
    // Items are input pixels; the report is in megapixels/s.
    let (windows, steps) = timed_windows(opts, opts.warmup_steps.min(1), || {
        upscale_y(&net, &y, DEFAULT_TILE, device).map(|_| side * side)
    })?;
    let windows: Vec<f64> = windows.into_iter().map(|w| w / 1e6).collect();
    Ok(SpeedReport {
        workload: "fsrcnn-upscale".into(),
        batch_size: 1,
        params: 0,
        median_images_per_s: median(&windows),
        windows,
        steps,
    })
}

/// Looks a workload up by name.
pub fn workload(name: &str) -> Result<Workload> {
    WORKLOADS
        .iter()
        .find(|w| w.name == name)
        .copied()
        .ok_or_else(|| Error::Config {
            field: "workload".into(),
            value: name.into(),
            expected: format!(
                "one of {}",
                WORKLOADS
                    .iter()
                    .map(|w| w.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// How to time.
#[derive(Debug, Clone)]
pub struct SpeedOptions {
    /// Images per step.
    pub batch_size: usize,
    /// Untimed steps first (allocator, caches, autotuning).
    pub warmup_steps: usize,
    /// Timed windows; the median is reported.
    pub windows: usize,
    /// Seconds per window (each window runs whole steps until it is at least this long).
    pub window_secs: f64,
    /// Seed for the weights, the batch order and the noise.
    pub seed: u64,
}

impl Default for SpeedOptions {
    fn default() -> Self {
        Self {
            batch_size: 128,
            warmup_steps: 5,
            windows: 7,
            window_secs: 2.0,
            seed: 0,
        }
    }
}

/// The result of timing one workload.
#[derive(Debug, Clone, Serialize)]
pub struct SpeedReport {
    /// Workload name.
    pub workload: String,
    /// Images per step.
    pub batch_size: usize,
    /// Trainable parameters.
    pub params: usize,
    /// Images/s of each window, in order.
    pub windows: Vec<f64>,
    /// Median of `windows`.
    pub median_images_per_s: f64,
    /// Steps timed in all.
    pub steps: usize,
}

/// Times the training step of `workload` on batches drawn from `data` (uniform noise in [0, 1]
/// of the model's image shape when `data` is `None`).
pub fn train_speed(
    workload: &Workload,
    data: Option<&ImageSet>,
    opts: &SpeedOptions,
    device: &Device,
) -> Result<SpeedReport> {
    if opts.batch_size == 0
        || opts.windows == 0
        || opts.window_secs.is_nan()
        || opts.window_secs <= 0.0
    {
        return Err(Error::config(
            "bench",
            format!(
                "batch {} windows {} seconds {}",
                opts.batch_size, opts.windows, opts.window_secs
            ),
            "a positive batch size, window count and window length",
        ));
    }
    device.seed(opts.seed);
    let timed = Timed { opts, device };
    let mut report = match workload.kind {
        Kind::Train(preset) => {
            let mut cfg = RunConfig::preset(preset)?;
            cfg.train.batch_size = opts.batch_size;
            cfg.train.seed = opts.seed;
            cfg.validate()?;
            crate::train::check_memory(&cfg, cfg.model.image().iter().product())?;
            let set = match data {
                Some(d) => {
                    let shape = cfg.model.image();
                    if d.shape != shape {
                        return Err(Error::config(
                            "bench data",
                            format!("{:?}", d.shape),
                            format!("images of shape {shape:?} for {}", workload.name),
                        ));
                    }
                    d.clone()
                }
                None => noise_images(cfg.model.image(), opts)?,
            };
            with_family(&cfg, set.clone(), set, device, timed)?
        }
        Kind::SrTrain => {
            let cfg = SrRunConfig {
                model: SrModelConfig::Fsrcnn(FsrcnnConfig::default()),
                train: SrTrainConfig {
                    images: "<noise>".into(),
                    patch: 32,
                    batch_size: opts.batch_size,
                    seed: opts.seed,
                    ..SrTrainConfig::default()
                },
            };
            cfg.validate()?;
            crate::train::sr::check_memory(&cfg)?;
            let pairs = vec![noise_pair(512, cfg.model.scale(), opts)];
            with_sr_family(&cfg, pairs, Vec::new(), None, device, timed)?
        }
        Kind::Upscale => {
            return Err(Error::Unsupported(format!(
                "{} times upscaling, not training (use upscale_speed)",
                workload.name
            )));
        }
    };
    report.workload = workload.name.into();
    Ok(report)
}

/// `max(batch, 1024)` images of uniform noise.
fn noise_images(shape: [usize; 3], opts: &SpeedOptions) -> Result<ImageSet> {
    let n = opts.batch_size.max(1024);
    let mut rng = rng_for(opts.seed, stream::SHUFFLE, 0);
    let pixels: Vec<u8> = (0..n * shape.iter().product::<usize>())
        .map(|_| rand::RngExt::random::<u8>(&mut rng))
        .collect();
    ImageSet::new(pixels, None, shape)
}

/// A `side x side` noise picture and its bicubic downscale, to cut training patches from.
fn noise_pair(side: usize, scale: usize, opts: &SpeedOptions) -> Pair {
    let mut rng = rng_for(opts.seed, stream::SHUFFLE, 1);
    let hr = Plane::new(
        side,
        side,
        (0..side * side)
            .map(|_| f64::from(rand::RngExt::random::<u8>(&mut rng)))
            .collect(),
    );
    Pair::from_hr(hr, scale)
}

/// Times a family's training step (what [`train_speed`] hands to the registry).
struct Timed<'a> {
    opts: &'a SpeedOptions,
    device: &'a Device,
}

impl FamilyFn<SpeedReport> for Timed<'_> {
    fn call<F: Family>(self, fam: F, model: F::Model) -> Result<SpeedReport> {
        let ad = self.device.clone().autodiff();
        let model = with_stable_ids(model);
        let mut optim = fam.optimizer(&model);
        let params = model.num_params();
        let source = fam.source();
        let (mut epoch, mut step, mut largest) = (0usize, 0usize, 0usize);
        let mut batches = source.epoch(epoch, 0, step, &ad);
        let mut slot = Some(model);
        let (windows, steps) = timed_windows(self.opts, self.opts.warmup_steps, || {
            let batch = match batches.next() {
                Some(b) => b,
                None => {
                    epoch += 1;
                    batches = source.epoch(epoch, 0, step, &ad);
                    batches.next().ok_or_else(|| {
                        Error::Unsupported("the benchmark's training set is empty".into())
                    })?
                }
            };
            let model = slot.take().expect("model is put back after every step");
            let (model, s) = fam.step(model, &mut optim, batch, At { epoch, step })?;
            slot = Some(model);
            step += 1;
            largest = largest.max(s.images);
            Ok(s.images)
        })?;
        Ok(SpeedReport {
            workload: String::new(),
            batch_size: largest,
            params,
            median_images_per_s: median(&windows),
            windows,
            steps,
        })
    }
}

/// Runs `warmup` untimed steps, then `opts.windows` windows of whole steps lasting at least
/// `opts.window_secs` each; `step` returns the items it processed. Returns each window's items
/// per second and the timed step count.
fn timed_windows(
    opts: &SpeedOptions,
    warmup: usize,
    mut step: impl FnMut() -> Result<usize>,
) -> Result<(Vec<f64>, usize)> {
    for _ in 0..warmup {
        step()?;
    }
    let mut windows = Vec::with_capacity(opts.windows);
    let mut steps = 0;
    for _ in 0..opts.windows {
        let t0 = Instant::now();
        let (mut n, mut items) = (0usize, 0usize);
        while n == 0 || t0.elapsed().as_secs_f64() < opts.window_secs {
            items += step()?;
            n += 1;
        }
        steps += n;
        windows.push(items as f64 / t0.elapsed().as_secs_f64());
    }
    Ok((windows, steps))
}

/// The processor a speed figure was measured on: ratios against PyTorch differ between vendors
/// and SIMD widths, so every figure carries it (BENCHMARKS.md keeps a table per vendor).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cpu {
    /// `vendor_id` of `/proc/cpuinfo` (`AuthenticAMD`, `GenuineIntel`), or the architecture.
    pub vendor: String,
    /// `model name` of `/proc/cpuinfo` (`AMD EPYC`, `Intel(R) Xeon(R) Processor`).
    pub model: String,
    /// `cpu family` and `model` of `/proc/cpuinfo` (AMD Zen 4 is 25 / 17, Zen 5 26 / 2): a
    /// virtual machine's `model name` often says no more than "AMD EPYC", which covers both.
    pub family_model: Option<(u32, u32)>,
    /// The SIMD extensions genlab's and burn's kernels choose between, as detected at run time.
    pub simd: Vec<&'static str>,
    /// What genlab's kernels run of those in this build (`avx512`, `avx2+fma`, `baseline`): a
    /// build without the `avx512` feature stops at AVX2 on any CPU.
    pub kernels: &'static str,
}

/// This machine's [`Cpu`].
pub fn cpu() -> Cpu {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    #[allow(unused_mut)]
    let mut simd = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => {
                $(if std::arch::is_x86_feature_detected!($f) { simd.push($f); })*
            };
        }
        detect!(
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512dq",
            "avx512vnni",
            "avx512bf16"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            simd.push("neon");
        }
    }
    Cpu {
        vendor: field("vendor_id").unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        model: field("model name").unwrap_or_else(|| "unknown".into()),
        family_model: field("cpu family")
            .and_then(|f| f.parse().ok())
            .zip(field("model").and_then(|m| m.parse().ok())),
        simd,
        kernels: genlab_kernels::widest_simd(),
    }
}

/// Median of a non-empty slice (mean of the middle two for even lengths).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The family and model numbers are `/proc/cpuinfo`'s, read here by whitespace-split
    /// tokens rather than `cpu`'s `key: value` split; none where the file has none.
    #[test]
    fn cpu_family_and_model_are_proc_cpuinfos() {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let number = |words: &[&str]| {
            info.lines().find_map(|l| {
                let t: Vec<&str> = l.split_whitespace().collect();
                (t.len() == words.len() + 2 && t[..words.len()] == *words && t[words.len()] == ":")
                    .then(|| t[words.len() + 1].parse::<u32>().ok())
                    .flatten()
            })
        };
        let expected = number(&["cpu", "family"]).zip(number(&["model"]));
        assert_eq!(cpu().family_model, expected);
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn times_every_workload_briefly_and_rejects_bad_options() {
        let opts = SpeedOptions {
            batch_size: 8,
            warmup_steps: 1,
            windows: 3,
            window_secs: 0.01,
            seed: 1,
        };
        for w in WORKLOADS.iter().filter(|w| !w.is_upscale()) {
            let r = train_speed(w, None, &opts, &Device::flex()).expect("bench");
            assert_eq!(r.workload, w.name);
            assert_eq!(r.windows.len(), 3);
            assert!(r.steps >= 3 && r.median_images_per_s > 0.0, "{r:?}");
            assert!(r.params > 0);
        }
        let up = upscale_speed(40, &opts, &Device::flex()).expect("upscale bench");
        assert_eq!(up.windows.len(), 3);
        assert!(up.median_images_per_s > 0.0);
        let bad = SpeedOptions { windows: 0, ..opts };
        assert!(train_speed(&WORKLOADS[0], None, &bad, &Device::flex()).is_err());
        assert!(
            workload("resnet")
                .unwrap_err()
                .to_string()
                .contains("mlp-vae")
        );
    }
}
