//! The studio's state: the runs named at start (by id), each loaded once and lazily (model,
//! dataset, map of the codes, classifier features), and the bounded pool the model work runs
//! on, off the async threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use genlab::checkpoint::run_task;
use genlab::data::{Dataset, batch_tensor};
use genlab::explore::{Conditioned, Encoding, Explorer, Generating, Pca};
use genlab::metrics::frechet::Features;
use genlab::metrics::generative::{FeatureNet, shipped_classifier};
use genlab::models::Task;
use genlab::models::{Classifier, Conditional, Generative, ImageModel, ModelVisitor};
use serde::Serialize;

use super::ApiError;
use crate::common::OpenRun;
use crate::sr_model::{LoadedSr, SrModel};

/// Codes put on the map: the first this many test images (or noise draws, for a GAN).
pub const MAP_POINTS: usize = 2000;
/// Principal directions sent for the sliders of a wide latent space.
pub const SLIDER_DIRECTIONS: usize = 8;
/// Latent spaces this wide or narrower get a slider per dimension.
pub const MAX_DIM_SLIDERS: usize = 32;
/// Requests waiting for the pool beyond which the studio answers 503.
const MAX_WAITING: usize = 4096;

/// One run of images (generative) the studio serves.
pub struct RunEntry {
    /// Its folder name as given (for display only: no endpoint takes a path).
    pub name: String,
    pub run: OpenRun,
    /// Trainable parameters (counted once, at start: counting builds the model).
    pub params: usize,
    /// The model, with the time of the weights it was loaded from.
    model: Mutex<Option<(std::time::SystemTime, Arc<Explorer>)>>,
    /// The map, with the model it was made with.
    map: Mutex<Option<(Arc<Explorer>, Arc<MapData>)>>,
}

/// A super-resolution model: shipped, or a run named at start.
pub struct SrEntry {
    pub name: String,
    pub scale: usize,
    pub model: SrModel,
    net: Mutex<Option<Arc<LoadedSr>>>,
}

/// The codes of a run laid out for the page.
#[derive(Serialize)]
pub struct MapData {
    /// `test set` or `noise` (GANs).
    pub source: &'static str,
    /// Class of each point, where the dataset has labels.
    pub labels: Option<Vec<u8>>,
    /// Class names of the dataset (for the legend).
    pub label_names: Vec<String>,
    /// Each point's first two principal coordinates.
    pub points: Vec<[f32; 2]>,
    /// The codes' principal directions (mean, leading components, spread along each).
    pub pca: Pca,
    /// What the sliders move along: `z = origin + sum_i t_i * scales[i] * directions[i]`,
    /// `t_i` in [-3, 3].
    pub sliders: Sliders,
}

/// The sliders of the latent explorer.
#[derive(Serialize)]
pub struct Sliders {
    /// `dimension` (a slider per coordinate) or `principal` (leading principal directions).
    pub kind: &'static str,
    pub origin: Vec<f32>,
    pub directions: Vec<Vec<f32>>,
    pub scales: Vec<f32>,
}

/// Everything the handlers share.
pub struct Studio {
    pub runs: Vec<RunEntry>,
    pub sr: Vec<SrEntry>,
    pub device: Device,
    data_dir: Option<PathBuf>,
    datasets: Mutex<HashMap<String, Arc<Dataset>>>,
    features: Mutex<HashMap<String, Arc<(FeatureNet, Features)>>>,
    pool: tokio::sync::Semaphore,
    waiting: AtomicUsize,
}

impl Studio {
    /// Opens every run folder named (or found one level under a folder named), and the shipped
    /// super-resolution models.
    pub fn open(
        paths: &[PathBuf],
        data_dir: Option<PathBuf>,
        workers: usize,
        device: Device,
    ) -> Result<Self> {
        let mut runs = Vec::new();
        let mut sr = Vec::new();
        for scale in 2..=4 {
            let model = SrModel::open(None, Some(scale))?;
            sr.push(SrEntry {
                name: format!("FSRCNN x{scale} (shipped)"),
                scale,
                model,
                net: Mutex::new(None),
            });
        }
        for p in paths {
            let found = find_runs(p)?;
            if found.is_empty() {
                bail!(
                    "{}: no run folder (config.toml) here or in its sub-folders",
                    p.display()
                );
            }
            for dir in found {
                let name = dir.display().to_string();
                match run_task(&dir)? {
                    Task::SuperResolution => {
                        let model = SrModel::open(Some(&dir), None)?;
                        sr.push(SrEntry {
                            scale: model.config.model.scale(),
                            name,
                            model,
                            net: Mutex::new(None),
                        });
                    }
                    Task::Images => {
                        // Weights may not exist yet (a training just started): its curves
                        // show as they come, its model loads once there are weights.
                        let run = OpenRun::open(&dir)?;
                        runs.push(RunEntry {
                            name,
                            params: run.config.model.num_params(),
                            run,
                            model: Mutex::new(None),
                            map: Mutex::new(None),
                        });
                    }
                }
            }
        }
        Ok(Self {
            runs,
            sr,
            device,
            data_dir,
            datasets: Mutex::default(),
            features: Mutex::default(),
            pool: tokio::sync::Semaphore::new(workers.max(1)),
            waiting: AtomicUsize::new(0),
        })
    }

