//! Layers with fast gradients on the CPU (flex) backend: convolution, transposed convolution,
//! ReLU, PReLU and leaky ReLU.
//!
//! burn-flex 0.22 writes only the forward passes of its convolutions. Their gradients fall back
//! to burn's generic formulas, and the weight gradient among them is a convolution over
//! batch/channel-swapped tensors whose "kernel" is the whole output map: for FSRCNN's 1x1 layers
//! it is ~20x slower than the forward pass (BENCHMARKS.md, "Convolution gradients").
//!
//! This module registers its own autodiff step for 2-D convolutions on `Autodiff<Flex>`, through
//! burn's backend-extension mechanism (`#[backend_extension]`), so nothing in burn is patched:
//!
//! - forward: `genlab_kernels::forward` (im2col and one GEMM per image; a transposed
//!   convolution's forward pass is a convolution's input gradient);
//! - weight gradient: per image, `dW += dY_n · im2col(X_n)ᵀ`, one GEMM (the `gemm` crate burn-flex
//!   uses) per image, images split across rayon threads, each with its own accumulator;
//! - input gradient: per image, `col = Wᵀ · dY_n`, then col2im (a transposed convolution is the
//!   input gradient of a convolution, and its own input gradient is a forward convolution);
//!   with 8 or more input channels both gradients go through channels-last column matrices
//!   (`genlab_kernels`' crate documentation says how and why);
//! - bias gradient: a plain sum over images and positions;
//! - ReLU, PReLU and leaky ReLU: one pass forward and one fused pass backward (burn builds both
//!   from generic compare / mask / multiply / broadcast-sum ops: ~19% of an FSRCNN training step,
//!   ~8% of a DCGAN one).
//!
//! Anything else (other dtypes, grouped convolutions, GPU backends) takes burn's own path, so the
//! layer functions here are a drop-in for `Conv2d::forward`, `ConvTranspose2d::forward`,
//! `PRelu::forward`, `activation::relu` and `activation::leaky_relu` on every backend. The
//! kernels themselves are in the `genlab-kernels` crate.
//! Tests compare every gradient with burn's own and (in genlab-kernels) with finite differences.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{
    ActivationOps, ConvOptions, ConvTransposeOptions, FloatTensorOps, ModuleOps,
};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, backend_extension};
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{PRelu, PaddingConfig2d};
use burn::tensor::{Shape, Tensor, TensorData};
use genlab_kernels::{self as kernels, Geom};

/// Operations whose autodiff step a backend may provide itself. The default bodies are burn's
/// own operations (and their autodiff), which every backend has.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait FastBackend: Backend {
    /// `conv2d` with a bias, as `burn::tensor::module::conv2d`. (The extension macro takes no
    /// `Option` of a tensor, hence one method with a bias and one without.)
    fn conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, Some(bias), options)
    }

    /// `conv2d` without a bias.
    fn conv2d_nobias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, options)
    }

    /// `conv_transpose2d` with a bias, as `burn::tensor::module::conv_transpose2d`.
    fn conv_transpose2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d(x, weight, Some(bias), options)
    }

    /// `conv_transpose2d` without a bias.
    fn conv_transpose2d_nobias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d(x, weight, None, options)
    }

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
}

/// Inference on flex runs genlab's forward kernels too (they are what training runs).
impl FastBackend for Flex {
    fn conv2d_bias(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        conv2d_forward(x, weight, Some(bias), options)
    }

    fn conv2d_nobias(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        conv2d_forward(x, weight, None, options)
    }

    fn conv_transpose2d_bias(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvTransposeOptions<2>,
    ) -> FlexTensor {
        conv_transpose2d_forward(x, weight, Some(bias), options)
    }

