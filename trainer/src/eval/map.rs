//! mAP@R by Hamming ranking (docs/method.md, evaluation).
//!
//! For each query: rank the database by Hamming distance to the query code, ties broken by
//! database index (a stable order, so the score does not depend on how the database happens
//! to be ordered beyond the index itself); `AP@R = Σ_{r≤R} P@r · rel_r / (#relevant in the
//! top R)`, 0 when the top R holds no relevant item; mAP@R is the mean over all queries.
//! Relevant = shares at least one label with the query. `R` larger than the database means
//! the whole database.
//!
//! Distances lie in `0..=K`, so the top R comes from a counting sort, `O(n + K)` per query
//! instead of a full `O(n log n)` sort; scanning items in index order within each distance
//! bucket gives exactly the (distance, index) order.

use rayon::prelude::*;

use super::labels::LabelSets;
use crate::codes::PackedCodes;

/// The tie rule of every ranking the trainer scores (Hamming mAP@R, cosine mAP@R, the
/// benchmark's comparisons), as reports state it: equal distances keep database order, so a
/// score never depends on how a sort happened to break ties (they move mAP by 1-2 points).
pub const TIE_RULE: &str = "Hamming distance ascending, ties by database index ascending (stable)";

/// AP of one ranked list, truncated at `r`: `relevant(i)` says whether the item at rank
/// `i` (0-based) is relevant.
pub fn average_precision(ranked_relevance: impl IntoIterator<Item = bool>, r: usize) -> f64 {
    let (mut hits, mut sum) = (0usize, 0.0);
    for (rank, rel) in ranked_relevance.into_iter().take(r).enumerate() {
        if rel {
            hits += 1;
            sum += hits as f64 / (rank + 1) as f64;
        }
    }
    if hits == 0 {
        0.0
    } else {
        sum / hits as f64
    }
}

/// Per-thread buffers for one query.
struct Scratch {
    dist: Vec<u32>,
    next: Vec<usize>,
    top: Vec<u32>,
}

/// The first `min(r, n)` database indices in (distance, index) order.
fn top_r<'a>(query: &[u8], db: &PackedCodes, r: usize, s: &'a mut Scratch) -> &'a [u32] {
    let n = db.len();
    let r = r.min(n);
    ics_codes::hamming::hamming_many(query, db.as_bytes(), &mut s.dist);
    // Histogram of distances, then the start of each distance's run in the sorted order.
    s.next.iter_mut().for_each(|c| *c = 0);
    for &d in &s.dist {
        s.next[d as usize] += 1;
    }
    let mut start = 0;
    let mut cutoff = s.next.len() - 1;
    for (d, c) in s.next.iter_mut().enumerate() {
        let count = *c;
        *c = start;
        start += count;
        if start >= r {
            cutoff = d;
            break;
        }
    }
    s.top.clear();
    s.top.resize(r, 0);
    for (i, &d) in s.dist.iter().enumerate() {
        let d = d as usize;
        if d <= cutoff {
            let pos = s.next[d];
            if pos < r {
                s.top[pos] = i as u32;
            }
            s.next[d] += 1;
        }
    }
    &s.top
}

/// AP@R of every query (same order as `queries`).
///
/// # Panics
/// If code lengths or label counts disagree.
pub fn average_precisions(
    queries: &PackedCodes,
    query_labels: &LabelSets,
    db: &PackedCodes,
    db_labels: &LabelSets,
    r: usize,
) -> Vec<f64> {
    check_shapes(queries, query_labels, db, db_labels);
    let bits = db.bits();
    (0..queries.len())
        .into_par_iter()
        .map_init(
            || Scratch {
                dist: vec![0; db.len()],
                next: vec![0; bits + 1],
                top: Vec::new(),
            },
            |s, q| {
                let top = top_r(queries.code(q), db, r, s);
                average_precision(
                    top.iter()
                        .map(|&j| query_labels.shares_label(q, db_labels, j as usize)),
                    r,
                )
            },
        )
        .collect()
}

/// mAP@R: the mean of [`average_precisions`] (0 with no queries).
pub fn map_at_r(
    queries: &PackedCodes,
    query_labels: &LabelSets,
    db: &PackedCodes,
    db_labels: &LabelSets,
    r: usize,
) -> f64 {
    mean(&average_precisions(queries, query_labels, db, db_labels, r))
}

pub(crate) fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

