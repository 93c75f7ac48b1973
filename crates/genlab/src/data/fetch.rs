//! `genlab data fetch`: downloads MNIST, Fashion-MNIST and CIFAR-10 from their public mirrors into
//! a folder genlab searches ([`cache_dir`](super::cache_dir) by default), checking each file's
//! size and SHA-256 before it is given its final name.
//!
//! A file is streamed to a temporary name beside its target while being hashed, and renamed only
//! when both size and digest match, so an interrupted or corrupt download never leaves a file
//! that genlab would read. A file already present with the right digest is not fetched again.
//! Mirrors are tried in order; a wrong digest, an HTTP error or a short body moves on to the next.
//! CIFAR-10's archive is unpacked (each member written atomically) and then removed.
//!
//! The digests were checked against published ones: MNIST's test files against the copy in this
//! repository, the others against the SHA-256s printed by independent projects (and torchvision's
//! and the authors' MD5s for the same byte counts).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsutil;

/// One file of a dataset as published upstream.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    /// File name, appended to each mirror's base address.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

impl RemoteFile {
    fn new(name: &str, size: u64, sha256: &str) -> Self {
        Self {
            name: name.into(),
            size,
            sha256: sha256.into(),
        }
    }
}

/// What to do with a file once it is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpack {
    /// Keep it as it is (IDX `.gz` files: genlab reads them compressed).
    Keep,
    /// Extract the `.tar.gz` archive next to it, then delete the archive.
    TarGz,
}

/// A downloadable dataset: where its files come from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The dataset name (`--dataset` spelling); files go into `ROOT/NAME/`.
    pub name: String,
    /// Base addresses, tried in order; each ends with `/`.
    pub mirrors: Vec<String>,
    /// The files, smallest useful first (test split before train).
    pub files: Vec<RemoteFile>,
    /// What happens after verification.
    pub unpack: Unpack,
}

/// The datasets `genlab data fetch` knows.
pub const FETCHABLE: &[&str] = &["mnist", "fashion-mnist", "cifar10"];

