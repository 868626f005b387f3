//! Criterion benchmarks of stochastic reconfiguration.
//!
//! - `sr_kernels/*`: the dense kernels on a materialized X (N_s × P, random complex) — one
//!   product `S v = X†(X v)`, building `S = X†X`, building the kernel `K = XX†`, and the
//!   Cholesky solves of `K + εI` and `S + εI` — at P = 560, 1224, 4032 and N_s = 1008, 2000.
//!   Run once as is (faer) and once with `--features lapack` to compare the backends.
//! - `sr_step/*`: one whole SR step of a dense RBM at (N, α, N_s) = (24, 2, 1008),
//!   (36, 3, 2000), (80, 2, 2000): the structured kernel solve, structured CG, materialized CG
//!   and the dense solve.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;
use nqs::ansatz::{Ansatz, Rbm, RbmKind};
use nqs::dist::Serial;
use nqs::linalg::{self, Cholesky, Op};
use nqs::optimizer::jacobian::{Centering, Jacobian, Materialized, StructuredRbm};
use nqs::optimizer::sr::{adjoint_product, ConjugateGradient, Dense, Kernel, Shift, SrSolver};
use nqs::sampler::SampleSet;
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;

const ONE: Complex64 = Complex64::new(1.0, 0.0);

fn random(rows: usize, cols: usize, seed: u64) -> Array2<Complex64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| {
        Complex64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5)
    })
}

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("sr_kernels/{}", backend_tag()));
    group.sample_size(10);
    for ns in [1008usize, 2000] {
        for p in [560usize, 1224, 4032] {
            let x = random(ns, p, 1);
            let v: Vec<Complex64> = random(p, 1, 2).into_iter().collect();
            let id = |what: &str| BenchmarkId::new(what, format!("Ns={ns},P={p}"));
            group.bench_function(id("S·v"), |b| {
                let (mut xv, mut sv) = (vec![ONE; ns], vec![ONE; p]);
                b.iter(|| {
                    linalg::matvec(&mut xv, false, ONE, x.view(), Op::Plain, &v);
                    linalg::matvec(&mut sv, false, ONE, x.view(), Op::Adjoint, &xv);
                    black_box(&sv);
                })
            });
            group.bench_function(id("build K=XX†"), |b| {
                let mut k = Array2::zeros((ns, ns));
                b.iter(|| {
                    linalg::matmul(
                        k.view_mut(),
                        false,
                        ONE,
                        x.view(),
                        Op::Plain,
                        x.view(),
                        Op::Adjoint,
                    )
                })
            });
            let mut k = Array2::zeros((ns, ns));
            linalg::matmul(
                k.view_mut(),
                false,
                ONE,
                x.view(),
                Op::Plain,
                x.view(),
                Op::Adjoint,
            );
            k.diag_mut().iter_mut().for_each(|d| *d += 1e-3);
            group.bench_function(id("solve K+εI (Cholesky)"), |b| {
                b.iter(|| {
                    let mut z = vec![ONE; ns];
                    Cholesky::new(k.view()).unwrap().solve_in_place(&mut z);
                    black_box(z)
                })
            });
            if p <= 1224 || ns <= 1008 {
                group.bench_function(id("build S=X†X"), |b| {
                    let mut s = Array2::zeros((p, p));
                    b.iter(|| {
                        linalg::matmul(
                            s.view_mut(),
                            false,
                            ONE,
                            x.view(),
                            Op::Adjoint,
                            x.view(),
                            Op::Plain,
                        )
                    })
                });
                let mut s = Array2::zeros((p, p));
                linalg::matmul(
                    s.view_mut(),
                    false,
                    ONE,
                    x.view(),
                    Op::Adjoint,
                    x.view(),
                    Op::Plain,
                );
                s.diag_mut().iter_mut().for_each(|d| *d += 1e-3);
                group.bench_function(id("solve S+εI (Cholesky)"), |b| {
                    b.iter(|| {
                        let mut z = vec![ONE; p];
                        Cholesky::new(s.view()).unwrap().solve_in_place(&mut z);
                        black_box(z)
                    })
                });
            }
        }
    }
    group.finish();
}

fn backend_tag() -> &'static str {
    if linalg::backend_name().starts_with("faer") {
        "faer"
    } else {
        "lapack"
    }
}

