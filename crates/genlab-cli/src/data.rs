//! `genlab data fetch NAME`: download a dataset into genlab's cache (or `--data-dir`), verified.
//! `genlab data where NAME`: the folders genlab searches for it, in order.
//! `genlab data pack FOLDER`: decode an image folder once into a pack file to train from.
//! `genlab data check PACK`: a pack's header, and its images re-hashed.
//! [`load`]: every command's way to load a dataset, showing the pack cache's progress.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use genlab::data::fetch::{self, FetchEvent};
use genlab::data::pack::{self, CacheEvent};
use genlab::data::{DataOptions, Dataset, DatasetSpec};
use genlab::fsutil::{Origin, Outputs};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Download mnist, fashion-mnist or cifar10 from its public mirrors, checking SHA-256s.
    Fetch(FetchArgs),
    /// Print the folders searched for a dataset, in order, and which one holds it.
    Where(WhereArgs),
    /// Decode an image folder once (in parallel) into a pack file; `--dataset FILE` then trains
    /// from it, memory-mapped. Training from a folder makes one in the cache by itself.
    Pack(PackArgs),
    /// Check a pack: its header and size, and its images and labels against their SHA-256.
    Check(CheckArgs),
}

#[derive(clap::Args)]
struct PackArgs {
    /// The image folder (PNG, JPEG, BMP; sub-folders as classes when every image is in one).
    folder: PathBuf,
    /// The pack to write (default: FOLDER.glpack beside the folder).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Image shape every image is centre-cropped and resized to: C,H,W (C = 1 grey or 3 RGB).
    #[arg(long, value_parser = parse_shape, default_value = "3,32,32")]
    image: [usize; 3],
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The pack file.
    pack: PathBuf,
}

/// `C,H,W` as three sizes.
pub fn parse_shape(s: &str) -> std::result::Result<[usize; 3], String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|x| x.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("{s:?}: expected C,H,W such as 3,64,64"))?;
    match v[..] {
        [c, h, w] if matches!(c, 1 | 3) && h > 0 && w > 0 => Ok([c, h, w]),
        _ => Err(format!(
            "{s:?}: expected C,H,W with C = 1 or 3 and H, W > 0, such as 3,64,64"
        )),
    }
}

/// A progress bar of `n` images, with `what` before it.
fn image_bar(n: usize, what: &str) -> ProgressBar {
    let b = ProgressBar::new(n as u64);
    b.set_style(
        ProgressStyle::with_template(&format!(
            "  {what} [{{bar:30}}] {{pos}}/{{len}} images {{per_sec}} ETA {{eta}}"
        ))
        .expect("static template")
        .progress_chars("=> "),
    );
    b
}

/// Loads a dataset as every command does: an image folder goes through its pack in the cache,
/// and packing it (the first time, or after the folder changed) says so on stderr, with a
/// progress bar unless `quiet`.
pub fn load(spec: &DatasetSpec, opts: &DataOptions, quiet: bool) -> Result<Dataset> {
    let bar: Arc<Mutex<Option<ProgressBar>>> = Arc::default();
    let mut opts = opts.clone();
    opts.on_pack = Some(Arc::new(move |e| {
        let mut bar = bar.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            CacheEvent::Packing { path, images } => {
                eprintln!(
                    "packing {images} images into {} (once: reused while the folder is unchanged)",
                    path.display()
                );
                if !quiet {
                    *bar = Some(image_bar(images, "decoding"));
                }
            }
            CacheEvent::Progress { done, .. } => {
                if let Some(b) = &*bar {
                    b.set_position(done as u64);
                }
            }
            CacheEvent::Packed(_) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
            CacheEvent::NoCache(why) => {
                eprintln!("warning: no pack cache ({why}); decoding the folder into memory")
            }
            CacheEvent::Reused(_) => {}
        }
    }));
    Ok(genlab::data::load(spec, &opts)?)
}

