//! Selectivity of radius conditions for the planner: the chance that a code lies within
//! radius r of the query if its bits were independent and fair, a binomial tail. Learned
//! codes are clustered, so real radius queries return more than this; the estimate's job is
//! to rank small radii (index) against large ones (sequential scan), which it does.

/// Floor: the estimate is never "no rows at all".
pub const MIN_SELECTIVITY: f64 = 1e-7;

/// P(Binomial(bits, 1/2) <= radius), at least [`MIN_SELECTIVITY`].
pub fn binomial_tail(bits: u32, radius: u32) -> f64 {
    if radius >= bits {
        return 1.0;
    }
    let n = bits as f64;
    let ln2 = std::f64::consts::LN_2;
    let mut log_c = 0.0; // ln C(bits, i), in log space: 2^-4096 underflows
    let mut sum = 0.0;
    for i in 0..=radius {
        if i > 0 {
            log_c += (n - i as f64 + 1.0).ln() - (i as f64).ln();
        }
        sum += (log_c - n * ln2).exp();
    }
    sum.clamp(MIN_SELECTIVITY, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_values() {
        assert_eq!(binomial_tail(8, 8), 1.0);
        assert!((binomial_tail(8, 0) - 1.0 / 256.0).abs() < 1e-12);
        assert!((binomial_tail(4, 2) - 11.0 / 16.0).abs() < 1e-12);
        // P(X <= 32) for X ~ Binomial(64, 1/2) = 0.5 + P(X = 32) / 2.
        assert!((binomial_tail(64, 32) - 0.549_673_376_9).abs() < 1e-9);
        assert_eq!(binomial_tail(4096, 3), MIN_SELECTIVITY);
        assert!(binomial_tail(64, 14) < binomial_tail(64, 15));
        assert_eq!(binomial_tail(64, 8), MIN_SELECTIVITY);
    }
}
