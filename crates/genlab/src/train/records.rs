//! A run's `metrics.jsonl` (one [`Record`] per epoch) and the `loss.png` drawn from it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::family::Record;
use crate::checkpoint::RunDir;
use crate::error::{Error, Result};
use crate::plot::{Series, line_plot};

/// The largest `metrics.jsonl` read (a line per epoch of a few hundred bytes: millions of epochs).
const MAX_METRICS: u64 = 1 << 30;

/// `metrics.jsonl`'s text, or `None` when there is none yet.
fn read_metrics(p: &std::path::Path) -> Result<Option<String>> {
    if !p.exists() {
        return Ok(None);
    }
    let bytes = crate::fsutil::read_capped(p, MAX_METRICS)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| Error::format(p, format!("not UTF-8 text: {e}")))
}

/// Adds one record as a line of `metrics.jsonl`, rewriting the file atomically (it holds one
/// short line per epoch), so a kill never leaves half a line.
pub(crate) fn append_record<T: Serialize>(run: &RunDir, r: &T) -> Result<()> {
    let p = run.metrics();
    let mut text = read_metrics(&p)?.unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text += &serde_json::to_string(r).expect("records serialise");
    text.push('\n');
    crate::fsutil::write_atomic(&p, text.as_bytes())
}

/// Reads `metrics.jsonl` as records of type `T` (`EpochRecord`, `GanEpochRecord`, ...).
pub fn read_records<T: DeserializeOwned>(run: &RunDir) -> Result<Vec<T>> {
    let p = run.metrics();
    let text = read_metrics(&p)?.ok_or_else(|| {
        Error::io(
            &p,
            "read",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })?;
    parse_records(&text, &p, false).map(|(r, _)| r)
}

/// Reads `metrics.jsonl` while a training may still be writing it (the studio's live curves):
/// no file yet is no records, and a last line that does not parse is left out; any other bad
/// line is an error.
pub fn read_records_live<T: DeserializeOwned>(run: &RunDir) -> Result<Vec<T>> {
    let p = run.metrics();
    match read_metrics(&p)? {
        None => Ok(Vec::new()),
        Some(text) => parse_records(&text, &p, true).map(|(r, _)| r),
    }
}

/// Parses `metrics.jsonl`'s lines. With `torn_ok`, a last line that does not parse (a write
/// cut short by a crash of an older genlab, which appended) is dropped and reported as `true`.
fn parse_records<T: DeserializeOwned>(
    text: &str,
    p: &std::path::Path,
    torn_ok: bool,
) -> Result<(Vec<T>, bool)> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        match serde_json::from_str(l) {
            Ok(r) => out.push(r),
            Err(_) if torn_ok && i + 1 == lines.len() => return Ok((out, true)),
            Err(e) => {
                return Err(Error::format(p, format!("line {}: {e}", i + 1)));
            }
        }
    }
    Ok((out, false))
}

/// On resume: checks the log against the checkpoint, and returns the text that keeps epochs
/// `1..=epochs_done` once each and in order, when it differs from the file (write it with
/// [`write_records`] once every other check has passed). A torn last line is dropped, and lines
/// past the checkpoint (a kill between logging an epoch and checkpointing it) are dropped;
/// fewer epochs than the checkpoint has, or epochs out of order, mean the files do not belong
/// together, and are an error.
pub(crate) fn check_records<R: Record>(run: &RunDir, epochs_done: usize) -> Result<Option<String>> {
    let p = run.metrics();
    let text = match read_metrics(&p)? {
        Some(t) => t,
        None if epochs_done == 0 => return Ok(None),
        None => {
            return Err(Error::io(
                &p,
                "read",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
    };
    let (recs, _torn) = parse_records::<R>(&text, &p, true)?;
    for (i, r) in recs.iter().enumerate() {
        if r.epoch() != i + 1 {
            return Err(Error::format(
                &p,
                format!(
                    "line {} is epoch {}, expected epoch {}",
                    i + 1,
                    r.epoch(),
                    i + 1
                ),
            ));
        }
    }
    if recs.len() < epochs_done {
        return Err(Error::checkpoint(
            &p,
            format!(
                "has {} epoch(s) but state.json says {epochs_done} are done: the two files are not from one run",
                recs.len()
            ),
        ));
    }
    let kept: String = recs
        .into_iter()
        .take(epochs_done)
        .map(|r| serde_json::to_string(&r).expect("records serialise") + "\n")
        .collect();
    Ok((kept != text).then_some(kept))
}

/// Replaces `metrics.jsonl` with `text`, atomically.
pub(crate) fn write_records(run: &RunDir, text: &str) -> Result<()> {
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
        .filter(|s| !s.points.is_empty())
        .collect();
    line_plot(&run.loss_plot(), R::PLOT_TITLE, R::PLOT_UNITS, &series)
}
