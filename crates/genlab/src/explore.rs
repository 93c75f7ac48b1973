//! What the studio (`genlab serve`) does with a trained generative model: decode a point of
//! latent space, encode an image, find the principal directions of the codes, invert a GAN
//! (the noise whose image is closest to a given one) and find a sample's nearest training
//! images. The HTTP side lives in the CLI; this module holds the model arithmetic, so scripts
//! using the library get the same answers as the page.

use burn::prelude::*;

use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::metrics::frechet::Features;
use crate::models::{Conditional, Generative, ImageModel};

/// What the studio needs of a loaded model, whatever its family. Implemented by the three
/// wrappers below over the families' own traits, so a new family needs no edit here: a model
/// with an encoder ([`Encoding`], any [`ImageModel`]), a generator without one
/// ([`Generating`], any [`Generative`]) or a generator told its class ([`Conditioned`], any
/// [`Conditional`]).
pub trait Explore: Send + Sync {
    /// Width of the latent space.
    fn latent(&self) -> usize;
    /// Class names of a conditional model; empty for the others.
    fn classes(&self) -> &[String] {
        &[]
    }
    /// Whether [`Explore::encode`] gives codes.
    fn can_encode(&self) -> bool;
    /// Whether the coordinates have the prior `N(0, I)` (all but the autoencoder).
    fn has_prior(&self) -> bool;
    /// Images at `z` (labels checked by [`Explorer`]).
    fn decode(&self, z: Tensor<2>, labels: &[usize]) -> Tensor<4>;
    /// Coordinates of images, or `None` without an encoder.
    fn encode(&self, x: Tensor<4>, labels: &[usize]) -> Option<Tensor<2>>;
    /// The same model on `device`, frozen.
    fn frozen_on(&self, device: &Device) -> Box<dyn Explore>;
}

/// A model with an encoder: the autoencoder, VAE, VAE-GAN.
pub struct Encoding<M>(pub M);

impl<M: ImageModel> Explore for Encoding<M> {
    fn latent(&self) -> usize {
        self.0.latent_dim()
    }
    fn can_encode(&self) -> bool {
        true
    }
    fn has_prior(&self) -> bool {
        self.0.can_sample()
    }
    fn decode(&self, z: Tensor<2>, _: &[usize]) -> Tensor<4> {
        self.0.decode_mean(z)
    }
    fn encode(&self, x: Tensor<4>, _: &[usize]) -> Option<Tensor<2>> {
        Some(self.0.encode_mean(x))
    }
    fn frozen_on(&self, device: &Device) -> Box<dyn Explore> {
        Box::new(Encoding(self.0.clone().fork(device).freeze()))
    }
}

/// A generator without an encoder: the DCGAN.
pub struct Generating<G>(pub G);

impl<G: Generative> Explore for Generating<G> {
    fn latent(&self) -> usize {
        self.0.noise_dim()
    }
    fn can_encode(&self) -> bool {
        false
    }
    fn has_prior(&self) -> bool {
        true
    }
    fn decode(&self, z: Tensor<2>, _: &[usize]) -> Tensor<4> {
        self.0.generate(z)
    }
    fn encode(&self, _: Tensor<4>, _: &[usize]) -> Option<Tensor<2>> {
        None
    }
    fn frozen_on(&self, device: &Device) -> Box<dyn Explore> {
        Box::new(Generating(self.0.clone().fork(device).freeze()))
    }
}

/// A generator told its class: the cVAE (which also encodes, given the class), the cGAN.
pub struct Conditioned<G>(pub G);

impl<G: Conditional> Explore for Conditioned<G> {
    fn latent(&self) -> usize {
        self.0.noise_dim()
    }
    fn classes(&self) -> &[String] {
        self.0.class_names()
    }
    fn can_encode(&self) -> bool {
        self.0.has_encoder()
    }
    fn has_prior(&self) -> bool {
        true
    }
    fn decode(&self, z: Tensor<2>, labels: &[usize]) -> Tensor<4> {
        self.0.generate_given(z, labels)
    }
    fn encode(&self, x: Tensor<4>, labels: &[usize]) -> Option<Tensor<2>> {
        self.0.encode_given(x, labels)
    }
    fn frozen_on(&self, device: &Device) -> Box<dyn Explore> {
        Box::new(Conditioned(self.0.clone().fork(device).freeze()))
    }
}

