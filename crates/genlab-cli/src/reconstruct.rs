//! `genlab reconstruct RUN`: test images (odd rows) above their reconstructions (even rows); a
//! conditional VAE reconstructs each given its label.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;
use genlab::data::ImageSet;
use genlab::data::{batch_labels, batch_tensor, one_hot};
use genlab::image_io::{interleave_rows, save_grid};
use genlab::metrics::psnr_from_mse;
use genlab::models::{Cvae, ImageModel};

use genlab::fsutil::Origin;

use crate::common::{DataArgs, ModelFn, claim_image, open_with_data, outputs_reading};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder.
    run: PathBuf,
    /// Number of test images.
    #[arg(short, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    n: u32,
    /// Output image, format from its extension (default RUN/reconstruction.png).
    #[arg(short, long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
}

struct Recon<'a> {
    set: &'a ImageSet,
    n: usize,
    out: &'a std::path::Path,
    device: &'a Device,
}

impl Recon<'_> {
    /// The first test images, `[n, c, h, w]`, and their indices.
    fn originals(&self) -> (Vec<usize>, Tensor<4>) {
        let idx: Vec<usize> = (0..self.n.min(self.set.len())).collect();
        let x = batch_tensor(self.set, &idx, self.device);
        (idx, x)
    }

    /// Saves originals above reconstructions; the PSNR over them.
    fn save(&self, x: Tensor<4>, y: Tensor<4>) -> Result<f64> {
        let mse = f64::from(
            (y.clone() - x.clone())
                .powi_scalar(2)
                .mean()
                .into_scalar::<f32>(),
        );
        let cols = (x.dims()[0] as f64).sqrt().ceil().max(1.0) as usize;
        save_grid(interleave_rows(x, y, cols), cols, self.out)?;
        Ok(psnr_from_mse(mse))
    }

    /// A conditional VAE reconstructs each test image given its label.
    fn given_labels(&self, m: &Cvae) -> Result<f64> {
        let (idx, x) = self.originals();
        let k = m.config.classes.len();
        let y = one_hot(&batch_labels(self.set, &idx, k)?, k, self.device);
        self.save(x.clone(), m.reconstruct(x, y))
    }
}

impl ModelFn<f64> for Recon<'_> {
    fn call<M: ImageModel>(self, m: M) -> Result<f64> {
        let (_, x) = self.originals();
        let y = m.decode_mean(m.encode_mean(x.clone()));
        self.save(x, y)
    }
}

pub fn run(a: Args) -> Result<i32> {
    let (device, run, data) = open_with_data(&a.run, a.data)?;
    let out = a.out.unwrap_or_else(|| a.run.join("reconstruction.png"));
    claim_image(&mut outputs_reading(&run.dir), &out, Origin::Named)?;
    genlab::memory::ensure(
        format!("-n {}", a.n),
        genlab::memory::inference_bytes(2 * a.n as usize, data.test.image_len()),
    )?;
    let r = Recon {
        set: &data.test,
        n: a.n as usize,
        out: &out,
        device: &device,
    };
    let psnr = match &run.config.model {
        genlab::ModelConfig::Cvae(c) => {
            let m = genlab::checkpoint::load_weights(c.init(&device), &run.dir.weights())?;
            r.given_labels(&m)?
        }
        _ => run.with_model(&device, r)?,
    };
    println!("{}  (PSNR {psnr:.2} dB over these images)", out.display());
    Ok(0)
}
