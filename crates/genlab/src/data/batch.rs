//! Images and labels of an [`ImageSet`] as the tensors a step trains on.

use burn::prelude::*;

use super::ImageSet;
use crate::error::{Error, Result};
use crate::image_io::unit_from_u8;
use genlab_kernels::pointwise::gather_units_from_u8;

/// Builds a `[b, c, h, w]` float tensor in `[0, 1]` from the images of `set` at `indices`.
pub fn batch_tensor(set: &ImageSet, indices: &[usize], device: &Device) -> Tensor<4> {
    let [c, h, w] = set.shape;
    let mut buf = vec![0f32; indices.len() * c * h * w];
    gather_units_from_u8(&set.pixels, set.image_len(), indices, &mut buf);
    Tensor::from_data(TensorData::new(buf, [indices.len(), c, h, w]), device)
}

/// [`batch_tensor`] with each image translated by `(dy, dx)` pixels (from `shifts`, one per
/// image), the vacated border filled with 0: the classifier's augmentation.
pub fn shifted_batch_tensor(
    set: &ImageSet,
    indices: &[usize],
    shifts: &[(isize, isize)],
    device: &Device,
) -> Tensor<4> {
    let [c, h, w] = set.shape;
    let mut buf = vec![0f32; indices.len() * c * h * w];
    for (k, (&i, &(dy, dx))) in indices.iter().zip(shifts).enumerate() {
        let img = set.image(i);
        let out = &mut buf[k * c * h * w..(k + 1) * c * h * w];
        for ch in 0..c {
            for y in 0..h {
                let sy = y as isize - dy;
                if sy < 0 || sy >= h as isize {
                    continue;
                }
                for x in 0..w {
                    let sx = x as isize - dx;
                    if sx >= 0 && sx < w as isize {
                        out[(ch * h + y) * w + x] =
                            unit_from_u8(img[(ch * h + sy as usize) * w + sx as usize]);
                    }
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(buf, [indices.len(), c, h, w]), device)
}

/// The labels of `set` at `indices` as an int tensor `[b]`, or an error naming the problem.
pub fn labels_tensor(set: &ImageSet, indices: &[usize], device: &Device) -> Result<Tensor<1, Int>> {
    let labels = set.labels.as_ref().ok_or_else(|| {
        Error::Unsupported(
            "this dataset has no class labels (an image folder?); the classifier needs a labelled dataset such as mnist or fashion-mnist".into(),
        )
    })?;
    let v: Vec<i64> = indices.iter().map(|&i| i64::from(labels[i])).collect();
    Ok(Tensor::from_data(
        TensorData::new(v, [indices.len()]),
        device,
    ))
}

/// One-hot rows for `labels` (each below `classes`): the form a conditional model reads a
/// class in.
///
/// # Shapes
/// `b labels -> [b, classes]`
pub fn one_hot(labels: &[usize], classes: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0f32; labels.len() * classes];
    for (row, &k) in labels.iter().enumerate() {
        debug_assert!(k < classes, "label {k} of {classes} classes");
        v[row * classes + k] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), classes]), device)
}

/// The labels of `set` at `indices`, each checked to be below `classes`: what a conditional
/// family trains on. A set without labels, or a label its model has no class for, is an error.
pub fn batch_labels(set: &ImageSet, indices: &[usize], classes: usize) -> Result<Vec<usize>> {
    let labels = set.labels.as_ref().ok_or_else(|| {
        Error::Unsupported(
            "this dataset has no class labels; a conditional model (cvae, cgan) needs a labelled dataset: mnist-10k, mnist, fashion-mnist, cifar10, or a folder whose images sit in one sub-folder per class".into(),
        )
    })?;
    indices
        .iter()
        .map(|&i| {
            let k = usize::from(labels[i]);
            if k < classes {
                Ok(k)
            } else {
                Err(Error::Unsupported(format!(
                    "image {i} has label {k}, but the model knows {classes} classes"
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_hot_rows() {
        let d = Device::flex();
        let v = one_hot(&[2, 0], 3, &d)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        assert_eq!(v, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        let set = ImageSet::new(vec![0; 4 * 3], Some(vec![1, 0, 2, 1]), [1, 1, 3]).expect("set");
        assert_eq!(batch_labels(&set, &[3, 1], 3).expect("labels"), vec![1, 0]);
        assert!(batch_labels(&set, &[2], 2).is_err());
        let unlabelled = ImageSet::new(vec![0; 3], None, [1, 1, 3]).expect("set");
        assert!(batch_labels(&unlabelled, &[0], 2).is_err());
    }

    use super::*;

    #[test]
    fn shifted_batch_moves_pixels_and_zero_fills() {
        // One 1x3x3 image 1..9 (as u8 * 25), shifted down 1 and left 1.
        let px: Vec<u8> = (1..=9).map(|v| v * 25).collect();
        let set = ImageSet::new(px, None, [1, 3, 3]).expect("set");
        let d = Device::flex();
        let t = shifted_batch_tensor(&set, &[0], &[(1, -1)], &d);
        let v: Vec<u8> = t
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32")
            .iter()
            .map(|p| (p * 255.0).round() as u8)
            .collect();
        assert_eq!(v, vec![0, 0, 0, 50, 75, 0, 125, 150, 0]);
        let same = shifted_batch_tensor(&set, &[0], &[(0, 0)], &d);
        assert_eq!(same.into_data(), batch_tensor(&set, &[0], &d).into_data());
    }
}
