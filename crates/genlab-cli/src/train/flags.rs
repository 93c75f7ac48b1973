//! The flags every `genlab train` family has: the schedule, the run folder and where it runs.

use std::path::PathBuf;

use crate::common::DeviceArg;

/// `--epochs`, `--batch-size`, `--lr`, `--seed`, `--out`, `--dry-run`, `-q`, `--device`.
#[derive(clap::Args)]
pub struct RunFlags {
    /// Training epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per optimizer step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of weight init, data order and noise.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run folder to create (default runs/KIND-DATASET, numbered if taken).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// One tiny epoch on a few images (for CI and smoke tests).
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Where tensors live.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

impl RunFlags {
    /// `--out`, or the default run folder `runs/KIND-WHAT` (`-dry-run` appended for a dry
    /// run), numbered if taken. `what` is the dataset, or `xSCALE` for super-resolution.
    pub fn out_or_default(&self, kind: &str, what: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let dry = if self.dry_run { "-dry-run" } else { "" };
            crate::common::first_free_run_dir(&format!("{kind}-{what}{dry}"))
        })
    }
}
