//! `genlab compare`: train the autoencoder, VAE, DCGAN and VAE-GAN (and, when named, the
//! conditional cVAE and cGAN) on one dataset with the same epoch budget (each with its preset's
//! recipe), then measure all of them the same way and write one table (Markdown + CSV) and a
//! sheet of samples side by side. Each family's run folder is
//! kept under `--out`; running the command again reuses finished runs and resumes stopped ones.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use genlab::RunConfig;
use genlab::checkpoint::RunDir;
use genlab::data::batch_tensor;
use genlab::image_io::save_grid;
use genlab::models::{Generative, ImageModel};
use genlab::rng::{rng_for, standard_normal, stream};
use genlab::train::Outcome;

use crate::common::{DeviceArg, GenFn, ModelFn, OpenRun, device};
use crate::eval::{Measure, Report, measure};
use crate::train::GenerativeFamily;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset every family trains and is scored on (28x28 grey: mnist-10k, mnist, fashion-mnist).
    #[arg(long, default_value = "mnist-10k")]
    dataset: String,
    /// Training epochs for every family (the budget).
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Families to compare (cvae and cgan, the conditional ones, on request: they add a label
    /// accuracy column).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [GenerativeFamily::Ae, GenerativeFamily::Vae, GenerativeFamily::Dcgan, GenerativeFamily::VaeGan])]
    families: Vec<GenerativeFamily>,
    /// Folder for the runs and the table (default runs/compare-DATASET).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Generated images for the Fréchet distance and precision/recall.
    #[arg(short, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(4..=1_000_000))]
    n: u32,
    /// Importance samples per image for the NLL (VAE, VAE-GAN).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    k: u32,
    /// Test images the NLL is estimated on (it costs k decoder passes per image).
    #[arg(long, default_value_t = 200)]
    nll_images: usize,
    /// Folder searched first for the dataset.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// One tiny epoch per family on a few images (for CI and smoke tests).
    #[arg(long)]
    dry_run: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

/// One row of the table.
struct Row {
    family: &'static str,
    params: usize,
    train_secs: f64,
    images_per_sec: f64,
    report: Report,
    nll: Option<genlab::metrics::iwae::NllReport>,
}

/// Trains (or resumes, or reuses) one family's run.
fn train_family(
    f: GenerativeFamily,
    a: &Args,
    dir: &Path,
    data: &genlab::data::Dataset,
    device: &Device,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<RunConfig> {
    let run = RunDir::new(dir);
    let epochs = if a.dry_run { 1 } else { a.epochs };
    let (cfg, resume) = if run.state().is_file() {
        let mut cfg = run.load_config()?;
        let st = run.load_state()?;
        if st.status == genlab::checkpoint::Status::Finished && cfg.train.epochs == epochs {
            eprintln!(
                "{}: reusing the finished run in {}",
                f.name(),
                dir.display()
            );
            return Ok(cfg);
        }
        cfg.train.epochs = epochs;
        cfg.train.validate()?;
        (cfg, true)
    } else {
        // The convolutional autoencoder and VAE, like the GANs.
        let mut cfg = RunConfig::preset(f.default_preset(true))?;
        cfg.train.dataset = a.dataset.clone();
        cfg.train.epochs = a.epochs;
        if a.dry_run {
            cfg.train.epochs = 1;
            cfg.train.batch_size = cfg.train.batch_size.min(16);
            cfg.train.max_train_images = cfg.train.batch_size;
            cfg.train.max_test_images = 32;
            cfg.train.grid_images = 16;
        }
        cfg.model.set_image(data.shape());
        if !data.classes.is_empty() {
            cfg.model.set_classes(&data.classes);
        }
        cfg.validate()?;
        (cfg, false)
    };
    eprintln!(
        "{}: {} {} for {} epochs -> {}",
        f.name(),
        if resume { "resuming" } else { "training" },
        cfg.model.kind(),
        cfg.train.epochs,
        dir.display()
    );
    let mut obs = crate::train::progress::Progress {
        bar: None,
        quiet: false,
    };
    match genlab::train::train(&run, &cfg, resume, data, device, stop, &mut obs)? {
        Outcome::Finished { .. } => Ok(cfg),
        Outcome::Interrupted { .. } => bail!(
            "interrupted while training {}; run the same `genlab compare` again to resume",
            f.name()
        ),
    }
}

/// Ten images per family for the sheet: samples from fixed noise, or (autoencoder)
/// reconstructions of the first ten test images.
struct SheetRow<'a> {
    test: &'a genlab::data::ImageSet,
    device: &'a Device,
}

impl GenFn<Tensor<4>> for SheetRow<'_> {
    fn call<G: Generative>(self, m: G) -> Result<Tensor<4>> {
        let z = standard_normal(
            &mut rng_for(0, stream::SAMPLE, 3),
            10,
            m.noise_dim(),
            self.device,
        );
        Ok(m.generate(z))
    }
}

