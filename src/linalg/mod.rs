//! The one door to dense linear algebra.
//!
//! Every dense operation of the program goes through this module: matrix products
//! ([`matmul`], [`matvec`]), the Hermitian eigensolver ([`eigh`]), Cholesky ([`Cholesky`]),
//! LU solves ([`lu_solve`]), the positive semi-definite solve with a pseudo-inverse fallback
//! ([`solve_psd`]), singular values and determinants, plus the deterministic vector kernels of the
//! iterative solvers (Lanczos, CG).
//!
//! **Backends**, chosen at build time behind the same API:
//! - default: [faer](https://docs.rs/faer) — pure Rust, runtime SIMD dispatch, rayon; no system
//!   BLAS/LAPACK, so the result does not depend on which kernels a system library picks for the
//!   CPU (Debian 12's OpenBLAS 0.3.21 reads out of bounds in `zgemv` on AMD EPYC);
//! - feature `lapack`: ndarray-linalg over a system LAPACK/BLAS (OpenBLAS, or a vendor library
//!   linked under its name), for clusters with a tuned vendor library.
//!
//! Arrays are ndarray's; the faer backend borrows them without copying when they are in standard
//! (row-major) layout and copies otherwise.
//!
//! ```
//! use ndarray::array;
//! use nqs::linalg;
//! let a = array![[2.0, 1.0], [1.0, 2.0]];
//! let (values, vectors) = linalg::eigh(a.view()).unwrap();
//! assert!((values[0] - 1.0).abs() < 1e-14 && (values[1] - 3.0).abs() < 1e-14);
//! assert_eq!(vectors.dim(), (2, 2));
//! ```

#[cfg(not(feature = "lapack"))]
mod faer_backend;
#[cfg(not(feature = "lapack"))]
use faer_backend as backend;
#[cfg(feature = "lapack")]
mod lapack_backend;
#[cfg(feature = "lapack")]
use lapack_backend as backend;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use num_complex::Complex64;
use rayon::prelude::*;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// Name of the dense linear-algebra backend this binary was built with.
pub fn backend_name() -> &'static str {
    backend::NAME
}

thread_local! {
    static SEQUENTIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every linear-algebra call it makes on this thread sequential (the faer
/// backend; a `lapack` build calls its library as it is configured): for work inside a
/// parallel region (one block of rows per task), whose tasks already use every thread.
/// Elsewhere large operations use the rayon pool.
///
/// ```
/// use ndarray::Array2;
/// use nqs::linalg::{matmul, sequential, Op};
/// let a = Array2::<f64>::ones((300, 300));
/// let mut c = Array2::zeros((300, 300));
/// sequential(|| matmul(c.view_mut(), false, 1.0, a.view(), Op::Plain, a.view(), Op::Plain));
/// assert_eq!(c[[0, 0]], 300.0);
/// ```
pub fn sequential<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the outer setting when dropped (also when `f` panics).
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SEQUENTIAL.with(|flag| flag.set(self.0));
        }
    }
    let _restore = Restore(SEQUENTIAL.with(|flag| flag.replace(true)));
    f()
}

/// Whether this thread is inside [`sequential`].
#[cfg(not(feature = "lapack"))]
fn in_sequential_section() -> bool {
    SEQUENTIAL.with(std::cell::Cell::get)
}

/// Block length of the deterministic parallel reductions.
pub const BLOCK: usize = 1 << 14;

/// Failures of a dense factorization or decomposition.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LinalgError {
    /// The input holds NaN or infinite entries.
    #[error("{operation}: the matrix has non-finite entries")]
    NonFinite { operation: &'static str },
    /// Cholesky met a non-positive pivot: the matrix is not positive definite.
    #[error("Cholesky: the matrix is not positive definite (pivot {pivot})")]
    NotPositiveDefinite { pivot: usize },
    /// The LU factors give a non-finite solution: the matrix is singular.
    #[error("LU solve: the matrix is singular")]
    Singular,
    /// An iterative decomposition (eigenvalues, SVD) did not converge.
    #[error("{operation}: no convergence")]
    NoConvergence { operation: &'static str },
}

/// A scalar of the dense kernels: `f64` for real problems, `Complex64` otherwise.
pub trait Field:
    Copy
    + Send
    + Sync
    + Default
    + PartialEq
    + std::fmt::Debug
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + std::iter::Sum
    + num_traits::Zero
    + num_traits::One
    + backend::Scalar
{
    const ZERO: Self;
    const ONE: Self;
    /// Complex conjugate (the identity for `f64`).
    fn conj(self) -> Self;
    /// Real part.
    fn re(self) -> f64;
    /// `|x|²`.
    fn abs2(self) -> f64;
    /// `x` as an element of the field (imaginary part zero).
    fn from_re(x: f64) -> Self;
    /// The real part for `f64`, the number itself for `Complex64`.
    fn from_c64(c: Complex64) -> Self;
    fn is_finite(self) -> bool;
}

impl Field for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline]
    fn conj(self) -> Self {
        self
    }
    #[inline]
    fn re(self) -> f64 {
        self
    }
    #[inline]
    fn abs2(self) -> f64 {
        self * self
    }
    #[inline]
    fn from_re(x: f64) -> Self {
        x
    }
    #[inline]
    fn from_c64(c: Complex64) -> Self {
        c.re
    }
    #[inline]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

