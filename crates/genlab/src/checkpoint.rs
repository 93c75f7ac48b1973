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
use burn::store::{
    ApplyError, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::{RunConfig, SrRunConfig};
use crate::error::{Error, Result, one_line};
use crate::fsutil::{FolderLock, claim_new_folder, create_dir_all, write_atomic};
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

    /// Registers the run's files as inputs of a command that reads the run, so none of them
    /// can be one of its outputs.
    pub fn protect(&self, outputs: &mut crate::fsutil::Outputs) {
        for p in [
            self.config(),
            self.weights(),
            self.state(),
            self.metrics(),
            self.loss_plot(),
            self.dir.join("state"),
            self.dir.join("samples"),
            self.dir.join("reconstructions"),
            self.dir.join(crate::fsutil::LOCK_FILE),
        ] {
            outputs.input(&p);
        }
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
        let text = crate::fsutil::read_text(&p)?;
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
        let text = crate::fsutil::read_text(&p)?;
        let cfg = SrRunConfig::from_toml(&text, &p)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads `state.json`, checking that the files it names are inside the run's `state/`.
    pub fn load_state(&self) -> Result<TrainState> {
        let p = self.state();
        if !p.exists() {
            return Err(Error::checkpoint(
                &p,
                "missing: not a run folder, or a run stopped before its first checkpoint (then delete the folder and start again)",
            ));
        }
        let text = crate::fsutil::read_text(&p)?;
        let s: TrainState = serde_json::from_str(&text)
            .map_err(|e| Error::checkpoint(&p, format!("not a genlab training state: {e}")))?;
        for (key, f) in [("weights", &s.weights), ("optimizer", &s.optimizer)] {
            let inside = f.strip_prefix("state/").is_some_and(|name| {
                crate::fsutil::stays_inside(name) && !name.contains('/') && !name.contains('\\')
            });
            if !f.is_empty() && !inside {
                return Err(Error::checkpoint(
                    &p,
                    format!("{key} = {f:?}: expected a file name inside the run's state/ folder"),
                ));
            }
        }
        if !s.partial.sums.values().all(|v| v.is_finite()) {
            return Err(Error::checkpoint(&p, "partial sums are not finite numbers"));
        }
        Ok(s)
    }

    /// Starts a new run here: the folder must be new or empty; it is created with `state/` and
    /// the named sub-folders, and locked until the returned guard drops.
    pub fn create_new(&self, folders: &[&str]) -> Result<FolderLock> {
        let hint = if self.state().exists() {
            "it holds a run; continue it with `genlab train --resume`, or choose another --out"
        } else {
            "choose another --out"
        };
        let lock = claim_new_folder(&self.dir, hint)?;
        self.create(folders)?;
        Ok(lock)
    }

    /// Opens an existing run for writing (resume): locks it, removes the temporary files a
    /// killed write left (in the folder and the named sub-folders) and reads `state.json`.
    pub fn open_for_resume(&self, folders: &[&str]) -> Result<(FolderLock, TrainState)> {
        if !self.dir.is_dir() {
            return Err(Error::checkpoint(&self.dir, "run folder does not exist"));
        }
        let lock = FolderLock::acquire(&self.dir)?;
        for d in ["", "state"].iter().chain(folders) {
            crate::fsutil::remove_leftovers(&self.dir.join(d))?;
        }
        let state = self.load_state()?;
        Ok((lock, state))
    }

    /// Removes resume pairs in `state/` other than the one `state` names (a kill between
    /// writing a checkpoint's `state.json` and deleting the previous pair leaves that pair).
    /// Call it only once the named pair has loaded, so a bad `state.json` never costs a good
    /// pair.
    pub fn remove_stale_pairs(&self, state: &TrainState) {
        let keep = [state.weights.as_str(), state.optimizer.as_str()];
        if let Ok(entries) = std::fs::read_dir(self.dir.join("state")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let ours = (name.starts_with("weights-") && name.ends_with(".safetensors"))
                    || (name.starts_with("optimizer-") && name.ends_with(".bpk"));
                if ours && !keep.contains(&format!("state/{name}").as_str()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
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
        crate::fsutil::pause_point("checkpoint-pair");
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
        let bytes = crate::fsutil::read_capped(&p, u64::MAX)?;
        let optim = optim
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| Error::checkpoint(&p, format!("corrupt optimizer state: {e}")))?;
        Ok((model, optim))
    }
}

/// The `[model] kind` of a run folder's `config.toml` (`vae`, `ae`, `fsrcnn`, ...), without
/// parsing the rest: how commands tell a super-resolution run from a generative one.
pub fn run_kind(dir: &Path) -> Result<String> {
    let p = dir.join("config.toml");
    if !dir.is_dir() {
        return Err(Error::checkpoint(dir, "run folder does not exist"));
    }
    let text = crate::fsutil::read_text(&p)?;
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
    // burn keeps a batch norm's latest running-average update pending until something syncs
    // it, and its record reads the value without syncing: a checkpoint written mid-epoch held
    // the averages one update old, so a resumed run evaluated differently from an unbroken one.
    // `valid` syncs the shared running states (the copy it returns is dropped).
    let _ = model.valid();
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
    let bytes = crate::fsutil::read_capped(path, u64::MAX)?;
    load_weights_bytes(model, bytes, path)
}

/// [`load_weights`] from bytes in memory (e.g. weights compiled into the binary); `path` names
/// them in errors. Tensors of any float dtype are converted to f32 first; integer tensors and
/// non-finite values are refused.
pub fn load_weights_bytes<M: Module>(mut model: M, bytes: Vec<u8>, path: &Path) -> Result<M> {
    let bytes = as_f32_weights(bytes, path)?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter)
        // Partial and unvalidated, so that every mismatch comes back in the result, which the
        // message below writes out (burn's own errors print a multi-line report).
        .allow_partial(true)
        .validate(false);
    let result = model.load_from(&mut store).map_err(|e| {
        Error::checkpoint(
            path,
            format!("not a readable safetensors file: {}", one_line(e)),
        )
    })?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        let mut parts = Vec::new();
        if let Some(e) = result.errors.first() {
            let first = match e {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => format!(
                    "tensor {path} has shape {:?}, this model's is {:?}",
                    found.as_slice(),
                    expected.as_slice()
                ),
                ApplyError::DTypeMismatch {
                    path,
                    expected,
                    found,
                } => format!("tensor {path} is {found:?}, this model's is {expected:?}"),
                ApplyError::AdapterError { path, message }
                | ApplyError::LoadError { path, message } => {
                    format!("tensor {path}: {}", one_line(message))
                }
            };
            parts.push(format!(
                "{} mismatched, first: {first}",
                result.errors.len()
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

/// A safetensors file with every tensor as finite f32: F16, BF16 and F64 tensors are
/// converted (the file's metadata kept), F32 files pass through unchanged. Integer or boolean
/// tensors, and NaN/inf values, are errors naming the tensor.
pub fn as_f32_weights(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    use safetensors::{Dtype, SafeTensors, tensor::TensorView};
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::checkpoint(path, format!("not a safetensors file: {}", one_line(e))))?;
    let mut tensors = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut converted: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    // An all-f32 file (what genlab writes) passes through as it is, checked but not copied.
    let changed = tensors.iter().any(|(_, t)| t.dtype() != Dtype::F32);
    for (name, t) in &tensors {
        let d = t.data();
        let values: Vec<f32> = match t.dtype() {
            Dtype::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F64 => d
                .chunks_exact(8)
                .map(|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
            other => {
                return Err(Error::checkpoint(
                    path,
                    format!(
                        "tensor {name} is {other:?}; weights must be floating point (F32, F16, BF16 or F64)"
                    ),
                ));
            }
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::checkpoint(
                path,
                format!(
                    "tensor {name} holds {} at index {i}: the weights are not usable (a diverged training?)",
                    values[i]
                ),
            ));
        }
        if changed {
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            converted.push((name.clone(), t.shape().to_vec(), raw));
        }
    }
    if !changed {
        return Ok(bytes);
    }
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::checkpoint(path, format!("not a safetensors file: {}", one_line(e))))?;
    let info = meta.metadata().clone();
    let views = converted
        .iter()
        .map(|(n, shape, raw)| {
            TensorView::new(Dtype::F32, shape.clone(), raw).map(|v| (n.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::checkpoint(path, format!("cannot convert to f32: {e}")))?;
    safetensors::serialize(views, info)
        .map_err(|e| Error::checkpoint(path, format!("cannot convert to f32: {e}")))
}
