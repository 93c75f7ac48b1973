//! `genlab train vae|ae`: build a config from a preset and flags, validate it, train with a
//! progress bar, and leave a run folder. `--resume RUN` continues a stopped run exactly.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use genlab::RunConfig;
use genlab::checkpoint::RunDir;

use super::progress::{Progress, default_run_dir, report, stop_flag};
use crate::common::{DeviceArg, device};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Family {
    /// Variational autoencoder (beta-VAE with --beta).
    Vae,
    /// Plain autoencoder.
    Ae,
    /// DCGAN (generator + discriminator).
    #[value(alias = "dcgan")]
    Gan,
    /// VAE-GAN: a VAE whose decoder is also a GAN generator.
    VaeGan,
    /// The feature classifier of `genlab eval`'s Fréchet distance and precision/recall.
    Classifier,
    /// Super-resolution network (FSRCNN by default; --net espcn) trained on photos.
    Sr,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum GanLossArg {
    NonSaturating,
    Hinge,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ArchArg {
    Mlp,
    Conv,
}

#[derive(clap::Args)]
pub struct Args {
    /// Model family; not needed with --resume.
    #[arg(value_enum)]
    pub family: Option<Family>,
    /// Preset: a built-in name (mnist-vae, mnist-conv-vae, mnist-ae, mnist-conv-ae, fashion-vae,
    /// fashion-conv-vae, mnist-dcgan, fashion-dcgan, cifar10-dcgan, mnist-vae-gan,
    /// fashion-vae-gan, mnist-classifier, fashion-classifier) or a TOML file. Default: mnist-vae /
    /// mnist-ae (mnist-conv-* with --arch conv) / mnist-dcgan / mnist-vae-gan / mnist-classifier.
    #[arg(long)]
    pub preset: Option<String>,
    /// Network body, to pick the default preset.
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// Dataset: mnist-10k (embedded), mnist, fashion-mnist, cifar10, or a folder of images.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Folder searched first for dataset files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// KL weight (VAE only): 1 = VAE, > 1 = beta-VAE.
    #[arg(long)]
    pub beta: Option<f64>,
    /// Latent (VAE, GAN) or code (AE) size.
    #[arg(long)]
    pub latent: Option<usize>,
    /// gan: adversarial loss.
    #[arg(long, value_enum)]
    pub loss: Option<GanLossArg>,
    /// gan: one-sided label smoothing s (D's target for real images is 1 - s).
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// vae-gan: weight lambda of the adversarial term.
    #[arg(long)]
    pub adversarial_weight: Option<f64>,
    /// vae-gan: reconstruct in the discriminator's feature space (Larsen et al.).
    #[arg(long)]
    pub feature_recon: bool,
    /// Run folder to create (default runs/FAMILY-DATASET, numbered if taken).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint.
    #[arg(long, conflicts_with_all = ["family", "preset", "arch", "dataset", "batch_size", "lr", "seed", "beta", "latent", "loss", "label_smoothing", "adversarial_weight", "feature_recon", "out", "scale", "images", "val", "net", "dims", "steps", "patch", "loss_border", "init_from", "lr_halve_every", "output_lr_scale"])]
    pub resume: Option<PathBuf>,
    /// One tiny epoch on a few images (for CI and smoke tests).
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// sr: upscaling factor (2, 3 or 4).
    #[arg(long)]
    pub scale: Option<usize>,
    /// sr: folder of training photos (default ../shared/data/sr/train).
    #[arg(long)]
    pub images: Option<String>,
    /// sr: folder of validation images (*_HR/*_LR pairs, or HR images).
    #[arg(long)]
    pub val: Option<String>,
    /// sr: network.
    #[arg(long, value_enum)]
    pub net: Option<super::sr::NetArg>,
    /// sr: FSRCNN sizes D,S,M: feature channels, shrunk channels, mapping layers (default
    /// 56,12,4). With --init-from a run of the same D,S and fewer mapping layers, the network
    /// is grown from it (new layers start as the identity).
    #[arg(long, value_name = "D,S,M")]
    pub dims: Option<String>,
    /// sr: optimizer steps per epoch.
    #[arg(long)]
    pub steps: Option<usize>,
    /// sr: low-resolution patch side.
    #[arg(long)]
    pub patch: Option<usize>,
    /// sr: LR pixels at each patch side left out of the loss (default 0; see BENCHMARKS.md).
    #[arg(long)]
    pub loss_border: Option<usize>,
    /// sr: halve the learning rate every N epochs (0: never).
    #[arg(long)]
    pub lr_halve_every: Option<usize>,
    /// sr: the output layer learns at lr times this (default 1; the FSRCNN paper used 0.1).
    #[arg(long)]
    pub output_lr_scale: Option<f64>,
    /// sr: start from the weights of this SR run (all layers but the upsampler when the scale
    /// differs, as the FSRCNN paper does to train x3/x4 from x2).
    #[arg(long)]
    pub init_from: Option<PathBuf>,
}

impl Args {
    /// The SR-only flags that were given (to refuse them for other families).
    fn sr_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (set, name) in [
            (self.scale.is_some(), "--scale"),
            (self.images.is_some(), "--images"),
            (self.val.is_some(), "--val"),
            (self.net.is_some(), "--net"),
            (self.dims.is_some(), "--dims"),
            (self.steps.is_some(), "--steps"),
            (self.patch.is_some(), "--patch"),
            (self.loss_border.is_some(), "--loss-border"),
            (self.init_from.is_some(), "--init-from"),
            (self.lr_halve_every.is_some(), "--lr-halve-every"),
            (self.output_lr_scale.is_some(), "--output-lr-scale"),
        ] {
            if set {
                v.push(name);
            }
        }
        v
    }
}

fn gan_loss(l: GanLossArg) -> genlab::loss::GanLoss {
    match l {
        GanLossArg::NonSaturating => genlab::loss::GanLoss::NonSaturating,
        GanLossArg::Hinge => genlab::loss::GanLoss::Hinge,
    }
}

/// Builds the validated config from the preset and flags.
fn build_config(a: &Args) -> Result<RunConfig> {
    let family = a
        .family
        .context("name a model family (vae, ae, gan or sr), or use --resume RUN")?;
    if let Some(f) = a.sr_flags().first() {
        bail!("{f} applies to `genlab train sr` only");
    }
    let conv = matches!(a.arch, Some(ArchArg::Conv));
    let preset = a.preset.clone().unwrap_or_else(|| {
        match (family, conv) {
            (Family::Vae, false) => "mnist-vae",
            (Family::Vae, true) => "mnist-conv-vae",
            (Family::Ae, false) => "mnist-ae",
            (Family::Ae, true) => "mnist-conv-ae",
            (Family::Gan, _) => "mnist-dcgan",
            (Family::VaeGan, _) => "mnist-vae-gan",
            (Family::Classifier, _) => "mnist-classifier",
            (Family::Sr, _) => unreachable!("sr is handled by train_sr"),
        }
        .to_string()
    });
    let mut cfg = RunConfig::preset(&preset)?;
    let wanted = match family {
        Family::Vae => "vae",
        Family::Ae => "ae",
        Family::Gan => "dcgan",
        Family::VaeGan => "vae-gan",
        Family::Classifier => "classifier",
        Family::Sr => "sr",
    };
    if cfg.model.kind() != wanted {
        bail!(
            "preset {preset} is a {} model, not a {wanted}",
            cfg.model.kind()
        );
    }
    if let Some(arch) = a.arch {
        let arch = match arch {
            ArchArg::Mlp => genlab::nn::Arch::Mlp,
            ArchArg::Conv => genlab::nn::Arch::Conv,
        };
        match &mut cfg.model {
            genlab::ModelConfig::Ae(m) => m.arch = arch,
            genlab::ModelConfig::Vae(m) => m.arch = arch,
            genlab::ModelConfig::VaeGan(m) => m.vae.arch = arch,
            _ => bail!("--arch applies to vae, vae-gan and ae only"),
        }
    }
    let t = &mut cfg.train;
    if let Some(d) = &a.dataset {
        t.dataset = d.clone();
    }
    if let Some(v) = a.epochs {
        t.epochs = v;
    }
    if let Some(v) = a.batch_size {
        t.batch_size = v;
    }
    if let Some(v) = a.lr {
        t.lr = v;
    }
    if let Some(v) = a.seed {
        t.seed = v;
    }
    match &mut cfg.model {
        genlab::ModelConfig::Vae(m) => {
            if let Some(b) = a.beta {
                m.beta = b;
            }
            if let Some(l) = a.latent {
                m.latent = l;
            }
        }
        genlab::ModelConfig::Ae(m) => {
            if a.beta.is_some() {
                bail!("--beta applies to vae only");
            }
            if let Some(l) = a.latent {
                m.code = l;
            }
        }
        genlab::ModelConfig::Dcgan(m) => {
            if a.beta.is_some() {
                bail!("--beta applies to vae only");
            }
            if let Some(l) = a.latent {
                m.latent = l;
            }
            if let Some(l) = a.loss {
                m.loss = gan_loss(l);
            }
            if let Some(s) = a.label_smoothing {
                m.label_smoothing = s;
            }
        }
        genlab::ModelConfig::VaeGan(m) => {
            if let Some(b) = a.beta {
                m.vae.beta = b;
            }
            if let Some(l) = a.latent {
                m.vae.latent = l;
            }
            if let Some(l) = a.loss {
                m.loss = gan_loss(l);
            }
            if let Some(s) = a.label_smoothing {
                m.label_smoothing = s;
            }
            if let Some(w) = a.adversarial_weight {
                m.adversarial_weight = w;
            }
            if a.feature_recon {
                m.feature_recon = true;
            }
        }
        genlab::ModelConfig::Classifier(_) => {
            if a.beta.is_some() || a.latent.is_some() {
                bail!("--beta and --latent do not apply to a classifier");
            }
        }
    }
    let adversarial = matches!(
        cfg.model,
        genlab::ModelConfig::Dcgan(_) | genlab::ModelConfig::VaeGan(_)
    );
    if !adversarial {
        if a.loss.is_some() {
            bail!("--loss applies to gan and vae-gan only");
        }
        if a.label_smoothing.is_some() {
            bail!("--label-smoothing applies to gan and vae-gan only");
        }
    }
    if !matches!(cfg.model, genlab::ModelConfig::VaeGan(_))
        && (a.adversarial_weight.is_some() || a.feature_recon)
    {
        bail!("--adversarial-weight and --feature-recon apply to vae-gan only");
    }
    if a.dry_run {
        t.epochs = 1;
        t.batch_size = t.batch_size.min(16);
        t.max_train_images = t.batch_size;
        t.max_test_images = 32;
        t.grid_images = 16;
    }
    cfg.train.validate()?;
    Ok(cfg)
}

/// The default run folder: `runs/KIND-DATASET`, numbered if taken.
fn default_out(cfg: &RunConfig, dry: bool) -> PathBuf {
    let ds = PathBuf::from(&cfg.train.dataset);
    let ds = ds
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    default_run_dir(cfg.model.kind(), &ds, dry)
}

pub fn run(a: Args) -> Result<i32> {
    let is_sr = match (&a.resume, a.family) {
        (Some(dir), _) => genlab::checkpoint::run_kind(std::path::Path::new(dir))
            .is_ok_and(|k| matches!(k.as_str(), "fsrcnn" | "espcn")),
        (None, Some(Family::Sr)) => true,
        _ => false,
    };
    if is_sr {
        return super::sr::run(a);
    }
    let device = device(a.device)?;
    let (run, cfg, resume) = match &a.resume {
        Some(dir) => {
            let run = RunDir::new(dir);
            let mut cfg = run.load_config()?;
            if let Some(e) = a.epochs {
                cfg.train.epochs = e;
                cfg.train.validate()?;
                run.save_config(&cfg)?;
            }
            (run, cfg, true)
        }
        None => {
            let cfg = build_config(&a)?;
            let out = a
                .out
                .clone()
                .unwrap_or_else(|| default_out(&cfg, a.dry_run));
            (RunDir::new(out), cfg, false)
        }
    };
    let spec = cfg.train.dataset_spec()?;
    let data = genlab::data::load(&spec, &cfg.train.data_options(a.data_dir.clone()))?;
    let mut cfg = cfg;
    if !resume {
        cfg.model.set_image(data.shape());
        cfg.model.validate()?;
    }

    let stop = stop_flag()?;

    eprintln!(
        "{} {} on {} ({} train / {} test images) -> {}",
        if resume { "resuming" } else { "training" },
        cfg.model.kind(),
        data.name,
        data.train.len(),
        data.test.len(),
        run.dir.display()
    );
    let mut obs = Progress {
        bar: None,
        quiet: a.quiet,
    };
    let outcome = genlab::train::train(&run, &cfg, resume, &data, &device, &stop, &mut obs)?;
    let files = format!(
        "weights.safetensors, config.toml, metrics.jsonl, loss.png{}{}",
        if cfg.model.can_generate() {
            ", samples/"
        } else {
            ""
        },
        if cfg.model.can_encode() {
            ", reconstructions/"
        } else {
            ""
        },
    );
    Ok(report(&outcome, &run, &files))
}
