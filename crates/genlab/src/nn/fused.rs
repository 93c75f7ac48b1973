//! One-pass elementwise work on the CPU (flex) backend: the Bernoulli loss, the Adam update and
//! training-mode batch norm.
//!
//! burn composes both from generic elementwise ops, each a pass over memory into a new buffer.
//! On the MLP VAE (BENCHMARKS.md, W1) the optimizer step was 17% of a training step and the
//! binary cross-entropy 12%. Here each is one pass (kernels in `genlab-kernels::pointwise`),
//! registered through burn's backend-extension mechanism like `nn::fast`: flex gets the fused
//! kernels (and the loss its own autodiff step), every other backend runs the same formulas
//! with burn's ops.
//!
//! - [`bce_with_logits_rows`]: `[b, n], [b, n] -> [b]`, the stable BCE-with-logits summed per row;
//!   gradients for the logits and the targets.
//! - [`batch_norm`]: `BatchNorm::forward` with the batch statistics computed in one pass each
//!   and one autodiff step (burn's default copies the tensor with swapped axes for each
//!   statistic, forward and backward; 15% of a DCGAN step).
//! - [`FusedAdam`]: a `burn::optim::Optimizer` with burn's `Adam` arithmetic and burn's
//!   `AdamState` record, so checkpoints written with burn's Adam resume with it and back.

use burn::backend::TensorMetadata;
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
use burn::optim::{AdamState, AdaptiveMomentumState, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Shape, Tensor, TensorData};
use genlab_kernels::pointwise::{self as kernels, AdamScalars};

use super::fast::{is_f32, values};

/// Elementwise work a backend may fuse. The default bodies are burn's ops.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait FusedBackend: Backend {
    /// BCE with logits summed over each row: `[b, n], [b, n] -> [b]`.
    fn bce_logits_rows(logits: FloatTensor<Self>, target: FloatTensor<Self>) -> FloatTensor<Self> {
        bce_rows_ops::<Self>(logits, target)
    }

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

    /// One Adam step of a parameter: `(param', m', v')` (see `genlab_kernels::pointwise`).
    #[allow(clippy::too_many_arguments)]
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        lr: f64,
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        time: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let s = scalars(lr, beta_1, beta_2, epsilon, time);
        adam_ops::<Self>(param, grad, m, v, s)
    }
}

