//! The Metropolis sampler reproduces exact |ψ|² and does not depend on the thread count.

use nqs::ansatz::{Ansatz, ProjectedRbm, Projection, Rbm, RbmKind, SpinLowered};
use nqs::hilbert::{bits_from_spins, spins_from_bits, SectorBasis};
use nqs::lattice::Boundary;
use nqs::lattice::Lattice;
use nqs::sampler::{Exchange, LocalFlip, MetropolisSampler, ProposalRule, SamplerSettings};
use std::collections::HashMap;
use std::sync::Arc;

fn exact_distribution<A: Ansatz>(rbm: &A, n_up: Option<usize>) -> HashMap<u64, f64> {
    let n = rbm.n_sites();
    let basis = SectorBasis::new(n, n_up).unwrap();
    let mut sigma = vec![0i8; n];
    let mut cache = rbm.new_cache();
    let logs: Vec<(u64, f64)> = basis
        .states()
        .map(|s| {
            spins_from_bits(s, &mut sigma);
            rbm.refresh(&sigma, &mut cache);
            (s, 2.0 * rbm.log_psi(&sigma, &cache).re)
        })
        .collect();
    let max = logs.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = logs.iter().map(|x| (x.1 - max).exp()).sum();
    logs.into_iter()
        .map(|(s, l)| (s, (l - max).exp() / z))
        .collect()
}

fn histogram<A: Ansatz>(
    rbm: &A,
    rule: Arc<dyn ProposalRule>,
    n_up: Option<usize>,
    chains: usize,
    per_chain: usize,
    sweeps_apart: Option<usize>,
) -> HashMap<u64, f64> {
    let n = rbm.n_sites();
    // Pearson's χ² assumes independent samples: take them several sweeps apart (nearest-neighbour
    // exchange decorrelates a random RBM slowly; moves between all pairs need no more than 10
    // sweeps, which shows the slowness is mixing, not bias). A projected amplitude is a sum over
    // translated copies and mixes faster: `sweeps_apart` overrides.
    let sweeps_apart = sweeps_apart.unwrap_or(if !rule.conserves_sz() { 10 } else { 40 });
    let settings = SamplerSettings {
        rule,
        sweep: sweeps_apart * n,
        thermalization: 1000,
        samples_per_chain: per_chain,
        refresh_every: 50,
        n_up,
    };
    let mut sampler = MetropolisSampler::new(rbm, settings, 42, 0, chains);
    let mut samples = sampler.new_sample_set(rbm);
    sampler.sample(rbm, &mut samples);
    let mut counts: HashMap<u64, f64> = HashMap::new();
    for s in 0..samples.len() {
        *counts
            .entry(bits_from_spins(samples.configuration(s)))
            .or_default() += 1.0;
    }
    counts
}

/// Total-variation distance and the Wilson–Hilferty z-score of Pearson's χ² (bins with an
/// expected count below 5 are merged).
fn compare(exact: &HashMap<u64, f64>, counts: &HashMap<u64, f64>, total: f64) -> (f64, f64) {
    let tv = 0.5
        * exact
            .iter()
            .map(|(s, p)| (counts.get(s).copied().unwrap_or(0.0) / total - p).abs())
            .sum::<f64>();
    let (mut chi2, mut bins) = (0.0, 0usize);
    let (mut small_obs, mut small_exp) = (0.0, 0.0);
    for (s, p) in exact {
        let e = p * total;
        let o = counts.get(s).copied().unwrap_or(0.0);
        if e < 5.0 {
            small_obs += o;
            small_exp += e;
        } else {
            chi2 += (o - e).powi(2) / e;
            bins += 1;
        }
    }
    if small_exp > 0.0 {
        chi2 += (small_obs - small_exp).powi(2) / small_exp;
        bins += 1;
    }
    let k = (bins - 1) as f64;
    let z = ((chi2 / k).powf(1.0 / 3.0) - (1.0 - 2.0 / (9.0 * k))) / (2.0 / (9.0 * k)).sqrt();
    (tv, z)
}

