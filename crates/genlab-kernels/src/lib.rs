//! CPU kernels on plain row-major f32 slices: 2-D convolutions and their gradients (here) and
//! one-pass elementwise work, an Adam update and the BCE-with-logits loss (`pointwise`).
//!
//! genlab's `nn::ops::conv` registers these as the backward pass of convolutions and transposed
//! convolutions on burn's flex backend (whose own gradients are a generic fallback). They live in
//! their own crate so that dev and test builds compile them optimised (`[profile.dev.package]` in
//! the workspace manifest) without optimising all of genlab.
//!
//! Layout: images `[n, c, h, w]`, convolution weights `[cout, cin, kh, kw]`, all contiguous.
//! GEMMs from the `gemm` crate, images split across rayon threads (one accumulator each for
//! weight gradients); a small output map (7x7) takes several images per GEMM
//! (`images_per_gemm`), a large one one image per GEMM:
//! - forward: `Y_n = W · im2col(X_n)`, the column matrix row-major `[cin*kh*kw, oh*ow]` (the
//!   images of a block side by side), built from a zero-padded, column-phase-split copy of the
//!   image (`Padded`);
//! - weight gradient: `dW += dY_n · im2col(X_n)ᵀ`; with 8 or more input channels the column
//!   matrix is built position-major from a channels-last image (`ChannelsLast`) so the GEMM
//!   reads it contiguously;
//! - input gradient (and so a transposed convolution's forward pass): `col2im(Wᵀ · dY_n)`; with 8
//!   or more input channels as `colᵀ = dY_nᵀ · W'` (a block's images stacked) added in channel
//!   runs onto a channels-last image, which puts the GEMM's long side on `cin*kh*kw` instead of
//!   `oh*ow`;
//! - outputs are allocated uninitialised and each worker initialises its own images (`output`,
//!   `init`), rather than zeroed by the calling thread first;
//! - a transposed convolution's two gradients share one `im2col(dY_n)` ([`transposed_grads`]).
//!
//! `cargo run --release -p genlab-kernels --example gemm_shapes` measures the GEMM layouts these
//! choices rest on; `cargo bench -p genlab-kernels --bench conv_kernels` times the kernels.

use rayon::prelude::*;

pub mod pointwise;

use std::mem::MaybeUninit;

