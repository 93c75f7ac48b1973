//! `genlab eval RUN`: what the run's family supports, on its test split. Encoders: the loss,
//! -ELBO (VAEs), reconstruction MSE and PSNR. Generators: Fréchet distance and precision/recall of
//! `-n` samples in a classifier's features. VAEs with `--nll`: importance-weighted NLL.
//! Classifiers: test accuracy. `genlab eval --samples FOLDER --dataset D` scores a folder of
//! images from anywhere on the same scale; `genlab eval sr` scores super-resolution.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use genlab::data::ImageSet;
use genlab::metrics::generative::{
    ConditionalQuality, FeatureNet, SampleQuality, classifier_from_run, sample_quality,
    shipped_classifier,
};
use genlab::metrics::iwae::{GivenLabels, Importance, NllReport, iwae_nll};
use genlab::metrics::{EvalReport, evaluate};
use genlab::models::{Conditional, Generative, ImageModel};
use genlab::{ModelConfig, RunConfig};
use serde::Serialize;

use crate::common::{CondFn, DataArgs, GenFn, ModelFn, OpenRun, dataset, device};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder, or the word `sr` to score a super-resolution model (the shipped one for
    /// --scale, or --model RUN) by the standard protocol. Not needed with --samples.
    run: Option<PathBuf>,
    /// Score a folder of images (PNG/JPEG/BMP, the dataset's size) instead of a run's samples.
    #[arg(long, conflicts_with = "run")]
    samples: Option<PathBuf>,
    /// With --samples: the dataset whose test split they are compared with.
    #[arg(long, requires = "samples")]
    dataset: Option<String>,
    /// Generated images to score (generative runs).
    #[arg(short, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(4..=1_000_000))]
    n: u32,
    /// Feature classifier: a `genlab train classifier` run (default: the one genlab ships for
    /// mnist / fashion-mnist).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// VAEs: also estimate the negative log-likelihood by importance sampling (slow).
    #[arg(long)]
    nll: bool,
    /// Importance samples per image for --nll (Burda et al. use 5000).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    k: u32,
    /// Cap on the test images used (0 = all).
    #[arg(long, default_value_t = 0)]
    max_images: usize,
    /// Noise seed of the generated images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    sr: crate::eval_sr::SrArgs,
}

/// Everything `genlab eval` measured, for `--json`.
#[derive(Serialize, Default)]
pub struct Report {
    pub run: Option<String>,
    pub kind: String,
    pub dataset: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<EvalReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<SampleQuality>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditional: Option<ConditionalQuality>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nll: Option<NllReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
}

struct Eval<'a> {
    set: &'a ImageSet,
    seed: u64,
    device: &'a Device,
}

impl ModelFn<EvalReport> for Eval<'_> {
    fn call<M: ImageModel>(self, m: M) -> Result<EvalReport> {
        Ok(evaluate(&m, self.set, 256, self.seed, self.device)?)
    }
}

struct Quality<'a> {
    net: &'a FeatureNet,
    real: &'a genlab::metrics::frechet::Features,
    n: usize,
    seed: u64,
    device: &'a Device,
}

impl GenFn<SampleQuality> for Quality<'_> {
    fn call<G: Generative>(self, m: G) -> Result<SampleQuality> {
        let fake = self
            .net
            .features_of_generator(&m, self.n, self.seed, self.device)?;
        Ok(sample_quality(
            self.real,
            &fake,
            &self.net.name,
            self.device,
        )?)
    }
}

struct PerClass<'a> {
    net: &'a FeatureNet,
    test: &'a ImageSet,
    per_class: usize,
    seed: u64,
    device: &'a Device,
}

impl CondFn<ConditionalQuality> for PerClass<'_> {
    fn call<G: Conditional>(self, m: G) -> Result<ConditionalQuality> {
        Ok(self
            .net
            .conditional_quality(&m, self.test, self.per_class, self.seed, self.device)?)
    }
}

/// The classifier named by --classifier, or the shipped one for `dataset`.
fn feature_net(classifier: Option<&Path>, dataset: &str, device: &Device) -> Result<FeatureNet> {
    Ok(match classifier {
        Some(dir) => classifier_from_run(dir, device)?,
        None => shipped_classifier(dataset, device)?,
    })
}