fn chain_perms(n: usize) -> Vec<Vec<usize>> {
    Lattice::chain(n, Boundary::Periodic)
        .translations()
        .iter()
        .map(|t| t.perm.clone())
        .collect()
}

#[test]
fn samples_follow_exact_distribution() {
    let exchange = |n: usize| -> Arc<dyn ProposalRule> {
        Arc::new(Exchange {
            bonds: Lattice::chain(n, Boundary::Periodic).bonds().to_vec(),
        })
    };
    let cases: Vec<(Rbm, Arc<dyn ProposalRule>, Option<usize>)> = vec![
        (
            Rbm::random(8, RbmKind::Dense { alpha: 2 }, 0.3, 1),
            Arc::new(LocalFlip),
            None,
        ),
        (
            Rbm::random(
                8,
                RbmKind::Symmetric {
                    alpha: 2,
                    perms: chain_perms(8),
                },
                0.3,
                2,
            ),
            Arc::new(LocalFlip),
            None,
        ),
        (
            Rbm::random(10, RbmKind::Dense { alpha: 2 }, 0.2, 3),
            exchange(10),
            Some(5),
        ),
        (
            Rbm::random(
                10,
                RbmKind::Symmetric {
                    alpha: 2,
                    perms: chain_perms(10),
                },
                0.2,
                4,
            ),
            exchange(10),
            Some(5),
        ),
    ];
    for (k, (rbm, rule, n_up)) in cases.into_iter().enumerate() {
        let exact = exact_distribution(&rbm, n_up);
        let (chains, per_chain) = (100, 10_000);
        let counts = histogram(&rbm, rule, n_up, chains, per_chain, None);
        let (tv, z) = compare(&exact, &counts, (chains * per_chain) as f64);
        // Order-one weights (|W| ≈ 0.4–0.7): the distribution is far from uniform.
        let max_p = exact.values().copied().fold(0.0, f64::max);
        assert!(
            max_p > 5.0 / exact.len() as f64,
            "case {k}: distribution too flat to be a test"
        );
        assert!(tv < 0.01, "case {k}: total variation {tv}");
        // χ² at the 1e-3 level: z < 3.09.
        assert!(z < 3.09, "case {k}: chi-square rejects (z = {z:.2})");
    }
}

/// Exchange moves on a lattice whose bonds split the sites into groups (three dimers) swap any
/// two sites instead of bond partners: the chains still reproduce |ψ|² over the whole S^z
/// sector, where swaps along the bonds alone would keep each group's magnetization fixed.
#[test]
fn exchange_moves_on_disconnected_bonds_follow_the_exact_distribution() {
    let text = "[lattice]\nkind = \"custom\"\nedges = [[0, 1], [2, 3], [4, 5]]\n[model]\nkind = \"heisenberg\"\ntotal_sz = 0\n";
    let model = nqs::config::parse(text, std::path::Path::new("t.toml"), &[]).unwrap();
    let (settings, notes) = model
        .config
        .sampler
        .settings(&model.lattice, &model.hamiltonian)
        .unwrap();
    assert!(
        notes.iter().any(|n| n.contains("3 disconnected groups")),
        "{notes:?}"
    );
    let rbm = Rbm::random(6, RbmKind::Dense { alpha: 2 }, 0.5, 5);
    let exact = exact_distribution(&rbm, Some(3));
    let max_p = exact.values().copied().fold(0.0, f64::max);
    assert!(max_p > 2.0 / exact.len() as f64, "too flat: {max_p}");
    let (chains, per_chain) = (50, 10_000);
    let counts = histogram(&rbm, settings.rule, Some(3), chains, per_chain, None);
    let (tv, z) = compare(&exact, &counts, (chains * per_chain) as f64);
    assert!(tv < 0.01, "total variation {tv}");
    assert!(z < 3.09, "chi-square rejects (z = {z:.2})");
}