#[derive(clap::Args)]
struct FetchArgs {
    /// mnist, fashion-mnist or cifar10.
    name: String,
    /// Root folder to download into (files go to DIR/NAME/); default: genlab's cache folder.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Base address to download from instead of the built-in mirrors (repeatable, tried in order).
    #[arg(long)]
    mirror: Vec<String>,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct WhereArgs {
    /// mnist, fashion-mnist, cifar10.
    name: String,
    /// Folder searched first.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<i32> {
    match a.command {
        Command::Fetch(f) => fetch_cmd(f),
        Command::Where(w) => where_cmd(w),
        Command::Pack(p) => pack_cmd(p),
        Command::Check(c) => check_cmd(c),
    }
}

fn fetch_cmd(a: FetchArgs) -> Result<i32> {
    let source = fetch::source(&a.name)?;
    let root = a.data_dir.unwrap_or_else(genlab::data::cache_dir);
    let mirrors = (!a.mirror.is_empty()).then_some(a.mirror.as_slice());
    let mut bar: Option<ProgressBar> = None;
    let quiet = a.quiet;
    let dir = fetch::fetch(&source, &root, mirrors, &mut |e| match e {
        FetchEvent::Start { file, url, size } => {
            if quiet {
                return;
            }
            eprintln!("{file} <- {url}");
            let b = ProgressBar::new(size);
            b.set_style(
                ProgressStyle::with_template(
                    "  [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar = Some(b);
        }
        FetchEvent::Progress { bytes } => {
            if let Some(b) = &bar {
                b.inc(bytes);
            }
        }
        FetchEvent::MirrorFailed { file, msg, more } => {
            if let Some(b) = bar.take() {
                b.abandon();
            }
            if more {
                eprintln!("  {file}: {msg}; trying the next mirror");
            }
        }
        FetchEvent::Done { file, downloaded } => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            if !quiet {
                let how = if downloaded {
                    "downloaded, SHA-256 ok"
                } else {
                    "already present, SHA-256 ok"
                };
                eprintln!("{file}: {how}");
            }
        }
        FetchEvent::Unpacking { file } => {
            if !quiet {
                eprintln!("unpacking {file}");
            }
        }
    })?;
    println!("{}", dir.display());
    Ok(0)
}

fn where_cmd(a: WhereArgs) -> Result<i32> {
    let spec: genlab::data::DatasetSpec = a.name.parse()?;
    let name = spec.to_string();
    for root in genlab::data::search_roots(&name, a.data_dir.as_deref()) {
        println!("{}", root.display());
    }
    let opts = genlab::data::DataOptions {
        data_dir: a.data_dir,
        ..Default::default()
    };
    match load(&spec, &opts, true) {
        Ok(d) => println!(
            "found: {} train / {} test images of shape {:?}",
            d.train.len(),
            d.test.len(),
            d.train.shape
        ),
        Err(e) => println!("not found: {e}"),
    }
    Ok(0)
}

fn pack_cmd(a: PackArgs) -> Result<i32> {
    if !a.folder.is_dir() {
        anyhow::bail!(
            "{}: not a folder (expected a folder of images)",
            a.folder.display()
        );
    }
    let (out, origin) = match a.out {
        Some(o) => (o, Origin::Named),
        None => {
            let name = a
                .folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "images".into());
            let base = match a.folder.parent() {
                Some(p) => p.to_path_buf(),
                None => PathBuf::from("."),
            };
            (
                base.join(format!("{name}.{}", pack::EXTENSION)),
                Origin::Derived,
            )
        }
    };
    let mut outputs = Outputs::new();
    outputs.input(&a.folder);
    outputs.claim(&out, origin, None)?;
    let t = std::time::Instant::now();
    // The bar starts with the first chunk's progress, which tells the total.
    let (mut bar, mut files) = (None::<ProgressBar>, 0);
    let info = pack::pack_folder(&a.folder, a.image, &out, &mut |done, total| {
        files = total;
        if !a.quiet {
            bar.get_or_insert_with(|| image_bar(total, "decoding"))
                .set_position(done as u64);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let h = &info.header;
    eprintln!(
        "packed {} images ({} train, {} test{}) of {:?} in {:.1} s",
        files,
        h.train,
        h.test,
        classes_note(&h.classes),
        h.shape,
        t.elapsed().as_secs_f64()
    );
    println!("{}", out.display());
    Ok(0)
}

fn classes_note(classes: &[String]) -> String {
    if classes.is_empty() {
        ", unlabelled".into()
    } else {
        format!(", {} classes: {}", classes.len(), classes.join(", "))
    }
}

fn check_cmd(a: CheckArgs) -> Result<i32> {
    let h = pack::verify(&a.pack).with_context(|| "checking the pack".to_string())?;
    println!(
        "{}: ok: {} train + {} test images of {:?}{}, from {}; SHA-256 {}",
        a.pack.display(),
        h.train,
        h.test,
        h.shape,
        classes_note(&h.classes),
        h.source,
        h.sha256
    );
    Ok(0)
}
