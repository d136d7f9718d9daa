//! Hamming-radius retrieval: precision within radius 2 and the precision-recall curve over
//! radii `0..=K` (the "hash lookup" protocol of the deep hashing literature).
//!
//! Conventions (stated because papers differ): for each query, everything within radius `r`
//! is retrieved; its precision is `relevant retrieved / retrieved`, **0 when nothing is
//! retrieved**, and its recall is `relevant retrieved / relevant in the database`. Precision
//! is averaged over all queries; recall over the queries with at least one relevant item
//! (recall is undefined for the others). At `r = K` everything is retrieved: recall 1.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::labels::LabelSets;
use super::map::check_shapes;
use crate::codes::PackedCodes;

/// One point of the precision-recall curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    pub radius: usize,
    pub precision: f64,
    pub recall: f64,
}

/// Per-query counts by distance: `retrieved[d]` items and `relevant[d]` relevant items at
/// Hamming distance exactly `d`.
struct Histogram {
    retrieved: Vec<u64>,
    relevant: Vec<u64>,
}

fn histograms(q: &PackedCodes, ql: &LabelSets, db: &PackedCodes, dl: &LabelSets) -> Vec<Histogram> {
    check_shapes(q, ql, db, dl);
    let bits = db.bits();
    (0..q.len())
        .into_par_iter()
        .map_init(
            || vec![0u32; db.len()],
            |dist, i| {
                ics_codes::hamming::hamming_many(q.code(i), db.as_bytes(), dist);
                let mut h = Histogram {
                    retrieved: vec![0; bits + 1],
                    relevant: vec![0; bits + 1],
                };
                for (j, &d) in dist.iter().enumerate() {
                    h.retrieved[d as usize] += 1;
                    if ql.shares_label(i, dl, j) {
                        h.relevant[d as usize] += 1;
                    }
                }
                h
            },
        )
        .collect()
}

fn curve(hists: &[Histogram], bits: usize) -> Vec<PrPoint> {
    let totals: Vec<u64> = hists.iter().map(|h| h.relevant.iter().sum()).collect();
    let with_relevant = totals.iter().filter(|&&t| t > 0).count();
    let mut cum: Vec<(u64, u64)> = vec![(0, 0); hists.len()];
    (0..=bits)
        .map(|radius| {
            let (mut p, mut r) = (0.0, 0.0);
            for ((h, c), &total) in hists.iter().zip(cum.iter_mut()).zip(&totals) {
                c.0 += h.retrieved[radius];
                c.1 += h.relevant[radius];
                if c.0 > 0 {
                    p += c.1 as f64 / c.0 as f64;
                }
                if total > 0 {
                    r += c.1 as f64 / total as f64;
                }
            }
            let n = hists.len().max(1) as f64;
            PrPoint {
                radius,
                precision: p / n,
                recall: r / with_relevant.max(1) as f64,
            }
        })
        .collect()
}

/// The precision-recall curve over Hamming radii `0..=K`.
pub fn pr_curve(
    queries: &PackedCodes,
    query_labels: &LabelSets,
    db: &PackedCodes,
    db_labels: &LabelSets,
) -> Vec<PrPoint> {
    curve(&histograms(queries, query_labels, db, db_labels), db.bits())
}

/// Mean precision of the items within Hamming distance `radius` (0 for a query that
/// retrieves nothing).
pub fn precision_within_radius(
    queries: &PackedCodes,
    query_labels: &LabelSets,
    db: &PackedCodes,
    db_labels: &LabelSets,
    radius: usize,
) -> f64 {
    let bits = db.bits();
    curve(&histograms(queries, query_labels, db, db_labels), bits)[radius.min(bits)].precision
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn hand_computed_case() {
        // Query 0x00 (label 0); distances 0, 1, 2, 8; relevant: items 0 and 2 of 4.
        let q = PackedCodes::from_codes(&[vec![0x00], vec![0xff]]).unwrap();
        let db =
            PackedCodes::from_codes(&[vec![0x00], vec![0x80], vec![0xc0], vec![0xff]]).unwrap();
        let ql = LabelSets::from_lists(&[vec![0], vec![1]], 2).unwrap();
        let dl = LabelSets::from_lists(&[vec![0], vec![1], vec![0], vec![]], 2).unwrap();
        // Query 1 (0xff, label 1): distances 8, 7, 6, 0; its one relevant item (1) is at 7.
        let c = pr_curve(&q, &ql, &db, &dl);
        assert_eq!(c.len(), 9);
        // r = 0: q0 retrieves item 0 (relevant): P 1, R 1/2; q1 retrieves item 3: P 0, R 0.
        assert_eq!((c[0].precision, c[0].recall), (0.5, 0.25));
        // r = 2: q0 retrieves 0, 1, 2: P 2/3, R 1; q1 still only item 3: P 0, R 0.
        assert!((c[2].precision - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(c[2].recall, 0.5);
        assert_eq!(
            precision_within_radius(&q, &ql, &db, &dl, 2),
            c[2].precision
        );
        // r = 8: everything: P 2/4 and 1/4, R 1.
        assert_eq!((c[8].precision, c[8].recall), (0.375, 1.0));
    }

    #[test]
    fn nothing_retrieved_counts_as_zero_precision() {
        let q = PackedCodes::from_codes(&[vec![0x00]]).unwrap();
        let db = PackedCodes::from_codes(&[vec![0xff]]).unwrap();
        let l = LabelSets::from_lists(&[vec![0]], 1).unwrap();
        assert_eq!(precision_within_radius(&q, &l, &db, &l, 2), 0.0);
    }

    #[test]
    fn curve_is_monotone_in_recall_and_matches_a_direct_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(50);
        let (q, db) = (
            PackedCodes::random(20, 16, 1),
            PackedCodes::random(300, 16, 2),
        );
        let lists = |n: usize, rng: &mut ChaCha8Rng| {
            (0..n)
                .map(|_| vec![rng.gen_range(0..4)])
                .collect::<Vec<_>>()
        };
        let (ql, dl) = (
            LabelSets::from_lists(&lists(20, &mut rng), 4).unwrap(),
            LabelSets::from_lists(&lists(300, &mut rng), 4).unwrap(),
        );
        let c = pr_curve(&q, &ql, &db, &dl);
        assert!(c.windows(2).all(|w| w[1].recall >= w[0].recall));
        assert!((c[16].recall - 1.0).abs() < 1e-12);
        // Radius 5, counted directly.
        let mut p = 0.0;
        for i in 0..20 {
            let within: Vec<usize> = (0..300)
                .filter(|&j| ics_codes::hamming::hamming_scalar(q.code(i), db.code(j)) <= 5)
                .collect();
            let rel = within
                .iter()
                .filter(|&&j| ql.shares_label(i, &dl, j))
                .count();
            if !within.is_empty() {
                p += rel as f64 / within.len() as f64;
            }
        }
        assert!((c[5].precision - p / 20.0).abs() < 1e-12);
    }
}
