//! The super-resolution family (`genlab train sr`): random patch pairs of a folder of photos
//! ([`PatchSampler`]), the mean squared error on [0, 1] Y values, Adam (the output layer at its
//! own rate). Each epoch (`steps_per_epoch` steps) ends with a validation on `val`: Y-PSNR and
//! SSIM with `scale` pixels shaved, bicubic alongside.

use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::family::FamilyFn;
use super::family::{At, EpochEnd, Family, Record, Series, Step, finite, scalar};
use super::fit::{Observer, Outcome, Plan};
use super::source::{Batch, BatchSource};
use crate::checkpoint::{RunDir, load_weights};
use crate::config::{SrRunConfig, SrTrainConfig};
use crate::error::Result;
use crate::models::{Fsrcnn, FsrcnnConfig, SrModelConfig, SrNet};
use crate::optim::adam;
use crate::sr::eval::{ValPair, load_eval_folder, mean, score};
use crate::sr::patches::{Pair, PatchSampler, load_pairs};

/// One line of an SR run's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrEpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps so far.
    pub step: usize,
    /// Mean training MSE on [0, 1] Y values over the epoch.
    pub train_mse: f64,
    /// Validation Y-PSNR of the network (dB), mean over images; NaN without a validation folder.
    #[serde(with = "nan_as_null")]
    pub val_psnr: f64,
    /// Validation SSIM of the network.
    #[serde(with = "nan_as_null")]
    pub val_ssim: f64,
    /// The same for bicubic upscaling.
    #[serde(with = "nan_as_null")]
    pub bicubic_psnr: f64,
    /// The same for bicubic upscaling.
    #[serde(with = "nan_as_null")]
    pub bicubic_ssim: f64,
    /// Training patches per second over the epoch.
    pub patches_per_sec: f64,
    /// Training wall time so far, seconds.
    pub elapsed_secs: f64,
}

/// JSON has no NaN: the scores of a run without a validation folder are written as `null` and
/// read back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

impl Record for SrEpochRecord {
    const PLOT_TITLE: &'static str = "validation Y-PSNR per epoch";
    const PLOT_UNITS: &'static str = "dB";
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn line(&self) -> String {
        let val = if self.val_psnr.is_nan() {
            "no validation folder".to_string()
        } else {
            format!(
                "val Y-PSNR {:.3} dB SSIM {:.4}  (bicubic {:.3} / {:.4})",
                self.val_psnr, self.val_ssim, self.bicubic_psnr, self.bicubic_ssim
            )
        };
        format!(
            "epoch {:>3}  train mse {:.6}  {val}  {:.0} patches/s",
            self.epoch, self.train_mse, self.patches_per_sec
        )
    }
    fn series() -> Vec<Series<Self>> {
        vec![
            ("network", |r| r.val_psnr),
            ("bicubic", |r| r.bicubic_psnr),
            ("train (from MSE)", |r| -10.0 * r.train_mse.log10()),
        ]
    }
}

/// The super-resolution family over network type `N` ([`Fsrcnn`] or [`crate::models::Espcn`]).
pub struct SuperResolution<N> {
    kind: &'static str,
    t: SrTrainConfig,
    sampler: PatchSampler,
    val: Vec<ValPair>,
    net: PhantomData<N>,
}

impl<N> SuperResolution<N> {
    /// The family for `cfg`, drawing patches from `pairs` and validating on `val`.
    pub fn new(cfg: &SrRunConfig, pairs: Vec<Pair>, val: Vec<ValPair>) -> Self {
        Self {
            kind: cfg.model.kind(),
            t: cfg.train.clone(),
            sampler: PatchSampler::new(pairs, cfg.model.scale(), &cfg.train),
            val,
            net: PhantomData,
        }
    }
}

