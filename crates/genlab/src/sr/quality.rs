//! The super-resolution literature's scores: PSNR and SSIM on a `[h, w]` plane of values in
//! [0, 255] (the BT.601 Y channel), with `shave` pixels cut from every border first.
//!
//! SSIM is Wang et al. 2004's: an 11x11 Gaussian window (sigma 1.5) applied where it fits
//! ("valid"), K1 = 0.01, K2 = 0.03, L = 255, population (not sample) covariances, averaged over
//! the map; scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
//! use_sample_covariance=False, data_range=255)` computes the same, and the tests check it.

use crate::error::{Error, Result};

/// A `[h, w]` plane of f64, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// `h * w` values.
    pub data: Vec<f64>,
}

impl Plane {
    /// Every value rounded to an 8-bit level (what MATLAB's `uint8` conversion keeps).
    pub fn rounded(mut self) -> Self {
        self.data
            .iter_mut()
            .for_each(|v| *v = crate::image_io::round_255(*v));
        self
    }

    /// A plane from its values; the length must be `h * w`.
    pub fn new(h: usize, w: usize, data: Vec<f64>) -> Self {
        assert_eq!(
            data.len(),
            h * w,
            "Plane::new: {h}x{w} needs {} values",
            h * w
        );
        Self { h, w, data }
    }

    /// The plane without `b` pixels on every side.
    pub fn shave(&self, b: usize) -> Plane {
        let (h, w) = (self.h.saturating_sub(2 * b), self.w.saturating_sub(2 * b));
        let mut data = Vec::with_capacity(h * w);
        for y in 0..h {
            data.extend_from_slice(&self.data[(y + b) * self.w + b..(y + b) * self.w + b + w]);
        }
        Plane { h, w, data }
    }
}

fn same_size(a: &Plane, b: &Plane, op: &'static str) -> Result<()> {
    if a.h != b.h || a.w != b.w {
        return Err(Error::Shape {
            op,
            expected: format!("{}x{}", a.h, a.w),
            got: format!("{}x{}", b.h, b.w),
        });
    }
    Ok(())
}

/// PSNR in dB for peak 255 after shaving `shave` pixels from each border (infinite when equal).
pub fn psnr(a: &Plane, b: &Plane, shave: usize) -> Result<f64> {
    same_size(a, b, "psnr")?;
    let (a, b) = (a.shave(shave), b.shave(shave));
    if a.data.is_empty() {
        return Err(Error::Shape {
            op: "psnr",
            expected: format!("an image larger than twice the {shave}-pixel border"),
            got: format!("{}x{}", a.h, a.w),
        });
    }
    let mse = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        / a.data.len() as f64;
    Ok(10.0 * (255.0 * 255.0 / mse).log10())
}

/// The normalised 11-tap Gaussian (sigma 1.5).
fn gaussian11() -> [f64; 11] {
    let mut g = [0.0; 11];
    for (i, v) in g.iter_mut().enumerate() {
        let x = i as f64 - 5.0;
        *v = (-x * x / (2.0 * 1.5 * 1.5)).exp();
    }
    let s: f64 = g.iter().sum();
    g.map(|v| v / s)
}

/// Valid separable filtering with the 11x11 Gaussian: `[h, w] -> [h - 10, w - 10]`.
fn filter_valid(p: &[f64], h: usize, w: usize, g: &[f64; 11]) -> Vec<f64> {
    let (oh, ow) = (h - 10, w - 10);
    let mut tmp = vec![0.0; h * ow];
    for y in 0..h {
        for x in 0..ow {
            tmp[y * ow + x] = (0..11).map(|k| g[k] * p[y * w + x + k]).sum();
        }
    }
    let mut out = vec![0.0; oh * ow];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..11).map(|k| g[k] * tmp[(y + k) * ow + x]).sum();
        }
    }
    out
}

/// Mean SSIM after shaving `shave` pixels from each border. The shaved image must be at least
/// 11x11.
pub fn ssim(a: &Plane, b: &Plane, shave: usize) -> Result<f64> {
    same_size(a, b, "ssim")?;
    let (a, b) = (a.shave(shave), b.shave(shave));
    if a.h < 11 || a.w < 11 {
        return Err(Error::Shape {
            op: "ssim",
            expected: "at least 11x11 pixels after the border is cut".into(),
            got: format!("{}x{}", a.h, a.w),
        });
    }
    let (h, w) = (a.h, a.w);
    let g = gaussian11();
    let prod = |f: fn(f64, f64) -> f64| -> Vec<f64> {
        a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect()
    };
    let mu_a = filter_valid(&a.data, h, w, &g);
    let mu_b = filter_valid(&b.data, h, w, &g);
    let aa = filter_valid(&prod(|x, _| x * x), h, w, &g);
    let bb = filter_valid(&prod(|_, y| y * y), h, w, &g);
    let ab = filter_valid(&prod(|x, y| x * y), h, w, &g);
    let c1 = (0.01f64 * 255.0).powi(2);
    let c2 = (0.03f64 * 255.0).powi(2);
    let n = mu_a.len();
    let total: f64 = (0..n)
        .map(|i| {
            let (ma, mb) = (mu_a[i], mu_b[i]);
            let (va, vb, cov) = (aa[i] - ma * ma, bb[i] - mb * mb, ab[i] - ma * mb);
            ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
        })
        .sum();
    Ok(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture of bench/reference/sr_oracle.py, built from the same formulas.
    fn fixture() -> (Plane, Plane) {
        let (h, w) = (48, 40);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let v = ((y * 7 + x * 3) % 200 + if x % 5 == 0 { 20 } else { 0 }) as f64;
                a.push(v);
                b.push((v + ((x * 31 + y * 17) % 13) as f64 - 6.0).clamp(0.0, 255.0));
            }
        }
        (Plane::new(h, w, a), Plane::new(h, w, b))
    }

    /// scikit-image 0.25's peak_signal_noise_ratio / structural_similarity on the same arrays
    /// (python3 bench/reference/sr_oracle.py, "shave 0" and "shave 2" lines).
    #[test]
    fn psnr_and_ssim_match_scikit_image() {
        let (a, b) = fixture();
        assert!((psnr(&a, &b, 0).expect("psnr") - 36.693_014).abs() < 1e-5);
        assert!((ssim(&a, &b, 0).expect("ssim") - 0.975_965).abs() < 1e-6);
        assert!((psnr(&a, &b, 2).expect("psnr") - 36.695_254).abs() < 1e-5);
        assert!((ssim(&a, &b, 2).expect("ssim") - 0.976_134).abs() < 1e-6);
    }

    #[test]
    fn identical_planes_score_perfectly_and_bad_sizes_are_errors() {
        let (a, _) = fixture();
        assert!(psnr(&a, &a, 0).expect("psnr").is_infinite());
        assert!((ssim(&a, &a, 0).expect("ssim") - 1.0).abs() < 1e-12);
        let small = Plane::new(10, 10, vec![0.0; 100]);
        assert!(ssim(&small, &small, 0).is_err());
        assert!(psnr(&a, &small, 0).is_err());
        assert!(psnr(&small, &small, 5).is_err());
    }
}