impl Field for Complex64 {
    const ZERO: Self = Complex64::new(0.0, 0.0);
    const ONE: Self = Complex64::new(1.0, 0.0);
    #[inline]
    fn conj(self) -> Self {
        Complex64::conj(&self)
    }
    #[inline]
    fn re(self) -> f64 {
        self.re
    }
    #[inline]
    fn abs2(self) -> f64 {
        self.norm_sqr()
    }
    #[inline]
    fn from_re(x: f64) -> Self {
        Complex64::new(x, 0.0)
    }
    #[inline]
    fn from_c64(c: Complex64) -> Self {
        c
    }
    #[inline]
    fn is_finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }
}

/// How a matrix operand enters a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `A`.
    Plain,
    /// `Aᵀ`.
    Transpose,
    /// `A†` (conjugate transpose; the transpose for real matrices).
    Adjoint,
}

/// `C ← α·op(A)·op(B)` (or `C ← C + α·op(A)·op(B)` when `accumulate`), on the rayon pool.
///
/// `C` must be in standard (row-major, contiguous) layout; `A` and `B` are borrowed without a
/// copy when they are, and copied otherwise.
///
/// ```
/// use ndarray::{array, Array2};
/// use nqs::linalg::{matmul, Op};
/// let a = array![[1.0, 2.0], [3.0, 4.0]];
/// let mut c = Array2::zeros((2, 2));
/// matmul(c.view_mut(), false, 1.0, a.view(), Op::Adjoint, a.view(), Op::Plain);
/// assert_eq!(c, array![[10.0, 14.0], [14.0, 20.0]]);
/// ```
pub fn matmul<T: Field>(
    c: ArrayViewMut2<T>,
    accumulate: bool,
    alpha: T,
    a: ArrayView2<T>,
    op_a: Op,
    b: ArrayView2<T>,
    op_b: Op,
) {
    let rows = |m: &ArrayView2<T>, op: Op| {
        if op == Op::Plain {
            m.dim()
        } else {
            (m.ncols(), m.nrows())
        }
    };
    let (m, k) = rows(&a, op_a);
    let (k2, n) = rows(&b, op_b);
    assert!(
        k == k2 && c.dim() == (m, n),
        "matmul: shapes {:?}·{:?} into {:?}",
        (m, k),
        (k2, n),
        c.dim()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            let mut c = c;
            c.fill(T::ZERO);
        }
        return;
    }
    backend::matmul(c, accumulate, alpha, a, op_a, b, op_b);
}

/// `y ← α·op(A)·x` (or `y ← y + α·op(A)·x` when `accumulate`).
pub fn matvec<T: Field>(
    y: &mut [T],
    accumulate: bool,
    alpha: T,
    a: ArrayView2<T>,
    op: Op,
    x: &[T],
) {
    let n_y = y.len();
    let n_x = x.len();
    let y = ArrayViewMut2::from_shape((n_y, 1), y).expect("a slice is contiguous");
    let x = ArrayView2::from_shape((n_x, 1), x).expect("a slice is contiguous");
    matmul(y, accumulate, alpha, a, op, x, Op::Plain);
}

fn check_finite<T: Field>(a: &ArrayView2<T>, operation: &'static str) -> Result<(), LinalgError> {
    if a.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(LinalgError::NonFinite { operation })
    }
}

/// [`check_finite`] of the lower triangle (all that the Hermitian factorizations read).
fn check_finite_lower<T: Field>(
    a: &ArrayView2<T>,
    operation: &'static str,
) -> Result<(), LinalgError> {
    let finite = a
        .outer_iter()
        .enumerate()
        .all(|(i, row)| row.iter().take(i + 1).all(|x| x.is_finite()));
    if finite {
        Ok(())
    } else {
        Err(LinalgError::NonFinite { operation })
    }
}

