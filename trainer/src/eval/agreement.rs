//! Do the learned weights track how much of the image each labelled object covers?
//! (the claim docs/method.md describes, checked).
//!
//! For every image with at least two labels and a positive total area on them, compare its
//! weights `w_i` (over its labels) with the area shares `a_ik = A_ik / Σ_{k∈L_i} A_ik`:
//! Spearman and Pearson correlation, top-1 agreement, and `KL(a ‖ w)`; each also for uniform
//! weights `1/|L_i|`, the baseline that knows nothing.
//!
//! Two versions of the areas: raw, and **class-normalised**, where each class's areas are
//! first divided by that class's mean area over the images labelled with it (in the data
//! given). The second asks whether weights follow an object's size *relative to what is usual
//! for its class* (a large cat versus a large truck) rather than class identity alone.
//!
//! Conventions: a correlation with a constant vector (uniform weights, equal areas) is
//! undefined; it counts as 0 in the mean (no ranking information) and is tallied in
//! `undefined_correlations`. Top-1 agreement with ties is the chance that an argmax of `w`
//! drawn at random equals an argmax of `a` drawn at random, so uniform weights score
//! `1/|L_i|`. `w` is floored at 1e-12 inside the log of KL.

use anyhow::{ensure, Result};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::ics::weights::{InstanceWeights, LOG_FLOOR};

/// Agreement measures averaged over the compared images.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgreementStats {
    pub spearman: f64,
    pub pearson: f64,
    pub top1: f64,
    pub kl: f64,
    /// Images whose Spearman or Pearson correlation was undefined (counted as 0).
    pub undefined_correlations: usize,
}

/// Learned weights against the uniform baseline on the same images.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgreementComparison {
    pub learned: AgreementStats,
    pub uniform: AgreementStats,
}

/// The full agreement result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgreementReport {
    /// Images compared (>= 2 labels, positive total area).
    pub images: usize,
    /// Images with >= 2 labels skipped because their labels have no area.
    pub skipped_without_area: usize,
    pub raw: AgreementComparison,
    pub class_normalised: AgreementComparison,
}

impl AgreementReport {
    /// One line: `weights vs area shares on N multi-label images: Spearman .. (uniform ..),
    /// top-1 .., KL ..; class-normalised Spearman ..` (logs and summaries).
    pub fn summary(&self) -> String {
        format!(
            "weights vs area shares on {} multi-label images: Spearman {:.3} (uniform {:.3}), \
             top-1 {:.3} (uniform {:.3}), KL {:.4} (uniform {:.4}); class-normalised Spearman {:.3}",
            self.images,
            self.raw.learned.spearman,
            self.raw.uniform.spearman,
            self.raw.learned.top1,
            self.raw.uniform.top1,
            self.raw.learned.kl,
            self.raw.uniform.kl,
            self.class_normalised.learned.spearman
        )
    }
}

/// Compares `weights` with per-image, per-class areas `areas` (images, classes), `A_ik >= 0`
/// (0 where class `k` is absent; the entries off an image's labels are ignored).
pub fn weight_area_agreement(
    weights: &InstanceWeights,
    areas: ArrayView2<f64>,
) -> Result<AgreementReport> {
    let (n, classes) = (weights.len(), weights.classes());
    ensure!(
        areas.dim() == (n, classes),
        "areas are {:?} but the weights are ({n}, {classes})",
        areas.dim()
    );
    if let Some(((i, k), v)) = areas
        .indexed_iter()
        .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
    {
        ensure!(
            false,
            "area of image {i}, class {k} is {v}: areas must be finite and >= 0"
        );
    }
    // Mean area of each class over the images labelled with it.
    let mut sum = vec![0.0; classes];
    let mut count = vec![0usize; classes];
    for i in 0..n {
        for &k in weights.labels(i) {
            sum[k] += areas[[i, k]];
            count[k] += 1;
        }
    }
    let class_mean: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
        .collect();

    let mut report = AgreementReport::default();
    let (mut raw, mut norm) = (Accumulator::default(), Accumulator::default());
    for i in 0..n {
        let labels = weights.labels(i);
        if labels.len() < 2 {
            continue;
        }
        let a_raw: Vec<f64> = labels.iter().map(|&k| areas[[i, k]]).collect();
        if a_raw.iter().sum::<f64>() <= 0.0 {
            report.skipped_without_area += 1;
            continue;
        }
        let a_norm: Vec<f64> = labels
            .iter()
            .zip(&a_raw)
            .map(|(&k, &a)| {
                if class_mean[k] > 0.0 {
                    a / class_mean[k]
                } else {
                    0.0
                }
            })
            .collect();
        let w = weights.on_labels(i);
        let uniform = vec![1.0 / labels.len() as f64; labels.len()];
        raw.add(&shares(&a_raw), &w, &uniform);
        norm.add(&shares(&a_norm), &w, &uniform);
        report.images += 1;
    }
    report.raw = raw.finish();
    report.class_normalised = norm.finish();
    Ok(report)
}

