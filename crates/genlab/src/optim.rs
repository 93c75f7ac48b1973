//! The optimizers the families train with: Adam (one fused pass per parameter on the CPU, see
//! [`FusedAdam`]), alone or with a separate Adam per network.

use burn::module::ParamGroup;
use burn::optim::ModuleOptimizer;

pub use crate::nn::fused::FusedAdam;

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
