//! Latent code files (`.glz`), what `genlab encode` writes and `genlab decode` reads: the magic
//! `GENLABZ1`, the number of latent values as a `u32` little-endian, then the values as `f32`
//! little-endian (a VAE stores its posterior mean). A conditional model's code (a cVAE's, which
//! encodes an image given its class) starts with `GENLABZ2` and has the class label, a `u32`
//! little-endian, between the length and the values; its values are the image's style, the
//! posterior mean less the class's prior mean, so it decodes in any class.

use std::path::Path;

use crate::error::{Error, Result};

/// The first eight bytes of a code file without a label.
pub const MAGIC: &[u8; 8] = b"GENLABZ1";

/// The first eight bytes of a code file with a class label.
pub const MAGIC_LABELLED: &[u8; 8] = b"GENLABZ2";

/// What a code file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    /// The latent values.
    pub z: Vec<f32>,
    /// The class the image was encoded as (conditional models).
    pub label: Option<u32>,
}

/// Header bytes before the values: magic, length and, in a labelled code, the label.
fn header_len(labelled: bool) -> usize {
    if labelled { 16 } else { 12 }
}

/// A code file's bytes for the latent values `z`, with the class `label` when there is one.
pub fn to_bytes(z: &[f32], label: Option<u32>) -> Vec<u8> {
    let mut bytes = match label {
        None => MAGIC.to_vec(),
        Some(_) => MAGIC_LABELLED.to_vec(),
    };
    bytes.extend((z.len() as u32).to_le_bytes());
    if let Some(l) = label {
        bytes.extend(l.to_le_bytes());
    }
    for v in z {
        bytes.extend(v.to_le_bytes());
    }
    bytes
}

/// Parses a code file's bytes: magic, a length that matches the header, finite values.
pub fn parse(b: &[u8], path: &Path) -> Result<Code> {
    let labelled = b.len() >= 8 && &b[..8] == MAGIC_LABELLED;
    let header = header_len(labelled);
    if b.len() < header || !(labelled || &b[..8] == MAGIC) {
        return Err(Error::format(
            path,
            "not a genlab code file (expected magic GENLABZ1 and a 12-byte header, or GENLABZ2 and a 16-byte one)",
        ));
    }
    let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let n = word(8) as usize;
    let want = header as u64 + 4 * n as u64;
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
    let z: Vec<f32> = b[header..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(i) = z.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(
            path,
            format!("value {i} of the code is {}; a code must be finite", z[i]),
        ));
    }
    Ok(Code {
        z,
        label: labelled.then(|| word(12)),
    })
}

/// Reads and parses a code file, refusing one too large to be a code before reading it.
pub fn read(path: &Path) -> Result<Code> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, "read", e))?
        .len();
    let max = header_len(true) as u64 + 4 * u64::from(u32::MAX);
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
        let code = parse(&to_bytes(&z, None), p).expect("parses");
        assert_eq!((code.z.as_slice(), code.label), (&z[..], None));
        let code = parse(&to_bytes(&z, Some(7)), p).expect("parses");
        assert_eq!((code.z.as_slice(), code.label), (&z[..], Some(7)));
        assert_eq!(to_bytes(&z, Some(7)).len(), 16 + 12);
        let bad = |b: &[u8]| parse(b, p).unwrap_err().to_string();
        assert!(bad(b"GENLAB").contains("not a genlab code"));
        assert!(bad(b"GENLABZ2\x01\0\0\0").contains("not a genlab code"));
        for label in [None, Some(2)] {
            let mut b = to_bytes(&z, label);
            b.pop();
            assert!(bad(&b).contains("header says 3 values"));
            assert!(bad(&to_bytes(&[f32::NAN], label)).contains("value 0 of the code is NaN"));
            assert!(bad(&to_bytes(&[], label)).contains("0 values"));
        }
    }
}