fn scalars(lr: f64, beta_1: f64, beta_2: f64, epsilon: f64, time: usize) -> AdamScalars {
    AdamScalars {
        lr: lr as f32,
        beta_1: beta_1 as f32,
        beta_2: beta_2 as f32,
        epsilon: epsilon as f32,
        time: i32::try_from(time).unwrap_or(i32::MAX),
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

/// burn 0.22's `Adam` step, op for op.
fn adam_ops<B: Backend>(
    p: FloatTensor<B>,
    g: FloatTensor<B>,
    m: FloatTensor<B>,
    v: FloatTensor<B>,
    s: AdamScalars,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let m = B::float_add(
        B::float_mul_scalar(m, s.beta_1.into()),
        B::float_mul_scalar(g.clone(), (1.0 - s.beta_1).into()),
    );
    let v = B::float_add(
        B::float_mul_scalar(v, s.beta_2.into()),
        B::float_mul_scalar(B::float_mul(g.clone(), g), (1.0 - s.beta_2).into()),
    );
    let c2 = (1.0 - s.beta_2.powi(s.time)).sqrt();
    let factor = c2 / (1.0 - s.beta_1.powi(s.time));
    let step = B::float_div(
        B::float_mul_scalar(m.clone(), factor.into()),
        B::float_add_scalar(B::float_sqrt(v.clone()), (s.epsilon * c2).into()),
    );
    let p = B::float_sub(p, B::float_mul_scalar(step, s.lr.into()));
    (p, m, v)
}

fn flex(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
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

impl FusedBackend for Flex {
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

    fn bce_logits_rows(logits: FlexTensor, target: FlexTensor) -> FlexTensor {
        if !bce_fits(&logits, &target) {
            return bce_rows_ops::<Flex>(logits, target);
        }
        bce_forward(&logits, &target)
    }

    fn adam_update(
        param: FlexTensor,
        grad: FlexTensor,
        m: FlexTensor,
        v: FlexTensor,
        lr: f64,
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        time: usize,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let s = scalars(lr, beta_1, beta_2, epsilon, time);
        let shape = param.layout().shape().clone();
        let same = [&grad, &m, &v].iter().all(|t| t.layout().shape() == &shape);
        if !same || !is_f32(&[&param, &grad, &m, &v]) {
            return adam_ops::<Flex>(param, grad, m, v, s);
        }
        let [p, g, m, v] = [&param, &grad, &m, &v].map(|t| t.to_contiguous());
        let (p, m, v) = kernels::adam_update(values(&p), values(&g), values(&m), values(&v), s);
        (
            flex(p, shape.clone()),
            flex(m, shape.clone()),
            flex(v, shape),
        )
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl FusedBackend for burn::backend::Cube {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<C: CheckpointStrategy> FusedBackend for Autodiff<burn::backend::Cube, C> {}

type AdTensor<C> = FloatTensor<Autodiff<Flex, C>>;

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

impl<C: CheckpointStrategy> FusedBackend for Autodiff<Flex, C> {
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
        <Dispatch as FusedBackend>::bce_logits_rows(logits.into_dispatch(), target.into_dispatch());
    Tensor::from_dispatch(out)
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
    let (y, mean, var) = <Dispatch as FusedBackend>::batch_norm_batch_stats(
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

/// Adam with burn 0.22's arithmetic and state, one fused pass per parameter on flex.
#[derive(Clone, Debug)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
}

impl FusedAdam {
    /// Adam with these moment decays and epsilon (burn's `AdamConfig` defaults are 0.9, 0.999,
    /// 1e-5; PyTorch's epsilon is 1e-8).
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        Self {
            beta_1,
            beta_2,
            epsilon,
        }
    }

    /// The module optimizer genlab's training loops step.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        let (m, v, time) = match state {
            Some(s) => (
                s.momentum.moment_1,
                s.momentum.moment_2,
                s.momentum.time + 1,
            ),
            // The first step is the general one with zero moments (0 b + x = x exactly).
            None => (grad.zeros_like(), grad.zeros_like(), 1),
        };
        let (p, m, v) = <Dispatch as FusedBackend>::adam_update(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            lr,
            f64::from(self.beta_1),
            f64::from(self.beta_2),
            f64::from(self.epsilon),
            time,
        );
        let momentum = AdaptiveMomentumState {
            time,
            moment_1: Tensor::from_dispatch(m),
            moment_2: Tensor::from_dispatch(v),
            max_moment_2: None,
        };
        (Tensor::from_dispatch(p), Some(AdamState { momentum }))
    }

    fn to_device<const D: usize>(mut state: AdamState<D>, device: &Device) -> AdamState<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Mlp;
    use burn::optim::{AdamConfig, GradientsParams};

    fn close(a: Tensor<1>, b: Tensor<1>, tol: f32) {
        let (a, b) = (
            a.into_data().try_into_vec::<f32>().expect("f32"),
            b.into_data().try_into_vec::<f32>().expect("f32"),
        );
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{i}: {x} vs {y}");
        }
    }

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

    /// Five steps of FusedAdam give burn's Adam's parameters (the same arithmetic), and its
    /// state is burn's: a record written by one is read by the other.
    #[test]
    fn fused_adam_equals_burns_adam() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let net = Mlp::new(&[6, 5, 3], &device);
        let x = Tensor::<2>::from_floats(
            TensorData::new(
                (0..24).map(|i| ((i * 7) % 13) as f32 / 6.0 - 1.0).collect(),
                [4, 6],
            ),
            &device,
        );
        let run = |mut optim: ModuleOptimizer, mut net: Mlp| {
            for _ in 0..5 {
                let loss = net.forward(x.clone()).powi_scalar(2).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optim.step(1e-2, net, grads);
            }
            (net, optim)
        };
        let (a, optim_a) = run(AdamConfig::new().with_epsilon(1e-8).init(), net.clone());
        let (b, optim_b) = run(FusedAdam::new(0.9, 0.999, 1e-8).init(), net);
        let flat = |n: &Mlp| {
            Tensor::cat(
                n.layers
                    .iter()
                    .flat_map(|l| {
                        [l.weight.val().flatten(0, 1)]
                            .into_iter()
                            .chain(l.bias.as_ref().map(|b| b.val()))
                    })
                    .map(|t| t.inner())
                    .collect(),
                0,
            )
        };
        close(flat(&a), flat(&b), 1e-6);
        // Checkpoints: burn's Adam's saved state loads into FusedAdam (and FusedAdam's into
        // burn's Adam), and both continue as burn's Adam does.
        let bytes_a = optim_a.into_bytes().expect("save burn's Adam");
        let bytes_b = optim_b.into_bytes().expect("save FusedAdam");
        let optim_c = FusedAdam::new(0.9, 0.999, 1e-8)
            .init()
            .from_bytes(bytes_a)
            .expect("burn's Adam state loads into FusedAdam");
        let optim_d = AdamConfig::new()
            .with_epsilon(1e-8)
            .init()
            .from_bytes(bytes_b)
            .expect("FusedAdam's state loads into burn's Adam");
        let (c, _) = run(optim_c, a.clone());
        let (d, _) = run(optim_d, b);
        let (e, _) = run(optim_a, a);
        close(flat(&c), flat(&e), 1e-6);
        close(flat(&d), flat(&e), 1e-6);
    }

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
