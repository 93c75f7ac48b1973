//! What the cases are made from: a few trained runs, valid files of every format, and the
//! functions that break them.

use super::*;

pub struct Fixtures {
    /// A dry-run MLP VAE run.
    pub vae: PathBuf,
    /// A dry-run DCGAN run.
    pub gan: PathBuf,
    /// A finished 2-epoch VAE run (small preset), for resume cases (copied before use).
    pub vae2: PathBuf,
    pub png: Vec<u8>,
    pub jpg: Vec<u8>,
    pub bmp: Vec<u8>,
    /// Valid IDX files, 32 train / 16 test 28x28 images.
    pub idx: BTreeMap<&'static str, Vec<u8>>,
    /// A valid CIFAR-10 batch of 20 records.
    pub cifar: Vec<u8>,
    /// The VAE's weights as safetensors (tensor name -> (shape, f32 values)), metadata.
    pub tensors: Tensors,
    pub meta: std::collections::HashMap<String, String>,
}

pub fn photo(w: u32, h: u32, seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let v = (x * 7 + y * 13 + seed * 31) % 256;
        image::Rgb([v as u8, ((x * y + seed) % 256) as u8, (255 - v) as u8])
    })
}

pub fn encode(img: &image::RgbImage, f: image::ImageFormat) -> Vec<u8> {
    let mut b = Vec::new();
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut std::io::Cursor::new(&mut b), f)
        .expect("encode");
    b
}

pub fn idx_images(n: usize, h: usize, w: usize, seed: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        b.extend((d as u32).to_be_bytes());
    }
    b.extend((0..n * h * w).map(|i| ((i * 31 + seed * 7) % 256) as u8));
    b
}

pub fn idx_labels(n: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend((n as u32).to_be_bytes());
    b.extend((0..n).map(|i| (i % 10) as u8));
    b
}

pub fn read_safetensors(p: &Path) -> (Tensors, Meta) {
    let bytes = std::fs::read(p).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("meta");
    let mut ts: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let v = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (n, t.shape().to_vec(), v)
        })
        .collect();
    ts.sort_by(|a, b| a.0.cmp(&b.0));
    (ts, meta.metadata().clone().unwrap_or_default())
}

/// Writes tensors in any dtype: `conv(values) -> (dtype, bytes)`.
pub fn write_safetensors(
    p: &Path,
    ts: &[(String, Vec<usize>, Vec<f32>)],
    meta: &std::collections::HashMap<String, String>,
    conv: Conv<'_>,
) {
    let raws: Vec<(String, Vec<usize>, safetensors::Dtype, Vec<u8>)> = ts
        .iter()
        .map(|(n, s, v)| {
            let (d, b) = conv(n, v);
            (n.clone(), s.clone(), d, b)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = raws
        .iter()
        .map(|(n, s, d, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).expect("view"),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, Some(meta.clone())).expect("serialize");
    std::fs::write(p, bytes).expect("write weights");
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The small preset the resume fixtures train with: 64 images, batches of 16, 2 epochs.
pub const SMALL_VAE: &str = "[model]\nkind = \"vae\"\nlatent = 2\n\n[train]\nepochs = 2\nbatch_size = 16\nmax_train_images = 64\nmax_test_images = 32\ngrid_images = 4\n";

pub fn fixtures(root: &Path) -> Fixtures {
    let root = root.to_path_buf();
    ok(
        &root,
        &[
            "train",
            "vae",
            "--dry-run",
            "-q",
            "--latent",
            "2",
            "--out",
            "vae",
        ],
    );
    ok(&root, &["train", "gan", "--dry-run", "-q", "--out", "gan"]);
    std::fs::write(root.join("small-vae.toml"), SMALL_VAE).expect("preset");
    ok(
        &root,
        &[
            "train",
            "vae",
            "--preset",
            "small-vae.toml",
            "-q",
            "--out",
            "vae2",
        ],
    );
    let img = photo(40, 30, 1);
    let mut idx = BTreeMap::new();
    idx.insert("train-images-idx3-ubyte", idx_images(32, 28, 28, 1));
    idx.insert("train-labels-idx1-ubyte", idx_labels(32));
    idx.insert("t10k-images-idx3-ubyte", idx_images(16, 28, 28, 2));
    idx.insert("t10k-labels-idx1-ubyte", idx_labels(16));
    let mut cifar = Vec::new();
    for i in 0..20u32 {
        cifar.push((i % 10) as u8);
        cifar.extend((0..3072u32).map(|j| ((i * 17 + j) % 256) as u8));
    }
    let (tensors, meta) = read_safetensors(&root.join("vae/weights.safetensors"));
    Fixtures {
        vae: root.join("vae"),
        gan: root.join("gan"),
        vae2: root.join("vae2"),
        png: encode(&img, image::ImageFormat::Png),
        jpg: encode(&img, image::ImageFormat::Jpeg),
        bmp: encode(&img, image::ImageFormat::Bmp),
        idx,
        cifar,
        tensors,
        meta,
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("ls").flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).expect("copy");
        }
    }
}

/// Writes the four IDX files into `dir/NAME` (mnist layout), with `edit` applied to the bytes
/// of the file it names.
pub fn idx_dataset(dir: &Path, fx: &Fixtures, file: &str, edit: &dyn Fn(Vec<u8>) -> Vec<u8>) {
    let d = dir.join("data/mnist");
    std::fs::create_dir_all(&d).expect("mkdir");
    for (name, bytes) in &fx.idx {
        let b = if *name == file {
            edit(bytes.clone())
        } else {
            bytes.clone()
        };
        std::fs::write(d.join(name), b).expect("write idx");
    }
}

pub fn cifar_dataset(dir: &Path, fx: &Fixtures, edit: &dyn Fn(Vec<u8>) -> Vec<u8>) {
    let d = dir.join("data/cifar10");
    std::fs::create_dir_all(&d).expect("mkdir");
    for i in 1..=5 {
        let b = if i == 1 {
            edit(fx.cifar.clone())
        } else {
            fx.cifar.clone()
        };
        std::fs::write(d.join(format!("data_batch_{i}.bin")), b).expect("write");
    }
    std::fs::write(d.join("test_batch.bin"), &fx.cifar).expect("write");
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).expect("gz");
    e.finish().expect("gz")
}

