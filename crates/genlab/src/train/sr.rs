//! Training a super-resolution network on a folder of photos.
//!
//! Data: every training photo is read (by content), optionally shrunk by the `rescale` factors
//! (the FSRCNN paper's data augmentation), mod-cropped to the scale, and turned into its Y plane
//! (rounded, as MATLAB's `rgb2ycbcr`) and that plane's bicubic downscale (MATLAB `imresize`,
//! antialiased). Each step draws `batch_size` aligned patch pairs (LR `patch x patch`, HR
//! `scale patch` square) at random positions, with a random flip/rotation of the 8 symmetries of
//! the square. The loss is the mean squared error on [0, 1] Y values; Adam.
//!
//! Each epoch (`steps_per_epoch` steps) ends with a validation on `val` (Y-PSNR and SSIM with
//! `scale` pixels shaved, bicubic alongside), a line in `metrics.jsonl`, `loss.png`, and a
//! checkpoint. Resume, Ctrl-C and the NaN guard work as for the other families; the random
//! draws of step `k` depend only on (seed, k), so a resumed run continues exactly.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{
    Event, Observer, Outcome, append_record, end_epoch, read_records, stop_mid_epoch, trim_records,
};
use crate::checkpoint::{EpochSums, RunDir, TrainState, load_weights};
use crate::config::SrRunConfig;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::models::{Fsrcnn, FsrcnnConfig, SrModelConfig, SrNet};
use crate::nn::fused::FusedAdam;
use crate::nn::with_stable_ids;
use crate::plot::{Series, line_plot};
use crate::rng::{rng_for, stream};
use crate::sr::resize::imresize_f32;
use crate::sr::upscale::upscale_y;
use crate::sr::{Picture, Plane, psnr, ssim};

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

/// Aligned training planes: HR Y (rounded, [0, 255]) and its bicubic downscale.
struct Pair {
    hr: Plane,
    lr: Plane,
}

/// Loads the training photos as aligned (HR, LR) Y planes.
fn load_training(folder: &Path, scale: usize, rescale: &[f64], patch: usize) -> Result<Vec<Pair>> {
    let files = image_files(folder)?;
    let mut pairs = Vec::new();
    for f in &files {
        let pic = Picture::read(f)?;
        for &k in rescale {
            let (h, w) = (
                (pic.h as f64 * k).round() as usize,
                (pic.w as f64 * k).round() as usize,
            );
            if h / scale < patch || w / scale < patch {
                continue;
            }
            let p = if k == 1.0 {
                pic.clone()
            } else {
                pic.resize(h, w)
            };
            let hr = p.modcrop(scale).y_u8();
            let lr_data: Vec<f64> = imresize_f32(
                &hr.data.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                hr.h,
                hr.w,
                hr.h / scale,
                hr.w / scale,
            )
            .into_iter()
            .map(f64::from)
            .collect();
            let lr = Plane::new(hr.h / scale, hr.w / scale, lr_data);
            pairs.push(Pair { hr, lr });
        }
    }
    if pairs.is_empty() {
        return Err(Error::format(
            folder,
            format!(
                "no training image is at least {0}x{0} pixels (patch {patch} x scale {scale})",
                patch * scale
            ),
        ));
    }
    Ok(pairs)
}

/// The PNG/JPEG/BMP files of a folder, recognised by their first bytes (other files, such as a
/// README, are skipped), sorted by name.
pub fn image_files(folder: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(folder).map_err(|e| Error::io(folder, "read folder", e))?;
    let is_image = |p: &Path| {
        let mut head = [0u8; 16];
        std::fs::File::open(p)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .ok()
            .and_then(|n| image::guess_format(&head[..n]).ok())
            .is_some_and(|f| {
                matches!(
                    f,
                    image::ImageFormat::Png | image::ImageFormat::Jpeg | image::ImageFormat::Bmp
                )
            })
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::format(
            folder,
            "no PNG, JPEG or BMP images in this folder",
        ));
    }
    Ok(files)
}

/// A validation image: HR and LR pictures.
pub struct ValPair {
    /// The file the HR image came from.
    pub name: String,
    /// HR, mod-cropped to the scale.
    pub hr: Picture,
    /// LR: the folder's `*_LR` file when it has one, else MATLAB-bicubic of `hr`.
    pub lr: Picture,
}

