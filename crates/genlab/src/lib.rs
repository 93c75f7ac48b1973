//! # genlab
//!
//! Deep generative image models on [burn]: autoencoders and (beta-)VAEs, DCGANs and the
//! VAE-GAN, trained, sampled, evaluated and saved with the same run folders; and
//! super-resolution networks (FSRCNN, ESPCN) trained on photos and scored by the literature's
//! protocol. The library returns typed [`Error`]s and never prints; the `genlab` binary (crate
//! `genlab-cli`) is a thin front end over it.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use burn::prelude::*;
//! use genlab::{RunConfig, RunDir, data, train};
//!
//! # fn main() -> genlab::Result<()> {
//! let mut cfg = RunConfig::preset("mnist-conv-vae")?;
//! cfg.train.epochs = 3;
//! let data = data::load(&cfg.train.dataset_spec()?, &cfg.train.data_options(None))?;
//! cfg.model.set_image(data.shape());
//! let stop = AtomicBool::new(false);
//! let run = RunDir::new("runs/conv-vae");
//! train(&run, &cfg, false, &data, &Device::flex(), &stop, &mut genlab::train::Silent)?;
//! # Ok(())
//! # }
//! ```
//!
//! How it fits together:
//! - [`config`]: a run's whole configuration ([`RunConfig`], [`SrRunConfig`]) as plain data,
//!   from a built-in preset or a TOML file.
//! - [`models`]: one file per model, each with its config; the registry of model kinds.
//! - [`mod@train`]: the one training loop, and one file per family (its optimizer, step and
//!   epoch summary); [`mod@bench`] times the same steps.
//! - [`data`]: IDX (MNIST, Fashion-MNIST), CIFAR-10, image folders, the embedded `mnist-10k`,
//!   and `genlab data fetch`'s downloader.
//! - [`checkpoint`]: the run folder: weights (safetensors) + `config.toml` + training state.
//! - [`explore`]: what the studio (`genlab serve`) does with a model: decode, encode, PCA of
//!   the codes, GAN inversion, nearest training images.
//! - [`metrics`]: evaluation (ELBO, importance-weighted NLL, Fréchet distance, PSNR).
//! - [`sr`]: super-resolution support: MATLAB-exact bicubic, YCbCr, PSNR/SSIM, patches, tiled
//!   upscaling, the shipped models.
//! - [`nn`]: blocks shared by the models, and the CPU kernels they run on; [`optim`]: Adam;
//!   [`loss`]: the losses, each with its formula.
//! - [`image_io`]: the one home of pixel <-> tensor conversions, image grids, PNG files;
//!   [`plot`]: the loss-curve PNG.
//! - [`fsutil`]: what may be written where (atomic writes, the output rules, folder locks);
//!   [`memory`]: the check before any allocation a flag or config sizes; [`codec`]: latent code
//!   files; [`rng`]: seeded streams.

pub mod bench;
pub mod checkpoint;
pub mod codec;
pub mod config;
pub mod data;
pub mod error;
pub mod explore;
pub mod fsutil;
pub mod image_io;
pub mod loss;
pub mod memory;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod optim;
pub mod plot;
pub mod rng;
pub mod sr;
pub mod train;

pub use checkpoint::RunDir;
pub use config::{RunConfig, SrRunConfig, SrTrainConfig, TrainConfig};
pub use error::{Error, Result};
pub use models::{ModelConfig, SrModelConfig};
pub use train::{Outcome, train, train_sr};