pub fn flip(mut b: Vec<u8>, at: usize) -> Vec<u8> {
    let i = at % b.len();
    b[i] ^= 0xff;
    b
}

/// A copy of a fixture run in the case folder, with `file` replaced by `bytes`.
pub fn run_with(dir: &Path, from: &Path, file: &str, bytes: &[u8]) -> PathBuf {
    let r = dir.join("run");
    copy_dir(from, &r);
    std::fs::write(r.join(file), bytes).expect("write");
    r
}

pub fn edit_state(dir: &Path, fx: &Fixtures, edit: &dyn Fn(&mut serde_json::Value)) -> PathBuf {
    let r = dir.join("run");
    copy_dir(&fx.vae2, &r);
    let p = r.join("state.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("state")).expect("json");
    edit(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).expect("json")).expect("write");
    r
}

pub fn code_bytes(n_header: u32, values: &[f32]) -> Vec<u8> {
    let mut b = b"GENLABZ1".to_vec();
    b.extend(n_header.to_le_bytes());
    b.extend(f32_bytes(values));
    b
}

/// A PNG whose header claims `w` x `h` pixels (valid CRC), with no image data to speak of.
pub fn fake_png(w: u32, h: u32) -> Vec<u8> {
    let mut b = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    b.extend(13u32.to_be_bytes());
    b.extend(&ihdr);
    b.extend(crc32(&ihdr).to_be_bytes());
    b.extend(0u32.to_be_bytes());
    b.extend(b"IEND");
    b.extend(crc32(b"IEND").to_be_bytes());
    b
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &x in data {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// `d/photos` holding one PNG: the smallest image folder. Returns its name for the command.
pub fn photo_folder(d: &Path, fx: &Fixtures) -> &'static str {
    std::fs::create_dir_all(d.join("photos")).expect("mkdir");
    std::fs::write(d.join("photos/a.png"), &fx.png).expect("write");
    "photos"
}

/// A copy of the fixture run `from` at `d/run`, for a case that breaks or targets its files.
pub fn run_copy(d: &Path, from: &Path) -> PathBuf {
    let r = d.join("run");
    copy_dir(from, &r);
    r
}

/// `genlab sample RUN EXTRA...`.
pub fn sample_cmd(run: impl Into<OsString>, extra: &[&str]) -> Vec<OsString> {
    let mut a = args(&["sample"]);
    a.push(run.into());
    a.extend(args(extra));
    a
}
