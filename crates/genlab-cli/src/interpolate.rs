//! `genlab interpolate RUN`: decode evenly spaced points on a line in latent space and save the
//! row. For a VAE the line joins the latent means of two test images; for a GAN (no encoder) it
//! joins two noise vectors drawn with `--seed`. A conditional run (cvae, cgan) draws that noise
//! line in the class `--class` names, or one row per class without it: the same path through
//! style space in every class.

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::prelude::*;
use genlab::data::ImageSet;
use genlab::data::batch_tensor;
use genlab::image_io::save_grid;
use genlab::models::{Conditional, Generative, ImageModel, class_sheet};
use genlab::rng::{rng_for, standard_normal, stream};

use genlab::fsutil::Origin;

use crate::common::{
    CondFn, DataArgs, GenFn, ModelFn, OpenRun, claim_image, class_index, dataset, device,
    outputs_reading, refuse_class,
};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder.
    run: PathBuf,
    /// Index of the first test image.
    #[arg(long, default_value_t = 0)]
    from: usize,
    /// Index of the second test image.
    #[arg(long, default_value_t = 1)]
    to: usize,
    /// Images in the row, ends included.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..=256))]
    steps: u32,
    /// Output PNG (default RUN/interpolation.png).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// GAN and conditional runs: seed of the two endpoint noise vectors.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Conditional runs: interpolate within this class (name or index; default: every class,
    /// a row each).
    #[arg(long)]
    class: Option<String>,
    #[command(flatten)]
    data: DataArgs,
}

struct Interp<'a> {
    set: &'a ImageSet,
    pair: [usize; 2],
    steps: usize,
    out: &'a std::path::Path,
    device: &'a Device,
}

/// `steps` points from `ends[0]` to `ends[1]` (`[2, latent] -> [steps, latent]`).
fn line(ends: Tensor<2>, steps: usize) -> Tensor<2> {
    let a = ends.clone().narrow(0, 0, 1);
    let b = ends.narrow(0, 1, 1);
    let rows: Vec<Tensor<2>> = (0..steps)
        .map(|i| {
            let t = i as f64 / (steps - 1) as f64;
            a.clone().mul_scalar(1.0 - t) + b.clone().mul_scalar(t)
        })
        .collect();
    Tensor::cat(rows, 0)
}

impl ModelFn<()> for Interp<'_> {
    fn call<M: ImageModel>(self, m: M) -> Result<()> {
        if !m.can_sample() {
            bail!(
                "this run is an autoencoder: its codes have no prior, so points between them need not decode to images; interpolate a vae or gan run"
            );
        }
        let x = batch_tensor(self.set, &self.pair, self.device); // [2, c, h, w]
        let z = line(m.encode_mean(x), self.steps); // [steps, latent]
        save_grid(m.decode_mean(z), self.steps, self.out)?;
        Ok(())
    }
}

struct NoiseInterp<'a> {
    seed: u64,
    steps: usize,
    class: Option<&'a str>,
    out: &'a std::path::Path,
    device: &'a Device,
}

impl NoiseInterp<'_> {
    /// The line between two noise vectors drawn from `seed` (`[steps, noise]`).
    fn noise_line(&self, dim: usize) -> Tensor<2> {
        let ends = standard_normal(
            &mut rng_for(self.seed, stream::SAMPLE, 2),
            2,
            dim,
            self.device,
        );
        line(ends, self.steps)
    }
}

impl GenFn<()> for NoiseInterp<'_> {
    fn call<G: Generative>(self, m: G) -> Result<()> {
        let z = self.noise_line(m.noise_dim());
        save_grid(m.generate(z), self.steps, self.out)?;
        Ok(())
    }
}

impl CondFn<()> for NoiseInterp<'_> {
    fn call<G: Conditional>(self, m: G) -> Result<()> {
        let rows: Vec<usize> = match self.class {
            Some(c) => vec![class_index(m.class_names(), c)?],
            None => (0..m.class_names().len()).collect(),
        };
        let z = self.noise_line(m.noise_dim());
        save_grid(class_sheet(&m, z, Some(&rows)), self.steps, self.out)?;
        Ok(())
    }
}

pub fn run(a: Args) -> Result<i32> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.run.join("interpolation.png"));
    let run = OpenRun::open(&a.run)?;
    let conditional = run.config.model.is_conditional();
    refuse_class(&run, a.class.as_deref())?;
    claim_image(&mut outputs_reading(&run.dir), &out, Origin::Named)?;
    if !run.config.model.can_encode() {
        let device = device(a.data.device)?;
        let noise = NoiseInterp {
            seed: a.seed,
            steps: a.steps as usize,
            class: a.class.as_deref(),
            out: &out,
            device: &device,
        };
        if conditional {
            run.with_conditional(&device, noise)?;
        } else {
            run.with_generator(&device, noise)?;
        }
        println!("{}", out.display());
        return Ok(0);
    }
    let device = device(a.data.device)?;
    let data = dataset(&run, a.data.data_dir)?;
    for i in [a.from, a.to] {
        if i >= data.test.len() {
            bail!(
                "test image index {i} out of range: the test split has {} images",
                data.test.len()
            );
        }
    }
    run.with_model(
        &device,
        Interp {
            set: &data.test,
            pair: [a.from, a.to],
            steps: a.steps as usize,
            out: &out,
            device: &device,
        },
    )?;
    println!("{}", out.display());
    Ok(0)
}
