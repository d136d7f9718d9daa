//! Class hash centres `c_k ∈ {−1, +1}^K` (docs/method.md, CSQ).
//!
//! Default: balanced random centres (exactly K/2 entries −1 each), built one centre at a time
//! by rejection until every pairwise Hamming distance reaches a bound, and the best of a few
//! such sets kept (largest minimum, then largest mean distance). Balanced random centres use
//! every bit whatever the class count. Hadamard centres are kept as an option for comparison
//! with published CSQ numbers; the first rows `1..C` of a Sylvester matrix would, for
//! `C <= K/2`, be `[h, h]` (half the bits copies of the others), so [`hadamard_rows`] picks
//! rows whose indices span every index bit instead. For `C > K − 1` they continue with
//! `−H`, antipodal pairs that cancel in a multi-label average.
//! [`CentreStats::distinct_bit_columns`] shows in the report how many bits carry information.

use anyhow::{bail, ensure, Result};
use ics_codes::code::pack_signs;
use ics_codes::hamming::hamming;
use ndarray::{Array2, ArrayView1};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::config::CentreMethod;

/// Independent valid centre sets drawn; the best one is kept.
const CANDIDATE_SETS: usize = 8;
/// Draws of one centre before a set is abandoned and started over.
const DRAWS_PER_CENTRE: usize = 2_000;
/// Fresh starts before giving up on the bound.
const RESTARTS: usize = 50;

/// The centres of one model: row `k` of [`Centres::matrix`] is class `k`'s centre.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Centres {
    method: CentreMethod,
    /// (classes, bits), entries exactly ±1.
    matrix: Array2<f32>,
}

/// Numbers describing a centre set, for the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CentreStats {
    pub method: CentreMethod,
    pub classes: usize,
    pub bits: usize,
    /// Smallest pairwise Hamming distance (equal to `bits` with a single class).
    pub min_distance: usize,
    /// Mean pairwise Hamming distance.
    pub mean_distance: f64,
    /// Number of distinct bit columns, a column and its negation counted once: at most
    /// `bits`; a smaller value means some bits only repeat others (Hadamard with few classes).
    pub distinct_bit_columns: usize,
}

impl Centres {
    /// Builds `classes` centres of `bits` bits with `method`; `min_distance` is the bound for
    /// balanced random centres (ignored for Hadamard).
    pub fn build(
        method: CentreMethod,
        classes: usize,
        bits: usize,
        min_distance: usize,
        seed: u64,
    ) -> Result<Centres> {
        match method {
            CentreMethod::BalancedRandom => {
                Self::balanced_random(classes, bits, min_distance, seed)
            }
            CentreMethod::Hadamard => Self::hadamard(classes, bits),
        }
    }

    /// Balanced random centres with pairwise Hamming distance `>= min_distance`, from `seed`.
    ///
    /// Errors when the bound cannot be met after many restarts (for instance more classes
    /// than there are balanced codes, `C(bits, bits/2)`).
    pub fn balanced_random(
        classes: usize,
        bits: usize,
        min_distance: usize,
        seed: u64,
    ) -> Result<Centres> {
        ensure!(classes >= 1, "no classes to build centres for");
        ensure!(
            bits >= 2 && bits.is_multiple_of(2),
            "balanced centres need an even bit count, got {bits}"
        );
        let impossible = |why: String| {
            anyhow::anyhow!(
                "could not draw {classes} balanced centres of {bits} bits with pairwise Hamming \
                 distance >= {min_distance}: {why}"
            )
        };
        if min_distance > bits {
            return Err(impossible(format!(
                "no two codes are more than {bits} bits apart"
            )));
        }
        if min_distance > 0 && classes > 1 {
            if let Some(n) = balanced_code_count(bits) {
                if classes as u128 > n {
                    return Err(impossible(format!("only {n} balanced codes exist")));
                }
            }
        }
        let mut rng = super::config::rng(seed, super::config::Stream::Centres);
        let mut best: Option<(usize, f64, Array2<f32>)> = None;
        let mut found = 0;
        for _ in 0..RESTARTS {
            let Some(m) = draw_set(classes, bits, min_distance, &mut rng) else {
                continue;
            };
            let (min, mean) = distances(&m);
            if best.as_ref().is_none_or(|b| (min, mean) > (b.0, b.1)) {
                best = Some((min, mean, m));
            }
            found += 1;
            if found == CANDIDATE_SETS {
                break;
            }
        }
        match best {
            Some((_, _, matrix)) => Ok(Centres {
                method: CentreMethod::BalancedRandom,
                matrix,
            }),
            None => Err(impossible(format!(
                "no valid set in {RESTARTS} tries; lower centre_min_distance or use more bits"
            ))),
        }
    }

