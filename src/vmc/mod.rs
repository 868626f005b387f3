//! Variational Monte Carlo: the [`Driver`] loop `sample → local energy → statistics → update`
//! and the [`RunState`] a restart needs (the files around a run are `job::run`'s).
//!
//! The driver owns the loop and its invariants: an iteration either completes (state, history
//! and optimizer move together) or changes nothing; a non-finite energy or update is retried
//! from the previous parameters and optimizer state with re-thermalized chains, at most
//! [`RETRIES`] times; a stop request (signal) is honoured between iterations by every process
//! together. Observers ([`Observer`]) see every iteration (the HDF5 store, the progress line,
//! the JSON summary); checkpointing is the store's job at the cadence the driver announces.
//!
//! ```
//! use nqs::vmc::{Driver, Observer, StopFlag, Termination};
//! use nqs::ansatz::{Rbm, RbmKind};
//! let model = nqs::config::parse(
//!     "[lattice]\nkind = \"chain\"\nlength = 6\n[model]\nkind = \"heisenberg\"\n\
//!      marshall_sign = true\n[sampler]\nchains = 2\nsamples = 64\n",
//!     std::path::Path::new("example.toml"),
//!     &[],
//! )
//! .unwrap();
//! let problem = model.problem();
//! struct Count(usize);
//! impl Observer for Count {
//!     fn iteration(
//!         &mut self,
//!         _: &nqs::vmc::HistoryRow,
//!         _: &nqs::vmc::IterationReport,
//!     ) -> nqs::Result<()> {
//!         self.0 += 1;
//!         Ok(())
//!     }
//! }
//! let ansatz = Rbm::random(6, RbmKind::Dense { alpha: 1 }, 0.01, 7);
//! let state = nqs::vmc::RunState::new(&problem, ansatz, &nqs::dist::Serial);
//! let mut driver = Driver::new(&problem, &nqs::dist::Serial, state, 1 << 30);
//! let mut count = Count(0);
//! let end = driver
//!     .run(5, &mut [&mut count], &mut |_| Ok(()), &StopFlag::default())
//!     .unwrap();
//! assert_eq!(end, Termination::Finished);
//! assert_eq!(count.0, 5);
//! assert_eq!(driver.state.history.len(), 5);
//! ```

mod state;

pub use state::RunState;

use crate::ansatz::{Ansatz, AnsatzSpec};
use crate::dist::{chain_range, Communicator};
use crate::error::{check_count, Error, Invalid, Result};
use crate::lattice::Lattice;
use crate::measure::{self, ChainLayout, ObservableSpec};
use crate::operator::Hamiltonian;
use crate::optimizer::{
    sr::ProblemSize, Centering, Jacobian, Materialized, MethodSpec, Optimizer, OptimizerSpec,
    ShiftKind, StructuredRbm, UpdateInfo,
};
use crate::sampler::{SampleSet, SamplerSpec, SweepInfo};
use crate::stats::Stats;
use num_complex::Complex64;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Attempts of an iteration whose energy or update is not finite.
pub const RETRIES: usize = 3;

/// The `[run]` section.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Output HDF5 file (default: `runs/<model file stem>.h5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Samples of the final estimate (default: 4 × sampler.samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observable_samples: Option<usize>,
    /// Start a new run from the parameters stored in this run file (a finished run or a
    /// checkpoint) instead of random ones: the same ansatz (kind, alpha, point group) on the
    /// same lattice and in the same basis; the Hamiltonian, the projection (momentum, spin
    /// inversion), the sampler and the optimizer may differ. Part of the run's identity, like
    /// the seed; a resume continues from its own state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

fn default_seed() -> u64 {
    1234
}
fn default_checkpoint_every() -> usize {
    50
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            seed: default_seed(),
            output: None,
            checkpoint_every: default_checkpoint_every(),
            observable_samples: None,
            init_from: None,
        }
    }
}

impl RunSpec {
    pub fn validate(&self) -> std::result::Result<(), Invalid> {
        check_count("run.checkpoint_every", self.checkpoint_every, 1, 1 << 40)?;
        if let Some(n) = self.observable_samples {
            check_count("run.observable_samples", n, 1, 1 << 26)?;
        }
        if self
            .output
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(Invalid::new("run.output", "empty path"));
        }
        if self
            .init_from
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(Invalid::new("run.init_from", "empty path"));
        }
        Ok(())
    }
}

