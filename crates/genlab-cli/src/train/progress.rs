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
            Event::Epoch { line, .. } => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                println!("{line}");
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
        Outcome::Finished { .. } => {
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
