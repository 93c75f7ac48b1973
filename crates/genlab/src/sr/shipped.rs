//! The trained super-resolution networks shipped with genlab (`models/fsrcnn-xS/` in the
//! repository, compiled into the binary), so `genlab upscale` works with no training. Each
//! folder's `TRAINED.md` holds the exact command that trained it and its scores.

use std::path::Path;

use crate::config::SrRunConfig;
use crate::error::{Error, Result};

/// A shipped model: its run config and weights.
pub struct Shipped {
    /// Upscaling factor.
    pub scale: usize,
    /// Where it lives in the repository (for messages).
    pub path: &'static str,
    /// The run's `config.toml`.
    pub config: &'static str,
    /// The run's `weights.safetensors`.
    pub weights: &'static [u8],
}

macro_rules! shipped {
    ($scale:literal, $dir:literal) => {
        Shipped {
            scale: $scale,
            path: concat!("models/", $dir),
            config: include_str!(concat!("../../models/", $dir, "/config.toml")),
            weights: include_bytes!(concat!("../../models/", $dir, "/weights.safetensors")),
        }
    };
}

/// Every shipped model.
pub const SHIPPED: &[Shipped] = &[
    shipped!(2, "fsrcnn-x2"),
    shipped!(3, "fsrcnn-x3"),
    shipped!(4, "fsrcnn-x4"),
];

/// The shipped model for `scale`, with its parsed config.
pub fn shipped(scale: usize) -> Result<(&'static Shipped, SrRunConfig)> {
    let s = SHIPPED
        .iter()
        .find(|s| s.scale == scale)
        .ok_or_else(|| Error::config("scale", scale, "2, 3 or 4 (the shipped models' scales)"))?;
    let cfg = SrRunConfig::from_toml(s.config, Path::new(s.path))?;
    Ok((s, cfg))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_shipped_model_loads_and_has_its_scale() {
        for s in super::SHIPPED {
            let (_, cfg) = super::shipped(s.scale).expect("config");
            assert_eq!(cfg.model.scale(), s.scale);
        }
        assert!(super::shipped(5).is_err());
    }
}