/// Runs `f` compiled for the widest vector instructions this CPU has: AVX-512 or AVX2+FMA,
/// detected at run time by `pulp` (the SIMD dispatch gemm itself uses), else baseline x86-64.
/// Without it this crate's own loops are SSE2 only, 4 floats wide (the default target for a
/// portable binary). Every kernel loop runs inside it, on the thread that runs the loop: a rayon
/// closure is a function of its own, so each worker's closure body is wrapped, and the helpers
/// they call are wrapped (or inlined) too. `f` is inlined into pulp's `#[target_feature]`
/// functions, so its loops are vectorised for that instruction set.
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// A new output of `len` values, handed to `fill` uninitialised; `fill` must write every one of
/// them (each caller splits the whole buffer into parts and writes or [`init`]s each part). A
/// `vec![0f32; len]` instead costs a serial memset on the calling thread before the parallel
/// kernel overwrites it: ~4% of a W2 training step, with the other core idle.
pub(crate) fn output(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` initialised all `len` values (the contract above, kept by every caller).
    unsafe { v.set_len(len) };
    v
}

/// Writes `value` into every element of `buf` and returns it as initialised values (how a
/// worker thread starts its part of an [`output`] that it then adds or writes into).
pub(crate) fn init(buf: &mut [MaybeUninit<f32>], value: f32) -> &mut [f32] {
    buf.fill(MaybeUninit::new(value));
    // SAFETY: every element was just written, and `MaybeUninit<f32>` has `f32`'s layout.
    unsafe { &mut *(buf as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// dL/db `[c]`: the sum of `dy [n, c, h, w]` over images and positions (batch norm's channel
/// sums: f32 within a plane, f64 across planes, channels in parallel).
pub fn bias_grad(dy: &[f32], n: usize, c: usize, plane: usize) -> Vec<f32> {
    let len = (n * c * plane).min(dy.len());
    pointwise::channel_sums(len, c, plane, |_, k| dy[k])
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// `Σ f(k)` over `range`, kept in eight independent f32 lanes (then added up) so the compiler
/// can vectorise the reduction, which it may not reorder in a single running sum.
#[inline(always)]
pub(crate) fn lane_sum(range: std::ops::Range<usize>, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let mut k = range.start;
    while k + 8 <= range.end {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(k + l);
        }
        k += 8;
    }
    let tail: f32 = (k..range.end).map(&f).sum();
    acc.iter().sum::<f32>() + tail
}

/// The geometry of a 2-D convolution `input [n, cin, ih, iw] -> output [n, cout, oh, ow]` with
/// kernel `[kh, kw]`, stride, leading padding and dilation: all the kernels below need.
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
fn valid_range(
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

/// The zero-padded, column-phase-split copy of one image that [`im2col`] reads and [`col2im`]
/// writes. Padded row `r` holds input row `r - pad_h` (zeros outside the image); its padded
/// columns `t` are stored phase by phase, `t = j * stride_w + q` at `[q][j]`. Every tap of a row
/// of output positions then reads (or, in `col2im`, adds onto) one contiguous run of `ow` values:
/// output column `ox` with tap `kj` reads `t = ox * stride_w + kj * dilation_w`, which is phase
/// `(kj * dilation_w) % stride_w`, index `ox + (kj * dilation_w) / stride_w`. No bounds logic is
/// left in the inner loops and a strided convolution needs no per-element gather.
#[derive(Clone, Copy, Debug)]
struct Padded {
    /// Padded rows the output reaches: `stride_h * (oh - 1) + dilation_h * (kh - 1) + 1`.
    rows: usize,
    /// Values per phase: the padded columns the output reaches, divided by `stride_w` (rounded up).
    phase_len: usize,
    /// `stride_w * phase_len`: one padded row.
    row_len: usize,
}

impl Padded {
    fn of(g: &Geom) -> Self {
        if g.oh == 0 || g.ow == 0 {
            return Self {
                rows: 0,
                phase_len: 0,
                row_len: 0,
            };
        }
        let rows = g.stride[0] * (g.oh - 1) + g.dilation[0] * (g.kh - 1) + 1;
        let cols = g.stride[1] * (g.ow - 1) + g.dilation[1] * (g.kw - 1) + 1;
        let phase_len = cols.div_ceil(g.stride[1]);
        Self {
            rows,
            phase_len,
            row_len: g.stride[1] * phase_len,
        }
    }

    /// Values per channel.
    fn plane(&self) -> usize {
        self.rows * self.row_len
    }
}

/// Per-thread scratch of the column kernels: the padded image and one image's column matrix
/// `[cin*kh*kw, oh*ow]`, both empty for a pointwise convolution (its image is its own column
/// matrix).
struct Scratch {
    padded: Vec<f32>,
    col: Vec<f32>,
}

impl Scratch {
    fn new(g: &Geom) -> Self {
        Self::for_images(g, 1)
    }

    /// Room for the column matrix of `images` images side by side (`[rows, images * oh*ow]`).
    fn for_images(g: &Geom, images: usize) -> Self {
        if g.is_pointwise() {
            Self {
                padded: Vec::new(),
                col: Vec::new(),
            }
        } else {
            Self {
                padded: vec![0f32; g.cin * Padded::of(g).plane()],
                col: vec![0f32; g.col_rows() * g.out_plane() * images],
            }
        }
    }
}

/// Copies `src` into `dst` (equal lengths) in fixed 8- or 4-value blocks, the last one
/// overlapping, so a run as short as an output row (7 or 14 values here) is a few vector moves
/// rather than a call to `memcpy`.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    debug_assert_eq!(n, src.len());
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            dst[i..i + 8].copy_from_slice(&src[i..i + 8]);
            i += 8;
        }
        if i < n {
            dst[n - 8..n].copy_from_slice(&src[n - 8..n]);
        }
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..n].copy_from_slice(&src[n - 4..n]);
    } else {
        dst.copy_from_slice(src);
    }
}

/// `dst += src` (equal lengths) in fixed 8- and 4-value blocks, then one value at a time.
#[inline(always)]
fn add_run(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    debug_assert_eq!(n, src.len());
    let mut i = 0;
    while i + 8 <= n {
        let (d, s) = (&mut dst[i..i + 8], &src[i..i + 8]);
        for k in 0..8 {
            d[k] += s[k];
        }
        i += 8;
    }
    if i + 4 <= n {
        let (d, s) = (&mut dst[i..i + 4], &src[i..i + 4]);
        for k in 0..4 {
            d[k] += s[k];
        }
        i += 4;
    }
    for k in i..n {
        dst[k] += src[k];
    }
}

/// For each phase `q` of a padded row: the index range `[lo, hi)` of its values that lie inside
/// the image (index `j` is input column `j * stride_w + q - pad_w`).
fn phase_ranges(g: &Geom, p: &Padded) -> Vec<(usize, usize)> {
    (0..g.stride[1])
        .map(|q| valid_range(p.phase_len, g.iw, g.stride[1], q, g.pad[1]))
        .collect()
}

/// Writes the [`Padded`] copy of one image `x [cin, ih, iw]` into `buf`.
fn pad_image(x: &[f32], g: &Geom, p: &Padded, buf: &mut [f32]) {
    simd(
        #[inline(always)]
        || {
            let sw = g.stride[1];
            let [ph, pw] = g.pad;
            let ranges = phase_ranges(g, p);
            for (c, chan) in buf.chunks_exact_mut(p.plane()).take(g.cin).enumerate() {
                let xc = &x[c * g.ih * g.iw..(c + 1) * g.ih * g.iw];
                for (r, row) in chan.chunks_exact_mut(p.row_len).enumerate() {
                    if r < ph || r - ph >= g.ih {
                        row.fill(0.0);
                        continue;
                    }
                    let src = &xc[(r - ph) * g.iw..(r - ph + 1) * g.iw];
                    for (q, (phase, &(lo, hi))) in
                        row.chunks_exact_mut(p.phase_len).zip(&ranges).enumerate()
                    {
                        phase[..lo].fill(0.0);
                        phase[hi..].fill(0.0);
                        if lo < hi {
                            let src = &src[lo * sw + q - pw..];
                            let dst = &mut phase[lo..hi];
                            match sw {
                                1 => dst.copy_from_slice(&src[..dst.len()]),
                                2 => gather_even(dst, src),
                                _ => {
                                    for (d, s) in dst.iter_mut().zip(src.iter().step_by(sw)) {
                                        *d = *s;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `dst[j] = src[2 * j]`, eight values at a time where `src` holds sixteen more.
#[inline(always)]
fn gather_even(dst: &mut [f32], src: &[f32]) {
    let mut j = 0;
    while j + 8 <= dst.len() && 2 * j + 16 <= src.len() {
        let (d, s) = (&mut dst[j..j + 8], &src[2 * j..2 * j + 16]);
        for k in 0..8 {
            d[k] = s[2 * k];
        }
        j += 8;
    }
    for k in j..dst.len() {
        dst[k] = src[2 * k];
    }
}

/// `dst[2 * j] += src[j]`, eight values at a time where `dst` holds sixteen more.
#[inline(always)]
fn scatter_add_even(dst: &mut [f32], src: &[f32]) {
    let mut j = 0;
    while j + 8 <= src.len() && 2 * j + 16 <= dst.len() {
        let (d, s) = (&mut dst[2 * j..2 * j + 16], &src[j..j + 8]);
        for k in 0..8 {
            d[2 * k] += s[k];
        }
        j += 8;
    }
    for k in j..src.len() {
        dst[2 * k] += src[k];
    }
}

/// Adds the [`Padded`] image `buf` back onto `x [cin, ih, iw]`, dropping the padding (the
/// adjoint of [`pad_image`]).
fn unpad_image(buf: &[f32], g: &Geom, p: &Padded, x: &mut [f32]) {
    simd(
        #[inline(always)]
        || {
            let sw = g.stride[1];
            let [ph, pw] = g.pad;
            let ranges = phase_ranges(g, p);
            for (c, chan) in buf.chunks_exact(p.plane()).take(g.cin).enumerate() {
                let xc = &mut x[c * g.ih * g.iw..(c + 1) * g.ih * g.iw];
                for (r, row) in chan.chunks_exact(p.row_len).enumerate() {
                    if r < ph || r - ph >= g.ih {
                        continue;
                    }
                    let dst = &mut xc[(r - ph) * g.iw..(r - ph + 1) * g.iw];
                    for (q, (phase, &(lo, hi))) in
                        row.chunks_exact(p.phase_len).zip(&ranges).enumerate()
                    {
                        if lo < hi {
                            let dst = &mut dst[lo * sw + q - pw..];
                            let src = &phase[lo..hi];
                            match sw {
                                1 => add_run(&mut dst[..src.len()], src),
                                2 => scatter_add_even(dst, src),
                                _ => {
                                    for (d, s) in dst.iter_mut().step_by(sw).zip(src) {
                                        *d += *s;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// For every column-matrix row `(c, ki, kj)` and output row `oy`: the offset in the padded
/// image of the run of `ow` values that row reads, and the offset of its `ow` values in a
/// column matrix whose rows are `ld` values apart.
#[inline(always)]
fn for_each_run(g: &Geom, p: &Padded, ld: usize, mut f: impl FnMut(usize, usize)) {
    let [sh, sw] = g.stride;
    let [dh, dw] = g.dilation;
    for c in 0..g.cin {
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = ((c * g.kh + ki) * g.kw + kj) * ld;
                let t = kj * dw;
                let base = c * p.plane() + (t % sw) * p.phase_len + t / sw;
                for oy in 0..g.oh {
                    f(base + (oy * sh + ki * dh) * p.row_len, row + oy * g.ow);
                }
            }
        }
    }
}

/// `col [cin*kh*kw, oh*ow]` of one image `x [cin, ih, iw]`; zeros where a tap falls in the padding.
fn im2col(x: &[f32], g: &Geom, scratch: &mut Scratch) {
    im2col_at(x, g, &mut scratch.padded, &mut scratch.col, g.out_plane());
}

/// [`im2col`] into the columns of `col` from its start, its rows `ld` values apart (one image of
/// several side by side), through the padded-image scratch `padded`.
fn im2col_at(x: &[f32], g: &Geom, padded: &mut [f32], col: &mut [f32], ld: usize) {
    simd(
        #[inline(always)]
        || {
            let p = Padded::of(g);
            pad_image(x, g, &p, padded);
            let ow = g.ow;
            for_each_run(g, &p, ld, |from, to| {
                copy_run(&mut col[to..to + ow], &padded[from..from + ow]);
            });
        },
    )
}

/// Images whose column matrices one forward GEMM takes side by side: enough that its long side
/// (`images * oh*ow` columns) is about 256 positions, at most 16 (5 images of 7x7, one of 14x14
/// or more). One 7x7 image's 49 columns tile the AVX-512 microkernel poorly: `gemm_shapes`
/// measures 190 GFLOP/s per image against 208-236 for 2-16 images. In `conv_kernels` the forward
/// pass of conv 64-128 (batch 64) went from 2.70 to 2.40 ms with ~256 columns and to 2.38 with
/// ~768, which triples the column matrix (3 MB a thread) for no further gain. A pointwise
/// convolution's image is its own column matrix: one.
fn images_per_gemm(g: &Geom) -> usize {
    if g.is_pointwise() {
        1
    } else {
        (256 / g.out_plane().max(1)).clamp(1, 16)
    }
}

/// Runs `f(first, count, col, ld)` for consecutive blocks of up to [`images_per_gemm`] images
/// of `run`, where `col [rows, count * oh*ow]` (rows `ld` apart) holds the column matrices of
/// images `first..first + count` of `input` (`[n, cin, ih, iw]`) side by side.
fn for_each_block(
    input: &[f32],
    g: &Geom,
    run: std::ops::Range<usize>,
    scratch: &mut Scratch,
    mut f: impl FnMut(usize, usize, &[f32], usize),
) {
    let per = images_per_gemm(g);
    let plane = g.out_plane();
    let image = |i: usize| &input[i * g.in_len()..(i + 1) * g.in_len()];
    let mut first = run.start;
    while first < run.end {
        let count = per.min(run.end - first);
        if g.is_pointwise() {
            f(first, 1, image(first), plane);
        } else {
            let ld = count * plane;
            let Scratch { padded, col } = scratch;
            for b in 0..count {
                im2col_at(image(first + b), g, padded, &mut col[b * plane..], ld);
            }
            f(first, count, &col[..g.col_rows() * ld], ld);
        }
        first += count;
    }
}

/// The column matrix of one image: the image itself for a pointwise convolution, else
/// [`im2col`] into the scratch.
fn columns<'a>(x: &'a [f32], g: &Geom, scratch: &'a mut Scratch) -> &'a [f32] {
    if g.is_pointwise() {
        x
    } else {
        im2col(x, g, scratch);
        &scratch.col
    }
}

/// Adds the scratch's column matrix `[cin*kh*kw, oh*ow]` back onto the image `x [cin, ih, iw]`
/// (the adjoint of [`im2col`]), through the padded image.
fn col2im(scratch: &mut Scratch, g: &Geom, x: &mut [f32]) {
    simd(
        #[inline(always)]
        || {
            let p = Padded::of(g);
            let (padded, col) = (&mut scratch.padded, &scratch.col);
            padded.fill(0.0);
            let ow = g.ow;
            for_each_run(g, &p, g.out_plane(), |to, from| {
                add_run(&mut padded[to..to + ow], &col[from..from + ow]);
            });
            unpad_image(padded, g, &p, x);
        },
    )
}

/// `dst = (accumulate ? dst : 0) + lhs · rhs` for row-major matrices given by (row, col) strides.
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: [isize; 2],
    rhs: &[f32],
    rhs_strides: [isize; 2],
) {
    // The last element each operand's strides reach must lie in its slice (O(1) checks that
    // keep the unsafe call below in bounds whatever a caller passes).
    let reach = |rows: usize, cols: usize, [rs, cs]: [isize; 2]| {
        (rows.max(1) - 1) * rs as usize + (cols.max(1) - 1) * cs as usize
    };
    assert!(dst.len() >= m * n, "matmul: destination too small");
    assert!(
        m * k == 0 || reach(m, k, lhs_strides) < lhs.len(),
        "matmul: lhs too small"
    );
    assert!(
        k * n == 0 || reach(k, n, rhs_strides) < rhs.len(),
        "matmul: rhs too small"
    );
    // SAFETY: gemm reads lhs at (i, p) for i < m, p < k and rhs at (p, j) for j < n through the
    // given (non-negative) strides, and writes dst at (i, j) row-major: the asserts above keep
    // every such element inside its slice, and dst is borrowed exclusively.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_strides[1],
            lhs_strides[0],
            rhs.as_ptr(),
            rhs_strides[1],
            rhs_strides[0],
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Splits `n` images into one contiguous run per rayon thread.
fn image_runs(n: usize) -> Vec<std::ops::Range<usize>> {
    let parts = rayon::current_num_threads().clamp(1, n.max(1));
    (0..parts)
        .map(|p| (p * n / parts)..((p + 1) * n / parts))
        .filter(|r| !r.is_empty())
        .collect()
}

/// `buf` (`n` images of `per_image` values) cut into one mutable piece per `image_runs` run,
/// each with its image indices, so threads can write disjoint images.
fn split_by_runs<T>(
    buf: &mut [T],
    n: usize,
    per_image: usize,
) -> Vec<(&mut [T], std::ops::Range<usize>)> {
    let mut rest = buf;
    let mut out = Vec::new();
    for run in image_runs(n) {
        let (head, tail) = rest.split_at_mut(run.len() * per_image);
        out.push((head, run));
        rest = tail;
    }
    out
}

/// The elementwise sum of the per-thread accumulators (zeros of `len` when there are none).
fn sum_partials(partials: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    simd(
        #[inline(always)]
        || {
            let mut parts = partials.into_iter();
            let mut total = parts.next().unwrap_or_else(|| vec![0f32; len]);
            for p in parts {
                for (t, v) in total.iter_mut().zip(p) {
                    *t += v;
                }
            }
            total
        },
    )
}

/// dL/dW `[cout, cin, kh, kw]` of a convolution: Σ_n dY_n `[cout, oh*ow]` · im2col(X_n)ᵀ.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    if g.channels_last() {
        weight_grad_channels_last(x, dy, g)
    } else {
        weight_grad_rows(x, dy, g)
    }
}

/// [`weight_grad`] through a position-major column matrix. Per image the input is copied into a
/// zero-padded channels-last image `[rows, cols, cin]`, `colᵀ [oh*ow, kh*kw*cin]` is filled
/// with one run of `cin` values per output position and tap, and
/// `dW' [cout, kh*kw*cin] += dY_n · colᵀ` reads it contiguously (which the GEMM packs faster
/// than the transposed view of a row-major column matrix); `dW'` is reordered to
/// `[cout, cin, kh, kw]` at the end.
fn weight_grad_channels_last(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    let rows = g.col_rows();
    let plane = g.out_plane();
    if g.n == 0 || plane == 0 {
        return vec![0f32; g.cout * rows];
    }
    let cl = ChannelsLast::of(g);
    let partials: Vec<Vec<f32>> = image_runs(g.n)
        .into_par_iter()
        .map(|run| {
            simd(
                #[inline(always)]
                || {
                    let mut acc = vec![0f32; g.cout * rows];
                    let mut padded = vec![0f32; cl.len_for(g.cin)];
                    let mut colt = vec![0f32; plane * rows];
                    for i in run {
                        cl.pad(&x[i * g.in_len()..(i + 1) * g.in_len()], g, &mut padded);
                        for (pos, dst) in colt.chunks_exact_mut(rows).enumerate() {
                            for (t, run) in dst.chunks_exact_mut(g.cin).enumerate() {
                                let at = cl.at(g, pos, t);
                                copy_run(run, &padded[at..at + g.cin]);
                            }
                        }
                        let dyi = &dy[i * g.cout * plane..(i + 1) * g.cout * plane];
                        // dW' [cout, rows'] += dY_i [cout, plane] · colᵀ [plane, rows'].
                        matmul(
                            g.cout,
                            rows,
                            plane,
                            &mut acc,
                            true,
                            dyi,
                            [plane as isize, 1],
                            &colt,
                            [rows as isize, 1],
                        );
                    }
                    acc
                },
            )
        })
        .collect();
    let dw = sum_partials(partials, g.cout * rows);
    reorder_taps(&dw, g.cout, g.kh * g.kw, g.cin)
}

/// [`weight_grad`] through the row-major column matrix.
fn weight_grad_rows(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    let rows = g.col_rows();
    let plane = g.out_plane();
    let partials: Vec<Vec<f32>> = image_runs(g.n)
        .into_par_iter()
        .map(|run| {
            simd(
                #[inline(always)]
                || {
                    let mut acc = vec![0f32; g.cout * rows];
                    let mut scratch = Scratch::new(g);
                    for i in run {
                        let xi = &x[i * g.in_len()..(i + 1) * g.in_len()];
                        let col = columns(xi, g, &mut scratch);
                        let dyi = &dy[i * g.cout * plane..(i + 1) * g.cout * plane];
                        // [cout, plane] · [plane, rows], the right side read transposed from col.
                        matmul(
                            g.cout,
                            rows,
                            plane,
                            &mut acc,
                            true,
                            dyi,
                            [plane as isize, 1],
                            col,
                            [1, plane as isize],
                        );
                    }
                    acc
                },
            )
        })
        .collect();
    sum_partials(partials, g.cout * rows)
}

/// The convolution itself, `y [n, cout, oh, ow]`: per image, `W [cout, cin*kh*kw] · im2col(X_n)`
/// plus the bias, written straight into NCHW (no layout conversion). Images run in parallel.
pub fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    let plane = g.out_plane();
    let out_len = g.cout * plane;
    if g.n == 0 || out_len == 0 {
        return vec![0f32; g.n * out_len];
    }
    if let Some(b) = bias {
        assert_eq!(b.len(), g.cout, "forward: bias of {} values", b.len());
    }
    output(g.n * out_len, |y| {
        split_by_runs(y, g.n, out_len)
            .into_par_iter()
            .for_each(|(out, run)| {
                simd(
                    #[inline(always)]
                    || {
                        let start = run.start;
                        let mut scratch = Scratch::for_images(g, images_per_gemm(g));
                        let mut block = Vec::new();
                        for_each_block(x, g, run, &mut scratch, |first, count, col, ld| {
                            let dst = &mut out
                                [(first - start) * out_len..(first - start + count) * out_len];
                            weights_times_columns(g, w, bias, col, ld, count, dst, &mut block);
                        });
                    },
                )
            });
    })
}

