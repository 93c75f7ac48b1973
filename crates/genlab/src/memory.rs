//! Memory checks before the allocations a flag or a config sizes (batch, latent, image side,
//! sample counts, importance samples): a request that cannot fit is refused with the estimate
//! and the limit, before anything is allocated, instead of ending in an allocation abort.
//!
//! The limit is the memory available to this process now: the smaller of the kernel's
//! `MemAvailable` and what the cgroup (a container's limit) still allows. `GENLAB_MEMORY_LIMIT`
//! (bytes, or with a `K`/`M`/`G` suffix) overrides it, for tests and for users who want a
//! tighter cap.

use crate::error::{Error, Result};

/// Bytes in an `f32`.
pub const F32: u128 = 4;

/// The memory this process may still allocate, in bytes (`u64::MAX` when the platform does not
/// say).
pub fn limit_bytes() -> u64 {
    if let Some(v) = std::env::var_os("GENLAB_MEMORY_LIMIT")
        && let Some(b) = parse_size(&v.to_string_lossy())
    {
        return b;
    }
    let mut limit = u64::MAX;
    if let Ok(s) = std::fs::read_to_string("/proc/meminfo")
        && let Some(kb) = s
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    {
        limit = kb.saturating_mul(1024);
    }
    // cgroup v2: memory.max ("max" or bytes) minus memory.current.
    let cg = |f: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{f}"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    if let (Some(max), Some(cur)) = (cg("memory.max"), cg("memory.current")) {
        limit = limit.min(max.saturating_sub(cur));
    }
    limit
}

/// `123`, `64K`, `512M`, `2G` (binary multiples) as bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

/// A byte count for people: `1.5 GiB`.
pub fn human(bytes: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else if v >= 1024.0 {
        format!("more than {v:.0} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Refuses `what` (e.g. `"--k 1000000000"`) when its estimated `bytes` exceed the available
/// memory.
pub fn ensure(what: impl Into<String>, bytes: u128) -> Result<()> {
    let limit = limit_bytes();
    if bytes > u128::from(limit) {
        return Err(Error::Memory {
            what: what.into(),
            need: human(bytes),
            limit: human(u128::from(limit)),
        });
    }
    Ok(())
}

/// Floats of activations (forward values and their gradients) per input value of a training
/// image: convolutional bodies keep 32-128 feature maps at a quarter to a sixteenth of the
/// input's pixels, times two for backward. Generous, so only a request far out of reach fails.
const ACTIVATIONS_PER_INPUT: u128 = 64;

/// Rough bytes a training needs: six copies of the parameters (weights, gradients, Adam's two
/// moments, a checkpoint's serialised copies) and the activations of a batch.
pub fn training_bytes(params: usize, batch: usize, input_floats: usize) -> u128 {
    F32 * (6 * params as u128 + ACTIVATIONS_PER_INPUT * product(&[batch, input_floats]))
}

/// Rough bytes a forward pass on `batch` inputs of `input_floats` values needs (no gradients
/// kept): a quarter of [`training_bytes`]' activations.
pub fn inference_bytes(batch: usize, input_floats: usize) -> u128 {
    F32 * (ACTIVATIONS_PER_INPUT / 4) * product(&[batch, input_floats])
}

/// The product of `xs` in `u128`, saturating: sizes built from user numbers never overflow.
pub fn product(xs: &[usize]) -> u128 {
    xs.iter()
        .fold(1u128, |acc, &x| acc.saturating_mul(x as u128))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn the_limit_is_known_on_linux_and_an_impossible_request_is_refused() {
        assert!(limit_bytes() > 0);
        let err = ensure("--k 1e30", u128::MAX).unwrap_err().to_string();
        assert!(err.starts_with("--k 1e30 needs about"), "{err}");
        assert!(ensure("a byte", 1).is_ok());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 bytes");
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(product(&[usize::MAX, usize::MAX, 4]), u128::MAX);
    }
}
