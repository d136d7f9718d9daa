//! The centre loss, the quantisation term, the training targets, and their gradients.
//!
//! Reduction (stated once, used everywhere): `l(u, c)` is the **mean over the K bits** of the
//! binary cross-entropy between `(u+1)/2` and `(c+1)/2`,
//! `l(u, c) = −(1/K) Σ_j [ (1+c_j)/2 · ln((1+u_j)/2) + (1−c_j)/2 · ln((1−u_j)/2) ]`,
//! and the quantisation term is `mean_j (|u_j| − 1)²`; the network objective of a mini-batch
//! is the mean over its images of `l(u_i, c̄_i) + λ_q · quant(u_i)`.
//! `l` is affine in `c`, so `l(u, Σ_k w_k c_k) = Σ_k w_k l(u, c_k)`: the ICS weight step
//! only needs the per-label losses.
//!
//! Two forms of `l`:
//! - from `u` ([`centre_loss`], [`centre_loss_grad`]), the formula as written, with `1 ± u`
//!   floored at [`U_FLOOR`]; its `∂l/∂u = −(1/K)[(1+c)/(2(1+u)) − (1−c)/(2(1−u))]` blows up
//!   as `|u| → 1`;
//! - from the logits `z` with `u = tanh z` ([`centre_loss_logits`], [`centre_loss_logits_grad`]),
//!   what training uses: `(1+u)/2 = σ(2z)`, so `−ln((1±u)/2) = softplus(∓2z)`, finite for
//!   every `z`, and the chain through tanh collapses to `∂l/∂z = (u − c)/K`, which is exactly
//!   `∂l/∂u · (1 − u²)` without the `∞ · 0` that `f32` hits once `tanh` saturates to ±1.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};

use super::centres::Centres;
use super::real::{softplus, Real};

/// Floor on `1 ± u` in the `u` form of the loss, so that `ln` stays finite.
pub const U_FLOOR: f64 = 1e-7;

/// `l(u, c)` from `u` (mean over bits).
pub fn centre_loss<T: Real>(u: ArrayView1<T>, c: ArrayView1<T>) -> T {
    let (half, floor) = (T::from_f64(0.5), T::from_f64(U_FLOOR));
    let k = T::from_f64(u.len() as f64);
    let s: T = u
        .iter()
        .zip(c)
        .map(|(&u, &c)| {
            let (p, q) = ((T::one() + u).max(floor), (T::one() - u).max(floor));
            (T::one() + c) * half * (p * half).ln() + (T::one() - c) * half * (q * half).ln()
        })
        .sum();
    -s / k
}

/// `∂l/∂u` of [`centre_loss`].
pub fn centre_loss_grad<T: Real>(u: ArrayView1<T>, c: ArrayView1<T>) -> Array1<T> {
    let (half, floor) = (T::from_f64(0.5), T::from_f64(U_FLOOR));
    let k = T::from_f64(u.len() as f64);
    Zip::from(&u).and(&c).map_collect(|&u, &c| {
        let (p, q) = (T::one() + u, T::one() - u);
        // d/du of ln(max(1+u, ε)/2) is 1/(1+u) above the floor, 0 on it.
        let dp = if p > floor { T::one() / p } else { T::zero() };
        let dq = if q > floor { -T::one() / q } else { T::zero() };
        -((T::one() + c) * half * dp + (T::one() - c) * half * dq) / k
    })
}

/// `l(tanh z, c)` computed from the logits, stable for every `z`.
pub fn centre_loss_logits<T: Real>(z: ArrayView1<T>, c: ArrayView1<T>) -> T {
    let (half, two) = (T::from_f64(0.5), T::from_f64(2.0));
    let k = T::from_f64(z.len() as f64);
    let s: T = z
        .iter()
        .zip(c)
        .map(|(&z, &c)| {
            (T::one() + c) * half * softplus(-two * z) + (T::one() - c) * half * softplus(two * z)
        })
        .sum();
    s / k
}

