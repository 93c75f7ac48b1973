//! The run folder: everything needed to use a trained model and to resume its training.
//!
//! ```text
//! runs/NAME/
//!   config.toml             the RunConfig (model + training), human-editable
//!   weights.safetensors     latest weights, PyTorch layout (linear weights [out, in]); loadable
//!                           with `safetensors.torch.load_file`
//!   state.json              training state: epoch, step, status, partial-epoch sums; names the
//!                           resume files below. Written last: it is the commit point.
//!   state/weights-STEP.safetensors, state/optimizer-STEP.bpk   the resume pair for that step
//!   metrics.jsonl           one JSON line per epoch
//!   loss.png, samples/epoch-NNN.png, reconstructions/epoch-NNN.png
//! ```
//!
//! Every file is written atomically (temporary file, then rename). A checkpoint writes its resume
//! pair under new names, then `state.json`, then deletes the previous pair, so a run killed at any
//! moment resumes from a consistent (weights, optimizer, step) triple.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::{RunConfig, SrRunConfig};
use crate::error::{Error, Result};
use crate::fsutil::{create_dir_all, write_atomic};
use crate::models::{Task, task_of};

/// Where training stands, saved as `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    /// Model family (`ae`, `vae`, ...), checked against `config.toml` on load.
    pub kind: String,
    /// Optimizer steps taken.
    pub step: usize,
    /// Epochs fully completed.
    pub epochs_done: usize,
    /// Batches of the current (incomplete) epoch already trained on.
    pub batches_done: usize,
    /// Running sums over the incomplete epoch, so its averages survive a resume.
    pub partial: EpochSums,
    /// Where the run stands.
    pub status: Status,
    /// Training wall time so far, seconds.
    pub elapsed_secs: f64,
    /// Resume weights, relative to the run folder.
    pub weights: String,
    /// Resume optimizer state, relative to the run folder.
    pub optimizer: String,
}

impl TrainState {
    /// The state of a run of `kind` that has not taken a step yet.
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.into(),
            step: 0,
            epochs_done: 0,
            batches_done: 0,
            partial: EpochSums::default(),
            status: Status::Running,
            elapsed_secs: 0.0,
            weights: String::new(),
            optimizer: String::new(),
        }
    }
}

/// A run's status in `state.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Training (or killed while training: the last checkpoint resumes it).
    Running,
    /// Stopped on request (Ctrl-C); `genlab train --resume` continues it.
    Interrupted,
    /// All epochs done.
    Finished,
    /// Stopped by an error (a NaN/inf loss); the last checkpoint is the last good one.
    Failed,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Running => "running",
            Status::Interrupted => "interrupted",
            Status::Finished => "finished",
            Status::Failed => "failed",
        })
    }
}

/// Sums of per-image measurements over part of an epoch, by name (each family its own: `loss`,
/// `recon` and `kl` for a VAE, `d_loss`, `d_real`, ... for a GAN, `correct` for a classifier).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSums {
    /// Images seen.
    pub images: usize,
    /// The named sums.
    #[serde(flatten)]
    pub sums: BTreeMap<String, f64>,
}

impl EpochSums {
    /// Adds `v` to the sum `name`.
    pub fn add(&mut self, name: &str, v: f64) {
        match self.sums.get_mut(name) {
            Some(s) => *s += v,
            None => {
                self.sums.insert(name.to_string(), v);
            }
        }
    }

    /// The sum `name` (0 if nothing was added to it).
    pub fn get(&self, name: &str) -> f64 {
        self.sums.get(name).copied().unwrap_or(0.0)
    }

    /// The sum `name` per image.
    pub fn mean(&self, name: &str) -> f64 {
        self.get(name) / self.images.max(1) as f64
    }
}

/// Paths inside a run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The run folder.
    pub dir: PathBuf,
}

