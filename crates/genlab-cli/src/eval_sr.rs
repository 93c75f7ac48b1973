//! `genlab eval sr [--model RUN] [--scale S] [--set DIR]...`: the super-resolution literature's
//! protocol: HR mod-cropped to the scale, the LR given beside it (`*_LR`) or MATLAB-bicubic made,
//! Y channel (BT.601), `scale` pixels shaved, PSNR and SSIM, bicubic alongside.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use genlab::models::{SrNet, SrNetFn};
use genlab::sr::eval::{SrScore, ValPair, load_eval_folder, score};

use crate::common::{DeviceArg, device};
use crate::sr_model::SrModel;

/// The flags of `genlab eval sr` (shared with `genlab eval RUN` on an SR run).
#[derive(clap::Args)]
pub struct SrArgs {
    /// sr: evaluation folder (repeatable); default: the first `sr/Set5/xS` and `sr/Set14/xS`
    /// (or `Set5/xS`, `Set14/xS`) found under --data-dir, $GENLAB_DATA, ~/.cache/genlab or
    /// /usr/share/datasets.
    #[arg(long = "set")]
    pub sets: Vec<PathBuf>,
    /// sr: upscaling factor of the shipped model (default 2).
    #[arg(long)]
    pub scale: Option<usize>,
    /// sr: a `genlab train sr` run folder instead of the shipped model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// sr: print every image's scores.
    #[arg(long)]
    pub per_image: bool,
}

struct Score<'a> {
    pairs: &'a [ValPair],
    device: &'a Device,
}

impl SrNetFn<Vec<SrScore>> for Score<'_> {
    fn call<N: SrNet>(self, net: N) -> genlab::Result<Vec<SrScore>> {
        score(&net, self.pairs, self.device)
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The standard test sets at `scale` in the dataset folders: for each of Set5 and Set14, the
/// first `ROOT/sr/SET/xS` or `ROOT/SET/xS` that exists.
fn default_sets(scale: usize, data_dir: Option<&Path>) -> Vec<PathBuf> {
    let roots = genlab::data::search_roots("sr", data_dir);
    ["Set5", "Set14"]
        .iter()
        .filter_map(|set| {
            roots
                .iter()
                .map(|r| r.join(set).join(format!("x{scale}")))
                .find(|p| p.is_dir())
        })
        .collect()
}

pub fn run(
    model: Option<&Path>,
    a: SrArgs,
    json: bool,
    dev: DeviceArg,
    data_dir: Option<&Path>,
) -> Result<i32> {
    let model = SrModel::open(model, a.scale)?;
    let scale = model.config.model.scale();
    let sets = if a.sets.is_empty() {
        let d = default_sets(scale, data_dir);
        if d.is_empty() {
            bail!(
                "no --set given and no sr/Set5/x{scale} under --data-dir, $GENLAB_DATA, ~/.cache/genlab or /usr/share/datasets; name an evaluation folder with --set"
            );
        }
        d
    } else {
        a.sets.clone()
    };
    let device = device(dev)?;
    let mut report = Vec::new();
    if !json {
        println!(
            "model {} ({} x{scale})",
            model.name,
            model.config.model.kind()
        );
        println!(
            "{:<28} {:>6} {:>12} {:>8} {:>14} {:>8}",
            "set", "images", "Y-PSNR dB", "SSIM", "bicubic dB", "SSIM"
        );
    }
    for set in &sets {
        let pairs = load_eval_folder(set, scale, 0)
            .with_context(|| format!("reading evaluation folder {}", set.display()))?;
        let scores = model.with_net(
            &device,
            Score {
                pairs: &pairs,
                device: &device,
            },
        )?;
        let row = serde_json::json!({
            "set": set.display().to_string(),
            "scale": scale,
            "images": scores.len(),
            "psnr": mean(scores.iter().map(|s| s.psnr)),
            "ssim": mean(scores.iter().map(|s| s.ssim)),
            "bicubic_psnr": mean(scores.iter().map(|s| s.bicubic_psnr)),
            "bicubic_ssim": mean(scores.iter().map(|s| s.bicubic_ssim)),
            "per_image": scores,
        });
        if !json {
            if a.per_image {
                for s in &scores {
                    println!(
                        "  {:<26} {:>6} {:>12.3} {:>8.4} {:>14.3} {:>8.4}",
                        s.name, "", s.psnr, s.ssim, s.bicubic_psnr, s.bicubic_ssim
                    );
                }
            }
            println!(
                "{:<28} {:>6} {:>12.3} {:>8.4} {:>14.3} {:>8.4}",
                set.display().to_string(),
                scores.len(),
                row["psnr"].as_f64().unwrap_or(f64::NAN),
                row["ssim"].as_f64().unwrap_or(f64::NAN),
                row["bicubic_psnr"].as_f64().unwrap_or(f64::NAN),
                row["bicubic_ssim"].as_f64().unwrap_or(f64::NAN),
            );
        }
        report.push(row);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": model.name, "kind": model.config.model.kind(), "scale": scale, "sets": report
            }))?
        );
    }
    Ok(0)
}
