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

use crate::ansatz::Ansatz;
use crate::config::SamplerKind;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// How the sampler moves.
#[derive(Clone, Debug)]
pub enum Moves {
    Local,
    /// Exchange along these bonds.
    Exchange(Vec<[usize; 2]>),
}

/// Immutable sampler settings.
#[derive(Clone, Debug)]
pub struct SamplerSettings {
    pub moves: Moves,
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

impl SamplerSettings {
    pub fn kind(&self) -> SamplerKind {
        match self.moves {
            Moves::Local => SamplerKind::Local,
            Moves::Exchange(_) => SamplerKind::Exchange,
        }
    }
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
fn random_configuration(n: usize, n_up: Option<usize>, rng: &mut Xoshiro256PlusPlus) -> Vec<i8> {
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
                }
            })
            .collect();
        MetropolisSampler {
            settings,
            first_chain,
            chains,
        }
    }

    /// An empty sample set of the right size for this sampler.
    pub fn new_sample_set<A: Ansatz<Cache = C>>(&self, ansatz: &A) -> SampleSet<C> {
        let total = self.settings.samples_per_chain * self.chains.len();
        SampleSet {
            n_sites: ansatz.n_sites(),
            samples_per_chain: self.settings.samples_per_chain,
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
        let settings = &self.settings;
        let n = ansatz.n_sites();
        let per_chain = settings.samples_per_chain;
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
                for s in 0..per_chain {
                    sweep(ansatz, settings, chain);
                    if settings.refresh_every > 0 && (s + 1) % settings.refresh_every == 0 {
                        ansatz.refresh(&chain.sigma, &mut chain.cache);
                    }
                    sigmas[s * n..(s + 1) * n].copy_from_slice(&chain.sigma);
                    caches[s].clone_from(&chain.cache);
                }
                (chain.accepted - acc0, chain.proposed - prop0)
            })
            .collect();
        let (accepted, proposed) = counts.iter().fold((0, 0), |(a, p), &(x, y)| (a + x, p + y));
        SweepInfo { accepted, proposed }
    }
}

/// `settings.sweep` Metropolis proposals on one chain.
fn sweep<A: Ansatz>(ansatz: &A, settings: &SamplerSettings, chain: &mut Chain<A::Cache>) {
    let n = chain.sigma.len();
    let mut flips = [0usize; 2];
    for _ in 0..settings.sweep {
        chain.proposed += 1;
        let count = match &settings.moves {
            Moves::Local => {
                flips[0] = chain.rng.random_range(0..n);
                1
            }
            Moves::Exchange(bonds) => {
                let [i, j] = bonds[chain.rng.random_range(0..bonds.len())];
                if chain.sigma[i] == chain.sigma[j] {
                    continue;
                }
                flips = [i, j];
                2
            }
        };
        let log_ratio = ansatz.log_ratio(&chain.sigma, &chain.cache, &flips[..count]);
        let u: f64 = chain.rng.random();
        if u.ln() < 2.0 * log_ratio.re {
            ansatz.flip(&mut chain.sigma, &mut chain.cache, &flips[..count]);
            chain.accepted += 1;
        }
    }
}
