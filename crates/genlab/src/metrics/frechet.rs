//! Distances between two sets of images in a feature space: the Fréchet distance between Gaussians
//! fitted to the features (Heusel et al. 2017, Eq. 6, the formula of FID) and improved precision
//! and recall (Kynkäänniemi et al. 2019, Section 3, with k = 3 nearest neighbours). The features
//! come from genlab's own classifier ([`crate::models::Classifier`]), not Inception-v3, so the
//! numbers are "FD in genlab classifier features": comparable with each other, not with published
//! FIDs.

use burn::prelude::*;
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Features of a set of images, row-major `[n, d]`.
#[derive(Debug, Clone)]
pub struct Features {
    /// `n * d` values.
    pub values: Vec<f32>,
    /// Feature width.
    pub dim: usize,
}

impl Features {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len() / self.dim.max(1)
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Mean and covariance of a feature set (covariance with `n - 1`, as `numpy.cov`).
#[derive(Debug, Clone)]
pub struct Gaussian {
    /// `[d]`.
    pub mean: DVector<f64>,
    /// `[d, d]`.
    pub cov: DMatrix<f64>,
}

/// Fits the mean and covariance of `f` (at least 2 rows).
pub fn fit_gaussian(f: &Features) -> Result<Gaussian> {
    let (n, d) = (f.len(), f.dim);
    // Fewer images than dimensions + 1 give a singular covariance: the distance would be a
    // number, but not the Fréchet distance of any distribution.
    if n <= d {
        return Err(Error::Unsupported(format!(
            "a Fréchet distance in {d} feature dimensions needs at least {} images, got {n}",
            d + 1
        )));
    }
    let x = DMatrix::from_row_iterator(n, d, f.values.iter().map(|&v| f64::from(v)));
    let mean = x.row_mean().transpose(); // [d]
    let centred = DMatrix::from_fn(n, d, |i, j| x[(i, j)] - mean[j]);
    let cov = centred.transpose() * &centred / (n as f64 - 1.0); // [d, d]
    Ok(Gaussian { mean, cov })
}

/// The principal square root of a symmetric positive semi-definite matrix (negative eigenvalues
/// from rounding are clamped to 0).
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let e = SymmetricEigen::new(m.clone());
    let s = e.eigenvalues.map(|l| l.max(0.0).sqrt());
    &e.eigenvectors * DMatrix::from_diagonal(&s) * e.eigenvectors.transpose()
}

/// `||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`. The trace of `(S_a S_b)^(1/2)` is
/// computed as that of the symmetric `(S_a^(1/2) S_b S_a^(1/2))^(1/2)` (same eigenvalues), which
/// avoids the complex round-off of a general matrix square root (pytorch-fid's `sqrtm` path).
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    let diff = (&a.mean - &b.mean).norm_squared();
    let ra = sqrt_psd(&a.cov);
    let m = &ra * &b.cov * &ra;
    let m = (&m + m.transpose()) * 0.5; // exactly symmetric
    let tr_sqrt: f64 = SymmetricEigen::new(m)
        .eigenvalues
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum();
    diff + a.cov.trace() + b.cov.trace() - 2.0 * tr_sqrt
}

/// Improved precision and recall of generated features against real ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecall {
    /// Share of generated images inside the real manifold (quality).
    pub precision: f64,
    /// Share of real images inside the generated manifold (coverage).
    pub recall: f64,
}