/// Eigenvalues (ascending) and orthonormal eigenvectors (the columns) of a Hermitian matrix;
/// only the lower triangle is read.
pub fn eigh<T: Field>(a: ArrayView2<T>) -> Result<(Vec<f64>, Array2<T>), LinalgError> {
    assert_eq!(a.nrows(), a.ncols(), "eigh: square matrix expected");
    check_finite_lower(&a, "Hermitian eigensolver")?;
    if a.nrows() == 0 {
        return Ok((vec![], Array2::zeros((0, 0))));
    }
    backend::eigh(a)
}

/// `c ← a a†` on the lower triangle of c (the Gram matrix of the rows of a; backends may also
/// fill the upper triangle): half the work of [`matmul`] with the faer backend.
pub fn gram_lower<T: Field>(c: ArrayViewMut2<T>, a: ArrayView2<T>) {
    assert_eq!(c.dim(), (a.nrows(), a.nrows()), "gram_lower: output shape");
    if a.nrows() > 0 {
        backend::gram_lower(c, a);
    }
}

/// Eigenvalues (ascending) of a Hermitian matrix; only the lower triangle is read.
pub fn eigvalsh<T: Field>(a: ArrayView2<T>) -> Result<Vec<f64>, LinalgError> {
    assert_eq!(a.nrows(), a.ncols(), "eigvalsh: square matrix expected");
    check_finite_lower(&a, "Hermitian eigensolver")?;
    if a.nrows() == 0 {
        return Ok(vec![]);
    }
    backend::eigvalsh(a)
}

/// The Cholesky factorization `A = L L†` of a Hermitian positive-definite matrix.
pub struct Cholesky<T: Field> {
    /// L in the lower triangle.
    l: Array2<T>,
}

impl<T: Field> Cholesky<T> {
    /// Factorizes a copy of `a` (only the lower triangle is read).
    pub fn new(a: ArrayView2<T>) -> Result<Self, LinalgError> {
        let mut l = a.as_standard_layout().into_owned();
        factor_in_place(l.view_mut())?;
        Ok(Cholesky { l })
    }

    /// Solves `A x = b` in place (`b` becomes `x`).
    pub fn solve_in_place(&self, b: &mut [T]) {
        solve_factored(self.l.view(), b);
    }
}

/// Factorizes `a = L L†` in its own storage (standard layout, only the lower triangle is read;
/// L overwrites it).
fn factor_in_place<T: Field>(a: ArrayViewMut2<T>) -> Result<(), LinalgError> {
    assert_eq!(a.nrows(), a.ncols(), "Cholesky: square matrix expected");
    check_finite_lower(&a.view(), "Cholesky")?;
    if a.nrows() == 0 {
        return Ok(());
    }
    backend::cholesky_in_place(a)
}

/// Solves `L L† x = b` in place with L in the lower triangle of `l`.
fn solve_factored<T: Field>(l: ArrayView2<T>, b: &mut [T]) {
    assert_eq!(b.len(), l.nrows(), "Cholesky solve: right-hand side length");
    if !b.is_empty() {
        backend::cholesky_solve(l, b);
    }
}

/// Solves the square system `A x = b` by LU with partial pivoting (`b` becomes `x`).
pub fn lu_solve<T: Field>(a: ArrayView2<T>, b: &mut [T]) -> Result<(), LinalgError> {
    assert_eq!(a.nrows(), a.ncols(), "LU: square matrix expected");
    assert_eq!(a.nrows(), b.len(), "LU: right-hand side length");
    check_finite(&a, "LU solve")?;
    if b.is_empty() {
        return Ok(());
    }
    backend::lu_solve(a, b)?;
    if b.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(LinalgError::Singular)
    }
}

/// Singular values (descending) of a real matrix.
pub fn singular_values(a: ArrayView2<f64>) -> Result<Vec<f64>, LinalgError> {
    check_finite(&a, "SVD")?;
    if a.is_empty() {
        return Ok(vec![]);
    }
    backend::singular_values(a)
}

/// Determinant of a real square matrix.
pub fn determinant(a: ArrayView2<f64>) -> Result<f64, LinalgError> {
    assert_eq!(a.nrows(), a.ncols(), "determinant: square matrix expected");
    check_finite(&a, "determinant")?;
    if a.nrows() == 0 {
        return Ok(1.0);
    }
    Ok(backend::determinant(a))
}

