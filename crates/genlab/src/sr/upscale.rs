//! Upscaling whole pictures of any size in tiles, so memory stays bounded.
//!
//! The picture is cut into `tile x tile` low-resolution tiles; each is processed with
//! `margin` extra pixels on every side (clamped at the picture's edges) and only its centre is
//! kept. Because every output pixel depends on at most `margin` input pixels around it (the
//! network's receptive field, and bicubic's 2 taps for the chroma), the tiled result equals the
//! result of processing the whole picture at once (a test checks this).
//!
//! Memory: the input and output pictures (8 bits per channel) plus one tile's activations:
//! for FSRCNN(56, 12, 4) with the default 128-pixel tile, about 56 x (128 + 2 x 9)^2 x 4 bytes x
//! a few live layers, i.e. tens of MB. A 4000x3000 RGB photo upscaled x2 needs 36 MB in and
//! 144 MB out.

use burn::prelude::*;

use super::resize::imresize_f32;
use super::{Picture, Plane, rgb_to_ycbcr, ycbcr_to_rgb};
use crate::error::{Error, Result};
use crate::models::SrNet;

/// Default low-resolution tile side.
pub const DEFAULT_TILE: usize = 128;

#[derive(Clone, Copy)]
/// One tile: its LR rectangle `[y0, y1) x [x0, x1)` and the window read around it.
struct Tile {
    y0: usize,
    y1: usize,
    x0: usize,
    x1: usize,
    wy0: usize,
    wy1: usize,
    wx0: usize,
    wx1: usize,
}

/// The tiles covering an `h x w` picture, with `m`-pixel margins clamped to the picture.
fn tiles(h: usize, w: usize, tile: usize, m: usize) -> Vec<Tile> {
    let mut out = Vec::new();
    for y0 in (0..h).step_by(tile) {
        for x0 in (0..w).step_by(tile) {
            let (y1, x1) = ((y0 + tile).min(h), (x0 + tile).min(w));
            out.push(Tile {
                y0,
                y1,
                x0,
                x1,
                wy0: y0.saturating_sub(m),
                wy1: (y1 + m).min(h),
                wx0: x0.saturating_sub(m),
                wx1: (x1 + m).min(w),
            });
        }
    }
    out
}

/// Checks the picture is at least the network's receptive field.
fn check_size<N: SrNet>(net: &N, h: usize, w: usize) -> Result<()> {
    let min = net.margin();
    if h < min || w < min {
        return Err(Error::Shape {
            op: "upscale",
            expected: format!(
                "an image at least {min}x{min} pixels (the network's receptive field)"
            ),
            got: format!("{w}x{h}"),
        });
    }
    Ok(())
}

/// Refuses an upscale whose output picture and one tile's feature maps would not fit in memory.
fn check_memory<N: SrNet>(net: &N, h: usize, w: usize, c: usize, tile: usize) -> Result<()> {
    use crate::memory::{F32, product};
    let s = net.scale();
    let m = 2 * net.margin().max(3);
    let window = product(&[tile.max(16).min(h) + m, tile.max(16).min(w) + m, s, s]);
    // The output bytes, the tile's planes, and the network's activations on one tile (FSRCNN
    // keeps 56 maps; counted as 64, forward only).
    let need = product(&[h, w, s, s, c]) + F32 * window * (c as u128 + 64);
    crate::memory::ensure(
        format!("upscaling a {w}x{h} picture x{s} in tiles of {tile}"),
        need,
    )
}

/// Runs the network on one `[wh, ww]` window of Y values in [0, 255]; returns `[s wh, s ww]`
/// values in [0, 255].
fn run_window<N: SrNet>(
    net: &N,
    y: Vec<f32>,
    wh: usize,
    ww: usize,
    device: &Device,
) -> Result<Vec<f32>> {
    let x = Tensor::<1>::from_floats(y.as_slice(), device)
        .div_scalar(255.0)
        .reshape([1, 1, wh, ww]);
    let out = net
        .forward(x)
        .mul_scalar(255.0)
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Unsupported(format!("reading the network output: {e:?}")))?;
    Ok(out)
}

