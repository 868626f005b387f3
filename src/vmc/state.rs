//! [`RunState`]: everything a restart needs, and its conversion to and from the store's record.

use super::{HistoryRow, Problem};
use crate::ansatz::Ansatz;
use crate::dist::{chain_range, Communicator};
use crate::io::{AnsatzRecord, ChainsRecord, HistoryRecord, OptimizerRecord, StateRecord};
use crate::optimizer::{AdamMoments, OptimizerState};
use crate::sampler::{rng_state, ChainStates, MetropolisSampler};
use ndarray::Array2;
use num_complex::Complex64;

/// Seed of the initial parameters, derived from the run seed.
const PARAMETER_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Parameters, optimizer state, this process's chains (configurations, random streams) and the
/// history: everything a restart needs. The iteration is `history.len()` (= the optimizer's
/// update count); the configuration lives in [`Model`].
#[derive(Clone, Debug)]
pub struct RunState<A: Ansatz> {
    pub ansatz: A,
    pub optimizer: OptimizerState,
    pub sampler: MetropolisSampler<A::Cache>,
    pub history: Vec<HistoryRow>,
    /// The sites whose down spins carry the Marshall sign of the sampled basis
    /// (`ψ_phys(σ) = (−1)^{down spins on them} ψ(σ)`); empty in the physical basis.
    pub marshall_sites: Vec<u64>,
}

impl<A: Ansatz> RunState<A> {
    /// A fresh state: `ansatz` as given, this process's chains from the run seed.
    pub fn new(problem: &Problem, ansatz: A, comm: &dyn Communicator) -> Self {
        let (settings, _) = problem
            .sampler
            .settings(problem.lattice, problem.hamiltonian)
            .expect("validated when the model was loaded");
        let (first, local) = chain_range(problem.sampler.chains, comm.rank(), comm.size());
        let sampler = MetropolisSampler::new(&ansatz, settings, problem.run.seed, first, local);
        RunState {
            ansatz,
            optimizer: OptimizerState::default(),
            sampler,
            history: Vec::new(),
            marshall_sites: problem.hamiltonian.marshall_sites(),
        }
    }

    /// The seed of the model's initial parameters.
    pub fn parameter_seed(run: &super::RunSpec) -> u64 {
        run.seed ^ PARAMETER_SEED
    }

    /// The whole state with the chains of every process, in global order (a collective call;
    /// the record is complete on every process). Configurations, random-stream words and flags
    /// travel as zero-padded integer slots, so the sum over processes is exact.
    pub fn record(&self, problem: &Problem, comm: &dyn Communicator) -> StateRecord {
        let n = self.ansatz.n_sites();
        let total = problem.sampler.chains;
        let first = self.sampler.first_chain;
        let mut sigma = vec![0u64; total * n];
        let mut words = vec![0u64; total * 4];
        let mut flags = vec![0u64; total];
        for (k, chain) in self.sampler.chains.iter().enumerate() {
            let c = first + k;
            for (i, &s) in chain.sigma.iter().enumerate() {
                sigma[c * n + i] = (s + 1) as u64;
            }
            words[4 * c..4 * c + 4].copy_from_slice(&rng_state(&chain.rng));
            flags[c] = u64::from(chain.thermalized);
        }
        comm.sum_u64(&mut sigma);
        comm.sum_u64(&mut words);
        comm.sum_u64(&mut flags);
        let hidden = self.ansatz.n_hidden();
        StateRecord {
            ansatz: AnsatzRecord {
                kind: self.ansatz.kind().into(),
                alpha: problem.ansatz.alpha(),
                n_sites: n,
                n_hidden: hidden,
                parameters: self.ansatz.parameters().to_vec(),
                marshall_sites: self.marshall_sites.clone(),
            },
            optimizer: OptimizerRecord {
                iteration: self.optimizer.iteration,
                adam_m: self.optimizer.adam.m.clone(),
                adam_v: self.optimizer.adam.v.clone(),
                last_solution: self.optimizer.warm_start.clone(),
                auto_direct: self.optimizer.direct,
            },
            chains: ChainsRecord {
                configurations: Array2::from_shape_fn((total, n), |(c, i)| {
                    sigma[c * n + i] as i8 - 1
                }),
                rng_state: Array2::from_shape_fn((total, 4), |(c, k)| words[4 * c + k]),
                thermalized: flags.iter().map(|&f| f as u8).collect(),
            },
            history: HistoryRecord {
                columns: HistoryRow::COLUMNS.iter().map(|c| c.to_string()).collect(),
                rows: self.history.iter().map(HistoryRow::values).collect(),
            },
        }
    }

