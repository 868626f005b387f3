//! `nqs run`: the life of a VMC run around the [`Driver`].
//!
//! Invariants this module owns:
//! - the output is chosen before any work (`--output`, else `run.output`, else
//!   `runs/<model>.h5`; `--set` overrides of physics keys add a suffix such as `.J2=0.45` so that
//!   sweeps never collide), checked writable, and owned through an [`OutputLock`];
//! - an existing output is replaced only with `--force`, and continued only with `--resume` of
//!   a run with the same physics ([`crate::config::compare`]; run-control keys may change);
//! - a finished or checkpointed run is valid at every instant: an extension of a finished run
//!   leaves its file as it is (no live file; progress in the checkpoint, which a resume prefers
//!   when it is further on) until the extension's final file replaces it; the final file is
//!   written atomically after a last checkpoint, and the checkpoint is removed only then;
//! - everything is validated before the first iteration, and a stop request (signal) is
//!   honoured in the loop, the final measurement and the exact reference.

use crate::ansatz::{self, Ansatz, AnsatzVisitor, Transform};
use crate::config::{self, Model};
use crate::dist::{agree, on_root, Communicator};
use crate::error::{Error, Result};
use crate::exact::{self, Reference};
use crate::io::{
    self, checkpoint_path, OutputLock, ResultsRecord, RootInfo, RunStore, StateRecord,
};
use crate::operator::Hamiltonian;
use crate::vmc::{Driver, HistoryRow, IterationReport, Observer, RunState, StopFlag, Termination};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// Command-line choices of `nqs run`.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--output` (else `run.output`, else `runs/<model>.h5`).
    pub output: Option<PathBuf>,
    pub force: bool,
    pub resume: bool,
    /// Compute the exact reference for the summary.
    pub reference: bool,
    /// Threads of this process (recorded in the file).
    pub threads: usize,
}

/// How `nqs run` ended (exit code 0 for all of them).
#[derive(Clone, Debug, PartialEq)]
pub enum RunStatus {
    Finished,
    /// `--resume` of a run that already has the requested iterations.
    AlreadyFinished,
    /// A signal stopped it; the checkpoint holds the state.
    Interrupted {
        iteration: usize,
        during: String,
    },
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub output: PathBuf,
    pub status: RunStatus,
    pub iterations: usize,
    pub n_parameters: usize,
    pub n_samples: usize,
    pub results: Option<ResultsRecord>,
    /// The final energy and its variance: from `results`, or read back from the file of a run
    /// that was already finished.
    pub energy: Option<(io::Estimate, f64)>,
    pub reference: Option<Reference>,
    pub wall_time: f64,
    /// Median seconds per iteration of this process's iterations.
    pub median_iteration_time: f64,
}

impl RunOutcome {
    /// `|E − E_exact|/|E_exact|`; None without a reference, and when the exact energy is zero
    /// (|E_exact| ≤ 1e-9 max(1, |E|): a sector whose lowest state has E = 0, such as a singlet
    /// of a small chain, where only the absolute error means something).
    pub fn relative_error(&self) -> Option<f64> {
        let e = self.energy?.0.mean;
        let x = self.reference.as_ref()?.energy;
        (x.abs() > 1e-9 * e.abs().max(1.0)).then(|| ((e - x) / x).abs())
    }

    /// `N·Var(E)/E²`.
    pub fn v_score(&self, n_sites: usize) -> Option<f64> {
        let (energy, variance) = self.energy?;
        Some(n_sites as f64 * variance / (energy.mean * energy.mean))
    }
}

