//! Training data for super-resolution: aligned (HR, LR) Y planes of a folder of photos, and random
//! patch pairs cut from them.
//!
//! Every training photo is read (by content), optionally shrunk by the `rescale` factors (the
//! FSRCNN paper's data augmentation), mod-cropped to the scale, and turned into its Y plane
//! (rounded, as MATLAB's `rgb2ycbcr`) and that plane's bicubic downscale (MATLAB `imresize`,
//! antialiased). Each draw takes `batch_size` aligned patch pairs (LR `patch x patch`, HR
//! `scale patch` square) at random positions, with a random flip/rotation of the 8 symmetries of
//! the square. The draws of step `k` depend only on `(seed, k)`, so a resumed run continues
//! exactly.

use std::path::Path;

use burn::prelude::*;
use rand::RngExt;

use super::resize::imresize_f32;
use super::{Picture, Plane};
use crate::config::SrTrainConfig;
use crate::data::image_dir::image_files;
use crate::error::{Error, Result};
use crate::image_io::unit_from_255;
use crate::rng::{rng_for, stream};

/// Aligned training planes: HR Y (rounded, [0, 255]) and its bicubic downscale.
pub struct Pair {
    /// High resolution.
    pub hr: Plane,
    /// Low resolution (`1 / scale` of `hr`).
    pub lr: Plane,
}

/// Loads the training photos of `folder` as aligned (HR, LR) Y planes, each at every `rescale`
/// factor at which it still holds a patch.
pub fn load_pairs(folder: &Path, scale: usize, rescale: &[f64], patch: usize) -> Result<Vec<Pair>> {
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
            pairs.push(Pair::from_hr(p.modcrop(scale).y_u8(), scale));
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

impl Pair {
    /// `hr` (a mod-cropped Y plane) and its MATLAB-bicubic `1 / scale` downscale.
    pub fn from_hr(hr: Plane, scale: usize) -> Self {
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
        Self { hr, lr }
    }
}

/// Draws batches of aligned patch pairs from training planes.
pub struct PatchSampler {
    pairs: Vec<Pair>,
    scale: usize,
    patch: usize,
    loss_border: usize,
    batch_size: usize,
    augment: bool,
    seed: u64,
}

impl PatchSampler {
    /// Patches of `pairs` cut as `t` says (`patch`, `loss_border`, `batch_size`, `augment`,
    /// `seed`) at upscaling factor `scale`. Every pair must hold at least one patch.
    pub fn new(pairs: Vec<Pair>, scale: usize, t: &SrTrainConfig) -> Self {
        Self {
            pairs,
            scale,
            patch: t.patch,
            loss_border: t.loss_border,
            batch_size: t.batch_size,
            augment: t.augment,
            seed: t.seed,
        }
    }

    /// Patches per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Step `step`'s batch: `[b, 1, p, p]` LR and, in [0, 1], the HR patches' interiors
    /// `[b, 1, (p - 2 e) s, (p - 2 e) s]` (`e` = `loss_border`): the HR pixels the loss scores.
    pub fn draw(&self, step: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let s = self.scale;
        let (p, q) = (self.patch, self.patch * s);
        let e = self.loss_border * s; // HR pixels left out at each side
        let qi = q - 2 * e;
        let weights: Vec<usize> = self
            .pairs
            .iter()
            .map(|x| (x.lr.h - p + 1) * (x.lr.w - p + 1))
            .collect();
        let total: usize = weights.iter().sum();
        let mut rng = rng_for(self.seed, stream::SHUFFLE, step as u64);
        let b = self.batch_size;
        let mut lr = Vec::with_capacity(b * p * p);
        let mut hr = Vec::with_capacity(b * qi * qi);
        for _ in 0..b {
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
            let pair = &self.pairs[i];
            let y = rng.random_range(0..=pair.lr.h - p);
            let x = rng.random_range(0..=pair.lr.w - p);
            let sym = if self.augment {
                rng.random_range(0..8u8)
            } else {
                0
            };
            push_patch(&mut lr, &pair.lr, y, x, p, sym);
            // The 8 symmetries map a centred square onto itself, so the interior of the
            // transformed patch is the transformed interior.
            push_patch(&mut hr, &pair.hr, y * s + e, x * s + e, qi, sym);
        }
        (
            Tensor::<1>::from_floats(lr.as_slice(), device).reshape([b, 1, p, p]),
            Tensor::<1>::from_floats(hr.as_slice(), device).reshape([b, 1, qi, qi]),
        )
    }
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
            out.push(unit_from_255(plane.data[(y + rr) * plane.w + x + cc]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of small synthetic photos (smooth gradients with an edge), as PNGs.
    pub(crate) fn photos(dir: &Path) {
        for k in 0..3u32 {
            let img = image::RgbImage::from_fn(40 + k * 4, 36, |x, y| {
                let v = ((x * 5 + y * 3 + k * 20) % 200) as u8 + if x > 20 { 40 } else { 0 };
                image::Rgb([v, v / 2 + 30, 255 - v])
            });
            img.save(dir.join(format!("p{k}.png"))).expect("write png");
        }
    }

    /// With a loss border the HR targets are the centred interiors of the border-0 targets
    /// (same draws, same symmetry), and the LR inputs do not change.
    #[test]
    fn loss_border_keeps_the_centred_interior_of_each_target() {
        let tmp = tempfile::tempdir().expect("tempdir");
        photos(tmp.path());
        let t = SrTrainConfig {
            batch_size: 4,
            patch: 8,
            ..Default::default()
        };
        let device = Device::flex();
        let plain = PatchSampler::new(load_pairs(tmp.path(), 2, &[1.0], 8).expect("load"), 2, &t);
        let bordered = PatchSampler::new(
            load_pairs(tmp.path(), 2, &[1.0], 8).expect("load"),
            2,
            &SrTrainConfig {
                loss_border: 3,
                ..t.clone()
            },
        );
        for step in 0..5 {
            let (x0, y0) = plain.draw(step, &device);
            let (x1, y1) = bordered.draw(step, &device);
            assert_eq!(y1.dims(), [4, 1, 4, 4]);
            x0.into_data().assert_eq(&x1.into_data(), true);
            y0.slice([0..4, 0..1, 6..10, 6..10])
                .into_data()
                .assert_eq(&y1.into_data(), true);
        }
    }
}
