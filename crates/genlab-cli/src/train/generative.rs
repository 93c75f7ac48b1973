//! `genlab train vae|ae|gan|vae-gan|classifier` (the conditional cvae and cgan are in
//! `conditional.rs`, on the same recipe flags and `train_new`): the families trained from a preset on an image
//! dataset. Each subcommand's flags are its own struct, so a flag that does not apply to a
//! family does not exist for it. A run builds the config from the preset and the flags,
//! validates it, trains with a progress bar and leaves a run folder.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use genlab::checkpoint::RunDir;
use genlab::models::VaeConfig;
use genlab::{ModelConfig, RunConfig};

use super::family::GenerativeFamily;
use super::flags::RunFlags;
use super::progress::{Progress, report, stop_flag};
use crate::common::{DeviceArg, device};

/// `--preset`, `--dataset`, `--data-dir`, `--shards`: the recipe a run starts from and the data it trains on.
#[derive(clap::Args)]
pub struct Recipe {
    /// Preset: a built-in name or a TOML file (each family's --help lists its presets).
    #[arg(long)]
    preset: Option<String>,
    /// Dataset: mnist-10k (embedded), mnist, fashion-mnist, cifar10, a folder of images (packed
    /// into the cache the first time), or a pack made by `genlab data pack`.
    #[arg(long)]
    dataset: Option<String>,
    /// For an image folder: the shape C,H,W every image is centre-cropped and resized to
    /// (default: the preset's, 3,32,32 for most).
    #[arg(long, value_name = "C,H,W", value_parser = crate::data::parse_shape)]
    image: Option<[usize; 3]>,
    /// Folder searched first for dataset files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Cut each batch into N shards, their gradients summed before the one update: the same
    /// training, holding one shard's activations at a time (families without batch norm: ae,
    /// vae).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
}

/// `--arch`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ArchArg {
    /// Fully connected layers.
    Mlp,
    /// Convolutions.
    Conv,
}

impl ArchArg {
    fn arch(self) -> genlab::nn::Arch {
        match self {
            ArchArg::Mlp => genlab::nn::Arch::Mlp,
            ArchArg::Conv => genlab::nn::Arch::Conv,
        }
    }
}

/// `--loss`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum GanLossArg {
    /// Cross-entropy D; G maximises log D(G(z)) (Goodfellow et al. 2014).
    NonSaturating,
    /// Hinge loss (Lim & Ye 2017; Miyato et al. 2018).
    Hinge,
}

/// `--arch`, `--beta`, `--latent`: the VAE's body, KL weight and latent size (vae, vae-gan).
#[derive(clap::Args)]
pub struct VaeFlags {
    /// Network body, replacing the preset's (without --preset, conv picks mnist-conv-vae).
    #[arg(long, value_enum)]
    arch: Option<ArchArg>,
    /// KL weight: 1 = VAE, > 1 = beta-VAE.
    #[arg(long)]
    beta: Option<f64>,
    /// Latent size.
    #[arg(long)]
    latent: Option<usize>,
}

impl VaeFlags {
    /// Whether `--arch conv` was given (it picks the family's conv preset when none is named).
    pub(super) fn conv(&self) -> bool {
        matches!(self.arch, Some(ArchArg::Conv))
    }

    fn apply(&self, m: &mut VaeConfig) {
        self.apply_to(&mut m.arch, &mut m.beta, &mut m.latent);
    }

    /// Sets the fields these flags name, in a VAE's config or a conditional VAE's.
    pub(super) fn apply_to(&self, arch: &mut genlab::nn::Arch, beta: &mut f64, latent: &mut usize) {
        if let Some(a) = self.arch {
            *arch = a.arch();
        }
        if let Some(b) = self.beta {
            *beta = b;
        }
        if let Some(l) = self.latent {
            *latent = l;
        }
    }
}

/// `--loss`, `--label-smoothing`: the adversarial game (gan, vae-gan).
#[derive(clap::Args)]
pub struct GanFlags {
    /// Adversarial loss.
    #[arg(long, value_enum)]
    loss: Option<GanLossArg>,
    /// One-sided label smoothing s (D's target for real images is 1 - s).
    #[arg(long)]
    label_smoothing: Option<f64>,
}

