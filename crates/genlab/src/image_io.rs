//! The one place where pixels become tensors and tensors become pixels, grids and files.
//!
//! Convention: a float image tensor is `[b, c, h, w]` with values in `[0, 1]`, c = 1 (grey) or 3
//! (RGB). `u8` pixels map to `p / 255`; floats map back with rounding and clamping.

use std::path::Path;

use burn::prelude::*;
use image::{DynamicImage, GrayImage, ImageFormat, RgbImage, imageops::FilterType};

use crate::error::{Error, Result, one_line};
use crate::fsutil::write_atomic;

/// A pixel as a network value, `p / 255` in `[0, 1]` ([`unit_from_u8`]), and a slice of them
/// at once ([`units_from_u8`]): defined in genlab-kernels, whose SIMD dispatch the slice
/// conversion runs under.
pub use genlab_kernels::pointwise::{unit_from_u8, units_from_u8};

/// `[n, c, h, w]` planar `u8` pixels as a float tensor in `[0, 1]`.
pub fn pixels_to_tensor(pixels: &[u8], dims: [usize; 4], device: &Device) -> Tensor<4> {
    let mut buf = vec![0f32; pixels.len()];
    units_from_u8(pixels, &mut buf);
    Tensor::from_data(TensorData::new(buf, dims), device)
}

/// The format an output image's extension names (`.png`, `.jpg`/`.jpeg`, `.bmp`): how every
/// image genlab writes is encoded, checked before any work is done.
pub fn output_format(path: &Path) -> Result<ImageFormat> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => Ok(ImageFormat::Png),
        "jpg" | "jpeg" => Ok(ImageFormat::Jpeg),
        "bmp" => Ok(ImageFormat::Bmp),
        _ => Err(Error::Image {
            path: path.to_path_buf(),
            msg: format!("unknown output format {ext:?}; use .png, .jpg or .bmp"),
        }),
    }
}

/// Saves an image in the format its extension names ([`output_format`]), atomically. JPEG and
/// BMP get no alpha channel: it is dropped.
pub fn save_image_by_extension(img: &DynamicImage, path: &Path) -> Result<()> {
    let format = output_format(path)?;
    let img = match (format, img.color().has_alpha()) {
        (ImageFormat::Png, _) | (_, false) => img.clone(),
        _ if img.color().has_color() => DynamicImage::ImageRgb8(img.to_rgb8()),
        _ => DynamicImage::ImageLuma8(img.to_luma8()),
    };
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .map_err(|e| Error::Image {
            path: path.to_path_buf(),
            msg: format!("{format:?} encoding failed: {e}"),
        })?;
    write_atomic(path, &bytes)
}

/// Reads a `[b, c, h, w]` tensor back to host floats, with its shape.
pub fn tensor_to_vec(t: Tensor<4>) -> Result<(Vec<f32>, [usize; 4])> {
    let dims = t.dims();
    let v = t
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Shape {
            op: "tensor_to_vec",
            expected: "f32 data".into(),
            got: format!("{e:?}"),
        })?;
    Ok((v, dims))
}