/// `W [cout, rows] · col [rows, count * oh*ow]` (rows of `col` `ld` apart) for `count` images
/// side by side, written into `out` (their `[cout, oh*ow]` outputs) plus `bias` per channel if
/// any. One image goes straight into `out` (the GEMM adds onto the bias); several go through
/// `block`, then are copied out image by image with the bias added.
#[allow(clippy::too_many_arguments)]
fn weights_times_columns(
    g: &Geom,
    w: &[f32],
    bias: Option<&[f32]>,
    col: &[f32],
    ld: usize,
    count: usize,
    out: &mut [MaybeUninit<f32>],
    block: &mut Vec<f32>,
) {
    simd(
        #[inline(always)]
        || {
            let (rows, plane) = (g.col_rows(), g.out_plane());
            if count == 1 {
                let y = init(out, 0.0);
                if let Some(b) = bias {
                    for (row, &v) in y.chunks_exact_mut(plane).zip(b) {
                        row.fill(v);
                    }
                }
                matmul(
                    g.cout,
                    plane,
                    rows,
                    y,
                    bias.is_some(),
                    w,
                    [rows as isize, 1],
                    col,
                    [ld as isize, 1],
                );
                return;
            }
            block.resize(g.cout * ld, 0.0);
            matmul(
                g.cout,
                ld,
                rows,
                block,
                false,
                w,
                [rows as isize, 1],
                col,
                [ld as isize, 1],
            );
            for (b, image) in out.chunks_exact_mut(g.cout * plane).take(count).enumerate() {
                for (c, dst) in image.chunks_exact_mut(plane).enumerate() {
                    let src = &block[c * ld + b * plane..c * ld + (b + 1) * plane];
                    let v = bias.map_or(0.0, |bias| bias[c]);
                    for (d, &s) in dst.iter_mut().zip(src) {
                        d.write(s + v);
                    }
                }
            }
        },
    )
}