/// Reads an evaluation folder. A folder with `NAME_HR.ext` / `NAME_LR.ext` pairs (the layout of
/// the standard Set5/Set14 releases) uses the given LR images; otherwise every image is an HR
/// image and its LR input is made by MATLAB-bicubic downscaling.
pub fn load_eval_folder(folder: &Path, scale: usize, max_images: usize) -> Result<Vec<ValPair>> {
    let files = image_files(folder)?;
    let paired = files.iter().any(|f| {
        f.file_stem()
            .is_some_and(|s| s.to_string_lossy().ends_with("_HR"))
    });
    let mut out = Vec::new();
    for f in &files {
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if paired && !stem.ends_with("_HR") {
            continue;
        }
        let hr = Picture::read(f)?.modcrop(scale);
        let lr = if paired {
            let lr_path = files
                .iter()
                .find(|g| {
                    g.file_stem().is_some_and(|s| {
                        s.to_string_lossy() == format!("{}_LR", &stem[..stem.len() - 3])
                    })
                })
                .ok_or_else(|| Error::format(f, "no matching *_LR image in the folder"))?;
            let lr = Picture::read(lr_path)?;
            if (lr.h * scale, lr.w * scale) != (hr.h, hr.w) {
                return Err(Error::format(
                    lr_path,
                    format!(
                        "LR image is {}x{}; x{scale} of it is not the HR image's {}x{}",
                        lr.w, lr.h, hr.w, hr.h
                    ),
                ));
            }
            lr
        } else {
            hr.resize(hr.h / scale, hr.w / scale)
        };
        out.push(ValPair {
            name: f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            hr,
            lr,
        });
        if max_images > 0 && out.len() == max_images {
            break;
        }
    }
    Ok(out)
}

/// Scores of one image.
#[derive(Debug, Clone, Serialize)]
pub struct SrScore {
    /// Image file name.
    pub name: String,
    /// Network Y-PSNR (dB).
    pub psnr: f64,
    /// Network SSIM.
    pub ssim: f64,
    /// Bicubic Y-PSNR (dB).
    pub bicubic_psnr: f64,
    /// Bicubic SSIM.
    pub bicubic_ssim: f64,
}