/// How [`solve_psd`] solved its system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PsdMethod {
    Cholesky,
    /// Cholesky failed; eigenvalues below the cutoff were dropped (`dropped` of them).
    PseudoInverse {
        dropped: usize,
    },
}

/// Relative eigenvalue cutoff of the pseudo-inverse in [`solve_psd`].
pub const PSEUDO_INVERSE_CUTOFF: f64 = 1e-12;

/// Solves `A x = b` for a Hermitian positive semi-definite `A`: Cholesky, or, when the
/// factorization fails or gives non-finite numbers, the eigenvalue pseudo-inverse
/// `x = Σ_{λ_k > c·λ_max} v_k (v_k† b)/λ_k` with `c` = [`PSEUDO_INVERSE_CUTOFF`].
pub fn solve_psd<T: Field>(a: ArrayView2<T>, b: &[T]) -> Result<(Vec<T>, PsdMethod), LinalgError> {
    let mut storage = a.as_standard_layout().into_owned();
    solve_psd_in_place(&mut storage, b, |storage| storage.assign(&a))
}

/// [`solve_psd`] in the caller's storage: Cholesky factorizes `a` where it is (only its lower
/// triangle is read; no N × N copy), and when the factorization fails `rebuild` fills `a` again
/// for the pseudo-inverse. `a` holds the factor or the rebuilt matrix afterwards.
pub fn solve_psd_in_place<T: Field>(
    a: &mut Array2<T>,
    b: &[T],
    rebuild: impl FnOnce(&mut Array2<T>),
) -> Result<(Vec<T>, PsdMethod), LinalgError> {
    if !a.is_standard_layout() {
        *a = a.as_standard_layout().into_owned();
    }
    if factor_in_place(a.view_mut()).is_ok() {
        let mut x = b.to_vec();
        solve_factored(a.view(), &mut x);
        if x.iter().all(|v| v.is_finite()) {
            return Ok((x, PsdMethod::Cholesky));
        }
    }
    rebuild(a);
    let (values, vectors) = eigh(a.view())?;
    let cutoff = PSEUDO_INVERSE_CUTOFF * values.iter().copied().fold(0.0, f64::max);
    let mut coefficients = vec![T::ZERO; b.len()];
    matvec(
        &mut coefficients,
        false,
        T::ONE,
        vectors.view(),
        Op::Adjoint,
        b,
    );
    let mut dropped = 0;
    for (c, &lambda) in coefficients.iter_mut().zip(&values) {
        if lambda > cutoff {
            *c *= T::from_re(1.0 / lambda);
        } else {
            *c = T::ZERO;
            dropped += 1;
        }
    }
    let mut x = vec![T::ZERO; b.len()];
    matvec(
        &mut x,
        false,
        T::ONE,
        vectors.view(),
        Op::Plain,
        &coefficients,
    );
    Ok((x, PsdMethod::PseudoInverse { dropped }))
}

/// `⟨x, y⟩ = Σ_i conj(x_i) y_i`, deterministic for any thread count (fixed blocks, added in
/// order).
pub fn dot<T: Field>(x: &[T], y: &[T]) -> T {
    let partial: Vec<T> = x
        .par_chunks(BLOCK)
        .zip(y.par_chunks(BLOCK))
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .fold(T::ZERO, |acc, (&u, &v)| acc + u.conj() * v)
        })
        .collect();
    partial.into_iter().fold(T::ZERO, |acc, p| acc + p)
}

