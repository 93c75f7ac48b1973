//! Training-speed measurement (`genlab bench`): the training step of a model family, timed in
//! windows after a warm-up, reported as the median images/s. The step is the training loop's
//! own: batch to tensor, objective with fresh noise, loss read back (as the loop does for its NaN
//! guard), backward, Adam step.
//!
//! Workloads are the reference architectures of BENCHMARKS.md (see [`WORKLOADS`]); the PyTorch
//! side is `bench/reference/vae.py --speed` with the same windows, so a ratio taken in one run on
//! one machine compares like with like.

use std::time::Instant;

use crate::nn::fused::FusedAdam;
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::Serialize;

use crate::config::RunConfig;
use crate::data::{ImageSet, shuffled_order};
use crate::error::{Error, Result};
use crate::image_io::batch_tensor;
use crate::models::{ImageModel, ModelConfig};
use crate::rng::{rng_for, standard_normal, stream};

/// What a workload times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Training steps of the generative model in the named preset (images/s).
    Train(&'static str),
    /// Training steps of FSRCNN x2 (56, 12, 4) on 32x32 LR patches (patches/s).
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
    },
    Workload {
        name: "conv-vae",
        about: "W2: conv VAE 1-32-64 (k4 s2 p1), latent 16, convT 64-32-1, Adam",
        kind: Kind::Train("mnist-conv-vae"),
    },
    Workload {
        name: "dcgan",
        about: "W3: DCGAN 28x28, G linear-BN-convT(128-64)-BN-convT(64-1), D conv(1-64)-conv(64-128)-BN-linear, batch 64, one D + one G step",
        kind: Kind::Train("mnist-dcgan"),
    },
    Workload {
        name: "fsrcnn",
        about: "W4: FSRCNN x2 (56,12,4), LR 32x32 patches, 9x9 stride-2 convT, MSE, Adam",
        kind: Kind::SrTrain,
    },
    Workload {
        name: "fsrcnn-upscale",
        about: "shipped FSRCNN x2 upscaling a 1000x1000 Y plane (tiles of 128), input MP/s",
        kind: Kind::Upscale,
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
    let (windows, steps) = timed_windows(
        opts,
        opts.warmup_steps.min(1),
        (side * side) as f64 / 1e6,
        || upscale_y(&net, &y, DEFAULT_TILE, device).map(|_| ()),
    )?;
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
    let preset = match workload.kind {
        Kind::Train(p) => p,
        Kind::SrTrain => return sr_train_speed(opts, device),
        Kind::Upscale => {
            return Err(Error::Unsupported(format!(
                "{} times upscaling, not training (use upscale_speed)",
                workload.name
            )));
        }
    };
    let cfg = RunConfig::preset(preset)?;
    let shape = cfg.model.image();
    let synthetic;
    let set = match data {
        Some(d) => {
            if d.shape != shape {
                return Err(Error::config(
                    "bench data",
                    format!("{:?}", d.shape),
                    format!("images of shape {shape:?} for {}", workload.name),
                ));
            }
            d
        }
        None => {
            let n = opts.batch_size.max(1024);
            let mut rng = rng_for(opts.seed, stream::SHUFFLE, 0);
            let pixels = (0..n * shape.iter().product::<usize>())
                .map(|_| rand::RngExt::random::<u8>(&mut rng))
                .collect();
            synthetic = ImageSet::new(pixels, None, shape)?;
            &synthetic
        }
    };
    device.seed(opts.seed);
    let ad = device.clone().autodiff();
    let mut report = match &cfg.model {
        ModelConfig::Ae(m) => time_steps(m.init(&ad), set, opts, &ad)?,
        ModelConfig::Vae(m) => time_steps(m.init(&ad), set, opts, &ad)?,
        ModelConfig::Dcgan(m) => time_gan_steps(m.init(&ad), set, opts, &ad)?,
        ModelConfig::Classifier(_) | ModelConfig::VaeGan(_) => {
            return Err(Error::Unsupported(format!(
                "workload {}: this family is not a benchmark workload",
                workload.name
            )));
        }
    };
    report.workload = workload.name.into();
    Ok(report)
}

fn time_steps<M: ImageModel>(
    model: M,
    set: &ImageSet,
    opts: &SpeedOptions,
    ad: &Device,
) -> Result<SpeedReport> {
    let mut optim = FusedAdam::new(0.9, 0.999, 1e-8).init();
    let params = model.num_params();
    let latent = model.latent_dim();
    let b = opts.batch_size.min(set.len());
    let mut order = Vec::new();
    let mut step = 0usize;
    let mut run_step = |model: M| -> Result<M> {
        if order.len() < b {
            order = shuffled_order(set.len(), opts.seed, step);
        }
        let idx: Vec<usize> = order.drain(..b).collect();
        let x = batch_tensor(set, &idx, ad); // [b, c, h, w]
        let mut rng = rng_for(opts.seed, stream::TRAIN_NOISE, step as u64);
        let eps = standard_normal(&mut rng, b, latent, ad); // [b, latent]
        let obj = model.objective(x, eps);
        let loss = obj.loss.clone().into_scalar::<f32>();
        if !loss.is_finite() {
            return Err(Error::NonFiniteLoss {
                value: loss.to_string(),
                epoch: 0,
                step,
            });
        }
        let grads = GradientsParams::from_grads(obj.loss.backward(), &model);
        step += 1;
        Ok(optim.step(1e-3, model, grads))
    };
    let mut slot = Some(model);
    let (windows, steps) = timed_windows(opts, opts.warmup_steps, b as f64, || {
        slot = Some(run_step(
            slot.take().expect("model is put back after every step"),
        )?);
        Ok(())
    })?;
    Ok(SpeedReport {
        workload: String::new(),
        batch_size: b,
        params,
        median_images_per_s: median(&windows),
        windows,
        steps,
    })
}

