//! Data parallelism, the part that needs no second device (docs/scaling.md): how one optimizer
//! step's batch is cut into `world` shards, how each shard gets its noise, and how the shards'
//! gradients are combined into the step's gradient.
//!
//! With `train.shards = N` a family runs its step as N shards one after another on its one
//! device and sums their gradients before the single update: exactly what N data-parallel ranks
//! compute at once, one shard each, with the sum done by an all-reduce (burn's
//! `burn::tensor::distributed::all_reduce` over NCCL on CUDA). On one device it is gradient
//! accumulation: the activations held at once are a shard's, not the batch's.
//!
//! Three rules make the step the same at any N (up to floating-point summation order), so a run
//! can resume with another N, and N ranks reproduce a one-device run:
//! - **Shards are contiguous, balanced cuts of the batch in its order** ([`shard_range`]); the
//!   batch itself is still batch `k` of the epoch's seeded shuffle, whatever N is.
//! - **Noise is drawn for the whole batch and sliced** ([`noise_rows`]): image `i` of the batch gets
//!   row `i` of the step's noise matrix, on whichever rank it lands.
//! - **Each shard's mean loss is weighted by its share of the batch** ([`shard_weight`]), so the
//!   sum of the shards' gradients ([`sum_grads`]) is the gradient of the batch's mean loss even
//!   when the shards differ in size (a short last batch).
//!
//! Batch norm breaks the third rule (each shard normalises with its own statistics, as PyTorch's
//! DDP does without `SyncBatchNorm`), so only families whose step has no batch statistics accept
//! N > 1 ([`crate::models::ModelConfig::supports_shards`]).

use std::ops::Range;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// Rank `rank`'s part of a batch of `len` images cut into `world` shards: contiguous, in batch
/// order, the first `len % world` shards one image longer than the rest. Empty when `len <
/// world` leaves this rank nothing.
pub fn shard_range(len: usize, rank: usize, world: usize) -> Range<usize> {
    assert!(world > 0 && rank < world, "rank {rank} of world {world}");
    let base = len / world;
    let extra = len % world;
    let start = rank * base + rank.min(extra);
    let size = base + usize::from(rank < extra);
    start..start + size
}

/// The weight of a shard's mean loss: its share of the batch, so that the shards' weighted
/// gradients sum to the gradient of the batch's mean loss.
pub fn shard_weight(range: &Range<usize>, len: usize) -> f64 {
    range.len() as f64 / len.max(1) as f64
}

/// Rows `range` of a `[rows, cols]` noise matrix: every rank is handed the same full matrix
/// (drawn once from the step's seeded RNG) and keeps the rows of its own images.
///
/// # Shapes
/// `noise: [rows, cols]` -> `[range.len(), cols]`
pub fn noise_rows(noise: &Tensor<2>, range: Range<usize>) -> Tensor<2> {
    noise.clone().slice([range])
}

/// The sum of the shards' gradients, parameter by parameter: what an all-reduce (sum) of the
/// ranks' gradients leaves on every rank. A parameter missing from a shard's gradients (no
/// gradient reached it) counts as zero.
pub fn sum_grads<M: Module>(model: &M, shards: Vec<GradientsParams>) -> GradientsParams {
    let mut shards = shards;
    if shards.len() == 1 {
        return shards.pop().expect("one shard");
    }
    let mut v = SumGrads {
        shards,
        out: GradientsParams::new(),
    };
    model.visit(&mut v);
    v.out
}

/// Visits every float parameter and sums its gradient over the shards.
struct SumGrads {
    shards: Vec<GradientsParams>,
    out: GradientsParams,
}

impl SumGrads {
    fn add<const D: usize>(&mut self, id: ParamId) {
        let mut total: Option<Tensor<D>> = None;
        for g in &mut self.shards {
            if let Some(t) = g.remove::<D>(id) {
                total = Some(match total {
                    Some(s) => s + t,
                    None => t,
                });
            }
        }
        if let Some(t) = total {
            self.out.register(id, t);
        }
    }
}

impl ModuleVisitor for SumGrads {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.add::<D>(param.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order_and_balance() {
        for len in 0..40 {
            for world in 1..9 {
                let ranges: Vec<_> = (0..world).map(|r| shard_range(len, r, world)).collect();
                // Contiguous, in order, covering 0..len exactly.
                let mut next = 0;
                for r in &ranges {
                    assert_eq!(r.start, next, "len {len} world {world}");
                    next = r.end;
                }
                assert_eq!(next, len);
                let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
                let (lo, hi) = (
                    sizes.iter().min().expect("shards"),
                    sizes.iter().max().expect("shards"),
                );
                assert!(hi - lo <= 1, "len {len} world {world}: {sizes:?}");
                let w: f64 = ranges.iter().map(|r| shard_weight(r, len)).sum();
                if len > 0 {
                    assert!((w - 1.0).abs() < 1e-12);
                }
            }
        }
        assert_eq!(shard_range(10, 0, 3), 0..4);
        assert_eq!(shard_range(10, 2, 3), 7..10);
        assert_eq!(shard_range(2, 2, 3), 2..2);
    }

    #[test]
    fn summed_shard_gradients_are_the_batch_gradient() {
        // Oracle: the gradient of the whole batch's mean loss, one backward pass.
        let device = Device::flex().autodiff();
        let lin = burn::nn::LinearConfig::new(5, 3).init(&device);
        let x: Vec<f32> = (0..7 * 5)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [7, 5]), &device);
        let loss = |x: Tensor<2>| lin.forward(x).powi_scalar(2).sum_dim(1).mean();
        let full = GradientsParams::from_grads(loss(x.clone()).backward(), &lin);
        for world in [1, 2, 3, 7] {
            let parts = (0..world)
                .map(|r| {
                    let range = shard_range(7, r, world);
                    let w = shard_weight(&range, 7);
                    let l = loss(noise_rows(&x, range)).mul_scalar(w);
                    GradientsParams::from_grads(l.backward(), &lin)
                })
                .collect();
            let sum = sum_grads(&lin, parts);
            let id = lin.weight.id;
            let (a, b) = (
                full.get::<2>(id).expect("grad"),
                sum.get::<2>(id).expect("grad"),
            );
            let d: f32 = (a - b).abs().max().into_scalar();
            assert!(d < 1e-5, "world {world}: weight gradient off by {d}");
            let bias = lin.bias.as_ref().expect("a bias").id;
            let (a, b) = (
                full.get::<1>(bias).expect("grad"),
                sum.get::<1>(bias).expect("grad"),
            );
            let d: f32 = (a - b).abs().max().into_scalar();
            assert!(d < 1e-5, "world {world}: bias gradient off by {d}");
        }
    }
}
