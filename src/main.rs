//! The `nqs` command line: argument parsing, dispatch to the library's jobs, printing.

mod cli;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nqs::dist::Communicator;
use nqs::error::{Error, Result};
use nqs::exact::{Method, SymmetryRequest};
use nqs::{config, errln, job};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nqs",
    version,
    about = "Neural-network quantum states: VMC with a complex RBM, exact diagonalization, tomography",
    allow_negative_numbers = true
)]
struct Cli {
    /// Worker threads of this process (default: all cores of the allocation).
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=4096))]
    threads: Option<u32>,
    /// Print exactly one JSON object on stdout (progress and logs go to stderr).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exact diagonalization of a model file: ground state (and k lowest states).
    Ed(EdArgs),
    /// Variational ground state: RBM + Metropolis + stochastic reconfiguration.
    Run(RunArgs),
    /// Validate a model file (every check `run` makes) and print what it describes.
    Check(ModelArgs),
    /// Observables of a stored run's state, post hoc (results in the group `measurements`).
    Measure(MeasureArgs),
    /// What an nqs HDF5 file holds: model, ansatz, iterations, last energy, exact reference.
    Info(InfoArgs),
    /// Plot a run's history (energy with error bars and the exact line, variance) as PNG.
    Plot(PlotArgs),
    /// Fit the RBM to measured shots (maximum likelihood tomography).
    Tomo(TomoArgs),
    /// Synthetic shots from a stored state (an `nqs ed` eigenvector or an RBM), physical basis.
    Sample(SampleArgs),
    /// Per process: host, rank, MPI library, threads, linear-algebra backend, HDF5, memory.
    Doctor,
}

#[derive(Args)]
struct ModelArgs {
    /// Model file (TOML, see README).
    model: PathBuf,
    /// Override a key: `--set section.key=value` (value parsed as TOML; repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Output HDF5 file (default: run.output of the model file, else runs/<model>.h5; with
    /// --set overrides of physics keys the name gets their suffix).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Skip the exact reference (ED or closed form) in the summary.
    #[arg(long)]
    no_reference: bool,
    /// Continue the output's run from its last checkpoint (same physics; see README).
    #[arg(long)]
    resume: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum EdMethod {
    /// Dense below 1500 states, Lanczos above.
    Auto,
    Lanczos,
    Dense,
}

#[derive(Args)]
struct EdArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Number of lowest eigenstates.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    states: u32,
    /// Eigensolver.
    #[arg(long, value_enum, default_value_t = EdMethod::Auto)]
    method: EdMethod,
    /// Use translation (and, at S^z = 0, spin-inversion) sectors; scans all of them unless
    /// --momentum / --inversion pick one. Sector labels refer to the physical basis.
    #[arg(long)]
    symmetry: bool,
    /// Momentum sector: integer(s) m with k = 2π m / L ("3" for chains, "2,0" for squares).
    #[arg(long, value_delimiter = ',')]
    momentum: Option<Vec<usize>>,
    /// Spin-inversion sector (+1 or -1), at total_sz = 0 only.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_inversion)]
    inversion: Option<i8>,
    /// Memory budget in GiB (default: the memory available now).
    #[arg(long, value_parser = parse_positive)]
    memory_gb: Option<f64>,
    /// Write the ground state (physical basis) and spectrum to this HDF5 file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
    /// Print the ground state's spin correlations and structure factor (model units).
    #[arg(long)]
    correlations: bool,
}

#[derive(Args)]
struct MeasureArgs {
    /// A finished run file (or a checkpoint).
    file: PathBuf,
    /// Samples over all chains (default: the run's observable_samples, else 4 × samples).
    #[arg(long)]
    samples: Option<usize>,
    /// A Pauli string to measure besides the run's [[observables]]: NAME:OPS:SITES (repeatable).
    #[arg(long = "observable", value_name = "NAME:OPS:SITES", value_parser = parse_observable)]
    observables: Vec<nqs::measure::ObservableSpec>,
}

#[derive(Args)]
struct InfoArgs {
    /// A run, checkpoint, ed, tomography or sample file.
    file: PathBuf,
}

#[derive(Args)]
struct PlotArgs {
    /// A run file.
    file: PathBuf,
    /// The PNG to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace an existing PNG.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct SampleArgs {
    /// A file from `nqs ed --output`, `nqs run` or `nqs tomo`.
    state: PathBuf,
    /// Bases file: one shot per row (N letters X/Y/Z).
    #[arg(long, conflicts_with = "basis")]
    bases: Option<PathBuf>,
    /// One basis for every shot, e.g. ZZXY.
    #[arg(long)]
    basis: Option<String>,
    /// Number of shots (with --basis, or all Z).
    #[arg(long, default_value_t = 1000)]
    shots: usize,
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Directory for samples.txt, bases.txt, measurements.h5 and state.txt.
    #[arg(long)]
    output: PathBuf,
    /// Replace an existing data set in the directory.
    #[arg(long)]
    force: bool,
}

