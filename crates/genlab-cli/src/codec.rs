//! `genlab encode RUN IMAGE` / `genlab decode RUN CODE`: an autoencoder or VAE as a lossy image
//! codec; the code file's format is [`genlab::codec`]'s.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::prelude::*;
use genlab::fsutil::write_atomic;
use genlab::image_io::{load_image_tensor, save_image_tensor};
use genlab::metrics::psnr_from_mse;
use genlab::models::ImageModel;

use genlab::fsutil::{Origin, Outputs};

use crate::common::{DeviceArg, ModelFn, OpenRun, claim_image, device, outputs_reading};

#[derive(clap::Args)]
pub struct EncodeArgs {
    /// Run folder.
    run: PathBuf,
    /// Image file (PNG, JPEG or BMP; converted to the model's size and channels).
    image: PathBuf,
    /// Code file to write (default IMAGE with extension .glz; an existing file there is
    /// replaced only if it is a genlab code file).
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
    /// Image to write, format from its extension (default CODE with extension .png, which
    /// must not exist yet).
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

/// The code file `encode` writes: `-o` as named, or IMAGE.glz beside the image.
fn claim_code(outputs: &mut Outputs, image: &Path, out: Option<PathBuf>) -> Result<PathBuf> {
    let (path, origin) = match out {
        Some(o) => (o, Origin::Named),
        None => (image.with_extension("glz"), Origin::Derived),
    };
    outputs.claim(&path, origin, None)?;
    Ok(path)
}

pub fn encode(a: EncodeArgs) -> Result<i32> {
    let device = device(a.device)?;
    let run = OpenRun::open(&a.run)?;
    let mut outputs = outputs_reading(&run.dir);
    outputs.input(&a.image);
    let out = claim_code(&mut outputs, &a.image, a.out)?;
    let shape = run.config.model.image();
    let x = load_image_tensor(&a.image, shape, &device)?;
    let (z, psnr) = run.with_model(&device, Enc { x, device: &device })?;
    let bytes = genlab::codec::to_bytes(&z);
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

pub fn decode(a: DecodeArgs) -> Result<i32> {
    let device = device(a.device)?;
    let run = OpenRun::open(&a.run)?;
    let mut outputs = outputs_reading(&run.dir);
    outputs.input(&a.code);
    let out = match a.out {
        Some(o) => {
            claim_image(&mut outputs, &o, Origin::Named)?;
            o
        }
        None => {
            let o = a.code.with_extension("png");
            claim_image(&mut outputs, &o, Origin::Derived)?;
            o
        }
    };
    let z = genlab::codec::read(&a.code)?;
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
