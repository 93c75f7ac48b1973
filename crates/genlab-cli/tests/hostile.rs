//! The hostile-input corpus: the real `genlab` binary against inputs a careful but hostile user
//! could give it, each made here (truncated, byte-flipped, crafted headers, wrong dtypes, paths
//! that collide with inputs, runs that disagree with themselves).
//!
//! Every case runs in a folder of its own and asserts: the exit code; for a failure, that the
//! last line of stderr is one `error:` line naming the file or value; no panic text; and that
//! no file that existed before (in the case's folder and the shared fixtures) changed or
//! disappeared. The closing summary prints the counts (`cargo test --test hostile -- --nocapture`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a case must end with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Exit 0.
    Ok,
    /// Exit 1 with a one-line error.
    Fail,
    /// Exit 2, clap's usage error.
    Usage,
    /// Exit 0, or exit 1 with a one-line error: mutated inputs that may still be valid.
    OkOrFail,
}

type Setup = Box<dyn Fn(&Path, &Fixtures) -> Vec<OsString> + Send + Sync>;
/// Tensors of a safetensors file: name, shape, f32 values.
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;
/// safetensors metadata.
type Meta = std::collections::HashMap<String, String>;
/// How a test writes a tensor: its values to (dtype, bytes).
type Conv<'a> = &'a dyn Fn(&str, &[f32]) -> (safetensors::Dtype, Vec<u8>);
/// An edit of a file's bytes.
type Edit = Box<dyn Fn(Vec<u8>) -> Vec<u8> + Send + Sync>;

struct Case {
    name: String,
    setup: Setup,
    expect: Expect,
    /// Some of these must appear in the error line (file names, values).
    mentions: Vec<String>,
    env: Vec<(String, String)>,
    /// Files the command is expected to replace (a file genlab made itself).
    may_change: Vec<&'static str>,
    /// A successful resume: it replaces the run's resume pair in `state/`.
    resumes: bool,
}

fn case(
    name: &str,
    expect: Expect,
    mentions: &[&str],
    setup: impl Fn(&Path, &Fixtures) -> Vec<OsString> + Send + Sync + 'static,
) -> Case {
    Case {
        name: name.into(),
        setup: Box::new(setup),
        expect,
        mentions: mentions.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        may_change: Vec::new(),
        resumes: false,
    }
}

impl Case {
    fn may_change(mut self, file: &'static str) -> Self {
        self.may_change.push(file);
        self
    }

    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// A resume that succeeds rewrites the run's own files.
    fn resumes(self) -> Self {
        [
            "config.toml",
            "metrics.jsonl",
            "state.json",
            "weights.safetensors",
            "loss.png",
        ]
        .into_iter()
        .fold(
            Case {
                resumes: true,
                ..self
            },
            Case::may_change,
        )
    }
}

fn args<S: AsRef<std::ffi::OsStr>>(xs: &[S]) -> Vec<OsString> {
    xs.iter().map(|x| x.as_ref().to_os_string()).collect()
}

fn genlab_cmd(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_genlab"));
    c.current_dir(cwd)
        .env("GENLAB_DATA", cwd.join("no-such-data"))
        .env("XDG_CACHE_HOME", cwd.join("no-cache"))
        .env_remove("GENLAB_TEST_PAUSE_AT");
    c
}

/// Runs genlab in `cwd`, asserting success; returns stdout.
fn ok(cwd: &Path, a: &[&str]) -> String {
    let o = genlab_cmd(cwd).args(a).output().expect("run genlab");
    assert!(
        o.status.success(),
        "{a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every file under `dir` with a hash of its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, u64> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(t) = std::fs::symlink_metadata(&p).map(|m| m.file_type()) else {
                continue;
            };
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&p).unwrap_or_default().hash(&mut h);
                out.insert(p, h.finish());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Fixtures: made once, read by every case (and checked unchanged at the end).

struct Fixtures {
    /// A dry-run MLP VAE run.
    vae: PathBuf,
    /// A dry-run DCGAN run.
    gan: PathBuf,
    /// A finished 2-epoch VAE run (small preset), for resume cases (copied before use).
    vae2: PathBuf,
    png: Vec<u8>,
    jpg: Vec<u8>,
    bmp: Vec<u8>,
    /// Valid IDX files, 32 train / 16 test 28x28 images.
    idx: BTreeMap<&'static str, Vec<u8>>,
    /// A valid CIFAR-10 batch of 20 records.
    cifar: Vec<u8>,
    /// The VAE's weights as safetensors (tensor name -> (shape, f32 values)), metadata.
    tensors: Tensors,
    meta: std::collections::HashMap<String, String>,
}

fn photo(w: u32, h: u32, seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let v = (x * 7 + y * 13 + seed * 31) % 256;
        image::Rgb([v as u8, ((x * y + seed) % 256) as u8, (255 - v) as u8])
    })
}

fn encode(img: &image::RgbImage, f: image::ImageFormat) -> Vec<u8> {
    let mut b = Vec::new();
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut std::io::Cursor::new(&mut b), f)
        .expect("encode");
    b
}

fn idx_images(n: usize, h: usize, w: usize, seed: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        b.extend((d as u32).to_be_bytes());
    }
    b.extend((0..n * h * w).map(|i| ((i * 31 + seed * 7) % 256) as u8));
    b
}

fn idx_labels(n: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend((n as u32).to_be_bytes());
    b.extend((0..n).map(|i| (i % 10) as u8));
    b
}

