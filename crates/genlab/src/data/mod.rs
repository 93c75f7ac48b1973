//! Datasets: where they live, how they are read, and how they become shuffled batches.
//!
//! Every dataset is `u8` pixels in `[n, c, h, w]` order, turned into `f32` tensors in `[0, 1]` one
//! batch at a time by [`batch_tensor`] (its pixel conversion is [`crate::image_io`]'s). The
//! datasets genlab knows by name are held in memory (a few hundred MB at most); an image folder
//! is decoded once into a pack file ([`pack`]) that training memory-maps, so it may be larger
//! than memory.

mod batch;
pub mod cifar;
pub mod embedded;
pub mod fetch;

pub mod idx;
pub mod image_dir;
mod loader;
pub mod pack;
mod pixels;

pub use batch::{batch_labels, batch_tensor, labels_tensor, one_hot, shifted_batch_tensor};
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use loader::{Batches, shuffled_order};
pub use pixels::Pixels;

use crate::error::{Error, Result};

/// A set of same-sized images, `[n, c, h, w]` u8, with optional class labels.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// Pixels, row-major `[n, c, h, w]`.
    pub pixels: Pixels,
    /// One class label per image, when the dataset has them.
    pub labels: Option<Vec<u8>>,
    /// `[c, h, w]` of every image.
    pub shape: [usize; 3],
}

impl ImageSet {
    /// Builds a set, checking that the pixel count matches `shape` and the labels.
    pub fn new(
        pixels: impl Into<Pixels>,
        labels: Option<Vec<u8>>,
        shape: [usize; 3],
    ) -> Result<Self> {
        let pixels = pixels.into();
        let per = shape.iter().product::<usize>();
        if per == 0 || !pixels.len().is_multiple_of(per) {
            return Err(Error::Shape {
                op: "ImageSet::new",
                expected: format!("a multiple of {per} pixels ({shape:?})"),
                got: pixels.len().to_string(),
            });
        }
        let n = pixels.len() / per;
        if let Some(l) = &labels
            && l.len() != n
        {
            return Err(Error::Shape {
                op: "ImageSet::new",
                expected: format!("{n} labels"),
                got: l.len().to_string(),
            });
        }
        Ok(Self {
            pixels,
            labels,
            shape,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Pixels in one image, `c * h * w`.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// [`ImageSet::select`] by positioned reads of a pack (see [`Pixels::read_at`]), so the
    /// images do not stay in this process's memory after the copy; for an in-memory set, the
    /// same as `select`.
    pub fn gather(&self, indices: &[usize]) -> std::io::Result<ImageSet> {
        let n = self.image_len();
        let mut pixels = vec![0u8; indices.len() * n];
        for (k, &i) in indices.iter().enumerate() {
            self.pixels
                .read_at(i * n, &mut pixels[k * n..(k + 1) * n])?;
        }
        let labels = self
            .labels
            .as_ref()
            .map(|l| indices.iter().map(|&i| l[i]).collect());
        Ok(ImageSet {
            pixels: pixels.into(),
            labels,
            shape: self.shape,
        })
    }

    /// A new set of the images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        let labels = self
            .labels
            .as_ref()
            .map(|l| indices.iter().map(|&i| l[i]).collect());
        ImageSet {
            pixels: pixels.into(),
            labels,
            shape: self.shape,
        }
    }

    /// The first `n` images (all of them if there are fewer); of a mapped set, a view of the
    /// same file.
    pub fn take(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        ImageSet {
            pixels: self.pixels.slice(0, n * self.image_len()),
            labels: self.labels.as_ref().map(|l| l[..n].to_vec()),
            shape: self.shape,
        }
    }
}

/// A dataset with its train and test splits.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// What it is, for logs and run folders (e.g. `mnist-10k`).
    pub name: String,
    /// Training images.
    pub train: ImageSet,
    /// Held-out images, used for test loss and evaluation.
    pub test: ImageSet,
    /// The name of each class label (`classes[label]`), when the images are labelled.
    pub classes: Vec<String>,
}

impl Dataset {
    /// `[c, h, w]` of the images.
    pub fn shape(&self) -> [usize; 3] {
        self.train.shape
    }
}

/// Which dataset to use, as a user names it on the command line or in a preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSpec {
    /// MNIST's 10,000-image test set, shipped inside genlab, split 9,000 / 1,000.
    Mnist10k,
    /// Full MNIST (60,000 + 10,000) from disk.
    Mnist,
    /// Full Fashion-MNIST (60,000 + 10,000) from disk.
    FashionMnist,
    /// CIFAR-10 binary version (50,000 + 10,000, 32x32 RGB) from disk.
    Cifar10,
    /// A folder of PNG/JPEG/BMP images (read through its pack in the cache).
    Folder(PathBuf),
    /// A pack file made by `genlab data pack` ([`pack`]).
    Pack(PathBuf),
}

