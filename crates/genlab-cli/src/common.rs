//! What several subcommands share: the device flag and opening a run folder as a model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use genlab::RunConfig;
use genlab::checkpoint::RunDir;
use genlab::fsutil::{Origin, Outputs};
use genlab::models::{Classifier, Conditional, Generative, ImageModel, ModelVisitor};

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

/// Turns `--device` into a burn device. A GPU device is tried once here (a one-element tensor
/// round trip), so a machine without a usable adapter gets an error instead of a panic later.
pub fn device(arg: DeviceArg) -> Result<Device> {
    match arg {
        DeviceArg::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceArg::Wgpu => probe(
            Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            "wgpu",
        ),
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda => probe(Device::cuda(0), "cuda"),
        #[allow(unreachable_patterns)]
        other => {
            let name = format!("{other:?}").to_lowercase();
            bail!(
                "--device {name}: this genlab was built without the `{name}` cargo feature (rebuild with `cargo build --release -p genlab-cli --features {name}`, or use --device cpu)"
            )
        }
    }
}

/// Runs a tiny computation on `device`, turning a backend panic (no adapter, no driver) into an
/// error.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn probe(device: Device, name: &str) -> Result<Device> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let d = device.clone();
    let ok = std::panic::catch_unwind(move || {
        Tensor::<1>::from_floats([1.0], &d)
            .add_scalar(1.0)
            .into_data()
            .try_into_vec::<f32>()
            .map(|v| v == [2.0])
            .unwrap_or(false)
    });
    std::panic::set_hook(hook);
    match ok {
        Ok(true) => Ok(device),
        Ok(false) => bail!("--device {name}: the device returned a wrong result for 1 + 1"),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("unknown error");
            let first = msg.lines().next().unwrap_or(msg);
            bail!("--device {name}: no usable GPU ({first}); use --device cpu")
        }
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

    /// Calls `f` with the loaded model, whatever its family (one with an encoder).
    pub fn with_model<T>(&self, device: &Device, f: impl ModelFn<T>) -> Result<T> {
        struct V<'a, F>(F, &'a OpenRun);
        impl<T, F: ModelFn<T>> ModelVisitor<Result<T>> for V<'_, F> {
            fn encoder_with_prior<M: ImageModel + Generative>(self, m: M) -> Result<T> {
                self.0.call(m)
            }
            fn encoder<M: ImageModel>(self, m: M) -> Result<T> {
                self.0.call(m)
            }
            fn generator<G: Generative>(self, _: G) -> Result<T> {
                self.1.no_encoder()
            }
            fn conditional<G: Conditional>(self, g: G) -> Result<T> {
                if g.has_encoder() {
                    bail!(
                        "{}: a conditional VAE encodes an image given its class, which this command does not take (`encode` and `decode` take --class; `reconstruct` and `eval` use the test labels)",
                        self.1.dir.dir.display()
                    )
                }
                self.1.no_encoder()
            }
            fn classifier(self, _: Classifier) -> Result<T> {
                self.1.no_encoder()
            }
        }
        self.config
            .model
            .load(device, &self.dir.weights(), V(f, self))?
    }

    fn no_encoder<T>(&self) -> Result<T> {
        bail!(
            "{}: a {} has no encoder, so it cannot reconstruct or encode images (use `genlab sample` or `genlab interpolate`)",
            self.dir.dir.display(),
            self.config.model.kind()
        )
    }

    /// Calls `f` with the loaded generator (VAE decoder, GAN generator).
    pub fn with_generator<T>(&self, device: &Device, f: impl GenFn<T>) -> Result<T> {
        struct V<'a, F>(F, &'a OpenRun);
        impl<T, F: GenFn<T>> ModelVisitor<Result<T>> for V<'_, F> {
            fn encoder_with_prior<M: ImageModel + Generative>(self, m: M) -> Result<T> {
                self.0.call(m)
            }
            fn encoder<M: ImageModel>(self, _: M) -> Result<T> {
                bail!(
                    "{}: an autoencoder has no prior to draw codes from, so it cannot generate images (train a vae or a gan)",
                    self.1.dir.dir.display()
                )
            }
            fn generator<G: Generative>(self, g: G) -> Result<T> {
                self.0.call(g)
            }
            fn conditional<G: Conditional>(self, g: G) -> Result<T> {
                self.0.call(g)
            }
            fn classifier(self, _: Classifier) -> Result<T> {
                bail!(
                    "{}: a classifier run; it scores images (`genlab eval --classifier`), it does not generate them",
                    self.1.dir.dir.display()
                )
            }
        }
        self.config
            .model
            .load(device, &self.dir.weights(), V(f, self))?
    }
}

