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
    /// Run folder.
    run: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
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