/// The zero-padded channels-last image `[rows, cols, cin]` of one input image that the
/// channels-last kernels read or add onto: padded position `(r, t)` is input position
/// `(r - pad_h, t - pad_w)`, and only the rows and columns the output reaches are kept.
#[derive(Clone, Copy, Debug)]
struct ChannelsLast {
    rows: usize,
    cols: usize,
}

impl ChannelsLast {
    fn of(g: &Geom) -> Self {
        let p = Padded::of(g);
        Self {
            rows: p.rows,
            cols: if p.rows == 0 {
                0
            } else {
                g.stride[1] * (g.ow - 1) + g.dilation[1] * (g.kw - 1) + 1
            },
        }
    }

    /// Values of the padded image of `cin` channels.
    fn len_for(&self, cin: usize) -> usize {
        self.rows * self.cols * cin
    }

    /// Offset of the `cin` values that output position `pos` reads with tap `t = ki * kw + kj`.
    #[inline(always)]
    fn at(&self, g: &Geom, pos: usize, t: usize) -> usize {
        let (oy, ox) = (pos / g.ow, pos % g.ow);
        let (ki, kj) = (t / g.kw, t % g.kw);
        ((oy * g.stride[0] + ki * g.dilation[0]) * self.cols
            + ox * g.stride[1]
            + kj * g.dilation[1])
            * g.cin
    }

    /// The input positions `(iy, ix)` that lie inside the padded image, as the ranges of `iy`
    /// and `ix`.
    fn inside(&self, g: &Geom) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let [ph, pw] = g.pad;
        (
            0..g.ih.min(self.rows.saturating_sub(ph)),
            0..g.iw.min(self.cols.saturating_sub(pw)),
        )
    }

    /// Writes image `x [cin, ih, iw]` into `buf` (zeros in the padding).
    fn pad(&self, x: &[f32], g: &Geom, buf: &mut [f32]) {
        simd(
            #[inline(always)]
            || {
                buf.fill(0.0);
                let (ys, xs) = self.inside(g);
                let [ph, pw] = g.pad;
                let cin = g.cin;
                for iy in ys {
                    for ix in xs.clone() {
                        let at = ((iy + ph) * self.cols + ix + pw) * cin;
                        let pos = iy * g.iw + ix;
                        for (c, d) in buf[at..at + cin].iter_mut().enumerate() {
                            *d = x[c * g.ih * g.iw + pos];
                        }
                    }
                }
            },
        )
    }

    /// Adds `buf` back onto `x [cin, ih, iw]`, dropping the padding (the adjoint of `pad`).
    fn unpad_add(&self, buf: &[f32], g: &Geom, x: &mut [f32]) {
        simd(
            #[inline(always)]
            || {
                let (ys, xs) = self.inside(g);
                let [ph, pw] = g.pad;
                let cin = g.cin;
                for iy in ys {
                    for ix in xs.clone() {
                        let at = ((iy + ph) * self.cols + ix + pw) * cin;
                        let pos = iy * g.iw + ix;
                        for (c, &v) in buf[at..at + cin].iter().enumerate() {
                            x[c * g.ih * g.iw + pos] += v;
                        }
                    }
                }
            },
        )
    }
}

/// `[outer, a, b]` reordered to `[outer, b, a]` (weights between `[cout, cin, taps]` and
/// `[cout, taps, cin]`: `reorder_taps(w, cout, cin, taps)` one way, `(w, cout, taps, cin)` back).
fn reorder_taps(w: &[f32], outer: usize, a: usize, b: usize) -> Vec<f32> {
    simd(
        #[inline(always)]
        || {
            let mut out = vec![0f32; outer * a * b];
            for (dst, src) in out
                .chunks_exact_mut(a * b)
                .zip(w.chunks_exact(a * b))
                .take(outer)
            {
                for (i, row) in src.chunks_exact(b).enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        dst[j * a + i] = v;
                    }
                }
            }
            out
        },
    )
}

/// Input channels from which [`Geom::channels_last`] holds: its runs are `cin`
/// values long, too short below this to beat the phase-split path.
const CHANNELS_LAST_MIN: usize = 8;

/// dL/dX `[n, cin, ih, iw]` of a convolution (and so the forward pass of a transposed
/// convolution): per image, the column matrix `Wᵀ · dY_n` added back onto the input's positions.
/// With `cin >= 8` the column matrix is built position-major and added in channel runs
/// (`input_grad_channels_last`), else row-major through the padded image (col2im).
pub fn input_grad(w: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    input_grad_onto(w, dy, None, g)
}

/// The forward pass of a transposed convolution with an optional bias: [`input_grad`] with `x`
/// (the transposed convolution's input `[n, cout, oh, ow]` in `g`'s terms) in the role of dY,
/// added onto `bias [cin]` per channel (each worker starts its images from the bias, so there is
/// no separate pass over the output).
pub fn transposed_forward(w: &[f32], x: &[f32], bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    input_grad_onto(w, x, bias, g)
}

/// [`input_grad`] added onto `start [cin]` per channel (zeros when `None`).
fn input_grad_onto(w: &[f32], dy: &[f32], start: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    if let Some(b) = start {
        assert_eq!(
            b.len(),
            g.cin,
            "transposed_forward: bias of {} values",
            b.len()
        );
    }
    if g.n == 0 || g.in_len() == 0 {
        return Vec::new();
    }
    if g.out_plane() == 0 {
        // No output position reads the input: dx is its starting values.
        return output(g.n * g.in_len(), |dx| {
            for image in dx.chunks_exact_mut(g.in_len()) {
                init_image(image, start, g.ih * g.iw);
            }
        });
    }
    if g.channels_last() {
        input_grad_channels_last(w, dy, start, g)
    } else {
        input_grad_col2im(w, dy, start, g)
    }
}