impl FromStr for DatasetSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "mnist-10k" => DatasetSpec::Mnist10k,
            "mnist" => DatasetSpec::Mnist,
            "fashion-mnist" => DatasetSpec::FashionMnist,
            "cifar10" | "cifar-10" => DatasetSpec::Cifar10,
            "" => {
                return Err(Error::config(
                    "dataset",
                    "\"\"",
                    "a dataset; this preset has none of its own: give --dataset FOLDER (a folder of images) or a pack made by `genlab data pack`",
                ));
            }
            other => {
                let p = PathBuf::from(other);
                if p.is_dir() {
                    DatasetSpec::Folder(p)
                } else if p.is_file() && pack::is_pack(&p) {
                    DatasetSpec::Pack(p)
                } else {
                    return Err(Error::config(
                        "dataset",
                        other,
                        if p.is_file() {
                            "a pack made by `genlab data pack` (this file is not one), a dataset name or a folder of images"
                        } else {
                            "one of mnist-10k, mnist, fashion-mnist, cifar10, an existing folder of images, or a pack made by `genlab data pack`"
                        },
                    ));
                }
            }
        })
    }
}

impl std::fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatasetSpec::Mnist10k => f.write_str("mnist-10k"),
            DatasetSpec::Mnist => f.write_str("mnist"),
            DatasetSpec::FashionMnist => f.write_str("fashion-mnist"),
            DatasetSpec::Cifar10 => f.write_str("cifar10"),
            DatasetSpec::Folder(p) | DatasetSpec::Pack(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Where to look for datasets and how to shape folder images.
#[derive(Clone, Default)]
pub struct DataOptions {
    /// An explicit data folder (`--data-dir`), searched first.
    pub data_dir: Option<PathBuf>,
    /// For image folders: the `[c, h, w]` every image is converted to (c = 1 grey, 3 RGB).
    pub folder_shape: Option<[usize; 3]>,
    /// Told what the pack cache does for an image folder (reused, packing with progress, ...):
    /// how a program shows it.
    pub on_pack: Option<std::sync::Arc<dyn Fn(pack::CacheEvent) + Send + Sync>>,
}

impl std::fmt::Debug for DataOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataOptions")
            .field("data_dir", &self.data_dir)
            .field("folder_shape", &self.folder_shape)
            .field("on_pack", &self.on_pack.is_some())
            .finish()
    }
}

/// The folders searched for a dataset's files, in order: `--data-dir`, `$GENLAB_DATA`, the user
/// cache (`$XDG_CACHE_HOME/genlab` or `~/.cache/genlab`), then `/usr/share/datasets` (where
/// Debian's `dataset-fashion-mnist` installs). Each root is tried as-is and with `/NAME` appended.
pub fn search_roots(name: &str, data_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(d) = data_dir {
        roots.push(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("GENLAB_DATA") {
        roots.push(PathBuf::from(d));
    }
    roots.push(cache_dir());
    roots.push(PathBuf::from("/usr/share/datasets"));
    let mut out = Vec::new();
    for r in roots {
        out.push(r.join(name));
        out.push(r);
    }
    out
}

/// genlab's user cache folder, where `genlab data fetch` puts downloads.
pub fn cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(x).join("genlab");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache").join("genlab");
    }
    PathBuf::from(".genlab-cache")
}

/// Finds `file` (or `file.gz`) in the first root that has it.
fn find_file(roots: &[PathBuf], file: &str) -> Option<PathBuf> {
    roots.iter().find_map(|r| {
        [file.to_string(), format!("{file}.gz")]
            .into_iter()
            .map(|f| r.join(f))
            .find(|p| p.is_file())
    })
}

