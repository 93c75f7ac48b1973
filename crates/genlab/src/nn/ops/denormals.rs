//! Flush-to-zero and denormals-are-zero for the calling thread (the x86 MXCSR bits FTZ, 15, and
//! DAZ, 6): subnormal results become 0 and subnormal inputs read as 0, what PyTorch's
//! `torch.set_flush_denormal(True)` sets. Issue 22 measured a multiply on subnormal f32 18x slower
//! than on normal values on an Intel Xeon (microcode assists) and no slower on AMD Zen 5, and
//! found subnormals among Adam's moments after a few hundred steps. Off by default: it changes
//! results wherever a value falls below 1.2e-38 (BENCHMARKS.md, issue 22, has the effect on
//! README's VAE run). `genlab --flush-denormals` sets it on every thread that computes.

/// Sets FTZ and DAZ on this thread; `false` where the CPU has no MXCSR (not x86-64).
pub fn flush_denormals() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr stores the 32-bit MXCSR into `csr`, a valid, aligned u32 we own;
        // ldmxcsr loads it back with the FTZ and DAZ bits set, which only changes how this
        // thread rounds subnormal floats (no exception is unmasked).
        unsafe {
            core::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
            csr |= (1 << 15) | (1 << 6);
            core::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly, preserves_flags));
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    /// On a fresh thread: subnormal products survive by default; with FTZ/DAZ the product of
    /// two small normals flushes to 0 and a subnormal input reads as 0.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn flushing_zeroes_subnormal_results_and_inputs() {
        use std::hint::black_box;
        std::thread::spawn(|| {
            let tiny = black_box(1e-38f32);
            let sub = black_box(1e-40f32);
            assert!(black_box(tiny * 0.5) > 0.0, "subnormal result by default");
            assert!(black_box(sub * 1.0) > 0.0, "subnormal input by default");
            assert!(super::flush_denormals());
            assert_eq!(black_box(tiny) * black_box(0.5f32), 0.0, "FTZ");
            assert_eq!(black_box(sub) * black_box(1.0f32), 0.0, "DAZ");
            assert_eq!(
                black_box(1e-30f32) * black_box(2.0f32),
                2e-30,
                "normal values unchanged"
            );
        })
        .join()
        .expect("test thread");
    }
}
