//! `genlab train sr`: train a super-resolution network on a folder of photos.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use genlab::SrRunConfig;
use genlab::checkpoint::RunDir;
use genlab::models::{EspcnConfig, FsrcnnConfig, SrModelConfig};
use genlab::train::train_sr;

use super::flags::RunFlags;
use super::progress::{Progress, report, stop_flag};
use crate::common::{DeviceArg, device};

/// `--net`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum NetArg {
    /// FSRCNN (transposed-convolution upsampler).
    Fsrcnn,
    /// ESPCN (sub-pixel upsampler).
    Espcn,
}

/// `genlab train sr`.
#[derive(clap::Args)]
#[command(
    mut_arg("batch_size", |a| a.help("Patches per optimizer step")),
    mut_arg("out", |a| a.help(
        "Run folder to create (default runs/KIND-xSCALE, numbered if taken)"
    )),
    mut_arg("dry_run", |a| a.help(
        "One epoch of two steps on small batches (for CI and smoke tests)"
    ))
)]
pub struct Args {
    /// Upscaling factor (2, 3 or 4).
    #[arg(long, default_value_t = 2)]
    scale: usize,
    /// Folder of training photos (every file under it a PNG, JPEG or BMP).
    #[arg(long)]
    images: String,
    /// Folder of validation images (*_HR/*_LR pairs, or HR images).
    #[arg(long)]
    val: Option<String>,
    /// Network.
    #[arg(long, value_enum)]
    net: Option<NetArg>,
    /// FSRCNN sizes D,S,M: feature channels, shrunk channels, mapping layers (default
    /// 56,12,4). With --init-from a run of the same D,S and fewer mapping layers, the network
    /// is grown from it (new layers start as the identity).
    #[arg(long, value_name = "D,S,M")]
    dims: Option<String>,
    /// Optimizer steps per epoch.
    #[arg(long)]
    steps: Option<usize>,
    /// Low-resolution patch side.
    #[arg(long)]
    patch: Option<usize>,
    /// LR pixels at each patch side left out of the loss (default 0; see BENCHMARKS.md).
    #[arg(long)]
    loss_border: Option<usize>,
    /// Halve the learning rate every N epochs (0: never).
    #[arg(long)]
    lr_halve_every: Option<usize>,
    /// The output layer learns at lr times this (default 1; the FSRCNN paper used 0.1).
    #[arg(long)]
    output_lr_scale: Option<f64>,
    /// Start from the weights of this SR run (all layers but the upsampler when the scale
    /// differs, as the FSRCNN paper does to train x3/x4 from x2).
    #[arg(long)]
    init_from: Option<PathBuf>,
    #[command(flatten)]
    run: RunFlags,
}

fn build(a: &Args) -> Result<SrRunConfig> {
    let mut cfg = SrRunConfig::default();
    if let Some(NetArg::Espcn) = a.net {
        cfg.model = SrModelConfig::Espcn(EspcnConfig::default());
    } else {
        cfg.model = SrModelConfig::Fsrcnn(FsrcnnConfig::default());
    }
    if let Some(d) = &a.dims {
        let SrModelConfig::Fsrcnn(c) = &mut cfg.model else {
            bail!("--dims sets FSRCNN's sizes; it does not apply to --net espcn");
        };
        (c.d, c.s, c.m) = parse_dims(d)?;
    }
    cfg.model.set_scale(a.scale);
    let f = &a.run;
    let t = &mut cfg.train;
    t.images = a.images.clone();
    if let Some(v) = &a.val {
        t.val = v.clone();
    }
    if let Some(v) = f.epochs {
        t.epochs = v;
    }
    if let Some(v) = a.steps {
        t.steps_per_epoch = v;
    }
    if let Some(v) = f.batch_size {
        t.batch_size = v;
    }
    if let Some(v) = a.patch {
        t.patch = v;
    }
    if let Some(v) = a.loss_border {
        t.loss_border = v;
    }
    if let Some(v) = f.lr {
        t.lr = v;
    }
    if let Some(v) = f.seed {
        t.seed = v;
    }
    if let Some(v) = a.lr_halve_every {
        t.lr_halve_every = v;
    }
    if let Some(v) = a.output_lr_scale {
        t.output_lr_scale = v;
    }
    if let Some(p) = &a.init_from {
        t.init_from = p.display().to_string();
    }
    // The flags as given are checked before --dry-run shrinks the run, memory included: a dry
    // run says whether the real one can run.
    cfg.validate()?;
    genlab::train::sr::check_memory(&cfg)?;
    let t = &mut cfg.train;
    if f.dry_run {
        t.epochs = 1;
        t.steps_per_epoch = 2;
        t.batch_size = t.batch_size.min(4);
        t.rescale = vec![1.0];
        t.max_val_images = 1;
    }
    cfg.validate()?;
    for (k, dir) in [("--images", &cfg.train.images), ("--val", &cfg.train.val)] {
        if !dir.is_empty() && !Path::new(dir).is_dir() {
            bail!("{k} {dir}: not a folder");
        }
    }
    Ok(cfg)
}

