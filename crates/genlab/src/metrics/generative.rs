//! Sample quality of a generative model, or of any set of images, against a dataset's test split:
//! Fréchet distance and precision/recall in the features of a classifier trained on that dataset
//! (see [`super::frechet`]). genlab ships one classifier per MNIST-like dataset so every user's
//! numbers are comparable; other datasets need one trained with `genlab train classifier`.

use std::path::Path;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::frechet::{
    Features, density_coverage, fit_gaussian, frechet_distance, precision_recall,
};
use crate::checkpoint::load_weights_bytes;
use crate::config::RunConfig;
use crate::data::ImageSet;
use crate::data::batch_tensor;
use crate::error::{Error, Result};
use crate::models::{Classifier, ClassifierConfig, Conditional, Generative, ModelConfig};
use crate::rng::{rng_for, standard_normal, stream};

/// k of the k-NN manifolds (Kynkäänniemi et al. 2019 use 3).
pub const PR_K: usize = 3;

/// k of density and coverage's balls (Naeem et al. 2020 recommend 5).
pub const DC_K: usize = 5;

/// Images per feature batch.
const BATCH: usize = 500;

/// Scores of a set of generated images against real ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleQuality {
    /// Fréchet distance in the classifier's features (lower is better; 0 for identical statistics).
    pub fd: f64,
    /// Improved precision, k = 3 (higher is better).
    pub precision: f64,
    /// Improved recall, k = 3 (higher is better).
    pub recall: f64,
    /// Density, k = 5 (about 1 for samples distributed like the data; near 0 for images off it).
    #[serde(default)]
    pub density: f64,
    /// Coverage, k = 5 (share of real images with a sample nearby; higher is better).
    #[serde(default)]
    pub coverage: f64,
    /// Generated images scored.
    pub generated: usize,
    /// Real (test) images compared against.
    pub real: usize,
    /// Which feature network: `genlab-classifier/<dataset>` or a run folder.
    pub features: String,
}

/// A classifier genlab ships, compiled into the binary.
struct ShippedClassifier {
    datasets: &'static [&'static str],
    path: &'static str,
    config: &'static str,
    weights: &'static [u8],
}

const SHIPPED: &[ShippedClassifier] = &[
    ShippedClassifier {
        datasets: &["mnist", "mnist-10k"],
        path: "models/classifier-mnist/weights.safetensors",
        config: include_str!("../../models/classifier-mnist/config.toml"),
        weights: include_bytes!("../../models/classifier-mnist/weights.safetensors"),
    },
    ShippedClassifier {
        datasets: &["fashion-mnist"],
        path: "models/classifier-fashion-mnist/weights.safetensors",
        config: include_str!("../../models/classifier-fashion-mnist/config.toml"),
        weights: include_bytes!("../../models/classifier-fashion-mnist/weights.safetensors"),
    },
];

/// A feature network and its name for reports.
pub struct FeatureNet {
    /// The classifier (validation mode).
    pub model: Classifier,
    /// `genlab-classifier/<dataset>` for a shipped one, else the run folder.
    pub name: String,
}

/// The shipped classifier for a dataset name (`mnist`, `mnist-10k`, `fashion-mnist`).
pub fn shipped_classifier(dataset: &str, device: &Device) -> Result<FeatureNet> {
    let s = SHIPPED
        .iter()
        .find(|s| s.datasets.contains(&dataset))
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "genlab ships feature classifiers for mnist and fashion-mnist only, not {dataset:?}; train one with `genlab train classifier --dataset {dataset}` and pass it with --classifier RUN"
            ))
        })?;
    let cfg = RunConfig::from_toml(s.config, Path::new(s.path))?;
    let ModelConfig::Classifier(c) = &cfg.model else {
        return Err(Error::checkpoint(
            s.path,
            "shipped config is not a classifier",
        ));
    };
    Ok(FeatureNet {
        model: load_weights_bytes(c.init(device), s.weights.to_vec(), Path::new(s.path))?,
        name: format!("genlab-classifier/{}", s.datasets[0]),
    })
}

/// A classifier from a run folder trained with `genlab train classifier`.
pub fn classifier_from_run(dir: &Path, device: &Device) -> Result<FeatureNet> {
    let run = crate::checkpoint::RunDir::new(dir);
    let cfg = run.load_config()?;
    let ModelConfig::Classifier(c) = &cfg.model else {
        return Err(Error::Unsupported(format!(
            "{}: a {} run, not a classifier (train one with `genlab train classifier`)",
            dir.display(),
            cfg.model.kind()
        )));
    };
    Ok(FeatureNet {
        model: crate::checkpoint::load_weights(c.init(device), &run.weights())?,
        name: dir.display().to_string(),
    })
}

