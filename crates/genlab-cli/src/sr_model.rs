//! A super-resolution network to run: a `genlab train sr` run folder, or the shipped model.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::prelude::*;
use genlab::SrRunConfig;
use genlab::checkpoint::{RunDir, load_weights, load_weights_bytes};
use genlab::models::SrModelConfig;
use genlab::models::SrNetFn;

/// Where the weights come from.
pub struct SrModel {
    /// The run's (or shipped model's) config.
    pub config: SrRunConfig,
    /// What to call it in messages.
    pub name: String,
    source: Source,
}

enum Source {
    Run(PathBuf),
    Shipped(&'static [u8]),
}

impl SrModel {
    /// `--model RUN` if given (its scale must equal `--scale` when both are given), else the
    /// shipped FSRCNN for `--scale` (default 2).
    pub fn open(run: Option<&Path>, scale: Option<usize>) -> Result<Self> {
        if let Some(s) = scale {
            genlab::sr::check_scale(s)?;
        }
        match run {
            Some(dir) => {
                let config = RunDir::new(dir).load_sr_config()?;
                if let Some(s) = scale
                    && s != config.model.scale()
                {
                    bail!(
                        "--scale {s}: the model in {} upscales x{}",
                        dir.display(),
                        config.model.scale()
                    );
                }
                Ok(Self {
                    config,
                    name: dir.display().to_string(),
                    source: Source::Run(dir.to_path_buf()),
                })
            }
            None => {
                let (s, config) = genlab::sr::shipped::shipped(scale.unwrap_or(2))?;
                Ok(Self {
                    config,
                    name: format!("{} (shipped)", s.path),
                    source: Source::Shipped(s.weights),
                })
            }
        }
    }

    /// Calls `f` with the loaded network.
    pub fn with_net<T>(&self, device: &Device, f: impl SrNetFn<T>) -> Result<T> {
        match &self.config.model {
            SrModelConfig::Fsrcnn(c) => Ok(f.call(self.weights(c.init(device))?)?),
            SrModelConfig::Espcn(c) => Ok(f.call(self.weights(c.init(device))?)?),
        }
    }

    /// The network, loaded to keep (the studio loads each model once).
    pub fn load(&self, device: &Device) -> Result<LoadedSr> {
        Ok(match &self.config.model {
            SrModelConfig::Fsrcnn(c) => LoadedSr::Fsrcnn(Box::new(self.weights(c.init(device))?)),
            SrModelConfig::Espcn(c) => LoadedSr::Espcn(Box::new(self.weights(c.init(device))?)),
        })
    }

    /// `net` with this model's weights.
    fn weights<N: Module>(&self, net: N) -> Result<N> {
        Ok(match &self.source {
            Source::Run(dir) => load_weights(net, &RunDir::new(dir).weights())?,
            Source::Shipped(bytes) => {
                load_weights_bytes(net, bytes.to_vec(), Path::new(&self.name))?
            }
        })
    }
}

/// A loaded super-resolution network of either family.
pub enum LoadedSr {
    Fsrcnn(Box<genlab::models::Fsrcnn>),
    Espcn(Box<genlab::models::Espcn>),
}

impl LoadedSr {
    /// Upscales a picture ([`genlab::sr::upscale::upscale`], default tiles).
    pub fn upscale(
        &self,
        pic: &genlab::sr::Picture,
        device: &Device,
    ) -> Result<genlab::sr::Picture> {
        use genlab::sr::upscale::{DEFAULT_TILE, upscale};
        Ok(match self {
            LoadedSr::Fsrcnn(n) => upscale(n.as_ref(), pic, DEFAULT_TILE, device, &mut |_, _| {})?,
            LoadedSr::Espcn(n) => upscale(n.as_ref(), pic, DEFAULT_TILE, device, &mut |_, _| {})?,
        })
    }
}
