//! Dense linear algebra on odd sizes (1, 2, 3, 7, 33, 257: not multiples of any SIMD width) and
//! on matrices placed at the very end of page-sized allocations, so that a kernel reading past
//! its matrix reads past the allocation (scripts/valgrind.sh runs this test under memcheck).
//! The eigensolver, Cholesky, LU and the SR solves (dense, CG, kernel) against their
//! definitions.

use ndarray::{Array2, ArrayView1, ArrayView2};
use nqs::dist::Serial;
use nqs::linalg::{self, Cholesky, Op};
use nqs::optimizer::jacobian::{Centering, Jacobian, Materialized};
use nqs::optimizer::sr::{adjoint_product, ConjugateGradient, Dense, Kernel, Shift, SrSolver};
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const SIZES: [usize; 6] = [1, 2, 3, 7, 33, 257];
const PAGE: usize = 4096 / 16; // complex numbers per 4 KiB page

/// A buffer of whole pages whose last `len` entries are random (the data ends where the
/// allocation ends).
fn at_end_of_pages(len: usize, seed: u64) -> (Vec<Complex64>, usize) {
    let total = len.div_ceil(PAGE) * PAGE;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut buffer = vec![Complex64::new(0.0, 0.0); total];
    for z in &mut buffer[total - len..] {
        *z = Complex64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5);
    }
    let mut exact = Vec::with_capacity(total);
    exact.extend_from_slice(&buffer);
    (exact, total - len)
}

fn norm(v: &[Complex64]) -> f64 {
    v.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt()
}

/// `A = XᵀX̄ + 0.1 I` (Hermitian positive definite) from an n × n block at a page end.
fn hermitian(n: usize, seed: u64) -> Array2<Complex64> {
    let (buffer, offset) = at_end_of_pages(n * n, seed);
    let x = ArrayView2::from_shape((n, n), &buffer[offset..]).unwrap();
    let mut a = Array2::zeros((n, n));
    linalg::matmul(
        a.view_mut(),
        false,
        Complex64::new(1.0, 0.0),
        x,
        Op::Adjoint,
        x,
        Op::Plain,
    );
    for i in 0..n {
        a[[i, i]] += 0.1;
    }
    a
}

#[test]
fn eigensolver_cholesky_and_lu_on_odd_sizes_at_page_ends() {
    for n in SIZES {
        let a = hermitian(n, n as u64);
        // The input itself at the end of an allocation.
        let mut buffer = vec![Complex64::new(0.0, 0.0); (n * n).div_ceil(PAGE) * PAGE];
        let offset = buffer.len() - n * n;
        buffer[offset..].copy_from_slice(a.as_slice().unwrap());
        let view = ArrayView2::from_shape((n, n), &buffer[offset..]).unwrap();
        let (values, vectors) = linalg::eigh(view).unwrap();
        let scale = values[n - 1].abs().max(1.0);
        for (j, &lambda) in values.iter().enumerate() {
            let v = vectors.column(j);
            let av = a.dot(&v);
            let r: Vec<Complex64> = av.iter().zip(v).map(|(x, y)| x - y * lambda).collect();
            assert!(norm(&r) < 1e-11 * scale, "n = {n}: eigenpair {j}");
        }
        let (b_buffer, b_offset) = at_end_of_pages(n, 99);
        let b = &b_buffer[b_offset..];
        let mut x = b.to_vec();
        Cholesky::new(view).unwrap().solve_in_place(&mut x);
        let r: Vec<Complex64> = a
            .dot(&ArrayView1::from(&x))
            .iter()
            .zip(b)
            .map(|(p, q)| p - q)
            .collect();
        assert!(norm(&r) < 1e-10 * norm(b), "n = {n}: Cholesky");
        let mut y = b.to_vec();
        linalg::lu_solve(view, &mut y).unwrap();
        assert!(
            norm(&x.iter().zip(&y).map(|(p, q)| p - q).collect::<Vec<_>>()) < 1e-9 * norm(&x),
            "n = {n}: LU"
        );
        let real = a.mapv(|z| z.re);
        let values = linalg::eigvalsh(real.view()).unwrap();
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
    }
}

#[test]
fn sr_solves_on_odd_sizes_at_page_ends() {
    let cg = ConjugateGradient {
        tolerance: 1e-13,
        max_iterations: 5000,
    };
    for &ns in &SIZES {
        for &p in &SIZES {
            let (buffer, offset) = at_end_of_pages(ns * p, (ns * 1000 + p) as u64);
            let o = Array2::from_shape_vec((ns, p), buffer[offset..].to_vec()).unwrap();
            let (y_buffer, y_offset) = at_end_of_pages(ns, 5);
            let y = &y_buffer[y_offset..];
            let mut x = Materialized::from_log_derivatives(o, 0, ns, Centering::Uncentred, &Serial);
            let f = adjoint_product(&mut x, y, &Serial);
            let shift = Shift::Additive(0.1);
            let (dense, info) = Dense.solve(&mut x, &f, y, shift, &[], &Serial).unwrap();
            assert!(info.residual < 1e-10, "{ns}×{p}: {info:?}");
            for (name, solver) in [("cg", &cg as &dyn SrSolver), ("sample", &Kernel::default())] {
                let (delta, info) = solver.solve(&mut x, &f, y, shift, &[], &Serial).unwrap();
                let diff: Vec<Complex64> = delta.iter().zip(&dense).map(|(a, b)| a - b).collect();
                assert!(
                    norm(&diff) <= 1e-9 * norm(&dense).max(1e-300),
                    "{name} {ns}×{p}: {info:?}"
                );
            }
            let (multiplicative, info) = Dense
                .solve(&mut x, &f, y, Shift::Multiplicative(0.1), &[], &Serial)
                .unwrap();
            assert!(
                info.residual < 1e-10 && multiplicative.iter().all(|z| z.re.is_finite()),
                "{ns}×{p}"
            );
            assert_eq!(x.n_parameters(), p);
        }
    }
}