impl<N: SrNet> Family for SuperResolution<N> {
    type Model = N;
    type Record = SrEpochRecord;

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn folders(&self) -> &'static [&'static str] {
        &[]
    }

    fn optimizer(&self, _: &N) -> ModuleOptimizer {
        adam(self.t.betas, self.t.eps)
    }

    fn source(&self) -> BatchSource<'_> {
        BatchSource::Patches {
            sampler: &self.sampler,
            steps: self.t.steps_per_epoch,
        }
    }

    fn step(
        &self,
        net: N,
        optim: &mut ModuleOptimizer,
        batch: Batch<'_>,
        at: At,
    ) -> Result<(N, Step)> {
        let Batch::Patches { lr: x, hr: y } = batch else {
            unreachable!("the super-resolution family draws patches")
        };
        let t = &self.t;
        let halvings = at.epoch.checked_div(t.lr_halve_every).unwrap_or(0);
        let lr_now = t.lr * 0.5f64.powi(halvings as i32);
        let out = net.forward(x); // [b, 1, p s, p s]
        let [b, _, q, _] = out.dims();
        let e = (q - y.dims()[2]) / 2;
        let out = out.slice([0..b, 0..1, e..q - e, e..q - e]); // [b, 1, qi, qi]
        let loss = (out - y).powi_scalar(2).mean();
        let l = finite(scalar(loss.clone()), "", at)?;
        let net = adam_step(optim, net, loss, lr_now, t.output_lr_scale);
        let n = self.sampler.batch_size();
        Ok((
            net,
            Step {
                loss: l,
                images: n,
                sums: vec![("loss", l * n as f64)],
            },
        ))
    }

    fn summarize(&self, net: &N, end: &EpochEnd<'_>) -> Result<SrEpochRecord> {
        let scores = score(net, &self.val, end.device)?;
        Ok(SrEpochRecord {
            epoch: end.epoch,
            step: end.step,
            train_mse: end.sums.mean("loss"),
            val_psnr: mean(scores.iter().map(|s| s.psnr)),
            val_ssim: mean(scores.iter().map(|s| s.ssim)),
            bicubic_psnr: mean(scores.iter().map(|s| s.bicubic_psnr)),
            bicubic_ssim: mean(scores.iter().map(|s| s.bicubic_ssim)),
            patches_per_sec: end.images_per_sec,
            elapsed_secs: end.elapsed_secs,
        })
    }
}

/// Refuses a super-resolution training whose batches would not fit in memory. The networks are
/// small (FSRCNN ~12k parameters): their feature maps on a batch of patches are what counts.
pub fn check_memory(cfg: &SrRunConfig) -> Result<()> {
    let t = &cfg.train;
    let s = cfg.model.scale();
    crate::memory::ensure(
        format!(
            "training on batches of {} patches of {} pixels (batch_size, patch)",
            t.batch_size, t.patch
        ),
        crate::memory::training_bytes(0, t.batch_size, t.patch * t.patch * s * s),
    )
}

/// Trains (or resumes) a super-resolution run in `run`. The photos and the validation folder are
/// read first, so a bad folder fails before anything is written.
pub fn train_sr(
    run: &RunDir,
    cfg: &SrRunConfig,
    resume: bool,
    device: &Device,
    stop: &AtomicBool,
    obs: &mut dyn Observer,
) -> Result<Outcome> {
    cfg.validate()?;
    let t = &cfg.train;
    let scale = cfg.model.scale();
    check_memory(cfg)?;
    let pairs = load_pairs(Path::new(&t.images), scale, &t.rescale, t.patch)?;
    let val = if t.val.is_empty() {
        Vec::new()
    } else {
        load_eval_folder(Path::new(&t.val), scale, t.max_val_images)?
    };
    // Weight init draws from the device RNG: seed it so a run is reproducible.
    device.seed(t.seed);
    let init = (!resume && !t.init_from.is_empty()).then(|| RunDir::new(&t.init_from));
    let plan = Plan {
        run,
        config_toml: cfg.to_toml(),
        epochs: t.epochs,
        resume,
        device,
        stop,
        obs,
    };
    with_sr_family(cfg, pairs, val, init.as_ref(), device, plan)
}

/// The super-resolution half of the registry ([`super::with_family`]): the family `cfg` names,
/// with its network initialised (from `init`'s weights when given) on `device`'s autodiff device.
pub fn with_sr_family<T>(
    cfg: &SrRunConfig,
    pairs: Vec<Pair>,
    val: Vec<ValPair>,
    init: Option<&RunDir>,
    device: &Device,
    f: impl FamilyFn<T>,
) -> Result<T> {
    let ad = device.clone().autodiff();
    match &cfg.model {
        SrModelConfig::Fsrcnn(m) => {
            let net = match init {
                Some(src) => fsrcnn_from(m, src, &ad)?,
                None => super::init_on_cpu(cfg.train.seed, &ad, |d| m.init(d)),
            };
            f.call(SuperResolution::new(cfg, pairs, val), net)
        }
        SrModelConfig::Espcn(m) => {
            let net = super::init_on_cpu(cfg.train.seed, &ad, |d| m.init(d));
            let net = match init {
                Some(src) => load_weights(net, &src.weights())?,
                None => net,
            };
            f.call(SuperResolution::new(cfg, pairs, val), net)
        }
    }
}

