//! Matrix-free ED products: rows per second per thread of the Heisenberg chain at S^z = 0
//! (full sector, no symmetry), with the exchange kernel and with the general Pauli-sum rows,
//! on one thread; and the same product on the momentum/inversion sector of the ground state.
//!
//! `cargo bench --bench ed`; criterion's "elem/s" is rows per second.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nqs::exact::lanczos::LinearOperator;
use nqs::exact::rows::{BitRows, ExchangeRows};
use nqs::exact::symmetry::{SymmetricBasis, SymmetricOperator};
use nqs::exact::SectorOperator;
use nqs::hilbert::SectorBasis;
use nqs::lattice::{Boundary, Lattice};
use nqs::operator::{Pauli, PauliString, PauliSum};
use num_complex::Complex64;

fn heisenberg_chain(n: usize) -> PauliSum {
    PauliSum::new(
        n,
        (0..n).flat_map(|i| {
            [Pauli::X, Pauli::Y, Pauli::Z]
                .map(|p| PauliString::new(Complex64::new(1.0, 0.0), &[(i, p), ((i + 1) % n, p)]))
        }),
    )
}

fn product<O: LinearOperator<f64>>(op: &O) -> impl FnMut() + '_ {
    let dim = op.dim();
    let x: Vec<f64> = (0..dim).map(|i| (i as f64).sin()).collect();
    let mut y = vec![0.0; dim];
    move || op.apply(&x, &mut y)
}

fn bench<K: BitRows>(c: &mut Criterion, n: usize, name: &str, rows: &K) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let basis = SectorBasis::new(n, Some(n / 2)).unwrap();
    let states: Vec<u64> = basis.states().collect();
    let op = SectorOperator {
        rows,
        basis: &basis,
        states: &states,
    };
    let mut group = c.benchmark_group("ed_rows");
    group.sample_size(10);
    group.throughput(Throughput::Elements(states.len() as u64));
    let mut run = product(&op);
    group.bench_function(
        BenchmarkId::new(name, format!("L={n} S^z=0 full sector")),
        |b| b.iter(|| pool.install(&mut run)),
    );
    let lattice = Lattice::chain(n, Boundary::Periodic);
    let k = if (n / 2) % 2 == 0 { 0 } else { n / 2 };
    let symmetric = SymmetricBasis::new(&lattice, &basis, &[k], Some(1));
    let op = SymmetricOperator {
        rows,
        basis: &symmetric,
    };
    group.throughput(Throughput::Elements(symmetric.dimension() as u64));
    let mut run = product(&op);
    group.bench_function(
        BenchmarkId::new(name, format!("L={n} k={k} z=+1 sector")),
        |b| b.iter(|| pool.install(&mut run)),
    );
    group.finish();
}

fn rows(c: &mut Criterion) {
    let n = 24;
    let op = heisenberg_chain(n);
    let exchange = ExchangeRows::recognize(&op).unwrap();
    bench(c, n, "exchange", &exchange);
    bench(c, n, "pauli", &op);
}

criterion_group!(benches, rows);
criterion_main!(benches);