/// A generative model loaded for exploring, with its requests checked.
///
/// Coordinates are what the family's prior is over: `z` for the VAE, VAE-GAN and GANs, the code
/// for the autoencoder, and for the conditional VAE the *style* `z - m_y` (its prior is
/// `N(m_y, I)`), so one point means the same style in every class.
pub struct Explorer(Box<dyn Explore>);

impl Explorer {
    /// Wraps a model ([`Encoding`], [`Generating`] or [`Conditioned`]).
    pub fn new(model: impl Explore + 'static) -> Self {
        Self(Box::new(model))
    }

    /// The same model on `device` (an autodiff device for [`invert`]), frozen: no parameter
    /// takes a gradient and batch norm uses its running statistics, as at inference.
    pub fn frozen_on(&self, device: &Device) -> Self {
        Self(self.0.frozen_on(device))
    }

    /// Width of the latent space.
    pub fn latent(&self) -> usize {
        self.0.latent()
    }

    /// Class names of a conditional model; empty for the others.
    pub fn classes(&self) -> &[String] {
        self.0.classes()
    }

    /// Whether the model has an encoder.
    pub fn can_encode(&self) -> bool {
        self.0.can_encode()
    }

    /// Whether the coordinates have the prior `N(0, I)` (all but the autoencoder).
    pub fn has_prior(&self) -> bool {
        self.0.has_prior()
    }

    /// Checks labels against the model: one per row for a conditional model, none otherwise.
    fn check_labels(&self, labels: &[usize], rows: usize) -> Result<()> {
        let k = self.classes().len();
        let ok = if k == 0 {
            labels.is_empty()
        } else {
            labels.len() == rows && labels.iter().all(|&l| l < k)
        };
        if ok {
            Ok(())
        } else if k == 0 {
            Err(Error::config(
                "class",
                "given",
                "no class: the model is not conditional",
            ))
        } else {
            Err(Error::config(
                "class",
                format!("{labels:?}"),
                format!("one class index below {k} per image"),
            ))
        }
    }

    /// Images in `[0, 1]` at the points `z`, of the classes `labels` (conditional models; empty
    /// for the others).
    ///
    /// # Shapes
    /// `[b, latent] -> [b, c, h, w]`
    pub fn decode(&self, z: Tensor<2>, labels: &[usize]) -> Result<Tensor<4>> {
        self.check_labels(labels, z.dims()[0])?;
        Ok(self.0.decode(z, labels))
    }

    /// The coordinates of images (a VAE's posterior mean; the cVAE's style given the labels),
    /// or `None` for a model without an encoder.
    ///
    /// # Shapes
    /// `[b, c, h, w] -> [b, latent]`
    pub fn encode(&self, x: Tensor<4>, labels: &[usize]) -> Result<Option<Tensor<2>>> {
        self.check_labels(labels, x.dims()[0])?;
        Ok(self.0.encode(x, labels))
    }
}

/// Principal directions of a cloud of codes: the mean, and the leading eigenvectors of the
/// covariance with the standard deviation along each.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pca {
    /// `[d]`.
    pub mean: Vec<f32>,
    /// `k` unit vectors of width `d`, by decreasing variance.
    pub components: Vec<Vec<f32>>,
    /// Standard deviation of the codes along each component.
    pub scales: Vec<f32>,
}

impl Pca {
    /// Fits `k` components to `n` codes of width `d` (`codes` row-major, `n * d`).
    pub fn fit(codes: &[f32], d: usize, k: usize) -> Result<Self> {
        let n = codes.len() / d.max(1);
        if n < 2 || d == 0 || codes.len() != n * d {
            return Err(Error::config(
                "codes",
                format!("{} values of width {d}", codes.len()),
                "at least 2 codes",
            ));
        }
        let mut mean = vec![0f64; d];
        for row in codes.chunks(d) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = nalgebra::DMatrix::<f64>::zeros(d, d);
        let mut c = vec![0f64; d];
        for row in codes.chunks(d) {
            for (ci, (&v, m)) in c.iter_mut().zip(row.iter().zip(&mean)) {
                *ci = v as f64 - m;
            }
            for i in 0..d {
                for j in 0..=i {
                    cov[(i, j)] += c[i] * c[j];
                }
            }
        }
        for i in 0..d {
            for j in 0..=i {
                let v = cov[(i, j)] / (n - 1) as f64;
                cov[(i, j)] = v;
                cov[(j, i)] = v;
            }
        }
        let eig = nalgebra::SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let k = k.min(d);
        let components = order[..k]
            .iter()
            .map(|&i| {
                let v = eig.eigenvectors.column(i);
                // Sign fixed so the largest entry is positive: the same codes give the same map.
                let big = v
                    .iter()
                    .fold(0f64, |a, &x| if x.abs() > a.abs() { x } else { a });
                let s = if big < 0.0 { -1.0 } else { 1.0 };
                v.iter().map(|&x| (x * s) as f32).collect()
            })
            .collect();
        let scales = order[..k]
            .iter()
            .map(|&i| eig.eigenvalues[i].max(0.0).sqrt() as f32)
            .collect();
        Ok(Self {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            components,
            scales,
        })
    }