/// Everything the driver reads: the model on its lattice and the settings of each part.
#[derive(Clone, Copy, Debug)]
pub struct Problem<'a> {
    pub lattice: &'a Lattice,
    pub hamiltonian: &'a Hamiltonian,
    pub ansatz: &'a AnsatzSpec,
    pub sampler: &'a SamplerSpec,
    pub optimizer: &'a OptimizerSpec,
    pub run: &'a RunSpec,
    pub observables: &'a [ObservableSpec],
}

/// One row of the optimization history (HDF5 `history/<column>`).
#[derive(Clone, Debug, PartialEq, Serialize)]
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
    /// CG iterations of the SR solve (0 for direct solves, Adam, SGD).
    pub solver_iterations: usize,
    /// Relative residual of the SR solve.
    pub solver_residual: f64,
    /// Seconds since the run started (summed over resumes).
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
        "solver_iterations",
        "solver_residual",
        "wall_time",
    ];

    pub fn values(&self) -> Vec<f64> {
        vec![
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
            self.solver_iterations as f64,
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
            solver_iterations: v[10] as usize,
            solver_residual: v[11],
            wall_time: v[12],
        }
    }
}

/// What one iteration measured and did.
#[derive(Clone, Debug)]
pub struct IterationReport {
    pub energy: Stats,
    pub sweep: SweepInfo,
    pub update: UpdateInfo,
    /// Seconds this iteration took.
    pub seconds: f64,
}

/// Sees every completed iteration (an error stops the run).
pub trait Observer {
    fn iteration(&mut self, row: &HistoryRow, report: &IterationReport) -> Result<()>;
    /// A line for the log (warnings, retries).
    fn note(&mut self, _line: &str) {}
}

/// How a call to [`Driver::run`] ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Termination {
    /// The requested iterations are done.
    Finished,
    /// A stop was requested (signal); the state is consistent at this iteration.
    Interrupted { iteration: usize },
    /// The energy or update stayed non-finite after [`RETRIES`] attempts.
    NonFinite { iteration: usize, message: String },
}

/// Requests to stop: set by signal handlers; test hooks stop or crash after a given iteration.
#[derive(Clone, Debug, Default)]
pub struct StopFlag {
    pub signal: Arc<AtomicBool>,
    /// Stop (as after a signal) once this many iterations are done (`NQS_TEST_STOP_AFTER`).
    pub stop_after: Option<usize>,
    /// Abort the process, as kill -9 would, once this many iterations are done
    /// (`NQS_TEST_CRASH_AFTER`).
    pub crash_after: Option<usize>,
}

impl StopFlag {
    /// The flag with the test hooks from the environment.
    pub fn from_env() -> Self {
        let read = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
        StopFlag {
            signal: Arc::new(AtomicBool::new(false)),
            stop_after: read("NQS_TEST_STOP_AFTER"),
            crash_after: read("NQS_TEST_CRASH_AFTER"),
        }
    }

    /// Has this process been asked to stop after `done` iterations?
    pub fn requested(&self, done: usize) -> bool {
        if self.crash_after.is_some_and(|n| done >= n) {
            std::process::abort();
        }
        self.signal.load(Ordering::Relaxed) || self.stop_after.is_some_and(|n| done >= n)
    }

    /// The same, agreed by every process (a collective call).
    pub fn requested_by_any(&self, done: usize, comm: &dyn Communicator) -> bool {
        let mut flag = [u64::from(self.requested(done))];
        comm.sum_u64(&mut flag);
        flag[0] > 0
    }
}

/// The VMC driver: the validated model, the communicator and the mutable [`RunState`].
pub struct Driver<'a, A: Ansatz> {
    problem: Problem<'a>,
    comm: &'a dyn Communicator,
    pub state: RunState<A>,
    optimizer: Optimizer,
    samples: SampleSet<A::Cache>,
    e_loc: Vec<Complex64>,
    layout: ChainLayout,
    /// Iteration at which a NaN is injected into the local energies once (`NQS_TEST_NAN_AT`).
    inject_nan: Option<usize>,
    /// Panic on this rank at the second iteration (`NQS_TEST_PANIC_RANK`), to test that one
    /// rank's panic ends the whole MPI job.
    panic_rank: Option<usize>,
    /// The auto solver's choice and other notes, for the log.
    pub notes: Vec<String>,
}

