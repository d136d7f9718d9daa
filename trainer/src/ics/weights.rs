//! Per-image weights on the label simplex (docs/method.md, ICS), kept by dataset index across
//! epochs.
//!
//! Image `i` has a weight vector `w_i` over its label set `L_i`: `w_ik >= 0`, zero off
//! `L_i`, summing to 1, uniform `1/|L_i|` at the start. With the network fixed, the weight
//! problem for one image is linear plus entropy,
//! `min_w Σ_k w_k l_k + λ_r Σ_k w_k ln w_k` with `l_k = l(u_i, c_k)`,
//! whose exact optimum is `softmax_k(−l_k/λ_r)` over `L_i`. Training takes either projected
//! gradient steps towards it (the published method) or that closed form.
//!
//! Weights are `f64`: they are few (images × classes), and the PGD fixed point is compared
//! with the closed form to tight tolerances.

use anyhow::{ensure, Result};
use ndarray::{Array2, ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};

use super::simplex::project_simplex;

/// Logs of weights are taken of `max(w, LOG_FLOOR)`: projected weights are often exactly 0.
pub const LOG_FLOOR: f64 = 1e-12;

/// The weights of every training image, row `i` = image `i` (dataset order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceWeights {
    /// (images, classes); zero off each image's labels.
    weights: Array2<f64>,
    /// Label indices of each image, ascending.
    labels: Vec<Vec<usize>>,
}

impl InstanceWeights {
    /// Uniform weights `1/|L_i|` for the given label lists (`classes` columns).
    ///
    /// # Panics
    /// If an image has no label or a label is `>= classes` (training validates labels first).
    pub fn uniform(labels: Vec<Vec<usize>>, classes: usize) -> InstanceWeights {
        let mut weights = Array2::zeros((labels.len(), classes));
        for (i, l) in labels.iter().enumerate() {
            assert!(!l.is_empty(), "image {i} has no label");
            for &k in l {
                weights[[i, k]] = 1.0 / l.len() as f64;
            }
        }
        InstanceWeights { weights, labels }
    }