/// One image of an [`output`] `[channels, plane]` initialised to `start[c]` per channel (zeros
/// when `None`).
fn init_image<'a>(
    buf: &'a mut [MaybeUninit<f32>],
    start: Option<&[f32]>,
    plane: usize,
) -> &'a mut [f32] {
    match start {
        None => init(buf, 0.0),
        Some(b) => {
            let image = init(buf, 0.0);
            for (row, &v) in image.chunks_exact_mut(plane.max(1)).zip(b) {
                row.fill(v);
            }
            image
        }
    }
}

/// [`input_grad`] through a position-major column matrix. The weights are reordered once to
/// `W' [cout, kh, kw, cin]`; per image `colᵀ [oh*ow, kh*kw*cin] = dY_nᵀ · W'` (the GEMM's long
/// side is then the `kh*kw*cin` rows, which tiles well, where `oh*ow` such as 7x7 = 49 does
/// not), each output position's `kh*kw` runs of `cin` values are added onto a zero-padded
/// channels-last image `[rows, cols, cin]`, and that is transposed back onto `dx` without its
/// padding.
fn input_grad_channels_last(w: &[f32], dy: &[f32], start: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    let rows = g.col_rows();
    let plane = g.out_plane();
    let in_plane = g.ih * g.iw;
    if g.n == 0 || g.in_len() == 0 || plane == 0 {
        return Vec::new();
    }
    let wt = reorder_taps(w, g.cout, g.cin, g.kh * g.kw); // W' [cout, taps, cin]
    let cl = ChannelsLast::of(g);
    output(g.n * g.in_len(), |dx| {
        split_by_runs(dx, g.n, g.in_len())
            .into_par_iter()
            .for_each(|(out, run)| {
                simd(
                    #[inline(always)]
                    || {
                        let per = images_per_gemm(g);
                        let mut colt = vec![0f32; per * plane * rows];
                        let mut dy_block = vec![0f32; g.cout * per * plane];
                        let mut padded = vec![0f32; cl.len_for(g.cin)];
                        let start_image = run.start;
                        let mut first = run.start;
                        while first < run.end {
                            let count = per.min(run.end - first);
                            let ld = count * plane;
                            // colᵀ [count*plane, rows'] = dYᵀ · W' [cout, rows'] for `count` images at
                            // once, their dY gathered side by side as `[cout, count*plane]` first (one
                            // image's 7x7 = 49 positions tile the GEMM poorly; see `images_per_gemm`).
                            let lhs = if count == 1 {
                                &dy[first * g.cout * plane..(first + 1) * g.cout * plane]
                            } else {
                                for b in 0..count {
                                    let dyi = &dy[(first + b) * g.cout * plane..];
                                    for c in 0..g.cout {
                                        dy_block[c * ld + b * plane..c * ld + (b + 1) * plane]
                                            .copy_from_slice(&dyi[c * plane..(c + 1) * plane]);
                                    }
                                }
                                &dy_block[..g.cout * ld]
                            };
                            matmul(
                                ld,
                                rows,
                                g.cout,
                                &mut colt,
                                false,
                                lhs,
                                [1, ld as isize],
                                &wt,
                                [rows as isize, 1],
                            );
                            for b in 0..count {
                                let k = first + b - start_image;
                                let dxi = init_image(
                                    &mut out[k * g.in_len()..(k + 1) * g.in_len()],
                                    start,
                                    in_plane,
                                );
                                padded.fill(0.0);
                                let image = &colt[b * plane * rows..(b + 1) * plane * rows];
                                for (pos, src) in image.chunks_exact(rows).enumerate() {
                                    for (t, run) in src.chunks_exact(g.cin).enumerate() {
                                        let at = cl.at(g, pos, t);
                                        add_run(&mut padded[at..at + g.cin], run);
                                    }
                                }
                                cl.unpad_add(&padded, g, dxi);
                            }
                            first += count;
                        }
                    },
                )
            });
    })
}

/// [`input_grad`] through the row-major column matrix and [`col2im`].
fn input_grad_col2im(w: &[f32], dy: &[f32], start: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    let rows = g.col_rows();
    let plane = g.out_plane();
    let in_plane = g.ih * g.iw;
    if g.n == 0 || g.in_len() == 0 {
        return Vec::new();
    }
    output(g.n * g.in_len(), |dx| {
        split_by_runs(dx, g.n, g.in_len())
            .into_par_iter()
            .for_each(|(out, run)| {
                simd(
                    #[inline(always)]
                    || {
                        let mut scratch = Scratch::new(g);
                        for (k, i) in run.enumerate() {
                            let dyi = &dy[i * g.cout * plane..(i + 1) * g.cout * plane];
                            let xi = init_image(
                                &mut out[k * g.in_len()..(k + 1) * g.in_len()],
                                start,
                                in_plane,
                            );
                            // Wᵀ [rows, cout] (W is [cout, rows]) · dY_i [cout, plane].
                            let lhs_strides = [1, rows as isize];
                            if g.is_pointwise() {
                                // Onto the starting values (the bias) if any, else over the zeros.
                                matmul(
                                    rows,
                                    plane,
                                    g.cout,
                                    xi,
                                    start.is_some(),
                                    w,
                                    lhs_strides,
                                    dyi,
                                    [plane as isize, 1],
                                );
                            } else {
                                matmul(
                                    rows,
                                    plane,
                                    g.cout,
                                    &mut scratch.col,
                                    false,
                                    w,
                                    lhs_strides,
                                    dyi,
                                    [plane as isize, 1],
                                );
                                col2im(&mut scratch, g, xi);
                            }
                        }
                    },
                )
            });
    })
}

/// Both gradients of a transposed convolution, sharing one column matrix per image. `g` is the
/// geometry of the convolution that maps the transposed convolution's output back to its input
/// (as everywhere here), `dy` the gradient of that output and `x` the transposed convolution's
/// input: per image, `col = im2col(dY_n)` is built once, then `dX_n = W · col` (what
/// [`forward`] computes, without bias) and `dW += X_n · colᵀ` (what [`weight_grad`] computes
/// with `x` in the role of dY). Returns `(dx, dw)`, equal to those two calls.
pub fn transposed_grads(dy: &[f32], w: &[f32], x: &[f32], g: &Geom) -> (Vec<f32>, Vec<f32>) {
    let rows = g.col_rows();
    let plane = g.out_plane();
    let out_len = g.cout * plane;
    if g.n == 0 || out_len == 0 {
        return (vec![0f32; g.n * out_len], vec![0f32; g.cout * rows]);
    }
    let mut partials: Vec<Vec<f32>> = Vec::new();
    let dx = output(g.n * out_len, |dx| {
        partials = split_by_runs(dx, g.n, out_len)
            .into_par_iter()
            .map(|(out, run)| {
                simd(
                    #[inline(always)]
                    || {
                        let start = run.start;
                        let mut acc = vec![0f32; g.cout * rows];
                        let mut scratch = Scratch::for_images(g, images_per_gemm(g));
                        let mut block = Vec::new();
                        for_each_block(dy, g, run, &mut scratch, |first, count, col, ld| {
                            // dX = W [cout, rows] · col [rows, count * plane], image by image.
                            let dst = &mut out
                                [(first - start) * out_len..(first - start + count) * out_len];
                            weights_times_columns(g, w, None, col, ld, count, dst, &mut block);
                            for b in 0..count {
                                // dW += X_i [cout, plane] · colᵀ [plane, rows] (image b's columns).
                                let i = first + b;
                                matmul(
                                    g.cout,
                                    rows,
                                    plane,
                                    &mut acc,
                                    true,
                                    &x[i * out_len..(i + 1) * out_len],
                                    [plane as isize, 1],
                                    &col[b * plane..],
                                    [1, ld as isize],
                                );
                            }
                        });
                        acc
                    },
                )
            })
            .collect();
    });
    (dx, sum_partials(partials, g.cout * rows))
}

