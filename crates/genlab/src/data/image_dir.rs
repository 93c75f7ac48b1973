//! A folder of images (PNG, JPEG or BMP, detected by content) as a dataset. Files are taken in
//! sorted path order, recursing into sub-folders; hidden files are skipped. Every image is
//! centre-cropped and resized to one `[c, h, w]`. Image `i` goes to the test split when
//! `i % 10 == 9` (as for `mnist-10k`); a folder of fewer than 10 images is used for both splits.
//! When every image lies in a first-level sub-folder (`photos/cat/*.jpg`, `photos/dog/*.jpg`),
//! the sub-folders are the classes, in name order. Training reads a folder through its pack
//! ([`super::pack`]); [`load`] decodes it into memory.

use std::path::{Path, PathBuf};

use super::{Dataset, ImageSet};
use crate::error::{Error, Result};
use crate::image_io::{image_to_pixels, read_image};

/// Shape used for folders when none is given: 32x32 RGB, the DCGAN/CIFAR size.
pub const DEFAULT_SHAPE: [usize; 3] = [3, 32, 32];

/// All non-hidden regular files under `dir` (links followed), sorted. Each folder is listed once
/// however many links lead to it, so a link cycle ends; pipes, sockets and devices are skipped
/// (reading one could block forever).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    if let Ok(c) = std::fs::canonicalize(dir) {
        seen.insert(c);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Error::io(&d, "list folder", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&d, "list folder", e))?;
            let p = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            // A broken link has no metadata: skipped like any other non-file.
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                if std::fs::canonicalize(&p).is_ok_and(|c| seen.insert(c)) {
                    stack.push(p);
                }
            } else if meta.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The images of an image folder: every non-hidden file under `folder`, sub-folders included,
/// sorted by path, that is a PNG, JPEG or BMP by its first bytes (whatever its name says); other
/// files (a README, a thumbnail database) are skipped. An error if there are none, naming a
/// skipped file if there was one. This is what "a folder of images" means everywhere in genlab:
/// datasets, super-resolution photos and test sets, `genlab upscale DIR`. A file that looks like
/// an image but does not decode is an error when it is read.
pub fn image_files(folder: &Path) -> Result<Vec<PathBuf>> {
    if !folder.is_dir() {
        return Err(Error::DatasetNotFound {
            name: folder.display().to_string(),
            msg: "not a folder".into(),
        });
    }
    let (images, others): (Vec<PathBuf>, Vec<PathBuf>) =
        list_files(folder)?.into_iter().partition(|p| is_image(p));
    if images.is_empty() {
        let skipped = match others.first() {
            Some(f) => format!(
                " ({} other file(s) skipped, e.g. {})",
                others.len(),
                f.display()
            ),
            None => String::new(),
        };
        return Err(Error::DatasetNotFound {
            name: folder.display().to_string(),
            msg: format!("folder has no image files (expected PNG, JPEG or BMP){skipped}"),
        });
    }
    Ok(images)
}

/// Whether `path` starts like a PNG, JPEG or BMP file.
fn is_image(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .ok()
        .and_then(|n| image::guess_format(&head[..n]).ok())
        .is_some_and(|f| {
            matches!(
                f,
                image::ImageFormat::Png | image::ImageFormat::Jpeg | image::ImageFormat::Bmp
            )
        })
}

/// Loads every image under `dir` as `shape` (`[1|3, h, w]`).
pub fn load(dir: &Path, shape: [usize; 3]) -> Result<Dataset> {
    if !matches!(shape[0], 1 | 3) || shape[1] == 0 || shape[2] == 0 {
        return Err(Error::config(
            "image shape",
            format!("{shape:?}"),
            "[1 or 3 channels, height > 0, width > 0]",
        ));
    }
    let files = image_files(dir)?;
    // Decoded pixels, and the train/test copies made from them.
    crate::memory::ensure(
        format!(
            "{} images of {}x{}x{} pixels from {}",
            files.len(),
            shape[0],
            shape[1],
            shape[2],
            dir.display()
        ),
        2 * crate::memory::product(&[files.len(), shape[0], shape[1], shape[2]]),
    )?;
    let mut pixels = Vec::with_capacity(files.len() * shape.iter().product::<usize>());
    for f in &files {
        pixels.extend(image_to_pixels(&read_image(f)?, shape));
    }
    let (classes, labels) = folder_classes(dir, &files);
    let all = ImageSet::new(pixels, labels, shape)?;
    let (train, test) = split(all.len());
    Ok(Dataset {
        name: dir.display().to_string(),
        train: all.select(&train),
        test: all.select(&test),
        classes,
    })
}

/// The train and test indices of a folder of `n` images: every tenth image (`i % 10 == 9`) is a
/// test image; with fewer than 10, all of them are both.
pub fn split(n: usize) -> (Vec<usize>, Vec<usize>) {
    if n < 10 {
        return ((0..n).collect(), (0..n).collect());
    }
    let (test, train) = (0..n).partition(|i| i % 10 == 9);
    (train, test)
}

/// The most classes a folder's sub-folders can be: labels are bytes.
pub const MAX_CLASSES: usize = 256;