    fn conv_transpose2d_nobias(
        x: FlexTensor,
        weight: FlexTensor,
        options: ConvTransposeOptions<2>,
    ) -> FlexTensor {
        conv_transpose2d_forward(x, weight, None, options)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl FastBackend for burn::backend::Cube {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<C: CheckpointStrategy> FastBackend for Autodiff<burn::backend::Cube, C> {}

/// `layer.forward(x)`, with the fast gradients where the backend has them.
pub fn conv2d(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match layer.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        // "Same" padding's arithmetic is burn's own; keep its path.
        PaddingConfig2d::Same => return layer.forward(x),
    };
    let options =
        ConvOptions::new_with_padding(layer.stride, padding, layer.dilation, layer.groups);
    let (x, w) = (x.into_dispatch(), layer.weight.val().into_dispatch());
    let out = match &layer.bias {
        Some(b) => <Dispatch as FastBackend>::conv2d_bias(x, w, b.val().into_dispatch(), options),
        None => <Dispatch as FastBackend>::conv2d_nobias(x, w, options),
    };
    Tensor::from_dispatch(out)
}

/// `layer.forward(x)`, with the fast gradients where the backend has them.
pub fn conv_transpose2d(layer: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    let options = ConvTransposeOptions::new(
        layer.stride,
        layer.padding,
        layer.padding_out,
        layer.dilation,
        layer.groups,
    );
    let (x, w) = (x.into_dispatch(), layer.weight.val().into_dispatch());
    let out = match &layer.bias {
        Some(b) => {
            <Dispatch as FastBackend>::conv_transpose2d_bias(x, w, b.val().into_dispatch(), options)
        }
        None => <Dispatch as FastBackend>::conv_transpose2d_nobias(x, w, options),
    };
    Tensor::from_dispatch(out)
}

/// `layer.forward(x)` for images, with the fast gradients where the backend has them.
pub fn prelu(layer: &PRelu, x: Tensor<4>) -> Tensor<4> {
    let alpha = layer.alpha.val();
    let alpha = match alpha.dims()[0] {
        1 => alpha.reshape([1, 1, 1, 1]),
        c => alpha.reshape([1, c, 1, 1]),
    };
    let out = <Dispatch as FastBackend>::prelu_nchw(x.into_dispatch(), alpha.into_dispatch());
    Tensor::from_dispatch(out)
}

/// `burn::tensor::activation::relu(x)`, in one pass forward and one backward where the backend
/// has it (burn's compares into a mask tensor, then fills: two passes and a bool tensor each way).
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FastBackend>::relu_fast(x.into_dispatch()))
}

/// `burn::tensor::activation::leaky_relu(x, negative_slope)`, with the fast gradient where the
/// backend has it.
pub fn leaky_relu<const D: usize>(x: Tensor<D>, negative_slope: f64) -> Tensor<D> {
    let out = <Dispatch as FastBackend>::leaky_relu_fast(x.into_dispatch(), negative_slope);
    Tensor::from_dispatch(out)
}

// ---------------------------------------------------------------------------------------------
// Autodiff steps on Autodiff<Flex>
// ---------------------------------------------------------------------------------------------

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

type AdTensor<C> = FloatTensor<Autodiff<Flex, C>>;

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

impl<C: CheckpointStrategy> FastBackend for Autodiff<Flex, C> {
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
        match ReluStep.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, relu_forward(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(relu_forward(x.into_primitive())),
        }
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
        let dy = grads.consume::<Flex>(&ops.node);
        let x = ck.retrieve_node_output::<FlexTensor>(ops.state.0);
        if let [Some(parent)] = &ops.parents {
            let (x, dy) = (contiguous(&x), contiguous(&dy));
            let dx = kernels::leaky_relu_backward(values(&x), ops.state.1, values(&dy));
            grads.register::<Flex>(parent.id, flex_like(dx, &x));
        }
    }
}

/// Backward step of ReLU; the state is the checkpointed input.
#[derive(Debug)]
struct ReluStep;

impl Backward<Flex, 1> for ReluStep {
    type State = NodeId;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let x = ck.retrieve_node_output::<FlexTensor>(ops.state);
        if let [Some(parent)] = &ops.parents {
            let (x, dy) = (contiguous(&x), contiguous(&dy));
            let dx = kernels::relu_backward(values(&x), values(&dy));
            grads.register::<Flex>(parent.id, flex_like(dx, &x));
        }
    }
}

