//! The loss-curve PNG of a run: train and test loss per epoch (plotters, rendered into a buffer
//! and encoded by [`crate::image_io`]).

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::{Error, Result};

/// DejaVu Sans Mono (Bitstream Vera license; see `assets/DejaVu-LICENSE.txt`), so plots have
/// text on machines without system fonts.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
static REGISTER: Once = Once::new();

/// One named series of `(epoch, value)` points.
pub struct Series<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Points, x ascending.
    pub points: Vec<(f64, f64)>,
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Image {
        path: path.to_path_buf(),
        msg: format!("plot failed: {e}"),
    }
}

/// Draws `series` against epochs into a 720x440 PNG at `path` (written atomically).
pub fn line_plot(path: &Path, title: &str, y_label: &str, series: &[Series<'_>]) -> Result<()> {
    REGISTER.call_once(|| {
        // The bytes are a valid TTF compiled into the binary; failure would be a build defect.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let (w, h) = (720u32, 440u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts.filter(|p| p.1.is_finite()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_label)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        // Eight distinct colours: the VAE-GAN draws seven series.
        let colors = [
            BLUE,
            RED,
            GREEN,
            MAGENTA,
            CYAN,
            BLACK,
            RGBColor(230, 140, 0),
            RGBColor(120, 80, 40),
        ];
        for (i, s) in series.iter().enumerate() {
            let c = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                .map_err(|e| plot_err(path, e))?
                .label(s.label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(|e| plot_err(path, e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).expect("buffer is w*h*3 bytes");
    crate::image_io::save_png(&image::DynamicImage::ImageRgb8(img), path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_a_png_with_two_series() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("loss.png");
        let s = [
            super::Series {
                label: "train",
                points: vec![(1.0, 3.0), (2.0, 2.0), (3.0, 1.5)],
            },
            super::Series {
                label: "test",
                points: vec![(1.0, 3.2), (2.0, 2.4), (3.0, 2.0)],
            },
        ];
        super::line_plot(&p, "loss", "nats", &s).expect("plot");
        let img = image::open(&p).expect("decodes");
        assert_eq!((img.width(), img.height()), (720, 440));
    }
}