/// `nqs tomo` options; each may also come from the `[tomography]` file (the command line wins).
#[derive(Args)]
struct TomoArgs {
    /// A TOML file with a [tomography] section holding any of the options below.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Shots: text (one shot a row, N values 0/1) or HDF5 (measurements/outcomes, /bases).
    #[arg(long)]
    samples: Option<PathBuf>,
    /// Bases of the shots (text, one row of N letters X/Y/Z per shot); all Z when absent.
    #[arg(long)]
    bases: Option<PathBuf>,
    /// Reference state (2^N rows "Re Im") for fidelity and KL divergence.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Hidden-unit density, 1..=64 [default: 1].
    #[arg(long)]
    alpha: Option<i64>,
    /// [default: 200]
    #[arg(long)]
    epochs: Option<i64>,
    /// [default: 100]
    #[arg(long)]
    batch_size: Option<i64>,
    /// (0, 10] [default: 0.003]
    #[arg(long)]
    learning_rate: Option<f64>,
    /// adam, sgd, or sr (natural gradient, exact metric, N ≤ 14) [default: adam].
    #[arg(long)]
    optimizer: Option<String>,
    /// Diagonal shift of the SR metric [default: 0.01].
    #[arg(long)]
    diag_shift: Option<f64>,
    /// Fit a complex RBM even to Z-only data (default: positive real RBM for Z-only data).
    #[arg(long)]
    complex: bool,
    /// Fraction of shots held out for the validation NLL, [0, 0.9) [default: 0.1].
    #[arg(long)]
    validation: Option<f64>,
    /// Epochs without a better validation NLL before stopping [default: 40].
    #[arg(long)]
    patience: Option<i64>,
    /// [default: 1234]
    #[arg(long)]
    seed: Option<i64>,
    /// Output HDF5 file [default: runs/tomography.h5].
    #[arg(long)]
    output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
}

impl TomoArgs {
    /// The options given on the command line, as the keys of a `[tomography]` section.
    fn table(&self) -> toml::Table {
        let mut t = toml::Table::new();
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| toml::Value::String(p.to_string_lossy().into()))
        };
        let entries: [(&str, Option<toml::Value>); 14] = [
            ("samples", path(&self.samples)),
            ("bases", path(&self.bases)),
            ("reference", path(&self.reference)),
            ("output", path(&self.output)),
            ("alpha", self.alpha.map(toml::Value::Integer)),
            ("epochs", self.epochs.map(toml::Value::Integer)),
            ("batch_size", self.batch_size.map(toml::Value::Integer)),
            ("patience", self.patience.map(toml::Value::Integer)),
            ("seed", self.seed.map(toml::Value::Integer)),
            ("learning_rate", self.learning_rate.map(toml::Value::Float)),
            ("diag_shift", self.diag_shift.map(toml::Value::Float)),
            ("validation", self.validation.map(toml::Value::Float)),
            ("optimizer", self.optimizer.clone().map(toml::Value::String)),
            (
                "complex",
                self.complex.then_some(toml::Value::Boolean(true)),
            ),
        ];
        for (k, v) in entries {
            if let Some(v) = v {
                t.insert(k.into(), v);
            }
        }
        t
    }
}

fn parse_inversion(s: &str) -> std::result::Result<i8, String> {
    match s.trim() {
        "1" | "+1" | "+" => Ok(1),
        "-1" | "-" => Ok(-1),
        other => Err(format!(
            "expected +1 or -1, got {}",
            nqs::error::shorten(other)
        )),
    }
}

fn parse_positive(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e6 => Ok(v),
        _ => Err(format!(
            "expected a number in (0, 1e6], got {}",
            nqs::error::shorten(s)
        )),
    }
}

fn parse_observable(s: &str) -> std::result::Result<nqs::measure::ObservableSpec, String> {
    nqs::measure::parse_observable(s)
}