fn relu_forward(x: FlexTensor) -> FlexTensor {
    let x = contiguous(&x);
    flex_like(kernels::relu_forward(values(&x)), &x)
}

/// A contiguous f32 tensor of `values` in the shape of `like`.
fn flex_like(values: Vec<f32>, like: &FlexTensor) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, like.layout().shape().clone()))
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
        let (dx, da) = prelu_grads(&x, &alpha, &dy);
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

/// (dL/dx, dL/dalpha) of PReLU (only recorded when `prelu_fits`).
fn prelu_grads(x: &FlexTensor, alpha: &FlexTensor, dy: &FlexTensor) -> (FlexTensor, FlexTensor) {
    let (x, alpha, dy) = (contiguous(x), contiguous(alpha), contiguous(dy));
    let [_, c, h, w] = dims4(&x);
    let (dx, da) = kernels::prelu_backward(values(&x), values(&alpha), values(&dy), c, h * w);
    let alpha_shape = dims4(&alpha);
    (tensor(dx, dims4(&x)), tensor(da, alpha_shape))
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

// ---------------------------------------------------------------------------------------------
// Gradients on flex tensors: the fast kernels where they apply, burn's formulas otherwise
// ---------------------------------------------------------------------------------------------

pub(super) fn is_f32(ts: &[&FlexTensor]) -> bool {
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

pub(super) fn values(t: &FlexTensor) -> &[f32] {
    // Callers check the dtype (is_f32) and pass tensors through contiguous() first.
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, Shape::new(shape)))
}

/// dL/db[c] = Σ over images and positions of dY[n, c, ..].
fn bias_grad(dy: &FlexTensor) -> FlexTensor {
    if !is_f32(&[dy]) {
        let [n, c, h, w] = dims4(dy);
        let g = Flex::float_reshape(
            Flex::float_swap_dims(dy.clone(), 0, 1),
            [c, n * h * w].into(),
        );
        return Flex::float_reshape(Flex::float_sum_dim(g, 1), [c].into());
    }
    let dy = contiguous(dy);
    let [n, c, h, w] = dims4(&dy);
    let out = kernels::bias_grad(values(&dy), n, c, h * w);
    FlexTensor::from_data(TensorData::new(out, Shape::new([c])))
}

/// The geometry of `conv2d(x, w)` with `options`, given the gradient of its output.
fn conv_geom(x: &FlexTensor, w: &FlexTensor, dy: &FlexTensor, o: &ConvOptions<2>) -> Geom {
    let [n, cin, ih, iw] = dims4(x);
    let [cout, _, kh, kw] = dims4(w);
    let [_, _, oh, ow] = dims4(dy);
    Geom {
        n,
        cin,
        ih,
        iw,
        cout,
        oh,
        ow,
        kh,
        kw,
        stride: o.stride,
        pad: o.padding_begin(),
        dilation: o.dilation,
    }
}

/// The geometry of the convolution whose input gradient `conv_transpose2d(x, w)` is: that
/// convolution reads the transposed convolution's output `[n, cout, oh, ow]` and writes `x`'s shape.
fn conv_t_geom(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvTransposeOptions<2>,
) -> Geom {
    let [n, c_x, h, wd] = dims4(x);
    let [_, c_y, kh, kw] = dims4(w);
    let [_, _, oh, ow] = dims4(dy);
    Geom {
        n,
        cin: c_y,
        ih: oh,
        iw: ow,
        cout: c_x,
        oh: h,
        ow: wd,
        kh,
        kw,
        stride: o.stride,
        pad: o.padding,
        dilation: o.dilation,
    }
}