impl<'a, A: Ansatz> Driver<'a, A> {
    /// A driver for `state`; `memory` bounds what SR solvers may allocate.
    pub fn new(
        problem: &Problem<'a>,
        comm: &'a dyn Communicator,
        state: RunState<A>,
        memory: u64,
    ) -> Self {
        let samples = state.sampler.new_sample_set(&state.ansatz);
        let chains = problem.sampler.chains;
        let (first, local) = chain_range(chains, comm.rank(), comm.size());
        let layout = ChainLayout {
            local,
            first,
            total: chains,
        };
        let per_chain = state.sampler.settings.samples_per_chain;
        let size = ProblemSize {
            samples: per_chain * chains,
            parameters: state.ansatz.n_parameters(),
            rbm: state
                .ansatz
                .dense_rbm_layer()
                .map(|l| (state.ansatz.n_sites(), l.n_hidden())),
            ranks: comm.size(),
            memory,
            multiplicative: matches!(&problem.optimizer.method,
                MethodSpec::Sr(s) if s.diag_shift_kind == ShiftKind::Multiplicative),
            cg_max_iterations: match &problem.optimizer.method {
                MethodSpec::Sr(s) => s.cg_max_iterations,
                _ => 0,
            },
        };
        let (optimizer, note) = Optimizer::new(problem.optimizer, &size);
        Driver {
            problem: *problem,
            comm,
            e_loc: vec![Complex64::new(0.0, 0.0); samples.len()],
            samples,
            state,
            optimizer,
            layout,
            inject_nan: std::env::var("NQS_TEST_NAN_AT")
                .ok()
                .and_then(|v| v.parse().ok()),
            panic_rank: std::env::var("NQS_TEST_PANIC_RANK")
                .ok()
                .and_then(|v| v.parse().ok()),
            notes: note.into_iter().collect(),
        }
    }

    /// The chain layout of this process.
    pub fn layout(&self) -> ChainLayout {
        self.layout
    }

    /// Samples the current state and returns the local energies' statistics.
    fn measure_energy(&mut self) -> (Stats, SweepInfo) {
        let sweep = self
            .state
            .sampler
            .sample(&self.state.ansatz, &mut self.samples);
        measure::local_values(
            &self.problem.hamiltonian.operator,
            &self.state.ansatz,
            &self.samples,
            self.state.sampler.settings.n_up.is_some(),
            &mut self.e_loc,
        );
        if self.inject_nan == Some(self.state.optimizer.iteration) {
            self.inject_nan = None;
            self.e_loc[0] = Complex64::new(f64::NAN, 0.0);
        }
        (
            measure::chain_statistics(&self.e_loc, self.layout, self.comm),
            sweep,
        )
    }