/// The slope of channel `c` (one shared slope when `alpha` has a single value).
#[inline(always)]
fn slope(alpha: &[f32], c: usize) -> f32 {
    if alpha.len() == 1 { alpha[0] } else { alpha[c] }
}

/// `v < 0 ? a : 1`, the factor PReLU and leaky ReLU apply to `v` (and to its gradient). Written
/// as a select that multiplies, so their loops vectorise without branches (`v * 1` is `v`
/// exactly, so values are those of the branchy definition, -0 and NaN included).
#[inline(always)]
fn leak(v: f32, a: f32) -> f32 {
    if v < 0.0 { a } else { 1.0 }
}

/// Elements per parallel chunk of the elementwise kernels.
const CHUNK: usize = 1 << 14;

/// PReLU, `y = x < 0 ? alpha[c] * x : x`, for `x [n, c, plane]` (burn's definition, so the
/// gradient at exactly 0 is that of the identity). Images run in parallel.
pub fn prelu_forward(x: &[f32], alpha: &[f32], channels: usize, plane: usize) -> Vec<f32> {
    let image = (channels * plane).max(1);
    output(x.len(), |y| {
        y.par_chunks_mut(image)
            .zip(x.par_chunks(image))
            .for_each(|(yi, xi)| {
                simd(
                    #[inline(always)]
                    || {
                        for (c, (yc, xc)) in yi
                            .chunks_mut(plane.max(1))
                            .zip(xi.chunks(plane.max(1)))
                            .enumerate()
                        {
                            let a = slope(alpha, c);
                            for (o, &v) in yc.iter_mut().zip(xc) {
                                o.write(v * leak(v, a));
                            }
                        }
                    },
                )
            });
    })
}

/// Gradients of PReLU: `dx = dy * (x < 0 ? alpha[c] : 1)` and `dalpha[c] = Σ_{x < 0} dy * x`
/// (summed over all channels when `alpha` is a single shared slope).
pub fn prelu_backward(
    x: &[f32],
    alpha: &[f32],
    dy: &[f32],
    channels: usize,
    plane: usize,
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), dy.len(), "prelu_backward: x and dy");
    let image = (channels * plane).max(1);
    let plane = plane.max(1);
    let mut dalpha = Vec::new();
    let dx = output(x.len(), |dx| {
        dalpha = dx
            .par_chunks_mut(image)
            .zip(x.par_chunks(image).zip(dy.par_chunks(image)))
            .fold(
                || vec![0f32; alpha.len()],
                |mut acc, (dxi, (xi, dyi))| {
                    simd(
                        #[inline(always)]
                        || {
                            let dxi = init(dxi, 0.0);
                            for (c, (dxc, (xc, dyc))) in dxi
                                .chunks_mut(plane)
                                .zip(xi.chunks(plane).zip(dyi.chunks(plane)))
                                .enumerate()
                            {
                                let a = slope(alpha, c);
                                // One pass: dx, and dalpha's sum in eight lanes (vectorisable).
                                let mut lanes = [0f32; 8];
                                let step = |o: &mut f32, v: f32, g: f32, lane: &mut f32| {
                                    *o = g * leak(v, a);
                                    *lane += if v < 0.0 { g * v } else { 0.0 };
                                };
                                let (mut o8, mut x8, mut g8) = (
                                    dxc.chunks_exact_mut(8),
                                    xc.chunks_exact(8),
                                    dyc.chunks_exact(8),
                                );
                                for ((o, x), g) in (&mut o8).zip(&mut x8).zip(&mut g8) {
                                    for k in 0..8 {
                                        step(&mut o[k], x[k], g[k], &mut lanes[k]);
                                    }
                                }
                                let mut tail = 0f32;
                                for ((o, &v), &g) in o8
                                    .into_remainder()
                                    .iter_mut()
                                    .zip(x8.remainder())
                                    .zip(g8.remainder())
                                {
                                    step(o, v, g, &mut tail);
                                }
                                let da = lanes.iter().sum::<f32>() + tail;
                                acc[if alpha.len() == 1 { 0 } else { c }] += da;
                            }
                            acc
                        },
                    )
                },
            )
            .reduce(
                || vec![0f32; alpha.len()],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x += y;
                    }
                    a
                },
            );
    });
    (dx, dalpha)
}

/// Leaky ReLU, `y = x < 0 ? slope * x : x` (burn's definition), any shape. Chunks run in
/// parallel.
pub fn leaky_relu_forward(x: &[f32], slope: f32) -> Vec<f32> {
    output(x.len(), |y| {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(move |(o, x)| {
                simd(
                    #[inline(always)]
                    || {
                        for (o, &v) in o.iter_mut().zip(x) {
                            o.write(v * leak(v, slope));
                        }
                    },
                )
            });
    })
}

/// The input gradient of leaky ReLU: `dx = dy * (x < 0 ? slope : 1)`. Chunks run in parallel.
pub fn leaky_relu_backward(x: &[f32], slope: f32, dy: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), dy.len(), "leaky_relu_backward: x and dy");
    output(x.len(), |dx| {
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
            .for_each(move |(o, (x, g))| {
                simd(
                    #[inline(always)]
                    || {
                        for ((o, &v), &g) in o.iter_mut().zip(x).zip(g) {
                            o.write(g * leak(v, slope));
                        }
                    },
                )
            });
    })
}

/// ReLU, `y = x <= 0 ? 0 : x` (burn's definition: +0 for every non-positive input, NaN kept),
/// any shape, as a select (vectorised). Chunks run in parallel.
pub fn relu_forward(x: &[f32]) -> Vec<f32> {
    output(x.len(), |y| {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| {
                simd(
                    #[inline(always)]
                    || {
                        for (o, &v) in o.iter_mut().zip(x) {
                            o.write(if v <= 0.0 { 0.0 } else { v });
                        }
                    },
                )
            });
    })
}