impl ModelFn<Tensor<4>> for SheetRow<'_> {
    fn call<M: ImageModel>(self, m: M) -> Result<Tensor<4>> {
        let idx: Vec<usize> = (0..10.min(self.test.len())).collect();
        let x = batch_tensor(self.test, &idx, self.device);
        Ok(m.decode_mean(m.encode_mean(x)))
    }
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

pub fn run(a: Args) -> Result<i32> {
    if a.epochs == 0 {
        bail!("--epochs 0: the budget must be at least one epoch");
    }
    if a.families.is_empty() {
        bail!("--families: name at least one of ae, vae, dcgan, vae-gan, cvae, cgan");
    }
    let device = device(a.device)?;
    let spec: genlab::data::DatasetSpec = a.dataset.parse()?;
    let opts_cfg = genlab::TrainConfig {
        dataset: a.dataset.clone(),
        ..genlab::TrainConfig::default()
    };
    let data = crate::data::load(&spec, &opts_cfg.data_options(a.data_dir.clone()), false)
        .with_context(|| format!("loading dataset {}", a.dataset))?;
    if data.shape() != [1, 28, 28] {
        bail!(
            "--dataset {}: compare uses the 28x28 grey presets and classifiers; this dataset has images of shape {:?}",
            a.dataset,
            data.shape()
        );
    }
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "compare-{}{}",
            data.name,
            if a.dry_run { "-dry-run" } else { "" }
        ))
    });
    // Locked while it runs; a folder of an earlier comparison is continued, any other
    // non-empty folder refused.
    let _lock = genlab::fsutil::claim_own_folder(
        &out,
        "name a new --out, or the folder of an earlier `genlab compare` to continue it",
    )?;
    let stop = crate::train::progress::stop_flag()?;

    let mut rows = Vec::new();
    let mut sheet = Vec::new();
    for &f in &a.families {
        let dir = out.join(f.name());
        let cfg = train_family(f, &a, &dir, &data, &device, &stop)?;
        let run = OpenRun::open(&dir)?;
        let st = run.dir.load_state()?;
        // A dry run still scores enough images for a Fréchet distance in the classifier's 128
        // features (more images than dimensions).
        let opts = Measure {
            n: if a.dry_run { 200 } else { a.n as usize },
            seed: 0,
            classifier: None,
            nll_k: None,
            max_images: if a.dry_run { 200 } else { 0 },
            quiet: false,
        };
        let report = measure(&run, &data, &opts, &device)?;
        let nll = if crate::eval::has_nll(&cfg.model) {
            let o = Measure {
                nll_k: Some(if a.dry_run { 4 } else { a.k as usize }),
                max_images: if a.dry_run { 4 } else { a.nll_images },
                ..opts
            };
            measure_nll(&run, &data, &o, &device)?
        } else {
            None
        };
        let images = if cfg.train.max_train_images > 0 {
            cfg.train.max_train_images.min(data.train.len())
        } else {
            data.train.len()
        };
        rows.push(Row {
            family: f.name(),
            params: cfg.model.num_params(),
            train_secs: st.elapsed_secs,
            images_per_sec: (cfg.train.epochs * images) as f64 / st.elapsed_secs.max(1e-9),
            report,
            nll,
        });
        let r = SheetRow {
            test: &data.test,
            device: &device,
        };
        sheet.push(if cfg.model.can_generate() {
            run.with_generator(&device, r)?
        } else {
            run.with_model(&device, r)?
        });
    }

    // The table, as Markdown and CSV, and the sheet.
    let n = rows
        .iter()
        .find_map(|r| r.report.samples.as_ref().map(|s| s.generated))
        .unwrap_or(0);
    let mut md = format!(
        "genlab compare on {} ({} train / {} test images), {} epochs each. FD, precision/recall (k = 3) and density/coverage (k = 5): {n} generated vs the test split in genlab-classifier features (not Inception FID). NLL: importance-weighted, k = {}, first {} test images, dynamically binarized.\n\n",
        data.name,
        data.train.len(),
        data.test.len(),
        if a.dry_run { 1 } else { a.epochs },
        if a.dry_run { 4 } else { a.k },
        if a.dry_run { 4 } else { a.nll_images },
    );
    // The label accuracy column only when a conditional family is in the table.
    let labels = rows.iter().any(|r| r.report.conditional.is_some());
    let (md_h, md_a, csv_h) = if labels {
        (" label accuracy |", "---:|", ",label_accuracy")
    } else {
        ("", "", "")
    };
    let _ = writeln!(
        md,
        "| family | parameters | training time (s) | images/s | recon PSNR (dB) | NLL (nats) | FD | precision | recall | density | coverage |{md_h}"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|{md_a}"
    );
    let mut csv = format!(
        "family,parameters,train_seconds,images_per_s,recon_psnr_db,nll_nats,fd,precision,recall,density,coverage{csv_h}\n",
    );
    for r in &rows {
        let psnr = r.report.reconstruction.map(|e| e.psnr);
        let nll = r.nll.map(|n| n.nll);
        let s = r.report.samples.as_ref();
        let mut cells = vec![
            r.family.to_string(),
            r.params.to_string(),
            format!("{:.0}", r.train_secs),
            format!("{:.0}", r.images_per_sec),
            fmt(psnr, 2),
            fmt(nll, 2),
            fmt(s.map(|s| s.fd), 3),
            fmt(s.map(|s| s.precision), 3),
            fmt(s.map(|s| s.recall), 3),
            fmt(s.map(|s| s.density), 3),
            fmt(s.map(|s| s.coverage), 3),
        ];
        if labels {
            let acc = r.report.conditional.as_ref().map(|c| c.label_accuracy);
            cells.push(fmt(acc, 3));
        }
        let _ = writeln!(md, "| {} |", cells.join(" | "));
        let csv_cells: Vec<&str> = cells
            .iter()
            .map(|c| if c == "-" { "" } else { c.as_str() })
            .collect();
        let _ = writeln!(csv, "{}", csv_cells.join(","));
    }
    let _ = writeln!(
        md,
        "\nSheet (`samples.png`), one row per family in the order above: samples from the same fixed noise (a conditional family's ten take the classes in turn); the autoencoder row shows reconstructions of the first ten test images (it cannot sample)."
    );
    genlab::fsutil::write_atomic(&out.join("compare.md"), md.as_bytes())?;
    genlab::fsutil::write_atomic(&out.join("compare.csv"), csv.as_bytes())?;
    save_grid(Tensor::cat(sheet, 0), 10, &out.join("samples.png"))?;
    print!("{md}");
    println!(
        "\nwritten: {0}/compare.md, {0}/compare.csv, {0}/samples.png",
        out.display()
    );
    Ok(0)
}

fn measure_nll(
    run: &OpenRun,
    data: &genlab::data::Dataset,
    o: &Measure,
    device: &Device,
) -> Result<Option<genlab::metrics::iwae::NllReport>> {
    let cfg = &run.config;
    let test = if o.max_images > 0 {
        data.test.take(o.max_images)
    } else {
        data.test.clone()
    };
    let k = o.nll_k.expect("NLL requested");
    Ok(Some(crate::eval::nll(cfg, run, &test, k, o.quiet, device)?))
}