/// The output file of a run: `--output`, else `run.output`, else `runs/<model stem>.h5`; with
/// `--set` overrides of physics keys (and no explicit output) the file name gets their suffix.
pub fn output_path(model: &Model, cli_output: Option<&Path>) -> PathBuf {
    if let Some(p) = cli_output {
        return p.to_path_buf();
    }
    let base = model.config.run.output.clone().unwrap_or_else(|| {
        let stem = model
            .path
            .file_stem()
            .map_or("run".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from(format!("runs/{stem}.h5"))
    });
    let output_overridden = model.overrides.iter().any(|o| o.key == "run.output");
    match config::override_suffix(&model.overrides) {
        Some(suffix) if !output_overridden => {
            let stem = base
                .file_stem()
                .map_or("run".into(), |s| s.to_string_lossy().into_owned());
            let ext = base
                .extension()
                .map_or("h5".into(), |e| e.to_string_lossy().into_owned());
            base.with_file_name(format!("{stem}.{suffix}.{ext}"))
        }
        _ => base,
    }
}

/// Where a run continues from.
enum Source {
    Fresh,
    /// A stored state: the finished output, or the checkpoint. `extends_finished`: the output is
    /// a finished run (the resume extends it, directly or from a checkpoint further on), which
    /// stays as it is until the final file replaces it.
    Stored {
        path: PathBuf,
        finished: bool,
        extends_finished: bool,
    },
}

impl Source {
    fn extends_finished(&self) -> bool {
        matches!(
            self,
            Source::Stored {
                extends_finished: true,
                ..
            }
        )
    }
}

/// Reads the state and configuration of a stored run file; exit code 2 when damaged.
fn read_stored(path: &Path) -> Result<(StateRecord, RootInfo, bool)> {
    let file = io::open_nqs_file(path)?;
    let root = io::read_root(&file).map_err(|e| Error::file(path, e))?;
    if root.command != "run" {
        return Err(Error::file(
            path,
            format!(
                "holds an `nqs {}` result, not a run; choose another --output",
                root.command
            ),
        ));
    }
    if let Ok(stored) = config::parse_stored(&root.config_text) {
        super::check_units(path, &root.units, stored.model.units)?;
    }
    let finished = io::read_finished(&file).map_err(|e| Error::file(path, e))?;
    let state = io::read_state(&file, &HistoryRow::COLUMNS).map_err(|e| {
        Error::bad_hdf5(
            path,
            "incomplete or damaged run state (remove the file to start over)",
            e,
        )
    })?;
    Ok((state, root, finished))
}

/// Whether a changed key changes the meaning of an ansatz's parameter vector: a run can start
/// from another run's parameters only when none does. (`ansatz.alpha` may grow and
/// `ansatz.point_group` may change where `rbm_symm` keeps its sharing: both are compared
/// separately.)
fn fixes_parameter_meaning(key: &str) -> bool {
    key.starts_with("lattice.") || key == "ansatz.kind"
}

/// Random configurations on which a fresh start must not vanish ([`ansatz::vanishes`]).
const START_TRIES: usize = 256;

/// A fresh start must have weight in the model's sector: a projection or lowering of an RBM
/// symmetric the other way (every parameter 0 with `init_std = 0`, or a stored state of the
/// other parity) is zero on every configuration, and its optimization would follow rounding
/// noise. Checked on [`START_TRIES`] random configurations of the sampled S^z sector, the
/// same on every rank; exit code 2 naming `run.init_from` or `ansatz.init_std`.
fn check_start_has_weight<A: Ansatz>(model: &Model, state: &RunState<A>) -> Result<()> {
    let seed = model.config.run.seed;
    if !ansatz::vanishes(&state.ansatz, model.sampled_n_up, START_TRIES, seed) {
        return Ok(());
    }
    let (key, remedy) = match &model.config.run.init_from {
        Some(_) => (
            "run.init_from",
            "the stored state has no component in this sector (it is symmetric the other way); start fresh or from a state of this sector",
        ),
        None => (
            "ansatz.init_std",
            "the initial RBM has no component in this sector (with init_std = 0 it is constant, symmetric under every element); use init_std > 0",
        ),
    };
    Err(Error::key(
        &model.path,
        key,
        format!(
            "the initial state vanishes on {START_TRIES} random configurations of its sector: {remedy}"
        ),
    ))
}

/// `run.init_from`: sets the fresh `state`'s parameters to those stored in another run file,
/// after checking that they mean the same wavefunction here, or its restriction to fewer hidden
/// units: a run (finished, or its checkpoint), the same ansatz on the same lattice
/// ([`fixes_parameter_meaning`], an `alpha` no larger than this run's, and the same sharing of
/// `rbm_symm`'s filters) and the same
/// sampled basis (Marshall sites), and not this run's own output or checkpoint (a new run replaces
/// them). Returns the note for the log; exit code 2 otherwise.
fn start_from_stored<A: Ansatz>(
    model: &Model,
    source: &Path,
    output: &Path,
    state: &mut RunState<A>,
) -> Result<String> {
    let refuse = |message: String| {
        Error::key(
            &model.path,
            "run.init_from",
            format!("{}: {message}", source.display()),
        )
    };
    if !source.is_file() {
        return Err(refuse("no such run file".into()));
    }
    let same_file = |other: &Path| matches!((source.canonicalize(), other.canonicalize()), (Ok(a), Ok(b)) if a == b);
    if same_file(output) || same_file(&checkpoint_path(output)) {
        return Err(refuse(
            "is this run's own output or checkpoint, which a new run replaces; copy it or choose another --output".into(),
        ));
    }
    let stored =
        super::read_run(source).map_err(|e| Error::key(&model.path, "run.init_from", e))?;
    let mut differ: Vec<String> = config::compare(&stored.model.config, &model.config)
        .into_iter()
        .filter(|c| fixes_parameter_meaning(&c.key))
        .map(|c| c.to_string())
        .collect();
    let (before, after) = (
        stored.model.config.ansatz.shares_point_group(),
        model.config.ansatz.shares_point_group(),
    );
    if before != after {
        differ.push(format!(
            "filters shared over the space group: {before} → {after}"
        ));
    }
    let (stored_alpha, alpha) = (
        stored.model.config.ansatz.alpha(),
        model.config.ansatz.alpha(),
    );
    if stored_alpha > alpha {
        differ.push(format!("ansatz.alpha: {stored_alpha} → {alpha}, narrower"));
    }
    if !differ.is_empty() {
        return Err(refuse(format!(
            "its parameters belong to another ansatz or lattice ({}); only the model, the projection, a larger alpha, the sampler and the optimizer may differ",
            differ.join("; ")
        )));
    }
    state.start_from(&stored.state.ansatz).map_err(refuse)?;
    let widened = if stored_alpha < alpha {
        format!("; alpha {stored_alpha} → {alpha}, the extra units start from random values of std ansatz.init_std")
    } else {
        String::new()
    };
    Ok(format!(
        "starting from the parameters of {} (iteration {} of that run{widened})",
        source.display(),
        stored.state.optimizer.iteration
    ))
}

/// Picks what to continue from, checking every file it reads.
fn choose_source(
    output: &Path,
    model: &Model,
    options: &RunOptions,
    notes: &mut Vec<String>,
) -> Result<Source> {
    let ckpt = checkpoint_path(output);
    let (has_output, has_ckpt) = (output.exists(), ckpt.exists());
    if !options.resume {
        if (has_output || has_ckpt) && !options.force {
            return Err(Error::output(
                output,
                "exists; continue it with --resume, choose another --output, or pass --force to replace it",
            ));
        }
        return Ok(Source::Fresh);
    }
    // The finished output's iteration count, if the output is a finished run.
    let mut live_config = None;
    let output_state = if has_output {
        let file = io::open_nqs_file(output)?;
        let root = io::read_root(&file).map_err(|e| Error::file(output, e))?;
        if root.command != "run" {
            return Err(Error::file(
                output,
                format!("holds an `nqs {}` result, not a run: --resume continues runs only; choose another --output", if root.command.is_empty() { "?" } else { &root.command }),
            ));
        }
        let finished = io::read_finished(&file).map_err(|e| Error::file(output, e))?;
        let iteration = file
            .group("optimizer")
            .ok()
            .and_then(|g| io::read_attr::<u64>(&g, "iteration").ok());
        if !finished {
            live_config = Some(root.config_text);
        }
        finished.then_some(iteration.unwrap_or(0))
    } else {
        None
    };
    let ckpt_iteration = if has_ckpt {
        let (state, _, _) = read_stored(&ckpt)?;
        Some(state.optimizer.iteration as u64)
    } else {
        None
    };
    let extends_finished = output_state.is_some();
    let target = model.config.optimizer.iterations as u64;
    Ok(match (output_state, ckpt_iteration) {
        // A finished run that already has the requested iterations stays as it is, also when
        // a checkpoint of a longer extension exists.
        (Some(done), Some(at)) if done >= at || done >= target => Source::Stored {
            path: output.to_path_buf(),
            finished: true,
            extends_finished,
        },
        (_, Some(_)) => Source::Stored {
            path: ckpt,
            finished: false,
            extends_finished,
        },
        (Some(_), None) => Source::Stored {
            path: output.to_path_buf(),
            finished: true,
            extends_finished,
        },
        (None, None) => {
            if let Some(text) = live_config {
                check_identity(&text, model, output, notes)?;
            }
            notes.push(if has_output {
                format!("{}: no checkpoint yet (killed before the first one); starting from the beginning", output.display())
            } else {
                format!("{}: nothing to resume; starting a new run", output.display())
            });
            Source::Fresh
        }
    })
}

/// Refuses a resume whose physics differ; notes the run-control keys that changed.
fn check_identity(
    stored_text: &str,
    model: &Model,
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<()> {
    let stored = config::parse_stored(stored_text).map_err(|e| Error::Resume {
        path: path.to_path_buf(),
        message: format!("its stored configuration cannot be read ({e})"),
    })?;
    let changes = config::compare(&stored, &model.config);
    let (control, physics): (Vec<_>, Vec<_>) =
        changes.into_iter().partition(|c| c.is_run_control());
    if !physics.is_empty() {
        return Err(Error::Resume {
            path: path.to_path_buf(),
            message: format!(
                "the physics differ from the stored run ({}); only run-control keys may change (see README, \"Resume\"); use another --output for a new run",
                physics.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; ")
            ),
        });
    }
    for c in control {
        notes.push(format!("changed on resume: {c}"));
    }
    Ok(())
}

/// Runs (or continues) the VMC optimization of `model`, writes the run file and returns what
/// happened. `observers` see every iteration and the log lines.
pub fn run(
    model: &Model,
    options: &RunOptions,
    comm: &dyn Communicator,
    observers: &mut [&mut dyn Observer],
    stop: &StopFlag,
) -> Result<RunOutcome> {
    let seed = RunState::<ansatz::Rbm>::parameter_seed(&model.config.run);
    ansatz::visit(
        &model.config.ansatz,
        &model.lattice,
        &model.transform,
        seed,
        RunVisitor {
            model,
            options,
            comm,
            observers,
            stop,
        },
    )
}

struct RunVisitor<'a, 'b> {
    model: &'a Model,
    options: &'a RunOptions,
    comm: &'a dyn Communicator,
    observers: &'a mut [&'b mut dyn Observer],
    stop: &'a StopFlag,
}

impl AnsatzVisitor for RunVisitor<'_, '_> {
    type Output = Result<RunOutcome>;
    fn visit<A: Ansatz + 'static>(self, ansatz: A) -> Result<RunOutcome> {
        run_with(self, ansatz)
    }
}