impl GanFlags {
    pub(super) fn apply(&self, loss: &mut genlab::loss::GanLoss, label_smoothing: &mut f64) {
        if let Some(l) = self.loss {
            *loss = match l {
                GanLossArg::NonSaturating => genlab::loss::GanLoss::NonSaturating,
                GanLossArg::Hinge => genlab::loss::GanLoss::Hinge,
            };
        }
        if let Some(s) = self.label_smoothing {
            *label_smoothing = s;
        }
    }
}

/// `genlab train vae`.
#[derive(clap::Args)]
#[command(mut_arg("preset", |a| a.help(
    "Preset: mnist-vae (the default; mnist-conv-vae with --arch conv), mnist-conv-vae, \
     fashion-vae, fashion-conv-vae, or a TOML file of a vae model"
)))]
pub struct VaeArgs {
    #[command(flatten)]
    recipe: Recipe,
    #[command(flatten)]
    vae: VaeFlags,
    #[command(flatten)]
    run: RunFlags,
}

/// `genlab train ae`.
#[derive(clap::Args)]
#[command(mut_arg("preset", |a| a.help(
    "Preset: mnist-ae (the default; mnist-conv-ae with --arch conv), mnist-conv-ae, or a TOML \
     file of an ae model"
)))]
pub struct AeArgs {
    #[command(flatten)]
    recipe: Recipe,
    /// Network body, replacing the preset's (without --preset, conv picks mnist-conv-ae).
    #[arg(long, value_enum)]
    arch: Option<ArchArg>,
    /// Code size.
    #[arg(long)]
    latent: Option<usize>,
    #[command(flatten)]
    run: RunFlags,
}

/// `genlab train gan`.
#[derive(clap::Args)]
#[command(mut_arg("preset", |a| a.help(
    "Preset: mnist-dcgan (the default), fashion-dcgan, cifar10-dcgan, or a TOML file of a \
     dcgan model"
)))]
pub struct GanArgs {
    #[command(flatten)]
    recipe: Recipe,
    /// Latent (noise) size.
    #[arg(long)]
    latent: Option<usize>,
    #[command(flatten)]
    gan: GanFlags,
    #[command(flatten)]
    run: RunFlags,
}

/// `genlab train vae-gan`.
#[derive(clap::Args)]
#[command(
    mut_arg("preset", |a| a.help(
        "Preset: mnist-vae-gan (the default), fashion-vae-gan, or a TOML file of a vae-gan model"
    )),
    mut_arg("arch", |a| a.help("The VAE's network body, replacing the preset's"))
)]
pub struct VaeGanArgs {
    #[command(flatten)]
    recipe: Recipe,
    #[command(flatten)]
    vae: VaeFlags,
    #[command(flatten)]
    gan: GanFlags,
    /// Weight lambda of the adversarial term.
    #[arg(long)]
    adversarial_weight: Option<f64>,
    /// How it trains: larsen (the paper's Algorithm 1: a loss per network) or
    /// joint (one encoder/decoder loss; genlab's first VAE-GAN).
    #[arg(long = "recipe", value_enum, value_name = "RECIPE")]
    vae_gan_recipe: Option<RecipeArg>,
    /// Where reconstructions are compared: features (the discriminator's, Larsen et al.) or
    /// pixels.
    #[arg(long, value_enum)]
    recon: Option<ReconArg>,
    /// The discriminator conv layer (1-based) whose output is the feature space.
    #[arg(long)]
    recon_layer: Option<usize>,
    /// larsen: weight gamma of the reconstruction term in the decoder's loss.
    #[arg(long)]
    gamma: Option<f64>,
    /// larsen: update every network at every step (the balance rule off; the presets' default).
    #[arg(long, conflicts_with = "balance")]
    no_balance: bool,
    /// larsen: the official code's balance rule (skip D's update while it wins by a margin, the
    /// decoder's while it loses by one).
    #[arg(long)]
    balance: bool,
    #[command(flatten)]
    run: RunFlags,
}

/// `--recipe`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum RecipeArg {
    /// Larsen et al.'s Algorithm 1 with the official code's balance rule.
    Larsen,
    /// One loss for the encoder and decoder.
    Joint,
}

/// `--recon`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ReconArg {
    /// The discriminator's features.
    Features,
    /// Pixels.
    Pixels,
}

/// `genlab train classifier`.
#[derive(clap::Args)]
#[command(mut_arg("preset", |a| a.help(
    "Preset: mnist-classifier (the default), fashion-classifier, or a TOML file of a \
     classifier model"
)))]
pub struct ClassifierArgs {
    #[command(flatten)]
    recipe: Recipe,
    #[command(flatten)]
    run: RunFlags,
}