/// Upscales `pic` by the network's scale. Y goes through the network; Cb, Cr and alpha are
/// upscaled bicubically (MATLAB's kernel). `on_tile(done, total)` reports progress.
pub fn upscale<N: SrNet>(
    net: &N,
    pic: &Picture,
    tile: usize,
    device: &Device,
    on_tile: &mut dyn FnMut(usize, usize),
) -> Result<Picture> {
    let s = net.scale();
    check_size(net, pic.h, pic.w)?;
    check_memory(net, pic.h, pic.w, pic.channels, tile)?;
    let (oh, ow, c) = (pic.h * s, pic.w * s, pic.channels);
    let mut out = vec![0u8; oh * ow * c];
    let all = tiles(pic.h, pic.w, tile.max(16), net.margin().max(3));
    let total = all.len();
    for (done, t) in all.iter().enumerate() {
        {
            let Tile {
                y0,
                y1,
                x0,
                x1,
                wy0,
                wy1,
                wx0,
                wx1,
            } = *t;
            let (wh, ww) = (wy1 - wy0, wx1 - wx0);
            // Planes of the window: Y (and Cb, Cr, alpha where present), floats in [0, 255].
            let mut planes: Vec<Vec<f32>> = vec![Vec::with_capacity(wh * ww); c];
            for y in wy0..wy1 {
                for x in wx0..wx1 {
                    let p = &pic.pixels[(y * pic.w + x) * c..(y * pic.w + x + 1) * c];
                    if c >= 3 {
                        let ycc = rgb_to_ycbcr(p[0].into(), p[1].into(), p[2].into());
                        for k in 0..3 {
                            planes[k].push(ycc[k] as f32);
                        }
                        if c == 4 {
                            planes[3].push(p[3].into());
                        }
                    } else {
                        for k in 0..c {
                            planes[k].push(p[k].into());
                        }
                    }
                }
            }
            let (hh, hw) = (wh * s, ww * s);
            // Y through the network: [wh, ww] -> [hh, hw].
            let y = std::mem::take(&mut planes[0]);
            let mut hr: Vec<Vec<f32>> = vec![run_window(net, y, wh, ww, device)?];
            for p in &planes[1..] {
                hr.push(imresize_f32(p, wh, ww, hh, hw));
            }
            // Keep the tile's centre.
            let (cy0, cx0) = ((y0 - wy0) * s, (x0 - wx0) * s);
            for y in 0..(y1 - y0) * s {
                for x in 0..(x1 - x0) * s {
                    let i = (cy0 + y) * hw + cx0 + x;
                    let o = ((y0 * s + y) * ow + x0 * s + x) * c;
                    let px = &mut out[o..o + c];
                    if c >= 3 {
                        let rgb = ycbcr_to_rgb(hr[0][i].into(), hr[1][i].into(), hr[2][i].into());
                        for k in 0..3 {
                            px[k] = rgb[k].round().clamp(0.0, 255.0) as u8;
                        }
                        if c == 4 {
                            px[3] = hr[3][i].round().clamp(0.0, 255.0) as u8;
                        }
                    } else {
                        for k in 0..c {
                            px[k] = hr[k][i].round().clamp(0.0, 255.0) as u8;
                        }
                    }
                }
            }
        }
        on_tile(done + 1, total);
    }
    Ok(Picture {
        h: oh,
        w: ow,
        channels: c,
        pixels: out,
    })
}

/// Upscales the Y plane only (the evaluation path): `[h, w]` in [0, 255] -> `[s h, s w]`, in
/// tiles like [`upscale`], unrounded.
pub fn upscale_y<N: SrNet>(net: &N, y: &Plane, tile: usize, device: &Device) -> Result<Plane> {
    let s = net.scale();
    check_size(net, y.h, y.w)?;
    check_memory(net, y.h, y.w, 1, tile)?;
    let (oh, ow) = (y.h * s, y.w * s);
    let mut out = vec![0.0; oh * ow];
    for t in tiles(y.h, y.w, tile.max(16), net.margin().max(3)) {
        let (wh, ww) = (t.wy1 - t.wy0, t.wx1 - t.wx0);
        let mut v = Vec::with_capacity(wh * ww);
        for r in t.wy0..t.wy1 {
            v.extend(
                y.data[r * y.w + t.wx0..r * y.w + t.wx1]
                    .iter()
                    .map(|&p| p as f32),
            );
        }
        let o = run_window(net, v, wh, ww, device)?;
        let hw = ww * s;
        let (cy0, cx0) = ((t.y0 - t.wy0) * s, (t.x0 - t.wx0) * s);
        for r in 0..(t.y1 - t.y0) * s {
            for c in 0..(t.x1 - t.x0) * s {
                out[(t.y0 * s + r) * ow + t.x0 * s + c] = f64::from(o[(cy0 + r) * hw + cx0 + c]);
            }
        }
    }
    Ok(Plane::new(oh, ow, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{EspcnConfig, FsrcnnConfig};

    fn picture(h: usize, w: usize, c: usize) -> Picture {
        let pixels = (0..h * w * c)
            .map(|i| ((i * 37 + (i / (w * c)) * 11) % 251) as u8)
            .collect();
        Picture {
            h,
            w,
            channels: c,
            pixels,
        }
    }

    /// Tiles with margins give exactly the whole-picture result, for every channel layout.
    #[test]
    fn tiled_equals_whole_picture() {
        let device = Device::flex();
        device.seed(3);
        let net = FsrcnnConfig {
            scale: 3,
            ..Default::default()
        }
        .init(&device);
        for c in [1, 2, 3, 4] {
            let pic = picture(37, 45, c);
            let whole = upscale(&net, &pic, 1000, &device, &mut |_, _| {}).expect("whole");
            let mut tiles = 0;
            let tiled = upscale(&net, &pic, 16, &device, &mut |_, t| tiles = t).expect("tiled");
            assert_eq!(tiles, 9);
            assert_eq!((tiled.h, tiled.w, tiled.channels), (111, 135, c));
            let diff = whole
                .pixels
                .iter()
                .zip(&tiled.pixels)
                .filter(|(a, b)| a.abs_diff(**b) > 1)
                .count();
            // Float summation order may differ between tile sizes: allow 1 level, nothing more.
            assert_eq!(diff, 0, "{c} channels");
        }
        let y = Plane::new(
            37,
            45,
            picture(37, 45, 1)
                .pixels
                .iter()
                .map(|&v| v.into())
                .collect(),
        );
        let a = upscale_y(&net, &y, 1000, &device).expect("whole");
        let b = upscale_y(&net, &y, 16, &device).expect("tiled");
        let max = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(max < 1e-3, "{max}");
    }

    #[test]
    fn too_small_pictures_are_refused_and_espcn_upscales_too() {
        let device = Device::flex();
        let net = FsrcnnConfig::default().init(&device);
        let err = upscale(&net, &picture(5, 40, 3), 64, &device, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("40x5"), "{err}");
        let esp = EspcnConfig {
            scale: 4,
            ..Default::default()
        }
        .init(&device);
        let out = upscale(&esp, &picture(12, 20, 3), 64, &device, &mut |_, _| {}).expect("espcn");
        assert_eq!((out.h, out.w), (48, 80));
    }
}
