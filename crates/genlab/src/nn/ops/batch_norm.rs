//! Training-mode batch norm: [`batch_norm`], a drop-in for `BatchNorm::forward`.
//!
//! burn 0.22's training batch norm is the default `ModuleOps::batch_norm_train`: it copies the
//! tensor with swapped batch and channel axes for each statistic, then normalises in several
//! elementwise passes, and its backward copies again. [`BatchNormBackend`] computes the batch
//! statistics and the output in one pass each on flex (`genlab_kernels::pointwise`) and records
//! one autodiff step on `Autodiff<Flex>` whose backward is two reduction passes and an output
//! pass; every other backend runs burn's `batch_norm_train` (figures: BENCHMARKS.md, "Speed:
//! fused batch norm, shared columns in the transposed convolution's backward").

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::nn::BatchNorm;
use burn::tensor::{Shape, Tensor};
use genlab_kernels::pointwise as kernels;

use super::{AdTensor, flex, is_f32, values};

/// The training-mode batch norm a backend may fuse. The default body is burn's op.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait BatchNormBackend: Backend {
    /// Training-mode batch norm of `x [n, c, ...]` with the batch's statistics: `(y, mean,
    /// variance)`, mean and biased variance `[c]`. `y` is differentiated through the statistics;
    /// mean and variance are plain values (for the running averages).
    fn batch_norm_batch_stats(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let r = Self::batch_norm_train(x, gamma, beta, epsilon);
        (r.output, r.mean, r.variance)
    }
}

/// Whether the batch-norm kernels apply: f32 `x [n, c, ...]` (rank 2 or more) with `[c]` gamma
/// and beta.
fn bn_fits(x: &FlexTensor, gamma: &FlexTensor, beta: &FlexTensor) -> bool {
    let s = x.layout().shape();
    is_f32(&[x, gamma, beta])
        && s.num_dims() >= 2
        && s[1] > 0
        && gamma.layout().shape().dims::<1>() == [s[1]]
        && beta.layout().shape().dims::<1>() == [s[1]]
}

/// `(channels, plane)` of `x [n, c, ...]`.
fn bn_geometry(x: &FlexTensor) -> (usize, usize) {
    let s = x.layout().shape();
    let c = s[1];
    let plane = (2..s.num_dims()).map(|d| s[d]).product();
    (c, plane)
}

fn bn_forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let [x, gamma, beta] = [x, gamma, beta].map(|t| t.to_contiguous());
    let shape = x.layout().shape().clone();
    let (c, plane) = bn_geometry(&x);
    let (y, mean, var) = kernels::batch_norm_forward(
        values(&x),
        values(&gamma),
        values(&beta),
        c,
        plane,
        epsilon as f32,
    );
    (
        flex(y, shape),
        flex(mean, Shape::new([c])),
        flex(var, Shape::new([c])),
    )
}

impl BatchNormBackend for Flex {
    fn batch_norm_batch_stats(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        if !bn_fits(&x, &gamma, &beta) {
            let r = Flex::batch_norm_train(x, gamma, beta, epsilon);
            return (r.output, r.mean, r.variance);
        }
        bn_forward(&x, &gamma, &beta, epsilon)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl BatchNormBackend for burn::backend::Cube {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<C: CheckpointStrategy> BatchNormBackend for Autodiff<burn::backend::Cube, C> {}

/// Backward step of the batch norm; the state is the checkpointed input and gamma, and the
/// batch statistics of the forward pass.
#[derive(Debug)]
struct BatchNormStep;

impl Backward<Flex, 3> for BatchNormStep {
    type State = (NodeId, NodeId, FlexTensor, FlexTensor, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x_state, gamma_state, mean, var, epsilon) = ops.state;
        let x = ck
            .retrieve_node_output::<FlexTensor>(x_state)
            .to_contiguous();
        let gamma = ck
            .retrieve_node_output::<FlexTensor>(gamma_state)
            .to_contiguous();
        let shape = x.layout().shape().clone();
        let (c, plane) = bn_geometry(&x);
        let (dx, dgamma, dbeta) = kernels::batch_norm_backward(
            values(&x),
            values(&gamma),
            values(&mean),
            values(&var),
            values(&dy),
            c,
            plane,
            epsilon as f32,
        );
        let [x_node, gamma_node, beta_node] =
            ops.parents.each_ref().map(|p| p.as_ref().map(|p| p.id));
        if let Some(node) = x_node {
            grads.register::<Flex>(node, flex(dx, shape));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node, flex(dgamma, Shape::new([c])));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node, flex(dbeta, Shape::new([c])));
        }
    }
}

