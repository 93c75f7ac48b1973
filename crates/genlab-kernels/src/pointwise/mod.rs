//! One-pass elementwise kernels: an Adam update and the binary cross-entropy with logits.
//!
//! burn builds both from generic elementwise ops, each a pass over memory into a fresh buffer:
//! Adam is ~12 passes per parameter tensor, the BCE loss ~6 forward and ~8 backward, a visible
//! share of a training step on flex (BENCHMARKS.md). Here each is one pass, split into chunks
//! across rayon threads.
//!
//! Also training-mode batch normalisation (`batch_norm`), whose per-channel sums the
//! convolutions' bias gradient shares, and 8-bit pixels as floats (`pixels`).

mod adam;
mod batch_norm;
mod bce;
mod pixels;

pub use adam::{AdamScalars, adam_update, adam_update_in_place};
pub(crate) use batch_norm::channel_sums;
pub use batch_norm::{batch_norm_backward, batch_norm_forward};
pub use bce::{bce_with_logits_rows, bce_with_logits_rows_backward};
pub use pixels::{gather_units_from_u8, unit_from_u8, units_from_u8};
