//! CPU kernels on plain row-major f32 slices: 2-D convolutions and their gradients (`conv`) and
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
//!
//! Sources, one job each: `geometry` (`Geom`), `im2col` (the padded image, im2col and col2im),
//! `gemm` (the GEMM call, images split into per-thread runs and per-GEMM blocks), `conv/`
//! (`forward`, `weight_grad`, `input_grad`, `transposed`, and the `channels_last` image they
//! share), `linear` (dense layers: one GEMM each way), `activation` (ReLU, leaky ReLU, PReLU),
//! `pointwise/` (`adam`, `bce`, `batch_norm`), and the helpers every kernel runs through: `simd`
//! (the run-time SIMD dispatch, and the 8x8 transpose of the channels-last image) and `output`
//! (the uninitialised outputs). `examples/linear_threads.rs` times the dense layers' products on
//! one thread and on all.

mod activation;
mod conv;
mod gemm;
mod geometry;
mod im2col;
mod linear;
mod output;
pub mod pointwise;
mod simd;
pub use simd::widest as widest_simd;
#[cfg(test)]
mod test_util;

pub use activation::{
    leaky_relu_backward, leaky_relu_backward_in_place, leaky_relu_forward, prelu_backward,
    prelu_backward_in_place, prelu_forward, relu_backward, relu_backward_in_place, relu_forward,
    relu_in_place, tanh_backward_in_place, tanh_in_place,
};
pub use conv::bias_grad;
pub use conv::forward::forward;
pub use conv::input_grad::input_grad;
pub use conv::transposed::{transposed_forward, transposed_grads};
pub use conv::weight_grad::weight_grad;
pub use geometry::Geom;
pub use linear::{
    input_grad as linear_input_grad, linear_forward, linear_grads, runs_parallel,
    transposes_weights,
};
