//! Synthetic multi-label feature data for tests and timing examples: each image mixes the
//! prototypes of its classes in proportion to their (random) area shares, plus Gaussian
//! noise. Retrieval structure and ground-truth areas are both known, so tests can check that
//! training beats chance and that the learned weights follow the areas.

use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Features, labels and areas of a synthetic data set.
pub struct Synthetic {
    pub features: Array2<f32>,
    pub labels: Array2<u8>,
    /// Object area per (image, class), 0 off the labels.
    pub areas: Array2<f64>,
}

fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `n` images, `d` dimensions, `classes` classes, 1 to `max_labels` labels each, noise
/// standard deviation `noise` per dimension (prototypes have unit norm).
pub fn make(
    n: usize,
    d: usize,
    classes: usize,
    max_labels: usize,
    noise: f64,
    seed: u64,
) -> Synthetic {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Prototypes from a fixed seed: splits made with different seeds share them.
    let mut proto_rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut protos = Array2::from_shape_fn((classes, d), |_| gaussian(&mut proto_rng));
    for mut p in protos.axis_iter_mut(Axis(0)) {
        let norm = p.dot(&p).sqrt();
        p /= norm;
    }
    let mut features = Array2::<f32>::zeros((n, d));
    let mut labels = Array2::<u8>::zeros((n, classes));
    let mut areas = Array2::<f64>::zeros((n, classes));
    for i in 0..n {
        let m = rng.gen_range(1..=max_labels.min(classes));
        let mut chosen: Vec<usize> = (0..classes).collect();
        let (picked, _) = rand::seq::SliceRandom::partial_shuffle(&mut chosen[..], &mut rng, m);
        let picked = picked.to_vec();
        // Shares well spread: one object usually dominates.
        let raw: Vec<f64> = picked
            .iter()
            .map(|_| rng.gen_range(0.05f64..1.0).powi(2))
            .collect();
        let total: f64 = raw.iter().sum();
        for (&k, &a) in picked.iter().zip(&raw) {
            labels[[i, k]] = 1;
            areas[[i, k]] = 1000.0 * a / total;
            for j in 0..d {
                features[[i, j]] += (a / total * protos[[k, j]] * (d as f64).sqrt()) as f32;
            }
        }
        for j in 0..d {
            features[[i, j]] += (noise * gaussian(&mut rng)) as f32;
        }
    }
    Synthetic {
        features,
        labels,
        areas,
    }
}