fn to_u8(x: f32) -> u8 {
    (x.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Lays out `[n, c, h, w]` images in `[0, 1]` as a grid with `cols` columns and a 2-pixel gap,
/// as an RGB image (grey inputs are replicated to three channels).
pub fn grid_image(values: &[f32], dims: [usize; 4], cols: usize) -> RgbImage {
    let [n, c, h, w] = dims;
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols).max(1);
    let pad = 2;
    let gw = cols * (w + pad) + pad;
    let gh = rows * (h + pad) + pad;
    let mut img = RgbImage::from_pixel(gw as u32, gh as u32, image::Rgb([32, 32, 32]));
    let plane = h * w;
    for k in 0..n {
        let (r, col) = (k / cols, k % cols);
        let (x0, y0) = (pad + col * (w + pad), pad + r * (h + pad));
        let base = k * c * plane;
        for y in 0..h {
            for x in 0..w {
                let at = |ch: usize| to_u8(values[base + ch * plane + y * w + x]);
                let px = if c >= 3 {
                    [at(0), at(1), at(2)]
                } else {
                    let g = at(0);
                    [g, g, g]
                };
                img.put_pixel((x0 + x) as u32, (y0 + y) as u32, image::Rgb(px));
            }
        }
    }
    img
}

/// A value in [0, 255] as a network value in [0, 1].
pub fn unit_from_255(v: f64) -> f32 {
    (v / 255.0) as f32
}

/// A value in [0, 255] rounded to the nearest 8-bit level, clamped to [0, 255] (MATLAB's `uint8`).
pub fn round_255(v: f64) -> f64 {
    v.round().clamp(0.0, 255.0)
}

/// Stacks `a` and `b` (`[k, c, h, w]` each) so that rows of `cols` images alternate a, b, a, b.
pub fn interleave_rows(a: Tensor<4>, b: Tensor<4>, cols: usize) -> Tensor<4> {
    let k = a.dims()[0];
    let mut parts = Vec::new();
    let mut s = 0;
    while s < k {
        let e = (s + cols).min(k);
        parts.push(a.clone().narrow(0, s, e - s));
        parts.push(b.clone().narrow(0, s, e - s));
        s = e;
    }
    Tensor::cat(parts, 0)
}

/// Refuses to turn non-finite values into pixels: a NaN would silently become black.
fn finite_pixels(v: &[f32], path: &Path) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::Image {
            path: path.to_path_buf(),
            msg: format!(
                "the model produced {} for pixel value {i}; not writing an image of it (are the weights or the code finite?)",
                v[i]
            ),
        }),
    }
}

/// Saves a tensor of images as a grid, atomically, in the format the extension names.
pub fn save_grid(t: Tensor<4>, cols: usize, path: &Path) -> Result<()> {
    let (v, dims) = tensor_to_vec(t)?;
    finite_pixels(&v, path)?;
    save_image_by_extension(&DynamicImage::ImageRgb8(grid_image(&v, dims, cols)), path)
}

/// Encodes an image as PNG (whatever the extension says) and writes it atomically.
pub fn save_png(img: &DynamicImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| Error::Image {
        path: path.to_path_buf(),
        msg: format!("PNG encoding failed: {e}"),
    })?;
    write_atomic(path, &bytes)
}

/// Decodes an image file, detecting PNG/JPEG/BMP from its content, never its name.
pub fn read_image(path: &Path) -> Result<DynamicImage> {
    let bytes = crate::fsutil::read_capped(path, u64::MAX)?;
    decode_image(&bytes, path)
}

/// [`read_image`] of bytes in memory; `path` names them in errors.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Bmp))
        .ok_or_else(|| Error::Image {
            path: path.to_path_buf(),
            msg: "not a PNG, JPEG or BMP image (unrecognised content)".into(),
        })?;
    let img = if format == ImageFormat::Jpeg {
        decode_jpeg(bytes, path)?
    } else {
        image::load_from_memory_with_format(bytes, format).map_err(|e| Error::Image {
            path: path.to_path_buf(),
            msg: format!("cannot decode {format:?} image: {}", one_line(e)),
        })?
    };
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::Image {
            path: path.to_path_buf(),
            msg: format!(
                "{format:?} image of {}x{} pixels",
                img.width(),
                img.height()
            ),
        });
    }
    Ok(img)
}

