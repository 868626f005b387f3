//! Metropolis–Hastings sampling of |ψ(σ)|² with many persistent chains in parallel.
//!
//! Moves are symmetric: `local` flips one random site, `exchange` swaps the spins of a random
//! nearest-neighbour bond (a null move when they are aligned), which conserves S^z. A move is
//! accepted with probability `min(1, |ψ(σ')/ψ(σ)|²) = min(1, exp(2 Re Δ log ψ))`, computed from
//! the chain's cache in O(|F|·M). One sample is taken every sweep (`sweep` proposals, N by
//! default); the sample keeps its configuration and cache for the local-energy step. Chain c's
//! random stream is Xoshiro256++ seeded with the run seed and jumped c times (2^128 steps
//! each), so the samples depend only on (seed, global chain index), never on the thread or
//! rank layout.

mod moves;

pub use moves::{Exchange, LocalFlip, MoveKind, ProposalRule};

use crate::ansatz::Ansatz;
use crate::error::{check_count, Invalid};
use crate::lattice::Lattice;
use crate::operator::Hamiltonian;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The `[sampler]` section.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SamplerSpec {
    /// Default: `exchange` when the model conserves S^z, else `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MoveKind>,
    /// Global number of Markov chains (over all ranks and threads).
    #[serde(default = "default_chains")]
    pub chains: usize,
    /// Samples per iteration, all chains together (rounded up to a multiple of `chains`).
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Sweeps before the first sample of each chain.
    #[serde(default = "default_thermalization")]
    pub thermalization: usize,
    /// Proposals between two samples (default: one sweep = N proposals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<usize>,
}

fn default_chains() -> usize {
    16
}
fn default_samples() -> usize {
    1008
}
fn default_thermalization() -> usize {
    100
}

impl Default for SamplerSpec {
    fn default() -> Self {
        SamplerSpec {
            kind: None,
            chains: default_chains(),
            samples: default_samples(),
            thermalization: default_thermalization(),
            sweep: None,
        }
    }
}

impl SamplerSpec {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_count("sampler.chains", self.chains, 1, 1 << 20)?;
        check_count("sampler.samples", self.samples, 1, 1 << 26)?;
        check_count("sampler.thermalization", self.thermalization, 0, 1 << 24)?;
        if let Some(sweep) = self.sweep {
            check_count("sampler.sweep", sweep, 1, 1 << 24)?;
        }
        Ok(())
    }

    /// The move kind: the given one, else `exchange` for models that conserve S^z on two or more
    /// sites.
    pub fn resolved_kind(&self, hamiltonian: &Hamiltonian) -> MoveKind {
        let operator = &hamiltonian.operator;
        self.kind
            .unwrap_or(if operator.conserves_sz() && operator.n_sites() >= 2 {
                MoveKind::Exchange
            } else {
                MoveKind::Local
            })
    }

    /// Samples per chain (`samples` rounded up to a multiple of `chains`).
    pub fn samples_per_chain(&self) -> usize {
        self.samples.div_ceil(self.chains)
    }

    /// The sampler settings for a model, checking that the moves fit it; also returns notes
    /// for the log (rounding, implied sectors).
    pub fn settings(
        &self,
        lattice: &Lattice,
        hamiltonian: &Hamiltonian,
    ) -> Result<(SamplerSettings, Vec<String>), Invalid> {
        let n = lattice.n_sites();
        let mut notes = Vec::new();
        let rule: Arc<dyn ProposalRule> = match self.resolved_kind(hamiltonian) {
            MoveKind::Local => {
                if hamiltonian.n_up.is_some() {
                    return Err(Invalid::new("sampler.kind", "local moves leave the total_sz sector; use \"exchange\" or remove model.total_sz"));
                }
                Arc::new(LocalFlip)
            }
            MoveKind::Exchange => {
                if !hamiltonian.operator.conserves_sz() {
                    return Err(Invalid::new("sampler.kind", "exchange moves conserve S^z, but this model does not: they would not be ergodic; use \"local\""));
                }
                if n < 2 {
                    return Err(Invalid::new(
                        "sampler.kind",
                        "exchange moves need at least two sites; use \"local\"",
                    ));
                }
                let groups = crate::lattice::count_components(n, lattice.bonds());
                let bonds = if groups == 1 {
                    lattice.bonds().to_vec()
                } else {
                    // Swaps along the bonds alone could never move magnetization between the
                    // groups (not ergodic in the S^z sector).
                    notes.push(format!("the lattice bonds split the {n} sites into {groups} disconnected groups: exchange moves swap any two sites instead of bond partners"));
                    (0..n)
                        .flat_map(|i| (i + 1..n).map(move |j| [i, j]))
                        .collect()
                };
                Arc::new(Exchange { bonds })
            }
        };
        let n_up = match (rule.conserves_sz(), hamiltonian.n_up) {
            (true, None) => {
                notes.push(format!(
                    "exchange moves without model.total_sz: sampling the sector with {} up spins",
                    n / 2
                ));
                Some(n / 2)
            }
            (_, n_up) => n_up,
        };
        let per_chain = self.samples_per_chain();
        if per_chain * self.chains != self.samples {
            notes.push(format!(
                "sampler.samples rounded up to {} ({} chains × {per_chain})",
                per_chain * self.chains,
                self.chains
            ));
        }
        let settings = SamplerSettings {
            rule,
            sweep: self.sweep.unwrap_or(n),
            thermalization: self.thermalization,
            samples_per_chain: per_chain,
            refresh_every: 16,
            n_up,
        };
        Ok((settings, notes))
    }
}

