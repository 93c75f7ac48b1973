//! Every random draw genlab makes on the host (shuffles, reparameterization noise, sample noise)
//! comes from an RNG seeded by `(seed, stream, counter)`: a resumed run repeats exactly the draws
//! it would have made without the interruption, and no RNG state needs saving.

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardNormal};

/// Stream ids, one per purpose, so two purposes never share draws.
pub mod stream {
    /// Per-epoch shuffles of the training set.
    pub const SHUFFLE: u64 = 1;
    /// Per-step training noise (the VAE's `eps`).
    pub const TRAIN_NOISE: u64 = 2;
    /// Evaluation noise (test loss, reconstructions).
    pub const EVAL_NOISE: u64 = 3;
    /// Fixed latent noise for sample grids.
    pub const SAMPLE: u64 = 4;
}

/// The RNG for one `(seed, stream, counter)`: e.g. the shuffle of epoch 3, or the noise of step 712.
pub fn rng_for(seed: u64, stream: u64, counter: u64) -> Xoshiro256PlusPlus {
    // SplitMix64-style mixing so nearby seeds and counters give unrelated streams.
    let mut z = seed
        ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ counter.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Xoshiro256PlusPlus::seed_from_u64(z ^ (z >> 31))
}

/// A `[rows, cols]` tensor of independent N(0, 1) draws from `rng`.
pub fn standard_normal(
    rng: &mut Xoshiro256PlusPlus,
    rows: usize,
    cols: usize,
    device: &Device,
) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}