    /// The run with this id, or 404.
    pub fn run(&self, id: usize) -> Result<&RunEntry, ApiError> {
        self.runs.get(id).ok_or_else(|| {
            ApiError::not_found(format!("no run {id} (ids are 0..{})", self.runs.len()))
        })
    }

    /// Runs `f` on the bounded pool: at most `workers` at once, off the async threads.
    pub async fn work<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Studio) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::busy());
        }
        let permit = self.pool.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(|_| ApiError::busy())?;
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| ApiError::internal(format!("a worker failed: {e}")))?
    }

    /// The run's model, loaded on first use, and again when a training in another process has
    /// written new weights since (checkpoints are renamed into place whole).
    pub fn model(&self, e: &RunEntry) -> Result<Arc<Explorer>, ApiError> {
        let w = e.run.dir.weights();
        let Ok(written) = std::fs::metadata(&w).and_then(|m| m.modified()) else {
            return Err(ApiError::unavailable(format!(
                "{}: no weights yet (the run has not finished an epoch)",
                e.name
            )));
        };
        let mut slot = e.model.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, m)) = &*slot
            && *t == written
        {
            return Ok(Arc::clone(m));
        }
        let m = Arc::new(
            open_explorer(&e.run, &self.device)
                .map_err(|err| ApiError::bad(format!("{}: {err:#}", e.name)))?,
        );
        *slot = Some((written, Arc::clone(&m)));
        Ok(m)
    }

    /// The super-resolution network, loaded on first use.
    pub fn sr_net(&self, m: &SrEntry) -> Result<Arc<LoadedSr>, ApiError> {
        let mut slot = m.net.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = &*slot {
            return Ok(Arc::clone(n));
        }
        let n = Arc::new(
            m.model
                .load(&self.device)
                .map_err(|e| ApiError::internal(format!("{}: {e:#}", m.name)))?,
        );
        *slot = Some(Arc::clone(&n));
        Ok(n)
    }

    /// The run's dataset (shared by runs on the same one), loaded on first use.
    pub fn dataset(&self, e: &RunEntry) -> Result<Arc<Dataset>, ApiError> {
        let key = e.run.config.train.dataset.clone();
        if let Some(d) = self.lock_datasets().get(&key) {
            return Ok(Arc::clone(d));
        }
        let d = Arc::new(
            crate::common::dataset(&e.run, self.data_dir.clone())
                .map_err(|err| ApiError::unavailable(format!("{err:#}")))?,
        );
        self.lock_datasets().insert(key, Arc::clone(&d));
        Ok(d)
    }

    fn lock_datasets(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Dataset>>> {
        self.datasets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shipped feature classifier of the run's dataset and the features of its training
    /// images, computed on first use; `None` for a dataset genlab ships no classifier for.
    pub fn features(&self, e: &RunEntry) -> Result<Option<Arc<(FeatureNet, Features)>>, ApiError> {
        let key = e.run.config.train.dataset.clone();
        let mut all = self.features.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = all.get(&key) {
            return Ok(Some(Arc::clone(f)));
        }
        let Ok(net) = shipped_classifier(&key, &self.device) else {
            return Ok(None);
        };
        let data = self.dataset(e)?;
        let feats = net
            .features_of_set(&data.train, &self.device)
            .map_err(|err| ApiError::internal(err.to_string()))?;
        let f = Arc::new((net, feats));
        all.insert(key, Arc::clone(&f));
        Ok(Some(f))
    }

    /// The run's map of codes and its sliders, computed on first use (and for each new model).
    pub fn map(&self, e: &RunEntry) -> Result<Arc<MapData>, ApiError> {
        let model = self.model(e)?;
        let mut slot = e.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((of, m)) = &*slot
            && Arc::ptr_eq(of, &model)
        {
            return Ok(Arc::clone(m));
        }
        let m = Arc::new(self.build_map(e, &model)?);
        *slot = Some((model, Arc::clone(&m)));
        Ok(m)
    }

    fn build_map(&self, e: &RunEntry, model: &Explorer) -> Result<MapData, ApiError> {
        let d = model.latent();
        let internal = |err: genlab::Error| ApiError::internal(err.to_string());
        let (codes, labels, label_names, source) = if model.can_encode() {
            let data = self.dataset(e)?;
            let n = data.test.len().min(MAP_POINTS);
            let labels = data.test.labels.as_ref().map(|l| l[..n].to_vec());
            let mut codes = Vec::with_capacity(n * d);
            let idx: Vec<usize> = (0..n).collect();
            for chunk in idx.chunks(250) {
                let x = batch_tensor(&data.test, chunk, &self.device);
                let given: Vec<usize> = if model.classes().is_empty() {
                    Vec::new()
                } else {
                    genlab::data::batch_labels(&data.test, chunk, model.classes().len())
                        .map_err(internal)?
                };
                let z = model
                    .encode(x, &given)
                    .map_err(internal)?
                    .expect("an encoder");
                codes.extend(vec_of(z)?);
            }
            (codes, labels, data.classes.clone(), "test set")
        } else {
            let mut rng = genlab::rng::rng_for(0, genlab::rng::stream::SAMPLE, 1);
            let z = genlab::rng::standard_normal(&mut rng, MAP_POINTS, d, &self.device);
            (vec_of(z)?, None, Vec::new(), "noise")
        };
        let pca = Pca::fit(&codes, d, SLIDER_DIRECTIONS.max(2)).map_err(internal)?;
        let points = codes
            .chunks(d)
            .map(|c| {
                let p = pca.project(c);
                [p[0], p.get(1).copied().unwrap_or(0.0)]
            })
            .collect();
        let sliders = if d <= MAX_DIM_SLIDERS {
            // A prior model's coordinates are N(0, I): sliders around 0 in unit steps; an
            // autoencoder's codes have no prior: around their mean, in their spread.
            let n = (codes.len() / d).max(1) as f32;
            let (origin, scales) = if model.has_prior() {
                (vec![0.0; d], vec![1.0; d])
            } else {
                let std = (0..d)
                    .map(|j| {
                        let m = pca.mean[j];
                        let v: f32 = codes.chunks(d).map(|c| (c[j] - m).powi(2)).sum::<f32>() / n;
                        v.sqrt().max(1e-3)
                    })
                    .collect();
                (pca.mean.clone(), std)
            };
            let directions = (0..d)
                .map(|i| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
                .collect();
            Sliders {
                kind: "dimension",
                origin,
                directions,
                scales,
            }
        } else {
            Sliders {
                kind: "principal",
                origin: pca.mean.clone(),
                directions: pca.components.clone(),
                scales: pca.scales.iter().map(|s| s.max(1e-3)).collect(),
            }
        };
        Ok(MapData {
            source,
            labels,
            label_names,
            points,
            pca,
            sliders,
        })
    }
}

/// The run's model as an [`Explorer`], loaded through the registry ([`ModelVisitor`]), so
/// the studio needs no edit for a new family: one with an encoder as [`Encoding`], a generator
/// as [`Generating`], a conditional one as [`Conditioned`].
fn open_explorer(run: &OpenRun, device: &Device) -> Result<Explorer> {
    struct V<'a>(&'a OpenRun);
    impl ModelVisitor<Result<Explorer>> for V<'_> {
        fn encoder_with_prior<M: ImageModel + Generative>(self, m: M) -> Result<Explorer> {
            Ok(Explorer::new(Encoding(m)))
        }
        fn encoder<M: ImageModel>(self, m: M) -> Result<Explorer> {
            Ok(Explorer::new(Encoding(m)))
        }
        fn generator<G: Generative>(self, g: G) -> Result<Explorer> {
            Ok(Explorer::new(Generating(g)))
        }
        fn conditional<G: Conditional>(self, g: G) -> Result<Explorer> {
            Ok(Explorer::new(Conditioned(g)))
        }
        fn classifier(self, _: Classifier) -> Result<Explorer> {
            bail!(
                "{}: a classifier run has no latent space to explore",
                self.0.dir.dir.display()
            )
        }
    }
    run.config.model.load(device, &run.dir.weights(), V(run))?
}

/// A 2-D tensor's values, row-major.
pub fn vec_of(t: Tensor<2>) -> Result<Vec<f32>, ApiError> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| ApiError::internal(format!("reading a tensor: {e:?}")))
}

/// `p` itself when it is a run folder, else the run folders one level below it (sorted).
fn find_runs(p: &Path) -> Result<Vec<PathBuf>> {
    if p.join("config.toml").is_file() {
        return Ok(vec![p.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(p).with_context(|| format!("{}: reading the folder", p.display()))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| d.join("config.toml").is_file())
        .collect();
    out.sort();
    Ok(out)
}