/// Random configurations of `ns` samples with their caches.
fn samples(rbm: &Rbm, ns: usize, seed: u64) -> SampleSet<nqs::ansatz::RbmCache> {
    let n = rbm.n_sites();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let sigma: Vec<i8> = (0..ns * n)
        .map(|_| if rng.random::<bool>() { 1 } else { -1 })
        .collect();
    let caches = (0..ns)
        .map(|s| {
            let mut c = rbm.new_cache();
            rbm.refresh(&sigma[s * n..(s + 1) * n], &mut c);
            c
        })
        .collect();
    SampleSet {
        n_sites: n,
        samples_per_chain: ns,
        sigma,
        caches,
    }
}

fn steps(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("sr_step/{}", backend_tag()));
    group.sample_size(10);
    let cg = ConjugateGradient {
        tolerance: 1e-8,
        max_iterations: 200,
    };
    let shift = Shift::Additive(1e-3);
    // Solves run on a pool worker, as in the nqs binary (see nqs::pool).
    let pool = nqs::pool::build(rayon::current_num_threads()).unwrap();
    for (n, alpha, ns) in [(24usize, 2usize, 1008usize), (36, 3, 2000), (80, 2, 2000)] {
        let rbm = Rbm::random(n, RbmKind::Dense { alpha }, 0.1, 3);
        let set = samples(&rbm, ns, 4);
        let y: Vec<Complex64> = random(ns, 1, 5).into_iter().map(|z| z * 0.1).collect();
        let p = rbm.n_parameters();
        let label = format!("N={n},alpha={alpha},Ns={ns},P={p}");
        let layer = rbm.dense_rbm_layer().unwrap();
        let mut structured = StructuredRbm::new(layer, &set, 0, ns, Centering::Centred, &Serial);
        let f = adjoint_product(&mut structured, &y, &Serial);
        let kernel = Kernel::default();
        group.bench_function(
            BenchmarkId::new("structured sample (kernel + Cholesky)", &label),
            |b| {
                b.iter(|| {
                    pool.install(|| {
                        black_box(
                            kernel
                                .solve(&mut structured, &f, &y, shift, &[], &Serial)
                                .unwrap(),
                        )
                    })
                })
            },
        );
        group.bench_function(BenchmarkId::new("structured cg", &label), |b| {
            b.iter(|| {
                pool.install(|| {
                    black_box(
                        cg.solve(&mut structured, &f, &y, shift, &[], &Serial)
                            .unwrap(),
                    )
                })
            })
        });
        group.bench_function(
            BenchmarkId::new("structured build (factors, means)", &label),
            |b| {
                b.iter(|| {
                    pool.install(|| {
                        black_box(StructuredRbm::new(
                            layer,
                            &set,
                            0,
                            ns,
                            Centering::Centred,
                            &Serial,
                        ))
                    })
                })
            },
        );
        let mut materialized = Materialized::new(&rbm, &set, 0, ns, Centering::Centred, &Serial);
        group.bench_function(BenchmarkId::new("materialized cg", &label), |b| {
            b.iter(|| {
                pool.install(|| {
                    black_box(
                        cg.solve(&mut materialized, &f, &y, shift, &[], &Serial)
                            .unwrap(),
                    )
                })
            })
        });
        group.bench_function(
            BenchmarkId::new("materialized build (O, centring)", &label),
            |b| {
                b.iter(|| {
                    pool.install(|| {
                        black_box(Materialized::new(
                            &rbm,
                            &set,
                            0,
                            ns,
                            Centering::Centred,
                            &Serial,
                        ))
                    })
                })
            },
        );
        if p <= 5000 {
            group.bench_function(
                BenchmarkId::new("dense (S from row blocks, Cholesky)", &label),
                |b| {
                    b.iter(|| {
                        pool.install(|| {
                            black_box(
                                Dense
                                    .solve(&mut structured, &f, &y, shift, &[], &Serial)
                                    .unwrap(),
                            )
                        })
                    })
                },
            );
        }
        assert_eq!(materialized.n_parameters(), p);
    }
    group.finish();
}

criterion_group!(benches, kernels, steps);
criterion_main!(benches);