impl FeatureNet {
    /// The image shape the classifier takes.
    pub fn image(&self) -> [usize; 3] {
        self.model.config.image
    }

    fn check(&self, shape: [usize; 3], what: &str) -> Result<()> {
        if shape != self.image() {
            return Err(Error::Shape {
                op: "feature classifier",
                expected: format!("{what} of shape {:?} (the classifier's)", self.image()),
                got: format!("{shape:?}"),
            });
        }
        Ok(())
    }

    /// Features of every image of `set`.
    pub fn features_of_set(&self, set: &ImageSet, device: &Device) -> Result<Features> {
        self.check(set.shape, "images")?;
        let all: Vec<usize> = (0..set.len()).collect();
        let mut values = Vec::with_capacity(set.len() * self.model.config.features);
        for idx in all.chunks(BATCH) {
            values.extend(self.features_of(batch_tensor(set, idx, device))?);
        }
        Ok(Features {
            values,
            dim: self.model.config.features,
        })
    }

    /// Features of `n` images from `model`, with noise from `seed` (stream `EVAL_NOISE`).
    pub fn features_of_generator<G: Generative>(
        &self,
        model: &G,
        n: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Features> {
        let d = self.model.config.features;
        // The features (f32), their Gaussian fit (two n x d f64 matrices) and the blocks of
        // 512 rows of distances precision/recall computes against every sample.
        crate::memory::ensure(
            format!("scoring {n} generated images"),
            crate::memory::product(&[n, d]) * 20 + crate::memory::product(&[512, n, 8]),
        )?;
        let mut values = Vec::with_capacity(n * d);
        let mut done = 0;
        let mut chunk = 0u64;
        while done < n {
            let b = BATCH.min(n - done);
            let z = standard_normal(
                &mut rng_for(seed, stream::EVAL_NOISE, 1_000_000 + chunk),
                b,
                model.noise_dim(),
                device,
            );
            let x = model.generate(z); // [b, c, h, w]
            let [_, c, h, w] = x.dims();
            self.check([c, h, w], "generated images")?;
            values.extend(self.features_of(x)?);
            done += b;
            chunk += 1;
        }
        Ok(Features {
            values,
            dim: self.model.config.features,
        })
    }

    fn features_of(&self, x: Tensor<4>) -> Result<Vec<f32>> {
        self.model
            .features(x)
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Unsupported(format!("feature readback: {e:?}")))
    }
}

/// Fréchet distance, precision/recall and density/coverage of `fake` against `real`.
pub fn sample_quality(
    real: &Features,
    fake: &Features,
    features: &str,
    device: &Device,
) -> Result<SampleQuality> {
    let fd = frechet_distance(&fit_gaussian(real)?, &fit_gaussian(fake)?);
    let pr = precision_recall(real, fake, PR_K, device)?;
    let dc = density_coverage(real, fake, DC_K, device)?;
    Ok(SampleQuality {
        fd,
        precision: pr.precision,
        recall: pr.recall,
        density: dc.density,
        coverage: dc.coverage,
        generated: fake.len(),
        real: real.len(),
        features: features.into(),
    })
}

/// How well a conditional generator draws one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassQuality {
    /// The class's name.
    pub class: String,
    /// Share of the class's samples the classifier labels as that class.
    pub accuracy: f64,
    /// Fréchet distance of the class's samples against the test images of that class; `None`
    /// when the test split has too few of them for the feature width (see `fd_note`).
    pub fd: Option<f64>,
    /// Improved precision (k = 3) of the class's samples against the test images of that class
    /// (`None` with 3 or fewer on either side).
    #[serde(default)]
    pub precision: Option<f64>,
    /// Improved recall (k = 3), likewise.
    #[serde(default)]
    pub recall: Option<f64>,
    /// Samples drawn of this class.
    pub generated: usize,
    /// Test images of this class.
    pub real: usize,
}

/// Label accuracy and per-class Fréchet distances of a conditional generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionalQuality {
    /// The classifier's accuracy on samples of each requested class, averaged over the classes
    /// (each has the same number of samples).
    pub label_accuracy: f64,
    /// Per class, in label order.
    pub per_class: Vec<ClassQuality>,
    /// Why some classes have no Fréchet distance (empty when all do).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fd_note: String,
    /// Which classifier labelled and featurised the samples.
    pub features: String,
}

