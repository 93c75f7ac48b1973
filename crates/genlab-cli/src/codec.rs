//! `genlab encode RUN IMAGE` / `genlab decode RUN CODE`: an autoencoder or VAE as a lossy image
//! codec. The code file is `GENLABZ1`, the latent size as u32 little-endian, then the latent
//! values as f32 little-endian (a VAE stores its posterior mean).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use genlab::fsutil::write_atomic;
use genlab::image_io::{load_image_tensor, save_image_tensor};
use genlab::metrics::psnr_from_mse;
use genlab::models::ImageModel;

use crate::common::{DeviceArg, ModelFn, OpenRun, check_output, device};

const MAGIC: &[u8; 8] = b"GENLABZ1";

#[derive(clap::Args)]
pub struct EncodeArgs {
    /// Run folder.
    run: PathBuf,
    /// Image file (PNG, JPEG or BMP; converted to the model's size and channels).
    image: PathBuf,
    /// Code file to write (default IMAGE with extension .glz).
    #[arg(short, long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

#[derive(clap::Args)]
pub struct DecodeArgs {
    /// Run folder.
    run: PathBuf,
    /// Code file written by `genlab encode`.
    code: PathBuf,
    /// PNG to write (default CODE with extension .png).
    #[arg(short, long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

struct Enc<'a> {
    x: Tensor<4>,
    device: &'a Device,
}

impl ModelFn<(Vec<f32>, f64)> for Enc<'_> {
    fn call<M: ImageModel>(self, m: M) -> Result<(Vec<f32>, f64)> {
        let z = m.encode_mean(self.x.clone()); // [1, latent]
        let y = m.decode_mean(z.clone());
        let mse = f64::from((y - self.x).powi_scalar(2).mean().into_scalar::<f32>());
        let v = z
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let _ = self.device;
        Ok((v, psnr_from_mse(mse)))
    }
}

struct Dec<'a> {
    z: Vec<f32>,
    code: &'a Path,
    out: &'a Path,
    device: &'a Device,
}

impl ModelFn<()> for Dec<'_> {
    fn call<M: ImageModel>(self, m: M) -> Result<()> {
        if self.z.len() != m.latent_dim() {
            bail!(
                "{}: code has {} values but this run's model has a {}-d latent",
                self.code.display(),
                self.z.len(),
                m.latent_dim()
            );
        }
        let n = self.z.len();
        let z = Tensor::<2>::from_data(TensorData::new(self.z, [1, n]), self.device);
        save_image_tensor(m.decode_mean(z), self.out)?;
        Ok(())
    }
}

pub fn encode(a: EncodeArgs) -> Result<i32> {
    let device = device(a.device)?;
    let run = OpenRun::open(&a.run)?;
    let out = a.out.unwrap_or_else(|| a.image.with_extension("glz"));
    check_output(&out)?;
    let shape = run.config.model.image();
    let x = load_image_tensor(&a.image, shape, &device)?;
    let (z, psnr) = run.with_model(&device, Enc { x, device: &device })?;
    let mut bytes = MAGIC.to_vec();
    bytes.extend((z.len() as u32).to_le_bytes());
    for v in &z {
        bytes.extend(v.to_le_bytes());
    }
    write_atomic(&out, &bytes)?;
    let raw = shape.iter().product::<usize>();
    println!(
        "{}: {} bytes ({} latent values) for a {}x{}x{} image of {raw} bytes: {:.1}x smaller; reconstruction PSNR {psnr:.2} dB",
        out.display(),
        bytes.len(),
        z.len(),
        shape[0],
        shape[1],
        shape[2],
        raw as f64 / bytes.len() as f64
    );
    Ok(0)
}

/// Reads a code file, checking its magic and length.
fn read_code(path: &Path) -> Result<Vec<f32>> {
    let b = std::fs::read(path).with_context(|| format!("{}: read", path.display()))?;
    if b.len() < 12 || &b[..8] != MAGIC {
        bail!(
            "{}: not a genlab code file (expected magic GENLABZ1)",
            path.display()
        );
    }
    let n = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
    if b.len() != 12 + 4 * n {
        bail!(
            "{}: header says {n} values ({} bytes) but the file has {} bytes",
            path.display(),
            12 + 4 * n,
            b.len()
        );
    }
    Ok(b[12..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

pub fn decode(a: DecodeArgs) -> Result<i32> {
    let device = device(a.device)?;
    let run = OpenRun::open(&a.run)?;
    let out = a.out.unwrap_or_else(|| a.code.with_extension("png"));
    check_output(&out)?;
    let z = read_code(&a.code)?;
    run.with_model(
        &device,
        Dec {
            z,
            code: &a.code,
            out: &out,
            device: &device,
        },
    )?;
    println!("{}", out.display());
    Ok(0)
}
