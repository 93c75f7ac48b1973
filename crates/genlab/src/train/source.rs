//! Where training batches come from, for every family: shuffled mini-batches of a training split,
//! or random patch pairs of photos (super-resolution). Either way batch `k` of epoch `e` depends
//! only on the run's seed and `(e, k)` (patches: on the global step), so a resumed run sees
//! exactly the batches an uninterrupted one would.
//!
//! A split stored in a pack (`data::pack`) is read ahead by a prefetch thread: while step `k`
//! runs, it reads the images of the next [`PREFETCH`] batches from the file (positioned reads,
//! the OS told of each batch's images first so its disk reads overlap) into small in-memory
//! batches, so the step never waits on the disk and the process holds a few batches, not the
//! pack, whatever the pack's size.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use burn::prelude::*;

use crate::data::{Batches, ImageSet, shuffled_order};
use crate::sr::patches::PatchSampler;

/// Batches the prefetch thread reads ahead of the step.
pub const PREFETCH: usize = 3;

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
        /// The training split, or (read ahead from a pack) just this batch's images.
        set: Cow<'a, ImageSet>,
        /// Which images of `set`, in batch order.
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
            Batch::Images { set, indices } => (set.as_ref(), indices),
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
        let order: Arc<[usize]> = match self {
            BatchSource::Shuffled { set, seed, .. } => shuffled_order(set.len(), *seed, epoch),
            BatchSource::Patches { .. } => Vec::new(),
        }
        .into();
        let prefetch = match self {
            BatchSource::Shuffled {
                set, batch_size, ..
            } if set.pixels.is_mapped() => Some(Prefetch::start(
                (*set).clone(),
                order.clone(),
                *batch_size,
                skip,
            )),
            _ => None,
        };
        EpochBatches {
            source: *self,
            order,
            next: skip,
            step: first_step,
            device: device.clone(),
            prefetch,
        }
    }
}

/// The iterator [`BatchSource::epoch`] returns.
pub struct EpochBatches<'a> {
    source: BatchSource<'a>,
    order: Arc<[usize]>,
    next: usize,
    step: usize,
    device: Device,
    /// The read-ahead of a split in a pack.
    prefetch: Option<Prefetch>,
}

/// A thread reading one epoch's batches ahead of the step (see the module docs).
struct Prefetch {
    /// Each batch's images, in order; bounded, so the thread stays [`PREFETCH`] batches ahead.
    /// A read error is passed on, and the step then reads that batch from the mapping.
    ready: Option<Receiver<std::io::Result<ImageSet>>>,
    thread: Option<JoinHandle<()>>,
}

impl Prefetch {
    /// `set` is a cheap handle (a pack's pixels are shared, not copied).
    fn start(set: ImageSet, order: Arc<[usize]>, batch_size: usize, skip: usize) -> Self {
        let (tx, rx) = sync_channel(PREFETCH - 1);
        let thread = std::thread::Builder::new()
            .name("genlab-prefetch".into())
            .spawn(move || {
                let n = set.image_len();
                for batch in Batches::new(&order, batch_size, skip) {
                    for &i in batch {
                        set.pixels.will_need(i * n, n);
                    }
                    if tx.send(set.gather(batch)).is_err() {
                        return; // the epoch was dropped (a stop, an error)
                    }
                }
            })
            .ok();
        Self {
            ready: Some(rx),
            thread,
        }
    }

    /// The next batch's images: waits for the thread if it is behind. `None` if the thread could
    /// not start or has ended (then the step reads the batch itself).
    fn next(&self) -> Option<std::io::Result<ImageSet>> {
        self.ready.as_ref()?.recv().ok()
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Closing the channel ends the thread at its next batch.
        self.ready.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
                match self.prefetch.as_ref().and_then(Prefetch::next) {
                    Some(Ok(images)) => Batch::Images {
                        indices: (0..images.len()).collect(),
                        set: Cow::Owned(images),
                    },
                    _ => Batch::Images {
                        set: Cow::Borrowed(set),
                        indices,
                    },
                }
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
        let set = ImageSet::new((0..10u8).collect::<Vec<u8>>(), None, [1, 1, 1]).expect("set");
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

    #[test]
    fn a_mapped_split_is_prefetched_into_the_same_batches_and_an_early_drop_ends_the_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..37u8 {
            image::GrayImage::from_pixel(3, 3, image::Luma([i * 6]))
                .save(dir.path().join(format!("{i:02}.png")))
                .expect("save");
        }
        let p = dir.path().join("d.glpack");
        crate::data::pack::pack_folder(dir.path(), [1, 3, 3], &p, &mut |_, _| {}).expect("pack");
        let mapped = crate::data::pack::open(&p).expect("open").train;
        let owned = ImageSet::new(mapped.pixels.to_vec(), None, mapped.shape).expect("copy");
        assert!(mapped.pixels.is_mapped() && !owned.pixels.is_mapped());
        let d = Device::flex();
        let pixels_of = |set: &ImageSet, skip| -> Vec<Vec<u8>> {
            let src = BatchSource::Shuffled {
                set,
                batch_size: 4,
                seed: 5,
            };
            src.epoch(2, skip, 0, &d)
                .map(|b| {
                    let (s, idx) = b.images();
                    idx.iter().flat_map(|&i| s.image(i).to_vec()).collect()
                })
                .collect()
        };
        assert_eq!(pixels_of(&mapped, 0), pixels_of(&owned, 0));
        assert_eq!(pixels_of(&mapped, 3), pixels_of(&owned, 3));
        // Taking one batch and dropping the rest (a stop) returns: the thread is joined.
        let src = BatchSource::Shuffled {
            set: &mapped,
            batch_size: 2,
            seed: 5,
        };
        assert_eq!(src.epoch(0, 0, 0, &d).take(1).count(), 1);
    }
}
