//! Dense layers: [`linear`], a drop-in for `Linear::forward` on 2-D input with genlab's kernels
//! on flex (`genlab_kernels::linear_forward` / `linear_grads`: one GEMM each way into
//! uninitialised outputs, the bias written first and accumulated onto).
//!
//! burn's `Linear` on flex is a matmul and a broadcast bias add. burn-flex allocates each
//! product as a zeroed byte vector that its `Bytes` then copies into an aligned buffer (a memset
//! and a memcpy of every activation and gradient), and the bias add is one more pass into a new
//! buffer. Measured share and effect: BENCHMARKS.md (issue 22).
//!
//! As in [`super::conv`]: the default bodies are burn's own ops (what every backend has),
//! `Flex` runs the forward kernel, `Autodiff<Flex>` records it with [`LinearStep`] on the tape,
//! and anything else (other dtypes, GPU backends) takes burn's path.

#[cfg(any(feature = "wgpu", feature = "cuda"))]
use burn::backend::Autodiff;
use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::nn::Linear;
use burn::tensor::{Shape, Tensor};

use super::{AdTensor, contiguous, flex, is_f32, values};

/// Dense layers whose forward pass and autodiff step a backend may provide itself.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait LinearBackend: Backend {
    /// `x [n, in] · w [in, out] + bias [out]`, as `burn::tensor::module::linear`.
    fn linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        burn_linear_bias::<Self>(x, weight, bias)
    }

    /// `x [n, in] · w [in, out]`.
    fn linear_nobias(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_matmul(x, weight)
    }
}

/// Inference on flex runs the forward kernel too (it is what training runs).
impl LinearBackend for Flex {
    fn linear_bias(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        forward(x, weight, Some(bias))
    }

    fn linear_nobias(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        forward(x, weight, None)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl LinearBackend for burn::backend::Cube {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<C: CheckpointStrategy> LinearBackend for Autodiff<burn::backend::Cube, C> {}

/// `[n, in] · [in, out] (+ [out])` on flex: genlab's kernel for f32, burn-flex's ops otherwise.
fn forward(x: FlexTensor, w: FlexTensor, b: Option<FlexTensor>) -> FlexTensor {
    let f32s = is_f32(&[&x, &w]) && b.as_ref().is_none_or(|b| is_f32(&[b]));
    if !f32s {
        return match b {
            Some(b) => burn_linear_bias::<Flex>(x, w, b),
            None => Flex::float_matmul(x, w),
        };
    }
    let (x, w) = (contiguous(&x), contiguous(&w));
    let b = b.map(|b| contiguous(&b));
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    let (n, din, dout) = (xs[0], xs[1], ws[1]);
    let y = genlab_kernels::linear_forward(
        values(&x),
        values(&w),
        b.as_ref().map(values),
        n,
        din,
        dout,
    );
    flex(y, Shape::new([n, dout]))
}

/// burn's `linear` in backend ops: the matmul, then the bias broadcast over the rows.
fn burn_linear_bias<B: Backend>(
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    b: FloatTensor<B>,
) -> FloatTensor<B> {
    let y = B::float_matmul(x, w);
    let shape = y.shape();
    let row = Shape::new([1, shape[1]]);
    B::float_add(y, B::float_expand(B::float_reshape(b, row), shape))
}

/// Backward step of a dense layer: the checkpointed input and weight; the bias gradient needs
/// only dY.
#[derive(Debug)]
struct LinearStep;

type LinearState = (NodeId, NodeId);

fn linear_backward<const N: usize>(
    ops: Ops<LinearState, N>,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) {
    let dy = grads.consume::<Flex>(&ops.node);
    let (x_id, w_id) = ops.state;
    let x = checkpointer.retrieve_node_output::<FlexTensor>(x_id);
    let w = checkpointer.retrieve_node_output::<FlexTensor>(w_id);
    let id = |i: usize| ops.parents.get(i).and_then(|p| p.as_ref()).map(|p| p.id);
    let (x_node, w_node, b_node) = (id(0), id(1), id(2));
    let (x, w, dy) = (contiguous(&x), contiguous(&w), contiguous(&dy));
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    let (n, din, dout) = (xs[0], xs[1], ws[1]);
    if !is_f32(&[&x, &w, &dy]) {
        // burn's own formulas for other dtypes: dX = dY·Wᵀ, dW = Xᵀ·dY, db = sum over rows.
        if let Some(node) = x_node {
            let wt = Flex::float_swap_dims(w.clone(), 0, 1);
            grads.register::<Flex>(node, Flex::float_matmul(dy.clone(), wt));
        }
        if let Some(node) = w_node {
            let xt = Flex::float_swap_dims(x, 0, 1);
            grads.register::<Flex>(node, Flex::float_matmul(xt, dy.clone()));
        }
        if let Some(node) = b_node {
            let db = Flex::float_reshape(Flex::float_sum_dim(dy, 0), Shape::new([dout]));
            grads.register::<Flex>(node, db);
        }
        return;
    }
    let (dx, dw, db) = genlab_kernels::linear_grads(
        values(&x),
        values(&w),
        values(&dy),
        n,
        din,
        dout,
        [x_node.is_some(), w_node.is_some(), b_node.is_some()],
    );
    if let (Some(node), Some(dx)) = (x_node, dx) {
        grads.register::<Flex>(node, flex(dx, Shape::new([n, din])));
    }
    if let (Some(node), Some(dw)) = (w_node, dw) {
        grads.register::<Flex>(node, flex(dw, Shape::new([din, dout])));
    }
    if let (Some(node), Some(db)) = (b_node, db) {
        grads.register::<Flex>(node, flex(db, Shape::new([dout])));
    }
}

impl Backward<Flex, 2> for LinearStep {
    type State = LinearState;
    fn backward(self, ops: Ops<LinearState, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
        linear_backward(ops, grads, ck);
    }
}

impl Backward<Flex, 3> for LinearStep {
    type State = LinearState;
    fn backward(self, ops: Ops<LinearState, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
        linear_backward(ops, grads, ck);
    }
}

impl<C: CheckpointStrategy> LinearBackend for burn::backend::Autodiff<Flex, C> {
    fn linear_bias(x: AdTensor<C>, weight: AdTensor<C>, bias: AdTensor<C>) -> AdTensor<C> {
        match <LinearStep as Backward<Flex, 3>>::prepare::<C>(
            LinearStep,
            [x.node(), weight.node(), bias.node()],
        )
        .compute_bound()
        .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                let out = forward(
                    x.into_primitive(),
                    weight.into_primitive(),
                    Some(bias.into_primitive()),
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(
                x.into_primitive(),
                weight.into_primitive(),
                Some(bias.into_primitive()),
            )),
        }
    }

    fn linear_nobias(x: AdTensor<C>, weight: AdTensor<C>) -> AdTensor<C> {
        match <LinearStep as Backward<Flex, 2>>::prepare::<C>(LinearStep, [x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                prep.finish(
                    state,
                    forward(x.into_primitive(), weight.into_primitive(), None),
                )
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(x.into_primitive(), weight.into_primitive(), None))
            }
        }
    }
}

/// `layer.forward(x)` for a batch of rows, with genlab's kernels where the backend has them.
///
/// # Shapes
/// `[n, in] -> [n, out]`
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    let (x, w) = (x.into_dispatch(), layer.weight.val().into_dispatch());
    let out = match &layer.bias {
        Some(b) => <Dispatch as LinearBackend>::linear_bias(x, w, b.val().into_dispatch()),
        None => <Dispatch as LinearBackend>::linear_nobias(x, w),
    };
    Tensor::from_dispatch(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution};

