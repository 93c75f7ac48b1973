//! `genlab train sr`: train a super-resolution network on a folder of photos.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use genlab::SrRunConfig;
use genlab::checkpoint::RunDir;
use genlab::models::{EspcnConfig, FsrcnnConfig, SrModelConfig};
use genlab::train::sr::{load_sr_config, train_sr};

use super::generative::Args;
use super::progress::{Progress, default_run_dir, report, stop_flag};
use crate::common::device;

/// `--net`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum NetArg {
    /// FSRCNN (transposed-convolution upsampler).
    Fsrcnn,
    /// ESPCN (sub-pixel upsampler).
    Espcn,
}

fn build(a: &Args) -> Result<SrRunConfig> {
    for (set, f) in [
        (a.preset.is_some(), "--preset"),
        (a.arch.is_some(), "--arch"),
        (a.dataset.is_some(), "--dataset (use --images)"),
        (a.beta.is_some(), "--beta"),
        (a.latent.is_some(), "--latent"),
    ] {
        if set {
            bail!("{f} does not apply to `genlab train sr`");
        }
    }
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
    cfg.model.set_scale(a.scale.unwrap_or(2));
    let t = &mut cfg.train;
    if let Some(v) = &a.images {
        t.images = v.clone();
    }
    if let Some(v) = &a.val {
        t.val = v.clone();
    }
    if let Some(v) = a.epochs {
        t.epochs = v;
    }
    if let Some(v) = a.steps {
        t.steps_per_epoch = v;
    }
    if let Some(v) = a.batch_size {
        t.batch_size = v;
    }
    if let Some(v) = a.patch {
        t.patch = v;
    }
    if let Some(v) = a.loss_border {
        t.loss_border = v;
    }
    if let Some(v) = a.lr {
        t.lr = v;
    }
    if let Some(v) = a.seed {
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
    if a.dry_run {
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

fn default_out(cfg: &SrRunConfig, dry: bool) -> PathBuf {
    default_run_dir(cfg.model.kind(), &format!("x{}", cfg.model.scale()), dry)
}

pub fn run(a: Args) -> Result<i32> {
    let device = device(a.device)?;
    let (run, cfg, resume) = match &a.resume {
        Some(dir) => {
            let run = RunDir::new(dir);
            let mut cfg = load_sr_config(&run)?;
            if let Some(e) = a.epochs {
                cfg.train.epochs = e;
                cfg.validate()?;
                genlab::fsutil::write_atomic(&run.config(), cfg.to_toml().as_bytes())?;
            }
            (run, cfg, true)
        }
        None => {
            let cfg = build(&a)?;
            let out = a
                .out
                .clone()
                .unwrap_or_else(|| default_out(&cfg, a.dry_run));
            (RunDir::new(out), cfg, false)
        }
    };
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
    let mut obs = Progress {
        bar: None,
        quiet: a.quiet,
    };
    let outcome = train_sr(&run, &cfg, resume, &device, &stop, &mut obs)
        .with_context(|| format!("training in {}", run.dir.display()))?;
    Ok(report(
        &outcome,
        &run,
        "weights.safetensors, config.toml, metrics.jsonl, loss.png",
    ))
}
