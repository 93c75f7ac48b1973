//! Bicubic resizing that matches MATLAB's `imresize(I, scale, 'bicubic')`, the function the
//! super-resolution literature used to make its low-resolution inputs and its bicubic baseline.
//!
//! MATLAB's algorithm: the Keys cubic kernel with a = -0.5; when shrinking (scale < 1) the kernel
//! is stretched by 1/scale (antialiasing); output pixel `x` (1-based) samples input position
//! `u = x / scale + 0.5 (1 - 1 / scale)`; borders are mirrored (symmetric padding); weights are
//! normalised to sum to 1; the dimension with the smaller scale is resized first (rows first on a
//! tie). For `uint8` images MATLAB rounds and saturates after each dimension's pass, and so does
//! [`imresize_u8`]. The test below reproduces Set5's published MATLAB-made low-resolution inputs
//! from their high-resolution originals.

/// The Keys cubic convolution kernel (a = -0.5).
fn cubic(x: f64) -> f64 {
    let ax = x.abs();
    let ax2 = ax * ax;
    let ax3 = ax2 * ax;
    if ax <= 1.0 {
        1.5 * ax3 - 2.5 * ax2 + 1.0
    } else if ax <= 2.0 {
        -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    } else {
        0.0
    }
}

/// For each output index along one dimension: the input indices (0-based, mirrored into range)
/// and their normalised weights.
pub struct Contributions {
    /// Taps per output pixel.
    pub taps: usize,
    /// `[out_len * taps]` input indices.
    pub index: Vec<usize>,
    /// `[out_len * taps]` weights; each row sums to 1.
    pub weight: Vec<f64>,
}

/// MATLAB's `contributions(in_length, out_length, scale, @cubic, 4, antialiasing=true)`.
pub fn contributions(in_len: usize, out_len: usize, scale: f64) -> Contributions {
    let (kernel_width, kscale) = if scale < 1.0 {
        (4.0 / scale, scale)
    } else {
        (4.0, 1.0)
    };
    let taps = kernel_width.ceil() as usize + 2;
    let mut index = Vec::with_capacity(out_len * taps);
    let mut weight = Vec::with_capacity(out_len * taps);
    // Symmetric padding: ..., 1, 0, 0, 1, ..., n-1, n-1, n-2, ...
    let mirror = |i: i64| -> usize {
        let n = in_len as i64;
        let period = 2 * n;
        let m = i.rem_euclid(period);
        (if m < n { m } else { period - 1 - m }) as usize
    };
    for x in 1..=out_len {
        let u = x as f64 / scale + 0.5 * (1.0 - 1.0 / scale);
        let left = (u - kernel_width / 2.0).floor() as i64;
        let row: Vec<(i64, f64)> = (0..taps as i64)
            .map(|k| {
                let j = left + k; // 1-based input position
                let w = kscale * cubic(kscale * (u - j as f64));
                (j, w)
            })
            .collect();
        let sum: f64 = row.iter().map(|(_, w)| w).sum();
        for (j, w) in row {
            index.push(mirror(j - 1));
            weight.push(w / sum);
        }
    }
    Contributions {
        taps,
        index,
        weight,
    }
}

/// Resizes the height of a `[h, w]` plane to `out_h`: `[h, w] -> [out_h, w]`.
fn resize_rows(src: &[f64], h: usize, w: usize, out_h: usize, round_u8: bool) -> Vec<f64> {
    let c = contributions(h, out_h, out_h as f64 / h as f64);
    let mut out = vec![0.0; out_h * w];
    for (y, row) in out.chunks_exact_mut(w).enumerate() {
        for t in 0..c.taps {
            let (i, wt) = (c.index[y * c.taps + t], c.weight[y * c.taps + t]);
            for (o, v) in row.iter_mut().zip(&src[i * w..(i + 1) * w]) {
                *o += wt * v;
            }
        }
        if round_u8 {
            row.iter_mut()
                .for_each(|v| *v = v.round().clamp(0.0, 255.0));
        }
    }
    out
}

fn transpose(src: &[f64], h: usize, w: usize) -> Vec<f64> {
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            out[x * h + y] = src[y * w + x];
        }
    }
    out
}

/// Resizes a `[h, w]` plane of f64; `round_u8` rounds and saturates to [0, 255] after each
/// dimension's pass, as MATLAB does for `uint8` images.
fn resize_plane(
    src: &[f64],
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
    round_u8: bool,
) -> Vec<f64> {
    let height = |p: &[f64]| {
        if out_h == h {
            p.to_vec()
        } else {
            resize_rows(p, h, w, out_h, round_u8)
        }
    };
    let width = |p: &[f64], rows: usize| {
        if out_w == w {
            p.to_vec()
        } else {
            let t = resize_rows(&transpose(p, rows, w), w, rows, out_w, round_u8);
            transpose(&t, out_w, rows)
        }
    };
    // MATLAB resizes the dimension with the smaller scale first; rows on a tie.
    if out_h as f64 / h as f64 <= out_w as f64 / w as f64 {
        width(&height(src), out_h)
    } else {
        // width() pass on the original rows, then height on the widened plane.
        let p = width(src, h);
        if out_h == h {
            p
        } else {
            resize_rows(&p, h, out_w, out_h, round_u8)
        }
    }
}

