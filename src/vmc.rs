//! Variational Monte Carlo: the driver loop `sample → local energy → statistics → update`.
//!
//! Local energies `E_loc(σ) = Σ_σ' ⟨σ|H|σ'⟩ ψ(σ')/ψ(σ)` use the operator's connected elements and
//! the ansatz's cached ratios (never a full re-evaluation). Everything a restart needs lives in
//! [`VmcState`]; the configuration is immutable.

use crate::ansatz::{Ansatz, Rbm, RbmKind};
use crate::config::{AnsatzKind, Config, LatticeKind, SamplerKind};
use crate::dist::Communicator;
use crate::error::{Error, Result};
use crate::lattice::Lattice;
use crate::operator::{Hamiltonian, PauliString, PauliSum, Row};
use crate::optimizer::{self, OptimizerState, UpdateInfo};
use crate::sampler::{MetropolisSampler, Moves, SampleSet, SamplerSettings, SweepInfo};
use crate::stats::{statistics, Stats};
use ndarray::{Array1, Array2, Axis};
use num_complex::Complex64;
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// `E_loc(σ_s)` of every sample for any operator, in parallel (one scratch row per task).
pub fn local_values<A: Ansatz>(
    op: &PauliSum,
    ansatz: &A,
    samples: &SampleSet<A::Cache>,
    out: &mut [Complex64],
) {
    out.par_iter_mut()
        .enumerate()
        .for_each_init(Row::default, |row, (s, e)| {
            let sigma = samples.configuration(s);
            let cache = &samples.caches[s];
            op.row(sigma, row);
            let mut sum = row.diagonal;
            for (&g, &element) in row.groups.iter().zip(&row.elements) {
                sum += element * ansatz.ratio(sigma, cache, op.flipped_sites(g));
            }
            *e = sum;
        });
}

/// Builds the ansatz of a configuration (random parameters from the run seed).
pub fn build_ansatz(config: &Config, lattice: &Lattice, path: &Path) -> Result<Rbm> {
    let n = lattice.n_sites();
    let kind = match config.ansatz.kind {
        AnsatzKind::Rbm => RbmKind::Dense {
            alpha: config.ansatz.alpha,
        },
        AnsatzKind::RbmSymm => {
            if lattice.translations().len() < 2 || config.lattice.kind == LatticeKind::Custom {
                return Err(Error::key(path, "ansatz.kind", "rbm_symm needs a periodic chain or square lattice (it shares weights over translations)"));
            }
            RbmKind::translation_symmetric(config.ansatz.alpha, lattice)
        }
    };
    let hidden = match &kind {
        RbmKind::Dense { alpha } => alpha * n,
        RbmKind::Symmetric { alpha, perms } => alpha * perms.len(),
    };
    if (hidden as u64) * (n as u64) > 50_000_000 {
        return Err(Error::key(
            path,
            "ansatz.alpha",
            format!("{hidden} hidden units × {n} sites is too large"),
        ));
    }
    Ok(Rbm::random(
        n,
        kind,
        config.ansatz.init_std,
        config.run.seed ^ 0x9e37_79b9_7f4a_7c15,
    ))
}

/// Sampler settings of a configuration; checks that the moves fit the model.
pub fn sampler_settings(
    config: &Config,
    lattice: &Lattice,
    hamiltonian: &Hamiltonian,
    path: &Path,
) -> Result<(SamplerSettings, Vec<String>)> {
    let n = lattice.n_sites();
    let conserves = hamiltonian.operator.conserves_sz();
    let mut notes = Vec::new();
    let kind = config.sampler.kind.unwrap_or(if conserves {
        SamplerKind::Exchange
    } else {
        SamplerKind::Local
    });
    let moves = match kind {
        SamplerKind::Local => {
            if hamiltonian.n_up.is_some() {
                return Err(Error::key(path, "sampler.kind", "local moves leave the total_sz sector; use \"exchange\" or remove model.total_sz"));
            }
            Moves::Local
        }
        SamplerKind::Exchange => {
            if !conserves {
                return Err(Error::key(path, "sampler.kind", "exchange moves conserve S^z, but this model does not: they would not be ergodic; use \"local\""));
            }
            if lattice.bonds().is_empty() {
                return Err(Error::key(
                    path,
                    "sampler.kind",
                    "exchange moves need lattice bonds",
                ));
            }
            Moves::Exchange(lattice.bonds().to_vec())
        }
    };
    let n_up = match (&moves, hamiltonian.n_up) {
        (Moves::Exchange(_), None) => {
            notes.push(format!(
                "exchange moves without model.total_sz: sampling the sector with {} up spins",
                n / 2
            ));
            Some(n / 2)
        }
        (_, n_up) => n_up,
    };
    let chains = config.sampler.chains;
    let per_chain = config.sampler.samples.div_ceil(chains);
    if per_chain * chains != config.sampler.samples {
        notes.push(format!(
            "sampler.samples rounded up to {} ({} chains × {per_chain})",
            per_chain * chains,
            chains
        ));
    }
    let settings = SamplerSettings {
        moves,
        sweep: config.sampler.sweep.unwrap_or(n),
        thermalization: config.sampler.thermalization,
        samples_per_chain: per_chain,
        refresh_every: 16,
        n_up,
    };
    Ok((settings, notes))
}

