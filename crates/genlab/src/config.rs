//! A run's whole configuration, as plain data: the model and how to train it. It is read from a
//! TOML preset (built in, or a file), adjusted by command-line flags, validated once, and saved as
//! `config.toml` in the run folder so any result can be re-run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{DataOptions, DatasetSpec};
use crate::error::{Error, Result};
use crate::models::{FsrcnnConfig, ModelConfig, SrModelConfig};

/// The built-in presets: every `crates/genlab/configs/NAME.toml`, compiled in (by `build.rs`),
/// sorted by name.
pub const PRESETS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/presets.rs"));

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// `mnist-10k` (embedded), `mnist`, `fashion-mnist`, `cifar10`, or a folder of images.
    pub dataset: String,
    /// For image folders: the `[c, h, w]` images are converted to (c = 1 grey or 3 RGB).
    pub folder_image: [usize; 3],
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per optimizer step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam beta1 and beta2.
    pub betas: [f64; 2],
    /// Adam epsilon (PyTorch's default, 1e-8).
    pub eps: f64,
    /// Seed of weight init, shuffling and noise.
    pub seed: u64,
    /// Images in each epoch's sample and reconstruction grids.
    pub grid_images: usize,
    /// Cap on the training images used per epoch (0 = all); `--dry-run` sets it small.
    pub max_train_images: usize,
    /// Cap on the test images used per evaluation (0 = all).
    pub max_test_images: usize,
    /// Shards each batch is cut into, run one after another with their gradients summed before
    /// the one update (1 = off): what `shards` data-parallel devices would compute, and on one
    /// device gradient accumulation (a shard's activations in memory, not the batch's). The
    /// same training at any value (`train::shard`); only for families without batch norm.
    pub shards: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dataset: "mnist-10k".into(),
            folder_image: [3, 32, 32],
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            betas: [0.9, 0.999],
            eps: 1e-8,
            seed: 0,
            grid_images: 64,
            max_train_images: 0,
            max_test_images: 0,
            shards: 1,
        }
    }
}

impl TrainConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_seed(self.seed)?;
        check_epochs(self.epochs)?;
        check_sizes(self, "train")?;
        let positive = |name: &str, v: usize| {
            if v == 0 {
                Err(Error::config(format!("train.{name}"), v, "> 0"))
            } else {
                Ok(())
            }
        };
        positive("epochs", self.epochs)?;
        positive("batch_size", self.batch_size)?;
        positive("grid_images", self.grid_images)?;
        positive("shards", self.shards)?;
        if self.shards > self.batch_size {
            return Err(Error::config(
                "train.shards (--shards)",
                self.shards,
                format!(
                    "at most train.batch_size ({}): every shard needs an image",
                    self.batch_size
                ),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config("train.lr", self.lr, "a finite number > 0"));
        }
        for (i, b) in self.betas.iter().enumerate() {
            if !(0.0..1.0).contains(b) {
                return Err(Error::config(format!("train.betas[{i}]"), b, "in [0, 1)"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::config("train.eps", self.eps, "a finite number > 0"));
        }
        let [c, h, w] = self.folder_image;
        if !matches!(c, 1 | 3) || h == 0 || w == 0 {
            return Err(Error::config(
                "train.folder_image",
                format!("{:?}", self.folder_image),
                "[1 or 3 channels, height > 0, width > 0]",
            ));
        }
        self.dataset_spec().map(|_| ())
    }

    /// The dataset named by `dataset`.
    pub fn dataset_spec(&self) -> Result<DatasetSpec> {
        self.dataset.parse()
    }

    /// Data options for loading the dataset.
    pub fn data_options(&self, data_dir: Option<PathBuf>) -> DataOptions {
        DataOptions {
            data_dir,
            folder_shape: Some(self.folder_image),
            on_pack: None,
        }
    }
}

/// A run: what model, and how to train it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The model family and its settings.
    pub model: ModelConfig,
    /// Training settings.
    #[serde(default)]
    pub train: TrainConfig,
}

