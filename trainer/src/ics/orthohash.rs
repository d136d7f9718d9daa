//! OrthoHash's multi-label objective (Hoe et al., NeurIPS 2021), a stronger multi-label
//! baseline in the same harness: the class centres serve as its fixed codebook.
//!
//! For one image with logits `z` (codes `sign z`) and label set `L`:
//! `a_k = s · (cos(z, c_k) − m · [k ∈ L])`, `p = softmax(a)` over all classes, and the
//! loss is the cross-entropy `−Σ_k t_k ln p_k` against a target distribution `t` on `L`:
//! `1/|L|` as published, or ICS's learned per-image weights. The network objective of a
//! batch adds `λ_q · mean_j (|u_j| − 1)²` with `u = tanh z`, as for ICS and CSQ, and is the
//! mean over its images.
//!
//! Gradient: `∂/∂a_k = p_k − t_k` (with `Σ t = 1`), and
//! `∂cos_k/∂z = c_k / (|z| |c_k|) − cos_k · z / |z|²`, `|c_k| = √K`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Zip};

use super::loss::{quantization, quantization_grad, BatchLoss};
use super::real::Real;

/// Floor on `|z|` (a zero logit vector has no direction).
const NORM_FLOOR: f64 = 1e-12;

/// The loss of one image and its gradient with respect to `z`. `centres` (classes, bits)
/// of ±1; `target` (classes) sums to 1 and is zero off `labels`; `labels` ascending.
pub fn orthohash_loss<T: Real>(
    z: ArrayView1<T>,
    centres: ArrayView2<T>,
    labels: &[usize],
    target: ArrayView1<f64>,
    scale: f64,
    margin: f64,
) -> (f64, Array1<T>) {
    let (classes, bits) = centres.dim();
    assert_eq!(z.len(), bits);
    assert_eq!(target.len(), classes);
    let zf: Vec<f64> = z.iter().map(|&v| Real::to_f64(v)).collect();
    let norm = zf.iter().map(|v| v * v).sum::<f64>().sqrt().max(NORM_FLOOR);
    let cnorm = (bits as f64).sqrt();
    let cos: Vec<f64> = centres
        .outer_iter()
        .map(|c| {
            c.iter()
                .zip(&zf)
                .map(|(&c, &z)| Real::to_f64(c) * z)
                .sum::<f64>()
                / (norm * cnorm)
        })
        .collect();
    let mut a: Vec<f64> = cos.iter().map(|&c| scale * c).collect();
    for &k in labels {
        a[k] -= scale * margin;
    }
    let hi = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = hi + a.iter().map(|&x| (x - hi).exp()).sum::<f64>().ln();
    let loss: f64 = (0..classes)
        .filter(|&k| target[k] > 0.0)
        .map(|k| -target[k] * (a[k] - lse))
        .sum();
    // ∂L/∂z = s Σ_k (p_k − t_k) (c_k / (|z|√K) − cos_k z / |z|²).
    let mut grad = vec![0.0f64; bits];
    let mut along_z = 0.0;
    for (k, c) in centres.outer_iter().enumerate() {
        let g = scale * ((a[k] - lse).exp() - target[k]);
        if g == 0.0 {
            continue;
        }
        for (d, &cj) in grad.iter_mut().zip(c) {
            *d += g * Real::to_f64(cj) / (norm * cnorm);
        }
        along_z += g * cos[k];
    }
    for (d, &zj) in grad.iter_mut().zip(&zf) {
        *d -= along_z * zj / (norm * norm);
    }
    (loss, grad.into_iter().map(T::from_f64).collect())
}

/// The network objective of a mini-batch, `mean_i [ L_i + λ_q quant(u_i) ]`, and its
/// gradient with respect to the logits; `targets` (batch, classes), `labels` per row.
#[allow(clippy::too_many_arguments)]
pub fn orthohash_batch_objective<T: Real>(
    z: ArrayView2<T>,
    u: ArrayView2<T>,
    centres: ArrayView2<T>,
    labels: &[&[usize]],
    targets: ArrayView2<f64>,
    scale: f64,
    margin: f64,
    lambda_q: f64,
) -> (BatchLoss, Array2<T>) {
    let (b, k) = z.dim();
    assert_eq!(u.dim(), (b, k));
    assert_eq!(labels.len(), b);
    let mut dz = Array2::<T>::zeros((b, k));
    let (mut centre, mut quant) = (0.0, 0.0);
    let per_image = T::one() / T::from_f64(b as f64);
    let lq = T::from_f64(lambda_q);
    for (i, mut d) in dz.outer_iter_mut().enumerate() {
        let (l, g) = orthohash_loss(z.row(i), centres, labels[i], targets.row(i), scale, margin);
        centre += l;
        let u = u.row(i);
        quant += Real::to_f64(quantization(u));
        let dq = quantization_grad(u);
        Zip::from(&mut d)
            .and(&g)
            .and(&dq)
            .and(&u)
            .for_each(|d, &g, &dq, &u| {
                *d = (g + lq * dq * (T::one() - u * u)) * per_image;
            });
    }
    let loss = BatchLoss {
        centre: centre / b as f64,
        quantization: quant / b as f64,
    };
    (loss, dz)
}