/// The width and height an image's header declares, read without decoding its pixels (to
/// refuse a huge upload before it is decoded); `None` when the header cannot be read.
pub fn declared_size(bytes: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// The largest decoded image: the `image` crate's default allocation limit, which its PNG and
/// BMP decoders apply.
const MAX_DECODED: u128 = 512 << 20;

/// Decodes a JPEG in strict mode: a truncated or corrupt stream is an error, not grey pixels.
/// Grey JPEGs stay grey; every other colour space becomes RGB.
fn decode_jpeg(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let bad = |e: &dyn std::fmt::Display| Error::Image {
        path: path.to_path_buf(),
        msg: format!("corrupt or truncated JPEG: {}", one_line(e)),
    };
    // The decoder, even strict, accepts a stream cut inside its last scan. Entropy-coded data
    // never holds 0xFF 0xD9 (0xFF is stuffed as 0xFF 0x00), so a complete image has this
    // end-of-image marker after its last start-of-scan (0xFF 0xDA); an EXIF thumbnail's comes
    // before.
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let eoi = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    if !matches!((last_sos, eoi), (Some(s), Some(e)) if e > s) {
        return Err(bad(
            &"no end-of-image marker after the last scan (the file is cut short)",
        ));
    }
    let opts = DecoderOptions::default().set_strict_mode(true);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
    d.decode_headers().map_err(|e| bad(&e))?;
    let (w, h) = d.dimensions().ok_or_else(|| bad(&"no frame header"))?;
    let grey = matches!(
        d.input_colorspace(),
        Some(ColorSpace::Luma | ColorSpace::LumaA)
    );
    let out = if grey {
        ColorSpace::Luma
    } else {
        ColorSpace::RGB
    };
    d.set_options(opts.jpeg_set_out_colorspace(out));
    let bytes_out = crate::memory::product(&[w, h, if grey { 1 } else { 3 }]);
    if bytes_out > MAX_DECODED {
        return Err(bad(&format!(
            "{w}x{h} pixels is more than genlab decodes ({} at most, as for PNG and BMP)",
            crate::memory::human(MAX_DECODED)
        )));
    }
    crate::memory::ensure(
        format!("decoding {} ({w}x{h} pixels)", path.display()),
        bytes_out,
    )?;
    let px = d.decode().map_err(|e| bad(&e))?;
    let (w32, h32) = (w as u32, h as u32);
    let img = if grey {
        GrayImage::from_raw(w32, h32, px).map(DynamicImage::ImageLuma8)
    } else {
        RgbImage::from_raw(w32, h32, px).map(DynamicImage::ImageRgb8)
    };
    img.ok_or_else(|| bad(&"decoder returned too few pixels"))
}

/// Converts an image to `[c, h, w]` u8 pixels: centre-crops to the target aspect ratio, resizes
/// with a Lanczos filter, then converts to grey (c = 1, ITU-R BT.601 luma) or RGB (c = 3).
pub fn image_to_pixels(img: &DynamicImage, shape: [usize; 3]) -> Vec<u8> {
    let [c, h, w] = shape;
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    // Largest crop of the target aspect ratio, centred.
    let (cw, ch) = if iw * h > ih * w {
        (ih * w / h, ih)
    } else {
        (iw, iw * h / w)
    };
    let (cw, ch) = (cw.max(1), ch.max(1));
    let cropped = img.crop_imm(
        ((iw - cw) / 2) as u32,
        ((ih - ch) / 2) as u32,
        cw as u32,
        ch as u32,
    );
    let resized = if (cw, ch) == (w, h) {
        cropped
    } else {
        cropped.resize_exact(w as u32, h as u32, FilterType::Lanczos3)
    };
    if c == 1 {
        resized.to_luma8().into_raw()
    } else {
        let rgb = resized.to_rgb8();
        let mut out = vec![0u8; 3 * h * w];
        for (i, p) in rgb.pixels().enumerate() {
            for k in 0..3 {
                out[k * h * w + i] = p[k];
            }
        }
        out
    }
}

/// Reads an image file as a `[1, c, h, w]` tensor in `[0, 1]`, converted to `shape`.
pub fn load_image_tensor(path: &Path, shape: [usize; 3], device: &Device) -> Result<Tensor<4>> {
    Ok(image_tensor(&read_image(path)?, shape, device))
}

/// An image as a `[1, c, h, w]` tensor in `[0, 1]`, converted to `shape` ([`image_to_pixels`]).
pub fn image_tensor(img: &DynamicImage, shape: [usize; 3], device: &Device) -> Tensor<4> {
    let [c, h, w] = shape;
    pixels_to_tensor(&image_to_pixels(img, shape), [1, c, h, w], device)
}

/// Writes a single `[1, c, h, w]` tensor as an image (grey or RGB), in the format the extension
/// names.
pub fn save_image_tensor(t: Tensor<4>, path: &Path) -> Result<()> {
    let img = tensor_image(t, path)?;
    save_image_by_extension(&img, path)
}

/// The first image of a `[b, c, h, w]` tensor in `[0, 1]` as an 8-bit grey or RGB image;
/// `path` names it in the error about non-finite pixels.
pub fn tensor_image(t: Tensor<4>, path: &Path) -> Result<DynamicImage> {
    let (v, [_, c, h, w]) = tensor_to_vec(t)?;
    let plane = h * w;
    let v = &v[..c * plane];
    finite_pixels(v, path)?;
    Ok(if c == 1 {
        DynamicImage::ImageLuma8(
            GrayImage::from_raw(w as u32, h as u32, v.iter().map(|&x| to_u8(x)).collect())
                .expect("buffer is h*w bytes"),
        )
    } else {
        let mut buf = Vec::with_capacity(3 * plane);
        for i in 0..plane {
            for k in 0..3 {
                buf.push(to_u8(v[k * plane + i]));
            }
        }
        DynamicImage::ImageRgb8(
            RgbImage::from_raw(w as u32, h as u32, buf).expect("buffer is 3*h*w bytes"),
        )
    })
}

/// An image encoded as PNG in memory (what the studio's API answers with).
pub fn png_bytes(img: &DynamicImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| Error::Image {
            path: "<png>".into(),
            msg: format!("cannot encode PNG: {}", one_line(e)),
        })?;
    Ok(out.into_inner())
}