impl RunConfig {
    /// Parses TOML text; `origin` names the file (or preset) in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| toml_error(text, origin, &e))
    }

    /// Reads a preset: a built-in name (`mnist-vae`) or a path to a TOML file.
    pub fn preset(name_or_path: &str) -> Result<Self> {
        if let Some((name, text)) = PRESETS.iter().find(|(n, _)| *n == name_or_path) {
            return Self::from_toml(text, Path::new(&format!("<preset {name}>")));
        }
        let p = Path::new(name_or_path);
        if p.is_file() {
            let text = crate::fsutil::read_text(p)?;
            return Self::from_toml(&text, p);
        }
        Err(Error::config(
            "preset",
            name_or_path,
            format!(
                "a TOML file or one of {}",
                PRESETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }

    /// The TOML text saved in a run folder.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a RunConfig always serialises to TOML")
    }

    /// Checks the model and the training settings.
    pub fn validate(&self) -> Result<()> {
        check_sizes(&self.model, "model")?;
        self.model.validate()?;
        self.train.validate()?;
        self.validate_shards()
    }

    /// Checks `train.shards` against the model: a family with batch norm takes only 1.
    pub fn validate_shards(&self) -> Result<()> {
        self.model.check_shards(self.train.shards)
    }
}

/// The largest size any count in a config may have (a layer width, a latent, a batch, an image
/// side). Far beyond what fits in memory; what it guards is the arithmetic: products of a few
/// such sizes stay within 64 bits, so memory estimates and shapes never overflow.
pub const MAX_SIZE: i64 = 1 << 28;

/// TOML integers are signed 64-bit: a larger seed could not be saved in `config.toml`.
fn check_seed(seed: u64) -> Result<()> {
    if i64::try_from(seed).is_err() {
        return Err(Error::config(
            "train.seed",
            seed,
            format!("at most {}", i64::MAX),
        ));
    }
    Ok(())
}

/// The most epochs a run may plan (far beyond any training; TOML could not store more than
/// `i64::MAX`).
pub const MAX_EPOCHS: usize = 1_000_000_000;

fn check_epochs(epochs: usize) -> Result<()> {
    if epochs > MAX_EPOCHS {
        return Err(Error::config(
            "train.epochs",
            epochs,
            format!("at most {MAX_EPOCHS}"),
        ));
    }
    Ok(())
}

/// Calls `f` with every integer of a serialised config and its key (`model.hidden[0]`).
fn integers(v: &toml::Value, key: &str, f: &mut dyn FnMut(&str, i64) -> Result<()>) -> Result<()> {
    match v {
        toml::Value::Integer(i) => f(key, *i),
        toml::Value::Array(a) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| integers(x, &format!("{key}[{i}]"), f)),
        toml::Value::Table(t) => t.iter().try_for_each(|(k, x)| {
            let key = if key.is_empty() {
                k.clone()
            } else {
                format!("{key}.{k}")
            };
            integers(x, &key, f)
        }),
        _ => Ok(()),
    }
}

/// `cfg` as a TOML value (what `config.toml` will hold); `what` names it in the error.
fn to_value<T: Serialize>(cfg: &T, what: &str) -> Result<toml::Value> {
    toml::Value::try_from(cfg)
        .map_err(|e| Error::config(what, e, format!("every number at most {}", i64::MAX)))
}

/// Refuses any integer in `cfg` above [`MAX_SIZE`] (or below 0), naming its key under `prefix`
/// (`model`, `train`, or "" for a whole config). `seed` and `epochs` count nothing that is
/// allocated: they have their own limits.
fn check_sizes<T: Serialize>(cfg: &T, prefix: &str) -> Result<()> {
    let v = to_value(cfg, if prefix.is_empty() { "config" } else { prefix })?;
    integers(&v, prefix, &mut |key, i| {
        let last = key.rsplit('.').next().unwrap_or(key);
        if matches!(last, "seed" | "epochs") || (0..=MAX_SIZE).contains(&i) {
            Ok(())
        } else {
            Err(Error::config(key, i, format!("at most {MAX_SIZE}")))
        }
    })
}

/// The largest integer setting of a model config with its key (`model.latent = 100000000`):
/// what a memory refusal names as the likely cause.
pub fn largest_size<T: Serialize>(model: &T) -> Option<String> {
    let v = to_value(model, "model").ok()?;
    let mut best: Option<(i64, String)> = None;
    let _ = integers(&v, "model", &mut |key, i| {
        if best.as_ref().is_none_or(|(b, _)| i > *b) {
            best = Some((i, key.to_string()));
        }
        Ok(())
    });
    best.map(|(i, k)| format!("{k} = {i}"))
}