/// Keeps the median of the iteration times.
struct Timer(Vec<f64>);

impl Observer for Timer {
    fn iteration(&mut self, _: &HistoryRow, report: &IterationReport) -> Result<()> {
        self.0.push(report.seconds);
        Ok(())
    }
}

/// Appends every row to the live file (rank 0).
struct HistoryWriter<'s>(&'s RefCell<Option<RunStore>>);

impl Observer for HistoryWriter<'_> {
    fn iteration(&mut self, row: &HistoryRow, _: &IterationReport) -> Result<()> {
        match self.0.borrow_mut().as_mut() {
            Some(store) => store.append(&row.values()),
            None => Ok(()),
        }
    }
}

fn note(observers: &mut [&mut dyn Observer], line: &str) {
    observers.iter_mut().for_each(|o| o.note(line));
}

/// Checks made before any work: the output and its ownership, the chain layout, the memory
/// for the log-derivatives. Returns the lock (rank 0) and notes for the log.
fn prepare<A: Ansatz>(
    model: &Model,
    output: &Path,
    options: &RunOptions,
    comm: &dyn Communicator,
    state: &RunState<A>,
) -> Result<(Option<OutputLock>, Vec<String>)> {
    on_root(comm, || io::prepare_output(output, true, "nqs run"))?;
    let mut lock = None;
    on_root(comm, || {
        lock = Some(OutputLock::acquire(output)?);
        Ok(())
    })?;
    let mut notes: Vec<String> = model.notes.clone();
    let chains = model.config.sampler.chains;
    if chains < comm.size() {
        return Err(Error::key(
            &model.path,
            "sampler.chains",
            format!(
                "{chains} chains are fewer than the {} MPI ranks; every rank needs a chain",
                comm.size()
            ),
        ));
    }
    let threads_total = options.threads * comm.size();
    if chains < threads_total {
        notes.push(format!("{chains} chains for {} ranks × {} threads: some threads have no chain to sample; use sampler.chains ≥ {threads_total}", comm.size(), options.threads));
    }
    let memory = exact::available_memory() / 2;
    let local_samples = state.sampler.settings.samples_per_chain * state.sampler.chains.len();
    let row_bytes = match state.ansatz.dense_rbm_layer() {
        Some(layer) => 16 * (state.ansatz.n_sites() + layer.n_hidden()) as u64,
        None => 16 * state.ansatz.n_parameters() as u64,
    };
    let sample_bytes = row_bytes + state.ansatz.cache_bytes();
    // Memory and sample counts differ between ranks: the check must be agreed on.
    let fits = if local_samples as u64 * sample_bytes > memory {
        Err(Error::Resources(format!(
            "{local_samples} samples × {sample_bytes} bytes (log-derivatives and the ansatz's cache) exceed the {:.1} GiB available per rank; lower sampler.samples or use more MPI ranks",
            memory as f64 / (1u64 << 30) as f64
        )))
    } else {
        Ok(())
    };
    agree(comm, fits)?;
    Ok((lock, notes))
}