impl<C: CheckpointStrategy> BatchNormBackend for Autodiff<Flex, C> {
    fn batch_norm_batch_stats(
        x: AdTensor<C>,
        gamma: AdTensor<C>,
        beta: AdTensor<C>,
        epsilon: f64,
    ) -> (AdTensor<C>, AdTensor<C>, AdTensor<C>) {
        if !bn_fits(x.primitive(), gamma.primitive(), beta.primitive()) {
            let r = Self::batch_norm_train(x, gamma, beta, epsilon);
            return (r.output, r.mean, r.variance);
        }
        let (y, mean, var) =
            bn_forward(x.primitive(), gamma.primitive(), beta.primitive(), epsilon);
        let y = match BatchNormStep
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&gamma),
                    mean.clone(),
                    var.clone(),
                    epsilon,
                );
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (y, Self::from_inner(mean), Self::from_inner(var))
    }
}

/// `bn.forward(x)` with the fused training-mode kernels where they apply: on an autodiff
/// device with the layer in training mode, the batch statistics normalise `x` in one op (one
/// pass each for mean, variance and output; one autodiff step whose backward is two passes)
/// and the running averages move as burn's `BatchNorm` moves them; otherwise (inference, a
/// frozen layer) burn's own `forward`.
///
/// # Shapes
/// `[n, c, ...] -> [n, c, ...]`
pub fn batch_norm<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        return bn.forward(x);
    }
    let device = x.device();
    let (y, mean, var) = <Dispatch as BatchNormBackend>::batch_norm_batch_stats(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
    );
    let (mean, var) = (
        Tensor::<1>::from_dispatch(mean),
        Tensor::<1>::from_dispatch(var),
    );
    // burn's BatchNorm::forward_train, op for op.
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    let running_mean = running_mean
        .mul_scalar(1.0 - bn.momentum)
        .add(mean.detach().mul_scalar(bn.momentum));
    let running_var = running_var
        .mul_scalar(1.0 - bn.momentum)
        .add(var.detach().mul_scalar(bn.momentum));
    bn.running_mean.update(running_mean.detach());
    bn.running_var.update(running_var.detach());
    Tensor::from_dispatch(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ops::close;
    use burn::tensor::Device;

    /// The fused batch norm equals burn's `BatchNorm` in training mode: output, gradients of
    /// the input, gamma and beta, and the running averages after the step; rank 4 (after a
    /// convolution) and rank 2 (after a linear layer). In inference mode both are burn's.
    #[test]
    fn batch_norm_matches_burns_layer() {
        use burn::nn::BatchNormConfig;
        let device = Device::flex().autodiff();
        for shape in [vec![4usize, 3, 5, 6], vec![8, 3]] {
            let len: usize = shape.iter().product();
            let data: Vec<f32> = (0..len)
                .map(|i| ((i * 37) % 101) as f32 / 20.0 - 2.0)
                .collect();
            let make = || {
                let mut bn = BatchNormConfig::new(3).init(&device);
                bn.gamma = burn::module::Param::from_tensor(Tensor::from_floats(
                    [1.5, -0.5, 0.8],
                    &device,
                ));
                bn.beta = burn::module::Param::from_tensor(Tensor::from_floats(
                    [0.1, 0.2, -0.3],
                    &device,
                ));
                bn
            };
            let x = Tensor::<1>::from_floats(data.as_slice(), &device);
            let weights = Tensor::<1>::from_floats(
                (0..len)
                    .map(|i| ((i * 13) % 7) as f32 - 3.0)
                    .collect::<Vec<_>>()
                    .as_slice(),
                &device,
            );
            let run = |fused: bool| {
                let bn = make();
                let xr = x.clone().require_grad();
                let y = if shape.len() == 4 {
                    let x4 = xr.clone().reshape([shape[0], shape[1], shape[2], shape[3]]);
                    let y = if fused {
                        batch_norm(&bn, x4)
                    } else {
                        bn.forward(x4)
                    };
                    y.reshape([len])
                } else {
                    let x2 = xr.clone().reshape([shape[0], shape[1]]);
                    let y = if fused {
                        batch_norm(&bn, x2)
                    } else {
                        bn.forward(x2)
                    };
                    y.reshape([len])
                };
                let grads = (y.clone() * weights.clone()).sum().backward();
                let g = |t: Tensor<1>| t.grad(&grads).expect("grad");
                (
                    y.inner(),
                    g(xr),
                    g(bn.gamma.val()),
                    g(bn.beta.val()),
                    bn.running_mean.value(),
                    bn.running_var.value(),
                )
            };
            let (a, b) = (run(true), run(false));
            close(a.0, b.0, 1e-5);
            close(a.1, b.1, 1e-4);
            close(a.2, b.2, 1e-4);
            close(a.3, b.3, 1e-4);
            close(a.4.inner(), b.4.inner(), 1e-6);
            close(a.5.inner(), b.5.inner(), 1e-6);
        }
        // Inference mode: burn's path (running statistics).
        let bn = BatchNormConfig::new(3).init(&device);
        let x = Tensor::<4>::random([2, 3, 4, 4], burn::tensor::Distribution::Default, &device);
        let inner = burn::module::Module::valid(&bn);
        close(
            batch_norm(&inner, x.clone().inner()).reshape([96]),
            inner.forward(x.inner()).reshape([96]),
            0.0,
        );
    }
}