/// Immutable sampler settings.
#[derive(Clone, Debug)]
pub struct SamplerSettings {
    pub rule: Arc<dyn ProposalRule>,
    /// Proposals between two samples.
    pub sweep: usize,
    /// Sweeps before the first sample of a new chain.
    pub thermalization: usize,
    pub samples_per_chain: usize,
    /// Sweeps between full recomputations of the cache (stops round-off drift).
    pub refresh_every: usize,
    /// Number of up spins of the initial configurations (None: uniformly random spins).
    pub n_up: Option<usize>,
}

/// One Markov chain: its configuration, cache, random stream and counters.
#[derive(Clone, Debug)]
pub struct Chain<C> {
    pub sigma: Vec<i8>,
    pub cache: C,
    pub rng: Xoshiro256PlusPlus,
    pub thermalized: bool,
    pub accepted: u64,
    pub proposed: u64,
    /// Scratch for the sites of a proposal.
    flips: Vec<usize>,
}

/// The random stream of global chain `index` for run seed `seed`.
pub fn chain_rng(seed: u64, index: usize) -> Xoshiro256PlusPlus {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for _ in 0..index {
        rng.jump();
    }
    rng
}

/// The four state words of a chain's random stream (for checkpoints).
pub fn rng_state(rng: &Xoshiro256PlusPlus) -> [u64; 4] {
    let value = serde_json::to_value(rng).expect("the generator serializes");
    let mut words = [0u64; 4];
    for (k, w) in words.iter_mut().enumerate() {
        *w = value["s"][k].as_u64().expect("four state words");
    }
    words
}

/// A random stream restored from [`rng_state`] (Xoshiro256++ seeds its state from the bytes).
pub fn rng_from_state(words: [u64; 4]) -> Xoshiro256PlusPlus {
    let mut seed = [0u8; 32];
    for (k, w) in words.iter().enumerate() {
        seed[8 * k..8 * k + 8].copy_from_slice(&w.to_le_bytes());
    }
    Xoshiro256PlusPlus::from_seed(seed)
}

/// A random configuration with `n_up` up spins (or uniformly random spins).
pub fn random_configuration(
    n: usize,
    n_up: Option<usize>,
    rng: &mut Xoshiro256PlusPlus,
) -> Vec<i8> {
    match n_up {
        None => (0..n)
            .map(|_| if rng.random::<bool>() { 1 } else { -1 })
            .collect(),
        Some(k) => {
            let mut sigma: Vec<i8> = (0..n).map(|i| if i < k { 1 } else { -1 }).collect();
            for i in (1..n).rev() {
                let j = rng.random_range(0..=i);
                sigma.swap(i, j);
            }
            sigma
        }
    }
}

/// The state of a set of chains, as stored in checkpoints (row c is chain c).
#[derive(Clone, Debug, PartialEq)]
pub struct ChainStates {
    pub configurations: ndarray::Array2<i8>,
    pub rng_words: ndarray::Array2<u64>,
    pub thermalized: Vec<bool>,
}