/// How to train a super-resolution network (`genlab train sr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrTrainConfig {
    /// Folder of training photos (an image folder: every file under it is a PNG, JPEG or BMP).
    pub images: String,
    /// Folder of validation images ("" for none): `*_HR`/`*_LR` pairs, or HR images only.
    pub val: String,
    /// Epochs.
    pub epochs: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// Patches per step.
    pub batch_size: usize,
    /// Low-resolution patch side (the HR patch is `scale` times larger).
    pub patch: usize,
    /// LR pixels at each side of a patch left out of the loss (`scale` times as many HR
    /// pixels; default 0). The network pads with zeros, so output pixels near a patch's edge
    /// see zeros that a photo's interior does not have; a border of 8 (FSRCNN's receptive
    /// field) trains only on outputs the padding cannot touch, like the paper's "valid"
    /// training. The default keeps the edges in: the evaluation scores whole pictures, whose
    /// zero-padded edges a network trained without them never learns (BENCHMARKS.md).
    pub loss_border: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Halve the learning rate every this many epochs (0: never).
    pub lr_halve_every: usize,
    /// The output layer (FSRCNN's transposed convolution, ESPCN's last convolution) learns at
    /// `lr` times this. The FSRCNN paper uses 0.1 with SGD; with Adam the default is 1
    /// (BENCHMARKS.md compares the two).
    pub output_lr_scale: f64,
    /// Adam beta1 and beta2.
    pub betas: [f64; 2],
    /// Adam epsilon.
    pub eps: f64,
    /// Seed of weight init and patch draws.
    pub seed: u64,
    /// Random flips and 90-degree rotations of patches.
    pub augment: bool,
    /// Each photo is also used shrunk by these factors (FSRCNN's augmentation); 1.0 = as is.
    pub rescale: Vec<f64>,
    /// Cap on validation images (0 = all).
    pub max_val_images: usize,
    /// Start from this SR run's weights ("" = fresh init). Shapes must match: FSRCNN's x2
    /// weights fit its x3 and x4 networks (the upsampler's stride is not a weight), which is how
    /// the paper trains the other scales.
    pub init_from: String,
}

impl Default for SrTrainConfig {
    fn default() -> Self {
        Self {
            images: String::new(),
            val: String::new(),
            epochs: 20,
            steps_per_epoch: 500,
            batch_size: 16,
            patch: 16,
            loss_border: 0,
            lr: 1e-3,
            lr_halve_every: 0,
            output_lr_scale: 1.0,
            betas: [0.9, 0.999],
            eps: 1e-8,
            seed: 0,
            augment: true,
            rescale: vec![1.0, 0.9, 0.8, 0.7, 0.6],
            max_val_images: 0,
            init_from: String::new(),
        }
    }
}

/// A super-resolution run: the network and how to train it; saved as the run's `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrRunConfig {
    /// The network.
    pub model: SrModelConfig,
    /// Training settings.
    #[serde(default)]
    pub train: SrTrainConfig,
}

impl Default for SrRunConfig {
    fn default() -> Self {
        Self {
            model: SrModelConfig::Fsrcnn(FsrcnnConfig::default()),
            train: SrTrainConfig::default(),
        }
    }
}

impl SrRunConfig {
    /// Parses TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| toml_error(text, origin, &e))
    }

    /// The TOML text saved in a run folder.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("an SrRunConfig always serialises to TOML")
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_seed(self.train.seed)?;
        check_epochs(self.train.epochs)?;
        check_sizes(self, "")?;
        self.model.validate()?;
        let t = &self.train;
        for (k, v) in [
            ("train.epochs", t.epochs),
            ("train.steps_per_epoch", t.steps_per_epoch),
            ("train.batch_size", t.batch_size),
        ] {
            if v == 0 {
                return Err(Error::config(k, v, "> 0"));
            }
        }
        if t.patch < 4 {
            return Err(Error::config("train.patch", t.patch, ">= 4 pixels"));
        }
        if 2 * t.loss_border >= t.patch {
            return Err(Error::config(
                "train.loss_border",
                t.loss_border,
                format!("less than half the patch ({})", t.patch),
            ));
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return Err(Error::config("train.lr", t.lr, "a finite number > 0"));
        }
        if !(t.output_lr_scale.is_finite() && t.output_lr_scale > 0.0) {
            return Err(Error::config(
                "train.output_lr_scale",
                t.output_lr_scale,
                "a finite number > 0",
            ));
        }
        if t.rescale.is_empty() || t.rescale.iter().any(|k| !(*k > 0.0 && *k <= 1.0)) {
            return Err(Error::config(
                "train.rescale",
                format!("{:?}", t.rescale),
                "factors in (0, 1]",
            ));
        }
        if t.images.is_empty() {
            return Err(Error::config(
                "train.images",
                "\"\"",
                "a folder of training photos",
            ));
        }
        Ok(())
    }
}