/// W3: the DCGAN step of `genlab train gan` (update D, then G; both losses read back).
fn time_gan_steps(
    model: crate::models::Dcgan,
    set: &ImageSet,
    opts: &SpeedOptions,
    ad: &Device,
) -> Result<SpeedReport> {
    use crate::train::gan::dcgan_step;
    let model = crate::nn::with_stable_ids(model);
    let mut optim = FusedAdam::new(0.5, 0.999, 1e-8).init();
    let params = model.num_params();
    let latent = model.config.latent;
    let b = opts.batch_size.min(set.len());
    let mut order = Vec::new();
    let mut step = 0usize;
    let mut slot = Some(model);
    let (windows, steps) = timed_windows(opts, opts.warmup_steps, b as f64, || {
        if order.len() < b {
            order = shuffled_order(set.len(), opts.seed, step);
        }
        let idx: Vec<usize> = order.drain(..b).collect();
        let x = batch_tensor(set, &idx, ad); // [b, c, h, w]
        let z = standard_normal(
            &mut rng_for(opts.seed, stream::TRAIN_NOISE, step as u64),
            b,
            latent,
            ad,
        ); // [b, latent]
        let gan = slot.take().expect("model is put back after every step");
        let (gan, _) = dcgan_step(gan, &mut optim, x, z, 2e-4, (0, step))?;
        slot = Some(gan);
        step += 1;
        Ok(())
    })?;
    Ok(SpeedReport {
        workload: String::new(),
        batch_size: b,
        params,
        median_images_per_s: median(&windows),
        windows,
        steps,
    })
}

/// W4: FSRCNN x2 training steps on uniform-noise 32x32 LR / 64x64 HR patches (the loop of
/// `genlab train sr`: forward, MSE, loss read back, backward, Adam).
fn sr_train_speed(opts: &SpeedOptions, device: &Device) -> Result<SpeedReport> {
    use crate::models::{FsrcnnConfig, SrNet};
    device.seed(opts.seed);
    let ad = device.clone().autodiff();
    let net = crate::nn::with_stable_ids(FsrcnnConfig::default().init(&ad));
    let params = net.num_params();
    let mut optim = FusedAdam::new(0.9, 0.999, 1e-8).init();
    let b = opts.batch_size;
    let x = Tensor::<4>::random([b, 1, 32, 32], burn::tensor::Distribution::Default, &ad);
    let y = Tensor::<4>::random([b, 1, 64, 64], burn::tensor::Distribution::Default, &ad);
    let mut step = |net: crate::models::Fsrcnn| -> Result<crate::models::Fsrcnn> {
        let loss = (net.forward(x.clone()) - y.clone()).powi_scalar(2).mean();
        let l = loss.clone().into_scalar::<f32>();
        if !l.is_finite() {
            return Err(Error::NonFiniteLoss {
                value: l.to_string(),
                epoch: 0,
                step: 0,
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        Ok(optim.step(1e-3, net, grads))
    };
    let mut slot = Some(net);
    let (windows, steps) = timed_windows(opts, opts.warmup_steps, b as f64, || {
        slot = Some(step(
            slot.take().expect("network is put back after every step"),
        )?);
        Ok(())
    })?;
    Ok(SpeedReport {
        workload: "fsrcnn".into(),
        batch_size: b,
        params,
        median_images_per_s: median(&windows),
        windows,
        steps,
    })
}

/// Runs `warmup` untimed steps, then `opts.windows` windows of whole steps lasting at least
/// `opts.window_secs` each; returns each window's `items` per second and the timed step count.
fn timed_windows(
    opts: &SpeedOptions,
    warmup: usize,
    items_per_step: f64,
    mut step: impl FnMut() -> Result<()>,
) -> Result<(Vec<f64>, usize)> {
    for _ in 0..warmup {
        step()?;
    }
    let mut windows = Vec::with_capacity(opts.windows);
    let mut steps = 0;
    for _ in 0..opts.windows {
        let t0 = Instant::now();
        let mut n = 0usize;
        while n == 0 || t0.elapsed().as_secs_f64() < opts.window_secs {
            step()?;
            n += 1;
        }
        steps += n;
        windows.push(n as f64 * items_per_step / t0.elapsed().as_secs_f64());
    }
    Ok((windows, steps))
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