/// Squared Euclidean distances between every row of `a` and every row of `b`, computed in
/// blocks on `device` (`|a|^2 + |b|^2 - 2 a b^T`); calls `f(i, row)` for each row `i` of `a`.
fn for_each_distance_row(
    a: &Features,
    b: &Features,
    device: &Device,
    mut f: impl FnMut(usize, &[f32]),
) -> Result<()> {
    let d = a.dim;
    let bt = Tensor::<2>::from_data(TensorData::new(b.values.clone(), [b.len(), d]), device); // [nb, d]
    let b2 = bt.clone().powi_scalar(2).sum_dim(1).reshape([1, b.len()]); // [1, nb]
    let bt = bt.transpose(); // [d, nb]
    let block = 512;
    let mut start = 0;
    while start < a.len() {
        let rows = block.min(a.len() - start);
        let chunk = a.values[start * d..(start + rows) * d].to_vec();
        let at = Tensor::<2>::from_data(TensorData::new(chunk, [rows, d]), device); // [rows, d]
        let a2 = at.clone().powi_scalar(2).sum_dim(1); // [rows, 1]
        let dist = (a2 + b2.clone() - at.matmul(bt.clone()).mul_scalar(2.0)).clamp_min(0.0); // [rows, nb]
        let v = dist
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Unsupported(format!("distance readback: {e:?}")))?;
        for r in 0..rows {
            f(start + r, &v[r * b.len()..(r + 1) * b.len()]);
        }
        start += rows;
    }
    Ok(())
}

/// Squared distance of every row of `set` to its k-th nearest neighbour in `set` (itself
/// excluded): the radius of its k-NN ball.
fn knn_radii(set: &Features, k: usize, device: &Device) -> Result<Vec<f32>> {
    let mut radii = vec![0f32; set.len()];
    for_each_distance_row(set, set, device, |i, row| {
        let mut row = row.to_vec();
        // Index k, not k - 1: the row's own zero distance comes first.
        let (_, kth, _) = row.select_nth_unstable_by(k, f32::total_cmp);
        radii[i] = *kth;
    })?;
    Ok(radii)
}

/// Share of rows of `query` that fall inside at least one k-NN ball of `reference`.
fn coverage(query: &Features, reference: &Features, radii: &[f32], device: &Device) -> Result<f64> {
    let mut inside = 0usize;
    for_each_distance_row(query, reference, device, |_, row| {
        if row.iter().zip(radii).any(|(d, r)| d <= r) {
            inside += 1;
        }
    })?;
    Ok(inside as f64 / query.len().max(1) as f64)
}

/// Improved precision and recall with k-NN manifolds (Kynkäänniemi et al. 2019, Eq. 1-2).
pub fn precision_recall(
    real: &Features,
    fake: &Features,
    k: usize,
    device: &Device,
) -> Result<PrecisionRecall> {
    for (name, f) in [("real", real), ("generated", fake)] {
        if f.len() <= k {
            return Err(Error::Unsupported(format!(
                "precision/recall with k = {k} needs more than {k} {name} images, got {}",
                f.len()
            )));
        }
    }
    let real_r = knn_radii(real, k, device)?;
    let fake_r = knn_radii(fake, k, device)?;
    Ok(PrecisionRecall {
        precision: coverage(fake, real, &real_r, device)?,
        recall: coverage(real, fake, &fake_r, device)?,
    })
}

/// Density and coverage of generated features against real ones (Naeem et al. 2020).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DensityCoverage {
    /// Mean number of real k-NN balls around each generated image, over k (about 1 when the
    /// two sets come from one distribution; unbounded above, near 0 for images off the data).
    pub density: f64,
    /// Share of real images whose k-NN ball holds at least one generated image.
    pub coverage: f64,
}