    /// Outputs and the gradients of x, weight and bias equal burn's `Linear`'s, with and
    /// without a bias, on autodiff flex (the training path) and on flex (inference).
    #[test]
    fn matches_burns_linear_forward_and_gradients() {
        let d = Device::flex().autodiff();
        for (n, din, dout, bias) in [(5, 7, 3, true), (64, 300, 200, true), (3, 4, 6, false)] {
            let layer = LinearConfig::new(din, dout).with_bias(bias).init(&d);
            let x = Tensor::<2>::random([n, din], Distribution::Normal(0.0, 1.0), &d);
            let r = Tensor::<2>::random([n, dout], Distribution::Normal(0.0, 1.0), &d);
            let grads = |y: Tensor<2>, x: &Tensor<2>| {
                let g = (y.clone() * r.clone()).sum().backward();
                let mut out = vec![
                    y.flatten::<1>(0, 1),
                    x.grad(&g).expect("x grad").flatten(0, 1),
                    layer.weight.val().grad(&g).expect("w grad").flatten(0, 1),
                ];
                if let Some(b) = &layer.bias {
                    out.push(b.val().grad(&g).expect("b grad"));
                }
                out
            };
            let x1 = x.clone().detach().require_grad();
            let ours = grads(linear(&layer, x1.clone()), &x1);
            let x2 = x.clone().detach().require_grad();
            let theirs = grads(layer.forward(x2.clone()), &x2);
            for (a, b) in ours.into_iter().zip(theirs) {
                super::super::close(a.inner(), b.inner(), 1e-4);
            }
            let plain = layer.valid();
            let xi = x.inner();
            super::super::close(
                linear(&plain, xi.clone()).flatten(0, 1),
                plain.forward(xi).flatten(0, 1),
                1e-4,
            );
        }
    }
}