fn main() -> ExitCode {
    // nqs owns its outputs through its own lock files; HDF5's file locking fails on many
    // parallel file systems and would also keep readers out of a live run file.
    std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE");
    let cli = Cli::parse();
    let (comm, mpi_name) = cli::communicator();
    let comm: &dyn Communicator = comm.as_ref();
    match dispatch(cli, comm, &mpi_name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::OtherRank { code }) => ExitCode::from(code),
        Err(e) => {
            if comm.size() > 1 && e.exit_code() == 1 {
                // A runtime failure may be this rank's alone: end the whole job, never leave
                // the others waiting in a collective call.
                comm.abort(&e.to_string(), 1);
            }
            if comm.is_root() {
                errln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn dispatch(cli: Cli, comm: &dyn Communicator, mpi_name: &str) -> Result<()> {
    let threads = cli.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(16 << 20)
        .build_global()
        .map_err(|e| Error::Runtime(format!("cannot start {threads} threads: {e}")))?;
    let json = cli.json;
    let out = cli::Printer {
        json,
        root: comm.is_root(),
    };
    match cli.command {
        Command::Check(args) => {
            let model = config::load(&args.model, &args.overrides)?;
            out.check(&model);
        }
        Command::Ed(args) => {
            let model = config::load(&args.model.model, &args.model.overrides)?;
            let job = job::ed::EdJob {
                states: args.states as usize,
                method: match args.method {
                    EdMethod::Auto => Method::Auto,
                    EdMethod::Lanczos => Method::Lanczos,
                    EdMethod::Dense => Method::Dense,
                },
                symmetry: SymmetryRequest {
                    enabled: args.symmetry || args.momentum.is_some() || args.inversion.is_some(),
                    momentum: args.momentum,
                    inversion: args.inversion,
                },
                memory_limit: args.memory_gb.map(|gb| (gb * (1u64 << 30) as f64) as u64),
                output: args.output,
                force: args.force,
                correlations: args.correlations,
            };
            errln!("nqs ed: {} ({threads} threads)", model.describe());
            let report = job::ed::run(&model, &job, threads)?;
            out.ed(&model, &report, args.correlations);
        }
        Command::Run(args) => {
            let model = config::load(&args.model.model, &args.model.overrides)?;
            let stop = cli::stop_flag()?;
            let options = job::run::RunOptions {
                output: args.output,
                force: args.force,
                resume: args.resume,
                reference: !args.no_reference,
                threads,
            };
            if comm.is_root() {
                errln!(
                    "nqs run: {} | {} alpha={} | {} chains × {} samples | {} | {} rank(s) × {threads} threads",
                    model.describe(),
                    model.config.ansatz.name(),
                    model.config.ansatz.alpha(),
                    model.config.sampler.chains,
                    model.config.sampler.samples_per_chain(),
                    model.config.optimizer.name(),
                    comm.size()
                );
            }
            let mut progress =
                cli::Progress::new(model.config.optimizer.iterations, comm.is_root());
            let outcome = job::run::run(&model, &options, comm, &mut [&mut progress], &stop);
            progress.finish();
            out.run(&model, &outcome?);
        }
        Command::Measure(args) => {
            let job = job::measure::MeasureJob {
                samples: args.samples,
                observables: args.observables,
            };
            let report = job::measure::run(&args.file, &job, comm)?;
            out.measure(&report);
        }
        Command::Info(args) => out.info(&job::info::describe(&args.file)?),
        Command::Plot(args) => {
            nqs::plot::plot_run(&args.file, &args.output, args.force)?;
            out.written(&args.output);
        }
        Command::Tomo(args) => {
            let options = job::tomo::options(args.config.as_deref(), args.table())?;
            let mut progress = cli::Progress::new(options.epochs, true);
            let report = job::tomo::run(
                &options,
                args.force,
                threads,
                &mut |line| errln!("{line}"),
                &mut |r| progress.epoch(r, options.epochs),
            );
            progress.finish();
            out.tomo(&report?);
        }
        Command::Sample(args) => {
            let bases = match (args.bases, args.basis) {
                (Some(path), _) => job::sample::Bases::File(path),
                (None, basis) => job::sample::Bases::Fixed {
                    basis: basis.unwrap_or_default(),
                    shots: args.shots,
                },
            };
            let bases = match bases {
                job::sample::Bases::Fixed { basis, shots } if basis.is_empty() => {
                    let n = job::physical_state(&args.state)?.len().trailing_zeros() as usize;
                    job::sample::Bases::Fixed {
                        basis: "Z".repeat(n),
                        shots,
                    }
                }
                b => b,
            };
            let sample = job::sample::SampleJob {
                bases,
                seed: args.seed,
                output: args.output,
                force: args.force,
            };
            out.sample(&job::sample::run(&args.state, &sample)?);
        }
        Command::Doctor => {
            let all = job::doctor::gather(comm, mpi_name);
            out.doctor(&all);
        }
    }
    Ok(())
}
