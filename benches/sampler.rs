//! Metropolis throughput: cost per proposal (one chain, one thread) against the chain length,
//! and samples per second of 16 chains on 1 and 2 threads.
//!
//! `cargo bench --bench sampler`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nqs::ansatz::{Ansatz, Rbm, RbmKind};
use nqs::lattice::Boundary;
use nqs::lattice::Lattice;
use nqs::sampler::{Exchange, MetropolisSampler, SamplerSettings};

fn ansatz(n: usize, symmetric: bool) -> Rbm {
    let lattice = Lattice::chain(n, Boundary::Periodic);
    let kind = if symmetric {
        RbmKind::symmetric(4, &lattice, false)
    } else {
        RbmKind::Dense { alpha: 2 }
    };
    Rbm::random(n, kind, 0.05, 1)
}

fn settings(n: usize, samples_per_chain: usize) -> SamplerSettings {
    SamplerSettings {
        rule: std::sync::Arc::new(Exchange {
            bonds: Lattice::chain(n, Boundary::Periodic).bonds().to_vec(),
        }),
        sweep: n,
        thermalization: 10,
        samples_per_chain,
        refresh_every: 16,
        n_up: Some(n / 2),
    }
}

/// One sweep (N exchange proposals) of one chain: time per proposal should grow like M ∝ N.
fn per_proposal(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("sweep_one_chain");
    for symmetric in [false, true] {
        for n in [20usize, 40, 80, 160] {
            let rbm = ansatz(n, symmetric);
            let mut sampler = MetropolisSampler::new(&rbm, settings(n, 1), 3, 0, 1);
            let mut samples = sampler.new_sample_set(&rbm);
            pool.install(|| sampler.sample(&rbm, &mut samples));
            group.throughput(Throughput::Elements(n as u64));
            let name = if symmetric {
                "rbm_symm_alpha4"
            } else {
                "rbm_alpha2"
            };
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| pool.install(|| sampler.sample(&rbm, &mut samples)))
            });
        }
    }
    group.finish();
}

/// 16 chains × 4 samples each on 1 and 2 threads.
fn samples_per_second(c: &mut Criterion) {
    let mut group = c.benchmark_group("samples_16_chains");
    group.sample_size(20);
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for symmetric in [false, true] {
            for n in [40usize, 80] {
                let rbm = ansatz(n, symmetric);
                let mut sampler = MetropolisSampler::new(&rbm, settings(n, 4), 3, 0, 16);
                let mut samples = sampler.new_sample_set(&rbm);
                pool.install(|| sampler.sample(&rbm, &mut samples));
                group.throughput(Throughput::Elements(64));
                let name = format!(
                    "{}_threads{threads}",
                    if symmetric {
                        "rbm_symm_alpha4"
                    } else {
                        "rbm_alpha2"
                    }
                );
                group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                    b.iter(|| pool.install(|| sampler.sample(&rbm, &mut samples)))
                });
            }
        }
    }
    group.finish();
}

/// The plain log-cosh ratio against the transcendental-free product, single flip, N = 80.
fn ratio_forms(c: &mut Criterion) {
    let n = 80;
    let rbm = ansatz(n, true);
    let sigma: Vec<i8> = (0..n).map(|i| if i % 2 == 0 { 1 } else { -1 }).collect();
    let mut cache = rbm.new_cache();
    rbm.refresh(&sigma, &mut cache);
    let mut group = c.benchmark_group("log_ratio_single_flip_n80_m320");
    group.bench_function("product_form", |b| {
        b.iter(|| rbm.log_ratio(&sigma, &cache, std::hint::black_box(&[7])))
    });
    group.bench_function("log_cosh_form", |b| {
        b.iter(|| rbm.log_ratio_logcosh(&sigma, &cache, std::hint::black_box(&[7])))
    });
    group.finish();
}

criterion_group!(benches, per_proposal, samples_per_second, ratio_forms);
criterion_main!(benches);
