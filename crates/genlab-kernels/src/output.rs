//! Output buffers that the workers initialise themselves, in parallel, instead of the calling
//! thread zeroing them first.

use std::mem::MaybeUninit;

/// A new output of `len` values, handed to `fill` uninitialised and returned as initialised
/// values (each caller splits the whole buffer into parts and writes or [`init`]s each part). A
/// `vec![0f32; len]` instead costs a serial memset on the calling thread, with the other cores
/// idle, before the parallel kernel overwrites it (BENCHMARKS.md has what it cost).
///
/// # Safety
///
/// `fill` must initialise every element of the slice it is given before it returns. (If it
/// panics instead, nothing is read: the buffer is dropped as an empty vector.)
// Inlined as it was while it lived in the same file as its callers (generic over `fill`, it is
// instantiated per call site anyway).
#[inline]
pub(crate) unsafe fn output(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` initialised all `len` values (this function's safety contract, which
    // every caller keeps), and `len` is within the capacity reserved above.
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
