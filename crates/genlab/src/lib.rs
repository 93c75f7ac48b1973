//! # genlab
//!
//! Deep generative image models on [burn]: autoencoders and (beta-)VAEs today, trained, sampled,
//! evaluated and saved with the same run folders. The library returns typed [`Error`]s and never
//! prints; the `genlab` binary (crate `genlab-cli`) is a thin front end over it.
//!
//! Modules:
//! - [`data`]: IDX (MNIST, Fashion-MNIST), CIFAR-10, image folders, the embedded `mnist-10k`,
//!   seeded batches, and `genlab data fetch`'s downloader.
//! - [`models`]: one file per model family, each with its config.
//! - [`nn`]: blocks shared by the models.
//! - [`loss`]: the losses, each with its formula.
//! - [`train`]: the training loop and its run folder.
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
pub mod train;

pub use config::{RunConfig, TrainConfig};
pub use error::{Error, Result};
pub use models::{Autoencoder, AutoencoderConfig, ModelConfig, Vae, VaeConfig};
