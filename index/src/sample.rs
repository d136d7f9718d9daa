//! The sample of codes the build trains its centroids on: a reservoir (algorithm R), so every
//! row of a table of any size has the same chance to be in it, in one pass and bounded memory.

use crate::lists::kmodes::Rng;

/// A uniform sample of at most `capacity` codes of one length.
#[derive(Debug, Clone)]
pub struct Reservoir {
    capacity: usize,
    code_bytes: usize,
    codes: Vec<u8>,
    seen: u64,
    rng: Rng,
}

/// A code of another length than the sample's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthMismatch {
    pub expected: usize,
    pub found: usize,
}

impl Reservoir {
    /// A sample of codes of `code_bytes` (the indexed column's declared length).
    pub fn new(capacity: usize, code_bytes: usize, seed: u64) -> Reservoir {
        assert!(code_bytes > 0, "an index's codes have a length");
        Reservoir {
            capacity: capacity.max(1),
            code_bytes,
            codes: Vec::new(),
            seen: 0,
            rng: Rng::new(seed),
        }
    }

    /// Offers one row's code to the sample.
    pub fn add(&mut self, code: &[u8]) -> Result<(), LengthMismatch> {
        if code.len() != self.code_bytes {
            return Err(LengthMismatch {
                expected: self.code_bytes,
                found: code.len(),
            });
        }
        self.seen += 1;
        let nb = self.code_bytes;
        if self.codes.len() / nb < self.capacity {
            self.codes.extend_from_slice(code);
        } else {
            let j = (self.rng.next_u64() % self.seen) as usize;
            if j < self.capacity {
                self.codes[j * nb..(j + 1) * nb].copy_from_slice(code);
            }
        }
        Ok(())
    }

    /// Rows offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The code length.
    pub fn code_bytes(&self) -> usize {
        self.code_bytes
    }

    /// The sampled codes, contiguous.
    pub fn into_codes(self) -> Vec<u8> {
        self.codes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_up_to_capacity_then_samples_uniformly() {
        let mut r = Reservoir::new(100, 2, 1);
        for i in 0..50u16 {
            r.add(&i.to_be_bytes()).unwrap();
        }
        assert_eq!((r.seen(), r.code_bytes()), (50, 2));
        assert_eq!(r.clone().into_codes().len(), 100);
        assert_eq!(
            r.add(&[1]),
            Err(LengthMismatch {
                expected: 2,
                found: 1
            })
        );
        // 100 of 10,000 rows: each tenth of the table holds about a tenth of the sample.
        let mut r = Reservoir::new(1000, 2, 7);
        for i in 0..10_000u16 {
            r.add(&i.to_be_bytes()).unwrap();
        }
        let codes = r.into_codes();
        assert_eq!(codes.len(), 2000);
        let mut per_tenth = [0usize; 10];
        for c in codes.chunks(2) {
            per_tenth[usize::from(u16::from_be_bytes([c[0], c[1]])) / 1000] += 1;
        }
        assert!(
            per_tenth.iter().all(|&n| (60..=140).contains(&n)),
            "{per_tenth:?}"
        );
    }
}
