//! Small runs of every family, shared by the integration tests that train them all
//! (`train_loop.rs`: stop/resume and NaN guards; `devices.rs`: wgpu against the CPU).

use std::path::{Path, PathBuf};

use genlab::config::{RunConfig, SrRunConfig, SrTrainConfig};
use genlab::models::{DcganConfig, FsrcnnConfig, ModelConfig, SrModelConfig};

/// `preset` shrunk for a test: `epochs` epochs of 4 batches of 16 of the first 64 images, 32 test
/// images, 4-image grids.
pub fn small(preset: &str, epochs: usize, edit: impl FnOnce(&mut ModelConfig)) -> RunConfig {
    let mut c = RunConfig::preset(preset).expect("preset");
    edit(&mut c.model);
    c.train.epochs = epochs;
    c.train.batch_size = 16;
    c.train.max_train_images = 64;
    c.train.max_test_images = 32;
    c.train.grid_images = 4;
    c
}

/// A small run of each image family (mnist-10k sized): vae, conv-ae, dcgan, vae-gan,
/// classifier, cvae, the conditional VAE-GAN (a cvae with `[model.adversarial]`), cgan.
pub fn image_families(epochs: usize) -> Vec<(&'static str, RunConfig)> {
    vec![
        (
            "vae",
            small("mnist-vae", epochs, |m| {
                if let ModelConfig::Vae(v) = m {
                    v.hidden = vec![64];
                    v.latent = 4;
                }
            }),
        ),
        ("conv-ae", small("mnist-conv-ae", epochs, |_| {})),
        (
            "dcgan",
            small("mnist-dcgan", epochs, |m| {
                *m = ModelConfig::Dcgan(DcganConfig {
                    latent: 8,
                    g_channels: vec![8, 16],
                    d_channels: vec![8, 16],
                    ..DcganConfig::default()
                });
            }),
        ),
        (
            "vae-gan",
            small("mnist-vae-gan", epochs, |m| {
                if let ModelConfig::VaeGan(v) = m {
                    v.d_channels = vec![8, 16];
                }
            }),
        ),
        (
            "classifier",
            small("mnist-classifier", epochs, |m| {
                // Dropout draws its masks from the device RNG, which a resumed run reseeds from
                // the run's seed, not where the stopped run left it, and which differs between
                // devices: off, so every run of a case is the same computation.
                if let ModelConfig::Classifier(c) = m {
                    c.dropout = 0.0;
                }
            }),
        ),
        (
            "cvae",
            small("mnist-cvae", epochs, |m| {
                if let ModelConfig::Cvae(v) = m {
                    v.hidden = vec![64];
                    v.latent = 4;
                }
            }),
        ),
        (
            "cvae-gan",
            small("mnist-cvae-gan", epochs, |m| {
                if let ModelConfig::Cvae(v) = m {
                    v.channels = vec![8, 16];
                    v.latent = 4;
                    if let Some(a) = v.adversarial.as_mut() {
                        a.d_channels = vec![8, 16];
                    }
                }
            }),
        ),
        (
            "cgan",
            small("mnist-cgan", epochs, |m| {
                if let ModelConfig::Cgan(g) = m {
                    g.latent = 8;
                    g.g_channels = vec![8, 16];
                    g.d_channels = vec![8, 16];
                }
            }),
        ),
    ]
}

/// A small FSRCNN x2 run on `photos`: `epochs` epochs of 4 batches of 4 patches.
pub fn small_sr(photos: &Path, epochs: usize) -> SrRunConfig {
    SrRunConfig {
        model: SrModelConfig::Fsrcnn(FsrcnnConfig {
            scale: 2,
            d: 8,
            s: 4,
            m: 1,
        }),
        train: SrTrainConfig {
            images: photos.display().to_string(),
            val: photos.display().to_string(),
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

/// Three RGB photos of different sizes in `dir/photos`.
pub fn photos(dir: &Path) -> PathBuf {
    let p = dir.join("photos");
    std::fs::create_dir(&p).expect("mkdir");
    for k in 0..3u32 {
        let img = image::RgbImage::from_fn(40 + k * 4, 36, |x, y| {
            let v = ((x * 5 + y * 3 + k * 20) % 200) as u8 + if x > 20 { 40 } else { 0 };
            image::Rgb([v, v / 2 + 30, 255 - v])
        });
        img.save(p.join(format!("p{k}.png"))).expect("write png");
    }
    p
}