/// The forward convolution: genlab's kernel for f32 and one group, flex's otherwise.
pub fn conv2d_forward(
    x: FlexTensor,
    w: FlexTensor,
    b: Option<FlexTensor>,
    o: ConvOptions<2>,
) -> FlexTensor {
    let f32s = is_f32(&[&x, &w]) && b.as_ref().is_none_or(|b| is_f32(&[b]));
    if !f32s || o.groups != 1 {
        return Flex::conv2d(x, w, b, o);
    }
    let (x, w, b) = (contiguous(&x), contiguous(&w), b.map(|b| contiguous(&b)));
    let [n, cin, ih, iw] = dims4(&x);
    let [cout, _, kh, kw] = dims4(&w);
    let out = |len: usize, k: usize, s: usize, p: (usize, usize), d: usize| {
        (len + p.0 + p.1 - d * (k - 1) - 1) / s + 1
    };
    let oh = out(ih, kh, o.stride[0], o.padding[0], o.dilation[0]);
    let ow = out(iw, kw, o.stride[1], o.padding[1], o.dilation[1]);
    let g = Geom {
        n,
        cin,
        ih,
        iw,
        cout,
        oh,
        ow,
        kh,
        kw,
        stride: o.stride,
        pad: o.padding_begin(),
        dilation: o.dilation,
    };
    let y = kernels::forward(values(&x), values(&w), b.as_ref().map(values), &g);
    tensor(y, [n, cout, oh, ow])
}

fn conv2d_w_grad(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvOptions<2>,
) -> FlexTensor {
    if !is_f32(&[x, w, dy]) || o.groups != 1 {
        return Flex::conv2d_weight_backward(x.clone(), w.clone(), dy.clone(), o.clone());
    }
    let (x, dy) = (contiguous(x), contiguous(dy));
    let g = conv_geom(&x, w, &dy, o);
    tensor(kernels::weight_grad(values(&x), values(&dy), &g), dims4(w))
}

fn conv2d_x_grad(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvOptions<2>,
) -> FlexTensor {
    if !is_f32(&[x, w, dy]) || o.groups != 1 {
        return Flex::conv2d_x_backward(x.clone(), w.clone(), dy.clone(), o.clone());
    }
    let (w, dy) = (contiguous(w), contiguous(dy));
    let g = conv_geom(x, &w, &dy, o);
    tensor(kernels::input_grad(values(&w), values(&dy), &g), dims4(x))
}

/// dL/dW `[cin, cout, kh, kw]` of `y = conv_transpose2d(x, w)`: the weight gradient of the
/// convolution that maps dY back to x, with x's gradient in the role of that convolution's dY.
fn conv_t2d_w_grad(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvTransposeOptions<2>,
) -> FlexTensor {
    if !is_f32(&[x, w, dy]) || o.groups != 1 {
        return Flex::conv_transpose2d_weight_backward(x.clone(), w.clone(), dy.clone(), o.clone());
    }
    let (x, dy) = (contiguous(x), contiguous(dy));
    let g = conv_t_geom(&x, w, &dy, o);
    tensor(kernels::weight_grad(values(&dy), values(&x), &g), dims4(w))
}

/// `(dL/dx, dL/dW)` of `y = conv_transpose2d(x, w)` (f32, one group) in one pass: the column
/// matrix of dY that both need is built once per image (`genlab_kernels::transposed_grads`).
fn conv_t2d_grads(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvTransposeOptions<2>,
) -> (FlexTensor, FlexTensor) {
    let (x, w, dy) = (contiguous(x), contiguous(w), contiguous(dy));
    let g = conv_t_geom(&x, &w, &dy, o);
    let (dx, dw) = kernels::transposed_grads(values(&dy), values(&w), values(&x), &g);
    (tensor(dx, dims4(&x)), tensor(dw, dims4(&w)))
}

/// dL/dx of `y = conv_transpose2d(x, w)`: the forward convolution of dY with w.
fn conv_t2d_x_grad(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvTransposeOptions<2>,
) -> FlexTensor {
    if !is_f32(&[x, w, dy]) || o.groups != 1 {
        return Flex::conv_transpose2d_x_backward(w.clone(), dy.clone(), o.clone());
    }
    let (w, dy) = (contiguous(w), contiguous(dy));
    let g = conv_t_geom(x, &w, &dy, o);
    tensor(
        kernels::forward(values(&dy), values(&w), None, &g),
        dims4(x),
    )
}

