//! 8-bit pixels as network values.

use crate::simd::simd;

/// A pixel as a network value: `p / 255`, in `[0, 1]`.
#[inline(always)]
pub fn unit_from_u8(p: u8) -> f32 {
    f32::from(p) / 255.0
}

/// [`unit_from_u8`] of each of `pixels`, written into `out` (the shorter of the two sets the
/// length). Every batch of a training step goes through it: as a plain loop in the portable
/// build it was 1-2% of a W1 step, the division four values at a time; with the CPU's widest
/// vectors it is a quarter of that (BENCHMARKS.md, issue 22). The same division, so the same
/// bits.
pub fn units_from_u8(pixels: &[u8], out: &mut [f32]) {
    simd(
        #[inline(always)]
        || convert(pixels, out),
    )
}

/// The loop of [`units_from_u8`], inlined into whichever SIMD-dispatched function calls it.
#[inline(always)]
fn convert(pixels: &[u8], out: &mut [f32]) {
    for (o, &p) in out.iter_mut().zip(pixels) {
        *o = unit_from_u8(p);
    }
}

/// [`units_from_u8`] of the images at `indices` of `images` (`image_len` pixels each), one after
/// another into `out` (`indices.len() * image_len` values): a training batch. The images of a
/// batch lie at random places in the dataset, mostly out of cache, so each image's cache lines
/// are prefetched while the one before it is converted: in a microbenchmark of 128 MNIST images
/// from a cold 7.8 MB set this halved the time (BENCHMARKS.md, issue 22).
///
/// # Panics
/// When an index is past the last image or `out` is shorter than the batch.
pub fn gather_units_from_u8(images: &[u8], image_len: usize, indices: &[usize], out: &mut [f32]) {
    assert!(
        out.len() >= indices.len() * image_len,
        "gather_units_from_u8: output too short"
    );
    let image = |i: usize| &images[i * image_len..(i + 1) * image_len];
    simd(
        #[inline(always)]
        || {
            for (k, &i) in indices.iter().enumerate() {
                if let Some(&next) = indices.get(k + 1) {
                    prefetch(image(next));
                }
                convert(image(i), &mut out[k * image_len..(k + 1) * image_len]);
            }
        },
    )
}

/// Asks the CPU to bring `bytes` into cache, one request per 64-byte line (a hint: nothing is
/// read, and nothing happens on other architectures).
#[inline(always)]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch reads no memory architecturally and never faults; the address is
        // inside `bytes` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pixel value, at every position of a vector and in the scalar tail, is exactly
    /// `p / 255` computed in f64 and rounded once to f32 (division is correctly rounded, so
    /// the f32 quotient must equal it).
    #[test]
    fn every_value_is_the_rounded_quotient() {
        let pixels: Vec<u8> = (0..1000).map(|i| (i * 37 % 256) as u8).collect();
        let mut out = vec![f32::NAN; pixels.len()];
        units_from_u8(&pixels, &mut out);
        for (&p, &v) in pixels.iter().zip(&out) {
            assert_eq!(
                v.to_bits(),
                ((p as f64 / 255.0) as f32).to_bits(),
                "pixel {p}"
            );
        }
        assert_eq!((out[0], unit_from_u8(255)), (0.0, 1.0));
    }

    /// A gathered batch is each indexed image converted in turn, repeats and all.
    #[test]
    fn a_gathered_batch_is_its_images_in_order() {
        let (len, images) = (
            70,
            (0..700).map(|i| (i * 13 % 256) as u8).collect::<Vec<u8>>(),
        );
        let indices = [9, 0, 3, 3, 7];
        let mut out = vec![f32::NAN; indices.len() * len];
        gather_units_from_u8(&images, len, &indices, &mut out);
        for (k, &i) in indices.iter().enumerate() {
            let mut want = vec![0f32; len];
            units_from_u8(&images[i * len..(i + 1) * len], &mut want);
            assert_eq!(&out[k * len..(k + 1) * len], &want[..], "image {k}");
        }
    }
}