fn read_safetensors(p: &Path) -> (Tensors, Meta) {
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
fn write_safetensors(
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

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The small preset the resume fixtures train with: 64 images, batches of 16, 2 epochs.
const SMALL_VAE: &str = "[model]\nkind = \"vae\"\nlatent = 2\n\n[train]\nepochs = 2\nbatch_size = 16\nmax_train_images = 64\nmax_test_images = 32\ngrid_images = 4\n";

fn fixtures(root: &Path) -> Fixtures {
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

fn copy_dir(from: &Path, to: &Path) {
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
fn idx_dataset(dir: &Path, fx: &Fixtures, file: &str, edit: &dyn Fn(Vec<u8>) -> Vec<u8>) {
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

fn cifar_dataset(dir: &Path, fx: &Fixtures, edit: &dyn Fn(Vec<u8>) -> Vec<u8>) {
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

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).expect("gz");
    e.finish().expect("gz")
}

fn flip(mut b: Vec<u8>, at: usize) -> Vec<u8> {
    let i = at % b.len();
    b[i] ^= 0xff;
    b
}

/// A copy of a fixture run in the case folder, with `file` replaced by `bytes`.
fn run_with(dir: &Path, from: &Path, file: &str, bytes: &[u8]) -> PathBuf {
    let r = dir.join("run");
    copy_dir(from, &r);
    std::fs::write(r.join(file), bytes).expect("write");
    r
}

fn edit_state(dir: &Path, fx: &Fixtures, edit: &dyn Fn(&mut serde_json::Value)) -> PathBuf {
    let r = dir.join("run");
    copy_dir(&fx.vae2, &r);
    let p = r.join("state.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("state")).expect("json");
    edit(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).expect("json")).expect("write");
    r
}

fn code_bytes(n_header: u32, values: &[f32]) -> Vec<u8> {
    let mut b = b"GENLABZ1".to_vec();
    b.extend(n_header.to_le_bytes());
    b.extend(f32_bytes(values));
    b
}

/// A PNG whose header claims `w` x `h` pixels (valid CRC), with no image data to speak of.
fn fake_png(w: u32, h: u32) -> Vec<u8> {
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

fn crc32(data: &[u8]) -> u32 {
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

// ---------------------------------------------------------------------------------------------
// The corpus.

fn corpus() -> Vec<Case> {
    use Expect::*;
    let mut cs = Vec::new();
    let p = |s: &str| s.to_string();

    // --- Images given to upscale and encode: every broken form of each format.
    for (fmt, ext) in [("png", "png"), ("jpg", "jpg"), ("bmp", "bmp")] {
        let pick = move |fx: &Fixtures| match fmt {
            "png" => fx.png.clone(),
            "jpg" => fx.jpg.clone(),
            _ => fx.bmp.clone(),
        };
        for frac in [0usize, 1, 10, 50, 90, 99] {
            let name = format!("upscale-truncated-{fmt}-{frac}pct");
            cs.push(case(&name, Fail, &[&format!("in.{ext}")], move |d, fx| {
                let b = pick(fx);
                let n = (b.len() * frac / 100).max(if frac == 0 { 0 } else { 1 });
                let n = n.min(b.len() - 1);
                std::fs::write(d.join(format!("in.{ext}")), &b[..n]).expect("write");
                args(&["upscale", &format!("in.{ext}"), "-o", "out.png", "-q"])
            }));
            let name = format!("encode-truncated-{fmt}-{frac}pct");
            cs.push(case(&name, Fail, &[&format!("in.{ext}")], move |d, fx| {
                let b = pick(fx);
                let n = (b.len() * frac / 100).min(b.len() - 1);
                std::fs::write(d.join(format!("in.{ext}")), &b[..n]).expect("write");
                args(&[
                    OsString::from("encode"),
                    fx.vae.clone().into_os_string(),
                    OsString::from(format!("in.{ext}")),
                    OsString::from("-o"),
                    OsString::from("c.glz"),
                ])
            }));
        }
        for at in [3usize, 20, 200, 777, 1500, 4000] {
            let name = format!("upscale-flipped-{fmt}-byte{at}");
            cs.push(case(
                &name,
                OkOrFail,
                &[&format!("in.{ext}")],
                move |d, fx| {
                    std::fs::write(d.join(format!("in.{ext}")), flip(pick(fx), at)).expect("write");
                    args(&["upscale", &format!("in.{ext}"), "-o", "out.png", "-q"])
                },
            ));
        }
    }
    for (name, bytes) in [
        ("text", b"hello, not an image".to_vec()),
        ("empty", Vec::new()),
        (
            "png-magic-only",
            vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a],
        ),
        ("jpeg-soi-only", vec![0xff, 0xd8, 0xff]),
        ("bmp-magic-only", b"BM".to_vec()),
        ("fake-huge-png", fake_png(100_000, 100_000)),
        ("fake-zero-png", fake_png(0, 10)),
    ] {
        cs.push(case(
            &format!("upscale-{name}"),
            Fail,
            &["in.png"],
            move |d, _| {
                std::fs::write(d.join("in.png"), &bytes).expect("write");
                args(&["upscale", "in.png", "-o", "out.png", "-q"])
            },
        ));
    }
    cs.push(case(
        "upscale-missing-input",
        Fail,
        &["nope.png"],
        |_, _| args(&["upscale", "nope.png", "-o", "out.png"]),
    ));
    cs.push(case(
        "upscale-input-is-output",
        Fail,
        &["p.png"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&["upscale", "p.png", "-o", "p.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-output-is-link-to-input",
        Fail,
        &["link.png"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            std::os::unix::fs::symlink(d.join("p.png"), d.join("link.png")).expect("symlink");
            args(&["upscale", "p.png", "-o", "link.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-output-is-hard-link-to-input",
        Fail,
        &["hard.png"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            std::fs::hard_link(d.join("p.png"), d.join("hard.png")).expect("link");
            args(&["upscale", "p.png", "-o", "hard.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-output-same-file-other-spelling",
        Fail,
        &["p.png"],
        |d, fx| {
            std::fs::create_dir_all(d.join("sub")).expect("mkdir");
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&["upscale", "p.png", "-o", "sub/../p.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-folder-onto-itself",
        Fail,
        &["dir"],
        |d, fx| {
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
            std::fs::write(d.join("dir/a.png"), &fx.png).expect("write");
            args(&["upscale", "dir", "-o", "dir", "-q"])
        },
    ));
    cs.push(case(
        "upscale-folder-into-its-subfolder",
        Fail,
        &["dir"],
        |d, fx| {
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
            std::fs::write(d.join("dir/a.png"), &fx.png).expect("write");
            args(&["upscale", "dir", "-o", "dir/up", "-q"])
        },
    ));
    cs.push(case(
        "upscale-folder-name-collision",
        Fail,
        &["x.png", "x.jpg"],
        |d, fx| {
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
            std::fs::write(d.join("dir/x.png"), &fx.png).expect("write");
            std::fs::write(d.join("dir/x.jpg"), &fx.jpg).expect("write");
            args(&["upscale", "dir", "-o", "out", "-q"])
        },
    ));
    cs.push(case(
        "upscale-folder-with-a-truncated-jpeg",
        Fail,
        &["b.jpg"],
        |d, fx| {
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
            std::fs::write(d.join("dir/a.png"), &fx.png).expect("write");
            std::fs::write(d.join("dir/b.jpg"), &fx.jpg[..fx.jpg.len() / 2]).expect("write");
            args(&["upscale", "dir", "-o", "out", "-q"])
        },
    ));
    cs.push(case(
        "upscale-folder-to-a-file",
        Fail,
        &["f.png"],
        |d, fx| {
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
            std::fs::write(d.join("dir/a.png"), &fx.png).expect("write");
            std::fs::write(d.join("f.png"), &fx.png).expect("write");
            args(&["upscale", "dir", "-o", "f.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-output-folder-missing",
        Fail,
        &["no/such"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&["upscale", "p.png", "-o", "no/such/out.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-unknown-output-format",
        Fail,
        &["out.gif"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&["upscale", "p.png", "-o", "out.gif", "-q"])
        },
    ));
    cs.push(case(
        "upscale-output-is-a-folder",
        Fail,
        &["outdir"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            std::fs::create_dir_all(d.join("outdir")).expect("mkdir");
            args(&["upscale", "p.png", "-o", "outdir", "-q"])
        },
    ));
    cs.push(case("upscale-replaces-a-named-output", Ok, &[], |d, fx| {
        std::fs::write(d.join("p.png"), &fx.png).expect("write");
        args(&["upscale", "p.png", "-o", "out.jpg", "-q"])
    }));
    for s in ["0", "1", "5", "-2", "x"] {
        cs.push(case(
            &format!("upscale-scale-{s}"),
            if s == "5" || s == "0" || s == "1" {
                Fail
            } else {
                Usage
            },
            &[s],
            move |d, fx| {
                std::fs::write(d.join("p.png"), &fx.png).expect("write");
                args(&["upscale", "p.png", "-o", "o.png", "--scale", s, "-q"])
            },
        ));
    }
    cs.push(case("upscale-tile-too-small", Usage, &["8"], |d, fx| {
        std::fs::write(d.join("p.png"), &fx.png).expect("write");
        args(&["upscale", "p.png", "-o", "o.png", "--tile", "8"])
    }));
    cs.push(case(
        "upscale-model-not-a-run",
        Fail,
        &["notarun"],
        |d, fx| {
            std::fs::create_dir_all(d.join("notarun")).expect("mkdir");
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&["upscale", "p.png", "-o", "o.png", "--model", "notarun"])
        },
    ));
    cs.push(case(
        "upscale-model-is-a-vae-run",
        Fail,
        &["vae"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&[
                OsString::from("upscale"),
                OsString::from("p.png"),
                OsString::from("-o"),
                OsString::from("o.png"),
                OsString::from("--model"),
                fx.vae.clone().into_os_string(),
            ])
        },
    ));

    // --- encode / decode: outputs that would replace inputs, code files of every broken form.
    let vae_arg = |fx: &Fixtures| fx.vae.clone().into_os_string();
    cs.push(case(
        "encode-output-is-the-image",
        Fail,
        &["d.png"],
        move |d, fx| {
            std::fs::write(d.join("d.png"), &fx.png).expect("write");
            let mut a = args(&["encode"]);
            a.push(vae_arg(fx));
            a.extend(args(&["d.png", "-o", "d.png"]));
            a
        },
    ));
    cs.push(case(
        "encode-default-output-exists-not-genlab",
        Fail,
        &["d.glz"],
        move |d, fx| {
            std::fs::write(d.join("d.png"), &fx.png).expect("write");
            std::fs::write(d.join("d.glz"), b"my notes").expect("write");
            let mut a = args(&["encode"]);
            a.push(vae_arg(fx));
            a.push("d.png".into());
            a
        },
    ));
    cs.push(
        case(
            "encode-default-output-replaces-own-code",
            Ok,
            &[],
            move |d, fx| {
                std::fs::write(d.join("d.png"), &fx.png).expect("write");
                std::fs::write(d.join("d.glz"), code_bytes(1, &[0.0])).expect("write");
                let mut a = args(&["encode"]);
                a.push(vae_arg(fx));
                a.push("d.png".into());
                a
            },
        )
        .may_change("d.glz"),
    );
    cs.push(case(
        "encode-output-is-run-weights",
        Fail,
        &["weights.safetensors"],
        move |d, fx| {
            std::fs::write(d.join("d.png"), &fx.png).expect("write");
            let r = d.join("run");
            copy_dir(&fx.vae, &r);
            args(&[
                OsString::from("encode"),
                r.clone().into_os_string(),
                OsString::from("d.png"),
                OsString::from("-o"),
                r.join("weights.safetensors").into_os_string(),
            ])
        },
    ));
    cs.push(case("encode-with-a-gan", Fail, &["gan"], |d, fx| {
        std::fs::write(d.join("d.png"), &fx.png).expect("write");
        args(&[
            OsString::from("encode"),
            fx.gan.clone().into_os_string(),
            OsString::from("d.png"),
            OsString::from("-o"),
            OsString::from("c.glz"),
        ])
    }));
    let codes: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("magic-only", b"GENLABZ1".to_vec()),
        (
            "wrong-magic",
            b"GENLABZ2\x02\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
        ),
        ("short-values", code_bytes(2, &[0.5])),
        ("long-values", code_bytes(2, &[0.5, 0.5, 0.5])),
        ("huge-header", code_bytes(u32::MAX, &[0.5, 0.5])),
        ("zero-values", code_bytes(0, &[])),
        ("nan", code_bytes(2, &[f32::NAN, 0.0])),
        ("inf", code_bytes(2, &[0.0, f32::INFINITY])),
        ("wrong-latent-size", code_bytes(3, &[0.0, 0.0, 0.0])),
        ("text", b"GENLABZ1 is a nice magic".to_vec()),
    ];
    for (name, bytes) in codes {
        cs.push(case(
            &format!("decode-code-{name}"),
            Fail,
            &["c.glz"],
            move |d, fx| {
                std::fs::write(d.join("c.glz"), &bytes).expect("write");
                let mut a = args(&["decode"]);
                a.push(vae_arg(fx));
                a.extend(args(&["c.glz", "-o", "out.png"]));
                a
            },
        ));
    }
    cs.push(case(
        "decode-default-output-would-replace-the-original",
        Fail,
        &["d.png"],
        move |d, fx| {
            std::fs::write(d.join("d.png"), &fx.png).expect("write");
            std::fs::write(d.join("d.glz"), code_bytes(2, &[0.1, -0.2])).expect("write");
            let mut a = args(&["decode"]);
            a.push(vae_arg(fx));
            a.push("d.glz".into());
            a
        },
    ));
    cs.push(case(
        "decode-output-is-the-code",
        Fail,
        &["c.png"],
        move |d, fx| {
            std::fs::write(d.join("c.png"), code_bytes(2, &[0.1, -0.2])).expect("write");
            let mut a = args(&["decode"]);
            a.push(vae_arg(fx));
            a.extend(args(&["c.png", "-o", "c.png"]));
            a
        },
    ));
    cs.push(case("decode-good-code", Ok, &[], move |d, fx| {
        std::fs::write(d.join("c.glz"), code_bytes(2, &[0.1, -0.2])).expect("write");
        let mut a = args(&["decode"]);
        a.push(vae_arg(fx));
        a.extend(args(&["c.glz", "-o", "out.png"]));
        a
    }));

    // --- Weights: dtypes PyTorch users save, and every way a file can be broken.
    use safetensors::Dtype;
    let dtype_cases: Vec<(&str, Expect, Dtype)> = vec![
        ("f16", Ok, Dtype::F16),
        ("bf16", Ok, Dtype::BF16),
        ("f64", Ok, Dtype::F64),
        ("i64", Fail, Dtype::I64),
        ("i32", Fail, Dtype::I32),
        ("u8", Fail, Dtype::U8),
        ("bool", Fail, Dtype::BOOL),
    ];
    for (name, expect, dt) in dtype_cases {
        for cmd in ["sample", "reconstruct"] {
            cs.push(case(
                &format!("{cmd}-weights-{name}"),
                expect,
                &["weights.safetensors"],
                move |d, fx| {
                    let r = d.join("run");
                    copy_dir(&fx.vae, &r);
                    write_safetensors(
                        &r.join("weights.safetensors"),
                        &fx.tensors,
                        &fx.meta,
                        &|_, v| match dt {
                            Dtype::F16 => (
                                dt,
                                v.iter()
                                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                                    .collect(),
                            ),
                            Dtype::BF16 => (
                                dt,
                                v.iter()
                                    .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                                    .collect(),
                            ),
                            Dtype::F64 => (
                                dt,
                                v.iter().flat_map(|x| f64::from(*x).to_le_bytes()).collect(),
                            ),
                            Dtype::I64 => (
                                dt,
                                v.iter().flat_map(|x| (*x as i64).to_le_bytes()).collect(),
                            ),
                            Dtype::I32 => (
                                dt,
                                v.iter().flat_map(|x| (*x as i32).to_le_bytes()).collect(),
                            ),
                            _ => (dt, v.iter().map(|x| (*x > 0.0) as u8).collect()),
                        },
                    );
                    let mut a = args(&[cmd]);
                    a.push(r.into_os_string());
                    a.extend(args(&["-n", "4", "-o", "out.png"]));
                    a
                },
            ));
        }
    }
    #[allow(clippy::type_complexity)]
    let tensor_edits: Vec<(&str, fn(&mut Tensors))> = vec![
        ("nan", |ts| ts[0].2[0] = f32::NAN),
        ("inf", |ts| ts[1].2[0] = f32::NEG_INFINITY),
        ("missing-tensor", |ts| {
            ts.remove(0);
        }),
        ("extra-tensor", |ts| {
            ts.push(("zzz.weight".into(), vec![3], vec![0.0; 3]))
        }),
        ("wrong-shape", |ts| {
            ts[0] = (ts[0].0.clone(), vec![2, 2], vec![0.0; 4])
        }),
        ("renamed-tensor", |ts| ts[0].0.push_str(".x")),
        ("no-tensors", |ts| ts.clear()),
    ];
    for (name, f) in tensor_edits {
        cs.push(case(
            &format!("sample-weights-{name}"),
            Fail,
            &["weights.safetensors"],
            move |d, fx| {
                let r = d.join("run");
                copy_dir(&fx.vae, &r);
                let mut ts = fx.tensors.clone();
                f(&mut ts);
                write_safetensors(&r.join("weights.safetensors"), &ts, &fx.meta, &|_, v| {
                    (Dtype::F32, f32_bytes(v))
                });
                let mut a = args(&["sample"]);
                a.push(r.into_os_string());
                a.extend(args(&["-n", "4", "-o", "out.png"]));
                a
            },
        ));
    }
    for (name, edit) in [
        ("truncated-half", 50usize),
        ("truncated-header", 1),
        ("truncated-last-byte", 99),
    ] {
        cs.push(case(
            &format!("sample-weights-{name}"),
            Fail,
            &["weights.safetensors"],
            move |d, fx| {
                let w = std::fs::read(fx.vae.join("weights.safetensors")).expect("read");
                let n = if edit == 99 {
                    w.len() - 1
                } else if edit == 1 {
                    20
                } else {
                    w.len() / 2
                };
                let r = run_with(d, &fx.vae, "weights.safetensors", &w[..n]);
                let mut a = args(&["sample"]);
                a.push(r.into_os_string());
                a.extend(args(&["-o", "out.png"]));
                a
            },
        ));
    }
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("garbage", b"not a safetensors file at all".to_vec()),
        ("huge-header-length", {
            let mut b = (u64::MAX / 2).to_le_bytes().to_vec();
            b.extend(b"{}");
            b
        }),
        ("header-not-json", {
            let mut b = 8u64.to_le_bytes().to_vec();
            b.extend(b"{{{{{{{{");
            b
        }),
        ("offsets-past-end", {
            let h = br#"{"a":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}"#;
            let mut b = (h.len() as u64).to_le_bytes().to_vec();
            b.extend(h);
            b.extend([0u8; 16]);
            b
        }),
    ] {
        cs.push(case(
            &format!("sample-weights-{name}"),
            Fail,
            &["weights.safetensors"],
            move |d, fx| {
                let r = run_with(d, &fx.vae, "weights.safetensors", &bytes);
                let mut a = args(&["sample"]);
                a.push(r.into_os_string());
                a.extend(args(&["-o", "out.png"]));
                a
            },
        ));
    }
    for at in [0usize, 7, 9, 30, 100] {
        cs.push(case(
            &format!("sample-weights-flipped-byte{at}"),
            OkOrFail,
            &["weights.safetensors"],
            move |d, fx| {
                let w = std::fs::read(fx.vae.join("weights.safetensors")).expect("read");
                let r = run_with(d, &fx.vae, "weights.safetensors", &flip(w, at));
                let mut a = args(&["sample"]);
                a.push(r.into_os_string());
                a.extend(args(&["-o", "out.png"]));
                a
            },
        ));
    }

    // --- Run folders given to the inference commands.
    for (name, file, bytes) in [
        (
            "config-garbage",
            "config.toml",
            b"\x00\x01\x02 not toml".to_vec(),
        ),
        ("config-empty", "config.toml", Vec::new()),
        (
            "config-unknown-kind",
            "config.toml",
            b"[model]\nkind = \"transformer\"\n".to_vec(),
        ),
        (
            "config-no-model",
            "config.toml",
            b"[train]\nepochs = 1\n".to_vec(),
        ),
        (
            "config-type-error",
            "config.toml",
            b"[model]\nkind = \"vae\"\nlatent = \"two\"\n".to_vec(),
        ),
        (
            "config-unknown-key",
            "config.toml",
            b"[model]\nkind = \"vae\"\nlatnet = 2\n".to_vec(),
        ),
    ] {
        cs.push(case(
            &format!("sample-{name}"),
            Fail,
            &[file],
            move |d, fx| {
                let r = run_with(d, &fx.vae, file, &bytes);
                let mut a = args(&["sample"]);
                a.push(r.into_os_string());
                a.extend(args(&["-o", "out.png"]));
                a
            },
        ));
    }
    cs.push(case("sample-run-missing", Fail, &["nope"], |_, _| {
        args(&["sample", "nope"])
    }));
    cs.push(case("sample-run-is-a-file", Fail, &["f"], |d, _| {
        std::fs::write(d.join("f"), b"x").expect("write");
        args(&["sample", "f"])
    }));
    cs.push(case(
        "sample-weights-missing",
        Fail,
        &["weights.safetensors"],
        |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae, &r);
            std::fs::remove_file(r.join("weights.safetensors")).expect("rm");
            let mut a = args(&["sample"]);
            a.push(r.into_os_string());
            a.extend(args(&["-o", "out.png"]));
            a
        },
    ));
    cs.push(case(
        "sample-output-is-run-config",
        Fail,
        &["config.toml"],
        |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae, &r);
            let mut a = args(&["sample"]);
            a.push(r.clone().into_os_string());
            a.push("-o".into());
            a.push(r.join("config.toml").into_os_string());
            a
        },
    ));
    cs.push(case(
        "sample-output-is-a-training-sample",
        Fail,
        &["epoch-001.png"],
        |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae, &r);
            let mut a = args(&["sample"]);
            a.push(r.clone().into_os_string());
            a.push("-o".into());
            a.push(r.join("samples/epoch-001.png").into_os_string());
            a
        },
    ));
    cs.push(case(
        "sample-output-unknown-format",
        Fail,
        &["s.txt"],
        |_, fx| {
            let mut a = args(&["sample"]);
            a.push(fx.vae.clone().into_os_string());
            a.extend(args(&["-o", "s.txt"]));
            a
        },
    ));
    cs.push(case(
        "sample-output-folder-missing",
        Fail,
        &["missing"],
        |_, fx| {
            let mut a = args(&["sample"]);
            a.push(fx.vae.clone().into_os_string());
            a.extend(args(&["-o", "missing/s.png"]));
            a
        },
    ));
    cs.push(case(
        "sample-from-an-autoencoder",
        Fail,
        &["autoencoder"],
        |d, _| {
            ok(d, &["train", "ae", "--dry-run", "-q", "--out", "ae"]);
            args(&["sample", "ae", "-o", "s.png"])
        },
    ));
    for n in ["0", "5000", "-1", "many"] {
        cs.push(case(&format!("sample-n-{n}"), Usage, &[n], move |_, fx| {
            let mut a = args(&["sample"]);
            a.push(fx.vae.clone().into_os_string());
            a.extend(args(&["-n", n, "-o", "s.png"]));
            a
        }));
    }
    cs.push(case(
        "sample-nan-weights-everywhere",
        Fail,
        &["weights.safetensors"],
        |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.gan, &r);
            let (mut ts, meta) = read_safetensors(&r.join("weights.safetensors"));
            for t in &mut ts {
                t.2.iter_mut().for_each(|v| *v = f32::NAN);
            }
            write_safetensors(&r.join("weights.safetensors"), &ts, &meta, &|_, v| {
                (Dtype::F32, f32_bytes(v))
            });
            let mut a = args(&["sample"]);
            a.push(r.into_os_string());
            a.extend(args(&["-o", "out.png"]));
            a
        },
    ));
    for (name, extra) in [
        ("from-out-of-range", vec!["--from", "99999"]),
        ("steps-1", vec!["--steps", "1"]),
        ("steps-huge", vec!["--steps", "100000"]),
    ] {
        let expect = if name.starts_with("steps") {
            Usage
        } else {
            Fail
        };
        let mention = if name == "from-out-of-range" {
            "99999"
        } else {
            extra[1]
        };
        cs.push(case(
            &format!("interpolate-{name}"),
            expect,
            &[mention],
            move |_, fx| {
                let mut a = args(&["interpolate"]);
                a.push(fx.vae.clone().into_os_string());
                a.extend(args(&extra));
                a.extend(args(&["-o", "i.png"]));
                a
            },
        ));
    }
    for (name, extra, expect, mention) in [
        ("nll-k-0", vec!["--nll", "--k", "0"], Usage, "0"),
        (
            "nll-k-1e9",
            vec!["--nll", "--k", "1000000000"],
            Usage,
            "1000000000",
        ),
        ("nll-on-a-gan", vec!["--nll"], Fail, "gan"),
        ("n-3", vec!["-n", "3"], Usage, "3"),
    ] {
        cs.push(case(
            &format!("eval-{name}"),
            expect,
            &[mention],
            move |_, fx| {
                let mut a = args(&["eval"]);
                a.push(
                    if name == "nll-on-a-gan" {
                        fx.gan.clone()
                    } else {
                        fx.vae.clone()
                    }
                    .into_os_string(),
                );
                a.extend(args(&extra));
                a
            },
        ));
    }
    cs.push(case(
        "eval-samples-too-few-for-a-frechet-distance",
        Fail,
        &["129"],
        |d, fx| {
            std::fs::create_dir_all(d.join("s")).expect("mkdir");
            let img =
                image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * y) % 256) as u8]));
            for i in 0..5 {
                img.save(d.join(format!("s/{i}.png"))).expect("save");
            }
            let _ = fx;
            args(&["eval", "--samples", "s", "--dataset", "mnist-10k"])
        },
    ));

    // --- Datasets: IDX, gzip, CIFAR-10 and image folders, broken every way.
    let train_vae = |dataset: &str| {
        args(&[
            "train",
            "vae",
            "--dataset",
            dataset,
            "--data-dir",
            "data",
            "--dry-run",
            "-q",
            "--out",
            "r",
        ])
    };
    let idx_edits: Vec<(&str, &str, Edit, Expect)> = vec![
        (
            "train-images-empty-file",
            "train-images-idx3-ubyte",
            Box::new(|_| Vec::new()),
            Fail,
        ),
        (
            "train-images-truncated",
            "train-images-idx3-ubyte",
            Box::new(|b| b[..b.len() - 5].to_vec()),
            Fail,
        ),
        (
            "train-images-trailing",
            "train-images-idx3-ubyte",
            Box::new(|mut b| {
                b.push(0);
                b
            }),
            Fail,
        ),
        (
            "train-images-header-only",
            "train-images-idx3-ubyte",
            Box::new(|b| b[..10].to_vec()),
            Fail,
        ),
        (
            "train-images-wrong-magic",
            "train-images-idx3-ubyte",
            Box::new(|mut b| {
                b[3] = 1;
                b
            }),
            Fail,
        ),
        (
            "train-images-wrong-type",
            "train-images-idx3-ubyte",
            Box::new(|mut b| {
                b[2] = 0x0d;
                b
            }),
            Fail,
        ),
        (
            "train-images-huge-dims",
            "train-images-idx3-ubyte",
            Box::new(|mut b| {
                b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
                b
            }),
            Fail,
        ),
        (
            "train-images-zero",
            "train-images-idx3-ubyte",
            Box::new(|_| idx_images(0, 28, 28, 0)),
            Fail,
        ),
        (
            "train-images-zero-side",
            "train-images-idx3-ubyte",
            Box::new(|_| idx_images(32, 0, 28, 0)),
            Fail,
        ),
        (
            "train-labels-out-of-range",
            "train-labels-idx1-ubyte",
            Box::new(|mut b| {
                b[10] = 200;
                b
            }),
            Fail,
        ),
        (
            "train-labels-fewer",
            "train-labels-idx1-ubyte",
            Box::new(|_| idx_labels(31)),
            Fail,
        ),
        (
            "train-labels-are-images",
            "train-labels-idx1-ubyte",
            Box::new(|_| idx_images(32, 28, 28, 0)),
            Fail,
        ),
        (
            "test-images-other-shape",
            "t10k-images-idx3-ubyte",
            Box::new(|_| idx_images(16, 20, 20, 0)),
            Fail,
        ),
        (
            "test-images-zero",
            "t10k-images-idx3-ubyte",
            Box::new(|_| idx_images(0, 28, 28, 0)),
            Fail,
        ),
        (
            "train-images-gz",
            "train-images-idx3-ubyte",
            Box::new(|b| gzip(&b)),
            Ok,
        ),
        (
            "train-images-gz-truncated",
            "train-images-idx3-ubyte",
            Box::new(|b| {
                let g = gzip(&b);
                g[..g.len() / 2].to_vec()
            }),
            Fail,
        ),
        (
            "train-images-gz-magic-garbage",
            "train-images-idx3-ubyte",
            Box::new(|_| vec![0x1f, 0x8b, 1, 2, 3, 4, 5]),
            Fail,
        ),
        (
            "train-images-gz-flipped",
            "train-images-idx3-ubyte",
            Box::new(|b| flip(gzip(&b), 40)),
            Fail,
        ),
    ];
    for (name, file, edit, expect) in idx_edits {
        let edit = Arc::new(edit);
        cs.push(case(
            &format!("idx-{name}"),
            expect,
            &[file],
            move |d, fx| {
                let e = edit.clone();
                idx_dataset(d, fx, file, &move |b| e(b));
                train_vae("mnist")
            },
        ));
    }
    cs.push(case(
        "idx-labels-out-of-range-classifier",
        Fail,
        &["train-labels-idx1-ubyte"],
        |d, fx| {
            idx_dataset(d, fx, "train-labels-idx1-ubyte", &|mut b| {
                b[9] = 200;
                b
            });
            args(&[
                "train",
                "classifier",
                "--dataset",
                "mnist",
                "--data-dir",
                "data",
                "--dry-run",
                "-q",
                "--out",
                "r",
            ])
        },
    ));
    cs.push(case(
        "idx-missing-test-labels",
        Fail,
        &["t10k-labels-idx1-ubyte"],
        move |d, fx| {
            idx_dataset(d, fx, "", &|b| b);
            std::fs::remove_file(d.join("data/mnist/t10k-labels-idx1-ubyte")).expect("rm");
            train_vae("mnist")
        },
    ));
    cs.push(case("idx-good", Ok, &[], move |d, fx| {
        idx_dataset(d, fx, "", &|b| b);
        train_vae("mnist")
    }));
    let cifar_edits: Vec<(&str, Edit)> = vec![
        ("truncated", Box::new(|b| b[..b.len() - 1].to_vec())),
        ("empty", Box::new(|_| Vec::new())),
        (
            "label-out-of-range",
            Box::new(|mut b| {
                b[3073] = 10;
                b
            }),
        ),
        ("one-byte", Box::new(|_| vec![3])),
    ];
    for (name, edit) in cifar_edits {
        let edit = Arc::new(edit);
        cs.push(case(
            &format!("cifar-{name}"),
            Fail,
            &["data_batch_1.bin"],
            move |d, fx| {
                let e = edit.clone();
                cifar_dataset(d, fx, &move |b| e(b));
                args(&[
                    "train",
                    "gan",
                    "--dataset",
                    "cifar10",
                    "--data-dir",
                    "data",
                    "--dry-run",
                    "-q",
                    "--out",
                    "r",
                ])
            },
        ));
    }
    cs.push(case(
        "cifar-missing-test-batch",
        Fail,
        &["test_batch.bin"],
        |d, fx| {
            cifar_dataset(d, fx, &|b| b);
            std::fs::remove_file(d.join("data/cifar10/test_batch.bin")).expect("rm");
            args(&[
                "train",
                "gan",
                "--dataset",
                "cifar10",
                "--data-dir",
                "data",
                "--dry-run",
                "-q",
                "--out",
                "r",
            ])
        },
    ));
    for (name, files) in [
        ("truncated-jpeg", vec![("a.png", 0), ("b.jpg", 1)]),
        ("truncated-png", vec![("a.jpg", 0), ("b.png", 1)]),
        ("only-non-images", vec![("notes.txt", 2)]),
        ("empty", vec![]),
    ] {
        let mention = if name.starts_with("truncated") {
            "b."
        } else {
            "photos"
        };
        cs.push(case(
            &format!("folder-dataset-{name}"),
            Fail,
            &[mention],
            move |d, fx| {
                let f = d.join("photos");
                std::fs::create_dir_all(&f).expect("mkdir");
                for (file, kind) in &files {
                    let bytes = match (*kind, file.ends_with("jpg")) {
                        (0, true) => fx.jpg.clone(),
                        (0, false) => fx.png.clone(),
                        (1, true) => fx.jpg[..fx.jpg.len() * 2 / 3].to_vec(),
                        (1, false) => fx.png[..fx.png.len() * 2 / 3].to_vec(),
                        _ => b"just text".to_vec(),
                    };
                    std::fs::write(f.join(file), bytes).expect("write");
                }
                args(&[
                    "train",
                    "gan",
                    "--dataset",
                    "photos",
                    "--dry-run",
                    "-q",
                    "--out",
                    "r",
                ])
            },
        ));
    }

    cs.push(case(
        "folder-dataset-with-a-link-cycle-and-a-pipe",
        Ok,
        &[],
        |d, fx| {
            let f = d.join("photos");
            std::fs::create_dir_all(f.join("sub")).expect("mkdir");
            std::fs::write(f.join("a.png"), &fx.png).expect("write");
            std::os::unix::fs::symlink(&f, f.join("sub/loop")).expect("symlink");
            std::os::unix::fs::symlink(d.join("nowhere"), f.join("broken.png")).expect("symlink");
            let fifo = f.join("pipe.png");
            let made = Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .is_ok_and(|s| s.success());
            assert!(made, "mkfifo");
            args(&[
                "train",
                "gan",
                "--dataset",
                "photos",
                "--dry-run",
                "-q",
                "--out",
                "r",
            ])
        },
    ));
    cs.push(case("upscale-a-pipe", Fail, &["pipe.png"], |d, _| {
        let made = Command::new("mkfifo")
            .arg(d.join("pipe.png"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(made, "mkfifo");
        args(&["upscale", "pipe.png", "-o", "o.png", "-q"])
    }));
    for (name, file, dir_or_big) in [
        ("config-is-a-folder", "config.toml", true),
        ("weights-is-a-folder", "weights.safetensors", true),
        ("config-is-huge", "config.toml", false),
    ] {
        cs.push(case(
            &format!("sample-{name}"),
            Fail,
            &[file],
            move |d, fx| {
                let r = d.join("run");
                copy_dir(&fx.vae, &r);
                std::fs::remove_file(r.join(file)).expect("rm");
                if dir_or_big {
                    std::fs::create_dir_all(r.join(file)).expect("mkdir");
                } else {
                    let f = std::fs::File::create(r.join(file)).expect("create");
                    f.set_len(64 << 20).expect("sparse file");
                }
                let mut a = args(&["sample"]);
                a.push(r.into_os_string());
                a.extend(args(&["-o", "out.png"]));
                a
            },
        ));
    }
    cs.push(case(
        "resume-state-is-a-folder",
        Fail,
        &["state.json"],
        |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae2, &r);
            std::fs::remove_file(r.join("state.json")).expect("rm");
            std::fs::create_dir_all(r.join("state.json")).expect("mkdir");
            let mut a = args(&["train", "--resume"]);
            a.push(r.into_os_string());
            a
        },
    ));

    // --- Training flags and presets sized or shaped out of reach.
    for (name, extra, expect, mention) in [
        (
            "latent-1e8",
            vec!["--latent", "100000000"],
            Fail,
            "model.latent = 100000000",
        ),
        (
            "latent-1e12",
            vec!["--latent", "1000000000000"],
            Fail,
            "1000000000000",
        ),
        ("latent-0", vec!["--latent", "0"], Fail, "latent"),
        ("batch-0", vec!["--batch-size", "0"], Fail, "batch_size"),
        (
            "batch-1e12",
            vec!["--batch-size", "1000000000000", "--epochs", "1"],
            Fail,
            "1000000000000",
        ),
        ("epochs-0", vec!["--epochs", "0"], Fail, "epochs"),
        ("lr-negative", vec!["--lr=-1"], Fail, "lr"),
        ("lr-nan", vec!["--lr", "NaN"], Fail, "lr"),
        ("lr-inf", vec!["--lr", "inf"], Fail, "lr"),
        ("beta-negative", vec!["--beta=-1"], Fail, "beta"),
        ("beta-nan", vec!["--beta", "nan"], Fail, "beta"),
        (
            "seed-above-i64",
            vec!["--seed", "18446744073709551615"],
            Fail,
            "18446744073709551615",
        ),
        (
            "unknown-dataset",
            vec!["--dataset", "imagenet"],
            Fail,
            "imagenet",
        ),
        (
            "unknown-preset",
            vec!["--preset", "no-such-preset"],
            Fail,
            "no-such-preset",
        ),
        (
            "preset-of-another-family",
            vec!["--preset", "mnist-dcgan"],
            Fail,
            "mnist-dcgan",
        ),
        ("unknown-flag", vec!["--latnet", "2"], Usage, "latnet"),
        (
            "device-wgpu-not-built",
            vec!["--device", "wgpu"],
            Fail,
            "wgpu",
        ),
    ] {
        let no_dry = name == "batch-1e12";
        cs.push(case(
            &format!("train-{name}"),
            expect,
            &[mention],
            move |_, _| {
                let mut a = args(&["train", "vae", "-q", "--out", "r"]);
                if !no_dry {
                    a.push("--dry-run".into());
                }
                a.extend(args(&extra));
                a
            },
        ));
    }
    for (name, toml, mention) in [
        (
            "type-error",
            "[model]\nkind = \"vae\"\nlatent = \"two\"\n",
            "line 3",
        ),
        (
            "negative",
            "[model]\nkind = \"vae\"\nlatent = -3\n",
            "line 3",
        ),
        (
            "unknown-key",
            "[model]\nkind = \"vae\"\nlatnet = 3\n",
            "latnet",
        ),
        (
            "huge-hidden",
            "[model]\nkind = \"vae\"\nhidden = [4000000000]\n",
            "hidden",
        ),
        (
            "huge-folder-image",
            "[model]\nkind = \"dcgan\"\n\n[train]\ndataset = \"photos\"\nfolder_image = [3, 100000, 100000]\n",
            "100000",
        ),
        (
            "bad-betas",
            "[model]\nkind = \"vae\"\n\n[train]\nbetas = [1.5, 0.9]\n",
            "betas",
        ),
        (
            "nan-lr",
            "[model]\nkind = \"vae\"\n\n[train]\nlr = nan\n",
            "lr",
        ),
        ("not-toml", "this is = = not toml", "p.toml"),
        ("empty", "", "p.toml"),
        ("binary", "\u{0}\u{1}\u{2}", "p.toml"),
        (
            "unknown-kind",
            "[model]\nkind = \"transformer\"\n",
            "transformer",
        ),
        (
            "deep-nesting",
            &format!(
                "[model]\nkind = \"vae\"\nx = {}{}\n",
                "[".repeat(5000),
                "]".repeat(5000)
            ),
            "p.toml",
        ),
    ] {
        let toml = toml.to_string();
        cs.push(case(
            &format!("preset-{name}"),
            Fail,
            &[mention],
            move |d, fx| {
                std::fs::create_dir_all(d.join("photos")).expect("mkdir");
                std::fs::write(d.join("photos/a.png"), &fx.png).expect("write");
                std::fs::write(d.join("p.toml"), &toml).expect("write");
                args(&[
                    "train",
                    if toml.contains("dcgan") { "gan" } else { "vae" },
                    "--preset",
                    "p.toml",
                    "--dry-run",
                    "-q",
                    "--out",
                    "r",
                ])
            },
        ));
    }

    // --- Memory: requests refused with the estimate and the limit before allocating.
    cs.push(
        case(
            "idx-gzip-bomb",
            Fail,
            &["train-images-idx3-ubyte"],
            move |d, fx| {
                idx_dataset(d, fx, "train-images-idx3-ubyte", &|_| {
                    gzip(&vec![0u8; 4 << 20])
                });
                train_vae("mnist")
            },
        )
        .env("GENLAB_MEMORY_LIMIT", "1M"),
    );
    cs.push(
        case(
            "upscale-over-the-memory-limit",
            Fail,
            &["memory"],
            |d, fx| {
                std::fs::write(d.join("p.png"), &fx.png).expect("write");
                args(&["upscale", "p.png", "-o", "o.png", "-q"])
            },
        )
        .env("GENLAB_MEMORY_LIMIT", "4K"),
    );
    cs.push(
        case(
            "folder-dataset-over-the-memory-limit",
            Fail,
            &["photos"],
            |d, fx| {
                std::fs::create_dir_all(d.join("photos")).expect("mkdir");
                std::fs::write(d.join("photos/a.png"), &fx.png).expect("write");
                args(&[
                    "train",
                    "gan",
                    "--dataset",
                    "photos",
                    "--dry-run",
                    "-q",
                    "--out",
                    "r",
                ])
            },
        )
        .env("GENLAB_MEMORY_LIMIT", "1K"),
    );
    cs.push(
        case(
            "sample-n-over-the-memory-limit",
            Fail,
            &["-n 4096"],
            |_, fx| {
                let mut a = args(&["sample"]);
                a.push(fx.vae.clone().into_os_string());
                a.extend(args(&["-n", "4096", "-o", "s.png"]));
                a
            },
        )
        .env("GENLAB_MEMORY_LIMIT", "64M"),
    );
    cs.push(case(
        "train-dry-run-checks-the-real-batch",
        Fail,
        &["batch_size 100000000"],
        |_, _| {
            args(&[
                "train",
                "vae",
                "--dry-run",
                "-q",
                "--out",
                "r",
                "--batch-size",
                "100000000",
            ])
        },
    ));
    cs.push(case(
        "train-sr-dry-run-checks-the-real-batch",
        Fail,
        &["100000000"],
        |d, fx| {
            std::fs::create_dir_all(d.join("photos")).expect("mkdir");
            std::fs::write(d.join("photos/a.png"), &fx.png).expect("write");
            args(&[
                "train",
                "sr",
                "--images",
                "photos",
                "--dry-run",
                "-q",
                "--out",
                "r",
                "--batch-size",
                "100000000",
            ])
        },
    ));
    cs.push(case("train-sr-huge-patch", Fail, &["100000"], |d, fx| {
        std::fs::create_dir_all(d.join("photos")).expect("mkdir");
        std::fs::write(d.join("photos/a.png"), &fx.png).expect("write");
        args(&[
            "train",
            "sr",
            "--images",
            "photos",
            "--dry-run",
            "-q",
            "--out",
            "r",
            "--patch",
            "100000",
        ])
    }));
    cs.push(case(
        "bench-huge-synthetic-batch",
        Fail,
        &["batch_size 100000000"],
        |_, _| {
            args(&[
                "bench",
                "-w",
                "mlp-vae",
                "--input",
                "synthetic",
                "--batch-size",
                "100000000",
            ])
        },
    ));

    // --- Run folders: a new run never writes among someone else's files.
    for (name, file) in [
        ("config", "config.toml"),
        ("metrics", "metrics.jsonl"),
        ("notes", "notes.txt"),
        ("state", "state.json"),
    ] {
        cs.push(case(
            &format!("train-out-is-a-folder-with-{name}"),
            Fail,
            &["mine"],
            move |d, _| {
                std::fs::create_dir_all(d.join("mine")).expect("mkdir");
                std::fs::write(d.join("mine").join(file), b"my own file\n").expect("write");
                args(&["train", "vae", "--dry-run", "-q", "--out", "mine"])
            },
        ));
    }
    cs.push(case("train-out-is-a-file", Fail, &["f"], |d, _| {
        std::fs::write(d.join("f"), b"mine").expect("write");
        args(&["train", "vae", "--dry-run", "-q", "--out", "f"])
    }));
    cs.push(case(
        "train-out-is-an-existing-run",
        Fail,
        &["run"],
        |d, fx| {
            copy_dir(&fx.vae, &d.join("run"));
            args(&["train", "vae", "--dry-run", "-q", "--out", "run"])
        },
    ));
    cs.push(case("train-out-is-an-empty-folder", Ok, &[], |d, _| {
        std::fs::create_dir_all(d.join("empty")).expect("mkdir");
        args(&["train", "vae", "--dry-run", "-q", "--out", "empty"])
    }));
    cs.push(case(
        "compare-out-is-a-users-folder",
        Fail,
        &["mine"],
        |d, _| {
            std::fs::create_dir_all(d.join("mine")).expect("mkdir");
            std::fs::write(d.join("mine/compare.md"), b"my notes").expect("write");
            args(&["compare", "--dry-run", "--out", "mine"])
        },
    ));

    // --- Resume: state, metrics and config that disagree, paths that leave the folder.
    let resume = |r: PathBuf| {
        let mut a = args(&["train", "--resume"]);
        a.push(r.into_os_string());
        a.push("-q".into());
        a
    };
    let resume_epochs = move |r: PathBuf, e: &str| {
        let mut a = resume(r);
        a.extend(args(&["--epochs", e]));
        a
    };
    cs.push(case(
        "resume-shorter-than-done",
        Fail,
        &["--epochs", "2"],
        move |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae2, &r);
            resume_epochs(r, "1")
        },
    ));
    cs.push(case(
        "resume-finished-nothing-to-do",
        Fail,
        &["--epochs"],
        move |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae2, &r);
            resume(r)
        },
    ));
    cs.push(
        case("resume-extends-a-finished-run", Ok, &[], move |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae2, &r);
            resume_epochs(r, "3")
        })
        .resumes(),
    );
    cs.push(case(
        "resume-missing-folder",
        Fail,
        &["nope"],
        move |_, _| resume(PathBuf::from("nope")),
    ));
    cs.push(case(
        "resume-a-folder-that-is-no-run",
        Fail,
        &["config.toml"],
        move |d, _| {
            std::fs::create_dir_all(d.join("plain")).expect("mkdir");
            resume(d.join("plain"))
        },
    ));
    #[allow(clippy::type_complexity)]
    let state_edits: Vec<(&str, fn(&mut serde_json::Value), &str)> = vec![
        (
            "epochs-beyond-metrics",
            |v| v["epochs_done"] = 5.into(),
            "state.json",
        ),
        (
            "weights-path-outside",
            |v| v["weights"] = "../../../etc/passwd".into(),
            "weights",
        ),
        (
            "weights-path-absolute",
            |v| v["weights"] = "/etc/passwd".into(),
            "weights",
        ),
        (
            "optimizer-path-outside",
            |v| v["optimizer"] = "state/../../x.bpk".into(),
            "optimizer",
        ),
        (
            "weights-file-missing",
            |v| v["weights"] = "state/weights-99999999.safetensors".into(),
            "weights-99999999",
        ),
        ("kind-mismatch", |v| v["kind"] = "dcgan".into(), "dcgan"),
        (
            "step-inconsistent",
            |v| {
                v["epochs_done"] = 1.into();
                v["step"] = 999.into();
                v["status"] = "running".into()
            },
            "999",
        ),
        (
            "batches-beyond-epoch",
            |v| {
                v["epochs_done"] = 1.into();
                v["batches_done"] = 50.into();
                v["step"] = 54.into();
                v["status"] = "running".into()
            },
            "50",
        ),
        (
            "status-unknown",
            |v| v["status"] = "paused".into(),
            "state.json",
        ),
        (
            "field-missing",
            |v| {
                v.as_object_mut().expect("object").remove("step");
            },
            "state.json",
        ),
        ("step-negative", |v| v["step"] = (-4).into(), "state.json"),
        ("unknown-field", |v| v["extra"] = 1.into(), "state.json"),
    ];
    for (name, f, mention) in state_edits {
        cs.push(case(
            &format!("resume-state-{name}"),
            Fail,
            &[mention],
            move |d, fx| {
                let r = edit_state(d, fx, &f);
                resume_epochs(r, "3")
            },
        ));
    }
    for (name, bytes) in [
        ("garbage", b"{not json".to_vec()),
        ("empty", Vec::new()),
        ("array", b"[]".to_vec()),
    ] {
        cs.push(case(
            &format!("resume-state-file-{name}"),
            Fail,
            &["state.json"],
            move |d, fx| {
                let r = run_with(d, &fx.vae2, "state.json", &bytes);
                resume_epochs(r, "3")
            },
        ));
    }
    cs.push(
        case(
            "resume-metrics-torn-last-line-is-tolerated",
            Ok,
            &[],
            move |d, fx| {
                let r = d.join("run");
                copy_dir(&fx.vae2, &r);
                let mut m = std::fs::read(r.join("metrics.jsonl")).expect("metrics");
                m.extend(b"{\"epoch\": 3, \"tra");
                std::fs::write(r.join("metrics.jsonl"), m).expect("write");
                resume_epochs(r, "3")
            },
        )
        .resumes(),
    );
    cs.push(case(
        "resume-metrics-garbage-middle-line",
        Fail,
        &["metrics.jsonl"],
        move |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae2, &r);
            let m = std::fs::read_to_string(r.join("metrics.jsonl")).expect("metrics");
            let lines: Vec<&str> = m.lines().collect();
            std::fs::write(
                r.join("metrics.jsonl"),
                format!("{}\nGARBAGE\n{}\n", lines[0], lines[1]),
            )
            .expect("write");
            resume_epochs(r, "3")
        },
    ));
    cs.push(case(
        "resume-metrics-epochs-out-of-order",
        Fail,
        &["metrics.jsonl"],
        move |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae2, &r);
            let m = std::fs::read_to_string(r.join("metrics.jsonl")).expect("metrics");
            let lines: Vec<&str> = m.lines().collect();
            std::fs::write(
                r.join("metrics.jsonl"),
                format!("{}\n{}\n", lines[1], lines[0]),
            )
            .expect("write");
            resume_epochs(r, "3")
        },
    ));
    cs.push(case(
        "resume-metrics-missing",
        Fail,
        &["metrics.jsonl"],
        move |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae2, &r);
            std::fs::remove_file(r.join("metrics.jsonl")).expect("rm");
            resume_epochs(r, "3")
        },
    ));
    cs.push(case(
        "resume-optimizer-state-corrupt",
        Fail,
        &["optimizer"],
        move |d, fx| {
            let r = d.join("run");
            copy_dir(&fx.vae2, &r);
            let st: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(r.join("state.json")).expect("s"))
                    .expect("j");
            let opt = r.join(st["optimizer"].as_str().expect("path"));
            let b = std::fs::read(&opt).expect("opt");
            std::fs::write(&opt, &b[..b.len() / 3]).expect("write");
            resume_epochs(r, "3")
        },
    ));
    cs.push(case("resume-epochs-0", Fail, &["epochs"], move |d, fx| {
        let r = d.join("run");
        copy_dir(&fx.vae2, &r);
        resume_epochs(r, "0")
    }));

    // --- Usage.
    for (name, a) in [
        ("no-command", vec![]),
        ("unknown-command", vec!["trian"]),
        ("train-no-family", vec!["train", "transformer"]),
        (
            "resume-with-a-family-flag",
            vec!["train", "--resume", "x", "--latent", "3"],
        ),
    ] {
        let mention = a.last().copied().unwrap_or("Usage");
        let expect = Usage;
        cs.push(case(
            &format!("usage-{name}"),
            expect,
            &[mention, "Usage"],
            move |_, _| args(&a),
        ));
    }
    let _ = p;
    cs
}

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    clean_errors: usize,
    usage_errors: usize,
    successes: usize,
    failures: Vec<String>,
}

