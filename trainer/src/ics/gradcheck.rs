//! Finite-difference gradient checking for the hand-written backward passes (tests only).
//!
//! Central differences in `f64` with step 1e-5: truncation error ~1e-10, rounding ~1e-11 per
//! unit of `f`, far below the 1e-4 relative tolerance, so a wrong factor or sign anywhere in
//! a backward pass fails the check while a correct one passes reliably.

use ndarray::{Array, Dimension};

/// Step of the central difference.
const H: f64 = 1e-5;
/// Largest accepted relative error per element.
pub const TOLERANCE: f64 = 1e-4;
/// Below this magnitude the error is measured absolutely (relative error of ~0 is noise).
const SCALE_FLOOR: f64 = 1e-4;

/// `∂f/∂x` by central differences.
pub fn numeric_grad<D: Dimension>(
    x: &Array<f64, D>,
    f: impl Fn(&Array<f64, D>) -> f64,
) -> Array<f64, D> {
    // Standard layout: flat index t is the t-th element in logical order for both arrays.
    let mut g = Array::zeros(x.raw_dim());
    let mut probe = x.as_standard_layout().into_owned();
    for t in 0..probe.len() {
        let orig = probe.as_slice().expect("standard layout")[t];
        probe.as_slice_mut().expect("standard layout")[t] = orig + H;
        let up = f(&probe);
        probe.as_slice_mut().expect("standard layout")[t] = orig - H;
        let down = f(&probe);
        probe.as_slice_mut().expect("standard layout")[t] = orig;
        g.as_slice_mut().expect("standard layout")[t] = (up - down) / (2.0 * H);
    }
    g
}

/// Largest element-wise `|a − n| / max(|a|, |n|, floor)`.
pub fn max_relative_error<D: Dimension>(analytic: &Array<f64, D>, numeric: &Array<f64, D>) -> f64 {
    assert_eq!(analytic.shape(), numeric.shape());
    analytic
        .iter()
        .zip(numeric)
        .map(|(&a, &n)| (a - n).abs() / a.abs().max(n.abs()).max(SCALE_FLOOR))
        .fold(0.0, f64::max)
}

/// Panics, naming `what`, when the analytic gradient is off by more than [`TOLERANCE`]. Also
/// refuses an all-zero numeric gradient, which would make the check vacuous.
pub fn assert_grad_close<D: Dimension>(
    analytic: &Array<f64, D>,
    numeric: &Array<f64, D>,
    what: &str,
) {
    assert!(
        numeric.iter().any(|&x| x.abs() > SCALE_FLOOR),
        "{what}: numeric gradient is ~0 everywhere, the check would prove nothing"
    );
    let e = max_relative_error(analytic, numeric);
    assert!(
        e < TOLERANCE,
        "{what}: relative error {e:e} >= {TOLERANCE:e}"
    );
}

#[test]
fn the_check_catches_a_wrong_gradient() {
    let x = ndarray::array![0.3, -1.2, 2.0];
    let f = |x: &ndarray::Array1<f64>| x.iter().map(|v| v.powi(3)).sum::<f64>();
    let n = numeric_grad(&x, f);
    assert_grad_close(&x.mapv(|v| 3.0 * v * v), &n, "cube");
    // Off by 0.1% on one element: refused.
    let mut wrong = x.mapv(|v| 3.0 * v * v);
    wrong[1] *= 1.001;
    assert!(max_relative_error(&wrong, &n) > TOLERANCE);
}
