//! The Bernoulli decoder's loss: [`bce_with_logits_rows`], the numerically stable binary
//! cross-entropy of logits, summed per row (`[b, n], [b, n] -> [b]`), with gradients for the
//! logits and the targets.
//!
//! burn composes it from generic elementwise ops (clamp, abs, exp, log1p, ...), each a pass over
//! memory into a new buffer, forward and backward. [`BceBackend`] makes it one pass forward
//! (`genlab_kernels::pointwise::bce_with_logits_rows`) on flex and one backward on
//! `Autodiff<Flex>`; every other backend runs the same formula with burn's ops (figures:
//! BENCHMARKS.md, "Speed: AVX-512 GEMM and fused Adam/BCE").

use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Shape, Tensor};
use genlab_kernels::pointwise as kernels;

use super::{AdTensor, flex, is_f32, values};

/// The BCE a backend may fuse. The default body is burn's ops.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait BceBackend: Backend {
    /// BCE with logits summed over each row: `[b, n], [b, n] -> [b]`.
    fn bce_logits_rows(logits: FloatTensor<Self>, target: FloatTensor<Self>) -> FloatTensor<Self> {
        bce_rows_ops::<Self>(logits, target)
    }
}

/// `sum_j max(x, 0) - x t + log1p(exp(-|x|))` with burn's ops.
fn bce_rows_ops<B: Backend>(x: FloatTensor<B>, t: FloatTensor<B>) -> FloatTensor<B> {
    let rows = x.shape()[0];
    let pos = B::float_clamp_min(x.clone(), 0f32.into());
    let soft = B::float_log1p(B::float_exp(B::float_neg(B::float_abs(x.clone()))));
    let per = B::float_add(B::float_sub(pos, B::float_mul(x, t)), soft);
    B::float_reshape(B::float_sum_dim(per, 1), Shape::new([rows]))
}

/// Whether the BCE kernels apply: f32 `[b, n]` logits and targets of one shape.
fn bce_fits(x: &FlexTensor, t: &FlexTensor) -> bool {
    is_f32(&[x, t])
        && x.layout().shape().num_dims() == 2
        && x.layout().shape() == t.layout().shape()
}

fn bce_forward(x: &FlexTensor, t: &FlexTensor) -> FlexTensor {
    let (x, t) = (x.to_contiguous(), t.to_contiguous());
    let [rows, cols] = [x.layout().shape()[0], x.layout().shape()[1]];
    flex(
        kernels::bce_with_logits_rows(values(&x), values(&t), cols),
        Shape::new([rows]),
    )
}

impl BceBackend for Flex {
    fn bce_logits_rows(logits: FlexTensor, target: FlexTensor) -> FlexTensor {
        if !bce_fits(&logits, &target) {
            return bce_rows_ops::<Flex>(logits, target);
        }
        bce_forward(&logits, &target)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl BceBackend for burn::backend::Cube {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<C: CheckpointStrategy> BceBackend for Autodiff<burn::backend::Cube, C> {}

/// Backward step of the BCE; the state is the checkpointed logits and targets.
#[derive(Debug)]
struct BceStep;

impl Backward<Flex, 2> for BceStep {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous(); // [b]
        let x = ck
            .retrieve_node_output::<FlexTensor>(ops.state.0)
            .to_contiguous();
        let t = ck
            .retrieve_node_output::<FlexTensor>(ops.state.1)
            .to_contiguous();
        let shape = x.layout().shape().clone();
        let cols = shape[1];
        let [x_node, t_node] = ops.parents.each_ref().map(|p| p.as_ref().map(|p| p.id));
        if let Some(node) = x_node {
            let dx =
                kernels::bce_with_logits_rows_backward(values(&x), values(&t), values(&dy), cols);
            grads.register::<Flex>(node, flex(dx, shape.clone()));
        }
        if let Some(node) = t_node {
            // d/dt of (max(x, 0) - x t + ...) is -x.
            let dt: Vec<f32> = values(&x)
                .chunks(cols.max(1))
                .zip(values(&dy))
                .flat_map(|(row, &g)| row.iter().map(move |&x| -x * g))
                .collect();
            grads.register::<Flex>(node, flex(dt, shape));
        }
    }
}

impl<C: CheckpointStrategy> BceBackend for Autodiff<Flex, C> {
    fn bce_logits_rows(logits: AdTensor<C>, target: AdTensor<C>) -> AdTensor<C> {
        if !bce_fits(logits.primitive(), target.primitive()) {
            return bce_rows_ops::<Self>(logits, target);
        }
        match BceStep
            .prepare::<C>([logits.node(), target.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&logits), prep.checkpoint(&target));
                let out = bce_forward(logits.primitive(), target.primitive());
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(bce_forward(logits.primitive(), target.primitive()))
            }
        }
    }
}

/// Binary cross-entropy of logits against targets in [0, 1], summed per row, with the fused
/// kernel and gradient where the backend has them (see `loss::bce_with_logits`).
///
/// # Shapes
/// `[b, n], [b, n] -> [b]`
pub fn bce_with_logits_rows(logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let out =
        <Dispatch as BceBackend>::bce_logits_rows(logits.into_dispatch(), target.into_dispatch());
    Tensor::from_dispatch(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ops::close;
    use burn::tensor::{Device, TensorData};

    /// The fused loss and its gradients (logits and targets) equal burn's ops on autodiff flex.
    /// (No logit is exactly 0: there burn's composed ops give the subgradient `1 - t` of
    /// `max(x, 0)` plus 0 for `|x|`, while the loss is smooth with derivative `1/2 - t`, which
    /// the fused kernel returns.)
    #[test]
    fn bce_and_gradients_match_burns_ops() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_floats(
            TensorData::new(
                (0..24).map(|i| ((i * 7) % 13) as f32 / 2.0 - 3.1).collect(),
                [3, 8],
            ),
            &device,
        )
        .require_grad();
        let t = Tensor::<2>::from_floats(
            TensorData::new(
                (0..24).map(|i| ((i * 5) % 11) as f32 / 10.0).collect(),
                [3, 8],
            ),
            &device,
        )
        .require_grad();
        let w = Tensor::<1>::from_floats([0.5, -1.0, 2.0], &device);
        let fused = bce_with_logits_rows(x.clone(), t.clone());
        let pos = x.clone().clamp_min(0.0);
        let soft = x.clone().abs().neg().exp().log1p();
        let plain = (pos - x.clone() * t.clone() + soft)
            .sum_dim(1)
            .squeeze_dim(1);
        close(fused.clone().inner(), plain.clone().inner(), 1e-6);
        let g1 = (fused * w.clone()).sum().backward();
        let g2 = (plain * w).sum().backward();
        close(
            x.grad(&g1).expect("gradient").flatten(0, 1),
            x.grad(&g2).expect("gradient").flatten(0, 1),
            1e-6,
        );
        close(
            t.grad(&g1).expect("gradient").flatten(0, 1),
            t.grad(&g2).expect("gradient").flatten(0, 1),
            1e-6,
        );
    }
}
