//! # genlab
//!
//! Deep generative image models on [burn]: autoencoders and (beta-)VAEs, trained, sampled,
//! evaluated and saved with the same run folders; and super-resolution networks (FSRCNN, ESPCN)
//! trained on photos and scored by the literature's protocol. The library returns typed [`Error`]s and never
//! prints; the `genlab` binary (crate `genlab-cli`) is a thin front end over it.
//!
//! Modules:
//! - [`data`]: IDX (MNIST, Fashion-MNIST), CIFAR-10, image folders, the embedded `mnist-10k`,
//!   seeded batches, and `genlab data fetch`'s downloader.
//! - [`models`]: one file per model family, each with its config.
//! - [`sr`]: super-resolution support: MATLAB-exact bicubic, YCbCr, PSNR/SSIM, tiled upscaling,
//!   the shipped models.
//! - [`bench`]: training and upscaling speed (`genlab bench`).
//! - [`nn`]: blocks shared by the models.
//! - [`loss`]: the losses, each with its formula.
//! - [`train`]: the training loops (generative, and [`train::sr`]) and their run folders.
//! - [`metrics`]: evaluation (ELBO, MSE, PSNR).
//! - [`image_io`]: pixels <-> tensors, image grids, PNG files.
//! - [`checkpoint`]: weights (safetensors) + config (TOML) + training state.
//! - [`plot`]: the loss-curve PNG.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod fsutil;
pub mod image_io;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod plot;
pub mod rng;
pub mod sr;
pub mod train;

pub use config::{RunConfig, SrRunConfig, SrTrainConfig, TrainConfig};
pub use error::{Error, Result};
pub use models::{Autoencoder, AutoencoderConfig, ModelConfig, Vae, VaeConfig};
