//! `genlab encode RUN IMAGE` / `genlab decode RUN CODE`: an autoencoder or VAE as a lossy image
//! codec; the code file's format is [`genlab::codec`]'s. A conditional VAE encodes an image given
//! its class (`--class`), which the code file keeps; `decode --class` renders the same code (the
//! image's style) in another class.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::prelude::*;
use genlab::ModelConfig;
use genlab::checkpoint::load_weights;
use genlab::data::one_hot;
use genlab::fsutil::write_atomic;
use genlab::image_io::{load_image_tensor, save_grid, save_image_tensor};
use genlab::metrics::psnr_from_mse;
use genlab::models::{Conditional, ImageModel};

use genlab::fsutil::{Origin, Outputs};

use crate::common::{
    DeviceArg, ModelFn, OpenRun, claim_image, class_index, device, outputs_reading, refuse_class,
};

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
    /// Conditional VAE: the image's class (name or index), kept in the code file.
    #[arg(long)]
    class: Option<String>,
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
    /// Conditional VAE: decode in this class (name or index) instead of the code's own: the
    /// same style in another class.
    #[arg(long)]
    class: Option<String>,
    /// Conditional VAE: decode in every class, a row of images (the analogy of the encoded
    /// image's style).
    #[arg(long, conflicts_with = "class")]
    every_class: bool,
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
        let psnr = psnr_of(m.decode_mean(z.clone()), self.x);
        let _ = self.device;
        Ok((values(z)?, psnr))
    }
}

/// The PSNR of a reconstruction `y` of `x`.
fn psnr_of(y: Tensor<4>, x: Tensor<4>) -> f64 {
    psnr_from_mse(f64::from(
        (y - x).powi_scalar(2).mean().into_scalar::<f32>(),
    ))
}

/// A code's values.
fn values(z: Tensor<2>) -> Result<Vec<f32>> {
    z.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

struct Dec<'a> {
    z: Vec<f32>,
    code: &'a Path,
    out: &'a Path,
    device: &'a Device,
}

impl Dec<'_> {
    /// The code as a `[1, latent]` tensor, checked against the model's latent width.
    fn latent(&self, width: usize) -> Result<Tensor<2>> {
        if self.z.len() != width {
            bail!(
                "{}: code has {} values but this run's model has a {width}-d latent",
                self.code.display(),
                self.z.len(),
            );
        }
        let n = self.z.len();
        Ok(Tensor::from_data(
            TensorData::new(self.z.clone(), [1, n]),
            self.device,
        ))
    }
}

impl ModelFn<()> for Dec<'_> {
    fn call<M: ImageModel>(self, m: M) -> Result<()> {
        let z = self.latent(m.latent_dim())?;
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
    refuse_class(&run, a.class.as_deref())?;
    let shape = run.config.model.image();
    let x = load_image_tensor(&a.image, shape, &device)?;
    let (z, psnr, label) = match &run.config.model {
        ModelConfig::Cvae(c) => {
            let Some(class) = a.class.as_deref() else {
                bail!(
                    "{}: a conditional VAE encodes an image given its class; name it with --class ({})",
                    a.run.display(),
                    c.classes.join(", ")
                );
            };
            let k = class_index(&c.classes, class)?;
            let m = load_weights(c.init(&device), &run.dir.weights())?;
            let y = one_hot(&[k], c.classes.len(), &device); // [1, classes]
            let (mu, _) = m.encode(x.clone(), y.clone()); // [1, latent]
            let psnr = psnr_of(m.decode(mu.clone(), y.clone()), x);
            // The code is the style: the posterior mean less the class's prior mean, which
            // decoding adds back for whichever class it draws.
            let style = mu - m.prior_mean(y);
            (values(style)?, psnr, Some(k as u32))
        }
        _ => {
            let (z, psnr) = run.with_model(&device, Enc { x, device: &device })?;
            (z, psnr, None)
        }
    };
    let bytes = genlab::codec::to_bytes(&z, label);
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
    refuse_class(&run, a.class.as_deref())?;
    if a.every_class && !matches!(run.config.model, ModelConfig::Cvae(_)) {
        bail!(
            "--every-class: a {} run's codes have no class to vary (a cvae run's do)",
            run.config.model.kind()
        );
    }
    let code = genlab::codec::read(&a.code)?;
    let dec = Dec {
        z: code.z,
        code: &a.code,
        out: &out,
        device: &device,
    };
    match &run.config.model {
        ModelConfig::Cvae(c) => {
            let names = &c.classes;
            let k = match (a.class.as_deref(), code.label) {
                (Some(class), _) => class_index(names, class)?,
                (None, _) if a.every_class => 0,
                (None, Some(l)) if (l as usize) < names.len() => l as usize,
                (None, Some(l)) => bail!(
                    "{}: the code's class {l} is not one of this run's {} classes",
                    a.code.display(),
                    names.len()
                ),
                (None, None) => bail!(
                    "{}: a code without a class; name the class to decode it in with --class ({})",
                    a.code.display(),
                    names.join(", ")
                ),
            };
            let m = load_weights(c.init(&device), &run.dir.weights())?;
            let style = dec.latent(m.config.latent)?; // [1, latent]
            if a.every_class {
                let all: Vec<usize> = (0..names.len()).collect();
                let z = style.repeat_dim(0, names.len()); // [classes, latent]
                save_grid(m.generate_given(z, &all), names.len(), &out)?;
            } else {
                save_image_tensor(m.generate_given(style, &[k]), &out)?;
            }
        }
        _ => {
            if code.label.is_some() {
                bail!(
                    "{}: a conditional VAE's code (it carries a class); decode it with the cvae run that wrote it",
                    a.code.display()
                );
            }
            run.with_model(&device, dec)?;
        }
    }
    println!("{}", out.display());
    Ok(0)
}
