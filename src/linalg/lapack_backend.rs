//! The `lapack` backend: a system LAPACK/BLAS through ndarray-linalg and CBLAS.
//!
//! The library's own threads should be off (`OPENBLAS_NUM_THREADS=1`, `MKL_NUM_THREADS=1`):
//! nqs parallelizes with rayon, and nested BLAS threads only compete for the same cores.

use super::{Field, LinalgError, Op};
use cblas_sys::{CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use ndarray_linalg::{
    CholeskyFactorized, CholeskyInplace, Determinant, EigValsh, Eigh, Solve, SolveC, SVD, UPLO,
};
use num_complex::Complex64;

// Links the CBLAS of the system library.
extern crate blas_src;

pub const NAME: &str = "LAPACK/BLAS of the system (ndarray-linalg, feature `lapack`)";

/// The scalars LAPACK computes with, and their GEMM.
pub trait Scalar: ndarray_linalg::Lapack + ndarray_linalg::Scalar<Real = f64> {
    /// Row-major `C ← α op(A) op(B) + β C` by CBLAS.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        trans_a: CBLAS_TRANSPOSE,
        trans_b: CBLAS_TRANSPOSE,
        m: usize,
        n: usize,
        k: usize,
        alpha: Self,
        a: &[Self],
        lda: usize,
        b: &[Self],
        ldb: usize,
        beta: Self,
        c: &mut [Self],
    );
}

impl Scalar for f64 {
    fn gemm(
        trans_a: CBLAS_TRANSPOSE,
        trans_b: CBLAS_TRANSPOSE,
        m: usize,
        n: usize,
        k: usize,
        alpha: f64,
        a: &[f64],
        lda: usize,
        b: &[f64],
        ldb: usize,
        beta: f64,
        c: &mut [f64],
    ) {
        // SAFETY: the caller passes contiguous row-major matrices of the stated shapes.
        unsafe {
            cblas_sys::cblas_dgemm(
                CBLAS_LAYOUT::CblasRowMajor,
                trans_a,
                trans_b,
                m as i32,
                n as i32,
                k as i32,
                alpha,
                a.as_ptr(),
                lda as i32,
                b.as_ptr(),
                ldb as i32,
                beta,
                c.as_mut_ptr(),
                n as i32,
            )
        }
    }
}

impl Scalar for Complex64 {
    fn gemm(
        trans_a: CBLAS_TRANSPOSE,
        trans_b: CBLAS_TRANSPOSE,
        m: usize,
        n: usize,
        k: usize,
        alpha: Complex64,
        a: &[Complex64],
        lda: usize,
        b: &[Complex64],
        ldb: usize,
        beta: Complex64,
        c: &mut [Complex64],
    ) {
        let (alpha, beta) = ([alpha.re, alpha.im], [beta.re, beta.im]);
        // SAFETY: as for dgemm; Complex64 is two f64 in memory, CBLAS's double complex.
        unsafe {
            cblas_sys::cblas_zgemm(
                CBLAS_LAYOUT::CblasRowMajor,
                trans_a,
                trans_b,
                m as i32,
                n as i32,
                k as i32,
                alpha.as_ptr().cast(),
                a.as_ptr().cast(),
                lda as i32,
                b.as_ptr().cast(),
                ldb as i32,
                beta.as_ptr().cast(),
                c.as_mut_ptr().cast(),
                n as i32,
            )
        }
    }
}

fn transpose(op: Op) -> CBLAS_TRANSPOSE {
    match op {
        Op::Plain => CBLAS_TRANSPOSE::CblasNoTrans,
        Op::Transpose => CBLAS_TRANSPOSE::CblasTrans,
        Op::Adjoint => CBLAS_TRANSPOSE::CblasConjTrans,
    }
}

pub fn matmul<T: Field>(
    mut c: ArrayViewMut2<T>,
    accumulate: bool,
    alpha: T,
    a: ArrayView2<T>,
    op_a: Op,
    b: ArrayView2<T>,
    op_b: Op,
) {
    let (m, n) = c.dim();
    let k = if op_a == Op::Plain {
        a.ncols()
    } else {
        a.nrows()
    };
    let (a, b) = (a.as_standard_layout(), b.as_standard_layout());
    let beta = if accumulate { T::ONE } else { T::ZERO };
    let c = c
        .as_slice_mut()
        .expect("linalg::matmul: the output must be in standard layout");
    T::gemm(
        transpose(op_a),
        transpose(op_b),
        m,
        n,
        k,
        alpha,
        a.as_slice().expect("standard layout"),
        a.ncols().max(1),
        b.as_slice().expect("standard layout"),
        b.ncols().max(1),
        beta,
        c,
    );
}

/// A column-major copy: LAPACK reads a row-major Hermitian matrix as its transpose, i.e. its
/// complex conjugate, and would return conjugated eigenvectors.
fn column_major<T: Field>(a: ArrayView2<T>) -> Array2<T> {
    a.t().as_standard_layout().reversed_axes().into_owned()
}

pub fn eigh<T: Field>(a: ArrayView2<T>) -> Result<(Vec<f64>, Array2<T>), LinalgError> {
    let (values, vectors) =
        column_major(a)
            .eigh(UPLO::Lower)
            .map_err(|_| LinalgError::NoConvergence {
                operation: "Hermitian eigensolver",
            })?;
    Ok((values.to_vec(), vectors))
}

pub fn eigvalsh<T: Field>(a: ArrayView2<T>) -> Result<Vec<f64>, LinalgError> {
    a.eigvalsh(UPLO::Lower)
        .map(|v| v.to_vec())
        .map_err(|_| LinalgError::NoConvergence {
            operation: "Hermitian eigensolver",
        })
}

/// Factorizes `a = L L†` in place: L overwrites the lower triangle (LAPACK `potrf`; the strict
/// upper triangle is set to zero).
pub fn cholesky_in_place<T: Field>(mut a: ArrayViewMut2<T>) -> Result<(), LinalgError> {
    a.cholesky_inplace(UPLO::Lower)
        .map(|_| ())
        .map_err(|_| LinalgError::NotPositiveDefinite { pivot: 0 })
}

/// Solves `L L† x = b` in place with the factor in the lower triangle of `l`.
pub fn cholesky_solve<T: Field>(l: ArrayView2<T>, b: &mut [T]) {
    let factor = CholeskyFactorized {
        factor: l,
        uplo: UPLO::Lower,
    };
    let x = factor
        .solvec(&ndarray::ArrayView1::from(&*b))
        .expect("Cholesky solve with a factorized matrix");
    b.copy_from_slice(x.as_slice().expect("contiguous"));
}

/// `c ← a a†` (this backend fills the whole matrix).
pub fn gram_lower<T: Field>(c: ArrayViewMut2<T>, a: ArrayView2<T>) {
    matmul(c, false, T::ONE, a.view(), Op::Plain, a, Op::Adjoint);
}

pub fn lu_solve<T: Field>(a: ArrayView2<T>, b: &mut [T]) -> Result<(), LinalgError> {
    let x = a
        .solve(&ndarray::ArrayView1::from(&*b))
        .map_err(|_| LinalgError::Singular)?;
    b.copy_from_slice(x.as_slice().expect("contiguous"));
    Ok(())
}

pub fn singular_values(a: ArrayView2<f64>) -> Result<Vec<f64>, LinalgError> {
    let (_, s, _) = a
        .svd(false, false)
        .map_err(|_| LinalgError::NoConvergence { operation: "SVD" })?;
    Ok(s.to_vec())
}

pub fn determinant(a: ArrayView2<f64>) -> f64 {
    a.det().unwrap_or(0.0)
}
