//! `genlab eval RUN`: the run's loss, -ELBO (VAEs), reconstruction MSE and PSNR on its test split.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;
use genlab::data::ImageSet;
use genlab::metrics::{EvalReport, evaluate};
use genlab::models::ImageModel;

use crate::common::{DataArgs, ModelFn, open_with_data};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder, or the word `sr` to score a super-resolution model (the shipped one for
    /// --scale, or --model RUN) by the standard protocol.
    run: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    sr: crate::eval_sr::SrArgs,
}

struct Eval<'a> {
    set: &'a ImageSet,
    seed: u64,
    device: &'a Device,
}

impl ModelFn<EvalReport> for Eval<'_> {
    fn call<M: ImageModel>(self, m: M) -> Result<EvalReport> {
        Ok(evaluate(&m, self.set, 256, self.seed, self.device)?)
    }
}

pub fn run(a: Args) -> Result<i32> {
    // `sr` is the keyword (a folder named sr is ./sr); an SR run folder is scored the same way.
    let keyword = a.run.as_os_str() == "sr";
    let sr_run = !keyword
        && genlab::checkpoint::run_kind(&a.run)
            .is_ok_and(|k| matches!(k.as_str(), "fsrcnn" | "espcn"));
    if keyword || sr_run {
        if sr_run && a.sr.model.is_some() {
            anyhow::bail!("give the SR run either as RUN or as --model, not both");
        }
        let model = if sr_run {
            Some(a.run.clone())
        } else {
            a.sr.model.clone()
        };
        return crate::eval_sr::run(model.as_deref(), a.sr, a.json, a.data.device);
    }
    if a.sr.model.is_some() || a.sr.scale.is_some() || !a.sr.sets.is_empty() || a.sr.per_image {
        anyhow::bail!("--model, --scale, --set and --per-image apply to `genlab eval sr` only");
    }
    let (device, run, data) = open_with_data(&a.run, a.data)?;
    let r = run.with_model(
        &device,
        Eval {
            set: &data.test,
            seed: run.config.train.seed,
            device: &device,
        },
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("run       {}", a.run.display());
        println!(
            "model     {} on {} test split ({} images)",
            run.config.model.kind(),
            data.name,
            r.images
        );
        println!("loss      {:.4} nats/image (training objective)", r.loss);
        if run.config.model.kind() == "vae" {
            println!(
                "-ELBO     {:.4} nats/image (recon {:.4} + KL {:.4})",
                r.neg_elbo, r.recon, r.kl
            );
        }
        println!("MSE       {:.6}", r.mse);
        println!("PSNR      {:.2} dB", r.psnr);
    }
    Ok(0)
}