/// The outcome of a run that stops before its final file is written.
fn outcome_without_results<A: Ansatz>(
    output: &Path,
    status: RunStatus,
    state: &RunState<A>,
    n_samples: usize,
    start: std::time::Instant,
) -> RunOutcome {
    RunOutcome {
        output: output.to_path_buf(),
        status,
        iterations: state.history.len(),
        n_parameters: state.ansatz.n_parameters(),
        n_samples,
        results: None,
        energy: None,
        reference: None,
        wall_time: start.elapsed().as_secs_f64(),
        median_iteration_time: 0.0,
    }
}

/// Replaces files, in an order that never loses a finished or checkpointed run, and opens the
/// live file (rank 0).
fn start_store<A: Ansatz>(
    source: &Source,
    output: &Path,
    root: &RootInfo,
    state: &RunState<A>,
) -> Result<RunStore> {
    let ckpt = checkpoint_path(output);
    match source {
        _ if source.extends_finished() => return Ok(RunStore::extending(output)),
        Source::Fresh if ckpt.exists() => std::fs::remove_file(&ckpt)
            .map_err(|e| Error::io(&ckpt, "cannot remove the old checkpoint", e))?,
        _ => {}
    }
    let rows: Vec<Vec<f64>> = state.history.iter().map(HistoryRow::values).collect();
    let columns: Vec<String> = HistoryRow::COLUMNS.iter().map(|c| c.to_string()).collect();
    RunStore::start(output, root, &columns, &rows)
}