/// Resizes an interleaved `u8` image (`[h, w, c]`) to `[out_h, out_w, c]` like MATLAB's
/// `imresize(uint8 image, [out_h out_w], 'bicubic')`.
pub fn imresize_u8(
    src: &[u8],
    h: usize,
    w: usize,
    c: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; out_h * out_w * c];
    for ch in 0..c {
        let plane: Vec<f64> = src
            .iter()
            .skip(ch)
            .step_by(c)
            .map(|&v| f64::from(v))
            .collect();
        let r = resize_plane(&plane, h, w, out_h, out_w, true);
        for (i, v) in r.into_iter().enumerate() {
            out[i * c + ch] = v as u8;
        }
    }
    out
}

/// Resizes a `[h, w]` plane of floats (any range) like MATLAB's `imresize` on a `double` image:
/// no rounding.
pub fn imresize_f32(src: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let plane: Vec<f64> = src.iter().map(|&v| f64::from(v)).collect();
    resize_plane(&plane, h, w, out_h, out_w, false)
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_indices_stay_in_range() {
        for (n, m) in [(10, 5), (9, 3), (12, 3), (5, 10), (7, 21), (1, 4)] {
            let c = contributions(n, m, m as f64 / n as f64);
            for r in 0..m {
                let s: f64 = c.weight[r * c.taps..(r + 1) * c.taps].iter().sum();
                assert!((s - 1.0).abs() < 1e-12);
            }
            assert!(c.index.iter().all(|&i| i < n));
        }
    }

    #[test]
    fn constant_images_stay_constant() {
        let src = vec![77u8; 9 * 12 * 3];
        for (oh, ow) in [(3, 4), (27, 36), (18, 24)] {
            assert!(imresize_u8(&src, 9, 12, 3, oh, ow).iter().all(|&v| v == 77));
        }
    }

    /// Reference values from MATLAB's algorithm as ported to NumPy (`imresize` in
    /// bench/reference/sr_oracle.py, an independent vectorised implementation): a 4x6 pattern
    /// shrunk to 2x3 and grown to 8x12, in double precision.
    #[test]
    #[allow(clippy::excessive_precision)] // printed by NumPy; f32 rounding is the point
    fn matches_the_numpy_port_of_matlab_imresize() {
        let src: Vec<f32> = (0..24).map(|i| ((i * 37) % 23) as f32).collect();
        let down = imresize_f32(&src, 4, 6, 2, 3);
        let expect_down = [
            8.305_938_7,
            12.800_476,
            8.143_585,
            15.446_014,
            10.738_586,
            7.815_399,
        ];
        for (a, b) in down.iter().zip(expect_down) {
            assert!((a - b).abs() < 1e-4, "{down:?}");
        }
        let up = imresize_f32(&src, 4, 6, 8, 12);
        let expect_row0 = [
            -2.920_898_4,
            2.136_962_9,
            12.252_686,
            13.241_211,
            5.102_539,
            6.302_002,
            16.839_6,
            19.319_336,
            13.741_211,
            7.851_074,
            1.648_925_8,
            -1.452_148_4,
        ];
        for (a, b) in up[..12].iter().zip(expect_row0) {
            assert!((a - b).abs() < 1e-4, "{:?}", &up[..12]);
        }
        assert!((up.iter().map(|&v| f64::from(v)).sum::<f64>() - 1012.0).abs() < 1e-2);
    }

    /// MATLAB itself as the oracle: Set5's x3 low-resolution inputs were made with MATLAB's
    /// `imresize(HR, 1/3, 'bicubic')` on uint8 RGB. Away from the border (2 pixels; the published
    /// files were cut from larger originals, so their edges saw other pixels) every pixel matches.
    #[test]
    fn reproduces_matlab_made_set5_inputs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/sr/Set5/x3");
        assert!(
            dir.is_dir(),
            "{}: this test reads Set5 from ../shared/data beside the checkout (README, set-up)",
            dir.display()
        );
        let mut checked = 0;
        for i in 1..=5 {
            let hr = image::open(dir.join(format!("img_00{i}_SRF_3_HR.png")))
                .expect("HR")
                .to_rgb8();
            let lr = image::open(dir.join(format!("img_00{i}_SRF_3_LR.png")))
                .expect("LR")
                .to_rgb8();
            let (w, h) = (hr.width() as usize, hr.height() as usize);
            let (lw, lh) = (lr.width() as usize, lr.height() as usize);
            assert_eq!((lw, lh), (w / 3, h / 3));
            let mine = imresize_u8(hr.as_raw(), h, w, 3, lh, lw);
            for y in 2..lh - 2 {
                for x in 2..lw - 2 {
                    for c in 0..3 {
                        let k = (y * lw + x) * 3 + c;
                        assert_eq!(
                            mine[k],
                            lr.as_raw()[k],
                            "image {i} at ({x}, {y}) channel {c}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100_000);
    }
}
