//! `genlab train`: one typed subcommand per model family, each with only the flags that apply
//! to it (a flag that does not apply does not exist there, and clap refuses it), and
//! `genlab train --resume RUN`, which names no family: the run folder says what it is.
//!
//! - `generative.rs`: vae, ae, gan, vae-gan and classifier, trained from a preset on an image
//!   dataset.
//! - `conditional.rs`: cvae and cgan, on `generative.rs`'s recipe flags.
//! - `sr.rs`: super-resolution networks, trained on a folder of photos.
//! - `family.rs`: [`GenerativeFamily`], the generative families' names and default presets
//!   (`genlab compare` uses it too).
//! - `flags.rs`: the flags every family has; `progress.rs`: what every run shares while it
//!   trains (progress bar, Ctrl-C, the closing line).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::common::DeviceArg;

mod conditional;
mod family;
mod flags;
mod generative;
pub mod progress;
mod sr;

pub use family::GenerativeFamily;

/// `genlab train FAMILY [FLAGS]`, or `genlab train --resume RUN`.
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    arg_required_else_help = true
)]
pub struct Args {
    #[command(subcommand)]
    family: Option<Family>,
    #[command(flatten)]
    resume: Resume,
}

/// The model families, one subcommand each.
#[derive(clap::Subcommand)]
enum Family {
    /// Variational autoencoder (beta-VAE with --beta).
    Vae(generative::VaeArgs),
    /// Plain autoencoder.
    Ae(generative::AeArgs),
    /// DCGAN (generator + discriminator).
    #[command(alias = "dcgan")]
    Gan(generative::GanArgs),
    /// VAE-GAN: a VAE whose decoder is also a GAN generator.
    VaeGan(generative::VaeGanArgs),
    /// The feature classifier of `genlab eval`'s Fréchet distance and precision/recall.
    Classifier(generative::ClassifierArgs),
    /// Conditional VAE: draws an image of a chosen class (needs a labelled dataset).
    Cvae(conditional::CvaeArgs),
    /// Conditional DCGAN: draws an image of a chosen class (needs a labelled dataset).
    Cgan(conditional::CganArgs),
    /// Super-resolution network (FSRCNN by default; --net espcn) trained on photos.
    Sr(sr::Args),
}

/// The flags of `genlab train --resume RUN`: only what may change when a run continues.
#[derive(clap::Args)]
struct Resume {
    /// Continue the run in this folder from its last checkpoint (same data order, noise and
    /// optimizer state); the folder says which family it is.
    #[arg(long, value_name = "RUN", required = true)]
    resume: Option<PathBuf>,
    /// Train until this many epochs in all (to extend a finished run).
    #[arg(long)]
    epochs: Option<usize>,
    /// Continue with the batches cut into N shards (the same training at any N: ae, vae).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// Folder searched first for the run's dataset files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Where tensors live.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

/// Whether the run folder holds a super-resolution network rather than an image-family model.
/// The one place the CLI tells the two apart; a folder whose kind cannot be read counts as an
/// image-family run, whose loading then reports what is wrong with it.
fn is_sr_run(dir: &Path) -> bool {
    genlab::checkpoint::run_task(dir).is_ok_and(|t| t == genlab::models::Task::SuperResolution)
}

pub fn run(a: Args) -> Result<i32> {
    match a.family {
        Some(Family::Vae(f)) => f.run(),
        Some(Family::Ae(f)) => f.run(),
        Some(Family::Gan(f)) => f.run(),
        Some(Family::VaeGan(f)) => f.run(),
        Some(Family::Classifier(f)) => f.run(),
        Some(Family::Cvae(f)) => f.run(),
        Some(Family::Cgan(f)) => f.run(),
        Some(Family::Sr(f)) => f.run(),
        None => {
            let r = a.resume;
            let dir = r
                .resume
                .expect("clap requires --resume when no family is named");
            if is_sr_run(&dir) {
                if let Some(n) = r.shards.filter(|&n| n != 1) {
                    bail!(
                        "--shards {n}: super-resolution trains unsharded (--shards is for ae and vae)"
                    );
                }
                sr::resume(&dir, r.epochs, r.quiet, r.device)
            } else {
                generative::resume(&dir, r.epochs, r.shards, r.data_dir, r.quiet, r.device)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser, ValueEnum};

    use super::*;

    #[derive(Parser)]
    struct Train {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        Train::command().debug_assert();
    }

    /// `genlab compare --families` and `genlab train` name the generative families alike.
    #[test]
    fn every_generative_family_is_a_train_subcommand() {
        let cmd = Train::command();
        for f in GenerativeFamily::value_variants() {
            let name = f.name();
            let sub = cmd
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("no `genlab train {name}`"));
            assert!(sub.get_arguments().any(|a| a.get_id() == "preset"));
        }
    }
}