fn cap(set: &ImageSet, n: usize) -> ImageSet {
    if n > 0 { set.take(n) } else { set.clone() }
}

/// What to measure on a run (shared by `genlab eval` and `genlab compare`).
pub struct Measure {
    /// Generated images for the Fréchet distance and precision/recall.
    pub n: usize,
    /// Noise seed of the generated images.
    pub seed: u64,
    /// Feature classifier run (default: the shipped one).
    pub classifier: Option<PathBuf>,
    /// Importance samples for the NLL, when it is wanted.
    pub nll_k: Option<usize>,
    /// Cap on the test images (0 = all).
    pub max_images: usize,
    /// No progress output.
    pub quiet: bool,
}

/// Everything the run's family supports, on its test split.
pub fn measure(
    run: &OpenRun,
    data: &genlab::data::Dataset,
    opts: &Measure,
    device: &Device,
) -> Result<Report> {
    let m = &run.config.model;
    let test = cap(&data.test, opts.max_images);
    let mut r = Report {
        run: None,
        kind: m.kind().into(),
        dataset: data.name.clone(),
        ..Report::default()
    };
    if let ModelConfig::Classifier(c) = m {
        let clf = genlab::checkpoint::load_weights(c.init(device), &run.dir.weights())?;
        let (_, acc) = genlab::metrics::accuracy(&clf, &test, 500, device)?;
        r.test_accuracy = Some(acc);
    }
    if m.can_encode() {
        r.reconstruction = Some(run.with_model(
            device,
            Eval {
                set: &test,
                seed: run.config.train.seed,
                device,
            },
        )?);
    }
    if let ModelConfig::Cvae(c) = m {
        let cvae = genlab::checkpoint::load_weights(c.init(device), &run.dir.weights())?;
        let seed = run.config.train.seed;
        r.reconstruction = Some(genlab::metrics::evaluate_conditional(
            &cvae, &test, 256, seed, device,
        )?);
    }
    if m.can_generate() {
        let net = feature_net(opts.classifier.as_deref(), &data.name, device)?;
        if !opts.quiet {
            eprintln!(
                "scoring {} generated vs {} test images in {} features",
                opts.n,
                test.len(),
                net.name
            );
        }
        let real = net.features_of_set(&test, device)?;
        r.samples = Some(run.with_generator(
            device,
            Quality {
                net: &net,
                real: &real,
                n: opts.n,
                seed: opts.seed,
                device,
            },
        )?);
        let k = m.classes().len().max(1);
        r.conditional = run.with_conditional(
            device,
            PerClass {
                net: &net,
                test: &test,
                per_class: opts.n.div_ceil(k),
                seed: opts.seed,
                device,
            },
        )?;
    }
    if let Some(k) = opts.nll_k {
        r.nll = Some(nll(&run.config, run, &test, k, opts.quiet, device)?);
    }
    Ok(r)
}

pub fn run(a: Args) -> Result<i32> {
    if let Some(folder) = &a.samples {
        return score_folder(folder, &a);
    }
    let Some(run_path) = a.run.clone() else {
        bail!("name a run folder to evaluate, `sr`, or --samples FOLDER --dataset NAME");
    };
    // `sr` is the keyword (a folder named sr is ./sr); an SR run folder is scored the same way.
    let keyword = run_path.as_os_str() == "sr";
    let sr_run = !keyword
        && genlab::checkpoint::run_task(&run_path)
            .is_ok_and(|t| t == genlab::models::Task::SuperResolution);
    if keyword || sr_run {
        if sr_run && a.sr.model.is_some() {
            bail!("give the SR run either as RUN or as --model, not both");
        }
        let model = if sr_run {
            Some(run_path.clone())
        } else {
            a.sr.model.clone()
        };
        return crate::eval_sr::run(
            model.as_deref(),
            a.sr,
            a.json,
            a.data.device,
            a.data.data_dir.as_deref(),
        );
    }
    if a.sr.model.is_some() || a.sr.scale.is_some() || !a.sr.sets.is_empty() || a.sr.per_image {
        bail!("--model, --scale, --set and --per-image apply to `genlab eval sr` only");
    }
    let run = OpenRun::open(&run_path)?;
    let m = &run.config.model;
    if a.nll && !has_nll(m) {
        bail!(
            "--nll: a {} has no likelihood to estimate (NLL is defined for vae, vae-gan and cvae runs)",
            m.kind()
        );
    }
    let device = device(a.data.device)?;
    let data = dataset(&run, a.data.data_dir.clone())?;
    let opts = Measure {
        n: a.n as usize,
        seed: a.seed,
        classifier: a.classifier.clone(),
        nll_k: a.nll.then_some(a.k as usize),
        max_images: a.max_images,
        quiet: a.json,
    };
    let mut r = measure(&run, &data, &opts, &device)?;
    r.run = Some(run_path.display().to_string());
    print(&r, a.json)
}

