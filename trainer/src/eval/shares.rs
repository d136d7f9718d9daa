//! The points of the weights-vs-area plot: `(true area share, learned weight)` of every label
//! of the multi-label training images, grouped by label count.

use std::collections::BTreeMap;

use ndarray::ArrayView2;

use crate::ics::weights::InstanceWeights;

/// At most this many multi-label images are plotted (every k-th), so the plot stays legible
/// and the choice is fixed.
pub const MAX_PLOTTED_IMAGES: usize = 3000;

/// `(true area share, learned weight)` of every label of every plotted multi-label image,
/// grouped by label count (2, 3, 4 for four or more), ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct SharePoints {
    pub groups: Vec<(usize, Vec<(f64, f64)>)>,
}

/// The plot's points of `weights` against `areas` (images, classes); images whose labels have
/// no area are left out.
pub fn share_points(weights: &InstanceWeights, areas: ArrayView2<f64>) -> SharePoints {
    let mut groups: BTreeMap<usize, Vec<(f64, f64)>> = Default::default();
    let n = weights.len();
    let multi = (0..n).filter(|&i| weights.labels(i).len() >= 2).count();
    let step = multi.div_ceil(MAX_PLOTTED_IMAGES).max(1);
    let mut seen = 0usize;
    for i in 0..n {
        let labels = weights.labels(i);
        if labels.len() < 2 {
            continue;
        }
        seen += 1;
        if !(seen - 1).is_multiple_of(step) {
            continue;
        }
        let a: Vec<f64> = labels.iter().map(|&k| areas[[i, k]]).collect();
        let total: f64 = a.iter().sum();
        if total <= 0.0 {
            continue;
        }
        let w = weights.on_labels(i);
        let g = groups.entry(labels.len().min(4)).or_default();
        for (ak, wk) in a.iter().zip(&w) {
            g.push((ak / total, *wk));
        }
    }
    SharePoints {
        groups: groups.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn shares_by_label_count() {
        // One-label image: left out; image 2 has no area on its labels.
        let w = InstanceWeights::uniform(
            vec![
                vec![0, 1],
                vec![1],
                vec![0, 2],
                vec![0, 1, 2],
                vec![0, 1, 2, 3, 4],
            ],
            5,
        );
        let areas = array![
            [30.0, 10.0, 0.0, 0.0, 0.0],
            [0.0, 5.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [10.0, 10.0, 20.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 1.0, 6.0]
        ];
        let s = share_points(&w, areas.view());
        let counts: Vec<(usize, usize)> = s.groups.iter().map(|(k, p)| (*k, p.len())).collect();
        assert_eq!(counts, [(2, 2), (3, 3), (4, 5)]);
        assert_eq!(s.groups[0].1, [(0.75, 0.5), (0.25, 0.5)]);
        assert_eq!(s.groups[1].1[2], (0.5, 1.0 / 3.0));
        assert_eq!(s.groups[2].1[4], (0.6, 0.2));
    }

    #[test]
    fn many_images_are_thinned_evenly() {
        let n = 2 * MAX_PLOTTED_IMAGES + 10;
        let w = InstanceWeights::uniform(vec![vec![0, 1]; n], 2);
        let areas = Array2::from_elem((n, 2), 1.0);
        let s = share_points(&w, areas.view());
        // Every third image: ceil(n / 3) images, two points each.
        assert_eq!(s.groups[0].1.len(), 2 * n.div_ceil(3));
    }
}
