//! Operations with genlab's own CPU kernels, forward and backward: convolutions, dense layers,
//! activations, training-mode batch norm, the Bernoulli (BCE) loss and the Adam update.
//!
//! burn-flex 0.22, the CPU backend, writes forward kernels only. Without help, the gradients of
//! its convolutions and activations are burn's generic formulas, and batch norm, the BCE loss
//! and Adam are compositions of generic elementwise ops, each a pass over memory into a new
//! buffer. genlab's kernels (the `genlab-kernels` crate) do the same arithmetic in one pass, or
//! as one GEMM per image for the convolutions.
//!
//! They are wired in through burn's backend-extension mechanism (`#[backend_extension]`), so
//! nothing in burn is patched. Each module here declares one extension trait over `Backend`
//! (the macro emits the trait and its `Dispatch` impl, nothing shared, so traits coexist):
//!
//! - the trait's default bodies are burn's own operations (and so burn's own autodiff), which
//!   every backend has: a backend without its own implementation runs exactly what burn runs;
//! - `Flex` overrides what its kernels do in one pass without a tape (the convolutions, so
//!   inference runs what training runs; batch norm, the loss, Adam), and `Autodiff<Flex, C>`
//!   records genlab's forward passes with its own backward step on the tape (the `Backward`
//!   impls: convolutions, activations, batch norm, the loss);
//! - the GPU backends (`Cube` and `Autodiff<Cube, C>`, with the `wgpu` or `cuda` feature) keep
//!   the default bodies;
//! - the macro implements the trait for `Dispatch`, routing each call to the backend of its
//!   tensors, so every backend the attribute lists (`Flex`, `Autodiff` of it, `Cube` behind the
//!   features) needs an impl, empty where the defaults serve; the functions on `Tensor`s here
//!   (`conv::conv2d`, `activation::relu`, ...) call the `Dispatch` impl.
//!
//! Anything the kernels do not cover (other dtypes, grouped convolutions, unexpected shapes)
//! takes burn's own path, so every function here is a drop-in for the burn call it names.
//! Tests compare outputs and gradients with burn's own; `genlab-kernels` tests the kernels
//! against definitions in f64 and finite differences. Speed figures: BENCHMARKS.md.
//!
//! - [`conv`]: `conv2d` and `conv_transpose2d`;
//! - [`activation`]: ReLU, leaky ReLU and PReLU;
//! - [`batch_norm`]: training-mode batch norm;
//! - [`bce`]: the stable BCE with logits, summed per row;
//! - [`adam`]: one Adam step of a parameter (the op under `optim::FusedAdam`);
//! - [`linear`]: dense layers.

pub mod activation;
pub mod adam;
pub mod batch_norm;
pub mod bce;
pub mod conv;
pub mod denormals;
pub mod linear;

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, DType, Flex};
use burn::tensor::{Shape, TensorData};

/// A float tensor of `Autodiff<Flex, C>`.
type AdTensor<C> = FloatTensor<Autodiff<Flex, C>>;

fn is_f32(ts: &[&FlexTensor]) -> bool {
    ts.iter().all(|t| t.dtype() == DType::F32)
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// A contiguous copy when needed; the f32 values of `t` in row-major order.
fn contiguous(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn values(t: &FlexTensor) -> &[f32] {
    // Callers check the dtype (is_f32) and pass tensors through contiguous() first.
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

/// The f32 values of `t` to overwrite in place, when it is contiguous and the only owner of its
/// buffer (no other tensor, graph state or checkpoint shares it): an elementwise op can then
/// write its output over its input instead of into a fresh buffer.
fn values_mut(t: &mut FlexTensor) -> Option<&mut [f32]> {
    if !is_f32(&[t]) {
        return None;
    }
    let (start, end) = t.layout().contiguous_offsets()?;
    t.try_storage_mut::<f32>()?.get_mut(start..end)
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, Shape::new(shape)))
}

/// A contiguous f32 tensor of `values` in the shape of `like`.
fn flex_like(values: Vec<f32>, like: &FlexTensor) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, like.layout().shape().clone()))
}

fn flex(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Asserts `a` and `b` are equal to `tol` relative to `1 + |b|`, element by element.
#[cfg(test)]
pub(crate) fn close(a: burn::tensor::Tensor<1>, b: burn::tensor::Tensor<1>, tol: f32) {
    let (a, b) = (
        a.into_data().try_into_vec::<f32>().expect("f32"),
        b.into_data().try_into_vec::<f32>().expect("f32"),
    );
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{i}: {x} vs {y}");
    }
}
