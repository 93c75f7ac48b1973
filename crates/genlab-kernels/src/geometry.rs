//! The geometry of a 2-D convolution, and the valid output range of one kernel tap.

/// The geometry of a 2-D convolution `input [n, cin, ih, iw] -> output [n, cout, oh, ow]` with
/// kernel `[kh, kw]`, stride, leading padding and dilation: all the kernels need.
#[derive(Clone, Copy, Debug)]
pub struct Geom {
    pub n: usize,
    pub cin: usize,
    pub ih: usize,
    pub iw: usize,
    pub cout: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
}

impl Geom {
    /// Rows of the column matrix: cin x kh x kw.
    pub fn col_rows(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    pub fn in_len(&self) -> usize {
        self.cin * self.ih * self.iw
    }
    pub fn out_plane(&self) -> usize {
        self.oh * self.ow
    }
    /// Whether the gradients take the channels-last path: `cin >= 8` (shorter channel runs do
    /// not beat the row-major path) and not pointwise (whose image is its own column matrix).
    pub fn channels_last(&self) -> bool {
        self.cin >= CHANNELS_LAST_MIN && !self.is_pointwise()
    }

    /// A 1x1, stride-1, unpadded convolution: the image itself is its column matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }
}

/// For kernel offset `k` along one axis: the output range `[lo, hi)` whose input index
/// `o * stride + k * dilation - pad` lies in `[0, len)`.
pub(crate) fn valid_range(
    out_len: usize,
    len: usize,
    stride: usize,
    offset: usize,
    pad: usize,
) -> (usize, usize) {
    // o * stride + offset >= pad  <=>  o >= ceil((pad - offset) / stride)
    let lo = if offset >= pad {
        0
    } else {
        (pad - offset).div_ceil(stride)
    };
    // o * stride + offset < len + pad  <=>  o < ceil((len + pad - offset) / stride)
    let hi = if len + pad <= offset {
        0
    } else {
        (len + pad - offset).div_ceil(stride)
    };
    (lo.min(out_len), hi.min(out_len).max(lo.min(out_len)))
}

/// Input channels from which [`Geom::channels_last`] holds: its runs are `cin`
/// values long, too short below this to beat the phase-split path.
const CHANNELS_LAST_MIN: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_bounds_taps_inside_the_image() {
        // 5 outputs, stride 2, input 8, pad 1: tap offset 0 reads o*2-1 → valid for o >= 1.
        assert_eq!(valid_range(5, 8, 2, 0, 1), (1, 5));
        // offset 3: o*2+2 < 8 → o < 3.
        assert_eq!(valid_range(5, 8, 2, 3, 1), (0, 3));
        // A tap past the padded end reads nothing.
        assert_eq!(valid_range(4, 2, 1, 9, 0), (0, 0));
    }
}