/// Samples of one iteration: configurations (chain-major) with their caches.
#[derive(Clone, Debug, Default)]
pub struct SampleSet<C> {
    pub n_sites: usize,
    pub samples_per_chain: usize,
    /// `sigma[s·N..(s+1)·N]` is sample s.
    pub sigma: Vec<i8>,
    pub caches: Vec<C>,
}

impl<C> SampleSet<C> {
    pub fn len(&self) -> usize {
        self.caches.len()
    }
    pub fn is_empty(&self) -> bool {
        self.caches.is_empty()
    }
    pub fn configuration(&self, s: usize) -> &[i8] {
        &self.sigma[s * self.n_sites..(s + 1) * self.n_sites]
    }
}

/// Acceptance counts of one call to [`MetropolisSampler::sample`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SweepInfo {
    pub accepted: u64,
    pub proposed: u64,
}

impl SweepInfo {
    pub fn acceptance(&self) -> f64 {
        if self.proposed == 0 {
            0.0
        } else {
            self.accepted as f64 / self.proposed as f64
        }
    }
}

/// The local chains of this process (global indices `first_chain..first_chain + chains.len()`).
#[derive(Clone, Debug)]
pub struct MetropolisSampler<C> {
    pub settings: SamplerSettings,
    pub first_chain: usize,
    pub chains: Vec<Chain<C>>,
}

impl<C: Clone + Send + Sync> MetropolisSampler<C> {
    /// New chains `first_chain..first_chain + local_chains` with random initial configurations.
    pub fn new<A: Ansatz<Cache = C>>(
        ansatz: &A,
        settings: SamplerSettings,
        seed: u64,
        first_chain: usize,
        local_chains: usize,
    ) -> Self {
        let n = ansatz.n_sites();
        let chains = (first_chain..first_chain + local_chains)
            .map(|index| {
                let mut rng = chain_rng(seed, index);
                let sigma = random_configuration(n, settings.n_up, &mut rng);
                Chain {
                    sigma,
                    cache: ansatz.new_cache(),
                    rng,
                    thermalized: false,
                    accepted: 0,
                    proposed: 0,
                    flips: Vec::with_capacity(settings.rule.max_flips()),
                }
            })
            .collect();
        MetropolisSampler {
            settings,
            first_chain,
            chains,
        }
    }

    /// The state of the local chains (global indices from `first_chain`).
    pub fn export(&self) -> ChainStates {
        let n = self.chains.first().map_or(0, |c| c.sigma.len());
        let count = self.chains.len();
        ChainStates {
            configurations: ndarray::Array2::from_shape_fn((count, n), |(c, i)| {
                self.chains[c].sigma[i]
            }),
            rng_words: ndarray::Array2::from_shape_fn((count, 4), |(c, k)| {
                rng_state(&self.chains[c].rng)[k]
            }),
            thermalized: self.chains.iter().map(|c| c.thermalized).collect(),
        }
    }

    /// Takes this process's chains from the states of all chains (a checkpoint), after checking
    /// every shape and value: spins ±1, the sampled S^z sector, non-zero random streams.
    pub fn restore(&mut self, all: &ChainStates) -> Result<(), String> {
        let n = self.chains.first().map_or(0, |c| c.sigma.len());
        let total = all.thermalized.len();
        if all.configurations.dim() != (total, n) || all.rng_words.dim() != (total, 4) {
            return Err(format!(
                "chain states of shape {:?} / {:?} for {total} chains of {n} sites",
                all.configurations.dim(),
                all.rng_words.dim()
            ));
        }
        if self.first_chain + self.chains.len() > total {
            return Err(format!(
                "{total} stored chains, but this run has at least {}",
                self.first_chain + self.chains.len()
            ));
        }
        for (k, chain) in self.chains.iter_mut().enumerate() {
            let c = self.first_chain + k;
            let row = all.configurations.row(c);
            if row.iter().any(|&s| s != 1 && s != -1) {
                return Err(format!("chain {c}: spins must be +1 or -1"));
            }
            let up = row.iter().filter(|&&s| s > 0).count();
            if let Some(n_up) = self.settings.n_up {
                if up != n_up {
                    return Err(format!(
                        "chain {c} has {up} up spins, but the sampled sector has {n_up}"
                    ));
                }
            }
            let words = all.rng_words.row(c);
            let words = [words[0], words[1], words[2], words[3]];
            if words == [0; 4] {
                return Err(format!("chain {c}: the random stream state is all zero"));
            }
            chain.sigma = row.to_vec();
            chain.rng = rng_from_state(words);
            chain.thermalized = all.thermalized[c];
        }
        Ok(())
    }

