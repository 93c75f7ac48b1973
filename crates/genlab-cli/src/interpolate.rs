//! `genlab interpolate RUN`: encode two test images, decode evenly spaced points on the line
//! between their latent means, and save the row.

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::prelude::*;
use genlab::data::ImageSet;
use genlab::image_io::{batch_tensor, save_grid};
use genlab::models::ImageModel;

use crate::common::{DataArgs, ModelFn, check_output, open_with_data};

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

impl ModelFn<()> for Interp<'_> {
    fn call<M: ImageModel>(self, m: M) -> Result<()> {
        if !m.can_sample() {
            bail!(
                "this run is an autoencoder: its codes have no prior, so points between them need not decode to images; interpolate a vae run"
            );
        }
        let x = batch_tensor(self.set, &self.pair, self.device); // [2, c, h, w]
        let z = m.encode_mean(x); // [2, latent]
        let a = z.clone().narrow(0, 0, 1);
        let b = z.narrow(0, 1, 1);
        let rows: Vec<Tensor<2>> = (0..self.steps)
            .map(|i| {
                let t = i as f64 / (self.steps - 1) as f64;
                a.clone().mul_scalar(1.0 - t) + b.clone().mul_scalar(t)
            })
            .collect();
        save_grid(m.decode_mean(Tensor::cat(rows, 0)), self.steps, self.out)?;
        Ok(())
    }
}

pub fn run(a: Args) -> Result<i32> {
    let (device, run, data) = open_with_data(&a.run, a.data)?;
    let out = a.out.unwrap_or_else(|| a.run.join("interpolation.png"));
    check_output(&out)?;
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