/// The forward transposed convolution: genlab's kernel (the input gradient of the matching
/// convolution, plus the bias) for f32 and one group, flex's otherwise.
pub fn conv_transpose2d_forward(
    x: FlexTensor,
    w: FlexTensor,
    b: Option<FlexTensor>,
    o: ConvTransposeOptions<2>,
) -> FlexTensor {
    let f32s = is_f32(&[&x, &w]) && b.as_ref().is_none_or(|b| is_f32(&[b]));
    if !f32s || o.groups != 1 {
        return Flex::conv_transpose2d(x, w, b, o);
    }
    let (x, w) = (contiguous(&x), contiguous(&w));
    let [n, c_x, h, wd] = dims4(&x);
    let [_, c_y, kh, kw] = dims4(&w);
    let out = |len: usize, k: usize, i: usize| {
        (len - 1) * o.stride[i] + o.dilation[i] * (k - 1) + o.padding_out[i] + 1 - 2 * o.padding[i]
    };
    let (oh, ow) = (out(h, kh, 0), out(wd, kw, 1));
    let g = Geom {
        n,
        cin: c_y,
        ih: oh,
        iw: ow,
        cout: c_x,
        oh: h,
        ow: wd,
        kh,
        kw,
        stride: o.stride,
        pad: o.padding,
        dilation: o.dilation,
    };
    let b = b.map(|b| contiguous(&b));
    let y = kernels::transposed_forward(values(&w), values(&x), b.as_ref().map(values), &g);
    tensor(y, [n, c_y, oh, ow])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    use burn::tensor::{Device, Distribution, Tolerance};

    fn device() -> Device {
        Device::flex().autodiff()
    }

    /// Gradients of sum(layer(x) * r) for x, weight and bias, through `f`.
    fn grads4(
        x: Tensor<4>,
        r: &Tensor<4>,
        weight: &burn::module::Param<Tensor<4>>,
        bias: Option<&burn::module::Param<Tensor<1>>>,
        y: Tensor<4>,
    ) -> Vec<TensorData> {
        let g = (y * r.clone()).sum().backward();
        let mut out = vec![
            x.grad(&g).expect("x grad").into_data(),
            weight.val().grad(&g).expect("w grad").into_data(),
        ];
        if let Some(b) = bias {
            out.push(b.val().grad(&g).expect("b grad").into_data());
        }
        out
    }

    /// Every gradient of genlab's conv equals burn's generic one, across strides, paddings
    /// (asymmetric too), dilations, kernel sizes including 1x1, and with and without bias.
    #[test]
    fn conv2d_gradients_match_burns() {
        let d = device();
        let cases = [
            // (cin, cout, k, stride, dilation, padding (t, l, b, r), h, w, bias)
            (3, 4, 3, 1, 1, (1, 1, 1, 1), 7, 6, true),
            (2, 5, 4, 2, 1, (1, 1, 1, 1), 8, 9, true),
            (4, 3, 1, 1, 1, (0, 0, 0, 0), 5, 5, true),
            (4, 3, 1, 2, 1, (0, 0, 0, 0), 5, 6, false),
            (3, 2, 5, 1, 1, (2, 2, 2, 2), 6, 6, true),
            (2, 3, 3, 2, 2, (2, 1, 0, 1), 9, 8, false),
            (1, 2, 3, 3, 1, (0, 0, 0, 0), 10, 7, true),
        ];
        for (cin, cout, k, s, dil, (t, l, b, r), h, w, bias) in cases {
            let layer = Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([s, s])
                .with_dilation([dil, dil])
                .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
                .with_bias(bias)
                .init(&d);
            let x = Tensor::<4>::random([3, cin, h, w], Distribution::Normal(0.0, 1.0), &d);
            let reference = layer.forward(x.clone().require_grad());
            let rnd = Tensor::<4>::random(reference.dims(), Distribution::Normal(0.0, 1.0), &d);
            let xa = x.clone().require_grad();
            let ya = conv2d(&layer, xa.clone());
            ya.clone()
                .into_data()
                .assert_approx_eq::<f32>(&reference.into_data(), Tolerance::default());
            let ours = grads4(xa, &rnd, &layer.weight, layer.bias.as_ref(), ya);
            let xb = x.require_grad();
            let yb = layer.forward(xb.clone());
            let theirs = grads4(xb, &rnd, &layer.weight, layer.bias.as_ref(), yb);
            for (a, b) in ours.iter().zip(&theirs) {
                a.assert_approx_eq::<f32>(b, Tolerance::rel_abs(1e-4, 1e-4));
            }
        }
    }

    #[test]
    fn conv_transpose2d_gradients_match_burns() {
        let d = device();
        let cases = [
            // (cin, cout, k, stride, padding, padding_out, dilation, h, w, bias)
            (3, 2, 4, 2, 1, 0, 1, 5, 6, true),
            (2, 1, 9, 2, 4, 1, 1, 6, 5, true),
            (4, 3, 3, 1, 1, 0, 1, 4, 4, false),
            (2, 3, 3, 3, 0, 2, 2, 3, 5, true),
            (5, 2, 1, 1, 0, 0, 1, 4, 3, false),
        ];
        for (cin, cout, k, s, p, po, dil, h, w, bias) in cases {
            let layer = ConvTranspose2dConfig::new([cin, cout], [k, k])
                .with_stride([s, s])
                .with_padding([p, p])
                .with_padding_out([po, po])
                .with_dilation([dil, dil])
                .with_bias(bias)
                .init(&d);
            let x = Tensor::<4>::random([2, cin, h, w], Distribution::Normal(0.0, 1.0), &d);
            let reference = layer.forward(x.clone());
            let rnd = Tensor::<4>::random(reference.dims(), Distribution::Normal(0.0, 1.0), &d);
            let xa = x.clone().require_grad();
            let ya = conv_transpose2d(&layer, xa.clone());
            ya.clone()
                .into_data()
                .assert_approx_eq::<f32>(&reference.into_data(), Tolerance::default());
            let ours = grads4(xa, &rnd, &layer.weight, layer.bias.as_ref(), ya);
            let xb = x.require_grad();
            let yb = layer.forward(xb.clone());
            let theirs = grads4(xb, &rnd, &layer.weight, layer.bias.as_ref(), yb);
            for (a, b) in ours.iter().zip(&theirs) {
                a.assert_approx_eq::<f32>(b, Tolerance::rel_abs(1e-4, 1e-4));
            }
        }
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

    /// ReLU's output and input gradient equal burn's, exact zeros included.
    #[test]
    fn relu_gradient_matches_burns() {
        let d = device();
        let x = Tensor::<2>::random([7, 33], Distribution::Normal(0.0, 1.0), &d)
            .slice_assign([0..1, 0..3], Tensor::zeros([1, 3], &d));
        let r = Tensor::<2>::random([7, 33], Distribution::Normal(0.0, 1.0), &d);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours {
                relu(x.clone())
            } else {
                burn::tensor::activation::relu(x.clone())
            };
            let g = (y.clone() * r.clone()).sum().backward();
            [y.into_data(), x.grad(&g).expect("x grad").into_data()]
        };
        for (a, b) in run(true).iter().zip(&run(false)) {
            assert_eq!(a, b);
        }
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

    /// Without autodiff (inference: `genlab upscale`, sampling), the forward kernels give burn's
    /// outputs too.
    #[test]
    fn inference_forwards_match_burns() {
        let d = Device::flex();
        let conv = Conv2dConfig::new([3, 5], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 0, 2, 1))
            .init(&d);
        let x = Tensor::<4>::random([2, 3, 9, 8], Distribution::Normal(0.0, 1.0), &d);
        conv2d(&conv, x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&conv.forward(x).into_data(), Tolerance::default());
        let deconv = ConvTranspose2dConfig::new([4, 2], [9, 9])
            .with_stride([3, 3])
            .with_padding([4, 4])
            .with_padding_out([2, 2])
            .init(&d);
        let x = Tensor::<4>::random([2, 4, 5, 6], Distribution::Normal(0.0, 1.0), &d);
        conv_transpose2d(&deconv, x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&deconv.forward(x).into_data(), Tolerance::default());
    }
}