    /// One optimization step; on failure nothing has changed but the chains' positions.
    fn step(&mut self) -> Result<IterationReport> {
        let start = std::time::Instant::now();
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
        let n_total = self.layout.total * self.samples.samples_per_chain;
        let first_row = self.layout.first * self.samples.samples_per_chain;
        let ansatz = &self.state.ansatz;
        let mut jacobian: Box<dyn Jacobian> = match ansatz.dense_rbm_layer() {
            Some(layer) => Box::new(StructuredRbm::new(
                layer,
                &self.samples,
                first_row,
                n_total,
                Centering::Centred,
                self.comm,
            )),
            None => Box::new(Materialized::new(
                ansatz,
                &self.samples,
                first_row,
                n_total,
                Centering::Centred,
                self.comm,
            )),
        };
        let scale = 1.0 / (n_total as f64).sqrt();
        let y: Vec<Complex64> = self
            .e_loc
            .iter()
            .map(|e| (e - energy.mean) * scale)
            .collect();
        let update =
            self.optimizer
                .step(&self.state.optimizer, jacobian.as_mut(), &y, self.comm)?;
        let params: Vec<Complex64> = ansatz
            .parameters()
            .iter()
            .zip(&update.delta)
            .map(|(p, d)| p + d)
            .collect();
        self.state.ansatz.set_parameters(&params);
        self.state.optimizer = update.state;
        Ok(IterationReport {
            energy,
            sweep,
            update: update.info,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Runs until `iterations` are done (counting those already in the history), a stop is
    /// requested, or an iteration stays non-finite. `checkpoint` is called at the model's
    /// cadence and before returning [`Termination::Interrupted`] (on every process: gathering
    /// the chains is collective).
    pub fn run(
        &mut self,
        iterations: usize,
        observers: &mut [&mut dyn Observer],
        checkpoint: &mut dyn FnMut(&RunState<A>) -> Result<()>,
        stop: &StopFlag,
    ) -> Result<Termination> {
        let every = self.problem.run.checkpoint_every;
        let mut failures = 0;
        let wall_offset = self.state.history.last().map_or(0.0, |r| r.wall_time);
        let start = std::time::Instant::now();
        while self.state.history.len() < iterations {
            let it = self.state.history.len();
            if it == 1 && self.panic_rank == Some(self.comm.rank()) {
                panic!(
                    "test hook NQS_TEST_PANIC_RANK: panic on rank {}",
                    self.comm.rank()
                );
            }
            if stop.requested_by_any(it, self.comm) {
                checkpoint(&self.state)?;
                return Ok(Termination::Interrupted { iteration: it });
            }
            match self.step() {
                Ok(report) => {
                    failures = 0;
                    let e = &report.energy;
                    let solve = report.update.solve.as_ref();
                    let row = HistoryRow {
                        iteration: it,
                        energy: e.mean.re,
                        energy_imag: e.mean.im,
                        error: e.error,
                        variance: e.variance,
                        r_hat: e.r_hat,
                        tau: e.tau,
                        acceptance: report.sweep.acceptance(),
                        learning_rate: report.update.learning_rate,
                        diag_shift: report.update.diag_shift,
                        solver_iterations: solve.map_or(0, |s| s.iterations),
                        solver_residual: solve.map_or(0.0, |s| s.residual),
                        wall_time: wall_offset + start.elapsed().as_secs_f64(),
                    };
                    // A start from stored parameters (`run.init_from`) is converged on purpose.
                    if it == 0 && self.problem.run.init_from.is_none() {
                        if let Some(warning) = eigenstate_warning(e) {
                            observers.iter_mut().for_each(|o| o.note(&warning));
                        }
                    }
                    for o in observers.iter_mut() {
                        o.iteration(&row, &report)?;
                    }
                    self.state.history.push(row);
                    let done = it + 1;
                    if done % every == 0 && done < iterations {
                        checkpoint(&self.state)?;
                    }
                }
                Err(Error::Numerical(message)) => {
                    failures += 1;
                    if failures > RETRIES {
                        return Ok(Termination::NonFinite {
                            iteration: it,
                            message,
                        });
                    }
                    // The parameters and the optimizer state are those before the step; the
                    // chains continue (their streams moved on) after a new thermalization.
                    for chain in &mut self.state.sampler.chains {
                        chain.thermalized = false;
                    }
                    let line = format!("warning: {message}; kept the previous parameters and optimizer state, re-thermalizing (attempt {failures}/{RETRIES})");
                    observers.iter_mut().for_each(|o| o.note(&line));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Termination::Finished)
    }

    /// Observables from `samples_per_chain` fresh samples per chain (the chains continue from
    /// where the optimization left them), sampled and measured in batches of the run's samples
    /// per chain (so the memory stays that of an iteration's samples, and a stop request is
    /// honoured within about one batch): None when stopped.
    pub fn measure(
        &mut self,
        samples_per_chain: usize,
        stop: &StopFlag,
    ) -> Option<crate::io::ResultsRecord> {
        let mut sampler = self.state.sampler.clone();
        let setup = measure::Setup {
            layout: self.layout,
            hamiltonian: self.problem.hamiltonian,
            lattice: self.problem.lattice,
            observables: self.problem.observables,
            sz_sector: sampler.settings.n_up.is_some(),
        };
        let iteration = self.state.history.len();
        let comm = self.comm;
        measure::sample_and_measure(
            &mut sampler,
            &self.state.ansatz,
            samples_per_chain,
            self.state.sampler.settings.samples_per_chain,
            &setup,
            comm,
            &mut || stop.requested_by_any(iteration, comm),
        )
    }
}

/// A warning when the first iteration's random state is (close to) an exact eigenstate: its
/// energy gradient vanishes, so SR cannot leave it even when it is not the ground state.
fn eigenstate_warning(e: &Stats) -> Option<String> {
    let energy = e.mean.re;
    (energy != 0.0 && e.variance < 1e-3 * energy * energy).then(|| {
        format!(
            "warning: the initial state is close to an exact eigenstate (E = {energy:.6}, variance {:.2e}); its gradient vanishes, so the optimization may stay there even if it is not the ground state — use marshall_sign = true for bipartite antiferromagnets, or a larger ansatz.init_std",
            e.variance
        )
    })
}