/// A dense RBM (random parameters of spread `std`) on the periodic chain of `n` sites projected
/// onto momentum `2πm/n` (and spin inversion `z`, and the reflection's symmetric representation
/// when `point_group`).
fn projected(
    n: usize,
    (m, z, point_group): (usize, Option<i8>, bool),
    std: f64,
    seed: u64,
) -> ProjectedRbm {
    let lattice = Lattice::chain(n, Boundary::Periodic);
    let projection = Projection::new(&lattice, Some(&[m]), z, point_group, &|_, _| 1.0);
    ProjectedRbm::new(
        Rbm::random(n, RbmKind::Dense { alpha: 2 }, std, seed),
        projection,
    )
}

/// An RBM with filters shared over the chain's space group (translations and reflection),
/// projected onto spin inversion `z`.
fn symmetric_with_inversion(n: usize, z: i8, std: f64) -> ProjectedRbm {
    let lattice = Lattice::chain(n, Boundary::Periodic);
    let projection = Projection::new(&lattice, None, Some(z), false, &|_, _| 1.0);
    ProjectedRbm::new(
        Rbm::random(n, RbmKind::symmetric(2, &lattice, true), std, 14),
        projection,
    )
}

#[test]
fn samples_of_a_projected_rbm_follow_its_exact_distribution() {
    // |ψ_{k,z}|², with the states whose amplitude vanishes by symmetry (p = 0) never visited.
    let n = 8;
    let exchange: Arc<dyn ProposalRule> = Arc::new(Exchange {
        bonds: Lattice::chain(n, Boundary::Periodic).bonds().to_vec(),
    });
    let cases: Vec<(ProjectedRbm, Arc<dyn ProposalRule>, Option<usize>)> = vec![
        (
            projected(n, (3, None, false), 0.5, 11),
            Arc::new(LocalFlip),
            None,
        ),
        (
            projected(n, (2, Some(-1), false), 0.5, 12),
            exchange,
            Some(4),
        ),
    ];
    check_sampling(cases, true, (5_000, 10));
}

/// The point group in the projection (dense RBM, k = 0, z = +1, with the reflection) and in
/// the shared weights (symmetric RBM projected on z = +1), at L = 10: sectors where exchange
/// moves connect every allowed state. (At L = 8 several sectors with the reflection split into
/// pieces that nearest-neighbour exchanges cannot join through zero amplitudes, and at L = 10,
/// k = π, z = −1 a random RBM has amplitudes ~1e-5 of the largest that the moves must cross:
/// a Markov chain would stay in the piece it started in. Both are properties of the
/// distribution, not of the sampler. At L = 10 the parameters are smaller than at L = 8 for the
/// same reason: with spread 0.5 a random RBM has ~100 of 252 states below 1e-6 of the largest
/// probability, and exchange moves cross them slowly.)
#[test]
fn samples_with_the_point_group_follow_the_exact_distribution() {
    let n = 10;
    let exchange: Arc<dyn ProposalRule> = Arc::new(Exchange {
        bonds: Lattice::chain(n, Boundary::Periodic).bonds().to_vec(),
    });
    let cases: Vec<(ProjectedRbm, Arc<dyn ProposalRule>, Option<usize>)> = vec![
        (
            projected(n, (0, Some(1), true), 0.25, 13),
            exchange.clone(),
            Some(5),
        ),
        (symmetric_with_inversion(n, 1, 0.1), exchange, Some(5)),
    ];
    // Exchange moves mix these L = 10 sectors more slowly than the L = 8 ones: farther apart.
    check_sampling(cases, false, (2_000, 30));
}

