//! Euclidean projection onto the probability simplex (Duchi, Shalev-Shwartz, Singer, Chandra,
//! ICML 2008, Fig. 1).
//!
//! Sort `v` DESCENDING to `s`; `ρ = max{ j : s_j + (1 − Σ_{r≤j} s_r)/j > 0 }`;
//! `τ = (Σ_{r≤ρ} s_r − 1)/ρ`; `w = max(v − τ, 0)`. The sort direction matters: a public
//! ICS-style implementation sorts ascending and returns wrong weights; `(1.5, 0.1)` must
//! project to `(1, 0)`.

/// Projects `v` onto `{ w : w >= 0, Σ w = 1 }`, writing the result to `out`.
///
/// # Panics
/// If `v` is empty, lengths differ, or `v` holds a NaN.
pub fn project_simplex(v: &[f64], out: &mut [f64]) {
    assert!(!v.is_empty(), "project_simplex: empty vector");
    assert_eq!(v.len(), out.len(), "project_simplex: lengths differ");
    let mut s = v.to_vec();
    s.sort_unstable_by(|a, b| b.partial_cmp(a).expect("project_simplex: NaN"));
    let (mut cumsum, mut tau) = (0.0, 0.0);
    for (j, &sj) in s.iter().enumerate() {
        cumsum += sj;
        let t = (cumsum - 1.0) / (j + 1) as f64;
        // s_j − τ_j > 0 ⇔ s_j + (1 − Σ_{r≤j} s_r)/j > 0; the last j where it holds is ρ.
        // The condition holds for j = 1 and, s being sorted, for a prefix only.
        if sj - t > 0.0 {
            tau = t;
        } else {
            break;
        }
    }
    for (o, &x) in out.iter_mut().zip(v) {
        *o = (x - tau).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn proj(v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; v.len()];
        project_simplex(v, &mut out);
        out
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn known_cases() {
        // The case an ascending sort gets wrong.
        assert!(close(&proj(&[1.5, 0.1]), &[1.0, 0.0]));
        assert!(close(&proj(&[0.1, 1.5]), &[0.0, 1.0]));
        // Uniform shift: (0.5, 0.5) + t stays (0.5, 0.5).
        assert!(close(&proj(&[3.0, 3.0]), &[0.5, 0.5]));
        assert!(close(&proj(&[-2.0, -2.0, -2.0, -2.0]), &[0.25; 4]));
        // Interior point: (0.6, 0.5, -0.3) -> tau = 0.05 -> (0.55, 0.45, 0).
        assert!(close(&proj(&[0.6, 0.5, -0.3]), &[0.55, 0.45, 0.0]));
        // Already on the simplex.
        assert!(close(&proj(&[0.2, 0.3, 0.5]), &[0.2, 0.3, 0.5]));
        assert!(close(&proj(&[7.0]), &[1.0]));
    }

    /// Brute force: the projection is the unique feasible point whose residual `v − w` is
    /// constant (`τ`) on the support and `<= τ` off it (the KKT conditions).
    fn is_kkt_point(v: &[f64], w: &[f64]) -> bool {
        let support: Vec<usize> = (0..v.len()).filter(|&i| w[i] > 0.0).collect();
        let tau = v[support[0]] - w[support[0]];
        support.iter().all(|&i| (v[i] - w[i] - tau).abs() < 1e-9)
            && (0..v.len()).all(|i| w[i] > 0.0 || v[i] <= tau + 1e-9)
    }

    #[test]
    fn random_properties() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..2000 {
            let n = rng.gen_range(1..12);
            let scale = [0.01, 1.0, 100.0][rng.gen_range(0..3)];
            let v: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0) * scale).collect();
            let w = proj(&v);
            assert!(w.iter().all(|&x| x >= 0.0), "{v:?} -> {w:?}");
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{v:?} -> {w:?}");
            assert!(close(&proj(&w), &w), "not idempotent: {v:?} -> {w:?}");
            assert!(is_kkt_point(&v, &w), "{v:?} -> {w:?}");
            // Order preserving: v_i > v_j implies w_i >= w_j.
            for i in 0..n {
                for j in 0..n {
                    if v[i] > v[j] {
                        assert!(w[i] >= w[j]);
                    }
                }
            }
        }
    }

    #[test]
    fn closest_point_among_random_simplex_points() {
        // The projection is no farther from v than any other simplex point we try.
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        for _ in 0..200 {
            let v: Vec<f64> = (0..4).map(|_| rng.gen_range(-2.0..2.0)).collect();
            let w = proj(&v);
            let d = |p: &[f64]| p.iter().zip(&v).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
            for _ in 0..200 {
                let raw: Vec<f64> = (0..4).map(|_| rng.gen::<f64>()).collect();
                let s: f64 = raw.iter().sum();
                let p: Vec<f64> = raw.iter().map(|x| x / s).collect();
                assert!(d(&w) <= d(&p) + 1e-12);
            }
        }
    }
}
