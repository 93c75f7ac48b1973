//! `genlab data fetch NAME`: download a dataset into genlab's cache (or `--data-dir`), verified.
//! `genlab data where NAME`: the folders genlab searches for it, in order.

use std::path::PathBuf;

use anyhow::Result;
use genlab::data::fetch::{self, FetchEvent};
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
    match genlab::data::load(&spec, &opts) {
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
