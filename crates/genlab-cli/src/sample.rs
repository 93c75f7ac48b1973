//! `genlab sample RUN`: decode z ~ N(0, I) into a grid of new images.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;
use genlab::image_io::save_grid;
use genlab::models::Generative;
use genlab::rng::{rng_for, standard_normal, stream};

use genlab::fsutil::Origin;

use crate::common::{DeviceArg, GenFn, OpenRun, claim_image, device, outputs_reading};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder.
    run: PathBuf,
    /// Number of images.
    #[arg(short, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    n: u32,
    /// Output image, format from its extension (.png, .jpg, .bmp; default RUN/sample.png).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Noise seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

struct Sample<'a> {
    n: usize,
    seed: u64,
    out: &'a std::path::Path,
    device: &'a Device,
}

impl GenFn<()> for Sample<'_> {
    fn call<G: Generative>(self, m: G) -> Result<()> {
        let z = standard_normal(
            &mut rng_for(self.seed, stream::SAMPLE, 1),
            self.n,
            m.noise_dim(),
            self.device,
        );
        let cols = (self.n as f64).sqrt().ceil() as usize;
        save_grid(m.generate(z), cols, self.out)?;
        Ok(())
    }
}

pub fn run(a: Args) -> Result<i32> {
    let device = device(a.device)?;
    let run = OpenRun::open(&a.run)?;
    let out = a.out.unwrap_or_else(|| a.run.join("sample.png"));
    claim_image(&mut outputs_reading(&run.dir), &out, Origin::Named)?;
    let image: usize = run.config.model.image().iter().product();
    genlab::memory::ensure(
        format!("-n {}", a.n),
        genlab::memory::inference_bytes(a.n as usize, image),
    )?;
    run.with_generator(
        &device,
        Sample {
            n: a.n as usize,
            seed: a.seed,
            out: &out,
            device: &device,
        },
    )?;
    println!("{}", out.display());
    Ok(0)
}
