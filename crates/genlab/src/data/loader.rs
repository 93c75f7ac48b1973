//! Shuffled mini-batches, in an order that depends only on `(seed, epoch)` (see [`crate::rng`]).

use rand::seq::SliceRandom;

use crate::rng::{rng_for, stream};

/// The permutation of `0..n` used for epoch `epoch` (0-based) of a run with `seed`.
pub fn shuffled_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng_for(seed, stream::SHUFFLE, epoch as u64));
    order
}

/// Index batches over an order; the last batch may be short, and an empty one is never yielded.
pub struct Batches<'a> {
    order: &'a [usize],
    batch_size: usize,
    pos: usize,
}

impl<'a> Batches<'a> {
    /// Batches of `batch_size` (at least 1) over `order`, starting at batch `skip`.
    pub fn new(order: &'a [usize], batch_size: usize, skip: usize) -> Self {
        let batch_size = batch_size.max(1);
        Self {
            order,
            batch_size,
            pos: (skip * batch_size).min(order.len()),
        }
    }

    /// Number of batches over the whole order.
    pub fn count(n: usize, batch_size: usize) -> usize {
        n.div_ceil(batch_size.max(1))
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = &'a [usize];
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let b = &self.order[self.pos..end];
        self.pos = end;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_a_seeded_permutation() {
        let a = shuffled_order(100, 7, 0);
        assert_eq!(a, shuffled_order(100, 7, 0));
        assert_ne!(a, shuffled_order(100, 7, 1));
        assert_ne!(a, shuffled_order(100, 8, 0));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn batches_cover_everything_and_resume_mid_epoch() {
        let order: Vec<usize> = (0..10).collect();
        let sizes: Vec<usize> = Batches::new(&order, 4, 0).map(|b| b.len()).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        let rest: Vec<&[usize]> = Batches::new(&order, 4, 2).collect();
        assert_eq!(rest, vec![&[8usize, 9][..]]);
        assert_eq!(Batches::count(10, 4), 3);
    }
}