/// Density and coverage with k-NN balls around the real images only (Naeem et al. 2020,
/// Eq. 4-5; `prdc`'s `compute_prdc`, strict inequality as there). Unlike precision and recall
/// they build no manifold around the generated set, and a ball around a real outlier counts
/// once per generated image in it, so a few outliers among the reals cannot make noise look
/// like data.
pub fn density_coverage(
    real: &Features,
    fake: &Features,
    k: usize,
    device: &Device,
) -> Result<DensityCoverage> {
    if real.len() <= k || fake.is_empty() {
        return Err(Error::Unsupported(format!(
            "density/coverage with k = {k} needs more than {k} real images and one generated, got {} and {}",
            real.len(),
            fake.len()
        )));
    }
    let radii = knn_radii(real, k, device)?;
    let mut in_balls = 0usize;
    for_each_distance_row(fake, real, device, |_, row| {
        in_balls += row.iter().zip(&radii).filter(|(d, r)| d < r).count();
    })?;
    let mut covered = 0usize;
    for_each_distance_row(real, fake, device, |i, row| {
        if row.iter().any(|d| *d < radii[i]) {
            covered += 1;
        }
    })?;
    Ok(DensityCoverage {
        density: in_balls as f64 / (k * fake.len()) as f64,
        coverage: covered as f64 / real.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    //! The fixture `tests/fixtures/frechet.json` holds two feature sets and the values SciPy /
    //! NumPy give for them (bench/reference/frechet_oracle.py):
    //! ```python
    //! mu1, s1 = a.mean(0), np.cov(a, rowvar=False); mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    //! covmean = scipy.linalg.sqrtm(s1 @ s2).real
    //! fd = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    //! # precision/recall, k = 3: brute-force k-NN radii with np.partition
    //! ```
    use super::*;

    #[derive(Deserialize)]
    struct Fixture {
        dim: usize,
        a: Vec<f32>,
        b: Vec<f32>,
        fd: f64,
        precision: f64,
        recall: f64,
        density: f64,
        coverage: f64,
    }

    impl Fixture {
        /// The two feature sets.
        fn sets(&self) -> (Features, Features) {
            let set = |values: &[f32]| Features {
                values: values.to_vec(),
                dim: self.dim,
            };
            (set(&self.a), set(&self.b))
        }
    }

    fn fixture() -> Fixture {
        let text = include_str!("../../tests/fixtures/frechet.json");
        serde_json::from_str(text).expect("fixture parses")
    }

    #[test]
    fn frechet_distance_matches_scipy() {
        let fx = fixture();
        let a = Features {
            values: fx.a.clone(),
            dim: fx.dim,
        };
        let b = Features {
            values: fx.b.clone(),
            dim: fx.dim,
        };
        let fd = frechet_distance(&fit_gaussian(&a).expect("a"), &fit_gaussian(&b).expect("b"));
        assert!(
            (fd - fx.fd).abs() < 1e-6 * fx.fd.abs().max(1.0),
            "{fd} vs {}",
            fx.fd
        );
        let same = frechet_distance(&fit_gaussian(&a).expect("a"), &fit_gaussian(&a).expect("a"));
        assert!(same.abs() < 1e-9, "{same}");
    }

    #[test]
    fn precision_recall_matches_numpy() {
        let fx = fixture();
        let (a, b) = fx.sets();
        let pr = precision_recall(&a, &b, 3, &Device::flex()).expect("pr");
        assert!((pr.precision - fx.precision).abs() < 1e-12, "{pr:?}");
        assert!((pr.recall - fx.recall).abs() < 1e-12, "{pr:?}");
        let self_pr = precision_recall(&a, &a, 3, &Device::flex()).expect("pr");
        assert_eq!((self_pr.precision, self_pr.recall), (1.0, 1.0));
    }

    #[test]
    fn density_coverage_match_numpy() {
        let fx = fixture();
        let (a, b) = fx.sets();
        let dc = density_coverage(&a, &b, 5, &Device::flex()).expect("dc");
        assert!((dc.density - fx.density).abs() < 1e-12, "{dc:?}");
        assert!((dc.coverage - fx.coverage).abs() < 1e-12, "{dc:?}");
        // Far from the reals: nothing in any ball.
        let far = Features {
            values: vec![100.0; 40 * fx.dim],
            dim: fx.dim,
        };
        let dc = density_coverage(&a, &far, 5, &Device::flex()).expect("dc");
        assert_eq!((dc.density, dc.coverage), (0.0, 0.0));
    }
}
