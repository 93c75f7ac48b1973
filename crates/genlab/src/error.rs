//! The library's one error type. Every variant carries its evidence: the file, the value and what
//! was expected, and displays on one line (messages from decoders and parsers are flattened), so
//! a caller can print it as it is and a user can act on it.

use std::path::PathBuf;

/// Result alias used throughout genlab.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in genlab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{}: {op}: {source}", shown(path))]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done ("read", "write", "rename", ...).
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A data file exists but its content is not what its format requires.
    #[error("{}: {}", shown(path), one_line(msg))]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What was expected and what was found.
        msg: String,
    },

    /// A dataset could not be found where genlab looked for it.
    #[error("dataset {}: {}", clean(name), one_line(msg))]
    DatasetNotFound {
        /// The dataset name the user asked for.
        name: String,
        /// Where genlab looked and how to get it.
        msg: String,
    },

    /// A configuration value (from a preset, a flag or a run folder) is invalid.
    #[error("{} = {}: {}", clean(field), clean(value), one_line(expected))]
    Config {
        /// The key, e.g. `train.batch_size`.
        field: String,
        /// The value that was given.
        value: String,
        /// What is allowed.
        expected: String,
    },

    /// A TOML file could not be parsed or has unknown keys.
    #[error("{}: {}", shown(path), one_line(msg))]
    Toml {
        /// The TOML file (or `<preset NAME>` for built-in ones).
        path: PathBuf,
        /// The parser's message, flattened to one line.
        msg: String,
    },

    /// A checkpoint (run folder) is missing, truncated, from another model, or inconsistent.
    #[error("{}: {}", shown(path), one_line(msg))]
    Checkpoint {
        /// The file in the run folder.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },

    /// An image file could not be decoded or encoded.
    #[error("{}: {}", shown(path), one_line(msg))]
    Image {
        /// The image file.
        path: PathBuf,
        /// The decoder's message or what did not match.
        msg: String,
    },

    /// Tensor shapes did not agree with what an operation needs.
    #[error("{op}: expected shape {}, got {}", one_line(expected), one_line(got))]
    Shape {
        /// The operation.
        op: &'static str,
        /// The expected shape, written out.
        expected: String,
        /// The shape that was given.
        got: String,
    },

    /// The training loss became NaN or infinite.
    #[error(
        "loss became {value} at epoch {epoch}, step {step}; the run stopped and its last good checkpoint was kept (try a lower --lr)"
    )]
    NonFiniteLoss {
        /// The non-finite value ("NaN", "inf").
        value: String,
        /// 1-based epoch.
        epoch: usize,
        /// Global optimizer step.
        step: usize,
    },

    /// A request the model family cannot honour (e.g. sampling from a plain autoencoder).
    #[error("{}", one_line(.0))]
    Unsupported(String),

    /// A request sized by a flag or config would not fit in the memory available.
    #[error(
        "{} needs about {need} of memory, but {limit} is available; ask for less",
        clean(what)
    )]
    Memory {
        /// The request, as the user wrote it (`--k 1000000000`, `train.batch_size = ...`).
        what: String,
        /// The estimate.
        need: String,
        /// The limit (see [`crate::memory`]).
        limit: String,
    },

    /// A folder is being written by another genlab process.
    #[error("{}: {}", shown(path), one_line(msg))]
    Locked {
        /// The run folder.
        path: PathBuf,
        /// Who holds it.
        msg: String,
    },

    /// genlab refuses to write a path: it is an input, another output of the same command, or
    /// a file genlab did not make.
    #[error("{}: {}", shown(path), one_line(msg))]
    Refused {
        /// The path it would have written.
        path: PathBuf,
        /// Why, and what to do instead.
        msg: String,
    },

    /// A download failed or the file did not match its checksum.
    #[error("{url}: {}", one_line(msg))]
    Download {
        /// The address.
        url: String,
        /// What failed.
        msg: String,
    },
}

/// A path as messages show it: control characters (a newline in a file name) escaped.
fn shown(p: &std::path::Path) -> String {
    clean(&p.display().to_string())
}

/// `s` with control characters escaped (`\n`), so a value a user typed cannot break a message
/// over lines.
pub fn clean(s: &str) -> String {
    s.chars()
        .flat_map(|c| -> Box<dyn Iterator<Item = char>> {
            if c.is_control() {
                Box::new(c.escape_default())
            } else {
                Box::new(std::iter::once(c))
            }
        })
        .collect()
}

/// A message on one line: third-party errors (decoders, parsers) can span several.
pub fn one_line(s: impl std::fmt::Display) -> String {
    s.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// Shorthand for [`Error::Format`].
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// Shorthand for [`Error::Config`].
    pub fn config(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Error::Config {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// Shorthand for [`Error::Checkpoint`].
    pub fn checkpoint(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