impl RunDir {
    /// A run folder at `dir` (not created).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }
    /// `weights.safetensors`.
    pub fn weights(&self) -> PathBuf {
        self.dir.join("weights.safetensors")
    }
    /// `state.json`.
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.jsonl")
    }
    /// `loss.png`.
    pub fn loss_plot(&self) -> PathBuf {
        self.dir.join("loss.png")
    }
    /// `samples/epoch-NNN.png`.
    pub fn samples(&self, epoch: usize) -> PathBuf {
        self.dir
            .join("samples")
            .join(format!("epoch-{epoch:03}.png"))
    }
    /// `reconstructions/epoch-NNN.png`.
    pub fn reconstructions(&self, epoch: usize) -> PathBuf {
        self.dir
            .join("reconstructions")
            .join(format!("epoch-{epoch:03}.png"))
    }

    /// Creates the folder, its `state/` and the named sub-folders.
    pub fn create(&self, folders: &[&str]) -> Result<()> {
        for d in ["", "state"].iter().chain(folders) {
            create_dir_all(&self.dir.join(d))?;
        }
        Ok(())
    }

    /// Writes `config.toml`.
    pub fn save_config(&self, cfg: &RunConfig) -> Result<()> {
        write_atomic(&self.config(), cfg.to_toml().as_bytes())
    }

    /// Reads and validates `config.toml`.
    pub fn load_config(&self) -> Result<RunConfig> {
        let p = self.config();
        if !self.dir.is_dir() {
            return Err(Error::checkpoint(&self.dir, "run folder does not exist"));
        }
        if let Ok(kind) = run_kind(&self.dir)
            && task_of(&kind) == Some(Task::SuperResolution)
        {
            return Err(Error::Unsupported(format!(
                "{}: a super-resolution run ({kind}); use `genlab upscale` or `genlab eval sr` with it",
                self.dir.display()
            )));
        }
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "read", e))?;
        let cfg = RunConfig::from_toml(&text, &p)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and validates a super-resolution run's `config.toml`.
    pub fn load_sr_config(&self) -> Result<SrRunConfig> {
        let p = self.config();
        if !self.dir.is_dir() {
            return Err(Error::checkpoint(&self.dir, "run folder does not exist"));
        }
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "read", e))?;
        let cfg = SrRunConfig::from_toml(&text, &p)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads `state.json`.
    pub fn load_state(&self) -> Result<TrainState> {
        let p = self.state();
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "read", e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::checkpoint(&p, format!("not a genlab training state: {e}")))
    }

    /// Writes `state.json` (atomically).
    pub fn save_state(&self, state: &TrainState) -> Result<()> {
        let json = serde_json::to_string_pretty(state).expect("TrainState serialises");
        write_atomic(&self.state(), json.as_bytes())
    }

    /// Saves a checkpoint: resume pair, then `state.json`, then the user-facing weights, then
    /// removes the previous resume pair.
    pub fn save_checkpoint<M: Module>(
        &self,
        model: &M,
        optim: &ModuleOptimizer,
        state: &mut TrainState,
    ) -> Result<()> {
        let previous = self.load_state().ok();
        state.weights = format!("state/weights-{:08}.safetensors", state.step);
        state.optimizer = format!("state/optimizer-{:08}.bpk", state.step);
        save_weights(
            model,
            &self.dir.join(&state.weights),
            &state.kind,
            state.step,
        )?;
        let opt = optim.into_bytes().map_err(|e| {
            Error::checkpoint(
                self.dir.join(&state.optimizer),
                format!("optimizer state: {e}"),
            )
        })?;
        write_atomic(&self.dir.join(&state.optimizer), &opt)?;
        self.save_state(state)?;
        save_weights(model, &self.weights(), &state.kind, state.step)?;
        if let Some(prev) = previous {
            for f in [prev.weights, prev.optimizer] {
                if f != state.weights && f != state.optimizer {
                    let _ = std::fs::remove_file(self.dir.join(f));
                }
            }
        }
        Ok(())
    }

    /// Loads the resume pair named by `state` into `model` and a fresh `optim`.
    pub fn load_resume<M: Module>(
        &self,
        model: M,
        optim: ModuleOptimizer,
        state: &TrainState,
    ) -> Result<(M, ModuleOptimizer)> {
        let model = load_weights(model, &self.dir.join(&state.weights))?;
        let p = self.dir.join(&state.optimizer);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, "read", e))?;
        let optim = optim
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| Error::checkpoint(&p, format!("corrupt optimizer state: {e}")))?;
        Ok((model, optim))
    }
}

fn one_line(s: impl std::fmt::Display) -> String {
    s.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `[model] kind` of a run folder's `config.toml` (`vae`, `ae`, `fsrcnn`, ...), without
/// parsing the rest: how commands tell a super-resolution run from a generative one.
pub fn run_kind(dir: &Path) -> Result<String> {
    let p = dir.join("config.toml");
    if !dir.is_dir() {
        return Err(Error::checkpoint(dir, "run folder does not exist"));
    }
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "read", e))?;
    let v: toml::Table = toml::from_str(&text).map_err(|e| Error::Toml {
        path: p.clone(),
        msg: one_line(e.message()),
    })?;
    v.get("model")
        .and_then(|m| m.get("kind"))
        .and_then(|k| k.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::checkpoint(&p, "no [model] kind"))
}

/// What the run in `dir` is for, from its `config.toml`'s `[model] kind`.
pub fn run_task(dir: &Path) -> Result<Task> {
    let kind = run_kind(dir)?;
    task_of(&kind).ok_or_else(|| {
        Error::checkpoint(
            dir.join("config.toml"),
            format!("unknown model kind {kind:?}"),
        )
    })
}

/// Writes a model's weights to a safetensors file in PyTorch's layout, atomically.
pub fn save_weights<M: Module>(model: &M, path: &Path, kind: &str, step: usize) -> Result<()> {
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .metadata("genlab.kind", kind)
        .metadata("genlab.step", step.to_string());
    model.save_into(&mut store).map_err(|e| {
        Error::checkpoint(path, format!("cannot serialise weights: {}", one_line(e)))
    })?;
    let bytes = store.get_bytes().map_err(|e| {
        Error::checkpoint(path, format!("cannot serialise weights: {}", one_line(e)))
    })?;
    write_atomic(path, &bytes)
}

/// Loads weights saved by [`save_weights`] into `model`, which must have exactly the same
/// parameters and shapes.
pub fn load_weights<M: Module>(model: M, path: &Path) -> Result<M> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    load_weights_bytes(model, bytes, path)
}

/// [`load_weights`] from bytes in memory (e.g. weights compiled into the binary); `path` names
/// them in errors.
pub fn load_weights_bytes<M: Module>(mut model: M, bytes: Vec<u8>, path: &Path) -> Result<M> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(false)
        .validate(true);
    let result = model.load_from(&mut store).map_err(|e| {
        Error::checkpoint(
            path,
            format!("not a readable safetensors file: {}", one_line(e)),
        )
    })?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        let mut parts = Vec::new();
        if let Some(e) = result.errors.first() {
            parts.push(format!(
                "{} error(s), first: {}",
                result.errors.len(),
                one_line(e)
            ));
        }
        if let Some((m, _)) = result.missing.first() {
            parts.push(format!(
                "{} tensor(s) missing, first: {m}",
                result.missing.len()
            ));
        }
        if let Some(u) = result.unused.first() {
            parts.push(format!(
                "{} unexpected tensor(s), first: {u}",
                result.unused.len()
            ));
        }
        return Err(Error::checkpoint(
            path,
            format!(
                "weights do not match this model (from another model or config?): {}",
                parts.join("; ")
            ),
        ));
    }
    Ok(model)
}
