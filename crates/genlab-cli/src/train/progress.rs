//! What every `genlab train` family (and `genlab compare`) shares while a run trains: the
//! progress observer, the Ctrl-C flag and the closing line.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use genlab::checkpoint::RunDir;
use genlab::train::{Event, Observer, Outcome};
use indicatif::{ProgressBar, ProgressStyle};

/// Prints the start line and each epoch's summary, and draws a progress bar over the batches.
pub struct Progress {
    pub bar: Option<ProgressBar>,
    pub quiet: bool,
}

impl Observer for Progress {
    fn on_event(&mut self, e: Event<'_>) {
        match e {
            Event::Start {
                epoch,
                epochs,
                batches,
                skip,
                params,
            } => {
                if !self.quiet {
                    eprintln!(
                        "training {params} parameters, epochs {epoch}..={epochs}, {batches} batches/epoch{}",
                        if skip > 0 {
                            format!(" (resuming after batch {skip})")
                        } else {
                            String::new()
                        }
                    );
                }
            }
            Event::Batch {
                epoch,
                batch,
                batches,
                loss,
                images_per_sec,
            } => {
                if self.quiet {
                    return;
                }
                let bar = self.bar.get_or_insert_with(|| {
                    let b = ProgressBar::new(batches as u64);
                    b.set_style(
                        ProgressStyle::with_template(
                            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}",
                        )
                        .expect("static template")
                        .progress_chars("=> "),
                    );
                    b.set_prefix(epoch.to_string());
                    b
                });
                bar.set_position(batch as u64);
                bar.set_message(format!("loss {loss:.3} {images_per_sec:.0} img/s"));
            }
            Event::SrEpoch(r) => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                let val = if r.val_psnr.is_nan() {
                    "no validation folder".to_string()
                } else {
                    format!(
                        "val Y-PSNR {:.3} dB SSIM {:.4}  (bicubic {:.3} / {:.4})",
                        r.val_psnr, r.val_ssim, r.bicubic_psnr, r.bicubic_ssim
                    )
                };
                println!(
                    "epoch {:>3}  train mse {:.6}  {val}  {:.0} patches/s",
                    r.epoch, r.train_mse, r.patches_per_sec
                );
            }
            Event::GanEpoch(r) => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                let vae = r.vae.map_or(String::new(), |v| {
                    format!(
                        "  test -ELBO {:.2} psnr {:.2} dB",
                        v.test.neg_elbo, v.test.psnr
                    )
                });
                println!(
                    "epoch {:>3}  D loss {:.3}  G loss {:.3}  D(x) {:.3}  D(G(z)) {:.3}{vae}  {:.0} img/s",
                    r.epoch, r.d_loss, r.g_loss, r.d_real, r.d_fake, r.images_per_sec
                );
            }
            Event::ClassifierEpoch(r) => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                println!(
                    "epoch {:>3}  train loss {:.4} acc {:.4}  test loss {:.4} acc {:.4}  {:.0} img/s",
                    r.epoch,
                    r.train_loss,
                    r.train_accuracy,
                    r.test_loss,
                    r.test_accuracy,
                    r.images_per_sec
                );
            }
            Event::Epoch(r) => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                let kl = if r.train_kl > 0.0 {
                    format!(" (recon {:.2} + kl {:.2})", r.test.recon, r.test.kl)
                } else {
                    String::new()
                };
                println!(
                    "epoch {:>3}  train {:.3}  test {:.3}{kl}  psnr {:.2} dB  {:.0} img/s",
                    r.epoch, r.train_loss, r.test.loss, r.test.psnr, r.images_per_sec
                );
            }
        }
    }
}

/// A flag Ctrl-C sets: the loop checkpoints after the current batch and returns. A second
/// Ctrl-C exits at once (the last checkpoint is intact).
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this batch and saving a checkpoint (Ctrl-C again to quit now)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// Prints how the run ended and returns the exit status: 0 when finished (`files` lists what
/// the run folder holds), 130 when interrupted, with the command that continues it.
pub fn report(outcome: &Outcome, run: &RunDir, files: &str) -> i32 {
    match outcome {
        Outcome::Finished(_) => {
            println!("done: {}  ({files})", run.dir.display());
            0
        }
        Outcome::Interrupted { epoch, step } => {
            println!(
                "interrupted in epoch {epoch} after step {step}; checkpoint saved. Continue with: genlab train --resume {}",
                run.dir.display()
            );
            130
        }
    }
}
