//! What several subcommands share: the device flag and opening a run folder as a model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use genlab::checkpoint::{RunDir, load_weights};
use genlab::models::ImageModel;
use genlab::{ModelConfig, RunConfig};

/// `--device`: where tensors live.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DeviceArg {
    /// burn's flex CPU backend (SIMD, all cores).
    Cpu,
    /// A GPU through wgpu (Vulkan/Metal/DX12); needs the `wgpu` cargo feature.
    Wgpu,
    /// An NVIDIA GPU through CUDA; needs the `cuda` cargo feature.
    Cuda,
}

/// Turns `--device` into a burn device.
pub fn device(arg: DeviceArg) -> Result<Device> {
    match arg {
        DeviceArg::Cpu => Ok(Device::flex()),
        DeviceArg::Wgpu | DeviceArg::Cuda => bail!(
            "--device {}: this genlab was built without GPU support; the CPU backend is the only one compiled in (use --device cpu)",
            format!("{arg:?}").to_lowercase()
        ),
    }
}

/// A run folder opened for inference: its config and the model family's weights.
pub struct OpenRun {
    pub dir: RunDir,
    pub config: RunConfig,
}

impl OpenRun {
    pub fn open(path: &Path) -> Result<Self> {
        let dir = RunDir::new(path);
        let config = dir.load_config()?;
        Ok(Self { dir, config })
    }

    /// Calls `f` with the loaded model, whatever its family.
    pub fn with_model<T>(&self, device: &Device, f: impl ModelFn<T>) -> Result<T> {
        let w = self.dir.weights();
        match &self.config.model {
            ModelConfig::Ae(c) => f.call(load_weights(c.init(device), &w)?),
            ModelConfig::Vae(c) => f.call(load_weights(c.init(device), &w)?),
        }
    }
}

/// A function generic over the model family (closures cannot be generic).
pub trait ModelFn<T> {
    fn call<M: ImageModel>(self, model: M) -> Result<T>;
}

/// The flags of every command that reads a run's test split.
#[derive(clap::Args)]
pub struct DataArgs {
    /// Folder searched first for the dataset.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

/// Opens a run folder, its device and its dataset: what reconstruct, interpolate and eval start with.
pub fn open_with_data(run: &Path, a: DataArgs) -> Result<(Device, OpenRun, genlab::data::Dataset)> {
    let device = device(a.device)?;
    let run = OpenRun::open(run)?;
    let data = dataset(&run, a.data_dir)?;
    Ok((device, run, data))
}

/// Loads the run's dataset (for test images).
pub fn dataset(run: &OpenRun, data_dir: Option<PathBuf>) -> Result<genlab::data::Dataset> {
    let t = &run.config.train;
    let spec = t.dataset_spec()?;
    genlab::data::load(&spec, &t.data_options(data_dir))
        .with_context(|| format!("loading the run's dataset {}", t.dataset))
}

/// Fails unless the output's folder exists, so a long job does not end in a write error.
pub fn check_output(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        bail!(
            "{}: output folder {} does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}