    /// The coordinates of `z` along the components.
    pub fn project(&self, z: &[f32]) -> Vec<f32> {
        self.components
            .iter()
            .map(|c| {
                c.iter()
                    .zip(z.iter().zip(&self.mean))
                    .map(|(a, (x, m))| a * (x - m))
                    .sum()
            })
            .collect()
    }
}

/// `steps` points from `a` to `b`, ends included: on the line (`spherical == false`) or on the
/// great circle (slerp, Shoemake 1985), whose points keep the norm a Gaussian prior's samples
/// have in high dimensions; slerp falls back to the line when `a` and `b` are (anti)parallel.
pub fn path(a: &[f32], b: &[f32], steps: usize, spherical: bool) -> Vec<Vec<f32>> {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum();
    let na = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let omega = (dot / (na * nb)).clamp(-1.0, 1.0).acos();
    let slerp = spherical && na > 0.0 && nb > 0.0 && omega.sin().abs() > 1e-6;
    (0..steps)
        .map(|i| {
            let t = if steps > 1 {
                i as f64 / (steps - 1) as f64
            } else {
                0.0
            };
            let (wa, wb) = if slerp {
                let s = omega.sin();
                (((1.0 - t) * omega).sin() / s, (t * omega).sin() / s)
            } else {
                (1.0 - t, t)
            };
            a.iter()
                .zip(b)
                .map(|(x, y)| (wa * *x as f64 + wb * *y as f64) as f32)
                .collect()
        })
        .collect()
}

/// The result of [`invert`].
#[derive(Debug, Clone)]
pub struct Inversion {
    /// The noise found, `[latent]`.
    pub z: Vec<f32>,
    /// Mean squared pixel error of its image against the target (pixels in `[0, 1]`).
    pub mse: f32,
}

/// GAN inversion: the noise whose image is closest to `target` (`[1, c, h, w]` in `[0, 1]`),
/// by `steps` Adam steps (learning rate `lr`) on `restarts` starting points drawn with `seed`,
/// minimising the mean squared pixel error plus a small pull towards the prior
/// (`1e-3 |z|^2 / latent`, which keeps z where the generator was trained). `model` must be on
/// an autodiff device ([`Explorer::frozen_on`]).
pub fn invert(
    model: &Explorer,
    target: Tensor<4>,
    labels: &[usize],
    steps: usize,
    restarts: usize,
    seed: u64,
) -> Result<Inversion> {
    const LR: f64 = 0.05;
    const PRIOR: f64 = 1e-3;
    let device = target.device();
    let d = model.latent();
    let r = restarts.max(1);
    let labels: Vec<usize> = labels
        .iter()
        .copied()
        .cycle()
        .take(labels.len() * r)
        .collect();
    let target = target.without_autodiff().repeat_dim(0, r); // [r, c, h, w]
    let pixels = target.dims()[1..].iter().product::<usize>() as f64;
    let mut z = crate::rng::standard_normal(&mut crate::rng::rng_for(seed, 9, 0), r, d, &device);
    let (mut m, mut v) = (z.zeros_like(), z.zeros_like());
    let (b1, b2) = (0.9f64, 0.999f64);
    for t in 1..=steps {
        let zg = z.clone().autodiff().require_grad();
        let x = model.decode(zg.clone(), &labels)?; // [r, c, h, w]
        let err = (x - target.clone()).powi_scalar(2).sum() / pixels; // sum of per-row means
        let loss = err + zg.clone().powi_scalar(2).sum().mul_scalar(PRIOR / d as f64);
        let grads = loss.backward();
        let g = zg
            .grad(&grads)
            .expect("z takes a gradient")
            .without_autodiff();
        m = m.mul_scalar(b1) + g.clone().mul_scalar(1.0 - b1);
        v = v.mul_scalar(b2) + g.powi_scalar(2).mul_scalar(1.0 - b2);
        let mh = m.clone().div_scalar(1.0 - b1.powi(t as i32));
        let vh = v.clone().div_scalar(1.0 - b2.powi(t as i32));
        z = z - mh.div(vh.sqrt().add_scalar(1e-8)).mul_scalar(LR);
    }
    let x = model.decode(z.clone(), &labels)?.without_autodiff();
    let per_row = (x - target).powi_scalar(2).flatten::<2>(1, 3).mean_dim(1); // [r, 1]
    let errs: Vec<f32> = per_row
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Unsupported(format!("reading the inversion error: {e:?}")))?;
    let best = (0..r)
        .min_by(|&a, &b| errs[a].total_cmp(&errs[b]))
        .expect("at least one restart");
    if !errs[best].is_finite() {
        return Err(Error::Unsupported(
            "the inversion diverged (a non-finite error)".into(),
        ));
    }
    let zs: Vec<f32> = z
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Unsupported(format!("reading z: {e:?}")))?;
    Ok(Inversion {
        z: zs[best * d..(best + 1) * d].to_vec(),
        mse: errs[best],
    })
}