/// The FSRCNN `m` starting from the weights of the SR run `src` (`train.init_from`). Every
/// layer is loaded, the upsampler included (its 9x9 kernel has the same shape at every scale,
/// so x3/x4 start from x2 as in the FSRCNN paper). When `src`'s `config.toml` is an FSRCNN
/// with the same `d` and `s` but fewer mapping layers, it is grown to `m` with identity layers
/// ([`Fsrcnn::deepen`]), so a deeper network continues from a trained shallower one.
fn fsrcnn_from(m: &FsrcnnConfig, src: &RunDir, device: &Device) -> Result<Fsrcnn> {
    let shallower = match src.load_sr_config() {
        Ok(SrRunConfig {
            model: SrModelConfig::Fsrcnn(c),
            ..
        }) if c.d == m.d && c.s == m.s && c.m < m.m => Some(c.m),
        _ => None,
    };
    match shallower {
        Some(src_m) => {
            let net = FsrcnnConfig {
                m: src_m,
                ..m.clone()
            }
            .init(device);
            load_weights(net, &src.weights())?.deepen(m.m)
        }
        None => load_weights(m.init(device), &src.weights()),
    }
}

/// Backward pass of `loss` and one Adam update of `net`: the output layer at `lr *
/// output_lr_scale`, every other parameter at `lr`. Adam keeps its moments and step count per
/// parameter, so two steps over disjoint parameter sets are one update with two rates.
pub(crate) fn adam_step<N: SrNet>(
    optim: &mut ModuleOptimizer,
    net: N,
    loss: Tensor<1>,
    lr: f64,
    output_lr_scale: f64,
) -> N {
    let mut grads = loss.backward();
    let out_grads = net.take_output_grads(&mut grads);
    let grads = GradientsParams::from_grads(grads, &net);
    let net = optim.step(lr, net, grads);
    optim.step(lr * output_lr_scale, net, out_grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FsrcnnConfig;
    use crate::train::Silent;

    fn cfg(images: &Path, epochs: usize) -> SrRunConfig {
        SrRunConfig {
            model: SrModelConfig::Fsrcnn(FsrcnnConfig {
                scale: 2,
                d: 8,
                s: 4,
                m: 1,
            }),
            train: crate::config::SrTrainConfig {
                images: images.display().to_string(),
                val: images.display().to_string(),
                epochs,
                steps_per_epoch: 4,
                batch_size: 4,
                patch: 8,
                loss_border: 2,
                rescale: vec![1.0, 0.8],
                lr: 3e-3,
                ..Default::default()
            },
        }
    }

    #[test]
    fn records_without_validation_round_trip_through_json() {
        let r = SrEpochRecord {
            epoch: 1,
            step: 2,
            train_mse: 0.5,
            val_psnr: f64::NAN,
            val_ssim: f64::NAN,
            bicubic_psnr: f64::NAN,
            bicubic_ssim: f64::NAN,
            patches_per_sec: 3.0,
            elapsed_secs: 4.0,
        };
        let back: SrEpochRecord =
            serde_json::from_str(&serde_json::to_string(&r).expect("json")).expect("parse");
        assert!(back.val_psnr.is_nan() && back.train_mse == 0.5);
    }

    #[test]
    fn config_round_trips_through_toml() {
        let c = cfg(Path::new("x"), 3);
        assert_eq!(
            SrRunConfig::from_toml(&c.to_toml(), Path::new("c")).expect("parse"),
            c
        );
    }

    #[test]
    fn folders_without_usable_images_are_errors() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = train_sr(
            &RunDir::new(tmp.path().join("r")),
            &cfg(&tmp.path().join("missing"), 1),
            false,
            &Device::flex(),
            &AtomicBool::new(false),
            &mut Silent,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing"), "{err}");
        assert!(
            !tmp.path().join("r").exists(),
            "nothing written for a bad folder"
        );
    }
}