/// The built-in source for `name` (one of [`FETCHABLE`]).
pub fn source(name: &str) -> Result<Source> {
    let mnist_files =
        |t10k_img: (u64, &str), t10k_lbl: (u64, &str), tr_img: (u64, &str), tr_lbl: (u64, &str)| {
            vec![
                RemoteFile::new("t10k-images-idx3-ubyte.gz", t10k_img.0, t10k_img.1),
                RemoteFile::new("t10k-labels-idx1-ubyte.gz", t10k_lbl.0, t10k_lbl.1),
                RemoteFile::new("train-images-idx3-ubyte.gz", tr_img.0, tr_img.1),
                RemoteFile::new("train-labels-idx1-ubyte.gz", tr_lbl.0, tr_lbl.1),
            ]
        };
    let s = match name {
        "mnist" => Source {
            name: "mnist".into(),
            mirrors: vec![
                "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
                "https://storage.googleapis.com/cvdf-datasets/mnist/".into(),
            ],
            files: mnist_files(
                (
                    1_648_877,
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                ),
                (
                    4_542,
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                ),
                (
                    9_912_422,
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                ),
                (
                    28_881,
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                ),
            ),
            unpack: Unpack::Keep,
        },
        "fashion-mnist" => Source {
            name: "fashion-mnist".into(),
            mirrors: vec![
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/".into(),
                "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/".into(),
            ],
            files: mnist_files(
                (
                    4_422_102,
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                ),
                (
                    5_148,
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                ),
                (
                    26_421_880,
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                ),
                (
                    29_515,
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                ),
            ),
            unpack: Unpack::Keep,
        },
        "cifar10" | "cifar-10" => Source {
            name: "cifar10".into(),
            mirrors: vec!["https://www.cs.toronto.edu/~kriz/".into()],
            files: vec![RemoteFile::new(
                "cifar-10-binary.tar.gz",
                170_052_171,
                "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            )],
            unpack: Unpack::TarGz,
        },
        other => {
            return Err(Error::Config {
                field: "dataset".into(),
                value: other.into(),
                expected: format!("one of {}", FETCHABLE.join(", ")),
            });
        }
    };
    Ok(s)
}

/// Progress of a fetch, reported to the caller (the library never prints).
#[derive(Debug, Clone)]
pub enum FetchEvent<'a> {
    /// A download starts: file name, address, expected size.
    Start {
        /// File name.
        file: &'a str,
        /// The address being read.
        url: &'a str,
        /// Expected bytes.
        size: u64,
    },
    /// `bytes` more bytes arrived.
    Progress {
        /// Bytes in this chunk.
        bytes: u64,
    },
    /// A mirror failed for this file; the next one will be tried.
    MirrorFailed {
        /// File name.
        file: &'a str,
        /// The error, one line.
        msg: String,
        /// Whether another mirror will be tried.
        more: bool,
    },
    /// A file is in place and verified (`downloaded` false: it was already there).
    Done {
        /// File name.
        file: &'a str,
        /// Whether it was downloaded now.
        downloaded: bool,
    },
    /// An archive is being unpacked.
    Unpacking {
        /// Archive name.
        file: &'a str,
    },
}

/// Downloads every file of `source` into `root/NAME/`, verifying each; returns that folder.
///
/// `mirrors`, when given, replaces the source's own list (a local mirror, or a test server).
pub fn fetch(
    source: &Source,
    root: &Path,
    mirrors: Option<&[String]>,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<PathBuf> {
    let dir = root.join(&source.name);
    fsutil::create_dir_all(&dir)?;
    let mirrors = mirrors.unwrap_or(&source.mirrors);
    if mirrors.is_empty() {
        return Err(Error::Config {
            field: "mirror".into(),
            value: "(none)".into(),
            expected: "at least one base address".into(),
        });
    }
    if source.unpack == Unpack::TarGz && unpacked_marker(&dir, source).is_file() {
        for f in &source.files {
            on_event(FetchEvent::Done {
                file: &f.name,
                downloaded: false,
            });
        }
        return Ok(dir);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .user_agent(concat!("genlab/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    for file in &source.files {
        let target = dir.join(&file.name);
        if target.is_file() && sha256_file(&target)? == file.sha256 {
            on_event(FetchEvent::Done {
                file: &file.name,
                downloaded: false,
            });
        } else {
            download_verified(&agent, mirrors, file, &target, on_event)?;
            on_event(FetchEvent::Done {
                file: &file.name,
                downloaded: true,
            });
        }
        if source.unpack == Unpack::TarGz {
            on_event(FetchEvent::Unpacking { file: &file.name });
            unpack_tar_gz(&target, &dir)?;
            fsutil::write_atomic(&unpacked_marker(&dir, source), file.sha256.as_bytes())?;
            std::fs::remove_file(&target).map_err(|e| Error::io(&target, "remove", e))?;
        }
    }
    Ok(dir)
}

/// The file that records a completed unpack (so a second fetch does nothing).
fn unpacked_marker(dir: &Path, source: &Source) -> PathBuf {
    dir.join(format!(".{}.unpacked", source.name))
}

/// Tries each mirror until one yields the file with the right size and digest.
fn download_verified(
    agent: &ureq::Agent,
    mirrors: &[String],
    file: &RemoteFile,
    target: &Path,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<()> {
    let mut last = None;
    for (i, base) in mirrors.iter().enumerate() {
        let url = join_url(base, &file.name);
        match download_one(agent, &url, file, target, on_event) {
            Ok(()) => return Ok(()),
            Err(e) => {
                on_event(FetchEvent::MirrorFailed {
                    file: &file.name,
                    msg: e.to_string(),
                    more: i + 1 < mirrors.len(),
                });
                last = Some(e);
            }
        }
    }
    Err(last.expect("at least one mirror was tried"))
}

fn join_url(base: &str, name: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

/// Streams `url` to a temporary file beside `target`, hashing it; renames it on success.
fn download_one(
    agent: &ureq::Agent,
    url: &str,
    file: &RemoteFile,
    target: &Path,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<()> {
    let fail = |msg: String| Error::Download {
        url: url.to_string(),
        msg,
    };
    let mut response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    on_event(FetchEvent::Start {
        file: &file.name,
        url,
        size: file.size,
    });
    let tmp = target.with_file_name(format!(".{}.part-{}", file.name, std::process::id()));
    let result = (|| {
        let mut out = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, "create", e))?;
        let mut reader = response.body_mut().as_reader();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| fail(format!("read failed after {total} bytes: {e}")))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > file.size {
                return Err(fail(format!(
                    "more than the expected {} bytes; not the file genlab knows",
                    file.size
                )));
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| Error::io(&tmp, "write", e))?;
            on_event(FetchEvent::Progress { bytes: n as u64 });
        }
        if total != file.size {
            return Err(fail(format!(
                "got {total} bytes, expected {} (truncated download)",
                file.size
            )));
        }
        let digest = hex(&hasher.finalize());
        if digest != file.sha256 {
            return Err(fail(format!(
                "SHA-256 mismatch for {}: expected {}, got {digest}",
                file.name, file.sha256
            )));
        }
        out.sync_all().map_err(|e| Error::io(&tmp, "sync", e))?;
        drop(out);
        std::fs::rename(&tmp, target).map_err(|e| Error::io(target, "rename", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// SHA-256 of a file on disk, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Extracts regular files of a `.tar.gz` into `dir`, each written atomically; refuses paths that
/// would leave `dir`.
fn unpack_tar_gz(archive: &Path, dir: &Path) -> Result<()> {
    let bad = |msg: String| Error::Format {
        path: archive.to_path_buf(),
        msg,
    };
    let f = std::fs::File::open(archive).map_err(|e| Error::io(archive, "open", e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    let entries = tar
        .entries()
        .map_err(|e| bad(format!("not a tar.gz archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("corrupt archive entry: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .map_err(|e| bad(format!("bad member name: {e}")))?
            .into_owned();
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(bad(format!(
                "member {} points outside the folder",
                rel.display()
            )));
        }
        let out = dir.join(&rel);
        if let Some(parent) = out.parent() {
            fsutil::create_dir_all(parent)?;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("reading member {}: {e}", rel.display())))?;
        fsutil::write_atomic(&out, &bytes)?;
    }
    Ok(())
}

/// A tiny HTTP/1.1 file server on 127.0.0.1 for tests: serves `files` by path, 404 otherwise.
/// A file whose name starts with `short:` is announced with a longer Content-Length than sent.
#[doc(hidden)]
pub mod test_server {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    /// Starts the server on a free port in a background thread; returns its base address.
    pub fn serve(files: HashMap<String, Vec<u8>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let files = Arc::new(files);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let files = Arc::clone(&files);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                    let mut request = String::new();
                    if reader.read_line(&mut request).is_err() {
                        return;
                    }
                    // Drain the headers.
                    let mut line = String::new();
                    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                        line.clear();
                    }
                    let path = request
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .trim_start_matches('/')
                        .to_string();
                    let (status, body, announced) = match files.get(&path) {
                        Some(b) => ("200 OK", b.clone(), b.len()),
                        None => match files.get(&format!("short:{path}")) {
                            Some(b) => ("200 OK", b.clone(), b.len() + 1000),
                            None => ("404 Not Found", b"not found".to_vec(), 9),
                        },
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                });
            }
        });
        format!("http://{addr}/")
    }
}

#[cfg(test)]
mod tests;