/// One neighbour found by [`nearest_pixels`] or [`nearest_features`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Neighbour {
    /// Index in the searched set.
    pub index: usize,
    /// Euclidean distance (pixels in `[0, 1]`, or feature units).
    pub distance: f32,
}

/// The `k` images of `set` nearest to `query` (`c * h * w` values in `[0, 1]`) in pixel space.
pub fn nearest_pixels(set: &ImageSet, query: &[f32], k: usize) -> Result<Vec<Neighbour>> {
    use rayon::prelude::*;
    if query.len() != set.image_len() {
        return Err(Error::Shape {
            op: "nearest training images",
            expected: format!("{} pixels (the dataset's {:?})", set.image_len(), set.shape),
            got: format!("{} pixels", query.len()),
        });
    }
    let d: Vec<f32> = (0..set.len())
        .into_par_iter()
        .map(|i| {
            set.image(i)
                .iter()
                .zip(query)
                .map(|(&p, &q)| {
                    let e = crate::image_io::unit_from_u8(p) - q;
                    e * e
                })
                .sum::<f32>()
                .sqrt()
        })
        .collect();
    Ok(smallest(&d, k))
}

/// The `k` rows of `feats` nearest to `query` (one feature vector).
pub fn nearest_features(feats: &Features, query: &[f32], k: usize) -> Result<Vec<Neighbour>> {
    if query.len() != feats.dim {
        return Err(Error::Shape {
            op: "nearest training images",
            expected: format!("{} features", feats.dim),
            got: format!("{}", query.len()),
        });
    }
    let d: Vec<f32> = feats
        .values
        .chunks(feats.dim)
        .map(|r| {
            r.iter()
                .zip(query)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt()
        })
        .collect();
    Ok(smallest(&d, k))
}

