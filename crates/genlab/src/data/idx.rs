//! The IDX format of MNIST and Fashion-MNIST (LeCun et al., <http://yann.lecun.com/exdb/mnist/>):
//! a big-endian header `0x00 0x00 type ndims`, then `ndims` u32 sizes, then the data. Files may be
//! gzip-compressed; compression is detected from the content (the gzip magic `1f 8b`), not the name.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The IDX type code for unsigned bytes, the only one MNIST-style datasets use.
const TYPE_U8: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes of each dimension, outermost first.
    pub dims: Vec<usize>,
    /// Row-major data, `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// Reads a whole file, gunzipping it when its content starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = crate::fsutil::read_capped(path, u64::MAX)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        // A small file can inflate without bound: stop at the memory available.
        let limit = crate::memory::limit_bytes();
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..])
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("corrupt gzip stream: {e}")))?;
        if out.len() as u64 > limit {
            return Err(Error::Memory {
                what: format!("unpacking {}", path.display()),
                need: format!("more than {}", crate::memory::human(u128::from(limit))),
                limit: crate::memory::human(u128::from(limit)),
            });
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes, checking the magic number, the number of dimensions and the length.
/// `expected_ndims` is 3 for images and 1 for labels.
pub fn parse_idx(bytes: &[u8], expected_ndims: u8, path: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(Error::format(
            path,
            format!("file is {} bytes, too short for an IDX header", bytes.len()),
        ));
    }
    let expected_magic = u32::from_be_bytes([0, 0, TYPE_U8, expected_ndims]);
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != expected_magic {
        return Err(Error::format(
            path,
            format!("expected IDX magic 0x{expected_magic:08x}, found 0x{magic:08x}"),
        ));
    }
    let ndims = usize::from(expected_ndims);
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(Error::format(
            path,
            format!(
                "truncated IDX header: need {header} bytes, file has {}",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::format(path, format!("IDX dimensions {dims:?} overflow")))?;
    let have = bytes.len() - header;
    if have != count {
        return Err(Error::format(
            path,
            format!(
                "IDX dimensions {dims:?} need {count} data bytes, file has {have} ({})",
                if have < count {
                    "truncated"
                } else {
                    "trailing data"
                }
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an IDX image file (`[n, rows, cols]`, u8) from disk.
pub fn read_images(path: &Path) -> Result<IdxArray> {
    parse_idx(&read_maybe_gz(path)?, 3, path)
}

/// Reads an IDX label file (`[n]`, u8) from disk.
pub fn read_labels(path: &Path) -> Result<IdxArray> {
    parse_idx(&read_maybe_gz(path)?, 1, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images_bytes(n: u32, h: u32, w: u32) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 3];
        for d in [n, h, w] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend((0..n * h * w).map(|i| (i % 256) as u8));
        b
    }

    #[test]
    fn parses_valid_images() {
        let a = parse_idx(&images_bytes(2, 3, 4), 3, Path::new("x")).expect("valid IDX");
        assert_eq!(a.dims, vec![2, 3, 4]);
        assert_eq!(a.data.len(), 24);
        assert_eq!(a.data[23], 23);
    }

    #[test]
    fn rejects_wrong_magic_with_both_values() {
        let mut b = images_bytes(1, 2, 2);
        b[3] = 1;
        let err = parse_idx(&b, 3, Path::new("f.idx"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "f.idx: expected IDX magic 0x00000803, found 0x00000801"
        );
    }

    #[test]
    fn rejects_truncated_and_trailing() {
        let b = images_bytes(2, 2, 2);
        let err = parse_idx(&b[..b.len() - 1], 3, Path::new("t"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        let mut long = b.clone();
        long.push(0);
        let err = parse_idx(&long, 3, Path::new("t")).unwrap_err().to_string();
        assert!(err.contains("trailing"), "{err}");
        let err = parse_idx(&b[..6], 3, Path::new("t"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated IDX header"), "{err}");
    }

    #[test]
    fn reads_real_mnist_labels_gz() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/t10k-labels-idx1-ubyte.gz");
        let a = read_labels(&p).expect("shipped labels parse");
        assert_eq!(a.dims, vec![10_000]);
        // The first test digits of MNIST are 7, 2, 1, 0, 4.
        assert_eq!(&a.data[..5], &[7, 2, 1, 0, 4]);
    }
}
