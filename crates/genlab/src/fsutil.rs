//! Atomic file writes: a temporary file in the same folder, fsynced, then renamed over the target,
//! so a process killed at any moment leaves either the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary name used while `path` is being written (same folder, so rename is atomic).
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(path, "create", e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io(path, "write", e))?;
        f.sync_all().map_err(|e| Error::io(path, "sync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, "rename", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates a folder and its parents, with the path in the error.
pub fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io(path, "create folder", e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.txt");
        super::write_atomic(&p, b"one").expect("write");
        super::write_atomic(&p, b"two").expect("overwrite");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let n = std::fs::read_dir(dir.path()).expect("ls").count();
        assert_eq!(n, 1);
    }

    #[test]
    fn missing_folder_is_an_error_naming_the_file() {
        let err = super::write_atomic(std::path::Path::new("/nonexistent-dir/x.png"), b"x")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/nonexistent-dir/x.png: create"), "{err}");
    }
}