/// One row of the optimization history.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryRow {
    pub iteration: usize,
    pub energy: f64,
    pub energy_imag: f64,
    pub error: f64,
    pub variance: f64,
    pub r_hat: f64,
    pub tau: f64,
    pub acceptance: f64,
    pub learning_rate: f64,
    pub diag_shift: f64,
    pub cg_iterations: usize,
    pub solver_residual: f64,
    pub wall_time: f64,
}

impl HistoryRow {
    /// Column names of the stored history, in the order of [`values`](Self::values).
    pub const COLUMNS: [&'static str; 13] = [
        "iteration",
        "energy",
        "energy_imag",
        "error",
        "variance",
        "r_hat",
        "tau",
        "acceptance",
        "learning_rate",
        "diag_shift",
        "cg_iterations",
        "solver_residual",
        "wall_time",
    ];

    pub fn values(&self) -> [f64; 13] {
        [
            self.iteration as f64,
            self.energy,
            self.energy_imag,
            self.error,
            self.variance,
            self.r_hat,
            self.tau,
            self.acceptance,
            self.learning_rate,
            self.diag_shift,
            self.cg_iterations as f64,
            self.solver_residual,
            self.wall_time,
        ]
    }

    pub fn from_values(v: &[f64]) -> HistoryRow {
        HistoryRow {
            iteration: v[0] as usize,
            energy: v[1],
            energy_imag: v[2],
            error: v[3],
            variance: v[4],
            r_hat: v[5],
            tau: v[6],
            acceptance: v[7],
            learning_rate: v[8],
            diag_shift: v[9],
            cg_iterations: v[10] as usize,
            solver_residual: v[11],
            wall_time: v[12],
        }
    }
}

/// Everything a restart needs: parameters, optimizer state, chains, iteration and history.
#[derive(Clone, Debug)]
pub struct VmcState {
    pub ansatz: Rbm,
    pub optimizer: OptimizerState,
    pub sampler: MetropolisSampler<crate::ansatz::RbmCache>,
    pub history: Vec<HistoryRow>,
}

/// What one iteration measured and did.
#[derive(Clone, Debug)]
pub struct IterationReport {
    pub energy: Stats,
    pub sweep: SweepInfo,
    pub update: UpdateInfo,
}

/// The VMC driver: immutable problem plus mutable [`VmcState`].
pub struct Driver<'a> {
    pub config: &'a Config,
    pub hamiltonian: &'a Hamiltonian,
    pub comm: &'a dyn Communicator,
    pub memory_limit: u64,
    pub state: VmcState,
    samples: SampleSet<crate::ansatz::RbmCache>,
    e_loc: Vec<Complex64>,
    derivatives: Array2<Complex64>,
}

impl<'a> Driver<'a> {
    pub fn new(
        config: &'a Config,
        hamiltonian: &'a Hamiltonian,
        comm: &'a dyn Communicator,
        state: VmcState,
        memory_limit: u64,
    ) -> Self {
        let samples = state.sampler.new_sample_set(&state.ansatz);
        let ns = samples.len();
        let p = state.ansatz.n_parameters();
        Driver {
            config,
            hamiltonian,
            comm,
            memory_limit,
            state,
            samples,
            e_loc: vec![Complex64::new(0.0, 0.0); ns],
            derivatives: Array2::zeros((ns, p)),
        }
    }

    /// Chains over all ranks, from this rank's `local` count.
    fn total_chains(&self, local: usize) -> usize {
        let mut count = [local as u64];
        self.comm.sum_u64(&mut count);
        count[0] as usize
    }

    /// Samples the current state and returns the local energies' statistics.
    pub fn measure_energy(&mut self) -> (Stats, SweepInfo) {
        let sweep = self
            .state
            .sampler
            .sample(&self.state.ansatz, &mut self.samples);
        local_values(
            &self.hamiltonian.operator,
            &self.state.ansatz,
            &self.samples,
            &mut self.e_loc,
        );
        let chains = self.state.sampler.chains.len();
        let comm = self.comm;
        let stats = statistics(
            &self.e_loc,
            chains,
            self.state.sampler.first_chain,
            self.total_chains(self.state.sampler.chains.len()),
            &|d| comm.sum_f64(d),
        );
        (stats, sweep)
    }

