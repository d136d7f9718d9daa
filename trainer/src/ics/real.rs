//! The floating-point types the hash head runs on.
//!
//! Training runs in `f32` (the precision of the exported ONNX model); the finite-difference
//! gradient checks run the very same generic code in `f64`, where a central difference is
//! accurate enough to hold hand-written backward passes to a relative error of 1e-4. One
//! generic code path means the checks test what training runs, not a copy of it.

use ndarray::NdFloat;

/// `f32` or `f64`: ndarray's float bound plus lossless-enough conversions from and to `f64`
/// (hyper-parameters are `f64` in the configuration).
pub trait Real: NdFloat + Default + std::iter::Sum {
    /// `x` rounded to this type.
    fn from_f64(x: f64) -> Self;
    /// `self` widened to `f64`.
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
}

/// `ln(1 + e^x)` without overflow for large `x` or loss of precision for very negative `x`.
#[inline]
pub fn softplus<T: Real>(x: T) -> T {
    let zero = T::zero();
    x.max(zero) + (-x.abs()).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softplus_is_stable_and_exact() {
        for &x in &[-800.0f64, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0] {
            let want = if x.abs() < 30.0 {
                (1.0 + x.exp()).ln()
            } else {
                x.max(0.0)
            };
            let got = softplus(x);
            assert!(got.is_finite());
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{x}: {got} vs {want}"
            );
        }
        assert_eq!(softplus(0.0f32), std::f32::consts::LN_2);
    }
}
