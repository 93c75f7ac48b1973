//! `genlab bench`: training images/s of the reference workloads (median of timed windows), and
//! the process's peak memory. Compare with `bench/reference/vae.py --speed` in the same run
//! (`bash bench/vae_speed.sh` does both).

use std::path::PathBuf;

use anyhow::{Context, Result};
use genlab::bench::{self, SpeedOptions, WORKLOADS};

use crate::common::{DeviceArg, device};

#[derive(clap::Args)]
pub struct Args {
    /// Workloads to time (repeatable): mlp-vae, conv-vae, fsrcnn, dcgan (training images/s),
    /// fsrcnn-upscale (upscaling input megapixels/s); default: all.
    #[arg(long = "workload", short = 'w')]
    workloads: Vec<String>,
    /// Images per step (default: 128 for the VAEs, 32 for fsrcnn, 64 for dcgan, as in BENCHMARKS.md).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: Option<u64>,
    /// Timed windows per workload (the median is reported).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    windows: u64,
    /// Seconds per window.
    #[arg(long, default_value_t = 2.0)]
    window_seconds: f64,
    /// Untimed steps before the first window.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Batches from mnist-10k's train split (real) or uniform noise (synthetic).
    #[arg(long, value_enum, default_value = "real")]
    input: Input,
    /// Also write the reports as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Input {
    Real,
    Synthetic,
}

pub fn run(a: Args) -> Result<i32> {
    if !(a.window_seconds.is_finite() && a.window_seconds > 0.0) {
        anyhow::bail!(
            "--window-seconds {}: expected a positive number of seconds",
            a.window_seconds
        );
    }
    let workloads = if a.workloads.is_empty() {
        WORKLOADS.to_vec()
    } else {
        a.workloads
            .iter()
            .map(|w| bench::workload(w))
            .collect::<genlab::Result<Vec<_>>>()?
    };
    if let Some(p) = &a.json {
        genlab::fsutil::Outputs::new().claim(p, genlab::fsutil::Origin::Named, None)?;
    }
    let device = device(a.device)?;
    let data = match a.input {
        Input::Real => Some(genlab::data::embedded::mnist_10k()?.train),
        Input::Synthetic => None,
    };
    let mut opts = SpeedOptions {
        batch_size: a.batch_size.unwrap_or(128) as usize,
        warmup_steps: a.warmup,
        windows: a.windows as usize,
        window_secs: a.window_seconds,
        seed: 0,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let device_name = format!("{:?}", a.device).to_lowercase();
    let cpu = genlab::bench::cpu();
    println!(
        "genlab bench: device {device_name}, {threads} threads, {} x {} s windows after {} warm-up steps",
        opts.windows, opts.window_secs, opts.warmup_steps
    );
    let family_model = cpu
        .family_model
        .map_or(String::new(), |(f, m)| format!(" family {f} model {m}"));
    println!(
        "cpu: {} ({}{family_model}; {}); genlab's kernels: {}",
        cpu.model,
        cpu.vendor,
        cpu.simd.join(" "),
        cpu.kernels
    );
    let mut reports = Vec::new();
    for w in &workloads {
        opts.batch_size = a.batch_size.map_or(w.batch_size, |b| b as usize);
        let r = if w.is_upscale() {
            bench::upscale_speed(1000, &opts, &device)?
        } else {
            bench::train_speed(w, data.as_ref(), &opts, &device)?
        };
        let lo = r.windows.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.windows.iter().copied().fold(0.0, f64::max);
        if w.is_upscale() {
            println!(
                "{:<14} {:>8.3} MP/s median  (windows {lo:.3}..{hi:.3}, {} runs)  {}",
                r.workload, r.median_images_per_s, r.steps, w.about
            );
        } else {
            println!(
                "{:<14} {:>8.0} img/s median  (batch {}, windows {lo:.0}..{hi:.0}, {} steps, {} params)  {}",
                r.workload, r.median_images_per_s, r.batch_size, r.steps, r.params, w.about
            );
        }
        reports.push(r);
    }
    let peak = peak_rss_mib();
    if let Some(mib) = peak {
        println!("peak RSS {mib:.0} MiB");
    }
    if let Some(p) = &a.json {
        let doc = serde_json::json!({
            "device": device_name,
            "cpu": cpu,
            "threads": threads,
            "input": match a.input { Input::Real => "real", Input::Synthetic => "synthetic" },
            "peak_rss_mib": peak,
            "workloads": reports,
        });
        genlab::fsutil::write_atomic(p, serde_json::to_string_pretty(&doc)?.as_bytes())
            .with_context(|| "writing the JSON report")?;
    }
    Ok(0)
}

/// The process's peak resident set (VmHWM), where the OS reports it.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