    /// Rows of the Sylvester Hadamard matrix `H_bits` (row 0, all ones, is skipped) chosen by
    /// [`hadamard_rows`], continued with the rows `1..` of `−H_bits` when
    /// `classes > bits − 1` (CSQ's `[H; −H]`).
    pub fn hadamard(classes: usize, bits: usize) -> Result<Centres> {
        ensure!(classes >= 1, "no classes to build centres for");
        ensure!(
            bits.is_power_of_two(),
            "Hadamard centres need a power-of-two bit count, got {bits}"
        );
        ensure!(
            classes <= 2 * (bits - 1),
            "{classes} classes exceed the {} rows of [H; -H] without the all-ones rows at {bits} bits",
            2 * (bits - 1)
        );
        let rows = hadamard_rows(classes.min(bits - 1), bits);
        let matrix = Array2::from_shape_fn((classes, bits), |(k, j)| {
            let (row, sign) = if k < bits - 1 {
                (rows[k], 1.0)
            } else {
                (k - (bits - 1) + 1, -1.0)
            };
            sign * sylvester(row, j)
        });
        Ok(Centres {
            method: CentreMethod::Hadamard,
            matrix,
        })
    }

    /// Wraps an existing ±1 matrix (for instance read back from a model's metadata).
    pub fn from_matrix(method: CentreMethod, matrix: Array2<f32>) -> Result<Centres> {
        ensure!(
            matrix.nrows() >= 1 && matrix.ncols() >= 1,
            "empty centre matrix"
        );
        if let Some(((k, j), v)) = matrix.indexed_iter().find(|(_, &v)| v != 1.0 && v != -1.0) {
            bail!("centre {k} bit {j} is {v}, not +1 or -1");
        }
        Ok(Centres { method, matrix })
    }

    pub fn method(&self) -> CentreMethod {
        self.method
    }
    pub fn classes(&self) -> usize {
        self.matrix.nrows()
    }
    pub fn bits(&self) -> usize {
        self.matrix.ncols()
    }
    /// (classes, bits), entries ±1.
    pub fn matrix(&self) -> &Array2<f32> {
        &self.matrix
    }
    /// Centre of class `k`.
    pub fn centre(&self, k: usize) -> ArrayView1<'_, f32> {
        self.matrix.row(k)
    }

    /// Each centre packed as a code ([`ics_codes::code::pack_signs`]: +1 → bit 1).
    pub fn packed(&self) -> Vec<Vec<u8>> {
        self.matrix
            .rows()
            .into_iter()
            .map(|r| ics_codes::code::pack_signs(&r.to_vec()))
            .collect()
    }

    pub fn stats(&self) -> CentreStats {
        let (min_distance, mean_distance) = distances(&self.matrix);
        CentreStats {
            method: self.method,
            classes: self.classes(),
            bits: self.bits(),
            min_distance,
            mean_distance,
            distinct_bit_columns: distinct_columns(&self.matrix),
        }
    }
}