    /// Takes the stored parameters as the starting point of a new run (`run.init_from`), widened
    /// when the stored ansatz has a smaller `alpha` ([`Ansatz::widened`]: the extra units keep
    /// their fresh random values); the optimizer, the chains and the history stay fresh.
    /// Nothing changes when a check fails.
    pub fn start_from(&mut self, stored: &AnsatzRecord) -> Result<(), String> {
        let parameters = self.stored_parameters(stored)?;
        self.ansatz.set_parameters(&parameters);
        Ok(())
    }

    /// The stored parameters as this ansatz's vector, after checking the kind, the sites, the
    /// sampled basis (Marshall sites), the count for the stored `alpha` and finite values; a
    /// narrower `alpha` is widened.
    fn stored_parameters(&self, a: &AnsatzRecord) -> Result<Vec<Complex64>, String> {
        a.check_basis(&self.marshall_sites)?;
        if a.kind != self.ansatz.kind() || a.n_sites != self.ansatz.n_sites() {
            return Err(format!(
                "the stored ansatz is {} on {} sites, the model file asks for {} on {}",
                a.kind,
                a.n_sites,
                self.ansatz.kind(),
                self.ansatz.n_sites()
            ));
        }
        if !a
            .parameters
            .iter()
            .all(|z| z.re.is_finite() && z.im.is_finite())
        {
            return Err("ansatz/parameters holds non-finite numbers".into());
        }
        self.ansatz.widened(&a.parameters, a.alpha)
    }

    /// Takes over a stored state after checking it against this (fresh) state: the ansatz kind,
    /// size and parameter count, finite parameters, optimizer vectors, the number of chains,
    /// their sites, spins and sector, the random streams, and a history whose length equals the
    /// optimizer's iteration count. Nothing changes when a check fails.
    pub fn restore(&mut self, record: &StateRecord, total_chains: usize) -> Result<(), String> {
        let a = &record.ansatz;
        let p = self.ansatz.n_parameters();
        if self.stored_parameters(a)?.len() != a.parameters.len() {
            return Err(format!(
                "the stored ansatz has alpha = {} and {} parameters, the model file asks for {p}",
                a.alpha,
                a.parameters.len()
            ));
        }
        let optimizer = OptimizerState {
            iteration: record.optimizer.iteration,
            adam: AdamMoments {
                m: record.optimizer.adam_m.clone(),
                v: record.optimizer.adam_v.clone(),
            },
            warm_start: record.optimizer.last_solution.clone(),
            direct: record.optimizer.auto_direct,
        };
        optimizer.check(p)?;
        let h = &record.history;
        if h.rows.len() != optimizer.iteration {
            return Err(format!(
                "the history has {} rows but the optimizer made {} updates",
                h.rows.len(),
                optimizer.iteration
            ));
        }
        if h.rows.iter().any(|r| r.len() != HistoryRow::COLUMNS.len()) {
            return Err("history rows of the wrong width".into());
        }
        let chains = ChainStates {
            configurations: record.chains.configurations.clone(),
            rng_words: record.chains.rng_state.clone(),
            thermalized: record.chains.thermalized.iter().map(|&f| f == 1).collect(),
        };
        if chains.thermalized.len() != total_chains {
            return Err(format!(
                "{} stored chains for a run of {total_chains}",
                chains.thermalized.len()
            ));
        }
        if record.chains.thermalized.iter().any(|&f| f > 1) {
            return Err("sampler/thermalized: flags must be 0 or 1".into());
        }
        let mut sampler = self.sampler.clone();
        sampler.restore(&chains)?;
        self.ansatz.set_parameters(&a.parameters);
        self.optimizer = optimizer;
        self.sampler = sampler;
        self.history = h.rows.iter().map(|r| HistoryRow::from_values(r)).collect();
        Ok(())
    }
}
