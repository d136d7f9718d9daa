//! The benchmark codes: one seeded stream per (kind, bits, centres, flip, seed), shared by
//! `gen-codes` (rows for PostgreSQL) and `simd-scan` (the same codes in memory), so that the
//! database and the scan floor see identical data.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// What to draw (the options of both binaries).
#[derive(Debug, Clone)]
pub struct Spec {
    pub kind: String,
    pub bits: usize,
    pub centres: usize,
    pub flip: f64,
    pub seed: u64,
}

impl Spec {
    pub fn new(kind: &str) -> Result<Spec, String> {
        if !matches!(kind, "uniform" | "clustered" | "multilabel") {
            return Err(format!(
                "unknown kind {kind:?}: uniform, clustered or multilabel"
            ));
        }
        Ok(Spec {
            kind: kind.into(),
            bits: 64,
            centres: 80,
            flip: 0.1,
            seed: 1,
        })
    }

    /// Takes `--bits`, `--centres`, `--flip` or `--seed` with its value; false for another flag.
    pub fn option(&mut self, flag: &str, v: &str) -> Result<bool, String> {
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v}: {e}");
        match flag {
            "--bits" => self.bits = v.parse().map_err(|e| bad(&e))?,
            "--centres" => self.centres = v.parse().map_err(|e| bad(&e))?,
            "--flip" => self.flip = v.parse().map_err(|e| bad(&e))?,
            "--seed" => self.seed = v.parse().map_err(|e| bad(&e))?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn check(&self) -> Result<(), String> {
        if self.bits == 0 || !self.bits.is_multiple_of(8) || self.bits > 4096 {
            return Err(format!(
                "--bits {}: a multiple of 8 from 8 to 4096",
                self.bits
            ));
        }
        if self.centres == 0 || !(0.0..=1.0).contains(&self.flip) {
            return Err("--centres >= 1, 0 <= --flip <= 1".into());
        }
        Ok(())
    }

    /// The stream of codes: code `i` (0-based) is the row with id `i + 1`.
    pub fn stream(&self) -> Stream {
        let nb = self.bits / 8;
        let mut centre_rng = SmallRng::seed_from_u64(self.seed);
        let centres = (0..self.centres)
            .map(|_| (0..nb).map(|_| centre_rng.gen()).collect())
            .collect();
        Stream {
            spec: self.clone(),
            centres,
            rng: SmallRng::seed_from_u64(self.seed ^ 0x5eed_c0de),
        }
    }
}

/// Codes drawn one after the other.
pub struct Stream {
    spec: Spec,
    centres: Vec<Vec<u8>>,
    rng: SmallRng,
}

impl Stream {
    /// Draws the next code into `code` (`bits / 8` bytes).
    pub fn next_into(&mut self, code: &mut [u8]) {
        let (centres, rng) = (&self.centres, &mut self.rng);
        match self.spec.kind.as_str() {
            "uniform" => rng.fill(code),
            "clustered" => {
                code.copy_from_slice(&centres[rng.gen_range(0..centres.len())]);
                flip(code, self.spec.flip, rng);
            }
            _ => {
                let k = rng.gen_range(1..=3);
                let labels: Vec<usize> = (0..k).map(|_| rng.gen_range(0..centres.len())).collect();
                for bit in 0..code.len() * 8 {
                    let mask = 0x80u8 >> (bit % 8);
                    let ones = labels
                        .iter()
                        .filter(|&&l| centres[l][bit / 8] & mask != 0)
                        .count();
                    let first = centres[labels[0]][bit / 8] & mask != 0;
                    let v = 2 * ones > k || (2 * ones == k && first);
                    if v {
                        code[bit / 8] |= mask;
                    } else {
                        code[bit / 8] &= !mask;
                    }
                }
                flip(code, self.spec.flip, rng);
            }
        }
    }
}

fn flip(code: &mut [u8], p: f64, rng: &mut SmallRng) {
    if p == 0.0 {
        return;
    }
    for bit in 0..code.len() * 8 {
        if rng.gen_bool(p) {
            code[bit / 8] ^= 0x80 >> (bit % 8);
        }
    }
}