/// The Sylvester row indices of `classes <= bits − 1` Hadamard centres: `1, 2, 3, ...`, with
/// the last slots given to the powers of two that the run `1..` does not reach (at 64 bits
/// and 20 classes, rows 1..19 and 32).
///
/// Entry `j` of row `r` is `(−1)^popcount(r & j)`, so bit column `j` of the centres is the
/// vector of parities `r · j` over GF(2): two columns `j ≠ j'` are equal when every chosen
/// row is orthogonal to `j ⊕ j'`, which no nonzero vector is once the rows span all
/// `log2(bits)` index bits; and they are negations of each other only when every row has
/// odd parity with `j ⊕ j'`, impossible once rows `1`, `2` and `3 = 1 ⊕ 2` are all chosen.
/// Rows `1..C` alone span only the `⌊log2 C⌋ + 1` low index bits (rows 1..20 give 32
/// distinct columns at 32, 64 and 128 bits). With more than `log2(bits)` classes every bit
/// column is therefore distinct, a column and its negation counted once.
pub fn hadamard_rows(classes: usize, bits: usize) -> Vec<usize> {
    assert!(bits.is_power_of_two() && classes < bits);
    let mut rows = Vec::with_capacity(classes);
    let mut next = 1;
    while rows.len() < classes {
        // Powers of two (index bits) that the run 1, 2, ... has not reached yet.
        let missing: Vec<usize> = (0..bits.trailing_zeros())
            .map(|b| 1usize << b)
            .filter(|&p| p >= next)
            .collect();
        if missing.len() >= classes - rows.len() {
            rows.extend(missing.into_iter().take(classes - rows.len()));
        } else {
            rows.push(next);
            next += 1;
        }
    }
    rows
}

/// `C(bits, bits/2)`, the number of balanced codes, when it fits in a `u128`.
fn balanced_code_count(bits: usize) -> Option<u128> {
    let half = bits / 2;
    let mut n: u128 = 1;
    for i in 0..half {
        // n = C(bits, i + 1) after this step; exact because C(bits, i) · (bits − i) is
        // divisible by i + 1.
        n = n.checked_mul((bits - i) as u128)? / (i + 1) as u128;
    }
    Some(n)
}

/// Entry `(i, j)` of the Sylvester Hadamard matrix: `(−1)^popcount(i & j)`.
fn sylvester(i: usize, j: usize) -> f32 {
    if (i & j).count_ones().is_multiple_of(2) {
        1.0
    } else {
        -1.0
    }
}

/// One set of balanced centres meeting the bound, or `None` when a centre could not be
/// placed within the draw budget.
fn draw_set(
    classes: usize,
    bits: usize,
    min_distance: usize,
    rng: &mut impl Rng,
) -> Option<Array2<f32>> {
    let mut template: Vec<f32> = (0..bits)
        .map(|j| if j < bits / 2 { -1.0 } else { 1.0 })
        .collect();
    let mut m = Array2::<f32>::zeros((classes, bits));
    // Distances are checked on packed codes with the shared Hamming kernel.
    let mut packed: Vec<Vec<u8>> = Vec::with_capacity(classes);
    for k in 0..classes {
        let placed = (0..DRAWS_PER_CENTRE).any(|_| {
            template.shuffle(rng);
            let code = pack_signs(&template);
            let ok = packed
                .iter()
                .all(|p| hamming(p, &code) as usize >= min_distance);
            if ok {
                m.row_mut(k).assign(&ArrayView1::from(&template[..]));
                packed.push(code);
            }
            ok
        });
        if !placed {
            return None;
        }
    }
    Some(m)
}

/// (minimum, mean) pairwise Hamming distance; `(bits, bits)` for a single centre.
fn distances(m: &Array2<f32>) -> (usize, f64) {
    let c = m.nrows();
    if c < 2 {
        return (m.ncols(), m.ncols() as f64);
    }
    let (mut min, mut sum, mut pairs) = (usize::MAX, 0usize, 0usize);
    for a in 0..c {
        for b in a + 1..c {
            let d = m
                .row(a)
                .iter()
                .zip(m.row(b))
                .filter(|(x, y)| x != y)
                .count();
            min = min.min(d);
            sum += d;
            pairs += 1;
        }
    }
    (min, sum as f64 / pairs as f64)
}

