//! ReLU, leaky ReLU, PReLU and tanh: [`relu`], [`leaky_relu`], [`prelu`] and [`tanh`], drop-ins
//! for `burn::tensor::activation::relu`, `burn::tensor::activation::leaky_relu`,
//! `PRelu::forward` and `burn::tensor::activation::tanh`.
//!
//! burn builds each, forward and backward, from generic compare / mask / multiply /
//! broadcast-sum ops, each a pass over memory into a new buffer (a bool mask tensor for ReLU).
//! On `Autodiff<Flex>`, [`ActivationBackend`] records one pass forward and one fused pass
//! backward instead (figures: BENCHMARKS.md, "Speed: genlab's own convolution kernels on the
//! CPU" for PReLU and leaky ReLU, "Speed: phase-split and channels-last convolution kernels,
//! branch-free activations" for ReLU). Other dtypes and shapes, and every other backend, take
//! burn's own path (flex without autodiff too: inference keeps burn's forward activations).

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, FloatTensorOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::nn::PRelu;
use burn::tensor::Tensor;
use genlab_kernels as kernels;

use super::{AdTensor, contiguous, dims4, flex_like, is_f32, tensor, values, values_mut};

/// Activations whose autodiff step a backend may provide itself. The default bodies are burn's
/// own operations (and their autodiff), which every backend has.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait ActivationBackend: Backend {
    /// PReLU of `x [n, c, h, w]` with slopes `alpha` already shaped `[1, c, 1, 1]` (or all ones).
    fn prelu_nchw(x: FloatTensor<Self>, alpha: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::prelu(x, alpha)
    }

    /// Leaky ReLU with the given slope for negative inputs.
    fn leaky_relu_fast(x: FloatTensor<Self>, negative_slope: f64) -> FloatTensor<Self> {
        Self::leaky_relu(x, negative_slope.into())
    }

    /// ReLU.
    fn relu_fast(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::relu(x)
    }

    /// tanh.
    fn tanh_fast(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_tanh(x)
    }
}

/// Flex without autodiff keeps burn's activations (the default bodies).
impl ActivationBackend for Flex {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl ActivationBackend for burn::backend::Cube {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<C: CheckpointStrategy> ActivationBackend for Autodiff<burn::backend::Cube, C> {}

/// `layer.forward(x)` for images, with the fast gradients where the backend has them.
pub fn prelu(layer: &PRelu, x: Tensor<4>) -> Tensor<4> {
    let alpha = layer.alpha.val();
    let alpha = match alpha.dims()[0] {
        1 => alpha.reshape([1, 1, 1, 1]),
        c => alpha.reshape([1, c, 1, 1]),
    };
    let out = <Dispatch as ActivationBackend>::prelu_nchw(x.into_dispatch(), alpha.into_dispatch());
    Tensor::from_dispatch(out)
}

/// `burn::tensor::activation::relu(x)`, in one pass forward and one backward where the backend
/// has it (burn's compares into a mask tensor, then fills: two passes and a bool tensor each way).
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as ActivationBackend>::relu_fast(
        x.into_dispatch(),
    ))
}

/// `burn::tensor::activation::tanh(x)`, with the same values; where the backend has it, the tape
/// keeps the output and the backward is one pass from it (burn's keeps the input, computes tanh
/// again, then takes three passes).
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as ActivationBackend>::tanh_fast(
        x.into_dispatch(),
    ))
}

/// `burn::tensor::activation::leaky_relu(x, negative_slope)`, with the fast gradient where the
/// backend has it.
pub fn leaky_relu<const D: usize>(x: Tensor<D>, negative_slope: f64) -> Tensor<D> {
    let out = <Dispatch as ActivationBackend>::leaky_relu_fast(x.into_dispatch(), negative_slope);
    Tensor::from_dispatch(out)
}

impl<C: CheckpointStrategy> ActivationBackend for Autodiff<Flex, C> {
    fn leaky_relu_fast(x: AdTensor<C>, negative_slope: f64) -> AdTensor<C> {
        if !is_f32(&[x.primitive()]) {
            return Self::leaky_relu(x, negative_slope.into());
        }
        let slope = negative_slope as f32;
        match LeakyReluStep
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), slope);
                prep.finish(state, leaky_relu_forward(x.into_primitive(), slope))
            }
            OpsKind::UnTracked(prep) => prep.finish(leaky_relu_forward(x.into_primitive(), slope)),
        }
    }

    fn relu_fast(x: AdTensor<C>) -> AdTensor<C> {
        if !is_f32(&[x.primitive()]) {
            return Self::relu(x);
        }
        // Masking dy by `y <= 0` is masking by `x <= 0` (`kernels::relu_backward_in_place`).
        from_output::<C>(x, kernels::relu_in_place, kernels::relu_backward_in_place)
    }

    fn tanh_fast(x: AdTensor<C>) -> AdTensor<C> {
        if !is_f32(&[x.primitive()]) {
            return Self::float_tanh(x);
        }
        from_output::<C>(x, kernels::tanh_in_place, kernels::tanh_backward_in_place)
    }

    fn prelu_nchw(x: AdTensor<C>, alpha: AdTensor<C>) -> AdTensor<C> {
        if !prelu_fits(x.primitive(), alpha.primitive()) {
            return Self::prelu(x, alpha);
        }
        match PreluStep
            .prepare::<C>([x.node(), alpha.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&alpha));
                let out = prelu_forward(x.into_primitive(), alpha.into_primitive());
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(prelu_forward(x.into_primitive(), alpha.into_primitive()))
            }
        }
    }
}

