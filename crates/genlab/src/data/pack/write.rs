//! Writing a pack: a folder's images decoded in parallel, in chunks, to a temporary file that is
//! renamed into place.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{MAGIC, PackHeader, hex};
use crate::data::image_dir;
use crate::error::{Error, Result};
use crate::image_io::{image_to_pixels, read_image};

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
    let fingerprint = super::fingerprint(dir)?;
    let files = image_dir::image_files(dir)?;
    pack_files(dir, &files, fingerprint, shape, out, progress)
}

/// [`pack_folder`] of `files`, the image files of `dir` (sorted, as [`image_dir::image_files`]
/// lists them), listed when the folder had `fingerprint`: for a caller that has listed them
/// already.
pub(super) fn pack_files(
    dir: &Path,
    files: &[std::path::PathBuf],
    fingerprint: String,
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
    let n = files.len();
    let (classes, labels) = image_dir::folder_classes(dir, files);
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
    let Some(free) = free_space(parent) else {
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

/// Free bytes for an unprivileged writer on the file system holding `path`, if it can be told.
fn free_space(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a NUL-terminated path and `st` a properly sized, writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    // Both are u64 on 64-bit Linux, narrower on some other platforms.
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::super::tests::folder;
    use super::super::{open, verify};
    use super::*;

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
}
