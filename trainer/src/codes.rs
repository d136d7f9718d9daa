//! Packed codes laid out for the Hamming kernels: one contiguous buffer, fixed stride.
//!
//! `ics_codes::hamming::hamming_many` scans a block of codes stored back to back; keeping the
//! database in that form (rather than a `Vec<Vec<u8>>`) is what makes a linear scan of
//! 20,000 codes per query cheap. Bits are packed with `ics_codes::code::pack_signs`, the one
//! convention shared with the extension (`u >= 0` → bit 1, most significant bit first).

use anyhow::{ensure, Result};
use ndarray::ArrayView2;
use rand::{RngCore, SeedableRng};

/// `len` codes of `bytes` bytes each, stored contiguously.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedCodes {
    bytes: usize,
    data: Vec<u8>,
}

impl PackedCodes {
    /// From per-item codes, all of the same length.
    pub fn from_codes(codes: &[Vec<u8>]) -> Result<PackedCodes> {
        let bytes = codes.first().map_or(0, Vec::len);
        ensure!(bytes > 0, "no codes, or empty codes");
        let mut data = Vec::with_capacity(bytes * codes.len());
        for (i, c) in codes.iter().enumerate() {
            ensure!(
                c.len() == bytes,
                "code {i} has {} bytes, code 0 has {bytes}",
                c.len()
            );
            data.extend_from_slice(c);
        }
        Ok(PackedCodes { bytes, data })
    }

    /// Packs the signs of each row of `values` (rows = items; columns = bits, a multiple of 8).
    pub fn from_signs(values: ArrayView2<f32>) -> PackedCodes {
        let bits = values.ncols();
        assert!(
            bits > 0 && bits.is_multiple_of(8),
            "code length {bits} is not a positive multiple of 8"
        );
        let mut data = Vec::with_capacity(values.nrows() * bits / 8);
        for row in values.rows() {
            match row.as_slice() {
                Some(s) => data.extend(ics_codes::code::pack_signs(s)),
                None => data.extend(ics_codes::code::pack_signs(&row.to_vec())),
            }
        }
        PackedCodes {
            bytes: bits / 8,
            data,
        }
    }

    /// `n` uniformly random codes of `bits` bits: the chance-level baseline.
    pub fn random(n: usize, bits: usize, seed: u64) -> PackedCodes {
        assert!(
            bits > 0 && bits.is_multiple_of(8),
            "code length {bits} is not a positive multiple of 8"
        );
        let mut data = vec![0u8; n * bits / 8];
        rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut data);
        PackedCodes {
            bytes: bits / 8,
            data,
        }
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.data.len() / self.bytes
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Bytes per code.
    pub fn code_bytes(&self) -> usize {
        self.bytes
    }
    /// Bits per code.
    pub fn bits(&self) -> usize {
        self.bytes * 8
    }
    /// Code `i`.
    pub fn code(&self, i: usize) -> &[u8] {
        &self.data[i * self.bytes..(i + 1) * self.bytes]
    }
    /// All codes back to back (the `codes` argument of `hamming_many`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }
    /// Copies out per-item codes.
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        self.data.chunks(self.bytes).map(<[u8]>::to_vec).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn packing_round_trips_and_follows_the_shared_convention() {
        let v = array![
            [1.0f32, -1.0, 0.0, -0.5, 0.2, -0.1, 0.3, 0.4],
            [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 1.0]
        ];
        let p = PackedCodes::from_signs(v.view());
        assert_eq!((p.len(), p.bits(), p.code_bytes()), (2, 8, 1));
        assert_eq!(p.code(0), &[0b1010_1011]);
        assert_eq!(p.code(1), &[0b0000_0001]);
        assert_eq!(PackedCodes::from_codes(&p.to_vecs()).unwrap(), p);
        // A non-contiguous row view packs the same.
        let t = v.t().to_owned();
        assert_eq!(PackedCodes::from_signs(t.t()), p);
        assert!(PackedCodes::from_codes(&[vec![1], vec![1, 2]]).is_err());
        assert!(PackedCodes::from_codes(&[]).is_err());
    }

    #[test]
    fn random_codes_are_seeded_and_balanced() {
        let a = PackedCodes::random(1000, 64, 3);
        assert_eq!(a, PackedCodes::random(1000, 64, 3));
        assert_ne!(a, PackedCodes::random(1000, 64, 4));
        let ones: u32 = a.as_bytes().iter().map(|b| b.count_ones()).sum();
        let frac = f64::from(ones) / 64_000.0;
        assert!((frac - 0.5).abs() < 0.01, "{frac}");
    }
}
