//! The three matrix products back-propagation needs, split over rayon.
//!
//! ndarray's `dot` (matrixmultiply, no BLAS) is single-threaded. Each product here is cut
//! into independent blocks of the *output* (rows of `a·b`, rows of `aᵀ·b`), so each output
//! element is computed by exactly one sequential kernel call with the same reduction order
//! however many threads run: results are bit-for-bit reproducible. Block sizes depend only
//! on the shapes, never on the thread count, for the same reason.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::real::Real;

/// Below this many multiply-adds, one thread is faster than splitting.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// Rows (of the output) per parallel block: enough blocks for a few threads, none tiny.
fn block_rows(rows: usize, inner: usize, cols: usize) -> usize {
    if rows * inner * cols < PARALLEL_MIN_MACS {
        return rows.max(1);
    }
    // Eight blocks keep 2 to 8 threads busy; 8 rows is matrixmultiply's micro-tile height.
    rows.div_ceil(8).max(8)
}

/// `a · b`, `a` of shape (m, k), `b` (k, n).
pub fn matmul<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>) -> Array2<T> {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(k, b.nrows(), "matmul: inner dimensions differ");
    let mut out = Array2::<T>::zeros((m, n));
    let rows = block_rows(m, k, n);
    if rows >= m {
        general_mat_mul(T::one(), &a, &b, T::zero(), &mut out);
        return out;
    }
    out.axis_chunks_iter_mut(Axis(0), rows)
        .into_par_iter()
        .zip(a.axis_chunks_iter(Axis(0), rows).into_par_iter())
        .for_each(|(mut o, a_block)| {
            general_mat_mul(T::one(), &a_block, &b, T::zero(), &mut o);
        });
    out
}

/// `aᵀ · b`, `a` of shape (m, k), `b` (m, n): the weight gradient `xᵀ·dy`. Split over the
/// columns of `a` (rows of the result), so each block still reduces over all of `m`.
pub fn matmul_tn<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>) -> Array2<T> {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(m, b.nrows(), "matmul_tn: row counts differ");
    let mut out = Array2::<T>::zeros((k, n));
    let rows = block_rows(k, m, n);
    if rows >= k {
        general_mat_mul(T::one(), &a.t(), &b, T::zero(), &mut out);
        return out;
    }
    out.axis_chunks_iter_mut(Axis(0), rows)
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut o)| {
            let start = i * rows;
            let a_block = a.slice(s![.., start..start + o.nrows()]);
            general_mat_mul(T::one(), &a_block.t(), &b, T::zero(), &mut o);
        });
    out
}

/// `a · bᵀ`, `a` of shape (m, n), `b` (k, n): the input gradient `dy·Wᵀ`.
pub fn matmul_nt<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>) -> Array2<T> {
    matmul(a, b.t())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |_| rng.gen_range(-1.0..1.0))
    }

    fn naive(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|t| a[[i, t]] * b[[t, j]]).sum()
        })
    }

    #[test]
    fn products_match_naive_on_small_and_split_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // (m, k, n): one single-block shape, and shapes large enough to split, with ragged
        // last blocks.
        for &(m, k, n) in &[(3, 4, 5), (130, 70, 33), (17, 301, 65)] {
            let a = random(m, k, &mut rng);
            let b = random(k, n, &mut rng);
            let want = naive(a.view(), b.view());
            let got = matmul(a.view(), b.view());
            assert!(
                (&got - &want).iter().all(|d| d.abs() < 1e-10),
                "matmul {m}x{k}x{n}"
            );

            let bt = b.t().to_owned();
            let got = matmul_nt(a.view(), bt.view());
            assert!(
                (&got - &want).iter().all(|d| d.abs() < 1e-10),
                "matmul_nt {m}x{k}x{n}"
            );

            let at = a.t().to_owned();
            let got = matmul_tn(at.view(), b.view());
            assert!(
                (&got - &want).iter().all(|d| d.abs() < 1e-10),
                "matmul_tn {m}x{k}x{n}"
            );
        }
    }

    #[test]
    fn split_products_are_bitwise_equal_to_one_kernel_call() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let a = random(256, 300, &mut rng).mapv(|x| x as f32);
        let b = random(300, 64, &mut rng).mapv(|x| x as f32);
        let split = matmul(a.view(), b.view());
        // Each row alone (a 1-row product is never split) gives the same bits.
        for i in [0, 31, 32, 255] {
            let row = a.slice(s![i..i + 1, ..]).dot(&b);
            assert_eq!(row.row(0), split.row(i));
        }
    }
}
