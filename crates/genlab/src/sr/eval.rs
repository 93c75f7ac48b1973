//! Scoring super-resolution by the literature's protocol: HR mod-cropped to the scale, the LR
//! given beside it (`*_LR`, as the standard Set5/Set14 releases ship) or MATLAB-bicubic made, Y
//! channel (rounded), `scale` pixels shaved from each border, PSNR and SSIM, bicubic alongside.

use std::path::Path;

use burn::prelude::*;
use serde::Serialize;

use super::upscale::upscale_y;
use super::{Picture, psnr, ssim};
use crate::data::image_dir::image_files;
use crate::error::{Error, Result};
use crate::models::SrNet;

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
            let sr = upscale_y(net, &p.lr.y_u8(), 128, device)?.rounded();
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

pub(crate) fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}