/// `∂l/∂z` of [`centre_loss_logits`]: `(u − c)/K` with `u = tanh z`.
pub fn centre_loss_logits_grad<T: Real>(u: ArrayView1<T>, c: ArrayView1<T>) -> Array1<T> {
    let k = T::from_f64(u.len() as f64);
    Zip::from(&u).and(&c).map_collect(|&u, &c| (u - c) / k)
}

/// `mean_j (|u_j| − 1)²`.
pub fn quantization<T: Real>(u: ArrayView1<T>) -> T {
    let k = T::from_f64(u.len() as f64);
    u.iter().map(|&u| (u.abs() - T::one()).powi(2)).sum::<T>() / k
}

/// `∂/∂u` of [`quantization`]: `(2/K)(|u| − 1) sign(u)` (the kink at `u = 0` takes
/// `sign(0) = 0`, one of its subgradients).
pub fn quantization_grad<T: Real>(u: ArrayView1<T>) -> Array1<T> {
    let k = T::from_f64(u.len() as f64);
    let two = T::from_f64(2.0);
    u.mapv(|u| {
        let sign = if u > T::zero() {
            T::one()
        } else if u < T::zero() {
            -T::one()
        } else {
            T::zero()
        };
        two * (u.abs() - T::one()) * sign / k
    })
}

/// Mean terms of one mini-batch objective.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLoss {
    /// Mean over images of `l(u_i, c̄_i)`.
    pub centre: f64,
    /// Mean over images of `mean_j (|u_ij| − 1)²`, before `λ_q`.
    pub quantization: f64,
}

/// The network objective of a mini-batch, `mean_i [ l(u_i, t_i) + λ_q quant(u_i) ]`, and its
/// gradient with respect to the logits `z` (rows = images). `u` must be `tanh(z)`.
pub fn batch_objective<T: Real>(
    z: ArrayView2<T>,
    u: ArrayView2<T>,
    targets: ArrayView2<T>,
    lambda_q: f64,
) -> (BatchLoss, Array2<T>) {
    let (b, k) = z.dim();
    assert_eq!(u.dim(), (b, k));
    assert_eq!(targets.dim(), (b, k));
    let mut dz = Array2::<T>::zeros((b, k));
    let (mut centre, mut quant) = (0.0, 0.0);
    let per_image = T::one() / T::from_f64(b as f64);
    let lq = T::from_f64(lambda_q);
    for (((z, u), t), mut d) in z
        .outer_iter()
        .zip(u.outer_iter())
        .zip(targets.outer_iter())
        .zip(dz.outer_iter_mut())
    {
        centre += centre_loss_logits(z, t).to_f64();
        quant += quantization(u).to_f64();
        let dl = centre_loss_logits_grad(u, t);
        let dq = quantization_grad(u);
        Zip::from(&mut d)
            .and(&dl)
            .and(&dq)
            .and(&u)
            .for_each(|d, &dl, &dq, &u| {
                // The quantisation term goes through tanh: ∂u/∂z = 1 − u².
                *d = (dl + lq * dq * (T::one() - u * u)) * per_image;
            });
    }
    let loss = BatchLoss {
        centre: centre / b as f64,
        quantization: quant / b as f64,
    };
    (loss, dz)
}

/// `l(u, c_k)` for each label `k` of `labels`, from the logits of one image, in `f64`.
/// With `c_kj = ±1`, `l(u, c_k) = (1/K) Σ_j softplus(−2 c_kj z_j)`.
pub fn label_losses(z: ArrayView1<f32>, centres: &Centres, labels: &[usize]) -> Vec<f64> {
    let k = z.len() as f64;
    // softplus(−2z) for bits where the centre is +1, softplus(2z) where it is −1.
    let pos: Vec<f64> = z.iter().map(|&z| softplus(-2.0 * f64::from(z))).collect();
    let neg: Vec<f64> = z.iter().map(|&z| softplus(2.0 * f64::from(z))).collect();
    labels
        .iter()
        .map(|&label| {
            let c = centres.centre(label);
            let s: f64 = c
                .iter()
                .enumerate()
                .map(|(j, &cj)| if cj > 0.0 { pos[j] } else { neg[j] })
                .sum();
            s / k
        })
        .collect()
}

