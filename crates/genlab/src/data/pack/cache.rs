//! The pack cache: a folder's pack in `~/.cache/genlab/packs/`, reused while the folder is
//! unchanged and rebuilt when it changes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{EXTENSION, hex, open, read_header};
use crate::data::{Dataset, image_dir};
use crate::error::{Error, Result};

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
    cache_path_in(&crate::data::cache_dir(), dir, shape)
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
    cached_in(&crate::data::cache_dir(), dir, shape, events)
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
    let files = image_dir::image_files(dir)?;
    events(CacheEvent::Packing {
        path: path.clone(),
        images: files.len(),
    });
    let made = super::write::pack_files(dir, &files, fp, shape, &path, &mut |done, total| {
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
    use super::super::tests::folder;
    use super::*;

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
