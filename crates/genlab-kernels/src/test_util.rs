//! Shared test helpers: deterministic values and convolution geometries.

use crate::geometry::Geom;

/// Deterministic test values, uniform in [-1, 1) (a 64-bit LCG).
pub(crate) fn lcg(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The geometry of a convolution of `n` images `[cin, ih, iw]` to `cout` channels, its
/// output size computed as PyTorch does.
#[allow(clippy::too_many_arguments)]
pub(crate) fn geom(
    n: usize,
    cin: usize,
    [ih, iw]: [usize; 2],
    cout: usize,
    [kh, kw]: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
) -> Geom {
    let out = |len: usize, k: usize, s: usize, p: usize, d: usize| {
        (len + 2 * p - d * (k - 1) - 1) / s + 1
    };
    Geom {
        n,
        cin,
        ih,
        iw,
        cout,
        oh: out(ih, kh, stride[0], pad[0], dilation[0]),
        ow: out(iw, kw, stride[1], pad[1], dilation[1]),
        kh,
        kw,
        stride,
        pad,
        dilation,
    }
}
