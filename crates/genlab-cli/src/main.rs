//! `genlab`: train, sample, reconstruct, interpolate, encode/decode and evaluate generative image
//! models. Parses, validates, then runs; errors print on one line and exit with status 1
//! (2 for usage errors, from clap; 130 when interrupted by Ctrl-C).

mod bench;
mod codec;
mod common;
mod compare;
mod data;
mod eval;
mod eval_sr;
mod interpolate;
mod reconstruct;
mod sample;
mod serve;
mod sr_model;
mod train;
mod upscale;

use clap::{Parser, Subcommand};

/// See the `mimalloc` feature in Cargo.toml; its effect on speed is measured in BENCHMARKS.md.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory in the process instead of returning it to the kernel after mimalloc's
/// default 1 s. Training frees and reallocates multi-megabyte tensors every step; once returned,
/// each reuse page-faults and the kernel zeroes the pages again (BENCHMARKS.md measures the
/// speed and peak-memory effect).
#[cfg(feature = "mimalloc")]
fn keep_freed_memory() {
    /// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (mimalloc.h: 0 show_errors, ...,
    /// 14 deprecated_eager_commit_delay, 15 purge_delay); the Rust bindings name no constant
    /// for it. -1 means "never purge".
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: mi_option_set only stores the value in mimalloc's option table.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

#[derive(Parser)]
#[command(
    name = "genlab",
    version,
    about = "Deep generative image models: train, sample, evaluate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Flush subnormal floats to zero on every computing thread (FTZ/DAZ; experimental: it can
    /// speed up CPUs that handle subnormals slowly, such as Intel's, and changes results where
    /// values fall below 1.2e-38; BENCHMARKS.md, issue 22).
    #[arg(long, global = true)]
    flush_denormals: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (vae, ae, gan, vae-gan, classifier, or sr for super-resolution) and write a
    /// run folder.
    Train(Box<train::Args>),
    /// Decode z ~ N(0, I) into a grid of new images.
    Sample(sample::Args),
    /// Original test images above their reconstructions, as a grid.
    Reconstruct(reconstruct::Args),
    /// Decode a straight line in latent space: between two encoded test images (VAE), or two
    /// noise vectors (GAN).
    Interpolate(interpolate::Args),
    /// Encode an image file to a latent code file (the "compression" use).
    Encode(codec::EncodeArgs),
    /// Decode a latent code file back to an image.
    Decode(codec::DecodeArgs),
    /// Evaluate a run on its test split (loss, -ELBO, MSE, PSNR), or a super-resolution model
    /// (`genlab eval sr`: Y-PSNR/SSIM on Set5/Set14, bicubic alongside).
    Eval(eval::Args),
    /// Upscale an image (or a folder of them) with a super-resolution network.
    Upscale(upscale::Args),
    /// Datasets: download (`fetch`) and locate (`where`).
    Data(data::Args),
    /// Training speed (images/s, median of timed windows) of the reference workloads.
    Bench(bench::Args),
    /// Train the autoencoder, VAE, DCGAN and VAE-GAN with one budget and tabulate them.
    Compare(compare::Args),
    /// The studio: explore, compare and use trained models in the browser (a local web app).
    Serve(serve::Args),
}

/// Runs `f` on a thread of rayon's global pool (with the main thread's 8 MiB stack) and waits.
///
/// Every tensor op that splits work across threads (burn-flex's and genlab's kernels) is a rayon
/// parallel iterator. Called from the main thread, each one injects a job into the pool, wakes a
/// sleeping worker and then blocks the main thread until the job is done: a futex sleep and
/// wake-up per op, with three threads sharing two cores. Called from a pool thread, the caller
/// works on its own half at once and the other worker steals the rest (BENCHMARKS.md has the
/// measured effect).
fn on_worker<T: Send>(f: impl FnOnce() -> T + Send, flush: bool) -> T {
    global_pool(flush);
    let mut out = None;
    rayon::scope(|_| out = Some(f()));
    out.expect("the scope ran its closure")
}

/// Builds rayon's global pool (8 MiB stacks), its threads flushing subnormals when `flush`
/// (`--flush-denormals`; the calling thread too).
fn global_pool(flush: bool) {
    if flush {
        genlab::nn::ops::denormals::flush_denormals();
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(8 << 20)
        .start_handler(move |_| {
            if flush {
                genlab::nn::ops::denormals::flush_denormals();
            }
        })
        .build_global();
}

/// Restores the default action of SIGPIPE, which Rust's runtime ignores: with it ignored, a
/// closed pipe (`genlab ... | head -1`) makes the next `println!` panic. With the default, the
/// process ends quietly at that write, as `cat` or `grep` do.
#[cfg(unix)]
fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    #[cfg(unix)]
    default_sigpipe();
    #[cfg(feature = "mimalloc")]
    keep_freed_memory();
    let cli = Cli::parse();
    // The studio runs its own async runtime, with model work on a bounded pool of threads
    // that use rayon's global pool for burn's kernels; it does not sit on a rayon worker.
    // A server must not die of SIGPIPE when a browser closes a connection mid-answer.
    let command = match cli.command {
        Command::Serve(a) => {
            #[cfg(unix)]
            // SAFETY: setting a signal's disposition before any other thread exists.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            global_pool(cli.flush_denormals);
            exit(serve::run(a, cli.flush_denormals))
        }
        other => other,
    };
    let flush = cli.flush_denormals;
    let result = on_worker(
        move || match command {
            Command::Train(a) => train::run(*a),
            Command::Sample(a) => sample::run(a),
            Command::Reconstruct(a) => reconstruct::run(a),
            Command::Interpolate(a) => interpolate::run(a),
            Command::Encode(a) => codec::encode(a),
            Command::Decode(a) => codec::decode(a),
            Command::Eval(a) => eval::run(a),
            Command::Upscale(a) => upscale::run(a),
            Command::Data(a) => data::run(a),
            Command::Bench(a) => bench::run(a),
            Command::Compare(a) => compare::run(a),
            Command::Serve(_) => unreachable!("served above"),
        },
        flush,
    );
    exit(result)
}

/// Exits with the command's status, or prints its error on one line and exits 1.
fn exit(result: anyhow::Result<i32>) -> ! {
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            std::process::exit(1);
        }
    }
}

/// An error and its causes on one line, each cause once: a library error already quotes the
/// OS error it wraps, so a cause whose text the line already has is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line += ": ";
        }
        line += &text;
    }
    line
}