fn got_ok(o: &std::process::Output) -> bool {
    o.status.success()
}

fn run_case(c: &Case, base: &Path, fx: &Fixtures) -> std::result::Result<Expect, String> {
    let dir = base.join(&c.name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let a = (c.setup)(&dir, fx);
    let before = snapshot(&dir);
    let mut cmd = genlab_cmd(&dir);
    cmd.args(&a);
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    let o = cmd.output().map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let code = o.status.code();
    let show = || format!("{a:?} -> exit {code:?}\n{err}");
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "stack backtrace",
        "memory allocation of",
    ] {
        if err.contains(bad) {
            return Err(format!("panic text {bad:?}: {}", show()));
        }
    }
    let after = snapshot(&dir);
    for (p, h) in &before {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        // The lock file is genlab's own record of who holds the folder; a success may replace
        // what the case says it may.
        let own = c.may_change.iter().any(|m| *m == name)
            || (c.resumes && p.parent().is_some_and(|d| d.ends_with("state")));
        if name == ".genlab.lock" || (got_ok(&o) && own) {
            continue;
        }
        match after.get(p) {
            None => return Err(format!("{} disappeared: {}", p.display(), show())),
            Some(h2) if h2 != h => return Err(format!("{} changed: {}", p.display(), show())),
            _ => {}
        }
    }
    let got = match code {
        Some(0) => Expect::Ok,
        Some(1) => Expect::Fail,
        Some(2) => Expect::Usage,
        _ => return Err(format!("unexpected exit: {}", show())),
    };
    let wanted = match (c.expect, got) {
        (Expect::OkOrFail, Expect::Ok | Expect::Fail) => true,
        (e, g) => e == g,
    };
    if !wanted {
        return Err(format!("expected {:?}: {}", c.expect, show()));
    }
    if got == Expect::Fail {
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        if !last.starts_with("error: ") {
            return Err(format!(
                "last stderr line is not one error line: {}",
                show()
            ));
        }
        if err.lines().filter(|l| l.starts_with("error")).count() != 1 {
            return Err(format!("more than one error line: {}", show()));
        }
        let needles: Vec<&String> = c.mentions.iter().collect();
        if !needles.is_empty()
            && c.expect == Expect::Fail
            && !needles.iter().any(|n| last.contains(n.as_str()))
        {
            return Err(format!("error names none of {needles:?}: {}", show()));
        }
    }
    if got == Expect::Usage && !err.contains("error:") && !a.is_empty() {
        return Err(format!("no usage error: {}", show()));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(got)
}

#[test]
fn hostile_corpus() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx_root = tmp.path().join("fixtures");
    std::fs::create_dir_all(&fx_root).expect("mkdir");
    let fx = fixtures(&fx_root);
    let fixtures_before = snapshot(&fx_root);
    let cases = corpus();
    assert!(cases.len() >= 150, "the corpus has {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");

    let base = tmp.path().join("cases");
    let next = AtomicUsize::new(0);
    let tally = Mutex::new(Tally::default());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(c) = cases.get(i) else { break };
                    let r = run_case(c, &base, &fx);
                    let mut t = tally.lock().expect("tally");
                    match r {
                        Ok(Expect::Ok) => t.successes += 1,
                        Ok(Expect::Usage) => t.usage_errors += 1,
                        Ok(_) => t.clean_errors += 1,
                        Err(e) => t.failures.push(format!("{}: {e}", c.name)),
                    }
                }
            });
        }
    });
    let t = tally.into_inner().expect("tally");
    let fixtures_after = snapshot(&fx_root);
    let changed: Vec<_> = fixtures_before
        .iter()
        .filter(|(p, h)| fixtures_after.get(*p) != Some(h))
        .map(|(p, _)| p.display().to_string())
        .collect();
    println!(
        "hostile corpus: {} cases: {} clean errors, {} usage errors, {} correct successes, {} failed",
        cases.len(),
        t.clean_errors,
        t.usage_errors,
        t.successes,
        t.failures.len()
    );
    assert!(changed.is_empty(), "fixture files changed: {changed:?}");
    assert!(
        t.failures.is_empty(),
        "{} of {} cases failed:\n{}",
        t.failures.len(),
        cases.len(),
        t.failures.join("\n\n")
    );
}
