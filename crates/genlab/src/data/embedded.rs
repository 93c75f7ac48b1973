//! `mnist-10k`: MNIST's 10,000-image **test** set (LeCun, Cortes, Burges; CC BY-SA 3.0), shipped
//! inside the library so genlab trains on a fresh machine with no network. It is split
//! deterministically into 9,000 training and 1,000 test images: image `i` is a test image when
//! `i % 10 == 9`. The rule needs no RNG, so the split never changes, and it draws test images
//! evenly from both halves of the file (the first 5,000 digits were written by Census employees,
//! the last 5,000 by students, and the halves differ in difficulty).

use std::io::Read;
use std::path::Path;

use super::{Dataset, ImageSet, idx};
use crate::error::{Error, Result};

const IMAGES_GZ: &[u8] = include_bytes!("../../data/t10k-images-idx3-ubyte.gz");
const LABELS_GZ: &[u8] = include_bytes!("../../data/t10k-labels-idx1-ubyte.gz");

fn gunzip(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| Error::format(name, format!("embedded gzip is corrupt: {e}")))?;
    Ok(out)
}

/// Loads the embedded `mnist-10k` dataset (9,000 train / 1,000 test, 28x28 grey, labelled).
pub fn mnist_10k() -> Result<Dataset> {
    let name = "<embedded mnist-10k images>";
    let images = idx::parse_idx(&gunzip(IMAGES_GZ, name)?, 3, Path::new(name))?;
    let lname = "<embedded mnist-10k labels>";
    let labels = idx::parse_idx(&gunzip(LABELS_GZ, lname)?, 1, Path::new(lname))?;
    let all = ImageSet::new(images.data, Some(labels.data), [1, 28, 28])?;
    let (test, train): (Vec<usize>, Vec<usize>) = (0..all.len()).partition(|i| i % 10 == 9);
    Ok(Dataset {
        name: "mnist-10k".into(),
        train: all.select(&train),
        test: all.select(&test),
        classes: super::class_names(&super::MNIST_CLASSES),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn split_is_9000_1000_and_stable() {
        let d = super::mnist_10k().expect("embedded data parses");
        assert_eq!(d.train.len(), 9000);
        assert_eq!(d.test.len(), 1000);
        assert_eq!(d.train.shape, [1, 28, 28]);
        // MNIST test labels start 7 2 1 0 4 1 4 9 5 9: index 9 (a 9) is the first test image.
        assert_eq!(d.test.labels.as_ref().map(|l| l[0]), Some(9));
        assert_eq!(
            d.train.labels.as_ref().map(|l| l[..3].to_vec()),
            Some(vec![7, 2, 1])
        );
    }
}
