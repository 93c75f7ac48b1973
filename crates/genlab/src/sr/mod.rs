//! Super-resolution support: the colour space and resizing the literature uses, its scores, and
//! whole-image upscaling in tiles, training patches. The networks are in
//! [`crate::models::fsrcnn`] and [`crate::models::espcn`]; their training family is `train::sr`.
//!
//! Conventions (those of SRCNN/FSRCNN's MATLAB code, so numbers compare with published ones):
//! networks see the BT.601 **Y** channel of YCbCr (studio swing, [`rgb_to_ycbcr`]) scaled to
//! [0, 1]; Cb and Cr (and alpha) are upscaled bicubically ([`resize::imresize_f32`]); grey images
//! are their own Y channel. Scores compare Y planes rounded to integers, as MATLAB's `rgb2ycbcr`
//! does on `uint8` images, with `scale` pixels shaved from each border.

pub mod eval;
pub mod patches;
pub mod quality;
pub mod resize;
pub mod shipped;
pub mod upscale;

use std::path::Path;

use image::DynamicImage;

use crate::error::Result;
pub use crate::models::check_scale;
pub use quality::{Plane, psnr, ssim};

/// RGB in [0, 255] to BT.601 studio-swing YCbCr, as MATLAB's `rgb2ycbcr` (before rounding).
pub fn rgb_to_ycbcr(r: f64, g: f64, b: f64) -> [f64; 3] {
    [
        16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0,
        128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0,
        128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0,
    ]
}

/// The inverse of [`rgb_to_ycbcr`] (MATLAB's `ycbcr2rgb`, before rounding), RGB in [0, 255].
pub fn ycbcr_to_rgb(y: f64, cb: f64, cr: f64) -> [f64; 3] {
    let (y, cb, cr) = (y - 16.0, cb - 128.0, cr - 128.0);
    // The inverse of the 3x3 matrix above (numpy.linalg.inv; the two ~1e-6 terms kept).
    [
        1.164_383_56 * y + 3.011_244e-7 * cb + 1.596_026_89 * cr,
        1.164_383_56 * y - 0.391_762_54 * cb - 0.812_968_29 * cr,
        1.164_383_56 * y + 2.017_232_64 * cb + 3.054_262e-6 * cr,
    ]
}

/// An 8-bit picture as read from a file: grey or RGB, with or without alpha, interleaved.
#[derive(Debug, Clone)]
pub struct Picture {
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    /// `h * w * channels` bytes.
    pub pixels: Vec<u8>,
}

impl Picture {
    /// Reads a PNG, JPEG or BMP (by content). 16-bit images are reduced to 8 bits; palette
    /// images are expanded; grey stays grey; alpha is kept.
    pub fn read(path: &Path) -> Result<Self> {
        Ok(Self::from_image(&crate::image_io::read_image(path)?))
    }

    /// Converts a decoded image (see [`Picture::read`]).
    pub fn from_image(img: &DynamicImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (channels, pixels) = match img {
            DynamicImage::ImageLuma8(_) | DynamicImage::ImageLuma16(_) => {
                (1, img.to_luma8().into_raw())
            }
            DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLumaA16(_) => {
                (2, img.to_luma_alpha8().into_raw())
            }
            i if i.color().has_alpha() => (4, img.to_rgba8().into_raw()),
            _ => (3, img.to_rgb8().into_raw()),
        };
        Self {
            h,
            w,
            channels,
            pixels,
        }
    }

    /// Whether the picture has colour (RGB or RGBA).
    pub fn is_colour(&self) -> bool {
        self.channels >= 3
    }

    /// The picture cropped to the top-left `h x w`.
    pub fn crop(&self, h: usize, w: usize) -> Picture {
        let c = self.channels;
        let mut pixels = Vec::with_capacity(h * w * c);
        for y in 0..h {
            pixels.extend_from_slice(&self.pixels[y * self.w * c..(y * self.w + w) * c]);
        }
        Picture {
            h,
            w,
            channels: c,
            pixels,
        }
    }

    /// MATLAB's `modcrop`: the largest top-left crop whose sides are multiples of `scale`.
    pub fn modcrop(&self, scale: usize) -> Picture {
        self.crop(self.h / scale * scale, self.w / scale * scale)
    }

    /// The Y plane in [0, 255], unrounded (grey pictures: the grey values).
    pub fn y(&self) -> Plane {
        let c = self.channels;
        let data = self
            .pixels
            .chunks_exact(c)
            .map(|p| {
                if c >= 3 {
                    rgb_to_ycbcr(p[0].into(), p[1].into(), p[2].into())[0]
                } else {
                    f64::from(p[0])
                }
            })
            .collect();
        Plane::new(self.h, self.w, data)
    }

    /// The Y plane rounded to integers: what MATLAB's `rgb2ycbcr` gives for a `uint8` image,
    /// and what the scores compare.
    pub fn y_u8(&self) -> Plane {
        self.y().rounded()
    }

    /// MATLAB-bicubic resize of every channel to `h x w` (uint8 rounding after each pass).
    pub fn resize(&self, h: usize, w: usize) -> Picture {
        Picture {
            h,
            w,
            channels: self.channels,
            pixels: resize::imresize_u8(&self.pixels, self.h, self.w, self.channels, h, w),
        }
    }

    /// The picture as an `image` crate image, for saving.
    pub fn to_image(&self) -> DynamicImage {
        let (w, h, px) = (self.w as u32, self.h as u32, self.pixels.clone());
        match self.channels {
            1 => DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, px).expect("size")),
            2 => {
                DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_raw(w, h, px).expect("size"))
            }
            3 => DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, px).expect("size")),
            _ => DynamicImage::ImageRgba8(image::RgbaImage::from_raw(w, h, px).expect("size")),
        }
    }

    /// Saves in the format the extension names (PNG, JPEG, BMP), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::image_io::save_image_by_extension(&self.to_image(), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ycbcr_round_trips_and_matches_matlab_on_primaries() {
        // MATLAB: rgb2ycbcr(uint8([255 0 0])) = [81 90 240]; white = [235 128 128].
        let red = rgb_to_ycbcr(255.0, 0.0, 0.0).map(|v| v.round());
        assert_eq!(red, [81.0, 90.0, 240.0]);
        let white = rgb_to_ycbcr(255.0, 255.0, 255.0).map(|v| v.round());
        assert_eq!(white, [235.0, 128.0, 128.0]);
        for rgb in [[0.0, 0.0, 0.0], [12.0, 200.0, 99.0], [255.0, 1.0, 128.0]] {
            let [y, cb, cr] = rgb_to_ycbcr(rgb[0], rgb[1], rgb[2]);
            let back = ycbcr_to_rgb(y, cb, cr);
            for (a, b) in back.iter().zip(rgb) {
                assert!((a - b).abs() < 1e-4, "{back:?} vs {rgb:?}");
            }
        }
    }

    #[test]
    fn modcrop_and_y_of_grey_and_colour() {
        let p = Picture {
            h: 5,
            w: 7,
            channels: 3,
            pixels: (0..105).map(|i| i as u8).collect(),
        };
        let m = p.modcrop(3);
        assert_eq!((m.h, m.w), (3, 6));
        assert_eq!(&m.pixels[18..21], &p.pixels[21..24]);
        let g = Picture {
            h: 1,
            w: 2,
            channels: 1,
            pixels: vec![3, 250],
        };
        assert_eq!(g.y().data, vec![3.0, 250.0]);
        assert!(check_scale(5).is_err() && check_scale(3).is_ok());
    }
}