/// The root attributes of a run file.
fn run_root(
    model: &Model,
    options: &RunOptions,
    comm: &dyn Communicator,
    start_time: String,
) -> RootInfo {
    RootInfo {
        command: "run".into(),
        config_text: model.canonical_text(),
        identity: config::identity(&model.config),
        units: model.config.model.units.name().into(),
        seed: model.config.run.seed,
        ranks: comm.size(),
        threads: options.threads,
        start_time,
    }
}

/// The first line of a run: model, ansatz, sampling, optimizer and layout.
fn header<A: Ansatz>(
    model: &Model,
    state: &RunState<A>,
    options: &RunOptions,
    comm: &dyn Communicator,
) -> String {
    format!(
        "nqs run: {} | {} ({} parameters) | {} chains × {} samples | {} | {} rank(s) × {} threads",
        model.describe(),
        model.describe_ansatz(),
        state.ansatz.n_parameters(),
        model.config.sampler.chains,
        state.sampler.settings.samples_per_chain,
        model.config.optimizer.name(),
        comm.size(),
        options.threads
    )
}

/// What a stored run gives a resumed one.
enum Resumed {
    /// Continue from the restored state; the run started at `started` (UTC).
    Continue { started: String },
    /// The run already has the requested iterations: its stored final energy.
    AlreadyFinished(io::FinalEnergy),
}