/// The `k` smallest distances, nearest first (ties by index).
fn smallest(d: &[f32], k: usize) -> Vec<Neighbour> {
    let mut idx: Vec<usize> = (0..d.len()).collect();
    let k = k.min(d.len());
    if k == 0 {
        return Vec::new();
    }
    idx.select_nth_unstable_by(k - 1, |&a, &b| d[a].total_cmp(&d[b]).then(a.cmp(&b)));
    idx.truncate(k);
    idx.sort_by(|&a, &b| d[a].total_cmp(&d[b]).then(a.cmp(&b)));
    idx.into_iter()
        .map(|index| Neighbour {
            index,
            distance: d[index],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PCA of points on a tilted line in 3-D finds that line, with the right spread; checked
    /// against NumPy's `np.linalg.eigh(np.cov(x.T))` on the same points (largest eigenvalue
    /// 2 var(t) = 17.17, standard deviation 4.1437, for direction (1, 1, 0) / sqrt(2)).
    #[test]
    fn pca_finds_the_direction_of_largest_spread() {
        let mut codes = Vec::new();
        for i in 0..101 {
            let t = (i as f32 - 50.0) / 10.0; // var(t) = 8.585 (ddof = 1)
            let wobble = if i % 2 == 0 { 0.01 } else { -0.01 };
            codes.extend([1.0 + t, 2.0 + t, 3.0 + wobble]);
        }
        let p = Pca::fit(&codes, 3, 2).expect("fit");
        let c = &p.components[0];
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!(
            (c[0] - s).abs() < 1e-4 && (c[1] - s).abs() < 1e-4 && c[2].abs() < 1e-3,
            "{c:?}"
        );
        assert!((p.scales[0] - 4.14367).abs() < 1e-3, "{:?}", p.scales);
        assert!(p.scales[1] < 0.02, "{:?}", p.scales);
        assert!((p.mean[0] - 1.0).abs() < 1e-5 && (p.mean[2] - 3.0).abs() < 1e-3);
        let x = p.project(&[2.0, 3.0, 3.0]); // one step of t along (1, 1, 0)
        assert!((x[0] - 2.0 * s).abs() < 1e-3, "{x:?}");
    }

    /// Linear and spherical paths: ends kept; slerp between orthonormal vectors stays on the
    /// unit circle (midpoint (1, 1) / sqrt 2, as `scipy.spatial.geometric_slerp` gives).
    #[test]
    fn paths_keep_their_ends_and_slerp_keeps_the_norm() {
        let (a, b) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        let lin = path(&a, &b, 3, false);
        assert_eq!(lin, vec![vec![1.0, 0.0], vec![0.5, 0.5], vec![0.0, 1.0]]);
        let sl = path(&a, &b, 3, true);
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!(
            (sl[1][0] - s).abs() < 1e-6 && (sl[1][1] - s).abs() < 1e-6,
            "{sl:?}"
        );
        assert!((sl[2][1] - 1.0).abs() < 1e-6 && sl[2][0].abs() < 1e-6);
        // Parallel ends: slerp is the line.
        assert_eq!(path(&[1.0], &[2.0], 3, true)[1], vec![1.5]);
    }

    /// Inversion finds the point of a decoder's own image: its error falls far below the
    /// error of the starting point (the true point has error 0), and the error it reports is
    /// the one `decode` gives at the point found. (A fresh DCGAN, initialised N(0, 0.02),
    /// barely depends on z; a fresh MLP decoder does.)
    #[test]
    fn inversion_recovers_a_generated_image() {
        let d = Device::flex();
        d.seed(7);
        let m = Explorer::new(Encoding(
            crate::models::VaeConfig {
                latent: 6,
                hidden: vec![64],
                ..crate::models::VaeConfig::default()
            }
            .init(&d),
        ));
        let truth = crate::rng::standard_normal(&mut crate::rng::rng_for(5, 0, 0), 1, 6, &d);
        let x = m.decode(truth, &[]).expect("decode"); // [1, 1, 28, 28]
        let frozen = m.frozen_on(&d.clone().autodiff());
        let start = invert(&frozen, x.clone(), &[], 0, 1, 1).expect("invert");
        let found = invert(&frozen, x.clone(), &[], 200, 2, 1).expect("invert");
        assert!(
            found.mse < start.mse / 10.0,
            "{} -> {}",
            start.mse,
            found.mse
        );
        let again = m.decode(rows_of(&found.z, &d), &[]).expect("decode");
        let mse: f32 = (again - x).powi_scalar(2).mean().into_scalar();
        assert!((mse - found.mse).abs() < 1e-5, "{mse} vs {}", found.mse);
    }

    fn rows_of(z: &[f32], d: &Device) -> Tensor<2> {
        Tensor::from_data(burn::tensor::TensorData::new(z.to_vec(), [1, z.len()]), d)
    }

    /// The nearest rows by brute force over a small set, ties broken by index.
    #[test]
    fn nearest_neighbours_by_pixels_and_features() {
        let px: Vec<u8> = vec![0, 0, 255, 255, 0, 255, 128, 128];
        let set = ImageSet::new(px, None, [1, 1, 2]).expect("set");
        let n = nearest_pixels(&set, &[0.0, 1.0], 2).expect("nearest");
        assert_eq!(n[0].index, 2);
        assert!(n[0].distance < 1e-6);
        assert_eq!(n[1].index, 3); // (0.5, 0.5): sqrt(0.5) against 1 for rows 0 and 1
        let f = Features {
            values: vec![0.0, 0.0, 3.0, 4.0, 3.0, 4.0],
            dim: 2,
        };
        let n = nearest_features(&f, &[3.0, 4.0], 3).expect("nearest");
        assert_eq!(n.iter().map(|x| x.index).collect::<Vec<_>>(), vec![1, 2, 0]);
        assert_eq!(n[2].distance, 5.0);
        assert!(nearest_pixels(&set, &[0.0], 1).is_err());
    }
}