    /// One optimization step; on failure the parameters are left unchanged.
    pub fn step(&mut self) -> Result<IterationReport> {
        let (energy, sweep) = self.measure_energy();
        if !(energy.mean.re.is_finite()
            && energy.mean.im.is_finite()
            && energy.variance.is_finite())
        {
            return Err(Error::Numerical(format!(
                "iteration {}: the energy is not finite ({})",
                self.state.optimizer.iteration, energy.mean
            )));
        }
        let ns = self.samples.len();
        let ansatz = &self.state.ansatz;
        let samples = &self.samples;
        self.derivatives
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(s, mut row)| {
                ansatz.log_derivatives(
                    samples.configuration(s),
                    &samples.caches[s],
                    row.as_slice_mut().expect("row-major"),
                );
            });
        // Every rank holds the same number of samples per chain: N_s = per_chain × chains.
        let ns_total = (ns / self.state.sampler.chains.len().max(1)
            * self.total_chains(self.state.sampler.chains.len())) as f64;
        let scale = 1.0 / ns_total.sqrt();
        let mut mean = self.derivatives.sum_axis(Axis(0));
        self.comm.sum_c64(mean.as_slice_mut().expect("contiguous"));
        mean.mapv_inplace(|m| m / ns_total);
        self.derivatives
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut row| {
                row.zip_mut_with(&mean, |o, m| *o = (*o - m) * scale);
            });
        let e_centered: Array1<Complex64> = self
            .e_loc
            .iter()
            .map(|e| (e - energy.mean) * scale)
            .collect();
        let (delta, update) = optimizer::update(
            &self.config.optimizer,
            &mut self.state.optimizer,
            &self.derivatives.view(),
            &e_centered,
            self.memory_limit,
            self.comm,
        )?;
        let params: Vec<Complex64> = self
            .state
            .ansatz
            .parameters()
            .iter()
            .zip(delta.iter())
            .map(|(p, d)| p + d)
            .collect();
        self.state.ansatz.set_parameters(&params);
        Ok(IterationReport {
            energy,
            sweep,
            update,
        })
    }

    /// Samples of the current state for observables (a fresh sample set of `n` per chain).
    pub fn observe(&mut self, samples_per_chain: usize) -> Observables {
        let mut sampler = self.state.sampler.clone();
        sampler.settings.samples_per_chain = samples_per_chain;
        let mut samples = sampler.new_sample_set(&self.state.ansatz);
        sampler.sample(&self.state.ansatz, &mut samples);
        let chains = sampler.chains.len();
        let (first, total) = (sampler.first_chain, self.total_chains(sampler.chains.len()));
        let comm = self.comm;
        let reduce = |d: &mut [f64]| comm.sum_f64(d);
        let ansatz = &self.state.ansatz;
        let mut values = vec![Complex64::new(0.0, 0.0); samples.len()];
        local_values(&self.hamiltonian.operator, ansatz, &samples, &mut values);
        let energy = statistics(&values, chains, first, total, &reduce);
        let extra = self
            .config
            .observables
            .iter()
            .map(|o| {
                let op = PauliSum::new(
                    ansatz.n_sites(),
                    [PauliString::parse(
                        Complex64::new(1.0, 0.0),
                        &o.ops,
                        &o.sites,
                    )],
                );
                local_values(&op, ansatz, &samples, &mut values);
                (
                    o.name.clone(),
                    statistics(&values, chains, first, total, &reduce),
                )
            })
            .collect();
        Observables {
            energy,
            samples,
            chains,
            first_chain: first,
            total_chains: total,
            extra,
        }
    }
}

/// Samples and estimates after convergence.
pub struct Observables {
    pub energy: Stats,
    pub samples: SampleSet<crate::ansatz::RbmCache>,
    /// Local chains, the global index of the first, and all chains of all ranks.
    pub chains: usize,
    pub first_chain: usize,
    pub total_chains: usize,
    /// Pauli strings listed in the model file, by name.
    pub extra: Vec<(String, Stats)>,
}