impl OpenRun {
    /// Calls `f` with the loaded conditional generator, or `None` for a run of another family
    /// (whose weights are then not read).
    pub fn with_conditional<T>(&self, device: &Device, f: impl CondFn<T>) -> Result<Option<T>> {
        struct V<F>(F);
        impl<T, F: CondFn<T>> ModelVisitor<Result<Option<T>>> for V<F> {
            fn encoder_with_prior<M: ImageModel + Generative>(self, _: M) -> Result<Option<T>> {
                Ok(None)
            }
            fn encoder<M: ImageModel>(self, _: M) -> Result<Option<T>> {
                Ok(None)
            }
            fn generator<G: Generative>(self, _: G) -> Result<Option<T>> {
                Ok(None)
            }
            fn conditional<G: Conditional>(self, g: G) -> Result<Option<T>> {
                self.0.call(g).map(Some)
            }
            fn classifier(self, _: Classifier) -> Result<Option<T>> {
                Ok(None)
            }
        }
        if !self.config.model.is_conditional() {
            return Ok(None);
        }
        self.config.model.load(device, &self.dir.weights(), V(f))?
    }
}

/// `--class NAME|INDEX` of a conditional run: the label, by its name or its index.
pub fn class_index(names: &[String], class: &str) -> Result<usize> {
    if let Some(i) = names.iter().position(|n| n == class) {
        return Ok(i);
    }
    match class.parse::<usize>() {
        Ok(i) if i < names.len() => Ok(i),
        _ => bail!(
            "--class {class}: not a class of this run; expected a name ({}) or an index 0..{}",
            names.join(", "),
            names.len() - 1
        ),
    }
}

/// Refuses `--class` (given as `class`) on a run of an unconditional family.
pub fn refuse_class(run: &OpenRun, class: Option<&str>) -> Result<()> {
    if class.is_some() && !run.config.model.is_conditional() {
        bail!(
            "--class: a {} run has no classes to choose from (train a cvae or cgan)",
            run.config.model.kind()
        );
    }
    Ok(())
}

/// A function generic over the conditional families.
pub trait CondFn<T> {
    fn call<G: Conditional>(self, model: G) -> Result<T>;
}

/// A function generic over the generative families.
pub trait GenFn<T> {
    fn call<G: Generative>(self, model: G) -> Result<T>;
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
    crate::data::load(&spec, &t.data_options(data_dir), false)
        .with_context(|| format!("loading the run's dataset {}", t.dataset))
}

/// `runs/BASE`, or `runs/BASE-2`, `-3`, ... if taken: the default run folder of `genlab train`.
pub fn first_free_run_dir(base: &str) -> PathBuf {
    let mut p = PathBuf::from("runs").join(base);
    let mut i = 2;
    while p.exists() {
        p = PathBuf::from("runs").join(format!("{base}-{i}"));
        i += 1;
    }
    p
}

/// The output checks of a command that reads the run in `dir`: none of the run's files may be
/// one of its outputs (see [`genlab::fsutil::Outputs`] for the other rules).
pub fn outputs_reading(dir: &RunDir) -> Outputs {
    let mut o = Outputs::new();
    dir.protect(&mut o);
    o
}

/// Claims an image output: its extension must name a format genlab writes, then the path the
/// rules of [`Outputs::claim`].
pub fn claim_image(o: &mut Outputs, path: &Path, origin: Origin) -> Result<()> {
    genlab::image_io::output_format(path)?;
    o.claim(path, origin, None)?;
    Ok(())
}

/// Refuses a run folder inside one of the folders it reads (`--dataset`, `--images`, ...).
pub fn outside_inputs<P: AsRef<Path>>(
    run: &RunDir,
    inputs: impl IntoIterator<Item = P>,
) -> Result<()> {
    let mut o = Outputs::new();
    for i in inputs {
        o.input(i.as_ref());
    }
    o.claim_new_tree(&run.dir.join("config.toml"), Origin::Named, None)
        .map_err(|_| {
            anyhow::anyhow!(
                "{}: the run folder is inside a folder it reads; choose an --out outside it",
                run.dir.display()
            )
        })
}