/// Restores `state` from the stored run at `path` after checking that it is the same physics.
fn restore_stored<A: Ansatz>(
    path: &Path,
    finished: bool,
    model: &Model,
    output: &Path,
    state: &mut RunState<A>,
    notes: &mut Vec<String>,
) -> Result<Resumed> {
    let (record, root, _) = read_stored(path)?;
    check_identity(&root.config_text, model, path, notes)?;
    state
        .restore(&record, model.config.sampler.chains)
        .map_err(|e| Error::file(path, format!("cannot resume: {e}")))?;
    if finished && state.history.len() >= model.config.optimizer.iterations {
        notes.push(format!("{}: run already finished ({} iterations); nothing to do (raise optimizer.iterations to continue, or `nqs measure` to measure more)", output.display(), state.history.len()));
        let stored = io::read_final_energy(path).map_err(|e| Error::hdf5(path, "read", e))?;
        return Ok(Resumed::AlreadyFinished(stored));
    }
    notes.push(format!(
        "resuming {} at iteration {} (from {})",
        output.display(),
        state.history.len(),
        path.display()
    ));
    Ok(Resumed::Continue {
        started: root.start_time,
    })
}

fn run_with<A: Ansatz>(v: RunVisitor, ansatz: A) -> Result<RunOutcome> {
    let RunVisitor {
        model,
        options,
        comm,
        observers,
        stop,
    } = v;
    let start = std::time::Instant::now();
    let problem = model.problem();
    let output = output_path(model, options.output.as_deref());
    let mut state = RunState::new(&problem, ansatz, comm);
    let (lock, mut notes) = prepare(model, &output, options, comm, &state)?;
    let chains = model.config.sampler.chains;
    let n_samples = state.sampler.settings.samples_per_chain * chains;
    // Every rank reads the stored run itself; all must have read it before rank 0 writes
    // anything, and a rank that could not read stops all (else rank 0 would wait forever in
    // the next collective call).
    let read = choose_source(&output, model, options, &mut notes).and_then(|source| {
        let resumed = match &source {
            Source::Stored { path, finished, .. } => Some(restore_stored(
                path, *finished, model, &output, &mut state, &mut notes,
            )?),
            Source::Fresh => {
                if let Some(init) = &model.config.run.init_from {
                    notes.push(start_from_stored(model, init, &output, &mut state)?);
                }
                check_start_has_weight(model, &state)?;
                None
            }
        };
        Ok((source, resumed))
    });
    let (source, resumed) = agree(comm, read)?;
    note(observers, &header(model, &state, options, comm));
    let mut start_time = io::utc_now();
    if let Some(resumed) = resumed {
        match resumed {
            Resumed::Continue { started } => start_time = started,
            Resumed::AlreadyFinished(stored) => {
                for line in &notes {
                    note(observers, line);
                }
                let mut outcome = outcome_without_results(
                    &output,
                    RunStatus::AlreadyFinished,
                    &state,
                    n_samples,
                    start,
                );
                outcome.energy = stored.energy;
                outcome.reference = stored
                    .exact
                    .map(|(energy, method)| Reference { energy, method });
                return Ok(outcome);
            }
        }
    }
    let target = model.config.optimizer.iterations;
    let root = run_root(model, options, comm, start_time);
    let mut driver = Driver::new(&problem, comm, state, exact::available_memory() / 2);
    notes.extend(driver.notes.drain(..).map(|n| format!("SR solver: {n}")));
    for line in &notes {
        note(observers, &format!("note: {line}"));
    }
    let store = RefCell::new(None);
    on_root(comm, || {
        *store.borrow_mut() = Some(start_store(&source, &output, &root, &driver.state)?);
        Ok(())
    })?;
    let mut checkpoint = |state: &RunState<A>| -> Result<()> {
        let record = state.record(&problem, comm);
        on_root(comm, || match store.borrow().as_ref() {
            Some(s) => s.checkpoint(&root, &record),
            None => Ok(()),
        })
    };
    let mut timer = Timer(Vec::new());
    let termination = {
        let mut writer = HistoryWriter(&store);
        let mut all: Vec<&mut dyn Observer> = vec![&mut writer, &mut timer];
        all.extend(observers.iter_mut().map(|o| &mut **o as &mut dyn Observer));
        driver.run(target, &mut all, &mut checkpoint, stop)?
    };
    match termination {
        Termination::Interrupted { iteration } => {
            let status = RunStatus::Interrupted {
                iteration,
                during: "the optimization".into(),
            };
            return Ok(outcome_without_results(
                &output,
                status,
                &driver.state,
                n_samples,
                start,
            ));
        }
        Termination::NonFinite { iteration, message } => {
            checkpoint(&driver.state)?;
            return Err(non_finite(
                &message,
                iteration,
                &output,
                source.extends_finished(),
            ));
        }
        Termination::Finished => {}
    }
    // The optimized state is checkpointed before the final measurement, so nothing after this
    // point can lose it.
    checkpoint(&driver.state)?;
    let mut outcome = finish(
        model,
        options,
        comm,
        observers,
        stop,
        &mut driver,
        &root,
        &store,
    )?;
    drop(lock);
    outcome.median_iteration_time = median(timer.0);
    outcome.wall_time = start.elapsed().as_secs_f64();
    Ok(outcome)
}