/// `--dims D,S,M`: three integers (their ranges are checked with the rest of the config).
fn parse_dims(text: &str) -> Result<(usize, usize, usize)> {
    let v: Vec<Option<usize>> = text.split(',').map(|p| p.trim().parse().ok()).collect();
    match v.as_slice() {
        [Some(d), Some(s), Some(m)] => Ok((*d, *s, *m)),
        _ => bail!(
            "--dims {text}: expected three integers D,S,M (feature channels, shrunk channels, mapping layers), e.g. 56,12,4"
        ),
    }
}

impl Args {
    /// A new run: into `--out`, or `runs/KIND-xSCALE[-dry-run]`, numbered if taken.
    pub fn run(self) -> Result<i32> {
        let device = device(self.run.device)?;
        let cfg = build(&self)?;
        let what = format!("x{}", cfg.model.scale());
        let run = RunDir::new(self.run.out_or_default(cfg.model.kind(), &what));
        train(run, cfg, false, self.run.quiet, &device)
    }
}

/// `genlab train --resume RUN` of a super-resolution run: continues from the last
/// checkpoint, up to `epochs` in all when given.
pub fn resume(
    dir: &Path,
    epochs: Option<usize>,
    quiet: bool,
    device_arg: DeviceArg,
) -> Result<i32> {
    let device = device(device_arg)?;
    let run = RunDir::new(dir);
    let mut cfg = run.load_sr_config()?;
    if let Some(e) = epochs {
        cfg.train.epochs = e;
        cfg.validate()?;
    }
    train(run, cfg, true, quiet, &device)
}

/// Trains (or resumes) and reports how the run ended.
fn train(
    run: RunDir,
    cfg: SrRunConfig,
    resume: bool,
    quiet: bool,
    device: &burn::prelude::Device,
) -> Result<i32> {
    // A run inside its photo folders would train on its own outputs next time.
    let folders = [&cfg.train.images, &cfg.train.val, &cfg.train.init_from];
    crate::common::outside_inputs(&run, folders.into_iter().filter(|f| !f.is_empty()))?;
    let stop = stop_flag()?;
    eprintln!(
        "{} {} x{} on {} (validation: {}) -> {}",
        if resume { "resuming" } else { "training" },
        cfg.model.kind(),
        cfg.model.scale(),
        cfg.train.images,
        if cfg.train.val.is_empty() {
            "none"
        } else {
            &cfg.train.val
        },
        run.dir.display()
    );
    let mut obs = Progress { bar: None, quiet };
    let outcome = train_sr(&run, &cfg, resume, device, &stop, &mut obs)
        .with_context(|| format!("training in {}", run.dir.display()))?;
    Ok(report(
        &outcome,
        &run,
        "weights.safetensors, config.toml, metrics.jsonl, loss.png",
    ))
}