    /// An empty sample set of the right size for this sampler.
    pub fn new_sample_set<A: Ansatz<Cache = C>>(&self, ansatz: &A) -> SampleSet<C> {
        self.sample_set_of(ansatz, self.settings.samples_per_chain)
    }

    /// An empty sample set with `per_chain` samples per local chain.
    pub fn sample_set_of<A: Ansatz<Cache = C>>(
        &self,
        ansatz: &A,
        per_chain: usize,
    ) -> SampleSet<C> {
        let total = per_chain * self.chains.len();
        SampleSet {
            n_sites: ansatz.n_sites(),
            samples_per_chain: per_chain,
            sigma: vec![0; total * ansatz.n_sites()],
            caches: vec![ansatz.new_cache(); total],
        }
    }

    /// Runs every chain (in parallel) for `samples_per_chain` sweeps, thermalizing new chains
    /// first, and stores the samples in `out`.
    pub fn sample<A: Ansatz<Cache = C>>(
        &mut self,
        ansatz: &A,
        out: &mut SampleSet<C>,
    ) -> SweepInfo {
        let per_chain = out.samples_per_chain;
        self.sample_range(ansatz, out, 0..per_chain)
    }

    /// Samples number `range` of every chain into `out`, which holds `range.len()` samples per
    /// chain (chains continue where they stopped, and the cache refresh schedule counts from
    /// `range.start`, so consecutive ranges give the same samples as one call over their union).
    pub fn sample_range<A: Ansatz<Cache = C>>(
        &mut self,
        ansatz: &A,
        out: &mut SampleSet<C>,
        range: std::ops::Range<usize>,
    ) -> SweepInfo {
        let settings = &self.settings;
        let n = ansatz.n_sites();
        let per_chain = out.samples_per_chain;
        assert_eq!(
            range.len(),
            per_chain,
            "the sample range must fill the chain's block"
        );
        let counts: Vec<(u64, u64)> = self
            .chains
            .par_iter_mut()
            .zip(out.sigma.par_chunks_mut(per_chain * n))
            .zip(out.caches.par_chunks_mut(per_chain))
            .map(|((chain, sigmas), caches)| {
                ansatz.refresh(&chain.sigma, &mut chain.cache);
                if !chain.thermalized {
                    for _ in 0..settings.thermalization {
                        sweep(ansatz, settings, chain);
                    }
                    chain.thermalized = true;
                }
                let (acc0, prop0) = (chain.accepted, chain.proposed);
                for s in range.clone() {
                    sweep(ansatz, settings, chain);
                    if settings.refresh_every > 0 && (s + 1) % settings.refresh_every == 0 {
                        ansatz.refresh(&chain.sigma, &mut chain.cache);
                    }
                    let k = s - range.start;
                    sigmas[k * n..(k + 1) * n].copy_from_slice(&chain.sigma);
                    caches[k].clone_from(&chain.cache);
                }
                (chain.accepted - acc0, chain.proposed - prop0)
            })
            .collect();
        let (accepted, proposed) = counts.iter().fold((0, 0), |(a, p), &(x, y)| (a + x, p + y));
        SweepInfo { accepted, proposed }
    }
}

/// `settings.sweep` Metropolis proposals on one chain (null moves count as proposals).
fn sweep<A: Ansatz>(ansatz: &A, settings: &SamplerSettings, chain: &mut Chain<A::Cache>) {
    for _ in 0..settings.sweep {
        chain.proposed += 1;
        if !settings
            .rule
            .propose(&chain.sigma, &mut chain.rng, &mut chain.flips)
        {
            continue;
        }
        let log_modulus = ansatz.log_modulus_ratio(&chain.sigma, &chain.cache, &chain.flips);
        let u: f64 = chain.rng.random();
        if u.ln() < 2.0 * log_modulus {
            ansatz.flip(&mut chain.sigma, &mut chain.cache, &chain.flips);
            chain.accepted += 1;
        }
    }
}
