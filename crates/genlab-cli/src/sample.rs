//! `genlab sample RUN`: decode z ~ N(0, I) into a grid of new images. For a conditional run
//! (cvae, cgan): `--class NAME|INDEX` draws `-n` images of that class; without it, a sheet with
//! one row per class and the same noise in every row (column `j` is one style in every class).
//! `-o DIR/` writes each image as its own PNG instead of a grid.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use genlab::image_io::{save_grid, save_image_tensor};
use genlab::models::{Conditional, Generative, class_sheet};
use genlab::rng::{rng_for, standard_normal, stream};

use genlab::fsutil::Origin;

use crate::common::{
    CondFn, DeviceArg, GenFn, OpenRun, claim_image, class_index, device, outputs_reading,
    refuse_class,
};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder.
    run: PathBuf,
    /// Number of images (conditional runs without --class: columns = n / classes, rounded up).
    #[arg(short, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    n: u32,
    /// Conditional runs: the class to draw, by name (`sneaker`) or index (`7`).
    #[arg(long)]
    class: Option<String>,
    /// Output image, format from its extension (.png, .jpg, .bmp; default RUN/sample.png); a
    /// folder (ending in `/`) gets each image as its own PNG (`sample-0001.png`, or
    /// `CLASS/0001.png` for a conditional run) for other tools, or `genlab eval --samples`, to
    /// score.
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
    class: Option<&'a str>,
    seed: u64,
    device: &'a Device,
}

/// What was drawn: the images in grid order and the grid's columns.
struct Drawn {
    images: Tensor<4>,
    cols: usize,
}

impl Sample<'_> {
    fn noise(&self, rows: usize, dim: usize) -> Tensor<2> {
        standard_normal(
            &mut rng_for(self.seed, stream::SAMPLE, 1),
            rows,
            dim,
            self.device,
        )
    }
}

impl GenFn<Drawn> for Sample<'_> {
    fn call<G: Generative>(self, m: G) -> Result<Drawn> {
        let z = self.noise(self.n, m.noise_dim());
        Ok(Drawn {
            images: m.generate(z),
            cols: (self.n as f64).sqrt().ceil() as usize,
        })
    }
}

impl CondFn<Drawn> for Sample<'_> {
    fn call<G: Conditional>(self, m: G) -> Result<Drawn> {
        let names = m.class_names();
        Ok(match self.class {
            Some(c) => {
                let k = class_index(names, c)?;
                let z = self.noise(self.n, m.noise_dim());
                Drawn {
                    images: m.generate_given(z, &vec![k; self.n]),
                    cols: (self.n as f64).sqrt().ceil() as usize,
                }
            }
            None => {
                let cols = self.n.div_ceil(names.len());
                let z = self.noise(cols, m.noise_dim());
                Drawn {
                    images: class_sheet(&m, z, None),
                    cols,
                }
            }
        })
    }
}

/// Whether `-o` names a folder of single images: it ends in a path separator, or is a folder.
fn is_folder(out: &Path) -> bool {
    out.as_os_str()
        .to_string_lossy()
        .ends_with(std::path::MAIN_SEPARATOR)
        || out.is_dir()
}

/// The file names of `n` single images in a folder: `sample-0001.png`, or `CLASS/0001.png`
/// numbered within each class (one sub-folder per class, as genlab reads labelled folders). A
/// class name that is not a plain file name is replaced by its index, so no name can leave the
/// folder.
fn single_names(n: usize, classes: &[String], names_of_run: &[String]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashMap::new();
    (0..n)
        .map(|i| match classes.get(i) {
            Some(c) => {
                let k = seen.entry(c.clone()).or_insert(0usize);
                *k += 1;
                let plain = !c.is_empty()
                    && c.chars()
                        .all(|ch| ch.is_alphanumeric() || "-_ .".contains(ch))
                    && !c.starts_with('.');
                let stem = if plain {
                    c.clone()
                } else {
                    let idx = names_of_run.iter().position(|x| x == c).unwrap_or(0);
                    format!("class{idx}")
                };
                PathBuf::from(stem).join(format!("{:04}.png", *k))
            }
            None => PathBuf::from(format!("sample-{:04}.png", i + 1)),
        })
        .collect()
}

pub fn run(a: Args) -> Result<i32> {
    let device = device(a.device)?;
    let run = OpenRun::open(&a.run)?;
    let conditional = run.config.model.is_conditional();
    refuse_class(&run, a.class.as_deref())?;
    let out = a.out.unwrap_or_else(|| a.run.join("sample.png"));
    let image: usize = run.config.model.image().iter().product();
    // A sheet rounds -n up to whole rows of classes.
    let names = run.config.model.classes();
    let n = if conditional && a.class.is_none() {
        (a.n as usize).div_ceil(names.len()) * names.len()
    } else {
        a.n as usize
    };
    genlab::memory::ensure(
        format!("-n {}", a.n),
        genlab::memory::inference_bytes(n, image),
    )?;
    // Every output is claimed before anything is drawn or written.
    let mut outputs = outputs_reading(&run.dir);
    let files = if is_folder(&out) {
        let classes: Vec<String> = match a.class.as_deref() {
            Some(c) => vec![names[class_index(names, c)?].clone(); n],
            None => names
                .iter()
                .flat_map(|c| std::iter::repeat_n(c.clone(), n / names.len().max(1)))
                .collect(),
        };
        let files: Vec<PathBuf> = single_names(n, &classes, names)
            .into_iter()
            .map(|f| out.join(f))
            .collect();
        for f in &files {
            outputs.claim_new_tree(f, Origin::Named, None)?;
        }
        Some(files)
    } else {
        claim_image(&mut outputs, &out, Origin::Named)?;
        None
    };
    let s = Sample {
        n: a.n as usize,
        class: a.class.as_deref(),
        seed: a.seed,
        device: &device,
    };
    let drawn = if conditional {
        run.with_conditional(&device, s)?
            .expect("a conditional run's model is conditional")
    } else {
        run.with_generator(&device, s)?
    };
    match files {
        Some(files) => {
            for dir in files.iter().filter_map(|f| f.parent()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            for (i, f) in files.iter().enumerate() {
                save_image_tensor(drawn.images.clone().narrow(0, i, 1), f)?;
            }
            println!("{} ({} images)", out.display(), files.len());
        }
        None => {
            save_grid(drawn.images, drawn.cols, &out)?;
            println!("{}", out.display());
        }
    }
    Ok(0)
}