/// `[n, c, h, w]` images in `[0, 1]` as a PNG grid of `cols` columns ([`grid_image`]), in
/// memory; `what` names them in the error about non-finite pixels.
pub fn grid_png(t: Tensor<4>, cols: usize, what: &Path) -> Result<Vec<u8>> {
    let (v, dims) = tensor_to_vec(t)?;
    finite_pixels(&v, what)?;
    png_bytes(&DynamicImage::ImageRgb8(grid_image(&v, dims, cols)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_images_with_gaps() {
        // Two 1x2x2 images: all-black and all-white, in 2 columns.
        let v = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let g = grid_image(&v, [2, 1, 2, 2], 2);
        assert_eq!(g.dimensions(), (2 * 4 + 2, 4 + 2));
        assert_eq!(g.get_pixel(2, 2).0, [0, 0, 0]);
        assert_eq!(g.get_pixel(6, 3).0, [255, 255, 255]);
        assert_eq!(g.get_pixel(0, 0).0, [32, 32, 32]);
    }

    #[test]
    fn crop_resize_keeps_centre_and_channels() {
        // A 4x2 RGB image: left half red, right half blue; cropping to square keeps the centre.
        let mut img = RgbImage::new(4, 2);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = if x < 2 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            };
        }
        let px = image_to_pixels(&DynamicImage::ImageRgb8(img), [3, 2, 2]);
        // Planar: R plane then G then B. Column 0 red, column 1 blue.
        assert_eq!(&px[0..4], &[255, 0, 255, 0]);
        assert_eq!(&px[8..12], &[0, 255, 0, 255]);
    }

    #[test]
    fn non_image_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("notes.png");
        std::fs::write(&p, b"hello, not an image").expect("write");
        let err = read_image(&p).unwrap_err().to_string();
        assert!(
            err.contains("notes.png") && err.contains("not a PNG"),
            "{err}"
        );
    }
}
