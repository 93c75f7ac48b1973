//! `genlab upscale INPUT -o OUTPUT [--scale S] [--model RUN]`: super-resolve a picture, or every
//! picture of a folder, with a trained network (the shipped FSRCNN for the scale by default).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use genlab::data::image_dir::image_files;
use genlab::models::{SrNet, SrNetFn};
use genlab::sr::Picture;
use genlab::sr::upscale::{DEFAULT_TILE, upscale};
use indicatif::{ProgressBar, ProgressStyle};

use genlab::fsutil::{Origin, Outputs};

use crate::common::{DeviceArg, claim_image, device};
use crate::sr_model::SrModel;

#[derive(clap::Args)]
pub struct Args {
    /// A PNG/JPEG/BMP image, or a folder of them.
    input: PathBuf,
    /// Output image (format from its extension: .png, .jpg/.jpeg, .bmp), or a folder for a
    /// folder input (created if its parent exists; images are written as NAME.png).
    #[arg(long, short)]
    output: PathBuf,
    /// Upscaling factor, for the shipped model (2, 3 or 4; default 2). With --model it must
    /// match the model's.
    #[arg(long)]
    scale: Option<usize>,
    /// A super-resolution run folder (`genlab train sr`) instead of the shipped model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Low-resolution tile side (memory per tile grows with its square).
    #[arg(long, default_value_t = DEFAULT_TILE as u64, value_parser = clap::value_parser!(u64).range(16..))]
    tile: u64,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

struct Job<'a> {
    jobs: &'a [(PathBuf, PathBuf)],
    tile: usize,
    quiet: bool,
    device: &'a Device,
}

impl SrNetFn<()> for Job<'_> {
    fn call<N: SrNet>(self, net: N) -> genlab::Result<()> {
        for (inp, out) in self.jobs {
            let pic = Picture::read(inp)?;
            let big = (pic.h / self.tile + 1) * (pic.w / self.tile + 1) > 4;
            let bar = (!self.quiet && big).then(|| {
                let b = ProgressBar::new(0);
                b.set_style(
                    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tiles, eta {eta}")
                        .expect("static template")
                        .progress_chars("=> "),
                );
                b.set_message(inp.display().to_string());
                b
            });
            let up = upscale(&net, &pic, self.tile, self.device, &mut |done, total| {
                if let Some(b) = &bar {
                    b.set_length(total as u64);
                    b.set_position(done as u64);
                }
            })
            .map_err(|e| match e {
                genlab::Error::Shape { expected, got, .. } => genlab::Error::Image {
                    path: inp.clone(),
                    msg: format!("{got} image; expected {expected}"),
                },
                e => e,
            })?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            up.save(out)?;
            if !self.quiet {
                eprintln!(
                    "{} ({}x{}) -> {} ({}x{})",
                    inp.display(),
                    pic.w,
                    pic.h,
                    out.display(),
                    up.w,
                    up.h
                );
            }
        }
        Ok(())
    }
}

pub fn run(a: Args) -> Result<i32> {
    let model = SrModel::open(a.model.as_deref(), a.scale)?;
    // Pair inputs with outputs, and check every output against the rules (never an input, never
    // inside the input folder, never two outputs to one name) before any work.
    let mut outputs = Outputs::new();
    outputs.input(&a.input);
    if let Some(m) = &a.model {
        genlab::RunDir::new(m).protect(&mut outputs);
    }
    let jobs: Vec<(PathBuf, PathBuf)> = if a.input.is_dir() {
        if a.output.exists() && !a.output.is_dir() {
            bail!(
                "{}: the input is a folder, so the output must be a folder",
                a.output.display()
            );
        }
        if let Some(parent) = a.output.parent()
            && !parent.as_os_str().is_empty()
            && !parent.is_dir()
        {
            bail!(
                "{}: output folder {} does not exist",
                a.output.display(),
                parent.display()
            );
        }
        // Sub-folders are kept: `IN/a/x.jpg` becomes `OUT/a/x.png`.
        let mut jobs = Vec::new();
        for f in image_files(&a.input)? {
            let rel = f.strip_prefix(&a.input).unwrap_or(&f).to_path_buf();
            let out = a.output.join(rel).with_extension("png");
            outputs.claim_new_tree(&out, Origin::Named, Some(&f))?;
            jobs.push((f, out));
        }
        jobs
    } else {
        if !a.input.is_file() {
            bail!("{}: no such image file or folder", a.input.display());
        }
        claim_image(&mut outputs, &a.output, Origin::Named)?;
        vec![(a.input.clone(), a.output.clone())]
    };
    let device = device(a.device)?;
    if a.input.is_dir() {
        for (_, out) in &jobs {
            let dir = out.parent().unwrap_or(&a.output);
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    model.with_net(
        &device,
        Job {
            jobs: &jobs,
            tile: a.tile as usize,
            quiet: a.quiet,
            device: &device,
        },
    )?;
    Ok(0)
}