/// `‖x‖₂`, deterministic.
pub fn norm<T: Field>(x: &[T]) -> f64 {
    let partial: Vec<f64> = x
        .par_chunks(BLOCK)
        .map(|a| a.iter().map(|v| v.abs2()).sum::<f64>())
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
                        .fold(T::ZERO, |acc, (&u, &x)| acc + u.conj() * x)
                })
                .collect()
        })
        .collect();
    let mut coeffs = vec![T::ZERO; k];
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn random_complex(rows: usize, cols: usize, seed: u64) -> Array2<Complex64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        Array2::from_shape_fn((rows, cols), |_| {
            Complex64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5)
        })
    }

    fn naive_product(
        a: &Array2<Complex64>,
        adjoint: bool,
        b: &Array2<Complex64>,
    ) -> Array2<Complex64> {
        let a = if adjoint {
            a.t().mapv(|z| z.conj())
        } else {
            a.clone()
        };
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|k| a[[i, k]] * b[[k, j]]).sum()
        })
    }

    #[test]
    fn products_match_the_definition_on_odd_shapes() {
        for &(m, k, n) in &[(1, 1, 1), (2, 3, 1), (7, 33, 3), (33, 7, 257), (3, 257, 2)] {
            let a = random_complex(m, k, 1);
            let b = random_complex(k, n, 2);
            let mut c = Array2::zeros((m, n));
            matmul(
                c.view_mut(),
                false,
                Complex64::ONE,
                a.view(),
                Op::Plain,
                b.view(),
                Op::Plain,
            );
            let reference = naive_product(&a, false, &b);
            assert!((&c - &reference).iter().all(|z| z.norm() < 1e-12));
            // Adjoint operand and accumulation.
            let at = a.t().mapv(|z| z.conj());
            matmul(
                c.view_mut(),
                true,
                Complex64::ONE,
                at.view(),
                Op::Adjoint,
                b.view(),
                Op::Plain,
            );
            assert!((&c - &(&reference * Complex64::new(2.0, 0.0)))
                .iter()
                .all(|z| z.norm() < 1e-12));
        }
    }

    #[test]
    fn hermitian_solvers_on_odd_sizes() {
        for n in [1usize, 2, 3, 7, 33, 257] {
            let x = random_complex(n + 3, n, n as u64);
            let mut a = Array2::zeros((n, n));
            matmul(
                a.view_mut(),
                false,
                Complex64::ONE,
                x.view(),
                Op::Adjoint,
                x.view(),
                Op::Plain,
            );
            for i in 0..n {
                a[[i, i]] += 0.1;
            }
            let (values, vectors) = eigh(a.view()).unwrap();
            assert!(values.windows(2).all(|w| w[0] <= w[1]));
            // A V = V Λ.
            let av = a.dot(&vectors);
            for j in 0..n {
                for i in 0..n {
                    assert!(
                        (av[[i, j]] - vectors[[i, j]] * values[j]).norm() < 1e-10 * values[n - 1]
                    );
                }
            }
            let b: Vec<Complex64> = (0..n).map(|i| Complex64::new(i as f64, 1.0)).collect();
            let mut x1 = b.clone();
            Cholesky::new(a.view()).unwrap().solve_in_place(&mut x1);
            let mut x2 = b.clone();
            lu_solve(a.view(), &mut x2).unwrap();
            let (x3, method) = solve_psd(a.view(), &b).unwrap();
            assert_eq!(method, PsdMethod::Cholesky);
            let residual = a.dot(&Array1::from(x1.clone())) - Array1::from(b.clone());
            assert!(residual.iter().all(|z| z.norm() < 1e-9), "n = {n}");
            for (p, q) in x1.iter().zip(&x2).chain(x1.iter().zip(&x3)) {
                assert!((p - q).norm() < 1e-8 * (1.0 + p.norm()));
            }
        }
    }

    #[test]
    fn non_finite_and_indefinite_inputs_are_errors() {
        let a = ndarray::array![[1.0, f64::NAN], [f64::NAN, 1.0]];
        assert!(matches!(eigh(a.view()), Err(LinalgError::NonFinite { .. })));
        let indefinite = ndarray::array![[1.0, 2.0], [2.0, 1.0]];
        assert!(matches!(
            Cholesky::new(indefinite.view()),
            Err(LinalgError::NotPositiveDefinite { .. })
        ));
        let singular = ndarray::array![[1.0, 2.0], [2.0, 4.0]];
        let mut b = vec![1.0, 1.0];
        assert!(lu_solve(singular.view(), &mut b).is_err());
        let (x, method) = solve_psd(singular.view(), &[1.0, 2.0]).unwrap();
        assert_eq!(method, PsdMethod::PseudoInverse { dropped: 1 });
        assert!((x[0] - 0.2).abs() < 1e-12 && (x[1] - 0.4).abs() < 1e-12);
    }

    #[test]
    fn real_decompositions() {
        let a = ndarray::array![[3.0, 0.0], [4.0, 5.0]];
        assert!((determinant(a.view()).unwrap() - 15.0).abs() < 1e-12);
        let s = singular_values(a.view()).unwrap();
        // σ1 σ2 = |det| and σ1² + σ2² = ‖A‖_F² = 50.
        assert!(
            (s[0] * s[1] - 15.0).abs() < 1e-10 && (s[0] * s[0] + s[1] * s[1] - 50.0).abs() < 1e-10
        );
        assert!(s[0] >= s[1]);
    }
}
