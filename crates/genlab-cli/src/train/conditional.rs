//! `genlab train cvae|cgan`: the class-conditional families, trained from a preset on a
//! labelled dataset with the recipe and run flags, and the `train_new`, of `generative.rs`.

use anyhow::Result;
use genlab::ModelConfig;
use genlab::models::Conditioning;

use super::family::GenerativeFamily;
use super::flags::RunFlags;
use super::generative::{GanFlags, Recipe, VaeFlags, train_new};

/// `genlab train cvae`.
#[derive(clap::Args)]
#[command(mut_arg("preset", |a| a.help(
    "Preset: mnist-cvae (the default; mnist-conv-cvae with --arch conv), mnist-conv-cvae, \
     fashion-cvae, cifar10-cvae, the conditional VAE-GANs mnist-cvae-gan and fashion-cvae-gan \
     (a cvae with a [model.adversarial] table), or a TOML file of a cvae model"
)))]
pub struct CvaeArgs {
    #[command(flatten)]
    recipe: Recipe,
    #[command(flatten)]
    vae: VaeFlags,
    #[command(flatten)]
    run: RunFlags,
}

/// `genlab train cgan`.
#[derive(clap::Args)]
#[command(mut_arg("preset", |a| a.help(
    "Preset: mnist-cgan (the default), fashion-cgan, cifar10-cgan, or a TOML file of a cgan model"
)))]
pub struct CganArgs {
    #[command(flatten)]
    recipe: Recipe,
    /// Latent (noise) size.
    #[arg(long)]
    latent: Option<usize>,
    /// How the discriminator is told the class: projection (Miyato & Koyama; the default) or
    /// concat (the one-hot label as extra input channels).
    #[arg(long, value_enum)]
    discriminator: Option<DiscArg>,
    #[command(flatten)]
    gan: GanFlags,
    #[command(flatten)]
    run: RunFlags,
}

/// `--discriminator`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DiscArg {
    Projection,
    Concat,
}

impl CvaeArgs {
    pub fn run(self) -> Result<i32> {
        let f = GenerativeFamily::Cvae;
        let conv = self.vae.conv();
        train_new(
            f.name(),
            f.default_preset(conv),
            &self.recipe,
            &self.run,
            |model| {
                let ModelConfig::Cvae(m) = model else {
                    return false;
                };
                self.vae.apply_to(&mut m.arch, &mut m.beta, &mut m.latent);
                true
            },
        )
    }
}

impl CganArgs {
    pub fn run(self) -> Result<i32> {
        let f = GenerativeFamily::Cgan;
        train_new(
            f.name(),
            f.default_preset(false),
            &self.recipe,
            &self.run,
            |model| {
                let ModelConfig::Cgan(m) = model else {
                    return false;
                };
                if let Some(l) = self.latent {
                    m.latent = l;
                }
                if let Some(d) = self.discriminator {
                    m.discriminator = match d {
                        DiscArg::Projection => Conditioning::Projection,
                        DiscArg::Concat => Conditioning::Concat,
                    };
                }
                self.gan.apply(&mut m.loss, &mut m.label_smoothing);
                true
            },
        )
    }
}
