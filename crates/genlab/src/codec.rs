//! Latent code files (`.glz`), what `genlab encode` writes and `genlab decode` reads: the magic
//! `GENLABZ1`, the number of latent values as a `u32` little-endian, then the values as `f32`
//! little-endian (a VAE stores its posterior mean).

use std::path::Path;

use crate::error::{Error, Result};

/// The first eight bytes of every code file.
pub const MAGIC: &[u8; 8] = b"GENLABZ1";

/// Header bytes before the values.
const HEADER: usize = 12;

/// A code file's bytes for the latent values `z`.
pub fn to_bytes(z: &[f32]) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend((z.len() as u32).to_le_bytes());
    for v in z {
        bytes.extend(v.to_le_bytes());
    }
    bytes
}

/// Parses a code file's bytes: magic, a length that matches the header, finite values.
pub fn parse(b: &[u8], path: &Path) -> Result<Vec<f32>> {
    if b.len() < HEADER || &b[..8] != MAGIC {
        return Err(Error::format(
            path,
            "not a genlab code file (expected magic GENLABZ1 and a 12-byte header)",
        ));
    }
    let n = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
    let want = HEADER as u64 + 4 * n as u64;
    if b.len() as u64 != want {
        return Err(Error::format(
            path,
            format!(
                "header says {n} values ({want} bytes) but the file has {} bytes",
                b.len()
            ),
        ));
    }
    if n == 0 {
        return Err(Error::format(path, "the code has 0 values"));
    }
    let z: Vec<f32> = b[HEADER..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(i) = z.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(
            path,
            format!("value {i} of the code is {}; a code must be finite", z[i]),
        ));
    }
    Ok(z)
}

/// Reads and parses a code file, refusing one too large to be a code before reading it.
pub fn read(path: &Path) -> Result<Vec<f32>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, "read", e))?
        .len();
    let max = HEADER as u64 + 4 * u64::from(u32::MAX);
    if len > max {
        return Err(Error::format(
            path,
            format!("{len} bytes is more than a code file can hold"),
        ));
    }
    crate::memory::ensure(format!("reading {}", path.display()), u128::from(len))?;
    let b = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    parse(&b, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_codes() {
        let p = Path::new("c.glz");
        let z = [0.5f32, -1.25, 3.0];
        assert_eq!(parse(&to_bytes(&z), p).expect("parses"), z);
        let bad = |b: &[u8]| parse(b, p).unwrap_err().to_string();
        assert!(bad(b"GENLAB").contains("not a genlab code"));
        let mut b = to_bytes(&z);
        b.pop();
        assert!(bad(&b).contains("header says 3 values"));
        assert!(bad(&to_bytes(&[f32::NAN])).contains("value 0 of the code is NaN"));
        assert!(bad(&to_bytes(&[])).contains("0 values"));
    }
}
