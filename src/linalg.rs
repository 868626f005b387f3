//! Dense vector kernels shared by the iterative solvers (Lanczos, CG).
//!
//! Reductions split the vectors into fixed blocks of [`BLOCK`] elements, reduce each block in
//! parallel and add the block results in order, so results do not depend on the thread count.

use ndarray_linalg::{Lapack, Scalar};
use num_complex::Complex64;
use rayon::prelude::*;

/// Block length of the deterministic parallel reductions.
pub const BLOCK: usize = 1 << 14;

/// A scalar the iterative solvers work with: `f64` for real problems, `Complex64` otherwise.
pub trait Field: Scalar<Real = f64> + Lapack + Send + Sync + Default + 'static {
    /// The real part for `f64`, the number itself for `Complex64`.
    fn from_c64(c: Complex64) -> Self;
}

impl Field for f64 {
    #[inline]
    fn from_c64(c: Complex64) -> Self {
        c.re
    }
}

impl Field for Complex64 {
    #[inline]
    fn from_c64(c: Complex64) -> Self {
        c
    }
}

/// `⟨x, y⟩ = Σ_i conj(x_i) y_i`, deterministic for any thread count.
pub fn dot<T: Field>(x: &[T], y: &[T]) -> T {
    let partial: Vec<T> = x
        .par_chunks(BLOCK)
        .zip(y.par_chunks(BLOCK))
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .fold(T::zero(), |acc, (&u, &v)| acc + u.conj() * v)
        })
        .collect();
    partial.into_iter().fold(T::zero(), |acc, p| acc + p)
}

/// `‖x‖₂`, deterministic.
pub fn norm<T: Field>(x: &[T]) -> f64 {
    let partial: Vec<f64> = x
        .par_chunks(BLOCK)
        .map(|a| a.iter().map(|v| v.square()).sum::<f64>())
        .collect();
    partial.into_iter().sum::<f64>().sqrt()
}

/// `y ← y + a·x`.
pub fn axpy<T: Field>(a: T, x: &[T], y: &mut [T]) {
    y.par_chunks_mut(BLOCK)
        .zip(x.par_chunks(BLOCK))
        .for_each(|(yb, xb)| {
            for (u, &v) in yb.iter_mut().zip(xb) {
                *u += a * v;
            }
        });
}

/// `x ← a·x`.
pub fn scale<T: Field>(a: T, x: &mut [T]) {
    x.par_chunks_mut(BLOCK)
        .for_each(|b| b.iter_mut().for_each(|v| *v *= a));
}

/// Projects `w` onto the orthogonal complement of the orthonormal `basis` (one classical
/// Gram–Schmidt pass, all inner products in one sweep over memory) and returns the coefficients
/// `c_i = ⟨basis_i, w⟩` that were removed.
pub fn orthogonalize<T: Field>(basis: &[Vec<T>], w: &mut [T]) -> Vec<T> {
    let k = basis.len();
    if k == 0 {
        return vec![];
    }
    let n_blocks = w.len().div_ceil(BLOCK);
    let partial: Vec<Vec<T>> = (0..n_blocks)
        .into_par_iter()
        .map(|b| {
            let range = b * BLOCK..((b + 1) * BLOCK).min(w.len());
            let wb = &w[range.clone()];
            basis
                .iter()
                .map(|v| {
                    v[range.clone()]
                        .iter()
                        .zip(wb)
                        .fold(T::zero(), |acc, (&u, &x)| acc + u.conj() * x)
                })
                .collect()
        })
        .collect();
    let mut coeffs = vec![T::zero(); k];
    for p in partial {
        for (c, v) in coeffs.iter_mut().zip(p) {
            *c += v;
        }
    }
    w.par_chunks_mut(BLOCK).enumerate().for_each(|(b, wb)| {
        let start = b * BLOCK;
        let len = wb.len();
        for (v, &c) in basis.iter().zip(&coeffs) {
            for (x, &u) in wb.iter_mut().zip(&v[start..start + len]) {
                *x -= c * u;
            }
        }
    });
    coeffs
}

unsafe extern "C" {
    /// OpenBLAS: number of threads its kernels use.
    fn openblas_set_num_threads(n: std::ffi::c_int);
}

/// Makes OpenBLAS single-threaded (once per process). Parallelism comes from rayon; OpenBLAS
/// threads would compete with it for the same cores, and multithreaded OpenBLAS LAPACK calls
/// from threads with small stacks crash (seen with dgesv from a 2 MiB test thread). Every
/// function that calls BLAS/LAPACK calls this first.
pub fn single_threaded_blas() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: a plain setter of OpenBLAS's global thread count, called before any concurrent use.
    ONCE.call_once(|| unsafe { openblas_set_num_threads(1) });
}