impl FeatureNet {
    /// Draws `per_class` samples of every class of `model` (noise from `seed`, stream
    /// `EVAL_NOISE`) and scores each class: the classifier's accuracy on them, and their
    /// Fréchet distance to the test images of that class.
    pub fn conditional_quality<G: Conditional>(
        &self,
        model: &G,
        test: &ImageSet,
        per_class: usize,
        seed: u64,
        device: &Device,
    ) -> Result<ConditionalQuality> {
        let names = model.class_names();
        let k = names.len();
        if self.model.config.classes != k {
            return Err(Error::Unsupported(format!(
                "the feature classifier {} knows {} classes, the model {k}: label accuracy needs a classifier of the model's dataset (--classifier RUN)",
                self.name, self.model.config.classes
            )));
        }
        let labels = test.labels.as_deref().ok_or_else(|| {
            Error::Unsupported("label accuracy needs a test split with labels".into())
        })?;
        let d = self.model.config.features;
        crate::memory::ensure(
            format!("scoring {per_class} samples of each of {k} classes"),
            crate::memory::product(&[per_class, d]) * 20,
        )?;
        let mut per = Vec::with_capacity(k);
        let mut notes = Vec::new();
        for (class, name) in names.iter().enumerate() {
            let (mut right, mut values, mut done) = (0.0, Vec::with_capacity(per_class * d), 0);
            while done < per_class {
                let b = BATCH.min(per_class - done);
                let counter = 2_000_000 + (class * 10_000 + done / BATCH) as u64;
                let z = standard_normal(
                    &mut rng_for(seed, stream::EVAL_NOISE, counter),
                    b,
                    model.noise_dim(),
                    device,
                );
                let x = model.generate_given(z, &vec![class; b]); // [b, c, h, w]
                let [_, c, h, w] = x.dims();
                self.check([c, h, w], "generated images")?;
                let f = self.model.features(x); // [b, features]
                let logits = self.model.out.forward(f.clone()); // [b, classes]
                let want = Tensor::<1, Int>::from_data(
                    TensorData::new(vec![class as i64; b], [b]),
                    device,
                );
                right += crate::metrics::correct(logits, want);
                values.extend(
                    f.into_data()
                        .try_into_vec::<f32>()
                        .map_err(|e| Error::Unsupported(format!("feature readback: {e:?}")))?,
                );
                done += b;
            }
            let fake = Features { values, dim: d };
            per.push(
                self.class_quality(name, class, fake, right, test, labels, &mut notes, device)?,
            );
        }
        Ok(self.summary(per, notes))
    }

    /// Label accuracy and per-class FDs of images made elsewhere: `set`'s labels are classes of
    /// the dataset the classifier knows (`test`'s), as a folder of one sub-folder per class
    /// gives them (`genlab eval --samples DIR`). Classes without images are left out.
    pub fn labelled_quality(
        &self,
        set: &ImageSet,
        names: &[String],
        test: &ImageSet,
        device: &Device,
    ) -> Result<ConditionalQuality> {
        self.check(set.shape, "images")?;
        let (Some(have), Some(labels)) = (set.labels.as_deref(), test.labels.as_deref()) else {
            return Err(Error::Unsupported(
                "label accuracy needs labelled images and a labelled test split".into(),
            ));
        };
        let mut per = Vec::new();
        let mut notes = Vec::new();
        for (class, name) in names.iter().enumerate() {
            let idx: Vec<usize> = (0..set.len())
                .filter(|&i| usize::from(have[i]) == class)
                .collect();
            if idx.is_empty() {
                continue;
            }
            let x = batch_tensor(set, &idx, device); // [n, c, h, w]
            let f = self.model.features(x); // [n, features]
            let logits = self.model.out.forward(f.clone()); // [n, classes]
            let want = Tensor::<1, Int>::from_data(
                TensorData::new(vec![class as i64; idx.len()], [idx.len()]),
                device,
            );
            let right = crate::metrics::correct(logits, want);
            let values = f
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| Error::Unsupported(format!("feature readback: {e:?}")))?;
            let fake = Features {
                values,
                dim: self.model.config.features,
            };
            per.push(
                self.class_quality(name, class, fake, right, test, labels, &mut notes, device)?,
            );
        }
        Ok(self.summary(per, notes))
    }

    /// One class's scores: `right` of its `fake` images labelled as `class`, and their FD to the
    /// test images of that class (`None`, with a note, when either side is too small).
    #[allow(clippy::too_many_arguments)]
    fn class_quality(
        &self,
        name: &str,
        class: usize,
        fake: Features,
        right: f64,
        test: &ImageSet,
        labels: &[u8],
        notes: &mut Vec<String>,
        device: &Device,
    ) -> Result<ClassQuality> {
        let real_idx: Vec<usize> = (0..test.len())
            .filter(|&i| usize::from(labels[i]) == class)
            .collect();
        let real = self.features_of_set(&test.select(&real_idx), device)?;
        let fd = match (fit_gaussian(&real), fit_gaussian(&fake)) {
            (Ok(r), Ok(f)) => Some(frechet_distance(&r, &f)),
            (Err(e), _) | (_, Err(e)) => {
                notes.push(format!("{name}: {e}"));
                None
            }
        };
        let pr = precision_recall(&real, &fake, PR_K, device).ok();
        Ok(ClassQuality {
            class: name.to_string(),
            accuracy: right / fake.len().max(1) as f64,
            fd,
            precision: pr.as_ref().map(|p| p.precision),
            recall: pr.map(|p| p.recall),
            generated: fake.len(),
            real: real_idx.len(),
        })
    }

    /// The mean label accuracy over the classes scored.
    fn summary(&self, per: Vec<ClassQuality>, notes: Vec<String>) -> ConditionalQuality {
        ConditionalQuality {
            label_accuracy: per.iter().map(|c| c.accuracy).sum::<f64>() / per.len().max(1) as f64,
            per_class: per,
            fd_note: notes.first().cloned().unwrap_or_default(),
            features: self.name.clone(),
        }
    }
}

