//! `genlab train`: one file per kind of run, and what they share.

mod family;
mod generative;
pub mod progress;
mod sr;

pub use family::GenerativeFamily;
pub use generative::{Args, run};