/// The input gradient of ReLU: `dx = x <= 0 ? 0 : dy` (burn masks on its output `y <= 0`, the
/// same positions). Chunks run in parallel.
pub fn relu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), dy.len(), "relu_backward: x and dy");
    output(x.len(), |dx| {
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
            .for_each(|(o, (x, g))| {
                simd(
                    #[inline(always)]
                    || {
                        for ((o, &v), &g) in o.iter_mut().zip(x).zip(g) {
                            o.write(if v <= 0.0 { 0.0 } else { g });
                        }
                    },
                )
            });
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
    fn geom(
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

    /// The shared-column transposed-convolution gradients equal the two separate kernels, for
    /// a strided/padded geometry, a 1x1 one, and more images than threads.
    #[test]
    fn transposed_grads_equal_the_separate_kernels() {
        let strided = Geom {
            n: 5,
            cin: 3,
            ih: 8,
            iw: 8,
            cout: 4,
            oh: 4,
            ow: 4,
            kh: 4,
            kw: 4,
            stride: [2, 2],
            pad: [1, 1],
            dilation: [1, 1],
        };
        let pointwise = Geom {
            kh: 1,
            kw: 1,
            stride: [1, 1],
            pad: [0, 0],
            oh: 8,
            ow: 8,
            ..strided
        };
        for g in [strided, pointwise] {
            let dy = lcg(1, g.n * g.in_len());
            let w = lcg(2, g.cout * g.col_rows());
            let x = lcg(3, g.n * g.cout * g.out_plane());
            let (dx, dw) = transposed_grads(&dy, &w, &x, &g);
            let (dx_ref, dw_ref) = (forward(&dy, &w, None, &g), weight_grad(&dy, &x, &g));
            for (a, b) in dx.iter().zip(&dx_ref).chain(dw.iter().zip(&dw_ref)) {
                assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
            }
            assert_eq!((dx.len(), dw.len()), (dx_ref.len(), dw_ref.len()));
        }
    }

    /// Central finite differences in f64 arithmetic of the loss sum(conv(x) * r), evaluated with
    /// plain loops, against the weight and input gradients of the kernels above.
    #[test]
    fn kernels_match_finite_differences() {
        let g = Geom {
            n: 2,
            cin: 2,
            ih: 5,
            iw: 6,
            cout: 3,
            oh: 3,
            ow: 3,
            kh: 3,
            kw: 2,
            stride: [2, 2],
            pad: [1, 0],
            dilation: [1, 2],
        };
        let x = lcg(1, g.n * g.in_len());
        let w = lcg(2, g.cout * g.col_rows());
        let r = lcg(3, g.n * g.cout * g.out_plane());
        // The loss by direct summation, f64.
        let loss = |x: &[f32], w: &[f32]| -> f64 {
            let mut total = 0f64;
            for n in 0..g.n {
                for co in 0..g.cout {
                    for oy in 0..g.oh {
                        for ox in 0..g.ow {
                            let mut acc = 0f64;
                            for ci in 0..g.cin {
                                for ki in 0..g.kh {
                                    for kj in 0..g.kw {
                                        let iy = (oy * g.stride[0] + ki * g.dilation[0]) as isize
                                            - g.pad[0] as isize;
                                        let ix = (ox * g.stride[1] + kj * g.dilation[1]) as isize
                                            - g.pad[1] as isize;
                                        if iy < 0
                                            || ix < 0
                                            || iy >= g.ih as isize
                                            || ix >= g.iw as isize
                                        {
                                            continue;
                                        }
                                        let xv = x[((n * g.cin + ci) * g.ih + iy as usize) * g.iw
                                            + ix as usize];
                                        let wv = w[((co * g.cin + ci) * g.kh + ki) * g.kw + kj];
                                        acc += xv as f64 * wv as f64;
                                    }
                                }
                            }
                            total += acc * r[((n * g.cout + co) * g.oh + oy) * g.ow + ox] as f64;
                        }
                    }
                }
            }
            total
        };
        let dw = weight_grad(&x, &r, &g);
        let dx = input_grad(&w, &r, &g);
        let eps = 1e-2f32;
        for (i, analytic) in dw.iter().enumerate() {
            let (mut a, mut b) = (w.clone(), w.clone());
            a[i] += eps;
            b[i] -= eps;
            let numeric = (loss(&x, &a) - loss(&x, &b)) / (2.0 * eps as f64);
            assert!(
                (numeric - *analytic as f64).abs() < 1e-3,
                "dW[{i}]: {numeric} vs {analytic}"
            );
        }
        for (i, analytic) in dx.iter().enumerate() {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += eps;
            b[i] -= eps;
            let numeric = (loss(&a, &w) - loss(&b, &w)) / (2.0 * eps as f64);
            assert!(
                (numeric - *analytic as f64).abs() < 1e-3,
                "dX[{i}]: {numeric} vs {analytic}"
            );
        }
    }

    /// im2col against its definition, and col2im against the definition of its adjoint (each
    /// column entry added onto the input value it was read from), over geometries with strides 1
    /// to 3, paddings wider than the kernel, dilation, kernels larger than the input and outputs
    /// that stop short of the input's far edge.
    #[test]
    fn im2col_and_col2im_match_their_definitions() {
        // (cin, ih, iw, kh, kw, stride, pad, dilation)
        let cases = [
            (2, 8, 8, 4, 4, [2, 2], [1, 1], [1, 1]),
            (1, 28, 28, 4, 4, [2, 2], [1, 1], [1, 1]),
            (3, 7, 9, 3, 3, [1, 1], [1, 1], [1, 1]),
            (2, 5, 6, 3, 2, [2, 2], [1, 0], [1, 2]),
            (1, 6, 7, 5, 5, [1, 1], [2, 2], [1, 1]),
            (2, 9, 10, 3, 4, [3, 2], [0, 3], [2, 1]),
            (1, 3, 3, 5, 5, [1, 1], [4, 4], [1, 1]),
            (2, 11, 8, 2, 3, [3, 3], [0, 0], [1, 1]),
            (1, 4, 4, 9, 9, [2, 2], [4, 4], [1, 1]),
        ];
        for (cin, ih, iw, kh, kw, stride, pad, dilation) in cases {
            let g = geom(1, cin, [ih, iw], 1, [kh, kw], stride, pad, dilation);
            // Which input value (if any) column entry (row, position) reads.
            let source = |row: usize, pos: usize| -> Option<usize> {
                let (c, ki, kj) = (row / (kh * kw), row / kw % kh, row % kw);
                let (oy, ox) = (pos / g.ow, pos % g.ow);
                let iy = (oy * stride[0] + ki * dilation[0]) as isize - pad[0] as isize;
                let ix = (ox * stride[1] + kj * dilation[1]) as isize - pad[1] as isize;
                ((0..ih as isize).contains(&iy) && (0..iw as isize).contains(&ix))
                    .then(|| (c * ih + iy as usize) * iw + ix as usize)
            };
            let x = lcg(7, g.in_len());
            let mut scratch = Scratch::new(&g);
            im2col(&x, &g, &mut scratch);
            let plane = g.out_plane();
            let mut adjoint = vec![0f32; g.in_len()];
            for row in 0..g.col_rows() {
                for pos in 0..plane {
                    let expected = source(row, pos).map_or(0.0, |i| x[i]);
                    assert_eq!(
                        scratch.col[row * plane + pos],
                        expected,
                        "{g:?} {row} {pos}"
                    );
                    if let Some(i) = source(row, pos) {
                        adjoint[i] += (row * plane + pos) as f32;
                    }
                }
            }
            for (i, v) in scratch.col.iter_mut().enumerate() {
                *v = i as f32;
            }
            let mut back = vec![0f32; g.in_len()];
            col2im(&mut scratch, &g, &mut back);
            assert_eq!(back, adjoint, "{g:?}");
        }
    }

    /// The channels-last input and weight gradients equal the col2im / row-major ones (checked
    /// against finite differences above) on W2/W3's strided layers and on padded, dilated,
    /// odd-sized ones, including a padding wider than the kernel reaches, an output that stops
    /// short of the input's far edge, and enough images for several GEMM blocks.
    #[test]
    fn channels_last_gradients_equal_the_row_major_ones() {
        // (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation)
        let cases = [
            (3, 8, 14, 14, 4, 4, 4, [2, 2], [1, 1], [1, 1]),
            (2, 16, 7, 9, 3, 3, 3, [1, 1], [1, 1], [1, 1]),
            (2, 9, 10, 11, 5, 3, 2, [2, 3], [2, 0], [2, 1]),
            (1, 8, 4, 4, 2, 5, 5, [1, 1], [4, 4], [1, 1]),
            (2, 8, 11, 8, 3, 2, 3, [3, 3], [0, 0], [1, 1]),
            // Several GEMM blocks per thread (`images_per_gemm`: 5 images of 7x7, then 1).
            (12, 8, 14, 14, 4, 4, 4, [2, 2], [1, 1], [1, 1]),
        ];
        for (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation) in cases {
            let g = geom(n, cin, [ih, iw], cout, [kh, kw], stride, pad, dilation);
            let w = lcg(5, g.cout * g.col_rows());
            let dy = lcg(6, g.n * g.cout * g.out_plane());
            let x = lcg(7, g.n * g.in_len());
            for (a, b) in [
                (
                    input_grad_channels_last(&w, &dy, None, &g),
                    input_grad_col2im(&w, &dy, None, &g),
                ),
                (
                    weight_grad_channels_last(&x, &dy, &g),
                    weight_grad_rows(&x, &dy, &g),
                ),
            ] {
                assert_eq!(a.len(), b.len());
                for (u, v) in a.iter().zip(&b) {
                    assert!((u - v).abs() <= 1e-5 * (1.0 + v.abs()), "{g:?}: {u} vs {v}");
                }
            }
        }
    }

    /// A transposed convolution's forward pass with a bias is the input gradient plus the bias
    /// per channel, on every path: channels-last (`cin >= 8`), col2im, pointwise (one GEMM onto
    /// the bias) and an output with no positions (the bias alone).
    #[test]
    fn transposed_forward_adds_the_bias() {
        // (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation)
        let cases = [
            (3, 8, 14, 14, 4, 4, 4, [2, 2], [1, 1], [1, 1]),
            (2, 3, 14, 14, 5, 4, 4, [2, 2], [1, 1], [1, 1]),
            (2, 9, 10, 11, 5, 3, 2, [2, 3], [2, 0], [2, 1]),
            (2, 4, 5, 6, 3, 1, 1, [1, 1], [0, 0], [1, 1]),
            (2, 2, 3, 3, 3, 3, 3, [1, 1], [0, 0], [1, 1]),
        ];
        for (i, (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation)) in
            cases.into_iter().enumerate()
        {
            let mut g = geom(n, cin, [ih, iw], cout, [kh, kw], stride, pad, dilation);
            if i == cases.len() - 1 {
                // No output positions at all.
                (g.oh, g.ow) = (0, 0);
            }
            let w = lcg(8, g.cout * g.col_rows());
            let x = lcg(9, g.n * g.cout * g.out_plane());
            let b = lcg(10, g.cin);
            let plain = input_grad(&w, &x, &g);
            let with_bias = transposed_forward(&w, &x, Some(&b), &g);
            assert_eq!(with_bias.len(), plain.len(), "{g:?}");
            let plane = g.ih * g.iw;
            for (k, (u, v)) in with_bias.iter().zip(&plain).enumerate() {
                let want = v + b[(k / plane) % g.cin];
                assert!(
                    (u - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{g:?} at {k}: {u} vs {want}"
                );
            }
            assert_eq!(transposed_forward(&w, &x, None, &g), plain, "{g:?}");
        }
    }

    /// The forward pass (strided, stride-1, dilated, pointwise and padded-beyond-the-kernel, one
    /// image per GEMM and several) against the convolution's definition, with and without a bias.
    #[test]
    fn forward_matches_the_definition() {
        // (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation)
        let cases = [
            (2, 3, 14, 14, 4, 4, 4, [2, 2], [1, 1], [1, 1]),
            (1, 2, 9, 40, 3, 3, 3, [1, 1], [1, 1], [1, 1]),
            (2, 2, 10, 11, 5, 3, 2, [2, 3], [2, 0], [2, 1]),
            (1, 3, 6, 6, 2, 1, 1, [1, 1], [0, 0], [1, 1]),
            (1, 1, 5, 5, 2, 5, 5, [1, 1], [4, 4], [1, 1]),
            // Enough images that each thread's run is cut into several GEMM blocks
            // (`images_per_gemm`: 5 images of 7x7, then a shorter block).
            (37, 3, 14, 14, 4, 4, 4, [2, 2], [1, 1], [1, 1]),
            (9, 2, 10, 11, 5, 3, 2, [2, 3], [2, 0], [2, 1]),
        ];
        for (n, cin, ih, iw, cout, kh, kw, stride, pad, dilation) in cases {
            let g = geom(n, cin, [ih, iw], cout, [kh, kw], stride, pad, dilation);
            let x = lcg(11, g.n * g.in_len());
            let w = lcg(12, g.cout * g.col_rows());
            let b = lcg(13, g.cout);
            for bias in [None, Some(&b[..])] {
                let y = forward(&x, &w, bias, &g);
                for (idx, &v) in y.iter().enumerate() {
                    let (img, co) = (idx / (g.cout * g.out_plane()), idx / g.out_plane() % g.cout);
                    let (oy, ox) = (idx % g.out_plane() / g.ow, idx % g.ow);
                    let mut acc = bias.map_or(0f64, |b| b[co] as f64);
                    for c in 0..cin {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let iy =
                                    (oy * stride[0] + ki * dilation[0]) as isize - pad[0] as isize;
                                let ix =
                                    (ox * stride[1] + kj * dilation[1]) as isize - pad[1] as isize;
                                if (0..ih as isize).contains(&iy) && (0..iw as isize).contains(&ix)
                                {
                                    let xv =
                                        x[((img * cin + c) * ih + iy as usize) * iw + ix as usize];
                                    let wv = w[((co * cin + c) * kh + ki) * kw + kj];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                    }
                    assert!((v as f64 - acc).abs() < 1e-4, "{g:?} y[{idx}] {v} vs {acc}");
                }
            }
        }
    }

    #[test]
    fn valid_range_bounds_taps_inside_the_image() {
        // 5 outputs, stride 2, input 8, pad 1: tap offset 0 reads o*2-1 → valid for o >= 1.
        assert_eq!(valid_range(5, 8, 2, 0, 1), (1, 5));
        // offset 3: o*2+2 < 8 → o < 3.
        assert_eq!(valid_range(5, 8, 2, 3, 1), (0, 3));
        // A tap past the padded end reads nothing.
        assert_eq!(valid_range(4, 2, 1, 9, 0), (0, 0));
    }

    #[test]
    fn bias_grad_sums_images_and_positions() {
        // dy [2, 2, 1, 2]
        let dy = [1.0, 2.0, 10.0, 20.0, 3.0, 4.0, 30.0, 40.0];
        assert_eq!(bias_grad(&dy, 2, 2, 2), vec![10.0, 100.0]);
    }

    /// PReLU against its definition, and its gradients against central finite differences of
    /// sum(prelu(x) * r).
    #[test]
    fn prelu_matches_definition_and_finite_differences() {
        let (n, c, plane) = (3, 2, 13); // 13: one 8-value block and a tail per plane
        // No value of x is 0, where the derivative has its kink.
        let x: Vec<f32> = (0..n * c * plane)
            .map(|i| ((i * 37 % 23) as f32 - 11.5) / 7.0)
            .collect();
        let r: Vec<f32> = (0..n * c * plane)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) / 5.0)
            .collect();
        for alpha in [vec![0.25f32, -0.5], vec![0.1]] {
            let y = prelu_forward(&x, &alpha, c, plane);
            for (i, (&v, &o)) in x.iter().zip(&y).enumerate() {
                let a = slope(&alpha, (i / plane) % c);
                assert_eq!(o, if v < 0.0 { a * v } else { v });
            }
            let loss = |x: &[f32], alpha: &[f32]| -> f64 {
                prelu_forward(x, alpha, c, plane)
                    .iter()
                    .zip(&r)
                    .map(|(a, b)| (*a as f64) * (*b as f64))
                    .sum()
            };
            let (dx, da) = prelu_backward(&x, &alpha, &r, c, plane);
            let eps = 1e-3f32;
            for i in 0..x.len() {
                let (mut p, mut m) = (x.clone(), x.clone());
                p[i] += eps;
                m[i] -= eps;
                let num = (loss(&p, &alpha) - loss(&m, &alpha)) / (2.0 * eps as f64);
                assert!(
                    (num - dx[i] as f64).abs() < 1e-3,
                    "dx[{i}] {num} vs {}",
                    dx[i]
                );
            }
            for k in 0..alpha.len() {
                let (mut p, mut m) = (alpha.clone(), alpha.clone());
                p[k] += eps;
                m[k] -= eps;
                let num = (loss(&x, &p) - loss(&x, &m)) / (2.0 * eps as f64);
                assert!(
                    (num - da[k] as f64).abs() < 1e-2,
                    "dalpha[{k}] {num} vs {}",
                    da[k]
                );
            }
        }
    }

    #[test]
    fn relu_matches_its_definition() {
        let x = [-2.0f32, -0.0, 0.0, 0.25, f32::NAN, 3.0];
        let dy = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = relu_forward(&x);
        assert_eq!(&y[..4], &[0.0, 0.0, 0.0, 0.25]);
        assert!(y[1].is_sign_positive() && y[4].is_nan() && y[5] == 3.0);
        assert_eq!(relu_backward(&x, &dy)[..4], [0.0, 0.0, 0.0, 4.0]);
        assert_eq!(relu_backward(&x, &dy)[4..], [5.0, 6.0]);
    }

    #[test]
    fn leaky_relu_matches_its_definition() {
        let x = [-2.0f32, -0.5, 0.0, 0.25, 3.0];
        let dy = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(
            leaky_relu_forward(&x, 0.2),
            vec![-0.4, -0.1, 0.0, 0.25, 3.0]
        );
        assert_eq!(
            leaky_relu_backward(&x, 0.2, &dy),
            vec![0.2, 0.4, 3.0, 4.0, 5.0]
        );
    }
}
