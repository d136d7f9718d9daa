//! Per-epoch diagnostics of the per-image weights: how far they are from uniform, how large
//! the spread of the per-label losses that moves them is, and (through [`EpochEval`]) how
//! well they track the true instance areas.
//!
//! Only images with at least two labels count: a single-label image's weight is 1 whatever
//! happens, and averaging those in hides the movement of the others. The weight optimum for
//! one image is `softmax(−l_k/λ_r)` over its labels, so whether the weights can leave uniform
//! is decided by the spread of the losses `l_k` against `λ_r`: the loss range logged here is
//! that spread, measured on each image's batch before its weight step.
//!
//! [`EpochEval`]: super::train::EpochEval

use serde::{Deserialize, Serialize};

use super::weights::InstanceWeights;

/// One epoch's weight diagnostics (over images with >= 2 labels).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightDiagnostics {
    /// Images with at least two labels.
    pub images: usize,
    /// Mean over those images of the normalised entropy `H(w_i) / ln |L_i|` at the end of
    /// the epoch: 1 = uniform, 0 = all weight on one label.
    pub entropy_mean: f64,
    /// Standard deviation of the same (population).
    pub entropy_std: f64,
    /// Mean over those images of `max_k l(u_i, c_k) − min_k l(u_i, c_k)` (mean-over-bits
    /// centre losses of the image's labels, as the weight step sees them), this epoch.
    pub loss_range_mean: f64,
    /// Standard deviation of the same.
    pub loss_range_std: f64,
    /// Mean Spearman correlation of the weights with the true area shares (raw areas), when
    /// the areas of the training images are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spearman: Option<f64>,
    /// Top-1 agreement of the weights with the area shares, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1: Option<f64>,
}

/// Population mean and standard deviation (0, 0 for no values).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The range of one image's per-label losses (0 for fewer than two).
pub fn loss_range(losses: &[f64]) -> f64 {
    if losses.len() < 2 {
        return 0.0;
    }
    let hi = losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lo = losses.iter().cloned().fold(f64::INFINITY, f64::min);
    hi - lo
}

/// The diagnostics of `weights`, with the loss ranges gathered during the epoch (one per
/// multi-label image visited). `spearman` and `top1` are left to the caller.
pub fn weight_diagnostics(weights: &InstanceWeights, loss_ranges: &[f64]) -> WeightDiagnostics {
    let entropies: Vec<f64> = (0..weights.len())
        .filter(|&i| weights.labels(i).len() >= 2)
        .map(|i| weights.entropy(i) / (weights.labels(i).len() as f64).ln())
        .collect();
    let (entropy_mean, entropy_std) = mean_std(&entropies);
    let (loss_range_mean, loss_range_std) = mean_std(loss_ranges);
    WeightDiagnostics {
        images: entropies.len(),
        entropy_mean,
        entropy_std,
        loss_range_mean,
        loss_range_std,
        spearman: None,
        top1: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_weights_give_known_entropies() {
        // Image 0: uniform over 2 labels (1); image 1: one-hot over 3 (0); image 2: one
        // label (ignored); image 3: softmax with known entropy.
        let mut w =
            InstanceWeights::uniform(vec![vec![0, 1], vec![0, 1, 2], vec![2], vec![1, 2]], 3);
        // Closed form with λ_r → 0 puts all weight on the smallest loss.
        w.closed_form(1, &[0.9, 0.1, 0.5], 1e-9);
        // (0.8, 0.2) on image 3: losses differ by λ ln 4.
        w.closed_form(3, &[0.0, 4f64.ln()], 1.0);
        let h3 = -(0.8f64 * 0.8f64.ln() + 0.2 * 0.2f64.ln()) / 2f64.ln();
        let d = weight_diagnostics(&w, &[0.2, 0.4]);
        assert_eq!(d.images, 3);
        let want = [1.0, 0.0, h3];
        let mean = want.iter().sum::<f64>() / 3.0;
        let std = (want.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert!((d.entropy_mean - mean).abs() < 1e-9, "{d:?}");
        assert!((d.entropy_std - std).abs() < 1e-9, "{d:?}");
        assert!((d.loss_range_mean - 0.3).abs() < 1e-12);
        assert!((d.loss_range_std - 0.1).abs() < 1e-12);
        assert_eq!((d.spearman, d.top1), (None, None));
        assert_eq!(loss_range(&[0.3, 0.1, 0.7]), 0.7 - 0.1);
        assert_eq!(loss_range(&[0.3]), 0.0);
        assert_eq!(mean_std(&[]), (0.0, 0.0));
    }
}
