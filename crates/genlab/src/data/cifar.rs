//! CIFAR-10, binary version (Krizhevsky 2009, <https://www.cs.toronto.edu/~kriz/cifar.html>):
//! `data_batch_1.bin` .. `data_batch_5.bin` and `test_batch.bin`, each a run of 3,073-byte
//! records: one label byte, then 1,024 red, 1,024 green and 1,024 blue bytes of a 32x32 image.

use std::path::{Path, PathBuf};

use super::{Dataset, ImageSet};
use crate::error::{Error, Result};

const RECORD: usize = 1 + 3 * 32 * 32;

/// Parses one CIFAR-10 batch file's bytes into `(pixels [n,3,32,32], labels)`.
pub fn parse_batch(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::format(
            path,
            format!(
                "CIFAR-10 batch must be a whole number of {RECORD}-byte records, file has {} bytes",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / RECORD;
    let mut pixels = Vec::with_capacity(n * (RECORD - 1));
    let mut labels = Vec::with_capacity(n);
    for rec in bytes.chunks_exact(RECORD) {
        if rec[0] > 9 {
            return Err(Error::format(
                path,
                format!("CIFAR-10 label {} out of range 0..=9", rec[0]),
            ));
        }
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok((pixels, labels))
}

fn read_batches(dir: &Path, names: &[String]) -> Result<ImageSet> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for name in names {
        let p = dir.join(name);
        let bytes = crate::fsutil::read_capped(&p, u64::MAX)?;
        let (px, lb) = parse_batch(&bytes, &p)?;
        pixels.extend(px);
        labels.extend(lb);
    }
    ImageSet::new(pixels, Some(labels), [3, 32, 32])
}

/// Loads CIFAR-10 from the first root that holds `data_batch_1.bin` (directly or in
/// `cifar-10-batches-bin/`).
pub fn load(roots: &[PathBuf]) -> Result<Dataset> {
    let dir = roots
        .iter()
        .flat_map(|r| [r.clone(), r.join("cifar-10-batches-bin")])
        .find(|d| d.join("data_batch_1.bin").is_file())
        .ok_or_else(|| Error::DatasetNotFound {
            name: "cifar10".into(),
            msg: format!(
                "no data_batch_1.bin (binary version) in {}; run `genlab data fetch cifar10`",
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
    let train: Vec<String> = (1..=5).map(|i| format!("data_batch_{i}.bin")).collect();
    Ok(Dataset {
        name: "cifar10".into(),
        train: read_batches(&dir, &train)?,
        test: read_batches(&dir, &["test_batch.bin".to_string()])?,
        classes: super::class_names(&super::CIFAR10_CLASSES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_rejects_partial() {
        let mut b = vec![3u8];
        b.extend((0..3072).map(|i| (i % 251) as u8));
        let (px, lb) = parse_batch(&b, Path::new("b")).expect("one record");
        assert_eq!(lb, vec![3]);
        assert_eq!(px.len(), 3072);
        assert_eq!(px[1024], (1024 % 251) as u8);
        let err = parse_batch(&b[..100], Path::new("b"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("3073-byte records"), "{err}");
    }
}