    /// Weights read back (e.g. from a model file): `weights` (images, classes) and each image's
    /// labels, ascending. Checked: shapes, labels in range and ascending, every image labelled,
    /// weights finite, `>= 0`, zero off the labels and summing to 1 (within 1e-6) on them.
    pub fn from_parts(weights: Array2<f64>, labels: Vec<Vec<usize>>) -> Result<InstanceWeights> {
        let (n, classes) = weights.dim();
        ensure!(
            labels.len() == n,
            "{n} rows of weights but {} label lists",
            labels.len()
        );
        for (i, l) in labels.iter().enumerate() {
            ensure!(!l.is_empty(), "image {i} has no label");
            ensure!(
                l.windows(2).all(|p| p[0] < p[1]) && l[l.len() - 1] < classes,
                "image {i}: labels {l:?} are not ascending class indices below {classes}"
            );
            let row = weights.row(i);
            let mut on = 0.0;
            for (k, &w) in row.iter().enumerate() {
                ensure!(
                    w.is_finite() && w >= 0.0,
                    "image {i} class {k}: weight {w} is not a finite non-negative number"
                );
                if l.binary_search(&k).is_ok() {
                    on += w;
                } else {
                    ensure!(
                        w == 0.0,
                        "image {i}: weight {w} on class {k}, not one of its labels"
                    );
                }
            }
            ensure!(
                (on - 1.0).abs() <= 1e-6,
                "image {i}: weights sum to {on}, not 1"
            );
        }
        Ok(InstanceWeights { weights, labels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn classes(&self) -> usize {
        self.weights.ncols()
    }
    /// All weights, (images, classes).
    pub fn matrix(&self) -> ArrayView2<'_, f64> {
        self.weights.view()
    }
    /// Weights of image `i` over all classes.
    pub fn row(&self, i: usize) -> ArrayView1<'_, f64> {
        self.weights.row(i)
    }
    /// The labels of image `i`, ascending.
    pub fn labels(&self, i: usize) -> &[usize] {
        &self.labels[i]
    }
    /// Weights of image `i` on its labels, in the order of [`InstanceWeights::labels`].
    pub fn on_labels(&self, i: usize) -> Vec<f64> {
        self.labels[i]
            .iter()
            .map(|&k| self.weights[[i, k]])
            .collect()
    }

    fn set_on_labels(&mut self, i: usize, w: &[f64]) {
        for (&k, &x) in self.labels[i].iter().zip(w) {
            self.weights[[i, k]] = x;
        }
    }

    /// Entropy `−Σ w ln w` of image `i`'s weights (nats).
    pub fn entropy(&self, i: usize) -> f64 {
        self.labels[i]
            .iter()
            .map(|&k| self.weights[[i, k]])
            .filter(|&w| w > 0.0)
            .map(|w| -w * w.ln())
            .sum()
    }

    /// Mean entropy over all images.
    pub fn mean_entropy(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        (0..self.len()).map(|i| self.entropy(i)).sum::<f64>() / self.len() as f64
    }

    /// One projected-gradient step for image `i`: `g_k = l_k + λ_r (ln max(w_k, ε) + 1)`,
    /// `v = w − η g`, `w = proj_simplex(v)` over `L_i`. `losses[j]` is `l(u_i, c_k)` for the
    /// `j`-th label of the image.
    pub fn pgd_step(&mut self, i: usize, losses: &[f64], lambda_r: f64, eta: f64) {
        let w = self.on_labels(i);
        let v: Vec<f64> = w
            .iter()
            .zip(losses)
            .map(|(&w, &l)| w - eta * (l + lambda_r * (w.max(LOG_FLOOR).ln() + 1.0)))
            .collect();
        let mut out = vec![0.0; v.len()];
        project_simplex(&v, &mut out);
        self.set_on_labels(i, &out);
    }

    /// The exact minimiser for image `i`: `softmax(−l_k/λ_r)` over its labels.
    pub fn closed_form(&mut self, i: usize, losses: &[f64], lambda_r: f64) {
        let w = softmax_neg(losses, lambda_r);
        self.set_on_labels(i, &w);
    }

    /// The per-image weight objective `Σ_k w_k l_k + λ_r Σ_k w_k ln w_k` at the current
    /// weights of image `i`.
    pub fn objective(&self, i: usize, losses: &[f64], lambda_r: f64) -> f64 {
        self.on_labels(i)
            .iter()
            .zip(losses)
            .map(|(&w, &l)| w * l + if w > 0.0 { lambda_r * w * w.ln() } else { 0.0 })
            .sum()
    }
}

/// `softmax(−l/λ)` computed with the maximum subtracted, so any λ > 0 is safe.
pub fn softmax_neg(losses: &[f64], lambda: f64) -> Vec<f64> {
    let lo = losses.iter().cloned().fold(f64::INFINITY, f64::min);
    let e: Vec<f64> = losses.iter().map(|&l| (-(l - lo) / lambda).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn one_image(labels: Vec<usize>, classes: usize) -> InstanceWeights {
        InstanceWeights::uniform(vec![labels], classes)
    }

    #[test]
    fn uniform_init_on_labels_only() {
        let w = InstanceWeights::uniform(vec![vec![0, 2], vec![1], vec![0, 1, 3]], 4);
        assert_eq!(w.row(0).to_vec(), vec![0.5, 0.0, 0.5, 0.0]);
        assert_eq!(w.row(1).to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
        assert!((w.row(2).sum() - 1.0).abs() < 1e-15);
        assert!((w.entropy(2) - 3f64.ln()).abs() < 1e-12);
        assert_eq!(w.entropy(1), 0.0);
    }

    #[test]
    fn from_parts_round_trips_and_checks() {
        let mut w = InstanceWeights::uniform(vec![vec![0, 2], vec![1]], 3);
        w.closed_form(0, &[0.1, 0.4], 0.2);
        let back = InstanceWeights::from_parts(w.matrix().to_owned(), vec![vec![0, 2], vec![1]]);
        assert_eq!(back.unwrap(), w);
        let bad = |m: Array2<f64>, l: Vec<Vec<usize>>| {
            InstanceWeights::from_parts(m, l).unwrap_err().to_string()
        };
        let m = w.matrix().to_owned();
        assert!(bad(m.clone(), vec![vec![0, 2]]).contains("2 rows"));
        assert!(bad(m.clone(), vec![vec![0, 2], vec![]]).contains("no label"));
        assert!(bad(m.clone(), vec![vec![2, 0], vec![1]]).contains("ascending"));
        assert!(bad(m.clone(), vec![vec![0, 3], vec![1]]).contains("ascending"));
        assert!(bad(m.clone(), vec![vec![0], vec![1]]).contains("not one of its labels"));
        let mut off = m.clone();
        off[[1, 1]] = 0.5;
        assert!(bad(off, vec![vec![0, 2], vec![1]]).contains("sum to 0.5"));
        let mut neg = m;
        neg[[1, 1]] = f64::NAN;
        assert!(bad(neg, vec![vec![0, 2], vec![1]]).contains("not a finite"));
    }

    #[test]
    fn pgd_converges_to_the_closed_form() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..50 {
            let m = rng.gen_range(2..6);
            let labels: Vec<usize> = (0..m).map(|j| 2 * j).collect();
            let losses: Vec<f64> = (0..m).map(|_| rng.gen_range(0.0..0.2)).collect();
            let lambda_r = [0.05, 0.1, 0.3][rng.gen_range(0..3)];
            // Stable step: the entropy's curvature is λ_r / w_k, so η · λ_r / min(w) < 2
            // near the optimum (min(w) >= e^-4 / 5 here).
            let eta = 0.05;
            let mut w = one_image(labels, 2 * m);
            let mut last = f64::INFINITY;
            for step in 0..20_000 {
                w.pgd_step(0, &losses, lambda_r, eta);
                let obj = w.objective(0, &losses, lambda_r);
                // Monotone descent up to rounding once the step is stable.
                if step > 10 {
                    assert!(obj <= last + 1e-12, "objective rose at step {step}");
                }
                last = obj;
            }
            let want = softmax_neg(&losses, lambda_r);
            let got = w.on_labels(0);
            for (g, t) in got.iter().zip(&want) {
                assert!((g - t).abs() < 1e-6, "pgd {got:?} vs closed form {want:?}");
            }
            let mut c = one_image((0..m).map(|j| 2 * j).collect(), 2 * m);
            c.closed_form(0, &losses, lambda_r);
            assert_eq!(c.on_labels(0), want);
            // The closed form is the minimum of the objective.
            assert!(c.objective(0, &losses, lambda_r) <= last + 1e-12);
        }
    }

    #[test]
    fn pgd_without_entropy_pull_goes_to_the_vertex() {
        // Tiny λ_r: the linear term wins, all mass on the smallest loss.
        let mut w = one_image(vec![0, 1, 2], 3);
        for _ in 0..200 {
            w.pgd_step(0, &[0.5, 0.2, 0.4], 1e-6, 0.1);
        }
        let got = w.on_labels(0);
        assert!(got[1] > 0.999 && got[0] < 1e-3 && got[2] < 1e-3, "{got:?}");
    }

    #[test]
    fn huge_lambda_keeps_weights_uniform() {
        let losses = [0.9, 0.1, 0.5];
        let mut c = one_image(vec![0, 1, 2], 3);
        c.closed_form(0, &losses, 1e9);
        assert!(c.on_labels(0).iter().all(|&x| (x - 1.0 / 3.0).abs() < 1e-9));
        // PGD with a step inside its stability bound (η λ_r |L| < 2).
        let mut p = one_image(vec![0, 1, 2], 3);
        for _ in 0..1000 {
            p.pgd_step(0, &losses, 1e4, 1e-5);
        }
        let got = p.on_labels(0);
        assert!(got.iter().all(|&x| (x - 1.0 / 3.0).abs() < 1e-4), "{got:?}");
    }

    #[test]
    fn pgd_keeps_weights_on_the_simplex_of_the_labels() {
        let mut w = InstanceWeights::uniform(vec![vec![1, 3], vec![0, 1, 2, 3]], 4);
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        for _ in 0..100 {
            let l0: Vec<f64> = (0..2).map(|_| rng.gen_range(0.0..1.0)).collect();
            let l1: Vec<f64> = (0..4).map(|_| rng.gen_range(0.0..1.0)).collect();
            w.pgd_step(0, &l0, 0.01, 0.5);
            w.pgd_step(1, &l1, 0.01, 0.5);
            for i in 0..2 {
                assert!((w.row(i).sum() - 1.0).abs() < 1e-12);
                assert!(w.row(i).iter().all(|&x| x >= 0.0));
            }
            assert_eq!((w.row(0)[0], w.row(0)[2]), (0.0, 0.0));
        }
    }
}