impl Observables {
    /// `⟨S^z_i S^z_j⟩ = ⟨Z_i Z_j⟩/4` with the error of the mean from per-chain means (sums
    /// of chain means and of their squares reduced over ranks).
    pub fn szsz(&self, comm: &dyn Communicator) -> (Array2<f64>, Array2<f64>) {
        let n = self.samples.n_sites;
        let per_chain = self.samples.samples_per_chain;
        let chain_means: Vec<Array2<f64>> = (0..self.chains)
            .into_par_iter()
            .map(|c| {
                let mut m = Array2::<f64>::zeros((n, n));
                for s in c * per_chain..(c + 1) * per_chain {
                    let sigma = self.samples.configuration(s);
                    for i in 0..n {
                        for j in 0..n {
                            m[[i, j]] += f64::from(sigma[i] * sigma[j]) * 0.25;
                        }
                    }
                }
                m / per_chain as f64
            })
            .collect();
        let mut sums = Array2::<f64>::zeros((2, n * n));
        for m in &chain_means {
            for (k, v) in m.iter().enumerate() {
                sums[[0, k]] += v;
                sums[[1, k]] += v * v;
            }
        }
        comm.sum_f64(sums.as_slice_mut().expect("contiguous"));
        let k = self.total_chains as f64;
        let mean = Array2::from_shape_fn((n, n), |(i, j)| sums[[0, i * n + j]] / k);
        let error = Array2::from_shape_fn((n, n), |(i, j)| {
            let m = mean[[i, j]];
            let var = ((sums[[1, i * n + j]] - k * m * m) / (k - 1.0).max(1.0)).max(0.0);
            (var / k).sqrt()
        });
        (mean, error)
    }

    /// Static structure factor `S(q) = (1/N) |Σ_i e^{iq·r_i} σ_i|²` (Pauli units) with error bars,
    /// on the momentum grid of a chain or square lattice.
    pub fn structure_factor(
        &self,
        lattice: &Lattice,
        comm: &dyn Communicator,
    ) -> Vec<(Vec<f64>, Stats)> {
        let n = lattice.n_sites();
        let coords: Vec<Vec<usize>> = (0..n).map(|i| lattice.coordinates(i)).collect();
        lattice
            .momentum_indices()
            .into_iter()
            .map(|m| {
                let q = lattice.momentum(&m);
                let phases: Vec<Complex64> = coords
                    .iter()
                    .map(|r| {
                        Complex64::from_polar(
                            1.0,
                            r.iter().zip(&q).map(|(&x, qd)| x as f64 * qd).sum(),
                        )
                    })
                    .collect();
                let values: Vec<Complex64> = (0..self.samples.len())
                    .map(|s| {
                        let amp: Complex64 = self
                            .samples
                            .configuration(s)
                            .iter()
                            .zip(&phases)
                            .map(|(&x, p)| p * f64::from(x))
                            .sum();
                        Complex64::new(amp.norm_sqr() / n as f64, 0.0)
                    })
                    .collect();
                (
                    q,
                    statistics(
                        &values,
                        self.chains,
                        self.first_chain,
                        self.total_chains,
                        &|d| comm.sum_f64(d),
                    ),
                )
            })
            .collect()
    }
}

/// The state with the chains of every rank, in global order (a collective call: every rank must
/// make it; the result is complete on every rank). Chain configurations, random-stream words and
/// flags travel as zero-padded integer slots, so the sum over ranks is exact.
pub fn gather_state(state: &VmcState, comm: &dyn Communicator, total_chains: usize) -> VmcState {
    let n = state.ansatz.n_sites();
    let first = state.sampler.first_chain;
    let mut sigma = vec![0u64; total_chains * n];
    let mut words = vec![0u64; total_chains * 4];
    let mut flags = vec![0u64; total_chains];
    for (k, chain) in state.sampler.chains.iter().enumerate() {
        let c = first + k;
        for (i, &s) in chain.sigma.iter().enumerate() {
            sigma[c * n + i] = (s + 1) as u64;
        }
        words[4 * c..4 * c + 4].copy_from_slice(&crate::sampler::rng_state(&chain.rng));
        flags[c] = u64::from(chain.thermalized);
    }
    comm.sum_u64(&mut sigma);
    comm.sum_u64(&mut words);
    comm.sum_u64(&mut flags);
    let mut global = state.clone();
    global.sampler.first_chain = 0;
    let template = state.sampler.chains[0].clone();
    global.sampler.chains = (0..total_chains)
        .map(|c| {
            let mut chain = template.clone();
            chain.sigma = sigma[c * n..(c + 1) * n]
                .iter()
                .map(|&v| v as i8 - 1)
                .collect();
            chain.rng = crate::sampler::rng_from_state([
                words[4 * c],
                words[4 * c + 1],
                words[4 * c + 2],
                words[4 * c + 3],
            ]);
            chain.thermalized = flags[c] == 1;
            chain
        })
        .collect();
    global
}
