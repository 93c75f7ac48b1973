//! A run's `metrics.jsonl` (one [`Record`] per epoch) and the `loss.png` drawn from it.

use std::io::Write;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::family::Record;
use crate::checkpoint::RunDir;
use crate::error::{Error, Result};
use crate::plot::{Series, line_plot};

/// Appends one record as a line of `metrics.jsonl`.
pub(crate) fn append_record<T: Serialize>(run: &RunDir, r: &T) -> Result<()> {
    let p = run.metrics();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(|e| Error::io(&p, "open", e))?;
    let line = serde_json::to_string(r).expect("records serialise");
    writeln!(f, "{line}").map_err(|e| Error::io(&p, "write", e))
}

/// Reads `metrics.jsonl` as records of type `T` (`EpochRecord`, `GanEpochRecord`, ...).
pub fn read_records<T: DeserializeOwned>(run: &RunDir) -> Result<Vec<T>> {
    let p = run.metrics();
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "read", e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::format(&p, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// On resume: drops log lines past the checkpoint (a kill between logging an epoch and
/// checkpointing it would otherwise repeat that epoch), so the log has each epoch once.
pub(crate) fn trim_records<R: Record>(run: &RunDir, epochs_done: usize) -> Result<()> {
    if !run.metrics().exists() {
        return Ok(());
    }
    let text: String = read_records::<R>(run)?
        .into_iter()
        .filter(|r| r.epoch() <= epochs_done)
        .map(|r| serde_json::to_string(&r).expect("records serialise") + "\n")
        .collect();
    crate::fsutil::write_atomic(&run.metrics(), text.as_bytes())
}

/// Redraws `loss.png` from every record so far.
pub(crate) fn plot_records<R: Record>(run: &RunDir) -> Result<()> {
    let recs = read_records::<R>(run)?;
    let series: Vec<Series> = R::series()
        .into_iter()
        .map(|(label, f)| Series {
            label,
            points: recs
                .iter()
                .map(|r| (r.epoch() as f64, f(r)))
                .filter(|(_, v)| v.is_finite())
                .collect(),
        })
        .collect();
    line_plot(&run.loss_plot(), R::PLOT_TITLE, R::PLOT_UNITS, &series)
}
