//! Packed image folders: a folder decoded once, in parallel, into one file that training reads
//! in place (memory-mapped for random access, batches read ahead by `train::source`), so the
//! operating system pages images in as they are needed and a dataset may be far larger than
//! memory.
//!
//! Training from a folder goes through [`cached`]: a pack in genlab's cache
//! (`~/.cache/genlab/packs/`), reused while the folder is unchanged (same files, sizes and
//! modification times: its fingerprint) and rebuilt when it changes. `genlab data pack` writes one
//! where the user says ([`pack_folder`]), and `--dataset FILE.glpack` trains from it ([`open`]).
//!
//! File layout (integers little-endian):
//! - bytes `0..8`: the magic `GENLABP1`; `8..16`: the header's length `H` (u64);
//! - `16..16 + H`: the header, JSON ([`PackHeader`]);
//! - zero padding to a multiple of [`ALIGN`] bytes;
//! - the training images `[train, c, h, w]` u8, then the test images `[test, c, h, w]` u8;
//! - when labelled, the training labels `[train]` u8, then the test labels `[test]` u8;
//! - nothing after: the file's size must be exactly what its header describes.
//!
//! A pack is written to a temporary name and renamed into place, so a killed `pack` leaves no
//! half file under the real name, and a pack being read is never changed under its reader.

mod cache;
mod write;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use cache::{CacheEvent, cache_path, cached, fingerprint};
pub use write::{PackInfo, Progress, pack_folder};

use super::image_dir::MAX_CLASSES;
use super::{Dataset, ImageSet, Pixels};
use crate::error::{Error, Result};

/// The first bytes of every pack.
pub const MAGIC: &[u8; 8] = b"GENLABP1";

/// Where the images start: page-aligned, so each image's bytes map cleanly.
pub const ALIGN: u64 = 4096;

/// The largest header read (class names and a path: far below this).
const MAX_HEADER: u64 = 1 << 20;

/// The file extension of packs.
pub const EXTENSION: &str = "glpack";

/// What a pack holds, as stored in its header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackHeader {
    /// `[c, h, w]` of every image.
    pub shape: [usize; 3],
    /// Training images.
    pub train: usize,
    /// Test images.
    pub test: usize,
    /// Class names, `classes[label]`; empty when the images are unlabelled.
    pub classes: Vec<String>,
    /// The folder it was made from, as given.
    pub source: String,
    /// The folder's [`fingerprint`] when it was packed.
    pub fingerprint: String,
    /// SHA-256 of the images and labels: hex of `sha256(sha256(train) ++ sha256(test) ++
    /// sha256(labels))`, checked by [`verify`].
    pub sha256: String,
}

impl PackHeader {
    /// Bytes per image.
    pub(super) fn image_len(&self) -> u64 {
        self.shape.iter().map(|&s| s as u64).product()
    }

    /// Where the images start, for a header of `header_len` bytes.
    pub(super) fn data_start(header_len: u64) -> u64 {
        (16 + header_len).div_ceil(ALIGN) * ALIGN
    }

    /// The file size this header describes, or `None` if it overflows.
    pub(super) fn file_len(&self, header_len: u64) -> Option<u64> {
        let n = (self.train as u64).checked_add(self.test as u64)?;
        let images = n.checked_mul(self.image_len())?;
        let labels = if self.classes.is_empty() { 0 } else { n };
        Self::data_start(header_len)
            .checked_add(images)?
            .checked_add(labels)
    }

    /// Checks the header's own values; `path` names the pack in errors.
    pub(super) fn check(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Err(Error::format(path, msg));
        let [c, h, w] = self.shape;
        let max = crate::config::MAX_SIZE as usize;
        if !matches!(c, 1 | 3) || h == 0 || w == 0 || h > max || w > max {
            return bad(format!(
                "header: image shape {:?}, expected [1 or 3, h, w] with 0 < h, w <= {max}",
                self.shape
            ));
        }
        if self.train == 0 || self.test == 0 {
            return bad(format!(
                "header: {} train and {} test images, expected at least one of each",
                self.train, self.test
            ));
        }
        if !self.classes.is_empty() && !(2..=MAX_CLASSES).contains(&self.classes.len()) {
            return bad(format!(
                "header: {} class names, expected none or 2 to {MAX_CLASSES}",
                self.classes.len()
            ));
        }
        Ok(())
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `path` is a file that starts with a pack's magic.
pub fn is_pack(path: &Path) -> bool {
    let mut head = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == MAGIC
}

/// Reads and checks the header of the pack at `path` (not its images): the magic, the header,
/// and that the file's size is exactly what the header describes (a truncated copy fails here).
/// Returns the header and where the images start.
pub fn read_header(path: &Path) -> Result<(PackHeader, u64)> {
    let mut f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, "read", e))?;
    if !meta.is_file() {
        return Err(Error::format(path, "is not a regular file"));
    }
    let len = meta.len();
    let mut head = [0u8; 16];
    if len < 16 || f.read_exact(&mut head).is_err() || &head[..8] != MAGIC {
        return Err(Error::format(
            path,
            "not a genlab pack (expected a file made by `genlab data pack`, starting GENLABP1)",
        ));
    }
    let header_len = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
    if header_len > MAX_HEADER || 16 + header_len > len {
        return Err(Error::format(
            path,
            format!("header length {header_len} does not fit the file's {len} bytes (truncated?)"),
        ));
    }
    let mut text = vec![0u8; header_len as usize];
    f.read_exact(&mut text)
        .map_err(|e| Error::io(path, "read", e))?;
    let header: PackHeader =
        serde_json::from_slice(&text).map_err(|e| Error::format(path, format!("header: {e}")))?;
    header.check(path)?;
    let want = header
        .file_len(header_len)
        .ok_or_else(|| Error::format(path, "header: the image count and shape overflow 64 bits"))?;
    if len != want {
        return Err(Error::format(
            path,
            format!(
                "is {len} bytes, but its header describes {want} ({} + {} images of {:?}{}){}",
                header.train,
                header.test,
                header.shape,
                if header.classes.is_empty() {
                    ""
                } else {
                    " with labels"
                },
                if len < want { "; truncated?" } else { "" }
            ),
        ));
    }
    Ok((header, PackHeader::data_start(header_len)))
}