fn shares(a: &[f64]) -> Vec<f64> {
    let s: f64 = a.iter().sum();
    a.iter().map(|x| x / s).collect()
}

#[derive(Default)]
struct Accumulator {
    learned: Sums,
    uniform: Sums,
}

#[derive(Default)]
struct Sums {
    spearman: f64,
    pearson: f64,
    top1: f64,
    kl: f64,
    undefined: usize,
    n: usize,
}

impl Accumulator {
    fn add(&mut self, a: &[f64], w: &[f64], uniform: &[f64]) {
        self.learned.add(a, w);
        self.uniform.add(a, uniform);
    }
    fn finish(self) -> AgreementComparison {
        AgreementComparison {
            learned: self.learned.finish(),
            uniform: self.uniform.finish(),
        }
    }
}

impl Sums {
    fn add(&mut self, a: &[f64], w: &[f64]) {
        let s = spearman(a, w);
        let p = pearson(a, w);
        if s.is_none() || p.is_none() {
            self.undefined += 1;
        }
        self.spearman += s.unwrap_or(0.0);
        self.pearson += p.unwrap_or(0.0);
        self.top1 += top1_agreement(a, w);
        self.kl += kl(a, w);
        self.n += 1;
    }
    fn finish(self) -> AgreementStats {
        let n = self.n.max(1) as f64;
        AgreementStats {
            spearman: self.spearman / n,
            pearson: self.pearson / n,
            top1: self.top1 / n,
            kl: self.kl / n,
            undefined_correlations: self.undefined,
        }
    }
}

/// Pearson correlation; `None` when either vector is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    assert_eq!(x.len(), y.len());
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    // Relative threshold: uniform weights computed as 1/m can differ from their mean by an ulp.
    let tiny = |s: f64, m: f64| s <= 1e-24 * (m * m * n).max(1e-300);
    if tiny(sxx, mx) || tiny(syy, my) {
        None
    } else {
        Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
    }
}

/// Ranks 1..n with ties given their average rank.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &t in &idx[i..=j] {
            r[t] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation (Pearson of average ranks); `None` when either is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson(&ranks(x), &ranks(y))
}

/// Chance that a random argmax of `w` is a random argmax of `a`.
fn top1_agreement(a: &[f64], w: &[f64]) -> f64 {
    let argmaxes = |v: &[f64]| {
        let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        (0..v.len())
            .filter(|&i| v[i] >= m - 1e-12 * m.abs())
            .collect::<Vec<_>>()
    };
    let (ta, tw) = (argmaxes(a), argmaxes(w));
    let common = ta.iter().filter(|i| tw.contains(i)).count();
    common as f64 / (ta.len() * tw.len()) as f64
}

