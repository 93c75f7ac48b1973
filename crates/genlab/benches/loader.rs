//! Data-loading throughput: shuffled batches of the embedded mnist-10k turned into `[b, 1, 28, 28]`
//! f32 tensors on the flex device, exactly as the training loop builds them, with no model.
//! Run: `cargo bench -p genlab --bench loader`. Prints the median of 7 passes, images/s.

use std::time::Instant;

use burn::prelude::*;
use genlab::data::batch_tensor;
use genlab::data::{Batches, embedded, shuffled_order};

fn main() -> genlab::Result<()> {
    let data = embedded::mnist_10k()?;
    let device = Device::flex();
    let mut rates = Vec::new();
    for epoch in 0..7 {
        let start = Instant::now();
        let order = shuffled_order(data.train.len(), 0, epoch);
        let mut checksum = 0.0f32;
        for idx in Batches::new(&order, 128, 0) {
            let x = batch_tensor(&data.train, idx, &device);
            // Read one value back so the work cannot be skipped.
            checksum += x.narrow(0, 0, 1).sum().into_scalar::<f32>();
        }
        rates.push(data.train.len() as f64 / start.elapsed().as_secs_f64());
        assert!(checksum.is_finite());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "loader: median {:.0} images/s over 7 passes of {} images (batch 128), min {:.0}, max {:.0}",
        rates[3],
        data.train.len(),
        rates[0],
        rates[6]
    );
    Ok(())
}