#[cfg(test)]
mod tests {
    use super::super::centres::Centres;
    use super::super::gradcheck::{assert_grad_close, numeric_grad};
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn uniform_target(labels: &[usize], classes: usize) -> Array1<f64> {
        let mut t = Array1::zeros(classes);
        for &k in labels {
            t[k] = 1.0 / labels.len() as f64;
        }
        t
    }

    #[test]
    fn loss_by_hand() {
        // Two classes, 4 bits, z = c_0: cos = (1, 0); label {0}, s = 2, m = 0.5:
        // a = (2·0.5, 0) = (1, 0); loss = −ln(e / (e + 1)).
        let c = Centres::hadamard(2, 4).unwrap().matrix().mapv(f64::from);
        let z = c.row(0).to_owned();
        let (l, _) = orthohash_loss(
            z.view(),
            c.view(),
            &[0],
            uniform_target(&[0], 2).view(),
            2.0,
            0.5,
        );
        let e = std::f64::consts::E;
        assert!((l - -(e / (e + 1.0)).ln()).abs() < 1e-12, "{l}");
        // Scaling z leaves a cosine loss unchanged.
        let (l2, _) = orthohash_loss(
            (&z * 7.0).view(),
            c.view(),
            &[0],
            uniform_target(&[0], 2).view(),
            2.0,
            0.5,
        );
        assert!((l - l2).abs() < 1e-12);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let c = Centres::balanced_random(6, 16, 4, 2)
            .unwrap()
            .matrix()
            .mapv(f64::from);
        for case in 0..20 {
            let z = Array1::from_shape_fn(16, |_| rng.gen_range(-2.0..2.0));
            let labels: Vec<usize> = (0..6).filter(|_| rng.gen_bool(0.4)).collect();
            let labels = if labels.is_empty() {
                vec![case % 6]
            } else {
                labels
            };
            // Uniform, and learned (non-uniform) weights as the target.
            let mut t = uniform_target(&labels, 6);
            if case % 2 == 1 {
                let raw: Vec<f64> = labels.iter().map(|_| rng.gen_range(0.1..1.0)).collect();
                let s: f64 = raw.iter().sum();
                for (&k, r) in labels.iter().zip(&raw) {
                    t[k] = r / s;
                }
            }
            let (scale, margin) = (8.0, 0.2);
            let (_, g) = orthohash_loss(z.view(), c.view(), &labels, t.view(), scale, margin);
            let n = numeric_grad(&z, |x| {
                orthohash_loss(x.view(), c.view(), &labels, t.view(), scale, margin).0
            });
            assert_grad_close(&g, &n, "orthohash dz");
        }
    }

    #[test]
    fn batch_gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(32);
        let c = Centres::balanced_random(5, 12, 3, 4)
            .unwrap()
            .matrix()
            .mapv(f64::from);
        let lists: Vec<Vec<usize>> = vec![vec![0], vec![1, 3], vec![0, 2, 4], vec![4]];
        let labels: Vec<&[usize]> = lists.iter().map(Vec::as_slice).collect();
        let mut t = Array2::<f64>::zeros((4, 5));
        for (i, l) in lists.iter().enumerate() {
            t.row_mut(i).assign(&uniform_target(l, 5));
        }
        let z = Array2::from_shape_fn((4, 12), |_| rng.gen_range(-2.0..2.0));
        let lq = 0.3;
        let f = |z: &Array2<f64>| {
            let u = z.mapv(f64::tanh);
            let (l, _) = orthohash_batch_objective(
                z.view(),
                u.view(),
                c.view(),
                &labels,
                t.view(),
                8.0,
                0.2,
                lq,
            );
            l.centre + lq * l.quantization
        };
        let u = z.mapv(f64::tanh);
        let (_, dz) = orthohash_batch_objective(
            z.view(),
            u.view(),
            c.view(),
            &labels,
            t.view(),
            8.0,
            0.2,
            lq,
        );
        assert_grad_close(&dz, &numeric_grad(&z, f), "orthohash batch dz");
    }
}