impl VaeArgs {
    pub fn run(self) -> Result<i32> {
        let f = GenerativeFamily::Vae;
        let default = f.default_preset(self.vae.conv());
        train_new(f.name(), default, &self.recipe, &self.run, |model| {
            let ModelConfig::Vae(m) = model else {
                return false;
            };
            self.vae.apply(m);
            true
        })
    }
}

impl AeArgs {
    pub fn run(self) -> Result<i32> {
        let f = GenerativeFamily::Ae;
        let default = f.default_preset(matches!(self.arch, Some(ArchArg::Conv)));
        train_new(f.name(), default, &self.recipe, &self.run, |model| {
            let ModelConfig::Ae(m) = model else {
                return false;
            };
            if let Some(arch) = self.arch {
                m.arch = arch.arch();
            }
            if let Some(l) = self.latent {
                m.code = l;
            }
            true
        })
    }
}

impl GanArgs {
    pub fn run(self) -> Result<i32> {
        let f = GenerativeFamily::Dcgan;
        let default = f.default_preset(false);
        train_new(f.name(), default, &self.recipe, &self.run, |model| {
            let ModelConfig::Dcgan(m) = model else {
                return false;
            };
            if let Some(l) = self.latent {
                m.latent = l;
            }
            self.gan.apply(&mut m.loss, &mut m.label_smoothing);
            true
        })
    }
}

impl VaeGanArgs {
    pub fn run(self) -> Result<i32> {
        let f = GenerativeFamily::VaeGan;
        let default = f.default_preset(false);
        train_new(f.name(), default, &self.recipe, &self.run, |model| {
            let ModelConfig::VaeGan(m) = model else {
                return false;
            };
            self.vae.apply(&mut m.vae);
            self.gan.apply(&mut m.loss, &mut m.label_smoothing);
            if let Some(w) = self.adversarial_weight {
                m.adversarial_weight = w;
            }
            use genlab::models::vae_gan::{Recon, VaeGanRecipe};
            if let Some(r) = self.vae_gan_recipe {
                m.recipe = match r {
                    RecipeArg::Larsen => VaeGanRecipe::Larsen,
                    RecipeArg::Joint => VaeGanRecipe::Joint,
                };
            }
            if let Some(r) = self.recon {
                m.recon = match r {
                    ReconArg::Features => Recon::Features,
                    ReconArg::Pixels => Recon::Pixels,
                };
            }
            if let Some(l) = self.recon_layer {
                m.recon_layer = l;
            }
            if let Some(g) = self.gamma {
                m.gamma = g;
            }
            if self.no_balance {
                m.balance = false;
            }
            if self.balance {
                m.balance = true;
            }
            true
        })
    }
}

impl ClassifierArgs {
    pub fn run(self) -> Result<i32> {
        train_new(
            "classifier",
            "mnist-classifier",
            &self.recipe,
            &self.run,
            |model| matches!(model, ModelConfig::Classifier(_)),
        )
    }
}

/// Builds the validated config: the preset (`default` when none is named), the family's
/// flags (`apply` sets them and says whether the preset's model is of the family `kind`), then
/// the flags every family has.
fn build_config(
    kind: &str,
    default: &str,
    recipe: &Recipe,
    f: &RunFlags,
    apply: impl FnOnce(&mut ModelConfig) -> bool,
) -> Result<(RunConfig, Option<RunConfig>)> {
    let preset = recipe.preset.as_deref().unwrap_or(default);
    let mut cfg = RunConfig::preset(preset)?;
    if !apply(&mut cfg.model) {
        bail!(
            "preset {preset} is a {} model, not a {kind}",
            cfg.model.kind()
        );
    }
    let t = &mut cfg.train;
    if let Some(d) = &recipe.dataset {
        t.dataset = d.clone();
    }
    if let Some(s) = recipe.image {
        t.folder_image = s;
    }
    if let Some(v) = f.epochs {
        t.epochs = v;
    }
    if let Some(v) = f.batch_size {
        t.batch_size = v;
    }
    if let Some(v) = f.lr {
        t.lr = v;
    }
    if let Some(v) = f.seed {
        t.seed = v;
    }
    if let Some(v) = recipe.shards {
        t.shards = v;
    }
    // The flags as given are checked before --dry-run shrinks the run; its memory check is the
    // full run's (`planned`), done once the dataset's image size is known.
    t.validate()?;
    if recipe.image.is_some() && !matches!(t.dataset_spec()?, genlab::data::DatasetSpec::Folder(_))
    {
        bail!(
            "--image sizes the images of a folder; dataset {} has its own size",
            t.dataset
        );
    }
    cfg.validate_shards()?;
    let planned = f.dry_run.then(|| cfg.clone());
    let t = &mut cfg.train;
    if f.dry_run {
        t.epochs = 1;
        t.batch_size = t.batch_size.min(16);
        t.shards = t.shards.min(t.batch_size);
        t.max_train_images = t.batch_size;
        t.max_test_images = 32;
        t.grid_images = 16;
    }
    cfg.train.validate()?;
    Ok((cfg, planned))
}

