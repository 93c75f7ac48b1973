//! Where training batches come from, for every family: shuffled mini-batches of a training split,
//! or random patch pairs of photos (super-resolution). Either way batch `k` of epoch `e` depends
//! only on the run's seed and `(e, k)` (patches: on the global step), so a resumed run sees
//! exactly the batches an uninterrupted one would.

use burn::prelude::*;

use crate::data::{Batches, ImageSet, shuffled_order};
use crate::sr::patches::PatchSampler;

/// A family's supply of training batches.
#[derive(Clone, Copy)]
pub enum BatchSource<'a> {
    /// Mini-batches of `set` in a new seeded order every epoch; the last one may be short.
    Shuffled {
        /// The training split.
        set: &'a ImageSet,
        /// Images per batch.
        batch_size: usize,
        /// The run's seed.
        seed: u64,
    },
    /// `steps` draws per epoch of aligned LR/HR patch pairs.
    Patches {
        /// The photos and how to cut them.
        sampler: &'a PatchSampler,
        /// Batches per epoch.
        steps: usize,
    },
}

/// One training batch.
// The patch variant holds two tensor handles; a batch lives for one step, so its size is moot.
#[allow(clippy::large_enum_variant)]
pub enum Batch<'a> {
    /// Images of a training split, by index (the family turns them into its tensors: plain,
    /// shifted, with labels).
    Images {
        /// The training split.
        set: &'a ImageSet,
        /// Which images, in batch order.
        indices: Vec<usize>,
    },
    /// Aligned patches: LR `[b, 1, p, p]` and the HR pixels the loss scores, in [0, 1].
    Patches {
        /// Network input.
        lr: Tensor<4>,
        /// Target.
        hr: Tensor<4>,
    },
}

impl Batch<'_> {
    /// The split and indices of an image batch. Families that ask for
    /// [`BatchSource::Shuffled`] only ever receive these.
    pub fn images(&self) -> (&ImageSet, &[usize]) {
        match self {
            Batch::Images { set, indices } => (set, indices),
            Batch::Patches { .. } => unreachable!("a family with a shuffled source got patches"),
        }
    }
}

impl<'a> BatchSource<'a> {
    /// Batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        match self {
            BatchSource::Shuffled {
                set, batch_size, ..
            } => Batches::count(set.len(), *batch_size),
            BatchSource::Patches { steps, .. } => *steps,
        }
    }

    /// The batches of 0-based `epoch` after the first `skip` (resume), the first of them being
    /// optimizer step `first_step`; patch tensors are made on `device`.
    pub fn epoch(
        &self,
        epoch: usize,
        skip: usize,
        first_step: usize,
        device: &Device,
    ) -> EpochBatches<'a> {
        let order = match self {
            BatchSource::Shuffled { set, seed, .. } => shuffled_order(set.len(), *seed, epoch),
            BatchSource::Patches { .. } => Vec::new(),
        };
        EpochBatches {
            source: *self,
            order,
            next: skip,
            step: first_step,
            device: device.clone(),
        }
    }
}

/// The iterator [`BatchSource::epoch`] returns.
pub struct EpochBatches<'a> {
    source: BatchSource<'a>,
    order: Vec<usize>,
    next: usize,
    step: usize,
    device: Device,
}

impl<'a> Iterator for EpochBatches<'a> {
    type Item = Batch<'a>;
    fn next(&mut self) -> Option<Batch<'a>> {
        let k = self.next;
        let batch = match self.source {
            BatchSource::Shuffled {
                set, batch_size, ..
            } => {
                let indices = Batches::new(&self.order, batch_size, k).next()?.to_vec();
                Batch::Images { set, indices }
            }
            BatchSource::Patches { sampler, steps } => {
                if k >= steps {
                    return None;
                }
                let (lr, hr) = sampler.draw(self.step, &self.device);
                Batch::Patches { lr, hr }
            }
        };
        self.next += 1;
        self.step += 1;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_batches_match_the_loader_and_resume_mid_epoch() {
        let set = ImageSet::new((0..10u8).collect(), None, [1, 1, 1]).expect("set");
        let src = BatchSource::Shuffled {
            set: &set,
            batch_size: 4,
            seed: 3,
        };
        assert_eq!(src.batches_per_epoch(), 3);
        let d = Device::flex();
        let all: Vec<Vec<usize>> = src
            .epoch(1, 0, 0, &d)
            .map(|b| b.images().1.to_vec())
            .collect();
        let order = shuffled_order(10, 3, 1);
        let want: Vec<Vec<usize>> = Batches::new(&order, 4, 0).map(<[_]>::to_vec).collect();
        assert_eq!(all, want);
        let rest: Vec<Vec<usize>> = src
            .epoch(1, 2, 0, &d)
            .map(|b| b.images().1.to_vec())
            .collect();
        assert_eq!(rest, want[2..].to_vec());
    }
}
