//! One Adam step of a parameter as one op: [`AdamBackend::adam_update`], the op under
//! `optim::FusedAdam`.
//!
//! burn's `Adam` is about a dozen generic elementwise ops per parameter, each a pass over memory
//! into a new buffer. On flex the step is one pass (`genlab_kernels::pointwise::adam_update`):
//! one read of the parameter, gradient and moments and one write of each output, written over
//! the inputs when they own their buffers. It stores moments below f32's normal range as 0,
//! where long trainings would leave them stuck as subnormals (the kernel's docs say why). Every
//! other backend runs burn 0.22's arithmetic op for op with burn's ops. Figures: BENCHMARKS.md,
//! "Speed: AVX-512 GEMM and fused Adam/BCE" and "Adam's moments stuck below the normal range".

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use genlab_kernels::pointwise::{self as kernels, AdamScalars};

use super::{flex, is_f32, values, values_mut};

/// The Adam step a backend may fuse. The default body is burn's ops.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait AdamBackend: Backend {
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

impl AdamBackend for Flex {
    fn adam_update(
        mut param: FlexTensor,
        grad: FlexTensor,
        mut m: FlexTensor,
        mut v: FlexTensor,
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
        // In place when the parameter and its moments own their buffers (as after backward,
        // with no checkpoint or clone holding them): the same bits without three new buffers.
        let g = grad.to_contiguous();
        if let (Some(p1), Some(m1), Some(v1)) = (
            values_mut(&mut param),
            values_mut(&mut m),
            values_mut(&mut v),
        ) {
            kernels::adam_update_in_place(p1, values(&g), m1, v1, s);
            return (param, m, v);
        }
        let [p, m, v] = [&param, &m, &v].map(|t| t.to_contiguous());
        let (p, m, v) = kernels::adam_update(values(&p), values(&g), values(&m), values(&v), s);
        (
            flex(p, shape.clone()),
            flex(m, shape.clone()),
            flex(v, shape),
        )
    }
}

/// Autodiff flex keeps the default body (burn's ops).
impl<C: CheckpointStrategy> AdamBackend for Autodiff<Flex, C> {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl AdamBackend for burn::backend::Cube {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<C: CheckpointStrategy> AdamBackend for Autodiff<burn::backend::Cube, C> {}