/// Backward step of leaky ReLU; the state is the checkpointed input and the slope.
#[derive(Debug)]
struct LeakyReluStep;

impl Backward<Flex, 1> for LeakyReluStep {
    type State = (NodeId, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let mut dy = grads.consume::<Flex>(&ops.node);
        let x = ck.retrieve_node_output::<FlexTensor>(ops.state.0);
        if let [Some(parent)] = &ops.parents {
            let (x, slope) = (contiguous(&x), ops.state.1);
            // dx over dy when nothing else holds dy, else into a new buffer.
            let dx = match values_mut(&mut dy) {
                Some(g) => {
                    kernels::leaky_relu_backward_in_place(values(&x), slope, g);
                    dy
                }
                None => {
                    let dy = contiguous(&dy);
                    flex_like(
                        kernels::leaky_relu_backward(values(&x), slope, values(&dy)),
                        &x,
                    )
                }
            };
            grads.register::<Flex>(parent.id, dx);
        }
    }
}

/// Backward step of an activation whose gradient is a rule of its output `y` alone (ReLU: mask
/// by `y <= 0`; tanh: times `1 - y * y`). The state is `y`, not a checkpoint of the input, so
/// the forward may overwrite its input ([`map_in_place`]).
#[derive(Debug)]
struct FromOutput {
    /// `dy <- dx`, given `y`.
    grad: fn(&[f32], &mut [f32]),
}

impl Backward<Flex, 1> for FromOutput {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        if let [Some(parent)] = &ops.parents {
            let y = contiguous(&ops.state);
            let dx = map_in_place(dy, |dy| (self.grad)(values(&y), dy));
            grads.register::<Flex>(parent.id, dx);
        }
    }
}

/// The activation `forward` (in place), with the gradient rule `grad` of its output on the tape.
fn from_output<C: CheckpointStrategy>(
    x: AdTensor<C>,
    forward: fn(&mut [f32]),
    grad: fn(&[f32], &mut [f32]),
) -> AdTensor<C> {
    let step = FromOutput { grad };
    match step.prepare::<C>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let y = map_in_place(x.into_primitive(), forward);
            prep.finish(y.clone(), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(map_in_place(x.into_primitive(), forward)),
    }
}

/// `f` over `x`'s own values when nothing else holds them, else over a contiguous copy.
fn map_in_place(mut x: FlexTensor, f: impl FnOnce(&mut [f32])) -> FlexTensor {
    if let Some(v) = values_mut(&mut x) {
        f(v);
        return x;
    }
    let x = contiguous(&x);
    let mut v = values(&x).to_vec();
    f(&mut v);
    flex_like(v, &x)
}

fn leaky_relu_forward(x: FlexTensor, slope: f32) -> FlexTensor {
    let x = contiguous(&x);
    flex_like(kernels::leaky_relu_forward(values(&x), slope), &x)
}

/// Backward step of PReLU; the state is the checkpointed input and slopes.
#[derive(Debug)]
struct PreluStep;

impl Backward<Flex, 2> for PreluStep {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let x = ck.retrieve_node_output::<FlexTensor>(ops.state.0);
        let alpha = ck.retrieve_node_output::<FlexTensor>(ops.state.1);
        let [x_node, a_node] = ops.parents.each_ref().map(|p| p.as_ref().map(|p| p.id));
        let (dx, da) = prelu_grads(&x, &alpha, dy);
        if let Some(node) = x_node {
            grads.register::<Flex>(node, dx);
        }
        if let Some(node) = a_node {
            grads.register::<Flex>(node, da);
        }
    }
}

/// Whether the kernels apply: f32 images `[n, c, h, w]` and slopes `[1, c or 1, 1, 1]`.
fn prelu_fits(x: &FlexTensor, alpha: &FlexTensor) -> bool {
    let s = alpha.layout().shape();
    is_f32(&[x, alpha])
        && x.layout().shape().num_dims() == 4
        && s.num_dims() == 4
        && s[0] == 1
        && s[2] == 1
        && s[3] == 1
        && (s[1] == 1 || s[1] == x.layout().shape()[1])
}

fn prelu_forward(x: FlexTensor, alpha: FlexTensor) -> FlexTensor {
    let (x, alpha) = (contiguous(&x), contiguous(&alpha));
    let [_, c, h, w] = dims4(&x);
    tensor(
        kernels::prelu_forward(values(&x), values(&alpha), c, h * w),
        dims4(&x),
    )
}