/// The class of each of `files` (sorted, all under `dir`) from its first-level sub-folder, and
/// the class names in name order: only when every file lies in such a sub-folder and there are
/// 2 to [`MAX_CLASSES`] of them; otherwise the folder is unlabelled (`(vec![], None)`).
pub fn folder_classes(dir: &Path, files: &[PathBuf]) -> (Vec<String>, Option<Vec<u8>>) {
    let mut top = Vec::with_capacity(files.len());
    for f in files {
        let Ok(rel) = f.strip_prefix(dir) else {
            return (Vec::new(), None);
        };
        let mut parts = rel.components();
        match (parts.next(), parts.next()) {
            (Some(class), Some(_)) => top.push(class.as_os_str().to_string_lossy().into_owned()),
            _ => return (Vec::new(), None),
        }
    }
    let mut names = top.clone();
    names.sort();
    names.dedup();
    if !(2..=MAX_CLASSES).contains(&names.len()) {
        return (Vec::new(), None);
    }
    let labels = top
        .iter()
        .map(|t| names.binary_search(t).map_or(0, |i| i as u8))
        .collect();
    (names, Some(labels))
}

/// Loads every image under `dir` as it is, with no resizing: each must be `shape[1] x shape[2]`
/// pixels, and grey when `shape[0]` is 1 (an RGB file whose three channels are equal counts as
/// grey, as written by `torchvision.utils.save_image`) or colour when it is 3. What `genlab eval
/// --samples` scores, so that a wrong-sized folder is an error rather than a silent resize.
/// When every image sits in a sub-folder, the sub-folders are classes (as for training): the
/// set is labelled and their names are returned, else the names are empty.
pub fn load_exact(dir: &Path, shape: [usize; 3]) -> Result<(ImageSet, Vec<String>)> {
    let files = image_files(dir)?;
    let [c, h, w] = shape;
    crate::memory::ensure(
        format!(
            "{} images of {c}x{h}x{w} pixels from {}",
            files.len(),
            dir.display()
        ),
        crate::memory::product(&[files.len(), c, h, w]),
    )?;
    let mut pixels = Vec::with_capacity(files.len() * c * h * w);
    for f in &files {
        let img = read_image(f)?;
        let bad = |msg: String| Error::Image {
            path: f.clone(),
            msg,
        };
        if (img.width() as usize, img.height() as usize) != (w, h) {
            return Err(bad(format!(
                "image is {}x{}, expected {w}x{h} (the size the model and classifier work at)",
                img.width(),
                img.height()
            )));
        }
        let rgb = img.to_rgb8();
        let grey = rgb.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]);
        match (c, grey) {
            (1, false) => {
                return Err(bad("colour image, expected grey (1 channel) images".into()));
            }
            (1, true) => pixels.extend(rgb.pixels().map(|p| p.0[0])),
            _ => {
                if !img.color().has_color() {
                    return Err(bad("grey image, expected colour (3 channel) images".into()));
                }
                // Planar [3, h, w].
                for ch in 0..3 {
                    pixels.extend(rgb.pixels().map(|p| p.0[ch]));
                }
            }
        }
    }
    let (classes, labels) = folder_classes(dir, &files);
    Ok((ImageSet::new(pixels, labels, shape)?, classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mixed_formats_by_content_and_skips_other_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = image::RgbImage::from_pixel(8, 6, image::Rgb([200, 100, 50]));
        // A JPEG saved under a .bmp name must still be read.
        img.save_with_format(dir.path().join("a.bmp"), image::ImageFormat::Jpeg)
            .expect("save jpeg");
        img.save_with_format(dir.path().join("b.png"), image::ImageFormat::Png)
            .expect("save png");
        let d = load(dir.path(), [1, 4, 4]).expect("two images load");
        assert_eq!(d.train.len(), 2);
        assert_eq!(d.train.shape, [1, 4, 4]);
        std::fs::write(dir.path().join("c.txt"), "text").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        img.save_with_format(dir.path().join("sub/d.png"), image::ImageFormat::Png)
            .expect("save png");
        let d = load(dir.path(), [1, 4, 4]).expect("images load, the text file is skipped");
        assert_eq!(d.train.len(), 3);
        let only_text = tempfile::tempdir().expect("tempdir");
        std::fs::write(only_text.path().join("c.txt"), "text").expect("write");
        let err = load(only_text.path(), [1, 4, 4]).unwrap_err().to_string();
        assert!(
            err.contains("no image files") && err.contains("c.txt"),
            "{err}"
        );
    }

    #[test]
    fn sub_folders_are_classes_only_when_every_image_is_in_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = image::GrayImage::from_pixel(4, 4, image::Luma([9]));
        for (sub, n) in [("dog", 2), ("cat", 3)] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
            for i in 0..n {
                img.save(dir.path().join(sub).join(format!("{i}.png")))
                    .expect("save");
            }
        }
        let d = load(dir.path(), [1, 4, 4]).expect("loads");
        assert_eq!(d.classes, vec!["cat".to_string(), "dog".to_string()]);
        // Fewer than 10 images: both splits are all five, cat's three first (sorted paths).
        assert_eq!(d.train.labels, Some(vec![0, 0, 0, 1, 1]));
        img.save(dir.path().join("loose.png")).expect("save");
        let d = load(dir.path(), [1, 4, 4]).expect("loads");
        assert!(d.classes.is_empty() && d.train.labels.is_none());
    }

    #[test]
    fn split_holds_out_every_tenth_image() {
        let (train, test) = split(25);
        assert_eq!(test, vec![9, 19]);
        assert_eq!(train.len(), 23);
        assert_eq!(split(3), (vec![0, 1, 2], vec![0, 1, 2]));
    }

    #[test]
    fn empty_folder_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load(dir.path(), DEFAULT_SHAPE).unwrap_err().to_string();
        assert!(err.contains("no image files"), "{err}");
    }
}