/// `KL(a ‖ w) = Σ a ln(a / w)`, terms with `a = 0` dropped, `w` floored.
fn kl(a: &[f64], w: &[f64]) -> f64 {
    a.iter()
        .zip(w)
        .filter(|(&a, _)| a > 0.0)
        .map(|(&a, &w)| a * (a / w.max(LOG_FLOOR)).ln())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn correlations_by_hand() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[1.0, 1.0], &[0.2, 0.8]), None);
        assert_eq!(pearson(&[1.0 / 3.0; 3], &[0.1, 0.2, 0.7]), None);
        // Monotone but non-linear: Spearman 1, Pearson < 1.
        let (x, y) = ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 100.0]);
        assert!((spearman(&x, &y).unwrap() - 1.0).abs() < 1e-12);
        assert!(pearson(&x, &y).unwrap() < 0.9);
        assert_eq!(ranks(&[0.5, 0.1, 0.5, 0.9]), vec![2.5, 1.0, 2.5, 4.0]);
    }

    #[test]
    fn agreement_by_hand_with_uniform_baseline() {
        // Image 0: labels {0, 1}, areas 30 / 10, weights 0.8 / 0.2: agrees.
        // Image 1: labels {0, 1, 2}, areas 10 / 20 / 70, weights 0.5 / 0.3 / 0.2: inverted.
        // Image 2: one label: ignored. Image 3: two labels without area: skipped.
        let mut w =
            InstanceWeights::uniform(vec![vec![0, 1], vec![0, 1, 2], vec![2], vec![0, 2]], 3);
        // Set weights through the closed form: softmax(-l/λ) with λ = 1 and l = -ln(w).
        w.closed_form(0, &[-(0.8f64).ln(), -(0.2f64).ln()], 1.0);
        w.closed_form(1, &[-(0.5f64).ln(), -(0.3f64).ln(), -(0.2f64).ln()], 1.0);
        let areas = array![
            [30.0, 10.0, 0.0],
            [10.0, 20.0, 70.0],
            [0.0, 0.0, 5.0],
            [0.0, 0.0, 0.0]
        ];
        let r = weight_area_agreement(&w, areas.view()).unwrap();
        assert_eq!((r.images, r.skipped_without_area), (2, 1));
        // Spearman: +1 and -1; top-1: 1 and 0.
        assert!((r.raw.learned.spearman - 0.0).abs() < 1e-12);
        assert!((r.raw.learned.top1 - 0.5).abs() < 1e-12);
        // Uniform: correlations undefined -> 0; top-1 = mean(1/2, 1/3).
        assert_eq!(r.raw.uniform.spearman, 0.0);
        assert_eq!(r.raw.uniform.undefined_correlations, 2);
        assert!((r.raw.uniform.top1 - (0.5 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
        // KL(a || w) for image 0: 0.75 ln(0.75/0.8) + 0.25 ln(0.25/0.2).
        let kl0 = 0.75f64 * (0.75f64 / 0.8).ln() + 0.25 * (0.25f64 / 0.2).ln();
        let kl1 =
            0.1f64 * (0.1f64 / 0.5).ln() + 0.2 * (0.2f64 / 0.3).ln() + 0.7 * (0.7f64 / 0.2).ln();
        assert!((r.raw.learned.kl - (kl0 + kl1) / 2.0).abs() < 1e-9);
        let line = r.summary();
        assert!(
            line.starts_with(
                "weights vs area shares on 2 multi-label images: Spearman 0.000 \
                 (uniform 0.000), top-1 0.500 (uniform 0.417)"
            ),
            "{line}"
        );

        // Class-normalised: class means over labelled images: class 0: (30+10+0)/3,
        // class 1: 15, class 2: (70+5+0)/3 = 25. Image 1 becomes 10/13.33, 20/15, 70/25
        // = 0.75, 1.33, 2.8: the same order, so Spearman stays -1 there.
        assert!((r.class_normalised.learned.spearman - 0.0).abs() < 1e-12);
        // Image 0: 30/13.33 = 2.25 vs 10/15 = 0.67: still agrees.
        assert!((r.class_normalised.learned.top1 - 0.5).abs() < 1e-12);
    }

    #[test]
    fn class_normalisation_can_reverse_raw_order() {
        // Class 0 is always big, class 1 always small. In image 0 class 1 is unusually big for
        // its class but still smaller than class 0 in raw area.
        let mut w = InstanceWeights::uniform(vec![vec![0, 1], vec![0], vec![1]], 2);
        w.closed_form(0, &[1.0, 0.0], 1.0); // more weight on class 1
        let areas = array![[100.0, 20.0], [100.0, 0.0], [0.0, 2.0]];
        let r = weight_area_agreement(&w, areas.view()).unwrap();
        assert_eq!(r.raw.learned.top1, 0.0);
        // Means: class 0: 100, class 1: 11 -> normalised 1.0 vs 1.82: class 1 wins.
        assert_eq!(r.class_normalised.learned.top1, 1.0);
    }

    #[test]
    fn bad_areas_are_refused() {
        let w = InstanceWeights::uniform(vec![vec![0, 1]], 2);
        assert!(weight_area_agreement(&w, array![[1.0, -1.0]].view()).is_err());
        assert!(weight_area_agreement(&w, array![[1.0, f64::NAN]].view()).is_err());
        assert!(weight_area_agreement(&w, array![[1.0, 1.0, 1.0]].view()).is_err());
    }
}