pub(crate) fn check_shapes(
    queries: &PackedCodes,
    ql: &LabelSets,
    db: &PackedCodes,
    dl: &LabelSets,
) {
    assert_eq!(
        queries.len(),
        ql.len(),
        "query codes and query labels differ in count"
    );
    assert_eq!(
        db.len(),
        dl.len(),
        "database codes and database labels differ in count"
    );
    assert_eq!(
        queries.code_bytes(),
        db.code_bytes(),
        "query and database code lengths differ"
    );
    assert_eq!(
        ql.classes(),
        dl.classes(),
        "query and database class counts differ"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The definition, literally: full stable sort by distance, then AP@R.
    fn brute_force(
        q: &PackedCodes,
        ql: &LabelSets,
        db: &PackedCodes,
        dl: &LabelSets,
        r: usize,
    ) -> f64 {
        let mut total = 0.0;
        for i in 0..q.len() {
            let mut idx: Vec<usize> = (0..db.len()).collect();
            // sort_by_key is stable: equal distances keep index order.
            idx.sort_by_key(|&j| ics_codes::hamming::hamming_scalar(q.code(i), db.code(j)));
            let (mut hits, mut sum) = (0, 0.0);
            for (rank, &j) in idx.iter().take(r).enumerate() {
                if ql.shares_label(i, dl, j) {
                    hits += 1;
                    sum += hits as f64 / (rank + 1) as f64;
                }
            }
            total += if hits > 0 { sum / hits as f64 } else { 0.0 };
        }
        total / q.len() as f64
    }

    fn random_labels(n: usize, classes: usize, rng: &mut ChaCha8Rng) -> LabelSets {
        let lists: Vec<Vec<usize>> = (0..n)
            .map(|_| (0..classes).filter(|_| rng.gen_bool(0.3)).collect())
            .collect();
        LabelSets::from_lists(&lists, classes).unwrap()
    }

    #[test]
    fn hand_computed_case() {
        // Query code 0x00; database distances 1, 0, 1, 8, 0 -> order 1, 4, 0, 2, 3.
        let q = PackedCodes::from_codes(&[vec![0x00]]).unwrap();
        let db =
            PackedCodes::from_codes(&[vec![0x01], vec![0x00], vec![0x80], vec![0xff], vec![0x00]])
                .unwrap();
        let ql = LabelSets::from_lists(&[vec![0]], 2).unwrap();
        // Relevant: items 0, 2, 3 (label 0).
        let dl =
            LabelSets::from_lists(&[vec![0], vec![1], vec![0, 1], vec![0], vec![1]], 2).unwrap();
        // Ranked relevance: 0, 0, 1, 1, 1.
        let ap5 = (1.0 / 3.0 + 2.0 / 4.0 + 3.0 / 5.0) / 3.0;
        assert!((map_at_r(&q, &ql, &db, &dl, 5) - ap5).abs() < 1e-12);
        // R = 3: only item 0 at rank 3 is relevant in the top 3: (1/3)/1.
        assert!((map_at_r(&q, &ql, &db, &dl, 3) - 1.0 / 3.0).abs() < 1e-12);
        // R = 2: nothing relevant in the top 2.
        assert_eq!(map_at_r(&q, &ql, &db, &dl, 2), 0.0);
        // R beyond the database: as R = 5.
        assert!((map_at_r(&q, &ql, &db, &dl, 100) - ap5).abs() < 1e-12);
    }

    #[test]
    fn matches_brute_force_with_many_ties() {
        let mut rng = ChaCha8Rng::seed_from_u64(40);
        for case in 0..60 {
            // 8- or 16-bit codes over few distinct values: distances collide constantly.
            let bits = if case % 2 == 0 { 8 } else { 16 };
            let n_db = rng.gen_range(1..120);
            let n_q = rng.gen_range(1..15);
            let pool: Vec<Vec<u8>> = (0..4)
                .map(|_| (0..bits / 8).map(|_| rng.gen()).collect())
                .collect();
            let pick = |rng: &mut ChaCha8Rng| pool[rng.gen_range(0..pool.len())].clone();
            let db =
                PackedCodes::from_codes(&(0..n_db).map(|_| pick(&mut rng)).collect::<Vec<_>>())
                    .unwrap();
            let q = PackedCodes::from_codes(&(0..n_q).map(|_| pick(&mut rng)).collect::<Vec<_>>())
                .unwrap();
            let classes = rng.gen_range(1..6);
            let (dl, ql) = (
                random_labels(n_db, classes, &mut rng),
                random_labels(n_q, classes, &mut rng),
            );
            for r in [1, 3, n_db / 2 + 1, n_db, n_db + 7] {
                let fast = map_at_r(&q, &ql, &db, &dl, r);
                let slow = brute_force(&q, &ql, &db, &dl, r);
                assert!(
                    (fast - slow).abs() < 1e-12,
                    "case {case} r {r}: {fast} vs {slow}"
                );
            }
        }
    }

    #[test]
    fn tie_order_is_by_database_index() {
        // Every database code is equal: the ranking is the index order exactly.
        let q = PackedCodes::from_codes(&[vec![0]]).unwrap();
        let db = PackedCodes::from_codes(&vec![vec![0xf0]; 4]).unwrap();
        let ql = LabelSets::from_lists(&[vec![0]], 1).unwrap();
        let dl = LabelSets::from_lists(&[vec![], vec![0], vec![], vec![0]], 1).unwrap();
        // Relevance in index order: 0, 1, 0, 1 -> AP = (1/2 + 2/4)/2 = 0.5.
        assert!((map_at_r(&q, &ql, &db, &dl, 4) - 0.5).abs() < 1e-12);
        let dl_rev = LabelSets::from_lists(&[vec![0], vec![], vec![0], vec![]], 1).unwrap();
        // 1, 0, 1, 0 -> (1 + 2/3)/2.
        assert!((map_at_r(&q, &ql, &db, &dl_rev, 4) - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn perfect_and_random_codes() {
        // Codes equal to a class code: perfect retrieval, mAP 1.
        let codes: Vec<Vec<u8>> = (0..40)
            .map(|i| vec![if i % 2 == 0 { 0x0f } else { 0xf0 }])
            .collect();
        let lists: Vec<Vec<usize>> = (0..40).map(|i| vec![i % 2]).collect();
        let c = PackedCodes::from_codes(&codes).unwrap();
        let l = LabelSets::from_lists(&lists, 2).unwrap();
        assert_eq!(map_at_r(&c, &l, &c, &l, 20), 1.0);
        // Random codes: about the share of relevant items (0.5).
        let r = PackedCodes::random(40, 8, 1);
        let m = map_at_r(
            &r,
            &l,
            &PackedCodes::random(4000, 8, 2),
            &LabelSets::from_lists(&(0..4000).map(|i| vec![i % 2]).collect::<Vec<_>>(), 2).unwrap(),
            4000,
        );
        assert!((m - 0.5).abs() < 0.05, "{m}");
    }
}