/// For a type or value error (`invalid type: string "two", expected usize`), the one line that
/// assigns that value: inside a tagged enum such as `[model]` the parser's span is the whole
/// table, which would point at its first line.
fn value_line(text: &str, msg: &str) -> Option<usize> {
    if let Some(v) = msg.strip_prefix("unknown variant `") {
        let literal = format!("\"{}\"", v.split('`').next()?);
        return unique_line(text, &literal);
    }
    let rest = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))?;
    let literal = if let Some(r) = rest.strip_prefix("string \"") {
        format!("\"{}\"", r.split('"').next()?)
    } else {
        rest.split('`').nth(1)?.to_string()
    };
    unique_line(text, &literal)
}

/// The 1-based number of the one line `KEY = literal` of `text`, if exactly one has it.
fn unique_line(text: &str, literal: &str) -> Option<usize> {
    let mut hits = text.lines().enumerate().filter(|(_, l)| {
        l.split_once('=')
            .is_some_and(|(_, v)| v.split('#').next().unwrap_or("").trim() == literal)
    });
    let (first, _) = hits.next()?;
    hits.next().is_none().then_some(first + 1)
}

/// One-line message for a TOML error: `file: line N: message`.
fn toml_error(text: &str, origin: &Path, e: &toml::de::Error) -> Error {
    let msg = e.message().replace('\n', " ").trim().to_string();
    // For an unknown key, point at the line that has it (the parser's span can be the whole
    // table when the table is a tagged enum such as [model]).
    let key_line = msg
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        .and_then(|key| {
            text.lines().position(|l| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
        })
        .map(|i| i + 1);
    let line = key_line.or_else(|| value_line(text, &msg)).or_else(|| {
        e.span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
    });
    Error::Toml {
        path: origin.to_path_buf(),
        msg: match line {
            Some(l) => format!("line {l}: {msg}"),
            None => msg,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelConfig;

    #[test]
    fn every_builtin_preset_parses_and_validates() {
        for (name, _) in PRESETS {
            let c = RunConfig::preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            c.model.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut t = c.train.clone();
            if t.dataset.is_empty() {
                t.dataset = "mnist-10k".into(); // a folder preset: --dataset (tests/cli.rs)
            }
            t.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let c = RunConfig::preset("mnist-conv-vae").expect("preset");
        let back = RunConfig::from_toml(&c.to_toml(), Path::new("x")).expect("re-parse");
        assert_eq!(c, back);
        assert!(matches!(back.model, ModelConfig::Vae(_)));
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let text = "[model]\nkind = \"vae\"\nlatnet = 3\n";
        let err = RunConfig::from_toml(text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml: line 3"), "{err}");
        assert!(err.contains("latnet"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let text = "[model]\nkind = \"vae\"\n[train]\nepohcs = 3\n";
        let err = RunConfig::from_toml(text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("epohcs"), "{err}");
    }

    /// Inside `[model]` (an internally tagged enum) the parser's span is the whole table; the
    /// error still names the line of the bad value.
    #[test]
    fn type_and_variant_errors_name_their_line() {
        for (text, want) in [
            (
                "[model]\nkind = \"vae\"\nlatent = \"two\"\n",
                "line 3: invalid type",
            ),
            (
                "[model]\nkind = \"vae\"\nlatent = -3\n",
                "line 3: invalid value",
            ),
            (
                "[model]\nkind = \"vae\"\nlikelihood = \"poisson\"\n",
                "line 3: unknown variant",
            ),
            (
                "[model]\nkind = \"transformer\"\n",
                "line 2: unknown variant",
            ),
        ] {
            let err = RunConfig::from_toml(text, Path::new("p.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("p.toml: {want}")),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn sizes_beyond_max_size_and_seeds_beyond_i64_are_refused() {
        let mut c = RunConfig::preset("mnist-vae").expect("preset");
        if let crate::models::ModelConfig::Vae(m) = &mut c.model {
            m.latent = (MAX_SIZE + 1) as usize;
        }
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("model.latent = 268435457: at most"),
            "{err}"
        );
        let mut c = RunConfig::preset("mnist-vae").expect("preset");
        c.train.seed = u64::MAX;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("train.seed =")
        );
    }

    #[test]
    fn zero_sizes_are_rejected() {
        let mut c = RunConfig::preset("mnist-vae").expect("preset");
        c.train.batch_size = 0;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "train.batch_size = 0: > 0"
        );
    }
}