/// The config the shipped classifiers were trained with, for tests and docs.
pub fn shipped_config(dataset: &str) -> Option<ClassifierConfig> {
    let s = SHIPPED.iter().find(|s| s.datasets.contains(&dataset))?;
    match RunConfig::from_toml(s.config, Path::new(s.path))
        .ok()?
        .model
    {
        ModelConfig::Classifier(c) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataOptions, DatasetSpec, load};

    /// The shipped classifiers meet the accuracy targets on their test splits (MNIST:
    /// mnist-10k's 1,000 test images, embedded; Fashion-MNIST: its 10,000 test images, from
    /// Debian's dataset-fashion-mnist, which `.ci/run` installs).
    #[test]
    fn shipped_classifiers_meet_their_accuracy_targets() {
        let d = Device::flex();
        for (name, spec, target) in [
            ("mnist-10k", DatasetSpec::Mnist10k, 0.99),
            ("fashion-mnist", DatasetSpec::FashionMnist, 0.91),
        ] {
            let data = load(&spec, &DataOptions::default()).unwrap_or_else(|e| {
                panic!("{name}: {e} (install it: apt-get install dataset-fashion-mnist)")
            });
            let net = shipped_classifier(name, &d).expect("shipped classifier loads");
            let (_, acc) =
                crate::metrics::accuracy(&net.model, &data.test, 500, &d).expect("accuracy");
            assert!(acc >= target, "{name}: accuracy {acc} < {target}");
        }
        assert!(shipped_classifier("cifar10", &d).is_err());
    }

    #[test]
    fn samples_of_the_test_set_score_near_zero_against_itself() {
        let d = Device::flex();
        let data = crate::data::embedded::mnist_10k().expect("data");
        let net = shipped_classifier("mnist-10k", &d).expect("classifier");
        let real = net.features_of_set(&data.test, &d).expect("features");
        let q = sample_quality(&real, &real, &net.name, &d).expect("quality");
        // Zero up to the rounding of tr(2S - 2 sqrt(S S)) (S's trace is in the hundreds): a
        // change of convolution summation order moved it from below 1e-6 to -1.4e-6.
        assert!(q.fd.abs() < 1e-5, "{q:?}");
        assert_eq!((q.precision, q.recall), (1.0, 1.0));
        // Training images are a different sample of the same distribution: small but > 0.
        let other = net
            .features_of_set(&data.train.take(1000), &d)
            .expect("features");
        let q = sample_quality(&real, &other, &net.name, &d).expect("quality");
        assert!(q.fd > 0.0 && q.precision > 0.6 && q.recall > 0.6, "{q:?}");
        // Density is about 1 for a sample of the data distribution (Naeem et al. 2020, Sec. 4).
        assert!((0.7..1.3).contains(&q.density) && q.coverage > 0.6, "{q:?}");
        // Uniform noise is off the data: density and coverage near 0 whatever precision says.
        let mut rng = rng_for(5, stream::SAMPLE, 0);
        let noise: Vec<u8> = (0..1000 * 784)
            .map(|_| rand::RngExt::random::<u8>(&mut rng))
            .collect();
        let noise = ImageSet::new(noise, None, [1, 28, 28]).expect("noise set");
        let noise = net.features_of_set(&noise, &d).expect("features");
        let q = sample_quality(&real, &noise, &net.name, &d).expect("quality");
        assert!(q.density < 0.05 && q.coverage < 0.05, "{q:?}");
    }
}
