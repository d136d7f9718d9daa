//! Weight-vs-area agreement by how different the instance sizes of an image are: do the
//! learned weights follow the areas better when the objects clearly differ in size?
//!
//! For every image with at least two labels, all of positive area: the Spearman correlation
//! of its weights with its areas (0 when undefined, as in [`super::agreement`]), binned by the
//! image's **size ratio**, the smallest ratio between consecutive sorted areas (1 = two
//! objects of the same size). Bins are `[1, 1.25)`, `[1.25, 1.5)`, `[1.5, 2)`, `[2, 3)`,
//! `[3, inf)`; separately, the images whose instances all differ at least
//! [`DIFFERENT_SIZES`]-fold ("labels of different sizes"), where uniform weights score 0.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::agreement::spearman;
use crate::ics::InstanceWeights;

/// Area ratio from which two instances count as being of different sizes.
pub const DIFFERENT_SIZES: f64 = 2.0;

/// Lower bin edges (the last bin is open).
const EDGES: [f64; 6] = [1.0, 1.25, 1.5, DIFFERENT_SIZES, 3.0, f64::INFINITY];

/// Mean Spearman over the images of one size-ratio range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatioBin {
    /// Smallest consecutive area ratio, inclusive lower and exclusive upper bound.
    pub min_ratio: f64,
    pub max_ratio: Option<f64>,
    pub images: usize,
    pub spearman: f64,
}

/// Spearman of learned weights vs area shares, binned by the images' size separation.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeRatioBreakdown {
    /// The bins of the module docs, in order.
    pub bins: Vec<RatioBin>,
    /// The images whose instances all differ at least [`DIFFERENT_SIZES`]-fold.
    pub different_sizes: RatioBin,
}

/// The breakdown of `weights` (training order) against `areas` (images, classes).
///
/// # Panics
/// If `areas` has fewer rows or columns than the weights' images and labels use.
pub fn size_ratio_breakdown(
    weights: &InstanceWeights,
    areas: ArrayView2<f64>,
) -> SizeRatioBreakdown {
    let mut sums = vec![(0usize, 0.0f64); EDGES.len() - 1];
    let mut diff = (0usize, 0.0f64);
    for i in 0..weights.len() {
        let labels = weights.labels(i);
        if labels.len() < 2 {
            continue;
        }
        let a: Vec<f64> = labels.iter().map(|&k| areas[[i, k]]).collect();
        if a.iter().any(|&x| x <= 0.0) {
            continue;
        }
        let mut sorted = a.clone();
        sorted.sort_by(f64::total_cmp);
        let ratio = sorted
            .windows(2)
            .map(|w| w[1] / w[0])
            .fold(f64::INFINITY, f64::min);
        let rho = spearman(&a, &weights.on_labels(i)).unwrap_or(0.0);
        let b = EDGES.windows(2).position(|e| ratio >= e[0] && ratio < e[1]);
        if let Some(b) = b {
            sums[b].0 += 1;
            sums[b].1 += rho;
        }
        if ratio >= DIFFERENT_SIZES {
            diff.0 += 1;
            diff.1 += rho;
        }
    }
    let bin = |lo: f64, hi: f64, (n, sum): (usize, f64)| RatioBin {
        min_ratio: lo,
        max_ratio: hi.is_finite().then_some(hi),
        images: n,
        spearman: sum / n.max(1) as f64,
    };
    SizeRatioBreakdown {
        bins: EDGES
            .windows(2)
            .zip(&sums)
            .map(|(e, &s)| bin(e[0], e[1], s))
            .collect(),
        different_sizes: bin(DIFFERENT_SIZES, f64::INFINITY, diff),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn images_are_binned_by_their_smallest_area_ratio() {
        // Image 0: one label (skipped). 1: areas 100, 110 (ratio 1.1), weights agree.
        // 2: 100, 400 (ratio 4), weights disagree. 3: 100, 250, 1000 (ratios 2.5, 4 -> 2.5),
        // weights agree. 4: a zero area (skipped). 5: 100, 130 (1.3), uniform weights.
        let areas = array![
            [50.0, 0.0, 0.0],
            [100.0, 110.0, 0.0],
            [100.0, 400.0, 0.0],
            [100.0, 250.0, 1000.0],
            [0.0, 30.0, 0.0],
            [0.0, 100.0, 130.0],
        ];
        let labels = vec![
            vec![0],
            vec![0, 1],
            vec![0, 1],
            vec![0, 1, 2],
            vec![0, 1],
            vec![1, 2],
        ];
        let mut w = InstanceWeights::uniform(labels, 3);
        // Closed form with losses ordered against the areas: weights rise with the area.
        w.closed_form(1, &[0.2, 0.1], 0.1);
        w.closed_form(2, &[0.1, 0.2], 0.1);
        w.closed_form(3, &[0.3, 0.2, 0.1], 0.1);
        let b = size_ratio_breakdown(&w, areas.view());
        let want = [
            (1.0, Some(1.25), 1, 1.0),
            (1.25, Some(1.5), 1, 0.0),
            (1.5, Some(2.0), 0, 0.0),
            (2.0, Some(3.0), 1, 1.0),
            (3.0, None, 1, -1.0),
        ];
        assert_eq!(b.bins.len(), want.len());
        for (r, &(lo, hi, n, rho)) in b.bins.iter().zip(&want) {
            assert_eq!((r.min_ratio, r.max_ratio, r.images), (lo, hi, n), "{r:?}");
            assert!((r.spearman - rho).abs() < 1e-12, "{r:?}");
        }
        let d = &b.different_sizes;
        assert_eq!((d.min_ratio, d.max_ratio, d.images), (2.0, None, 2));
        assert!(d.spearman.abs() < 1e-12, "{d:?}");
    }
}
