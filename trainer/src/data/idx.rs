//! IDX files (the MNIST / Fashion-MNIST container), optionally gzip-compressed.
//!
//! Layout: two zero bytes, a type byte (only 0x08 = u8 is used by these datasets and accepted
//! here), the number of dimensions, that many big-endian u32 sizes, then the data row-major.
//! Gzip is detected by its magic bytes, so `.gz` and plain files read the same.

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// An n-dimensional u8 array read from an IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file (gzip or plain); errors name the file.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 2);
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .with_context(|| format!("{}: corrupt gzip data", path.display()))?;
        out
    } else {
        raw
    };
    parse_idx(bytes).with_context(|| format!("{}: not a u8 IDX file", path.display()))
}

/// Parses decompressed IDX bytes (takes ownership to reuse the buffer for the data).
pub fn parse_idx(mut bytes: Vec<u8>) -> Result<IdxArray> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        bail!("bad magic (expected 00 00 <type> <ndims>)");
    }
    if bytes[2] != 0x08 {
        bail!(
            "element type 0x{:02x}, only 0x08 (u8) is supported",
            bytes[2]
        );
    }
    let nd = bytes[3] as usize;
    let header = 4 + 4 * nd;
    if bytes.len() < header {
        bail!("truncated header ({} dimensions)", nd);
    }
    let dims: Vec<usize> = (0..nd)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let want = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .context("dimensions overflow")?;
    let have = bytes.len() - header;
    if have != want {
        bail!("dimensions {dims:?} need {want} data bytes, file has {have}");
    }
    bytes.drain(..header);
    Ok(IdxArray { dims, data: bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::{offline_file, TempDir};
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    use std::path::PathBuf;

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn reads_plain_and_gzip() {
        let dir = TempDir::new("idx");
        let data: Vec<u8> = (0..24).collect();
        let plain = idx_bytes(&[2, 3, 4], &data);
        let p = dir.write("a.idx", &plain);
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&plain).unwrap();
        let g = dir.write("a.idx.gz", gz.finish().unwrap());
        for path in [p, g] {
            let a = read_idx(&path).unwrap();
            assert_eq!(a.dims, vec![2, 3, 4]);
            assert_eq!(a.data, data);
        }
    }

    #[test]
    fn rejects_bad_files_naming_them() {
        let dir = TempDir::new("idx-bad");
        let cases = [
            ("magic.idx", vec![1, 0, 8, 1, 0, 0, 0, 1, 5]),
            ("type.idx", vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 5]),
            ("short.idx", idx_bytes(&[3], &[1, 2])),
            ("long.idx", idx_bytes(&[1], &[1, 2])),
            ("header.idx", vec![0, 0, 8, 2, 0, 0]),
        ];
        for (name, bytes) in cases {
            let p = dir.write(name, bytes);
            let err = format!("{:#}", read_idx(&p).unwrap_err());
            assert!(err.contains(name), "{err}");
        }
        let p = dir.write("bad.gz", [0x1f, 0x8b, 1, 2, 3]);
        assert!(read_idx(&p).is_err());
    }

    #[test]
    fn reads_fashion_mnist_test_set() {
        let dir = PathBuf::from("/usr/share/datasets/fashion-mnist");
        let images = read_idx(&offline_file(dir.join("t10k-images-idx3-ubyte.gz"))).unwrap();
        let labels = read_idx(&offline_file(dir.join("t10k-labels-idx1-ubyte.gz"))).unwrap();
        assert_eq!(images.dims, vec![10_000, 28, 28]);
        assert_eq!(labels.dims, vec![10_000]);
        let mut counts = [0usize; 10];
        for &l in &labels.data {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [1000; 10]);
        // Real images: dark background, bright objects.
        assert_eq!(images.data[0], 0);
        assert!(images.data.contains(&255));
    }
}