/// Whether the family has a likelihood `genlab eval --nll` estimates (a cVAE's is given the label).
pub fn has_nll(m: &ModelConfig) -> bool {
    matches!(
        m,
        ModelConfig::Vae(_) | ModelConfig::VaeGan(_) | ModelConfig::Cvae(_)
    )
}

pub fn nll(
    cfg: &RunConfig,
    run: &OpenRun,
    test: &ImageSet,
    k: usize,
    quiet: bool,
    device: &Device,
) -> Result<NllReport> {
    let w = run.dir.weights();
    let seed = cfg.train.seed;
    match &cfg.model {
        ModelConfig::Vae(c) => {
            let vae = genlab::checkpoint::load_weights(c.init(device), &w)?;
            nll_with_bar(&vae, test, k, seed, quiet, device)
        }
        ModelConfig::VaeGan(c) => {
            let vae = genlab::checkpoint::load_weights(c.init(device), &w)?.vae;
            nll_with_bar(&vae, test, k, seed, quiet, device)
        }
        ModelConfig::Cvae(c) => {
            let cvae = genlab::checkpoint::load_weights(c.init(device), &w)?;
            let all: Vec<usize> = (0..test.len()).collect();
            let labels = genlab::data::batch_labels(test, &all, c.classes.len())?;
            let given = GivenLabels {
                cvae: &cvae,
                labels,
            };
            nll_with_bar(&given, test, k, seed, quiet, device)
        }
        _ => bail!("--nll needs a vae, vae-gan or cvae run"),
    }
}

