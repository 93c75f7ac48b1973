//! Where an [`super::ImageSet`]'s bytes live: in memory (a decoded dataset), or in a pack file
//! ([`super::pack`]), memory-mapped for random access (evaluation, grids) and read with positioned
//! reads for training batches ([`Pixels::read_at`]), so a dataset may be larger than memory.

use std::fs::File;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;

use memmap2::Mmap;

/// The bytes of an image set: owned, or a range of a pack file (mapped read-only).
#[derive(Debug, Clone)]
pub struct Pixels(Store);

#[derive(Debug, Clone)]
enum Store {
    Owned(Vec<u8>),
    Mapped {
        map: Arc<Mmap>,
        file: Arc<File>,
        start: usize,
        len: usize,
    },
}

impl Pixels {
    /// `len` bytes of `file` (mapped as `map`) from `start` (checked by the caller:
    /// [`super::pack`] validates the file's size against its header before mapping ranges of it).
    pub(crate) fn mapped(map: Arc<Mmap>, file: Arc<File>, start: usize, len: usize) -> Self {
        assert!(start + len <= map.len(), "pack range beyond the mapping");
        Pixels(Store::Mapped {
            map,
            file,
            start,
            len,
        })
    }

    /// `len` bytes from `start`: a narrower view of the same file, or a copy of owned bytes.
    pub fn slice(&self, start: usize, len: usize) -> Self {
        match &self.0 {
            Store::Owned(v) => Pixels(Store::Owned(v[start..start + len].to_vec())),
            Store::Mapped {
                map,
                file,
                start: s,
                len: l,
            } => {
                assert!(start + len <= *l, "slice beyond the pixels");
                Pixels(Store::Mapped {
                    map: map.clone(),
                    file: file.clone(),
                    start: s + start,
                    len,
                })
            }
        }
    }

    /// Whether the bytes are in a pack file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Store::Mapped { .. })
    }

    /// Tells the OS that `len` bytes at `offset` will be read soon, so it can start reading them
    /// from disk (all of a batch's images at once, rather than one at a time as each read
    /// blocks); a no-op for owned bytes. Advice only, so a failure is ignored.
    pub fn will_need(&self, offset: usize, len: usize) {
        if let Store::Mapped { file, start, .. } = &self.0 {
            // SAFETY: posix_fadvise reads nothing from memory; a bad range is an error code.
            let _ = unsafe {
                libc::posix_fadvise(
                    file.as_raw_fd(),
                    (start + offset) as libc::off_t,
                    len as libc::off_t,
                    libc::POSIX_FADV_WILLNEED,
                )
            };
        }
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`. From a pack this is a positioned read of
    /// the file, not of the mapping: the pages pass through the OS page cache without becoming
    /// part of this process's memory (touching a mapping would map them, and their neighbours,
    /// into it), so a training that streams through a pack larger than memory stays small.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> std::io::Result<()> {
        match &self.0 {
            Store::Owned(v) => {
                buf.copy_from_slice(&v[offset..offset + buf.len()]);
                Ok(())
            }
            Store::Mapped { file, start, .. } => file.read_exact_at(buf, (start + offset) as u64),
        }
    }
}

impl Deref for Pixels {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Store::Owned(v) => v,
            Store::Mapped {
                map, start, len, ..
            } => &map[*start..*start + *len],
        }
    }
}

impl From<Vec<u8>> for Pixels {
    fn from(v: Vec<u8>) -> Self {
        Pixels(Store::Owned(v))
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}