/// (dL/dx, dL/dalpha) of PReLU (only recorded when `prelu_fits`); dL/dx is written over `dy`
/// when nothing else holds it.
fn prelu_grads(x: &FlexTensor, alpha: &FlexTensor, mut dy: FlexTensor) -> (FlexTensor, FlexTensor) {
    let (x, alpha) = (contiguous(x), contiguous(alpha));
    let [_, c, h, w] = dims4(&x);
    let (xs, a) = (values(&x), values(&alpha));
    let (dx, da) = match values_mut(&mut dy) {
        Some(g) => {
            let da = kernels::prelu_backward_in_place(xs, a, g, c, h * w);
            (dy, da)
        }
        None => {
            let dy = contiguous(&dy);
            let (dx, da) = kernels::prelu_backward(xs, a, values(&dy), c, h * w);
            (tensor(dx, dims4(&x)), da)
        }
    };
    (dx, tensor(da, dims4(&alpha)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tolerance};

    fn device() -> Device {
        Device::flex().autodiff()
    }

    /// PReLU's output and gradients (input and slopes) equal burn's, per-channel and shared.
    #[test]
    fn prelu_gradients_match_burns() {
        let d = device();
        for slopes in [5, 1] {
            let layer = burn::nn::PReluConfig::new()
                .with_num_parameters(slopes)
                .init(&d);
            // Slopes other than the initial 0.25, so a wrong channel would show.
            let alpha = Tensor::<1>::random([slopes], Distribution::Uniform(-0.5, 0.5), &d);
            let layer = PRelu {
                alpha: burn::module::Param::from_tensor(alpha),
                ..layer
            };
            let x = Tensor::<4>::random([3, 5, 4, 6], Distribution::Normal(0.0, 1.0), &d);
            let r = Tensor::<4>::random([3, 5, 4, 6], Distribution::Normal(0.0, 1.0), &d);
            let run = |ours: bool| {
                let x = x.clone().require_grad();
                let y = if ours {
                    prelu(&layer, x.clone())
                } else {
                    layer.forward(x.clone())
                };
                let g = (y.clone() * r.clone()).sum().backward();
                [
                    y.into_data(),
                    x.grad(&g).expect("x grad").into_data(),
                    layer.alpha.val().grad(&g).expect("alpha grad").into_data(),
                ]
            };
            for (a, b) in run(true).iter().zip(&run(false)) {
                a.assert_approx_eq::<f32>(b, Tolerance::rel_abs(1e-5, 1e-5));
            }
        }
    }

    /// `ours(x)` and `burns(x)` give the same output and input gradient, bit for bit, for an
    /// input the caller still holds (a new buffer) and for an op's output that nothing else holds
    /// (overwritten in place); the caller's tensor is unchanged.
    fn same_as_burns(
        x: Tensor<4>,
        ours: fn(Tensor<4>) -> Tensor<4>,
        burns: fn(Tensor<4>) -> Tensor<4>,
    ) {
        let r = Tensor::<4>::random(x.dims(), Distribution::Normal(0.0, 1.0), &x.device());
        let run = |f: fn(Tensor<4>) -> Tensor<4>, shared: bool| {
            let x = x.clone().require_grad();
            let input = if shared { x.clone() } else { x.clone() * 2.0 };
            let y = f(input);
            let g = (y.clone() * r.clone()).sum().backward();
            [
                y.into_data(),
                x.grad(&g).expect("x grad").into_data(),
                x.into_data(),
            ]
        };
        for shared in [true, false] {
            let (a, b) = (run(ours, shared), run(burns, shared));
            assert_eq!(a, b, "shared input: {shared}");
            assert_eq!(a[2], x.to_data());
        }
    }

    /// ReLU's output and input gradient equal burn's, exact zeros included.
    #[test]
    fn relu_gradient_matches_burns() {
        let d = device();
        let x = Tensor::<4>::random([3, 2, 9, 11], Distribution::Normal(0.0, 1.0), &d)
            .slice_assign([0..1, 0..1, 0..1, 0..3], Tensor::zeros([1, 1, 1, 3], &d));
        same_as_burns(x, relu, burn::tensor::activation::relu);
    }

    /// tanh's output and input gradient equal burn's (large inputs, where tanh saturates,
    /// included).
    #[test]
    fn tanh_gradient_matches_burns() {
        let d = device();
        let x = Tensor::<4>::random([3, 2, 9, 11], Distribution::Normal(0.0, 3.0), &d);
        same_as_burns(x, tanh, burn::tensor::activation::tanh);
    }

    /// Leaky ReLU's output and input gradient equal burn's.
    #[test]
    fn leaky_relu_gradient_matches_burns() {
        let d = device();
        let x = Tensor::<2>::random([7, 33], Distribution::Normal(0.0, 1.0), &d);
        let r = Tensor::<2>::random([7, 33], Distribution::Normal(0.0, 1.0), &d);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours {
                leaky_relu(x.clone(), 0.2)
            } else {
                burn::tensor::activation::leaky_relu(x.clone(), 0.2)
            };
            let g = (y.clone() * r.clone()).sum().backward();
            [y.into_data(), x.grad(&g).expect("x grad").into_data()]
        };
        for (a, b) in run(true).iter().zip(&run(false)) {
            a.assert_approx_eq::<f32>(b, Tolerance::rel_abs(1e-6, 1e-6));
        }
    }
}