/// ICS targets: `c̄_i = Σ_k w_ik c_k` for the weight rows of a batch, (batch, classes) ·
/// (classes, bits).
pub fn soft_centroids(weights: ArrayView2<f64>, centres: &Centres) -> Array2<f32> {
    weights.mapv(|w| w as f32).dot(centres.matrix())
}

/// CSQ targets: `sign(mean_{k ∈ L_i} c_k)`, with bits whose mean is exactly 0 taking the bit of
/// `tie_break` (one ±1 vector drawn once per run).
pub fn csq_centroids(labels: &[&[usize]], centres: &Centres, tie_break: &[f32]) -> Array2<f32> {
    let bits = centres.bits();
    assert_eq!(tie_break.len(), bits);
    let mut out = Array2::<f32>::zeros((labels.len(), bits));
    for (mut row, l) in out.axis_iter_mut(Axis(0)).zip(labels) {
        for &k in *l {
            row += &centres.centre(k);
        }
        // Sums of ±1 are exact integers in f32, so "exactly 0" is a safe test.
        Zip::from(&mut row).and(tie_break).for_each(|x, &t| {
            *x = if *x > 0.0 {
                1.0
            } else if *x < 0.0 {
                -1.0
            } else {
                t
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::config::CentreMethod;
    use super::super::gradcheck::{assert_grad_close, numeric_grad};
    use super::*;
    use ndarray::{array, Array1};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_vec(n: usize, lo: f64, hi: f64, rng: &mut ChaCha8Rng) -> Array1<f64> {
        Array1::from_shape_fn(n, |_| rng.gen_range(lo..hi))
    }

    #[test]
    fn gradient_of_u_form_with_soft_targets() {
        let mut rng = ChaCha8Rng::seed_from_u64(20);
        for _ in 0..20 {
            let u = random_vec(16, -0.95, 0.95, &mut rng);
            let c = random_vec(16, -1.0, 1.0, &mut rng); // soft target
            let g = centre_loss_grad(u.view(), c.view());
            let n = numeric_grad(&u, |x| centre_loss(x.view(), c.view()));
            assert_grad_close(&g, &n, "centre_loss du");
        }
    }

    #[test]
    fn gradient_of_logit_form_and_agreement_with_u_form() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        for _ in 0..20 {
            let z = random_vec(16, -3.0, 3.0, &mut rng);
            let c = random_vec(16, -1.0, 1.0, &mut rng);
            let u = z.mapv(f64::tanh);
            let g = centre_loss_logits_grad(u.view(), c.view());
            let n = numeric_grad(&z, |x| centre_loss_logits(x.view(), c.view()));
            assert_grad_close(&g, &n, "centre_loss dz");
            // Same loss as the u form, and the same gradient through tanh.
            let lu = centre_loss(u.view(), c.view());
            assert!((lu - centre_loss_logits(z.view(), c.view())).abs() < 1e-12);
            let chain = centre_loss_grad(u.view(), c.view()) * u.mapv(|u| 1.0 - u * u);
            assert_grad_close(&g, &chain, "chain through tanh");
        }
    }

    #[test]
    fn logit_form_is_finite_where_tanh_saturates() {
        let z = array![30.0f32, -30.0, 100.0];
        let u = z.mapv(f32::tanh);
        assert_eq!(u, array![1.0f32, -1.0, 1.0]); // f32 tanh is exactly ±1 here
        let c = array![1.0f32, 1.0, -1.0];
        let l = centre_loss_logits(z.view(), c.view());
        // Bit 0 is right (≈0), bit 1 costs 60, bit 2 costs 200: mean 260/3.
        assert!((l - 260.0 / 3.0).abs() < 1e-3, "{l}");
        let g = centre_loss_logits_grad(u.view(), c.view());
        assert!(g.iter().all(|x| x.is_finite()));
        assert_eq!(g, array![0.0f32, -2.0 / 3.0, 2.0 / 3.0]);
    }

    #[test]
    fn loss_values_by_hand() {
        // u = 0: every bit costs ln 2 whatever the target.
        let u = Array1::<f64>::zeros(4);
        let c = array![1.0, -1.0, 0.3, 0.0];
        assert!((centre_loss(u.view(), c.view()) - 2f64.ln()).abs() < 1e-12);
        // u = c = ±0.5 (one bit): −[0.75 ln 0.75 + 0.25 ln 0.25].
        let want = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
        assert!((centre_loss(array![0.5].view(), array![0.5].view()) - want).abs() < 1e-12);
        assert!(
            (quantization(array![0.5f64, -1.0, 0.0].view()) - (0.25 + 0.0 + 1.0) / 3.0).abs()
                < 1e-12
        );
    }

    #[test]
    fn gradient_of_quantization() {
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        for _ in 0..20 {
            // Away from the kink at 0.
            let u = random_vec(16, 0.05, 0.95, &mut rng)
                .iter()
                .enumerate()
                .map(|(j, &x)| if j % 2 == 0 { x } else { -x })
                .collect::<Array1<f64>>();
            let g = quantization_grad(u.view());
            let n = numeric_grad(&u, |x| quantization(x.view()));
            assert_grad_close(&g, &n, "quantization du");
        }
    }

    #[test]
    fn gradient_of_batch_objective() {
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        let (b, k) = (5, 12);
        let z = Array2::from_shape_fn((b, k), |_| rng.gen_range(-2.0..2.0));
        let t = Array2::from_shape_fn((b, k), |_| rng.gen_range(-1.0..1.0));
        let lq = 0.3;
        let f = |z: &Array2<f64>| {
            let u = z.mapv(f64::tanh);
            let (l, _) = batch_objective(z.view(), u.view(), t.view(), lq);
            l.centre + lq * l.quantization
        };
        let u = z.mapv(f64::tanh);
        let (_, dz) = batch_objective(z.view(), u.view(), t.view(), lq);
        let n = numeric_grad(&z, f);
        assert_grad_close(&dz, &n, "batch objective dz");
    }

    #[test]
    fn affine_in_the_target() {
        let centres = Centres::balanced_random(4, 16, 4, 1).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(24);
        let z = Array1::from_shape_fn(16, |_| rng.gen_range(-2.0f32..2.0));
        let labels = [0, 2, 3];
        let per_label = label_losses(z.view(), &centres, &labels);
        let w = [0.2, 0.5, 0.3];
        let mut weights = Array2::<f64>::zeros((1, 4));
        for (&k, &x) in labels.iter().zip(&w) {
            weights[[0, k]] = x;
        }
        let target = soft_centroids(weights.view(), &centres);
        let zd = z.mapv(f64::from);
        let direct = centre_loss_logits(zd.view(), target.row(0).mapv(f64::from).view());
        let mixed: f64 = per_label.iter().zip(&w).map(|(l, w)| l * w).sum();
        assert!((direct - mixed).abs() < 1e-6, "{direct} vs {mixed}");
        for (j, &k) in labels.iter().enumerate() {
            let c = centres.centre(k).mapv(f64::from);
            assert!((per_label[j] - centre_loss_logits(zd.view(), c.view())).abs() < 1e-9);
        }
    }

    #[test]
    fn csq_targets_use_the_tie_break_only_on_ties() {
        let m = array![
            [1.0f32, 1.0, -1.0, -1.0],
            [1.0, -1.0, 1.0, -1.0],
            [1.0, 1.0, 1.0, -1.0]
        ];
        let centres = Centres::from_matrix(CentreMethod::BalancedRandom, m).unwrap();
        let tie = [-1.0f32, -1.0, 1.0, 1.0];
        let t = csq_centroids(&[&[0, 1], &[0, 1, 2], &[2]], &centres, &tie);
        // Labels {0,1}: sums (2, 0, 0, -2): bits 1, 2 tie -> -1, +1.
        assert_eq!(t.row(0).to_vec(), vec![1.0, -1.0, 1.0, -1.0]);
        // Labels {0,1,2}: sums (3, 1, 1, -3): no ties.
        assert_eq!(t.row(1).to_vec(), vec![1.0, 1.0, 1.0, -1.0]);
        assert_eq!(t.row(2).to_vec(), vec![1.0, 1.0, 1.0, -1.0]);
    }
}