/// Loads a dataset by its spec.
pub fn load(spec: &DatasetSpec, opts: &DataOptions) -> Result<Dataset> {
    match spec {
        DatasetSpec::Mnist10k => embedded::mnist_10k(),
        DatasetSpec::Mnist => load_idx_pair("mnist", opts),
        DatasetSpec::FashionMnist => load_idx_pair("fashion-mnist", opts),
        DatasetSpec::Cifar10 => cifar::load(&search_roots("cifar10", opts.data_dir.as_deref())),
        DatasetSpec::Folder(dir) => {
            let shape = opts.folder_shape.unwrap_or(image_dir::DEFAULT_SHAPE);
            pack::cached(dir, shape, &mut |e| {
                if let Some(f) = &opts.on_pack {
                    f(e)
                }
            })
        }
        DatasetSpec::Pack(file) => pack::open(file),
    }
}

/// Loads the four IDX files of MNIST or Fashion-MNIST from the first folder that has them.
fn load_idx_pair(name: &str, opts: &DataOptions) -> Result<Dataset> {
    let roots = search_roots(name, opts.data_dir.as_deref());
    let files = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];
    // All four files must come from one folder: a root is used only if it has the first one.
    let root = roots
        .iter()
        .find(|r| find_file(std::slice::from_ref(*r), files[0]).is_some())
        .ok_or_else(|| Error::DatasetNotFound {
            name: name.to_string(),
            msg: format!(
                "no {}[.gz] in {}; run `genlab data fetch {name}`{}",
                files[0],
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if name == "fashion-mnist" {
                    " or `apt-get install dataset-fashion-mnist`"
                } else {
                    ""
                }
            ),
        })?;
    let one = std::slice::from_ref(root);
    let path = |f: &str| {
        find_file(one, f).ok_or_else(|| Error::DatasetNotFound {
            name: name.to_string(),
            msg: format!("{} has {} but no {f}[.gz]", root.display(), files[0]),
        })
    };
    let train = idx_set(&path(files[0])?, &path(files[1])?)?;
    let test = idx_set(&path(files[2])?, &path(files[3])?)?;
    if test.shape != train.shape {
        return Err(Error::format(
            path(files[2])?,
            format!(
                "test images are {:?}, but the training images ({}) are {:?}",
                test.shape,
                path(files[0])?.display(),
                train.shape
            ),
        ));
    }
    let classes = if name == "fashion-mnist" {
        class_names(&FASHION_CLASSES)
    } else {
        class_names(&MNIST_CLASSES)
    };
    Ok(Dataset {
        name: name.to_string(),
        train,
        test,
        classes,
    })
}

/// Classes of the IDX datasets genlab reads (MNIST, Fashion-MNIST): labels are `0..10`.
const IDX_CLASSES: u8 = 10;

/// MNIST's class names: the digits.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Fashion-MNIST's class names, in label order (Xiao, Rasul & Vollgraf 2017).
pub const FASHION_CLASSES: [&str; 10] = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
];

/// CIFAR-10's class names, in label order (its `batches.meta.txt`).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// A list of class names as owned strings.
pub fn class_names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// An image set from an IDX image file and its label file, checking that their counts agree.
pub fn idx_set(images: &Path, labels: &Path) -> Result<ImageSet> {
    let im = idx::read_images(images)?;
    let lb = idx::read_labels(labels)?;
    if im.dims.contains(&0) {
        return Err(Error::format(
            images,
            format!("IDX dimensions {:?}: no images", im.dims),
        ));
    }
    if let Some((i, l)) = lb.data.iter().enumerate().find(|(_, l)| **l >= IDX_CLASSES) {
        return Err(Error::format(
            labels,
            format!(
                "label {i} is {l}; MNIST-style labels are 0..={}",
                IDX_CLASSES - 1
            ),
        ));
    }
    if im.dims[0] != lb.dims[0] {
        return Err(Error::format(
            labels,
            format!(
                "{} labels but {} has {} images",
                lb.dims[0],
                images.display(),
                im.dims[0]
            ),
        ));
    }
    ImageSet::new(im.data, Some(lb.data), [1, im.dims[1], im.dims[2]])
}
