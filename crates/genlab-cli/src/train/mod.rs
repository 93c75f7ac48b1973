//! `genlab train`: one file per kind of run, and what they share.

mod generative;
pub mod progress;
mod sr;

pub use generative::{Args, run};