/// A new run of a preset-based family (see [`build_config`]): into `--out`, or
/// `runs/KIND-DATASET[-dry-run]`, numbered if taken.
pub(super) fn train_new(
    kind: &str,
    default: &str,
    recipe: &Recipe,
    f: &RunFlags,
    apply: impl FnOnce(&mut ModelConfig) -> bool,
) -> Result<i32> {
    let device = device(f.device)?;
    let (cfg, planned) = build_config(kind, default, recipe, f, apply)?;
    let dataset = Path::new(&cfg.train.dataset)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let run = RunDir::new(f.out_or_default(cfg.model.kind(), &dataset));
    train(
        run,
        cfg,
        false,
        planned,
        recipe.data_dir.clone(),
        f.quiet,
        &device,
    )
}

/// `genlab train --resume RUN` of a preset-based family: continues from the last checkpoint,
/// up to `epochs` in all when given.
pub fn resume(
    dir: &Path,
    epochs: Option<usize>,
    shards: Option<usize>,
    data_dir: Option<PathBuf>,
    quiet: bool,
    device_arg: DeviceArg,
) -> Result<i32> {
    let device = device(device_arg)?;
    let run = RunDir::new(dir);
    let mut cfg = run.load_config()?;
    if let Some(e) = epochs {
        cfg.train.epochs = e;
    }
    // Shards do not change the training (`genlab::train::shard`): a run may continue with
    // another N, as it would on another number of devices.
    if let Some(n) = shards {
        cfg.train.shards = n;
    }
    if epochs.is_some() || shards.is_some() {
        cfg.train.validate()?;
        cfg.validate_shards()?;
    }
    train(run, cfg, true, None, data_dir, quiet, &device)
}

/// Loads the dataset, trains (or resumes) and reports how the run ended. `planned` is the run a
/// `--dry-run` stands in for, whose memory is checked.
fn train(
    run: RunDir,
    mut cfg: RunConfig,
    resume: bool,
    planned: Option<RunConfig>,
    data_dir: Option<PathBuf>,
    quiet: bool,
    device: &burn::prelude::Device,
) -> Result<i32> {
    let spec = cfg.train.dataset_spec()?;
    // A run inside its dataset folder would train on its own sample grids next time.
    if let genlab::data::DatasetSpec::Folder(f) = &spec {
        crate::common::outside_inputs(&run, [f])?;
    }
    let data = crate::data::load(&spec, &cfg.train.data_options(data_dir), quiet)?;
    if !resume {
        cfg.model.set_image(data.shape());
        // A conditional family draws the dataset's classes; a dataset without any is refused
        // by the training with a message that says so.
        if !data.classes.is_empty() {
            cfg.model.set_classes(&data.classes);
        }
        cfg.model.validate()?;
    }
    if let Some(mut p) = planned {
        p.model.set_image(data.shape());
        genlab::train::check_memory(&p, data.train.image_len())?;
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
    let mut obs = Progress { bar: None, quiet };
    let outcome = genlab::train::train(&run, &cfg, resume, &data, device, &stop, &mut obs)?;
    let files = format!(
        "weights.safetensors, config.toml, metrics.jsonl, loss.png{}{}",
        if cfg.model.can_generate() {
            ", samples/"
        } else {
            ""
        },
        // The conditional VAE reconstructs given the label (its epoch grids), though the
        // label-free commands (reconstruct, encode) do not take it.
        if cfg.model.can_encode() || matches!(cfg.model, ModelConfig::Cvae(_)) {
            ", reconstructions/"
        } else {
            ""
        },
    );
    Ok(report(&outcome, &run, &files))
}