/// Distinct columns up to sign (a column and its negation carry the same information).
fn distinct_columns(m: &Array2<f32>) -> usize {
    let mut seen = std::collections::HashSet::new();
    for col in m.columns() {
        let flip = col[0] < 0.0;
        let key: Vec<bool> = col.iter().map(|&v| (v > 0.0) != flip).collect();
        seen.insert(key);
    }
    seen.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    #[test]
    fn balanced_random_meets_bound_and_is_balanced() {
        for &(classes, bits, bound) in &[
            (20, 64, 20),
            (80, 16, 4),
            (80, 64, 16),
            (5, 8, 2),
            (1, 8, 4),
        ] {
            let c = Centres::balanced_random(classes, bits, bound, 7).unwrap();
            let st = c.stats();
            assert_eq!((st.classes, st.bits), (classes, bits));
            assert!(
                st.min_distance >= bound,
                "{classes}x{bits}: min {} < {bound}",
                st.min_distance
            );
            assert!(st.mean_distance >= st.min_distance as f64);
            if classes > 1 && bits >= 16 {
                // Balanced codes: the mean pairwise distance stays near bits/2.
                assert!(
                    (st.mean_distance - bits as f64 / 2.0).abs() < bits as f64 / 8.0,
                    "{st:?}"
                );
            }
            for row in c.matrix().rows() {
                assert_eq!(row.iter().filter(|&&v| v == -1.0).count(), bits / 2);
                assert!(row.iter().all(|&v| v == 1.0 || v == -1.0));
            }
        }
    }

    #[test]
    fn balanced_random_uses_every_bit() {
        // K = 64, C = 20: the setting where Hadamard rows duplicate their halves.
        let c = Centres::balanced_random(20, 64, 16, 3).unwrap();
        let m = c.matrix();
        assert_ne!(m.slice(s![.., ..32]), m.slice(s![.., 32..]));
        for (j, col) in m.columns().into_iter().enumerate() {
            assert!(
                col.iter().any(|&v| v != col[0]),
                "bit column {j} is constant"
            );
        }
        assert!(c.stats().distinct_bit_columns > 32, "{:?}", c.stats());
        // The CSQ bound (>= 20 at 64 bits) is met by the best-of-several draw here.
        assert!(c.stats().min_distance >= 20, "{:?}", c.stats());
    }

    #[test]
    fn balanced_random_is_seeded() {
        let a = Centres::balanced_random(10, 32, 8, 11).unwrap();
        let b = Centres::balanced_random(10, 32, 8, 11).unwrap();
        let c = Centres::balanced_random(10, 32, 8, 12).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn impossible_bound_is_an_error() {
        // Only C(8,4) = 70 balanced 8-bit codes exist.
        let e = Centres::balanced_random(71, 8, 2, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("71 balanced centres"), "{e}");
        assert!(Centres::balanced_random(3, 8, 9, 0).is_err());
    }

    #[test]
    fn hadamard_rows_are_exact() {
        let c = Centres::hadamard(63, 64).unwrap();
        let m = c.matrix().mapv(f64::from);
        // Orthogonal ±1 rows, none of them the all-ones row 0.
        let gram = m.dot(&m.t());
        for i in 0..63 {
            for j in 0..63 {
                assert_eq!(gram[[i, j]], if i == j { 64.0 } else { 0.0 });
            }
            assert!(m.row(i).iter().any(|&v| v == -1.0));
        }
        assert_eq!(c.stats().min_distance, 32);
        // Known rows of H_4: row 1 = (+,-,+,-), row 3 = (+,-,-,+).
        let h4 = Centres::hadamard(3, 4).unwrap();
        assert_eq!(h4.centre(0).to_vec(), vec![1.0, -1.0, 1.0, -1.0]);
        assert_eq!(h4.centre(2).to_vec(), vec![1.0, -1.0, -1.0, 1.0]);
    }

    #[test]
    fn hadamard_rows_span_every_index_bit() {
        // The rows expected at 64 bits: 1..19 and 32.
        let mut want: Vec<usize> = (1..20).collect();
        want.push(32);
        assert_eq!(hadamard_rows(20, 64), want);
        assert_eq!(hadamard_rows(3, 8), vec![1, 2, 4]);
        assert_eq!(hadamard_rows(7, 64), vec![1, 2, 3, 4, 8, 16, 32]);
        // From bits/2 classes on, rows 1..C as before (they reach every index bit).
        assert_eq!(hadamard_rows(63, 64), (1..64).collect::<Vec<_>>());
        assert_eq!(hadamard_rows(32, 64), (1..33).collect::<Vec<_>>());
        // Rows 1..20 alone: 32 distinct columns; the chosen rows use all 64.
        let first = Array2::from_shape_fn((20, 64), |(k, j)| sylvester(k + 1, j));
        assert_eq!(distinct_columns(&first), 32);
        let c = Centres::hadamard(20, 64).unwrap();
        assert_ne!(
            c.matrix().slice(s![.., ..32]),
            c.matrix().slice(s![.., 32..])
        );
        assert_eq!(c.stats().distinct_bit_columns, 64);
        // Still orthogonal rows, none of them all ones.
        let m = c.matrix().mapv(f64::from);
        let gram = m.dot(&m.t());
        for i in 0..20 {
            for j in 0..20 {
                assert_eq!(gram[[i, j]], if i == j { 64.0 } else { 0.0 });
            }
        }
        // C > K - 1: continues with -H rows; class 7 is the antipode of class 0 at 8 bits.
        let c = Centres::hadamard(10, 8).unwrap();
        assert_eq!(c.centre(7).to_owned(), -&c.centre(0));
        assert_eq!(c.stats().min_distance, 4);
        assert!(Centres::hadamard(15, 8).is_err());
        assert!(Centres::hadamard(3, 24).is_err());
    }

    #[test]
    fn every_construction_uses_every_bit_column() {
        // Distinct columns (up to sign) == K wherever there are more classes than log2(K)
        // (fewer rows cannot tell K columns apart: at most 2^(C-1) up to sign).
        for bits in [8usize, 16, 32, 64, 128] {
            let d = bits.trailing_zeros() as usize;
            for classes in (d + 1..=2 * (bits - 1)).step_by(1 + bits / 16) {
                let h = Centres::hadamard(classes, bits).unwrap();
                assert_eq!(
                    h.stats().distinct_bit_columns,
                    bits,
                    "hadamard {classes} x {bits}"
                );
            }
            for classes in 1..=d {
                let h = Centres::hadamard(classes, bits).unwrap();
                assert_eq!(
                    h.stats().distinct_bit_columns,
                    1 << (classes - 1),
                    "hadamard {classes} x {bits}"
                );
            }
        }
        // Balanced random: with enough classes the columns are distinct for these seeds.
        for &(classes, bits) in &[(20, 16), (20, 32), (20, 64), (20, 128), (80, 64)] {
            let c = Centres::balanced_random(classes, bits, bits / 4, 5).unwrap();
            assert_eq!(
                c.stats().distinct_bit_columns,
                bits,
                "balanced {classes} x {bits}"
            );
        }
    }

    #[test]
    fn packing_follows_the_shared_convention() {
        let c = Centres::hadamard(1, 8).unwrap(); // row 1 of H_8: + - + - + - + -
        assert_eq!(c.packed(), vec![vec![0b1010_1010]]);
        assert!(Centres::from_matrix(CentreMethod::Hadamard, Array2::zeros((2, 8))).is_err());
    }
}
