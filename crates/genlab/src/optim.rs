//! The optimizers the families train with: Adam (one fused pass per parameter on the CPU, see
//! [`FusedAdam`]), alone or with a separate Adam per network.

use burn::backend::Dispatch;
use burn::module::ParamGroup;
use burn::optim::{AdamState, AdaptiveMomentumState, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};

use crate::nn::ops::adam::AdamBackend;

/// Adam with `betas` and `eps` over every parameter.
pub fn adam(betas: [f64; 2], eps: f64) -> ModuleOptimizer {
    FusedAdam::new(betas[0] as f32, betas[1] as f32, eps as f32).init()
}

/// Adam for each of two networks: one [`ModuleOptimizer`] holding a separate Adam for `first`'s
/// parameter group and one for the rest, so the two never share state and a checkpoint keeps
/// both in one file.
pub fn adam_per_network(betas: [f64; 2], eps: f64, first: ParamGroup) -> ModuleOptimizer {
    let a = FusedAdam::new(betas[0] as f32, betas[1] as f32, eps as f32);
    a.clone().init().with_group(first, a, None)
}

/// Adam with burn 0.22's arithmetic and state, one fused pass per parameter on flex
/// ([`AdamBackend::adam_update`]), which stores moments below f32's normal range as 0 (the same
/// parameters to the bit in practice, without subnormal arithmetic; `genlab_kernels::pointwise::
/// adam_update`). A `burn::optim::Optimizer` with burn's `AdamState` record, so checkpoints
/// written with burn's `Adam` resume with it and back.
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
        let (p, m, v) = <Dispatch as AdamBackend>::adam_update(
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
    use crate::nn::ops::close;
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::TensorData;

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

    /// The step writes over a parameter only when nothing else holds its buffer: a copy of the
    /// model taken before the step (sharing its buffers, as `Module::clone` does) keeps its
    /// values, and the stepped model is the same whether or not such a copy was held.
    #[test]
    fn a_shared_parameter_is_never_overwritten() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let net = Mlp::new(&[6, 4], &device);
        let x = Tensor::<2>::ones([3, 6], &device);
        let values = |n: &Mlp| {
            n.layers[0]
                .weight
                .val()
                .inner()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32 weights")
        };
        let step = |net: Mlp, optim: &mut ModuleOptimizer| {
            let loss = net.forward(x.clone()).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            optim.step(1e-1, net, grads)
        };
        let before = values(&net);
        let (mut shared, mut alone) = (
            FusedAdam::new(0.9, 0.999, 1e-8).init(),
            FusedAdam::new(0.9, 0.999, 1e-8).init(),
        );
        let (mut a, mut b) = (net.clone(), net);
        for _ in 0..3 {
            let held = a.clone();
            let was = values(&held);
            a = step(a, &mut shared);
            assert_eq!(values(&held), was, "a copy held over the step changed");
            drop(held);
            // `b` holds its buffers alone from its second step on: stepped in place.
            b = step(b, &mut alone);
        }
        assert_ne!(values(&a), before);
        assert_eq!(values(&a), values(&b));
    }
}