/// Histograms of `20 × per_chain` samples, `sweeps_apart` sweeps apart, per case against |ψ|²
/// (normalized over the sector), and no visit to a state whose amplitude vanishes (by symmetry,
/// or the all-up state of a spin-lowered RBM; `with_zeros`: the sector must have some).
fn check_sampling<A: Ansatz>(
    cases: Vec<(A, Arc<dyn ProposalRule>, Option<usize>)>,
    with_zeros: bool,
    (per_chain, sweeps_apart): (usize, usize),
) {
    for (k, (ansatz, rule, n_up)) in cases.into_iter().enumerate() {
        let exact = exact_distribution(&ansatz, n_up);
        let zero: Vec<u64> = exact
            .iter()
            .filter(|(_, &p)| p < 1e-20)
            .map(|(&s, _)| s)
            .collect();
        assert_eq!(
            !zero.is_empty(),
            with_zeros,
            "case {k}: {} states of zero amplitude",
            zero.len()
        );
        // Translations spread each orbit's weight evenly over its states: ask for one state
        // twice as likely as the average allowed one.
        let max_p = exact.values().copied().fold(0.0, f64::max);
        let allowed = (exact.len() - zero.len()) as f64;
        assert!(
            max_p > 2.0 / allowed,
            "case {k}: too flat ({max_p} · {allowed})"
        );
        // Each move costs |G| = 2–40 RBM ratios: 4·10⁴–10⁵ samples (total variation
        // ~0.01–0.03 from counting noise alone; χ² is the sharp test).
        let chains = 20;
        let counts = histogram(&ansatz, rule, n_up, chains, per_chain, Some(sweeps_apart));
        for s in &zero {
            assert!(
                !counts.contains_key(s),
                "case {k}: visited a zero amplitude {s:b}"
            );
        }
        let (tv, z) = compare(&exact, &counts, (chains * per_chain) as f64);
        assert!(tv < 0.05, "case {k}: total variation {tv}");
        assert!(z < 3.09, "case {k}: chi-square rejects (z = {z:.2})");
        eprintln!("case {k}: total variation {tv:.4}, χ² z-score {z:.2}");
    }
}

/// `S^-` applied to an RBM (exchange moves re-use a raised configuration for the spin that goes
/// down; single flips that lower S^z recompute). In the physical basis (ε = 1) with exchange
/// moves at S^z = −1, and with the Marshall signs of the chain and single flips over all
/// S^z, where the all-up state has no down spin to lower and so amplitude zero. (With the
/// Marshall signs at fixed S^z, exchange moves must cross the near-zeros of configurations with
/// as many down spins on each sublattice, `Σ_{j down} ε_j ≈ 0`: a random RBM's chains there mix
/// too slowly for a test of this size.)
#[test]
fn samples_of_a_spin_lowered_rbm_follow_its_exact_distribution() {
    let n = 8;
    let exchange: Arc<dyn ProposalRule> = Arc::new(Exchange {
        bonds: Lattice::chain(n, Boundary::Periodic).bonds().to_vec(),
    });
    let lowered = |seed, std, signs: &[f64]| {
        SpinLowered::new(
            Rbm::random(n, RbmKind::Dense { alpha: 2 }, std, seed),
            signs,
        )
    };
    let marshall: Vec<f64> = (0..n)
        .map(|j| if j % 2 == 1 { -1.0 } else { 1.0 })
        .collect();
    let local: Arc<dyn ProposalRule> = Arc::new(LocalFlip);
    check_sampling(
        vec![(lowered(15, 0.4, &marshall), local, None)],
        true,
        (10_000, 20),
    );
    check_sampling(
        vec![(lowered(16, 0.3, &[1.0; 8]), exchange, Some(3))],
        false,
        (10_000, 20),
    );
}

#[test]
fn samples_do_not_depend_on_thread_count() {
    let rbm = Rbm::random(12, RbmKind::Dense { alpha: 2 }, 0.3, 8);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let settings = SamplerSettings {
                rule: Arc::new(Exchange {
                    bonds: Lattice::chain(12, Boundary::Periodic).bonds().to_vec(),
                }),
                sweep: 12,
                thermalization: 20,
                samples_per_chain: 50,
                refresh_every: 10,
                n_up: Some(6),
            };
            let mut sampler = MetropolisSampler::new(&rbm, settings, 7, 0, 8);
            let mut samples = sampler.new_sample_set(&rbm);
            sampler.sample(&rbm, &mut samples);
            sampler.sample(&rbm, &mut samples);
            samples.sigma
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(4));
}