/// Opens the pack at `path` as a dataset whose images stay in the file, memory-mapped. The header
/// and size are checked ([`read_header`]) and the labels against the classes; the images are
/// not hashed here ([`verify`] does that).
pub fn open(path: &Path) -> Result<Dataset> {
    let (header, data) = read_header(path)?;
    let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    // SAFETY: the mapping is read-only and genlab never changes a pack in place (it writes a new
    // file and renames it over the old one, which leaves this mapping on the old file). Another
    // program truncating the file while it is mapped would make reads of the lost part fault;
    // that is the documented cost of mapping user files.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, "map", e))?;
    let image_len = header.image_len() as usize;
    let data = data as usize;
    let (ntr, nte) = (header.train, header.test);
    let labels_at = data + (ntr + nte) * image_len;
    let end = labels_at
        + if header.classes.is_empty() {
            0
        } else {
            ntr + nte
        };
    // The file may have changed since its header was read.
    if map.len() != end {
        return Err(Error::format(
            path,
            format!(
                "changed while being opened: {} bytes, expected {end}",
                map.len()
            ),
        ));
    }
    let map = Arc::new(map);
    let file = Arc::new(file);
    let (train_labels, test_labels) = if header.classes.is_empty() {
        (None, None)
    } else {
        let all = &map[labels_at..labels_at + ntr + nte];
        if let Some((i, l)) = all
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= header.classes.len())
        {
            return Err(Error::format(
                path,
                format!(
                    "label {i} is {l}, but the pack has {} classes",
                    header.classes.len()
                ),
            ));
        }
        (Some(all[..ntr].to_vec()), Some(all[ntr..].to_vec()))
    };
    let set = |at: usize, n: usize, labels| {
        ImageSet::new(
            Pixels::mapped(map.clone(), file.clone(), at, n * image_len),
            labels,
            header.shape,
        )
    };
    Ok(Dataset {
        name: path.display().to_string(),
        train: set(data, ntr, train_labels)?,
        test: set(data + ntr * image_len, nte, test_labels)?,
        classes: header.classes,
    })
}

/// Re-hashes the images and labels of the pack at `path` against its header's SHA-256: the check
/// for a pack that was copied or stored somewhere it may have been damaged.
pub fn verify(path: &Path) -> Result<PackHeader> {
    let (header, data) = read_header(path)?;
    let mut f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let image_len = header.image_len();
    let mut sections = vec![
        header.train as u64 * image_len,
        header.test as u64 * image_len,
    ];
    sections.push(if header.classes.is_empty() {
        0
    } else {
        (header.train + header.test) as u64
    });
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(data))
        .map_err(|e| Error::io(path, "read", e))?;
    let mut all = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for len in sections {
        let mut h = Sha256::new();
        let mut left = len;
        while left > 0 {
            let k = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..k])
                .map_err(|e| Error::io(path, "read", e))?;
            h.update(&buf[..k]);
            left -= k as u64;
        }
        all.update(h.finalize());
    }
    let got = hex(&all.finalize());
    if got != header.sha256 {
        return Err(Error::format(
            path,
            format!(
                "images or labels damaged: SHA-256 {got}, the header says {}",
                header.sha256
            ),
        ));
    }
    Ok(header)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A folder of `n` distinct 5x4 RGB images in two class sub-folders.
    pub(crate) fn folder(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["a", "b"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        for i in 0..n {
            let img = image::RgbImage::from_fn(5, 4, |x, y| {
                image::Rgb([(i * 7) as u8, (x * 40) as u8, (y as usize * 60 + i) as u8])
            });
            let sub = if i % 3 == 0 { "a" } else { "b" };
            img.save(dir.path().join(sub).join(format!("{i:03}.png")))
                .expect("save");
        }
        dir
    }

    #[test]
    fn truncated_damaged_and_foreign_files_are_clear_errors() {
        let dir = folder(12);
        let out = tempfile::tempdir().expect("tempdir");
        let p = out.path().join("x.glpack");
        pack_folder(dir.path(), [1, 4, 4], &p, &mut |_, _| {}).expect("pack");
        let bytes = std::fs::read(&p).expect("read");

        let cut = out.path().join("cut.glpack");
        std::fs::write(&cut, &bytes[..bytes.len() - 5]).expect("write");
        let e = open(&cut).expect_err("truncated").to_string();
        assert!(e.contains("cut.glpack") && e.contains("truncated"), "{e}");

        let mut flipped = bytes.clone();
        let last = flipped.len() - 20;
        flipped[last] ^= 0x40;
        let bad = out.path().join("bad.glpack");
        std::fs::write(&bad, &flipped).expect("write");
        open(&bad).expect("a flipped pixel passes the cheap checks");
        let e = verify(&bad).expect_err("damaged").to_string();
        assert!(e.contains("damaged"), "{e}");

        let png = dir.path().join("a/000.png");
        let e = open(&png).expect_err("not a pack").to_string();
        assert!(e.contains("not a genlab pack"), "{e}");
        assert!(is_pack(&p) && !is_pack(&png));
    }
}
