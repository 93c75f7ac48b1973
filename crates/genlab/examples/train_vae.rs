//! README's library example: trains the conv VAE preset for 3 epochs on the embedded mnist-10k
//! into `runs/conv-vae` (`cargo run --release -p genlab --example train_vae`).

use std::sync::atomic::AtomicBool;

use burn::prelude::*;
use genlab::{RunConfig, RunDir, data, train};

fn main() -> genlab::Result<()> {
    let mut cfg = RunConfig::preset("mnist-conv-vae")?; // or RunConfig::from_toml(..)
    cfg.train.epochs = 3;
    let data = data::load(&cfg.train.dataset_spec()?, &cfg.train.data_options(None))?;
    cfg.model.set_image(data.shape());
    let device = Device::flex();
    let run = RunDir::new("runs/conv-vae");
    let stop = AtomicBool::new(false); // set it to stop cleanly
    let outcome = train::train(&run, &cfg, false, &data, &device, &stop, &mut train::Silent)?;
    println!("{outcome:?}"); // the library itself never prints
    Ok(())
}