/// Scores a network on evaluation pairs by the standard protocol: Y channel (rounded), `scale`
/// pixels shaved, bicubic alongside (bicubic upscaling of the LR picture, then its Y).
pub fn score<N: SrNet>(net: &N, pairs: &[ValPair], device: &Device) -> Result<Vec<SrScore>> {
    let s = net.scale();
    pairs
        .iter()
        .map(|p| {
            let truth = p.hr.y_u8();
            let mut sr = upscale_y(net, &p.lr.y_u8(), 128, device)?;
            sr.data
                .iter_mut()
                .for_each(|v| *v = v.round().clamp(0.0, 255.0));
            let bic = p.lr.resize(p.hr.h, p.hr.w).y_u8();
            Ok(SrScore {
                name: p.name.clone(),
                psnr: psnr(&truth, &sr, s)?,
                ssim: ssim(&truth, &sr, s)?,
                bicubic_psnr: psnr(&truth, &bic, s)?,
                bicubic_ssim: ssim(&truth, &bic, s)?,
            })
        })
        .collect()
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Draws step `step`'s batch: `[b, 1, p, p]` LR and, in [0, 1], the HR patches' interiors
/// `[b, 1, (p - 2 e) s, (p - 2 e) s]` (`e` = `loss_border`): the HR pixels the loss scores.
fn draw_batch(
    pairs: &[Pair],
    cfg: &SrRunConfig,
    step: usize,
    device: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let t = &cfg.train;
    let s = cfg.model.scale();
    let (p, q) = (t.patch, t.patch * s);
    let e = t.loss_border * s; // HR pixels left out at each side
    let qi = q - 2 * e;
    let weights: Vec<usize> = pairs
        .iter()
        .map(|x| (x.lr.h - p + 1) * (x.lr.w - p + 1))
        .collect();
    let total: usize = weights.iter().sum();
    let mut rng = rng_for(t.seed, stream::SHUFFLE, step as u64);
    let mut lr = Vec::with_capacity(t.batch_size * p * p);
    let mut hr = Vec::with_capacity(t.batch_size * qi * qi);
    for _ in 0..t.batch_size {
        let mut k = rng.random_range(0..total);
        let i = weights
            .iter()
            .position(|&w| {
                if k < w {
                    true
                } else {
                    k -= w;
                    false
                }
            })
            .expect("k < total");
        let pair = &pairs[i];
        let y = rng.random_range(0..=pair.lr.h - p);
        let x = rng.random_range(0..=pair.lr.w - p);
        let sym = if t.augment {
            rng.random_range(0..8u8)
        } else {
            0
        };
        push_patch(&mut lr, &pair.lr, y, x, p, sym);
        // The 8 symmetries map a centred square onto itself, so the interior of the
        // transformed patch is the transformed interior.
        push_patch(&mut hr, &pair.hr, y * s + e, x * s + e, qi, sym);
    }
    let b = t.batch_size;
    (
        Tensor::<1>::from_floats(lr.as_slice(), device).reshape([b, 1, p, p]),
        Tensor::<1>::from_floats(hr.as_slice(), device).reshape([b, 1, qi, qi]),
    )
}

/// Appends a `n x n` patch at (y, x), under one of the 8 symmetries of the square, in [0, 1].
fn push_patch(out: &mut Vec<f32>, plane: &Plane, y: usize, x: usize, n: usize, sym: u8) {
    for r in 0..n {
        for c in 0..n {
            // (r, c) in the output patch reads (rr, cc) of the source patch.
            let (mut rr, mut cc) = if sym & 4 != 0 { (c, r) } else { (r, c) };
            if sym & 1 != 0 {
                rr = n - 1 - rr;
            }
            if sym & 2 != 0 {
                cc = n - 1 - cc;
            }
            out.push((plane.data[(y + rr) * plane.w + x + cc] / 255.0) as f32);
        }
    }
}

/// Trains (or resumes) a super-resolution run in `run`.
pub fn train_sr(
    run: &RunDir,
    cfg: &SrRunConfig,
    resume: bool,
    device: &Device,
    stop: &AtomicBool,
    obs: &mut dyn Observer,
) -> Result<Outcome> {
    cfg.validate()?;
    device.seed(cfg.train.seed);
    let ad = device.clone().autodiff();
    let init =
        (!resume && !cfg.train.init_from.is_empty()).then(|| RunDir::new(&cfg.train.init_from));
    match &cfg.model {
        SrModelConfig::Fsrcnn(m) => {
            let net = match &init {
                Some(src) => fsrcnn_from(m, src, &ad)?,
                None => m.init(&ad),
            };
            fit_sr(net, run, cfg, resume, device, stop, obs)
        }
        SrModelConfig::Espcn(m) => {
            let net = m.init(&ad);
            let net = match &init {
                Some(src) => load_weights(net, &src.weights())?,
                None => net,
            };
            fit_sr(net, run, cfg, resume, device, stop, obs)
        }
    }
}

/// The FSRCNN `m` starting from the weights of the SR run `src` (`train.init_from`). Every
/// layer is loaded, the upsampler included (its 9x9 kernel has the same shape at every scale,
/// so x3/x4 start from x2 as in the FSRCNN paper). When `src`'s `config.toml` is an FSRCNN
/// with the same `d` and `s` but fewer mapping layers, it is grown to `m` with identity layers
/// ([`Fsrcnn::deepen`]), so a deeper network continues from a trained shallower one.
fn fsrcnn_from(m: &FsrcnnConfig, src: &RunDir, device: &Device) -> Result<Fsrcnn> {
    let shallower = match load_sr_config(src) {
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

/// Reads an SR run's `config.toml`.
pub fn load_sr_config(run: &RunDir) -> Result<SrRunConfig> {
    let p = run.config();
    if !run.dir.is_dir() {
        return Err(Error::checkpoint(&run.dir, "run folder does not exist"));
    }
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "read", e))?;
    let cfg = SrRunConfig::from_toml(&text, &p)?;
    cfg.validate()?;
    Ok(cfg)
}

/// A function generic over the SR network (closures cannot be generic).
pub trait SrNetFn<T> {
    /// Runs with the loaded network.
    fn call<N: SrNet>(self, net: N) -> Result<T>;
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

fn fit_sr<N: SrNet>(
    net: N,
    run: &RunDir,
    cfg: &SrRunConfig,
    resume: bool,
    device: &Device,
    stop: &AtomicBool,
    obs: &mut dyn Observer,
) -> Result<Outcome> {
    let t = &cfg.train;
    let ad = device.clone().autodiff();
    let mut net = with_stable_ids(net);
    let mut optim: ModuleOptimizer =
        FusedAdam::new(t.betas[0] as f32, t.betas[1] as f32, t.eps as f32).init();
    let kind = cfg.model.kind();

    // (0) data first, so a bad folder fails before anything is written.
    let pairs = load_training(Path::new(&t.images), cfg.model.scale(), &t.rescale, t.patch)?;
    let val = if t.val.is_empty() {
        Vec::new()
    } else {
        load_eval_folder(Path::new(&t.val), cfg.model.scale(), t.max_val_images)?
    };

    // (1) start fresh or pick up the saved state.
    let mut state = if resume {
        let state = run.load_state()?;
        if state.kind != kind {
            return Err(Error::checkpoint(
                run.state(),
                format!(
                    "state is for a {} model, config.toml for a {kind}",
                    state.kind
                ),
            ));
        }
        (net, optim) = run.load_resume(net, optim, &state)?;
        trim_records::<SrEpochRecord>(run, state.epochs_done, |r| r.epoch)?;
        state
    } else {
        if run.state().exists() {
            return Err(Error::checkpoint(
                run.state(),
                "a run already exists here; use --resume to continue it or choose another --out",
            ));
        }
        crate::fsutil::create_dir_all(&run.dir.join("state"))?;
        write_atomic(&run.config(), cfg.to_toml().as_bytes())?;
        let _ = std::fs::remove_file(run.metrics());
        let mut s = TrainState {
            kind: kind.into(),
            step: 0,
            epochs_done: 0,
            batches_done: 0,
            partial: EpochSums::default(),
            status: "running".into(),
            elapsed_secs: 0.0,
            weights: String::new(),
            optimizer: String::new(),
        };
        run.save_checkpoint(&net, &optim, &mut s)?;
        s
    };

    let batches = t.steps_per_epoch;
    obs.on_event(Event::Start {
        epoch: state.epochs_done + 1,
        epochs: t.epochs,
        batches,
        skip: state.batches_done,
        params: net.num_params(),
    });
    for epoch in state.epochs_done..t.epochs {
        let halvings = epoch.checked_div(t.lr_halve_every).unwrap_or(0);
        let lr_now = t.lr * 0.5f64.powi(halvings as i32);
        let started = Instant::now();
        let mut seen = 0usize;
        while state.batches_done < batches {
            // (2) forward on this step's patches.
            let (x, y) = draw_batch(&pairs, cfg, state.step, &ad); // [b,1,p,p], [b,1,qi,qi]
            let out = net.forward(x); // [b, 1, p s, p s]
            let [b, _, q, _] = out.dims();
            let e = (q - y.dims()[2]) / 2;
            let out = out.slice([0..b, 0..1, e..q - e, e..q - e]); // [b, 1, qi, qi]
            let loss = (out - y).powi_scalar(2).mean();
            let l = f64::from(loss.clone().into_scalar::<f32>());
            // (3) guard: never step on a NaN/inf loss.
            if !l.is_finite() {
                return Err(Error::NonFiniteLoss {
                    value: if l.is_nan() { "NaN" } else { "inf" }.into(),
                    epoch: epoch + 1,
                    step: state.step,
                });
            }
            // (4) backward and Adam step.
            net = adam_step(&mut optim, net, loss, lr_now, t.output_lr_scale);
            // (5) bookkeeping.
            state.step += 1;
            state.batches_done += 1;
            state.partial.images += t.batch_size;
            state.partial.loss += l * t.batch_size as f64;
            seen += t.batch_size;
            let secs = started.elapsed().as_secs_f64();
            obs.on_event(Event::Batch {
                epoch: epoch + 1,
                batch: state.batches_done,
                batches,
                loss: l,
                images_per_sec: seen as f64 / secs.max(1e-9),
            });
            if let Some(out) = stop_mid_epoch(run, &net, &optim, &mut state, epoch, secs, stop)? {
                return Ok(out);
            }
        }
        let train_secs = started.elapsed().as_secs_f64();
        state.elapsed_secs += train_secs;

        // (6) end of epoch: validate, log, plot, checkpoint.
        let scores = score(&net.valid(), &val, device)?;
        let record = SrEpochRecord {
            epoch: epoch + 1,
            step: state.step,
            train_mse: state.partial.loss / state.partial.images.max(1) as f64,
            val_psnr: mean(scores.iter().map(|s| s.psnr)),
            val_ssim: mean(scores.iter().map(|s| s.ssim)),
            bicubic_psnr: mean(scores.iter().map(|s| s.bicubic_psnr)),
            bicubic_ssim: mean(scores.iter().map(|s| s.bicubic_ssim)),
            patches_per_sec: seen as f64 / train_secs.max(1e-9),
            elapsed_secs: state.elapsed_secs,
        };
        append_record(run, &record)?;
        plot_sr(run)?;
        let end = end_epoch(run, &net, &optim, &mut state, epoch, t.epochs, stop, || {
            obs.on_event(Event::SrEpoch(&record))
        })?;
        if let Some(out) = end {
            return Ok(out);
        }
    }
    Ok(Outcome::Finished(None))
}

/// Reads an SR run's `metrics.jsonl`.
pub fn read_sr_metrics(run: &RunDir) -> Result<Vec<SrEpochRecord>> {
    read_records(run)
}

fn plot_sr(run: &RunDir) -> Result<()> {
    let recs = read_sr_metrics(run)?;
    let pts = |f: &dyn Fn(&SrEpochRecord) -> f64| -> Vec<(f64, f64)> {
        recs.iter()
            .filter(|r| f(r).is_finite())
            .map(|r| (r.epoch as f64, f(r)))
            .collect()
    };
    line_plot(
        &run.loss_plot(),
        "validation Y-PSNR per epoch",
        "dB",
        &[
            Series {
                label: "network",
                points: pts(&|r| r.val_psnr),
            },
            Series {
                label: "bicubic",
                points: pts(&|r| r.bicubic_psnr),
            },
            Series {
                label: "train (from MSE)",
                points: pts(&|r| -10.0 * r.train_mse.log10()),
            },
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FsrcnnConfig;
    use crate::train::Silent;

    /// A folder of small synthetic photos (smooth gradients with an edge), as PNGs.
    fn photos(dir: &Path) {
        for k in 0..3u32 {
            let img = image::RgbImage::from_fn(40 + k * 4, 36, |x, y| {
                let v = ((x * 5 + y * 3 + k * 20) % 200) as u8 + if x > 20 { 40 } else { 0 };
                image::Rgb([v, v / 2 + 30, 255 - v])
            });
            img.save(dir.join(format!("p{k}.png"))).expect("write png");
        }
    }

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

    /// With a loss border the HR targets are the centred interiors of the border-0 targets
    /// (same draws, same symmetry), and the LR inputs do not change.
    #[test]
    fn loss_border_keeps_the_centred_interior_of_each_target() {
        let tmp = tempfile::tempdir().expect("tempdir");
        photos(tmp.path());
        let mut c = cfg(tmp.path(), 1);
        c.train.loss_border = 0;
        let pairs = load_training(tmp.path(), 2, &[1.0], 8).expect("load");
        let device = Device::flex();
        for step in 0..5 {
            let (x0, y0) = draw_batch(&pairs, &c, step, &device);
            let mut cb = c.clone();
            cb.train.loss_border = 3;
            let (x1, y1) = draw_batch(&pairs, &cb, step, &device);
            assert_eq!(y1.dims(), [4, 1, 4, 4]);
            x0.into_data().assert_eq(&x1.into_data(), true);
            y0.slice([0..4, 0..1, 6..10, 6..10])
                .into_data()
                .assert_eq(&y1.into_data(), true);
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

    /// Training lowers the loss, and 1 epoch + resume to 3 equals 3 epochs in one go.
    #[test]
    fn loss_falls_and_resume_matches_uninterrupted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let imgs = tmp.path().join("imgs");
        std::fs::create_dir(&imgs).expect("mkdir");
        photos(&imgs);
        let device = Device::flex();
        let stop = AtomicBool::new(false);
        let full = RunDir::new(tmp.path().join("full"));
        train_sr(&full, &cfg(&imgs, 3), false, &device, &stop, &mut Silent).expect("train");
        let recs = read_sr_metrics(&full).expect("metrics");
        assert_eq!(recs.len(), 3);
        assert!(recs[2].train_mse < recs[0].train_mse, "{recs:?}");
        assert!(recs[2].val_psnr.is_finite() && recs[2].bicubic_psnr.is_finite());

        let part = RunDir::new(tmp.path().join("part"));
        train_sr(&part, &cfg(&imgs, 1), false, &device, &stop, &mut Silent).expect("first");
        let mut c = load_sr_config(&part).expect("config");
        c.train.epochs = 3;
        write_atomic(&part.config(), c.to_toml().as_bytes()).expect("config");
        train_sr(&part, &c, true, &device, &stop, &mut Silent).expect("resume");
        // Same draws, same steps: the same curve up to float summation order (flex's threaded
        // reductions are not bit-reproducible).
        let resumed = read_sr_metrics(&part).expect("m");
        assert_eq!(resumed.len(), 3);
        for (x, y) in recs.iter().zip(&resumed) {
            assert_eq!(x.step, y.step);
            assert!(
                (x.train_mse - y.train_mse).abs() <= 1e-3 * x.train_mse,
                "{x:?} vs {y:?}"
            );
            assert!((x.val_psnr - y.val_psnr).abs() < 0.01, "{x:?} vs {y:?}");
        }
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
