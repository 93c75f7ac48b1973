//! The autodiff step of the convolutions on `Autodiff<Flex>`: the forward pass is recorded with
//! a `ConvStep` on the tape, whose backward runs genlab's gradient kernels.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ConvTransposeOptions};
use burn::backend::{Autodiff, Flex};

use super::ConvBackend;
use super::flex::{
    bias_grad, conv_t2d_grads, conv_t2d_w_grad, conv_t2d_x_grad, conv_transpose2d_forward,
    conv2d_forward, conv2d_w_grad, conv2d_x_grad,
};
use crate::nn::ops::{AdTensor, is_f32};

/// Backward step of a convolution (`TRANSPOSED = false`) or a transposed convolution. The state
/// is the checkpointed input and weight and the options; the bias gradient needs only dY.
#[derive(Debug)]
struct ConvStep<const TRANSPOSED: bool>;

#[derive(Clone, Debug)]
enum AnyConvOptions {
    Conv(ConvOptions<2>),
    Transposed(ConvTransposeOptions<2>),
}

type ConvState = (NodeId, NodeId, AnyConvOptions);

fn conv_backward<const N: usize>(
    ops: Ops<ConvState, N>,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) {
    let dy = grads.consume::<Flex>(&ops.node);
    let (x_id, w_id, options) = ops.state;
    let x = checkpointer.retrieve_node_output::<FlexTensor>(x_id);
    let w = checkpointer.retrieve_node_output::<FlexTensor>(w_id);
    let id = |i: usize| ops.parents.get(i).and_then(|p| p.as_ref()).map(|p| p.id);
    let (x_node, w_node, b_node) = (id(0), id(1), id(2));
    if let Some(b) = b_node {
        grads.register::<Flex>(b, bias_grad(&dy));
    }
    match options {
        AnyConvOptions::Conv(o) => {
            if let Some(node) = w_node {
                grads.register::<Flex>(node, conv2d_w_grad(&x, &w, &dy, &o));
            }
            if let Some(node) = x_node {
                grads.register::<Flex>(node, conv2d_x_grad(&x, &w, &dy, &o));
            }
        }
        AnyConvOptions::Transposed(o) => {
            if let (Some(xn), Some(wn)) = (x_node, w_node)
                && is_f32(&[&x, &w, &dy])
                && o.groups == 1
            {
                let (dx, dw) = conv_t2d_grads(&x, &w, &dy, &o);
                grads.register::<Flex>(wn, dw);
                grads.register::<Flex>(xn, dx);
                return;
            }
            if let Some(node) = w_node {
                grads.register::<Flex>(node, conv_t2d_w_grad(&x, &w, &dy, &o));
            }
            if let Some(node) = x_node {
                grads.register::<Flex>(node, conv_t2d_x_grad(&x, &w, &dy, &o));
            }
        }
    }
}

impl<const T: bool> Backward<Flex, 2> for ConvStep<T> {
    type State = ConvState;
    fn backward(self, ops: Ops<ConvState, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
        conv_backward(ops, grads, ck);
    }
}

impl<const T: bool> Backward<Flex, 3> for ConvStep<T> {
    type State = ConvState;
    fn backward(self, ops: Ops<ConvState, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
        conv_backward(ops, grads, ck);
    }
}

/// Records `forward(x, w, b)` with a `ConvStep` backward on the tape.
fn tracked<C: CheckpointStrategy, const T: bool>(
    x: AdTensor<C>,
    w: AdTensor<C>,
    b: Option<AdTensor<C>>,
    options: AnyConvOptions,
    forward: impl FnOnce(FlexTensor, FlexTensor, Option<FlexTensor>) -> FlexTensor,
) -> AdTensor<C> {
    match b {
        Some(b) => {
            match <ConvStep<T> as Backward<Flex, 3>>::prepare::<C>(
                ConvStep,
                [x.node(), w.node(), b.node()],
            )
            .compute_bound()
            .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (prep.checkpoint(&x), prep.checkpoint(&w), options);
                    let out = forward(
                        x.into_primitive(),
                        w.into_primitive(),
                        Some(b.into_primitive()),
                    );
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(
                    x.into_primitive(),
                    w.into_primitive(),
                    Some(b.into_primitive()),
                )),
            }
        }
        None => {
            match <ConvStep<T> as Backward<Flex, 2>>::prepare::<C>(ConvStep, [x.node(), w.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (prep.checkpoint(&x), prep.checkpoint(&w), options);
                    prep.finish(state, forward(x.into_primitive(), w.into_primitive(), None))
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(forward(x.into_primitive(), w.into_primitive(), None))
                }
            }
        }
    }
}

impl<C: CheckpointStrategy> ConvBackend for Autodiff<Flex, C> {
    fn conv2d_bias(
        x: AdTensor<C>,
        weight: AdTensor<C>,
        bias: AdTensor<C>,
        options: ConvOptions<2>,
    ) -> AdTensor<C> {
        conv2d_tracked::<C>(x, weight, Some(bias), options)
    }

    fn conv2d_nobias(x: AdTensor<C>, weight: AdTensor<C>, options: ConvOptions<2>) -> AdTensor<C> {
        conv2d_tracked::<C>(x, weight, None, options)
    }

    fn conv_transpose2d_bias(
        x: AdTensor<C>,
        weight: AdTensor<C>,
        bias: AdTensor<C>,
        options: ConvTransposeOptions<2>,
    ) -> AdTensor<C> {
        conv_transpose2d_tracked::<C>(x, weight, Some(bias), options)
    }

    fn conv_transpose2d_nobias(
        x: AdTensor<C>,
        weight: AdTensor<C>,
        options: ConvTransposeOptions<2>,
    ) -> AdTensor<C> {
        conv_transpose2d_tracked::<C>(x, weight, None, options)
    }
}

fn conv2d_tracked<C: CheckpointStrategy>(
    x: AdTensor<C>,
    weight: AdTensor<C>,
    bias: Option<AdTensor<C>>,
    options: ConvOptions<2>,
) -> AdTensor<C> {
    let o = options.clone();
    tracked::<C, false>(x, weight, bias, AnyConvOptions::Conv(options), |x, w, b| {
        conv2d_forward(x, w, b, o)
    })
}

fn conv_transpose2d_tracked<C: CheckpointStrategy>(
    x: AdTensor<C>,
    weight: AdTensor<C>,
    bias: Option<AdTensor<C>>,
    options: ConvTransposeOptions<2>,
) -> AdTensor<C> {
    let o = options.clone();
    tracked::<C, true>(
        x,
        weight,
        bias,
        AnyConvOptions::Transposed(options),
        |x, w, b| conv_transpose2d_forward(x, w, b, o),
    )
}
