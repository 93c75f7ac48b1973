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

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::image_dir::{self, MAX_CLASSES};
use super::{Dataset, ImageSet, Pixels};
use crate::error::{Error, Result};
use crate::image_io::{image_to_pixels, read_image};

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
    fn image_len(&self) -> u64 {
        self.shape.iter().map(|&s| s as u64).product()
    }

    /// Where the images start, for a header of `header_len` bytes.
    fn data_start(header_len: u64) -> u64 {
        (16 + header_len).div_ceil(ALIGN) * ALIGN
    }

    /// The file size this header describes, or `None` if it overflows.
    fn file_len(&self, header_len: u64) -> Option<u64> {
        let n = (self.train as u64).checked_add(self.test as u64)?;
        let images = n.checked_mul(self.image_len())?;
        let labels = if self.classes.is_empty() { 0 } else { n };
        Self::data_start(header_len)
            .checked_add(images)?
            .checked_add(labels)
    }

    /// Checks the header's own values; `path` names the pack in errors.
    fn check(&self, path: &Path) -> Result<()> {
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

/// The fingerprint of a folder's contents as far as its listing tells: SHA-256 of every
/// non-hidden file's path (relative to `dir`), size and modification time, in sorted order. A
/// pack is rebuilt when it changes; a file rewritten in place with the same size and time is
/// not noticed (touch it).
pub fn fingerprint(dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    for f in image_dir::list_files(dir)? {
        let meta = std::fs::metadata(&f).map_err(|e| Error::io(&f, "read metadata", e))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(meta.len().to_le_bytes());
        h.update(mtime.to_le_bytes());
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Progress of [`pack_folder`]: images decoded so far, of the total.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// What [`pack_folder`] made.
#[derive(Debug, Clone)]
pub struct PackInfo {
    /// Its header.
    pub header: PackHeader,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Decoded images are written out in chunks of about this many bytes, so packing needs little
/// memory whatever the folder's size.
const CHUNK_BYTES: usize = 64 << 20;

/// Decodes every image of `dir` (as [`image_dir`] finds them), centre-cropped and resized to
/// `shape`, in parallel, into a pack at `out` (written to a temporary name beside it, then
/// renamed). The splits and classes are [`image_dir`]'s. A file that does not decode is an error
/// naming it, and no pack is left behind.
pub fn pack_folder(
    dir: &Path,
    shape: [usize; 3],
    out: &Path,
    progress: Progress<'_>,
) -> Result<PackInfo> {
    let [c, h, w] = shape;
    let max = crate::config::MAX_SIZE as usize;
    if !matches!(c, 1 | 3) || h == 0 || w == 0 || h > max || w > max {
        return Err(Error::config(
            "image shape",
            format!("{shape:?}"),
            "[1 or 3 channels, height > 0, width > 0]",
        ));
    }
    let fingerprint = fingerprint(dir)?;
    let files = image_dir::image_files(dir)?;
    let n = files.len();
    let (classes, labels) = image_dir::folder_classes(dir, &files);
    let (train_idx, test_idx) = image_dir::split(n);
    let mut header = PackHeader {
        shape,
        train: train_idx.len(),
        test: test_idx.len(),
        classes,
        source: dir.display().to_string(),
        fingerprint,
        sha256: "0".repeat(64),
    };
    let header_len = serde_json::to_vec(&header)
        .expect("a header serialises")
        .len() as u64;
    let too_big = || {
        Error::config(
            "image shape",
            format!("{shape:?}"),
            format!("a pack of {n} such images that fits in 64 bits"),
        )
    };
    let total = header.file_len(header_len).ok_or_else(too_big)?;
    let image_len = header.image_len() as usize;
    // At least one image per chunk; a multiple of 10 so each chunk splits like the whole.
    let chunk = (CHUNK_BYTES / image_len.max(1)).div_ceil(10).max(1) * 10;
    // A chunk's decoded images, and its train and test parts copied out for writing.
    let per_chunk = chunk.min(n);
    crate::memory::ensure(
        format!(
            "packing {n} images of {c}x{h}x{w} pixels from {}",
            dir.display()
        ),
        crate::memory::product(&[per_chunk, image_len, 3]),
    )?;
    check_disk(out, total)?;

    let tmp = crate::fsutil::temp_path(out);
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| Error::io(out, "create", e))?;
        let data = PackHeader::data_start(header_len);
        let (train_at, test_at) = (data, data + header.train as u64 * image_len as u64);
        let mut hashes = [Sha256::new(), Sha256::new(), Sha256::new()];
        let (mut train_done, mut test_done) = (0u64, 0u64);
        let write = |bytes: &[u8], at: u64| {
            file.write_all_at(bytes, at)
                .map_err(|e| Error::io(out, "write", e))
        };
        let mut decoded = 0;
        // Reused for every chunk: growing fresh buffers cost more than the decoding (page
        // zeroing and copies on every reallocation).
        let (mut tr, mut te) = (
            Vec::with_capacity(per_chunk * image_len),
            Vec::with_capacity(per_chunk * image_len),
        );
        for (k, group) in files.chunks(chunk).enumerate() {
            let images: Vec<Vec<u8>> = group
                .par_iter()
                .map(|f| read_image(f).map(|img| image_to_pixels(&img, shape)))
                .collect::<Result<_>>()?;
            tr.clear();
            te.clear();
            for (j, img) in images.iter().enumerate() {
                let i = k * chunk + j;
                // Below 10 images every image is in both splits (image_dir::split).
                if n < 10 || i % 10 != 9 {
                    tr.extend_from_slice(img);
                }
                if n < 10 || i % 10 == 9 {
                    te.extend_from_slice(img);
                }
            }
            write(&tr, train_at + train_done)?;
            write(&te, test_at + test_done)?;
            hashes[0].update(&tr);
            hashes[1].update(&te);
            train_done += tr.len() as u64;
            test_done += te.len() as u64;
            decoded += group.len();
            progress(decoded, n);
        }
        if let Some(l) = &labels {
            let mut ls: Vec<u8> = train_idx.iter().map(|&i| l[i]).collect();
            ls.extend(test_idx.iter().map(|&i| l[i]));
            write(&ls, test_at + test_done)?;
            hashes[2].update(&ls);
        }
        let mut all = Sha256::new();
        for h in hashes {
            all.update(h.finalize());
        }
        header.sha256 = hex(&all.finalize());
        let text = serde_json::to_vec(&header).expect("a header serialises");
        assert_eq!(text.len() as u64, header_len, "the header changed length");
        let mut head = MAGIC.to_vec();
        head.extend_from_slice(&header_len.to_le_bytes());
        head.extend_from_slice(&text);
        write(&head, 0)?;
        file.set_len(total)
            .map_err(|e| Error::io(out, "write", e))?;
        file.sync_all().map_err(|e| Error::io(out, "sync", e))?;
        std::fs::rename(&tmp, out).map_err(|e| Error::io(out, "rename", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    Ok(PackInfo {
        header,
        bytes: total,
    })
}

/// Refuses to write `bytes` to `out` when its file system has less free space.
fn check_disk(out: &Path, bytes: u64) -> Result<()> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(free) = crate::fsutil::free_space(parent) else {
        return Ok(());
    };
    if bytes > free {
        return Err(Error::Refused {
            path: out.to_path_buf(),
            msg: format!(
                "the pack needs {} of disk, but its file system has {} free",
                crate::memory::human(u128::from(bytes)),
                crate::memory::human(u128::from(free))
            ),
        });
    }
    Ok(())
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

/// What [`cached`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheEvent {
    /// The folder's pack in the cache was up to date.
    Reused(PathBuf),
    /// A pack is being made (the folder is new to the cache, or changed since).
    Packing {
        /// The pack being written.
        path: PathBuf,
        /// Images to decode.
        images: usize,
    },
    /// `done` of the images decoded.
    Progress {
        /// Decoded so far.
        done: usize,
        /// In all.
        total: usize,
    },
    /// The pack is written.
    Packed(PathBuf),
    /// The cache could not be written, so the folder was decoded into memory instead.
    NoCache(String),
}

/// The cache file of `dir`'s pack at `shape`: named by the folder's canonical path and the
/// shape, so each folder (and size) has one pack, replaced when the folder changes.
pub fn cache_path(dir: &Path, shape: [usize; 3]) -> PathBuf {
    cache_path_in(&super::cache_dir(), dir, shape)
}

fn cache_path_in(cache: &Path, dir: &Path, shape: [usize; 3]) -> PathBuf {
    let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut h = Sha256::new();
    h.update(canon.as_os_str().as_encoded_bytes());
    h.update(format!("{shape:?}"));
    let name = format!("{}.{EXTENSION}", &hex(&h.finalize())[..20]);
    cache.join("packs").join(name)
}

/// `dir` as a dataset at `shape`, through its pack in genlab's cache: reused when the folder's
/// fingerprint and the shape match, otherwise (re)built first. A cached pack that fails its checks
/// is rebuilt (it is genlab's own file); a cache that cannot be written falls back to decoding
/// into memory ([`image_dir::load`]), said by [`CacheEvent::NoCache`].
pub fn cached(
    dir: &Path,
    shape: [usize; 3],
    events: &mut dyn FnMut(CacheEvent),
) -> Result<Dataset> {
    cached_in(&super::cache_dir(), dir, shape, events)
}

/// [`cached`] with the cache folder given.
fn cached_in(
    cache: &Path,
    dir: &Path,
    shape: [usize; 3],
    events: &mut dyn FnMut(CacheEvent),
) -> Result<Dataset> {
    let path = cache_path_in(cache, dir, shape);
    let fp = fingerprint(dir)?;
    let name = dir.display().to_string();
    if let Ok((h, _)) = read_header(&path)
        && h.fingerprint == fp
        && h.shape == shape
        && let Ok(mut d) = open(&path)
    {
        events(CacheEvent::Reused(path));
        d.name = name;
        return Ok(d);
    }
    let folder = path.parent().expect("cache_path has a parent");
    if let Err(e) = std::fs::create_dir_all(folder) {
        events(CacheEvent::NoCache(format!(
            "{}: {e}",
            crate::error::clean(&folder.display().to_string())
        )));
        return image_dir::load(dir, shape);
    }
    remove_dead_temps(folder);
    let images = image_dir::image_files(dir)?.len();
    events(CacheEvent::Packing {
        path: path.clone(),
        images,
    });
    let made = pack_folder(dir, shape, &path, &mut |done, total| {
        events(CacheEvent::Progress { done, total })
    });
    match made {
        Ok(_) => {}
        // The cache's file system refused (read-only, full): train from memory instead.
        Err(e @ (Error::Io { .. } | Error::Refused { .. })) if !path.exists() => {
            events(CacheEvent::NoCache(e.to_string()));
            return image_dir::load(dir, shape);
        }
        Err(e) => return Err(e),
    }
    events(CacheEvent::Packed(path.clone()));
    let mut d = open(&path)?;
    d.name = name;
    Ok(d)
}

/// Deletes temporary packs in the cache folder left by processes that are gone (a `pack` killed
/// midway); a live packer's file (its pid still running) is left alone.
fn remove_dead_temps(folder: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = crate::fsutil::temp_pid(&name)
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of `n` distinct 5x4 RGB images in two class sub-folders.
    fn folder(n: usize) -> tempfile::TempDir {
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
    fn a_pack_holds_exactly_what_decoding_the_folder_gives() {
        for n in [3, 10, 27] {
            let dir = folder(n);
            let out = tempfile::tempdir().expect("tempdir");
            let p = out.path().join("x.glpack");
            let mut calls = Vec::new();
            let info = pack_folder(dir.path(), [3, 4, 4], &p, &mut |d, t| calls.push((d, t)))
                .expect("pack");
            assert_eq!(calls.last(), Some(&(n, n)));
            assert_eq!(info.bytes, std::fs::metadata(&p).expect("meta").len());
            let packed = open(&p).expect("open");
            let oracle = image_dir::load(dir.path(), [3, 4, 4]).expect("load");
            assert!(packed.train.pixels.is_mapped());
            assert_eq!(packed.train.pixels, oracle.train.pixels, "n = {n}");
            assert_eq!(packed.test.pixels, oracle.test.pixels, "n = {n}");
            assert_eq!(packed.train.labels, oracle.train.labels);
            assert_eq!(packed.test.labels, oracle.test.labels);
            assert_eq!(packed.classes, vec!["a".to_string(), "b".to_string()]);
            assert_eq!(verify(&p).expect("verify").train, oracle.train.len());
        }
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

    #[test]
    fn the_cache_reuses_an_unchanged_folder_and_rebuilds_a_changed_one() {
        let dir = folder(11);
        let cache = tempfile::tempdir().expect("tempdir");
        let cached =
            |d: &Path, s, ev: &mut dyn FnMut(CacheEvent)| cached_in(cache.path(), d, s, ev);
        let mut seen = Vec::new();
        let d = cached(dir.path(), [1, 4, 4], &mut |e| seen.push(e)).expect("first");
        assert!(
            matches!(seen[0], CacheEvent::Packing { images: 11, .. }),
            "{seen:?}"
        );
        assert_eq!(d.train.len() + d.test.len(), 11);
        seen.clear();
        cached(dir.path(), [1, 4, 4], &mut |e| seen.push(e)).expect("again");
        assert!(matches!(seen[..], [CacheEvent::Reused(_)]), "{seen:?}");
        // Another size is another pack.
        seen.clear();
        cached(dir.path(), [1, 2, 2], &mut |e| seen.push(e)).expect("other shape");
        assert!(matches!(seen[0], CacheEvent::Packing { .. }), "{seen:?}");
        // A new image: rebuilt, and the new image is in it.
        image::GrayImage::from_pixel(4, 4, image::Luma([200]))
            .save(dir.path().join("a/999.png"))
            .expect("save");
        seen.clear();
        let d = cached(dir.path(), [1, 4, 4], &mut |e| seen.push(e)).expect("changed");
        assert!(
            matches!(seen[0], CacheEvent::Packing { images: 12, .. }),
            "{seen:?}"
        );
        assert_eq!(d.train.len() + d.test.len(), 12);
        // A damaged cache file is genlab's own: rebuilt, not an error.
        let p = cache_path_in(cache.path(), dir.path(), [1, 4, 4]);
        let len = std::fs::metadata(&p).expect("meta").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(len - 1))
            .expect("truncate");
        seen.clear();
        cached(dir.path(), [1, 4, 4], &mut |e| seen.push(e)).expect("rebuilt");
        assert!(matches!(seen[0], CacheEvent::Packing { .. }), "{seen:?}");
    }
}
