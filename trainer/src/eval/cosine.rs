//! mAP@R of the raw float features ranked by cosine similarity: the baseline that hash codes
//! are compared with (how much retrieval quality the K-bit code keeps from the features).
//!
//! Same protocol as [`super::map`]: relevance = a shared label, ties (equal similarity)
//! broken by database index. Similarities of a block of queries against the whole database
//! are one matrix product; the top R per query comes from a partial selection, then a sort of
//! those R only. Rows of norm zero are left as zero vectors (similarity 0 to everything).

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::labels::LabelSets;
use super::map::{average_precision, mean};
use crate::ics::matmul::matmul;

/// Queries per similarity block: 256 × 20,000 f32 similarities is 20 MB.
const BLOCK: usize = 256;

fn normalised(x: ArrayView2<f32>) -> Array2<f32> {
    let mut out = x.to_owned();
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .for_each(|mut row| {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row /= norm;
            }
        });
    out
}

/// AP@R of every query, ranking the database by cosine similarity of the features.
pub fn cosine_average_precisions(
    query_features: ArrayView2<f32>,
    query_labels: &LabelSets,
    db_features: ArrayView2<f32>,
    db_labels: &LabelSets,
    r: usize,
) -> Vec<f64> {
    assert_eq!(
        query_features.ncols(),
        db_features.ncols(),
        "feature dimensions differ"
    );
    assert_eq!(query_features.nrows(), query_labels.len());
    assert_eq!(db_features.nrows(), db_labels.len());
    let q = normalised(query_features);
    let db_t = normalised(db_features).reversed_axes();
    let n = db_t.ncols();
    let r = r.min(n);
    let mut out = Vec::with_capacity(q.nrows());
    for (b, block) in q.axis_chunks_iter(Axis(0), BLOCK).enumerate() {
        let sims = matmul(block, db_t.view());
        let aps: Vec<f64> = sims
            .axis_iter(Axis(0))
            .into_par_iter()
            .enumerate()
            .map(|(i, s)| {
                let qi = b * BLOCK + i;
                // Descending similarity, then ascending index: a total order.
                let order = |a: &usize, c: &usize| s[*c].total_cmp(&s[*a]).then(a.cmp(c));
                let mut idx: Vec<usize> = (0..n).collect();
                if r == 0 {
                    return 0.0;
                }
                if r < n {
                    idx.select_nth_unstable_by(r - 1, order);
                    idx.truncate(r);
                }
                idx.sort_unstable_by(order);
                average_precision(
                    idx.iter()
                        .map(|&j| query_labels.shares_label(qi, db_labels, j)),
                    r,
                )
            })
            .collect();
        out.extend(aps);
    }
    out
}

/// mAP@R of the raw features by cosine similarity.
pub fn cosine_map_at_r(
    query_features: ArrayView2<f32>,
    query_labels: &LabelSets,
    db_features: ArrayView2<f32>,
    db_labels: &LabelSets,
    r: usize,
) -> f64 {
    mean(&cosine_average_precisions(
        query_features,
        query_labels,
        db_features,
        db_labels,
        r,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn hand_computed_case_with_ties() {
        let q = array![[1.0f32, 0.0]];
        // Similarities: 0 (orthogonal), 1, 1 (same direction, other length), -1, 0.
        let db = array![
            [0.0f32, 2.0],
            [3.0, 0.0],
            [0.5, 0.0],
            [-1.0, 0.0],
            [0.0, 0.0]
        ];
        let ql = LabelSets::from_lists(&[vec![0]], 2).unwrap();
        let dl = LabelSets::from_lists(&[vec![0], vec![1], vec![0], vec![0], vec![1]], 2).unwrap();
        // Order: 1, 2 (tie at 1, by index), 0, 4 (tie at 0), 3. Relevance 0, 1, 1, 0, 1.
        let want = (1.0 / 2.0 + 2.0 / 3.0 + 3.0 / 5.0) / 3.0;
        let got = cosine_map_at_r(q.view(), &ql, db.view(), &dl, 5);
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        let want3 = (1.0 / 2.0 + 2.0 / 3.0) / 2.0;
        assert!((cosine_map_at_r(q.view(), &ql, db.view(), &dl, 3) - want3).abs() < 1e-9);
    }

    #[test]
    fn matches_a_full_sort() {
        let mut rng = ChaCha8Rng::seed_from_u64(60);
        // Few distinct directions, so many exact ties; more queries than one block.
        let dirs: Vec<Vec<f32>> = (0..5)
            .map(|_| (0..4).map(|_| rng.gen_range(-1.0..1.0)).collect())
            .collect();
        let make = |n: usize| Array2::from_shape_fn((n, 4), |(i, j)| dirs[(i * 7 + i / 3) % 5][j]);
        let (qf, df) = (make(300), make(90));
        let lists = |n: usize, rng: &mut ChaCha8Rng| {
            (0..n)
                .map(|_| vec![rng.gen_range(0..3)])
                .collect::<Vec<_>>()
        };
        let (ql, dl) = (
            LabelSets::from_lists(&lists(300, &mut rng), 3).unwrap(),
            LabelSets::from_lists(&lists(90, &mut rng), 3).unwrap(),
        );
        for r in [1, 10, 90, 200] {
            let fast = cosine_average_precisions(qf.view(), &ql, df.view(), &dl, r);
            // The same similarities (same kernel), ranked by a full stable sort.
            let sims_all = matmul(normalised(qf.view()).view(), normalised(df.view()).t());
            for (i, fast) in fast.iter().enumerate() {
                let sims = sims_all.row(i);
                let mut idx: Vec<usize> = (0..90).collect();
                idx.sort_by(|a, b| sims[*b].total_cmp(&sims[*a])); // stable: ties by index
                let slow = average_precision(idx.iter().map(|&j| ql.shares_label(i, &dl, j)), r);
                assert!((fast - slow).abs() < 1e-12, "query {i} r {r}");
            }
        }
    }
}