/// The error of a run that stayed non-finite after its retries; `extending` a finished run,
/// whose file is unchanged.
fn non_finite(message: &str, iteration: usize, output: &Path, extending: bool) -> Error {
    let ckpt = checkpoint_path(output);
    let finished = if extending {
        format!(
            "; the finished run in {} is unchanged (remove {} to discard this extension)",
            output.display(),
            ckpt.display()
        )
    } else {
        String::new()
    };
    Error::Numerical(format!(
        "{message}: still not finite after {} attempts at iteration {iteration}; the state before it is in {} (try a smaller optimizer.learning_rate or a larger diag_shift, then --resume){finished}",
        crate::vmc::RETRIES,
        ckpt.display()
    ))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The exact reference of the model ([`exact::reference`]): of its symmetry sector with a
/// projected ansatz; with the spin lowering, the lowest state of total spin above `total_sz`,
/// which by SU(2) is the ground state of `total_sz + 1`. None when there is none or a stop was
/// requested while it ran.
fn model_reference(model: &Model, stop: &StopFlag) -> Option<Reference> {
    let cancel = Some(stop.signal.clone());
    if let Transform::Lowering(_) = model.transform {
        let mut raised = model.config.model.clone();
        raised.total_sz = raised.total_sz.map(|sz| sz + 1.0);
        let hamiltonian = Hamiltonian::new(&raised, &model.lattice).ok()?;
        return exact::reference(
            &hamiltonian,
            &model.lattice,
            &model.config.lattice,
            &raised,
            None,
            cancel,
        )
        .map(|r| Reference {
            method: format!("{}, ground state of total_sz + 1", r.method),
            ..r
        });
    }
    // rbm_symm is translation invariant: its sector has the momentum of k = 0 in the sampled
    // basis.
    let sector = model.transform.projection().map(|p| {
        let momentum = p
            .momentum
            .clone()
            .or_else(|| model.symmetric_rbm_momentum());
        (momentum, p.inversion)
    });
    let mut reference = exact::reference(
        &model.hamiltonian.in_sector(model.sampled_n_up),
        &model.lattice,
        &model.config.lattice,
        &model.config.model,
        sector,
        cancel,
    )?;
    if model.config.ansatz.point_group() {
        // ED resolves momentum and spin inversion, not the point group the ansatz is
        // symmetric under.
        reference
            .method
            .push_str(", lowest over all point-group irreps");
    }
    Some(reference)
}

/// A warning when the final energy lies more than five error bars below the exact reference:
/// a variational energy cannot, so the reference is not the lowest state of the space the
/// ansatz spans (another S^z, momentum or point-group sector).
fn below_reference(energy: &io::Estimate, reference: &Reference) -> Option<String> {
    let margin = 5.0 * energy.error + 1e-9 * reference.energy.abs().max(1.0);
    (energy.mean < reference.energy - margin).then(|| {
        format!(
            "warning: the final energy {:.8} ± {:.1e} lies below the exact reference {:.8} ({}) by more than five error bars; a variational energy cannot, so that reference is not the lowest state of this ansatz's sector",
            energy.mean, energy.error, reference.energy, reference.method
        )
    })
}

/// The final estimate, the exact reference and the final file (or an interruption).
#[allow(clippy::too_many_arguments)]
fn finish<A: Ansatz>(
    model: &Model,
    options: &RunOptions,
    comm: &dyn Communicator,
    observers: &mut [&mut dyn Observer],
    stop: &StopFlag,
    driver: &mut Driver<'_, A>,
    root: &RootInfo,
    store: &RefCell<Option<RunStore>>,
) -> Result<RunOutcome> {
    let problem = model.problem();
    let output = store.borrow().as_ref().map_or_else(
        || output_path(model, options.output.as_deref()),
        |s| s.path().to_path_buf(),
    );
    let ckpt = checkpoint_path(&output);
    let chains = model.config.sampler.chains;
    let n_samples = driver.state.sampler.settings.samples_per_chain * chains;
    let per_chain = model
        .config
        .run
        .observable_samples
        .unwrap_or(4 * n_samples)
        .div_ceil(chains);
    note(
        observers,
        &format!("final estimate from {} fresh samples", per_chain * chains),
    );
    let start = std::time::Instant::now();
    let iteration = driver.state.history.len();
    let interrupted = |during: &str| RunStatus::Interrupted {
        iteration,
        during: during.into(),
    };
    let Some(results) = driver.measure(per_chain, stop) else {
        return Ok(outcome_without_results(
            &output,
            interrupted("the final measurement"),
            &driver.state,
            n_samples,
            start,
        ));
    };
    if !(results.energy.mean.is_finite() && results.energy.error.is_finite()) {
        return Err(Error::Numerical(format!(
            "the final energy estimate is not finite ({}); the optimized state is in {}",
            results.energy.mean,
            ckpt.display()
        )));
    }
    let reference = (options.reference && comm.is_root())
        .then(|| model_reference(model, stop))
        .flatten();
    if let Some(note) = reference
        .as_ref()
        .and_then(|r| below_reference(&results.energy, r))
    {
        observers.iter_mut().for_each(|o| o.note(&note));
    }
    if stop.requested_by_any(iteration, comm) {
        return Ok(outcome_without_results(
            &output,
            interrupted("the exact reference"),
            &driver.state,
            n_samples,
            start,
        ));
    }
    let record = driver.state.record(&problem, comm);
    on_root(comm, || {
        let store = store.borrow_mut().take().expect("rank 0 holds the store");
        let exact = reference.as_ref().map(|r| (r.energy, r.method.as_str()));
        store.finish(root, &record, &results, exact).map(|_| ()).map_err(|e| {
            Error::Runtime(format!(
                "{e}; the optimized state is safe in {}: `nqs run … --resume` repeats the final measurement",
                ckpt.display()
            ))
        })
    })?;
    let mut outcome = outcome_without_results(
        &output,
        RunStatus::Finished,
        &driver.state,
        n_samples,
        start,
    );
    outcome.energy = Some((results.energy, results.energy_variance));
    outcome.results = Some(results);
    outcome.reference = reference;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_energy_clearly_below_the_reference_is_flagged() {
        let reference = Reference {
            energy: -10.0,
            method: "ed (dense)".into(),
        };
        let at = |mean: f64, error: f64| below_reference(&io::Estimate { mean, error }, &reference);
        // Above it, or below within five error bars: a variational energy may be there.
        assert!(at(-9.99, 1e-3).is_none());
        assert!(at(-10.0049, 1e-3).is_none());
        // Below by more: the reference is not the lowest state of the ansatz's space.
        let warning = at(-10.0051, 1e-3).unwrap();
        assert!(warning.contains("-10.00000000 (ed (dense))"), "{warning}");
        // A state at the exact energy with a vanishing error bar is not flagged for round-off.
        assert!(at(-10.0 - 1e-12, 0.0).is_none());
    }
}
