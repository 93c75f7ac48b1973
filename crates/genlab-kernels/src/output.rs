//! Output buffers that the workers initialise themselves, in parallel, instead of the calling
//! thread zeroing them first.

use std::mem::MaybeUninit;

/// A new output of `len` values, handed to `fill` uninitialised; `fill` must write every one of
/// them (each caller splits the whole buffer into parts and writes or [`init`]s each part). A
/// `vec![0f32; len]` instead costs a serial memset on the calling thread before the parallel
/// kernel overwrites it: ~4% of a W2 training step, with the other core idle.
pub(crate) fn output(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` initialised all `len` values (the contract above, kept by every caller).
    unsafe { v.set_len(len) };
    v
}

/// Writes `value` into every element of `buf` and returns it as initialised values (how a
/// worker thread starts its part of an [`output`] that it then adds or writes into).
pub(crate) fn init(buf: &mut [MaybeUninit<f32>], value: f32) -> &mut [f32] {
    buf.fill(MaybeUninit::new(value));
    // SAFETY: every element was just written, and `MaybeUninit<f32>` has `f32`'s layout.
    unsafe { &mut *(buf as *mut [MaybeUninit<f32>] as *mut [f32]) }
}
