//! The default backend: faer (pure Rust, runtime SIMD dispatch, rayon; no `unsafe` here).
//!
//! ndarray arrays in standard layout are borrowed as faer matrices through their slices
//! (row-major = the transpose of a column-major matrix); other layouts are copied first.

use super::{Field, LinalgError, Op};
use faer::linalg::solvers::Solve;
use faer::{Accum, MatMut, MatRef, Par, Side};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, CowArray, Ix2};

pub const NAME: &str = "faer 0.24 (pure Rust)";

/// The scalars faer computes with.
pub trait Scalar: faer::traits::ComplexField<Real = f64> {}
impl<T: faer::traits::ComplexField<Real = f64>> Scalar for T {}

/// The view itself when it is in standard layout, else a row-major copy.
fn standard<'a, T: Field>(a: &'a ArrayView2<'a, T>) -> CowArray<'a, T, Ix2> {
    a.as_standard_layout()
}

/// A row-major array as a faer matrix (no copy).
fn as_faer<'a, T: Field>(a: &'a CowArray<'a, T, Ix2>) -> MatRef<'a, T> {
    let slice = a.as_slice().expect("standard layout");
    MatRef::from_row_major_slice(slice, a.nrows(), a.ncols())
}

fn par(work: usize) -> Par {
    // Below ~1e5 multiply-adds the threads cost more than they save; inside a parallel region
    // (`linalg::sequential`) the caller already uses every thread.
    if work < 100_000 || super::in_sequential_section() {
        Par::Seq
    } else {
        Par::rayon(0)
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
    let a = standard(&a);
    let b = standard(&b);
    let (a, b) = (as_faer(&a), as_faer(&b));
    let slice = c
        .as_slice_mut()
        .expect("linalg::matmul: the output must be in standard layout");
    let dst = MatMut::from_row_major_slice_mut(slice, m, n);
    let beta = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    let par = par(m * n * k);
    use faer::linalg::matmul::matmul as mm;
    // Conjugation is a view property in faer, so the adjoint is a conjugated transpose.
    let (a, conj_a) = match op_a {
        Op::Plain => (a, false),
        Op::Transpose => (a.transpose(), false),
        Op::Adjoint => (a.transpose(), true),
    };
    let (b, conj_b) = match op_b {
        Op::Plain => (b, false),
        Op::Transpose => (b.transpose(), false),
        Op::Adjoint => (b.transpose(), true),
    };
    match (conj_a, conj_b) {
        (false, false) => mm(dst, beta, a, b, alpha, par),
        (true, false) => mm(dst, beta, a.conjugate(), b, alpha, par),
        (false, true) => mm(dst, beta, a, b.conjugate(), alpha, par),
        (true, true) => mm(dst, beta, a.conjugate(), b.conjugate(), alpha, par),
    }
}

fn to_ndarray<T: Field>(m: MatRef<'_, T>) -> Array2<T> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

pub fn eigh<T: Field>(a: ArrayView2<T>) -> Result<(Vec<f64>, Array2<T>), LinalgError> {
    let a = standard(&a);
    let evd =
        as_faer(&a)
            .self_adjoint_eigen(Side::Lower)
            .map_err(|_| LinalgError::NoConvergence {
                operation: "Hermitian eigensolver",
            })?;
    let values = (0..a.nrows()).map(|i| evd.S()[i].re()).collect();
    Ok((values, to_ndarray(evd.U())))
}

pub fn eigvalsh<T: Field>(a: ArrayView2<T>) -> Result<Vec<f64>, LinalgError> {
    let a = standard(&a);
    as_faer(&a)
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|_| LinalgError::NoConvergence {
            operation: "Hermitian eigensolver",
        })
}

/// Factorizes `a = L L†` in place: L overwrites the lower triangle (standard layout; the strict
/// upper triangle is neither read nor written).
pub fn cholesky_in_place<T: Field>(mut a: ArrayViewMut2<T>) -> Result<(), LinalgError> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt::factor;
    let n = a.nrows();
    let par = par(n * n * n / 3);
    let mut memory = MemBuffer::new(factor::cholesky_in_place_scratch::<T>(
        n,
        par,
        Default::default(),
    ));
    let slice = a
        .as_slice_mut()
        .expect("Cholesky in place: standard layout");
    factor::cholesky_in_place(
        MatMut::from_row_major_slice_mut(slice, n, n),
        Default::default(),
        par,
        MemStack::new(&mut memory),
        Default::default(),
    )
    .map(|_| ())
    .map_err(|e| match e {
        factor::LltError::NonPositivePivot { index } => {
            LinalgError::NotPositiveDefinite { pivot: index }
        }
    })
}

/// Solves `L L† x = b` in place with the factor in the lower triangle of `l`.
pub fn cholesky_solve<T: Field>(l: ArrayView2<T>, b: &mut [T]) {
    use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
    let n = b.len();
    let l = standard(&l);
    faer::linalg::cholesky::llt::solve::solve_in_place_with_conj(
        as_faer(&l),
        faer::Conj::No,
        MatMut::from_column_major_slice_mut(b, n, 1),
        par(n * n),
        MemStack::new(&mut MemBuffer::new(StackReq::EMPTY)),
    );
}

/// `c ← a a†` on the lower triangle of c.
pub fn gram_lower<T: Field>(mut c: ArrayViewMut2<T>, a: ArrayView2<T>) {
    use faer::linalg::matmul::triangular::{matmul, BlockStructure};
    let (n, k) = a.dim();
    let a = standard(&a);
    let a = as_faer(&a);
    let slice = c
        .as_slice_mut()
        .expect("linalg::gram_lower: the output must be in standard layout");
    matmul(
        MatMut::from_row_major_slice_mut(slice, n, n),
        BlockStructure::TriangularLower,
        Accum::Replace,
        a,
        BlockStructure::Rectangular,
        a.adjoint(),
        BlockStructure::Rectangular,
        T::ONE,
        par(n * n * k / 2),
    );
}

pub fn lu_solve<T: Field>(a: ArrayView2<T>, b: &mut [T]) -> Result<(), LinalgError> {
    let a = standard(&a);
    let n = b.len();
    as_faer(&a)
        .partial_piv_lu()
        .solve_in_place(MatMut::from_column_major_slice_mut(b, n, 1));
    Ok(())
}

pub fn singular_values(a: ArrayView2<f64>) -> Result<Vec<f64>, LinalgError> {
    let a = standard(&a);
    as_faer(&a)
        .singular_values()
        .map_err(|_| LinalgError::NoConvergence { operation: "SVD" })
}

pub fn determinant(a: ArrayView2<f64>) -> f64 {
    let a = standard(&a);
    as_faer(&a).determinant()
}