/// The importance-weighted NLL with a progress bar (unless `quiet`).
fn nll_with_bar<M: Importance>(
    model: &M,
    test: &ImageSet,
    k: usize,
    seed: u64,
    quiet: bool,
    device: &Device,
) -> Result<NllReport> {
    let bar = (!quiet).then(|| {
        let b = indicatif::ProgressBar::new(test.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "NLL (k = {msg}) [{bar:30}] {pos}/{len} eta {eta}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        b.set_message(k.to_string());
        b
    });
    let r = iwae_nll(model, test, k, seed, device, |done, _| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(r)
}

fn score_folder(folder: &Path, a: &Args) -> Result<i32> {
    let Some(ds) = &a.dataset else {
        bail!(
            "--samples needs --dataset NAME: the dataset whose test split the images are compared with"
        );
    };
    let device = device(a.data.device)?;
    let spec: genlab::data::DatasetSpec = ds.parse()?;
    let cfg = genlab::TrainConfig {
        dataset: ds.clone(),
        ..genlab::TrainConfig::default()
    };
    let data = crate::data::load(&spec, &cfg.data_options(a.data.data_dir.clone()), false)
        .with_context(|| format!("loading dataset {ds}"))?;
    let net = feature_net(a.classifier.as_deref(), &data.name, &device)?;
    let (images, classes) = genlab::data::image_dir::load_exact(folder, net.image())?;
    let test = cap(&data.test, a.max_images);
    let real = net.features_of_set(&test, &device)?;
    let fake = net.features_of_set(&images, &device)?;
    // Sub-folders named after the dataset's classes: each image is scored as its folder's class.
    let conditional = if classes.is_empty() {
        None
    } else {
        let images = as_dataset_classes(images, &classes, &data.classes, folder)?;
        Some(net.labelled_quality(&images, &data.classes, &test, &device)?)
    };
    let r = Report {
        run: None,
        kind: format!("samples from {}", folder.display()),
        dataset: data.name.clone(),
        samples: Some(sample_quality(&real, &fake, &net.name, &device)?),
        conditional,
        ..Report::default()
    };
    print(&r, a.json)
}

/// Relabels a folder's images (labelled by their sub-folders, `folders`) with the dataset's class
/// indices; a sub-folder that names no class of the dataset is an error.
fn as_dataset_classes(
    mut images: ImageSet,
    folders: &[String],
    classes: &[String],
    folder: &Path,
) -> Result<ImageSet> {
    let map = folders
        .iter()
        .map(|f| {
            classes.iter().position(|c| c == f).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: sub-folder {f:?} is not a class of the dataset (expected one of: {})",
                    folder.join(f).display(),
                    classes.join(", ")
                )
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    if let Some(labels) = images.labels.as_mut() {
        for l in labels.iter_mut() {
            *l = map[usize::from(*l)] as u8;
        }
    }
    Ok(images)
}

fn print(r: &Report, json: bool) -> Result<i32> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(0);
    }
    if let Some(run) = &r.run {
        println!("run       {run}");
    }
    println!("model     {} on {} test split", r.kind, r.dataset);
    if let Some(acc) = r.test_accuracy {
        println!("accuracy  {:.4}", acc);
    }
    if let Some(e) = &r.reconstruction {
        println!("images    {}", e.images);
        println!("loss      {:.4} nats/image (training objective)", e.loss);
        match r.kind.as_str() {
            "vae" | "vae-gan" => println!(
                "-ELBO     {:.4} nats/image (recon {:.4} + KL {:.4})",
                e.neg_elbo, e.recon, e.kl
            ),
            "cvae" => println!(
                "-ELBO     {:.4} nats/image given the label (recon {:.4} + KL {:.4})",
                e.neg_elbo, e.recon, e.kl
            ),
            _ => {}
        }
        println!("MSE       {:.6}", e.mse);
        println!("PSNR      {:.2} dB", e.psnr);
    }
    if let Some(n) = &r.nll {
        println!(
            "NLL       {:.2} nats/image{} (importance-weighted, k = {}, {} images{})",
            n.nll,
            if r.kind == "cvae" {
                " given the label"
            } else {
                ""
            },
            n.k,
            n.images,
            if n.binarized {
                ", dynamically binarized"
            } else {
                ""
            }
        );
    }
    if let Some(s) = &r.samples {
        println!(
            "FD        {:.3}  (Fréchet distance in {} features, {} generated vs {} real; not Inception FID)",
            s.fd, s.features, s.generated, s.real
        );
        println!(
            "precision {:.4}  recall {:.4}  (k = 3 nearest neighbours)",
            s.precision, s.recall
        );
        println!(
            "density   {:.4}  coverage {:.4}  (k = 5; Naeem et al. 2020: robust to outliers among the real images)",
            s.density, s.coverage
        );
    }
    if let Some(c) = &r.conditional {
        let per = c.per_class.first().map_or(0, |q| q.generated);
        println!(
            "label accuracy {:.4}  ({per} samples of each class, labelled by {})",
            c.label_accuracy, c.features
        );
        println!(
            "  {:<14} {:>8} {:>10} {:>9} {:>7} {:>6}",
            "class", "accuracy", "FD", "precision", "recall", "real"
        );
        let or_dash = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |f| format!("{f:.d$}"));
        for q in &c.per_class {
            println!(
                "  {:<14} {:>8.4} {:>10} {:>9} {:>7} {:>6}",
                q.class,
                q.accuracy,
                or_dash(q.fd, 3),
                or_dash(q.precision, 4),
                or_dash(q.recall, 4),
                q.real
            );
        }
        if !c.fd_note.is_empty() {
            println!("  (FD -: {})", c.fd_note);
        }
    }
    Ok(0)
}
