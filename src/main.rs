//! The `nqs` command line. Each subcommand parses its arguments, calls the library and prints
//! either a human-readable report (stdout) or, with `--json`, exactly one JSON object.

use clap::{Args, Parser, Subcommand};
use nqs::ansatz::Ansatz;
use nqs::config::{self, LoadedConfig};
use nqs::dist::{self, Communicator};
use nqs::error::{Error, Result};
use nqs::exact::{self, formulas, EdOptions, Method, SymmetryRequest};
use nqs::io::{self, NewFile, RootInfo};
use nqs::lattice::Lattice;
use nqs::operator::Hamiltonian;
use nqs::vmc;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "nqs",
    version,
    about = "Neural-network quantum states: VMC with a complex RBM, exact diagonalization, tomography"
)]
struct Cli {
    /// Worker threads of this process (default: all cores of the allocation).
    #[arg(long, global = true)]
    threads: Option<usize>,
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
    /// Validate a model file and print what it describes.
    Check(ModelArgs),
    /// What an nqs HDF5 file holds: model, ansatz, iterations, last energy, exact reference.
    Info(InfoArgs),
    /// Plot a run's history (energy with error bars and the exact line, variance) as PNG.
    Plot(PlotArgs),
    /// Fit the RBM to measured shots (maximum likelihood tomography).
    Tomo(TomoArgs),
    /// Synthetic shots from a stored state (an `nqs ed` eigenvector or an RBM).
    Sample(SampleArgs),
}

#[derive(Args)]
struct PlotArgs {
    /// A run file.
    file: PathBuf,
    /// The PNG to write.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Args)]
struct TomoArgs {
    /// A file with a [tomography] section holding any of the options below (command-line
    /// options take precedence).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Shots: text (one shot a row, N values 0/1) or HDF5 (measurements/outcomes, measurements/bases).
    #[arg(long)]
    samples: Option<PathBuf>,
    /// Bases of the shots (text, one row of N letters X/Y/Z per shot); all Z when absent.
    #[arg(long)]
    bases: Option<PathBuf>,
    /// Reference state (2^N rows "Re Im") for fidelity and KL divergence.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Hidden-unit density [default: 1].
    #[arg(long)]
    alpha: Option<usize>,
    /// [default: 200]
    #[arg(long)]
    epochs: Option<usize>,
    /// [default: 100]
    #[arg(long)]
    batch_size: Option<usize>,
    /// [default: 0.003]
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Adam, SGD, or SR (natural gradient with the exactly enumerated metric, N ≤ 14) [default: adam].
    #[arg(long, value_enum)]
    optimizer: Option<nqs::tomography::FitOptimizer>,
    /// Diagonal shift of the SR metric [default: 0.01].
    #[arg(long)]
    diag_shift: Option<f64>,
    /// Fit a complex RBM even to Z-only data (default: positive real RBM for Z-only data).
    #[arg(long)]
    complex: bool,
    /// Fraction of shots held out for the validation NLL and early stopping [default: 0.1].
    #[arg(long)]
    validation: Option<f64>,
    /// Epochs without a better validation NLL before stopping [default: 40].
    #[arg(long)]
    patience: Option<usize>,
    /// [default: 1234]
    #[arg(long)]
    seed: Option<u64>,
    /// Output HDF5 file with the fitted state and the fit history [default: runs/tomography.h5].
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long)]
    force: bool,
}

/// `nqs tomo` options after merging the command line, the [tomography] file and the defaults.
struct ResolvedTomo {
    samples: PathBuf,
    bases: Option<PathBuf>,
    reference: Option<PathBuf>,
    alpha: usize,
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    optimizer: nqs::tomography::FitOptimizer,
    diag_shift: f64,
    complex: bool,
    validation: f64,
    patience: usize,
    seed: u64,
    output: PathBuf,
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
    /// Number of shots (with --basis).
    #[arg(long, default_value_t = 1000)]
    shots: usize,
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Directory for samples.txt, bases.txt, measurements.h5 and state.txt.
    #[arg(long)]
    output: PathBuf,
}

#[derive(Args)]
struct InfoArgs {
    /// A run, checkpoint or ed file.
    file: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Output HDF5 file (default: run.output of the model file, else runs/<model>.h5).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
    /// Skip the exact reference (ED or closed form) in the summary.
    #[arg(long)]
    no_reference: bool,
    /// Continue from the last checkpoint of the output file.
    #[arg(long)]
    resume: bool,
}

#[derive(Args)]
struct ModelArgs {
    /// Model file (TOML, DESIGN.md §6).
    model: PathBuf,
    /// Override a key: `--set section.key=value` (value parsed as TOML; repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Args)]
struct EdArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Number of lowest eigenstates.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    states: u32,
    /// Eigensolver.
    #[arg(long, value_enum, default_value_t = Method::Auto)]
    method: Method,
    /// Use translation (and, at S^z = 0, spin-inversion) sectors; scans all of them unless
    /// --momentum / --inversion pick one.
    #[arg(long)]
    symmetry: bool,
    /// Momentum sector: integer(s) m with k = 2π m / L ("3" for chains, "2,0" for squares).
    #[arg(long, value_delimiter = ',')]
    momentum: Option<Vec<usize>>,
    /// Spin-inversion sector (+1 or -1), at total_sz = 0 only.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_inversion)]
    inversion: Option<i8>,
    /// Memory budget in GiB (default: the memory available now).
    #[arg(long)]
    memory_gb: Option<f64>,
    /// Write the ground state and spectrum to this HDF5 file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
    /// Print ⟨Z_i Z_j⟩ correlations and the structure factor (needs the eigenvector).
    #[arg(long)]
    correlations: bool,
}

fn parse_inversion(s: &str) -> std::result::Result<i8, String> {
    match s.trim() {
        "1" | "+1" | "+" => Ok(1),
        "-1" | "-" => Ok(-1),
        other => Err(format!("expected +1 or -1, got {other:?}")),
    }
}

/// Everything built from a model file.
struct Model {
    loaded: LoadedConfig,
    lattice: Lattice,
    hamiltonian: Hamiltonian,
}

impl Model {
    fn load(args: &ModelArgs) -> Result<Model> {
        let loaded = config::load(&args.model, &args.overrides)?;
        let lattice = Lattice::from_config(&loaded.config.lattice);
        let hamiltonian = Hamiltonian::from_config(&loaded.config.model, &lattice, &loaded.path)?;
        Ok(Model {
            loaded,
            lattice,
            hamiltonian,
        })
    }

    fn description(&self) -> String {
        let c = &self.loaded.config;
        let shape = match c.lattice.kind {
            config::LatticeKind::Chain => format!("chain L={}", self.lattice.n_sites()),
            config::LatticeKind::Square => format!(
                "square {}x{}",
                self.lattice.extent()[0],
                self.lattice.extent()[1]
            ),
            config::LatticeKind::Custom => format!("custom graph N={}", self.lattice.n_sites()),
        };
        let boundary = if c.lattice.kind == config::LatticeKind::Custom {
            String::new()
        } else {
            format!(" {:?}", c.lattice.boundary).to_lowercase()
        };
        format!(
            "{:?} on {shape}{boundary}, {} units",
            c.model.kind,
            c.model.units.name()
        )
        .to_lowercase()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "mpi")]
    let mpi = if dist::launched_by_mpi() {
        dist::Mpi::initialize()
    } else {
        None
    };
    #[cfg(feature = "mpi")]
    let comm: &dyn Communicator = match &mpi {
        Some(m) => m,
        None => &dist::Serial,
    };
    #[cfg(not(feature = "mpi"))]
    let comm: &dyn Communicator = &dist::Serial;
    match run(cli, comm) {
        Ok(()) => ExitCode::SUCCESS,
        // One rank failing ends the whole job with its message instead of leaving the others
        // waiting in a collective call.
        Err(e) if comm.size() > 1 => comm.abort(&e.to_string(), e.exit_code()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: Cli, comm: &dyn Communicator) -> Result<()> {
    let threads = match cli.threads {
        Some(0) => return Err(Error::Input("--threads must be at least 1".into())),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| Error::Runtime(format!("cannot start {threads} threads: {e}")))?;
    match cli.command {
        Command::Ed(args) => ed(args, cli.json, threads),
        Command::Check(args) => check(args, cli.json),
        Command::Run(args) => run_vmc(args, cli.json, threads, comm),
        Command::Info(args) => info(args, cli.json),
        Command::Tomo(args) => tomo(args, cli.json, threads),
        Command::Plot(args) => {
            nqs::plot::plot_run(&args.file, &args.output)?;
            if cli.json {
                println!("{}", json!({"output": args.output}));
            } else {
                println!("wrote {}", args.output.display());
            }
            Ok(())
        }
        Command::Sample(args) => sample_shots(args, cli.json),
    }
}

fn check(args: ModelArgs, json: bool) -> Result<()> {
    let m = Model::load(&args)?;
    let op = &m.hamiltonian.operator;
    if json {
        println!(
            "{}",
            json!({
                "model": m.description(),
                "n_sites": m.lattice.n_sites(),
                "bonds": m.lattice.bonds().len(),
                "bipartite": m.lattice.is_bipartite(),
                "translations": m.lattice.translations().len(),
                "pauli_strings": op.strings().len(),
                "conserves_sz": op.conserves_sz(),
                "n_up": m.hamiltonian.n_up,
            })
        );
    } else {
        println!("{}: {}", m.loaded.path.display(), m.description());
        println!(
            "  sites {}, bonds {}, next-nearest bonds {}",
            m.lattice.n_sites(),
            m.lattice.bonds().len(),
            m.lattice.next_bonds().len()
        );
        println!(
            "  bipartite {}, translations {}",
            m.lattice.is_bipartite(),
            m.lattice.translations().len()
        );
        println!(
            "  {} Pauli strings, conserves S^z: {}, sector n_up: {:?}",
            op.strings().len(),
            op.conserves_sz(),
            m.hamiltonian.n_up
        );
    }
    Ok(())
}

fn ed(args: EdArgs, json: bool, threads: usize) -> Result<()> {
    let start = Instant::now();
    let m = Model::load(&args.model)?;
    let n = m.lattice.n_sites();
    let mut opts = EdOptions {
        n_states: args.states as usize,
        method: args.method,
        ..EdOptions::default()
    };
    opts.lanczos.eigenvectors = args.output.is_some() || args.correlations;
    opts.symmetry = SymmetryRequest {
        enabled: args.symmetry || args.momentum.is_some() || args.inversion.is_some(),
        momentum: args.momentum.clone(),
        inversion: args.inversion,
    };
    if let Some(gb) = args.memory_gb {
        if !(gb.is_finite() && gb > 0.0) {
            return Err(Error::Input(format!(
                "--memory-gb must be a positive number, got {gb}"
            )));
        }
        opts.memory_limit = (gb * (1u64 << 30) as f64) as u64;
    }
    if let Some(out) = &args.output {
        if out.exists() && !args.force {
            return Err(Error::Input(format!(
                "{}: output file exists; choose another --output or pass --force to replace it",
                out.display()
            )));
        }
    }
    eprintln!("nqs ed: {} ({} threads)", m.description(), threads);
    let result = exact::solve(&m.hamiltonian, &m.lattice, &opts)?;
    let wall = start.elapsed().as_secs_f64();
    let units = m.loaded.config.model.units.name();
    let e0 = result.ground_state.energy;
    let reference = formulas::reference_energy(&m.loaded.config.lattice, &m.loaded.config.model);
    let output = match &args.output {
        Some(path) => {
            let root = RootInfo {
                config_text: m.loaded.text.clone(),
                seed: 0,
                ranks: 1,
                threads,
                command: "ed".into(),
                start_time: io::utc_now(),
            };
            let file = NewFile::create(path, args.force, &root)?;
            io::write_exact(&file.file, &result, &m.lattice, units, path)?;
            Some(file.commit()?)
        }
        None => None,
    };
    if json {
        println!(
            "{}",
            json!({
                "energy": e0,
                "energy_per_site": e0 / n as f64,
                "dimension": result.dimension(),
                "method": result.method(),
                "wall_time_s": wall,
                "units": units,
                "energies": result.energies.iter().map(|e| e.0).collect::<Vec<_>>(),
                "sector": result.ground_state.sector,
                "sectors": result.sectors,
                "zz_correlations": args.correlations.then(|| result.ground_state.zz_correlations.as_ref().map(|zz| zz.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>())),
                "reference": reference.map(|(e, method)| json!({"energy": e, "method": method})),
                "output": output,
            })
        );
    } else {
        println!(
            "{:<28} {:>12} {:>8} {:>8} {:>24}",
            "sector", "dimension", "method", "matvecs", "lowest energy"
        );
        for s in &result.sectors {
            println!(
                "{:<28} {:>12} {:>8} {:>8} {:>24.14}",
                s.sector.to_string(),
                s.dimension,
                s.method,
                s.matvecs,
                s.energies[0]
            );
        }
        println!();
        println!(
            "ground state energy   E0 = {e0:.14} ({units} units), per site {:.14}",
            e0 / n as f64
        );
        println!("ground state sector   {}", result.ground_state.sector);
        if result.energies.len() > 1 {
            for (i, (e, sector)) in result.energies.iter().enumerate() {
                println!("  state {i:<3} E = {e:.14}  [{sector}]");
            }
        }
        if let (true, Some(zz)) = (args.correlations, &result.ground_state.zz_correlations) {
            println!(
                "⟨Z_0 Z_j⟩: {}",
                (0..n)
                    .map(|j| format!("{:.6}", zz[[0, j]]))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            for (q, s) in exact::structure_factor(&m.lattice, zz) {
                println!(
                    "  S(q = {}) = {s:.6}",
                    q.iter()
                        .map(|x| format!("{x:.4}"))
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        if let Some((e, method)) = reference {
            println!(
                "exact reference       {e:.14} ({method}), |ΔE|/|E| = {:.2e}",
                ((e0 - e) / e).abs()
            );
        }
        println!(
            "dimension {}, method {}, wall time {wall:.2} s",
            result.dimension(),
            result.method()
        );
        if let Some(path) = output {
            println!("written to {}", path.display());
        }
    }
    Ok(())
}

/// The exact reference of a run: the project's ED when the sector is small, else a closed form.
fn exact_reference(m: &Model) -> Option<(f64, String)> {
    let n = m.lattice.n_sites();
    let small = n <= 40 && {
        let dim = nqs::hilbert::SectorBasis::new(n, m.hamiltonian.n_up)
            .map(|b| b.dimension())
            .unwrap_or(u64::MAX);
        dim <= 1_000_000
    };
    if small {
        let mut opts = EdOptions::default();
        opts.lanczos.eigenvectors = false;
        if let Ok(r) = exact::solve(&m.hamiltonian, &m.lattice, &opts) {
            return Some((r.ground_state.energy, format!("ed ({})", r.method())));
        }
    }
    formulas::reference_energy(&m.loaded.config.lattice, &m.loaded.config.model)
        .map(|(e, method)| (e, method.to_string()))
}

/// Log destination: an indicatif bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
    enabled: bool,
}

impl Progress {
    /// Progress output of rank 0 (`enabled`); other ranks stay silent.
    fn new(total: usize, enabled: bool) -> Progress {
        use std::io::IsTerminal;
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            last_line: Instant::now(),
            enabled,
        }
    }

    fn update(&mut self, done: usize, total: usize, message: String) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.set_message(message);
            }
            None => {
                if self.enabled
                    && (done == total || done <= 1 || self.last_line.elapsed().as_secs_f64() >= 5.0)
                {
                    eprintln!("iter {done:>6}/{total} {message}");
                    self.last_line = Instant::now();
                }
            }
        }
    }

    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if self.enabled => eprintln!("{line}"),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn run_vmc(args: RunArgs, json: bool, threads: usize, comm: &dyn Communicator) -> Result<()> {
    let root_rank = comm.is_root();
    let start = Instant::now();
    let m = Model::load(&args.model)?;
    let config = &m.loaded.config;
    let n = m.lattice.n_sites();
    let output = args
        .output
        .clone()
        .or_else(|| config.run.output.clone())
        .unwrap_or_else(|| {
            let stem = args
                .model
                .model
                .file_stem()
                .map_or("run".into(), |s| s.to_string_lossy().into_owned());
            PathBuf::from(format!("runs/{stem}.h5"))
        });
    let ckpt = io::checkpoint_path(&output);
    // Rank 0 decides (the file system may be shared or not), every rank follows.
    let mut exists = [u64::from(root_rank && (output.exists() || ckpt.exists()))];
    comm.sum_u64(&mut exists);
    if !args.resume && exists[0] > 0 && !args.force {
        return Err(Error::Input(format!(
            "{}: output file exists; continue it with --resume, choose another --output, or pass --force to replace it",
            output.display()
        )));
    }
    let mut ansatz = vmc::build_ansatz(config, &m.lattice, &m.loaded.path)?;
    let (settings, notes) =
        vmc::sampler_settings(config, &m.lattice, &m.hamiltonian, &m.loaded.path)?;
    let chains = config.sampler.chains;
    if chains < comm.size() {
        return Err(Error::Input(format!(
            "{}: sampler.chains = {chains} is fewer than the {} MPI ranks; every rank needs a chain",
            m.loaded.path.display(),
            comm.size()
        )));
    }
    let (first_chain, local_chains) = dist::chain_range(chains, comm.rank(), comm.size());
    let mut sampler = nqs::sampler::MetropolisSampler::new(
        &ansatz,
        settings,
        config.run.seed,
        first_chain,
        local_chains,
    );
    let mut optimizer_state = nqs::optimizer::OptimizerState::default();
    let mut history = Vec::new();
    let mut start_time = io::utc_now();
    if args.resume {
        // The checkpoint if there is one; else the run file itself only when it is a finished
        // run (a live file killed before its first checkpoint holds no state: start over).
        let source = if ckpt.exists() {
            Some(ckpt.clone())
        } else if output.exists() {
            let file = io::open_nqs_file(&output)?;
            let finished = file
                .attr("finished")
                .and_then(|a| a.read_scalar::<u8>())
                .is_ok_and(|v| v == 1);
            (finished || file.group("ansatz").is_ok()).then(|| output.clone())
        } else {
            None
        };
        match source
            .map(|p| io::read_run(&p).map(|r| (p, r)))
            .transpose()?
        {
            Some((_, stored))
                if stored.finished && stored.history.len() >= config.optimizer.iterations =>
            {
                if root_rank {
                    eprintln!(
                        "{}: run already finished ({} iterations); nothing to do",
                        output.display(),
                        stored.history.len()
                    );
                }
                if json && root_rank {
                    println!(
                        "{}",
                        json!({"finished": true, "iterations": stored.history.len(), "output": output})
                    );
                }
                return Ok(());
            }
            Some((source, stored)) => {
                let kind = match config.ansatz.kind {
                    nqs::config::AnsatzKind::Rbm => "rbm",
                    nqs::config::AnsatzKind::RbmSymm => "rbm_symm",
                };
                if stored.kind != kind
                    || stored.alpha != config.ansatz.alpha
                    || stored.n_sites != n
                    || stored.configurations.nrows() != chains
                {
                    return Err(Error::Input(format!(
                        "{}: the checkpoint ({} alpha={} on {} sites, {} chains) does not match the model file",
                        source.display(),
                        stored.kind,
                        stored.alpha,
                        stored.n_sites,
                        stored.configurations.nrows()
                    )));
                }
                ansatz.set_parameters(&stored.parameters);
                // Each rank takes its own chains from the stored global list.
                for (k, chain) in sampler.chains.iter_mut().enumerate() {
                    let c = first_chain + k;
                    chain.sigma = stored.configurations.row(c).to_vec();
                    let words = stored.rng_states.row(c);
                    chain.rng =
                        nqs::sampler::rng_from_state([words[0], words[1], words[2], words[3]]);
                    chain.thermalized = stored.thermalized[c] == 1;
                }
                optimizer_state = stored.optimizer;
                history = stored.history;
                history.truncate(optimizer_state.iteration);
                if root_rank {
                    eprintln!(
                        "resuming {} at iteration {} (from {})",
                        output.display(),
                        history.len(),
                        source.display()
                    );
                }
                start_time = stored.start_time;
            }
            None if root_rank => eprintln!(
                "{}: no checkpoint to resume from; starting from the beginning",
                output.display()
            ),
            None => {}
        }
    }
    let n_params = ansatz.n_parameters();
    let n_samples = sampler.settings.samples_per_chain * chains;
    let state = vmc::VmcState {
        ansatz,
        optimizer: optimizer_state,
        sampler,
        history,
    };
    let ranks = comm.size();
    let say = |line: &str| {
        if root_rank {
            eprintln!("{line}");
        }
    };
    say(&format!(
        "nqs run: {} | {:?} alpha={} ({n_params} parameters) | {} chains × {} samples, {:?} moves | {:?} | {ranks} rank(s) × {threads} threads",
        m.description(),
        config.ansatz.kind,
        config.ansatz.alpha,
        chains,
        n_samples / chains,
        state.sampler.settings.kind(),
        config.optimizer.kind,
    ));
    for note in &notes {
        say(&format!("note: {note}"));
    }
    let memory_limit = exact::available_memory() / 2;
    // The log-derivatives of this rank's samples are kept as a dense matrix (16 bytes each).
    let derivative_bytes = (n_samples / comm.size()) as u64 * n_params as u64 * 16;
    if derivative_bytes > memory_limit {
        return Err(Error::Resources(format!(
            "{} samples × {n_params} parameters need {:.1} GiB for the log-derivatives on each rank, more than the {:.1} GiB available; lower sampler.samples or use more MPI ranks",
            n_samples / comm.size(),
            derivative_bytes as f64 / (1u64 << 30) as f64,
            memory_limit as f64 / (1u64 << 30) as f64
        )));
    }
    if config.optimizer.kind == nqs::config::OptimizerKind::Sr
        && config.optimizer.solver == nqs::config::SrSolverKind::Auto
    {
        say(&format!(
            "SR solver: auto chose {:?} for {n_samples} samples × {n_params} parameters",
            nqs::optimizer::choose_solver(n_samples, n_params, memory_limit, ranks)
        ));
    }
    let root = RootInfo {
        config_text: m.loaded.text.clone(),
        seed: config.run.seed,
        ranks,
        threads,
        command: "run".into(),
        start_time,
    };
    // Every rank has read what it needs before rank 0 (alone) starts writing.
    comm.barrier();
    let mut store = if root_rank {
        Some(io::RunStore::create(&output, &root, &state.history)?)
    } else {
        None
    };
    let mut driver = vmc::Driver::new(config, &m.hamiltonian, comm, state, memory_limit);
    let checkpoint = |driver: &vmc::Driver, store: &Option<io::RunStore>| -> Result<()> {
        let global = vmc::gather_state(&driver.state, comm, chains);
        store
            .as_ref()
            .map_or(Ok(()), |s| s.checkpoint(&root, &global))
    };
    // SIGTERM (Slurm, before the wall-time kill) and SIGINT: finish the iteration, checkpoint, exit.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| Error::Runtime(format!("cannot install signal handler: {e}")))?;
    }
    let iterations = config.optimizer.iterations;
    let mut progress = Progress::new(iterations, root_rank);
    let mut times = Vec::with_capacity(iterations);
    let mut failures = 0;
    let mut it = driver.state.history.len();
    while it < iterations {
        let t0 = Instant::now();
        let backup = driver.state.ansatz.clone();
        match driver.step() {
            Ok(report) => {
                failures = 0;
                let dt = t0.elapsed().as_secs_f64();
                times.push(dt);
                let e = &report.energy;
                let row = vmc::HistoryRow {
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
                    cg_iterations: report.update.cg_iterations,
                    solver_residual: report.update.residual,
                    wall_time: start.elapsed().as_secs_f64(),
                };
                if let Some(store) = &mut store {
                    store.append(&row)?;
                }
                driver.state.history.push(row);
                it += 1;
                if it % config.run.checkpoint_every == 0 && it < iterations {
                    checkpoint(&driver, &store)?;
                }
                progress.update(
                    it,
                    iterations,
                    format!(
                        "E = {:.6} ± {:.6}  var {:.4}  acc {:.2}  R̂ {:.3}  {}{}",
                        e.mean.re,
                        e.error,
                        e.variance,
                        report.sweep.acceptance(),
                        e.r_hat,
                        report.update.method,
                        if report.update.cg_iterations > 0 {
                            format!(" ({} CG its)", report.update.cg_iterations)
                        } else {
                            String::new()
                        }
                    ),
                );
            }
            Err(Error::Numerical(message)) if failures < 3 => {
                failures += 1;
                driver.state.ansatz = backup;
                for chain in &mut driver.state.sampler.chains {
                    chain.thermalized = false;
                }
                progress.note(&format!("warning: {message}; restored the previous parameters and re-thermalizing (attempt {failures}/3)"));
            }
            Err(e) => {
                progress.finish();
                return Err(e);
            }
        }
        // Stop together: a signal seen by any rank stops every rank after this iteration.
        let mut stopping = [u64::from(stop.load(std::sync::atomic::Ordering::Relaxed))];
        comm.sum_u64(&mut stopping);
        if stopping[0] > 0 && it < iterations {
            checkpoint(&driver, &store)?;
            progress.finish();
            if !root_rank {
                return Ok(());
            }
            eprintln!(
                "interrupted at iteration {it}: checkpoint written to {}; continue with --resume",
                io::checkpoint_path(&output).display()
            );
            if json {
                println!(
                    "{}",
                    json!({"interrupted": true, "iterations": it, "output": output})
                );
            }
            return Ok(());
        }
    }
    progress.finish();
    // Final estimate from a longer, independent set of samples.
    let per_chain = config
        .run
        .observable_samples
        .unwrap_or(4 * n_samples)
        .div_ceil(chains);
    let obs = driver.observe(per_chain);
    let energy = obs.energy;
    let reference = if args.no_reference || !root_rank {
        None
    } else {
        exact_reference(&m)
    };
    let relative_error = reference
        .as_ref()
        .map(|(e, _)| ((energy.mean.re - e) / e).abs());
    let v_score = n as f64 * energy.variance / (energy.mean.re * energy.mean.re);
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    let (szsz, szsz_err) = obs.szsz(comm);
    let sq = obs.structure_factor(&m.lattice, comm);
    let wall = start.elapsed().as_secs_f64();
    let results = io::RunResults {
        energy: &energy,
        reference: reference.as_ref(),
        szsz: &szsz,
        szsz_error: &szsz_err,
        structure: &sq,
        extra: &obs.extra,
    };
    let global = vmc::gather_state(&driver.state, comm, chains);
    let Some(store) = store else {
        return Ok(());
    };
    let output = store.finish(&root, &global, &results)?;
    let units = config.model.units.name();
    if json {
        println!(
            "{}",
            json!({
                "energy": {"mean": energy.mean.re, "error": energy.error, "variance": energy.variance, "r_hat": energy.r_hat, "tau": energy.tau},
                "energy_per_site": energy.mean.re / n as f64,
                "exact": reference.as_ref().map(|(e, method)| json!({"energy": e, "method": method})),
                "relative_error": relative_error,
                "v_score": v_score,
                "units": units,
                "iterations": driver.state.history.len(),
                "n_parameters": n_params,
                "n_samples": n_samples,
                "wall_time_s": wall,
                "time_per_iteration_s": median,
                "observables": obs.extra.iter().map(|(name, s)| json!({"name": name, "mean": s.mean.re, "error": s.error})).collect::<Vec<_>>(),
                "output": output,
            })
        );
    } else {
        println!("{}", m.description());
        println!(
            "  energy             {:.8} ± {:.8} ({units} units)",
            energy.mean.re, energy.error
        );
        println!(
            "  energy per site    {:.8} ± {:.8}",
            energy.mean.re / n as f64,
            energy.error / n as f64
        );
        println!(
            "  variance           {:.6e}   V-score N·Var/E² = {v_score:.3e}",
            energy.variance
        );
        println!("  R̂ {:.4}, τ {:.2}", energy.r_hat, energy.tau);
        match (&reference, relative_error) {
            (Some((e, method)), Some(rel)) => {
                println!("  exact              {e:.8} ({method})   relative error {rel:.2e}")
            }
            _ => println!("  exact              (no reference for this model)"),
        }
        if let Some((q, s)) = sq.iter().max_by(|a, b| a.1.mean.re.total_cmp(&b.1.mean.re)) {
            println!(
                "  max S(q)           {:.5} ± {:.5} at q = {:?}",
                s.mean.re,
                s.error,
                q.iter()
                    .map(|x| (x * 1e4).round() / 1e4)
                    .collect::<Vec<_>>()
            );
        }
        println!(
            "  ⟨S^z_0 S^z_j⟩      {}",
            (0..n.min(8))
                .map(|j| format!("{:.4}", szsz[[0, j]]))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for (name, s) in &obs.extra {
            println!("  ⟨{name}⟩ {:>12.6} ± {:.6}", s.mean.re, s.error);
        }
        println!(
            "  parameters {n_params}, samples {n_samples}, iterations {}",
            driver.state.history.len()
        );
        println!(
            "  wall time {wall:.1} s, median {:.4} s per iteration",
            median
        );
        println!("  written to {}", output.display());
    }
    Ok(())
}

fn info(args: InfoArgs, json: bool) -> Result<()> {
    let path = &args.file;
    let file = io::open_nqs_file(path)?;
    let bad = |e: hdf5::Error| Error::input(path, format!("damaged nqs file: {e}"));
    let text = |name: &str| io::read_str_attr(&file, name).unwrap_or_default();
    let config_text = text("config");
    let model = toml::from_str::<config::Config>(&config_text)
        .ok()
        .map(|c| {
            let lattice = match c.lattice.kind {
                config::LatticeKind::Chain => format!("chain L={}", c.lattice.length.unwrap_or(0)),
                config::LatticeKind::Square => {
                    format!("square {:?}", c.lattice.extent.unwrap_or_default())
                }
                config::LatticeKind::Custom => "custom graph".to_string(),
            };
            format!(
                "{:?} on {lattice} {:?}, {} units",
                c.model.kind,
                c.lattice.boundary,
                c.model.units.name()
            )
            .to_lowercase()
        });
    let finished = file
        .attr("finished")
        .and_then(|a| a.read_scalar::<u8>())
        .map(|v| v == 1)
        .ok();
    let ansatz = file
        .group("ansatz")
        .ok()
        .map(|g| -> Result<serde_json::Value> {
            let kind = io::read_str_attr(&g, "kind").map_err(bad)?;
            let alpha = g
                .attr("alpha")
                .and_then(|a| a.read_scalar::<u64>())
                .map_err(bad)?;
            let n_parameters = g.dataset("parameters").map_err(bad)?.size();
            Ok(json!({"kind": kind, "alpha": alpha, "n_parameters": n_parameters}))
        });
    let ansatz = ansatz.transpose()?;
    let energies: Vec<f64> = match file.group("history") {
        Ok(h) => h
            .dataset("energy")
            .and_then(|d| d.read_raw::<f64>())
            .map_err(bad)?,
        Err(_) => vec![],
    };
    let exact = file.group("exact").ok().map(|g| {
        let energy = g.attr("energy").and_then(|a| a.read_scalar::<f64>()).ok();
        json!({"energy": energy, "method": io::read_str_attr(&g, "method").ok()})
    });
    let report = json!({
        "file": path,
        "command": text("command"),
        "version": text("version"),
        "start_time": text("start_time"),
        "model": model,
        "finished": finished,
        "ansatz": ansatz,
        "iterations": energies.len(),
        "last_energy": energies.last(),
        "exact": exact,
    });
    if json {
        println!("{report}");
    } else {
        println!(
            "{}: nqs {} file (version {}, started {})",
            path.display(),
            text("command"),
            text("version"),
            text("start_time")
        );
        if let Some(m) = model {
            println!("  model       {m}");
        }
        if let Some(a) = &report["ansatz"].as_object() {
            println!(
                "  ansatz      {} alpha={} ({} parameters)",
                a["kind"], a["alpha"], a["n_parameters"]
            );
        }
        if !energies.is_empty() {
            println!(
                "  iterations  {}{}",
                energies.len(),
                if finished == Some(true) {
                    " (finished)"
                } else {
                    " (not finished)"
                }
            );
            println!("  last energy {:.8}", energies[energies.len() - 1]);
        }
        if let Some(x) = report["exact"].as_object() {
            println!("  exact       {} ({})", x["energy"], x["method"]);
        }
    }
    Ok(())
}

fn is_hdf5(path: &std::path::Path) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"\x89HDF\r\n\x1a\n"
}

fn tomo(cli_args: TomoArgs, json: bool, threads: usize) -> Result<()> {
    use nqs::tomography as t;
    let start = Instant::now();
    let file = cli_args
        .config
        .as_deref()
        .map(config::load_tomography)
        .transpose()?
        .unwrap_or_default();
    let args = ResolvedTomo {
        samples: cli_args.samples.or(file.samples).ok_or_else(|| {
            Error::Input("nqs tomo needs --samples (or samples in the [tomography] file)".into())
        })?,
        bases: cli_args.bases.or(file.bases),
        reference: cli_args.reference.or(file.reference),
        alpha: cli_args.alpha.or(file.alpha).unwrap_or(1),
        epochs: cli_args.epochs.or(file.epochs).unwrap_or(200),
        batch_size: cli_args.batch_size.or(file.batch_size).unwrap_or(100),
        learning_rate: cli_args
            .learning_rate
            .or(file.learning_rate)
            .unwrap_or(0.003),
        optimizer: cli_args
            .optimizer
            .or(file.optimizer)
            .unwrap_or(t::FitOptimizer::Adam),
        diag_shift: cli_args.diag_shift.or(file.diag_shift).unwrap_or(0.01),
        complex: cli_args.complex || file.complex.unwrap_or(false),
        validation: cli_args.validation.or(file.validation).unwrap_or(0.1),
        patience: cli_args.patience.or(file.patience).unwrap_or(40),
        seed: cli_args.seed.or(file.seed).unwrap_or(1234),
        output: cli_args
            .output
            .or(file.output)
            .unwrap_or_else(|| PathBuf::from("runs/tomography.h5")),
        force: cli_args.force,
    };
    if args.output.exists() && !args.force {
        return Err(Error::Input(format!(
            "{}: output file exists; choose another --output or pass --force",
            args.output.display()
        )));
    }
    let rates_ok = args.learning_rate.is_finite()
        && args.learning_rate > 0.0
        && args.diag_shift.is_finite()
        && args.diag_shift >= 0.0;
    if !rates_ok
        || args.batch_size == 0
        || args.epochs == 0
        || args.alpha == 0
        || args.alpha > 64
        || !(0.0..0.9).contains(&args.validation)
    {
        return Err(Error::Input(
            "learning_rate must be > 0, diag_shift ≥ 0, batch_size and epochs ≥ 1, alpha in 1..=64, validation in [0, 0.9)"
                .into(),
        ));
    }
    let data = if is_hdf5(&args.samples) {
        if args.bases.is_some() {
            return Err(Error::Input(format!(
                "{}: HDF5 input carries its bases (measurements/bases); drop --bases",
                args.samples.display()
            )));
        }
        t::read_hdf5(&args.samples)?
    } else {
        t::read_text_files(&args.samples, args.bases.as_deref())?
    };
    let n = data.n_sites;
    if n > 64 {
        return Err(Error::input(
            &args.samples,
            format!("{n} sites; at most 64 are supported"),
        ));
    }
    let reference = args
        .reference
        .as_deref()
        .map(|p| t::read_reference(p, n))
        .transpose()?;
    if reference.is_some() && n > t::EXACT_LIMIT {
        return Err(Error::Input(format!(
            "fidelity needs N ≤ {}; the data has {n} sites",
            t::EXACT_LIMIT
        )));
    }
    let positive = data.z_only() && !args.complex;
    let opts = t::FitOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        optimizer: args.optimizer,
        positive,
        validation_fraction: args.validation,
        patience: args.patience,
        seed: args.seed,
        chains: 16,
        diag_shift: args.diag_shift,
    };
    if args.optimizer == t::FitOptimizer::Sr && n > t::SR_LIMIT {
        return Err(Error::Input(format!(
            "--optimizer sr enumerates the metric exactly and needs N ≤ {}; use adam for {n} sites",
            t::SR_LIMIT
        )));
    }
    let mut rbm = t::new_model(n, args.alpha, positive, args.seed);
    eprintln!(
        "nqs tomo: {} shots on {n} sites ({} bases), {} RBM alpha={} ({} parameters), {threads} threads",
        data.len(),
        if data.z_only() { "Z only".to_string() } else { "mixed".to_string() },
        if positive { "positive" } else { "complex" },
        args.alpha,
        rbm.n_parameters()
    );
    let mut progress = Progress::new(args.epochs, true);
    let history = t::fit(&mut rbm, &data, reference.as_deref(), &opts, |r| {
        let fid = r
            .fidelity
            .map_or(String::new(), |f| format!("  fidelity {f:.5}"));
        progress.update(
            r.epoch + 1,
            args.epochs,
            format!(
                "NLL train {:.5} validation {:.5}{fid}",
                r.train_nll, r.validation_nll
            ),
        );
    })?;
    progress.finish();
    let exact = n <= t::EXACT_LIMIT;
    let all: Vec<usize> = (0..data.len()).collect();
    let log_z = if exact {
        t::exact_normalization(&rbm, None)
    } else {
        f64::NAN
    };
    let nll = t::nll(&rbm, &data, &all, log_z);
    let (fidelity, kl) = match &reference {
        Some(r) => {
            let psi = t::normalized_state(&rbm);
            let mut bases: Vec<Vec<u8>> = all.iter().map(|&k| data.basis(k).to_vec()).collect();
            bases.sort();
            bases.dedup();
            (
                Some(t::fidelity(r, &psi)),
                Some(t::kl_divergence(r, &psi, &bases)),
            )
        }
        None => (None, None),
    };
    let wall = start.elapsed().as_secs_f64();
    let root = RootInfo {
        config_text: String::new(),
        seed: args.seed,
        ranks: 1,
        threads,
        command: "tomo".into(),
        start_time: io::utc_now(),
    };
    let file = NewFile::create(&args.output, args.force, &root)?;
    io::write_tomography(&file.file, &rbm, &history, nll, fidelity, kl, &args.output)?;
    let output = file.commit()?;
    if json {
        println!(
            "{}",
            json!({"fidelity": fidelity, "kl": kl, "nll": nll, "epochs": history.len(), "wall_time_s": wall, "output": output})
        );
    } else {
        println!(
            "tomography: {} shots, {n} sites, {} epochs",
            data.len(),
            history.len()
        );
        println!("  NLL        {nll:.6}");
        if let (Some(f), Some(k)) = (fidelity, kl) {
            println!("  fidelity   {f:.6}");
            println!("  KL         {k:.3e}");
        }
        println!("  wall time  {wall:.1} s");
        println!("  written to {}", output.display());
    }
    Ok(())
}

/// The normalized state of an nqs file in qubit ordering: an RBM (`ansatz`) or an ED eigenvector.
fn stored_state(path: &std::path::Path) -> Result<Vec<num_complex::Complex64>> {
    let file = io::open_nqs_file(path)?;
    let bad = |e: hdf5::Error| Error::input(path, format!("damaged state: {e}"));
    if let Ok(g) = file.group("ansatz") {
        let kind = io::read_str_attr(&g, "kind").map_err(bad)?;
        let alpha = g
            .attr("alpha")
            .and_then(|a| a.read_scalar::<u64>())
            .map_err(bad)? as usize;
        let n = g
            .attr("n_sites")
            .and_then(|a| a.read_scalar::<u64>())
            .map_err(bad)? as usize;
        if n > nqs::tomography::EXACT_LIMIT {
            return Err(Error::input(
                path,
                format!(
                    "exact sampling needs N ≤ {}; this state has {n} sites",
                    nqs::tomography::EXACT_LIMIT
                ),
            ));
        }
        let params: Vec<num_complex::Complex64> = g
            .dataset("parameters")
            .and_then(|d| d.read_raw())
            .map_err(bad)?;
        let rbm_kind = if kind == "rbm_symm" {
            let config: config::Config =
                toml::from_str(&io::read_str_attr(&file, "config").map_err(bad)?)
                    .map_err(|e| Error::input(path, format!("stored config: {}", e.message())))?;
            let lattice = Lattice::from_config(&config.lattice);
            nqs::ansatz::RbmKind::translation_symmetric(alpha, &lattice)
        } else {
            nqs::ansatz::RbmKind::Dense { alpha }
        };
        let mut rbm = nqs::ansatz::Rbm::new(n, rbm_kind);
        if params.len() != rbm.n_parameters() {
            return Err(Error::input(
                path,
                "ansatz/parameters does not match the ansatz size",
            ));
        }
        rbm.set_parameters(&params);
        return Ok(nqs::tomography::normalized_state(&rbm));
    }
    let g = file
        .group("exact")
        .map_err(|_| Error::input(path, "holds neither an ansatz nor an exact eigenvector"))?;
    let states: Vec<u64> = g
        .dataset("basis_states")
        .and_then(|d| d.read_raw())
        .map_err(|_| {
            Error::input(
                path,
                "no stored eigenvector (run nqs ed with --output on a small system)",
            )
        })?;
    let amps: Vec<num_complex::Complex64> = g
        .dataset("eigenvector")
        .and_then(|d| d.read_raw())
        .map_err(bad)?;
    let config: config::Config = toml::from_str(&io::read_str_attr(&file, "config").map_err(bad)?)
        .map_err(|e| Error::input(path, format!("stored config: {}", e.message())))?;
    let n = Lattice::from_config(&config.lattice).n_sites();
    if n > nqs::tomography::EXACT_LIMIT {
        return Err(Error::input(
            path,
            format!("exact sampling needs N ≤ {}", nqs::tomography::EXACT_LIMIT),
        ));
    }
    let mut psi = vec![num_complex::Complex64::new(0.0, 0.0); 1 << n];
    for (s, a) in states.iter().zip(amps) {
        psi[nqs::hilbert::qubit_index(*s, n)] = a;
    }
    Ok(psi)
}

fn sample_shots(args: SampleArgs, json: bool) -> Result<()> {
    use rand::{RngExt, SeedableRng};
    if args.shots == 0 {
        return Err(Error::Input("--shots must be at least 1".into()));
    }
    let psi = stored_state(&args.state)?;
    let n = psi.len().trailing_zeros() as usize;
    let bases: Vec<Vec<u8>> = match (&args.bases, &args.basis) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    let row: Vec<u8> = l.split_whitespace().flat_map(|t| t.bytes()).collect();
                    if row.len() != n || row.iter().any(|b| !matches!(b, b'X' | b'Y' | b'Z')) {
                        Err(Error::Input(format!(
                            "{}:{}: expected {n} letters X/Y/Z",
                            path.display(),
                            i + 1
                        )))
                    } else {
                        Ok(row)
                    }
                })
                .collect::<Result<_>>()?
        }
        (None, Some(b)) => {
            let row = b.as_bytes().to_vec();
            if row.len() != n || row.iter().any(|c| !matches!(c, b'X' | b'Y' | b'Z')) {
                return Err(Error::Input(format!(
                    "--basis {b}: expected {n} letters X/Y/Z"
                )));
            }
            vec![row; args.shots]
        }
        (None, None) => vec![vec![b'Z'; n]; args.shots],
    };
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(args.seed);
    let mut cdfs: std::collections::HashMap<Vec<u8>, Vec<f64>> = std::collections::HashMap::new();
    let mut outcomes = Vec::with_capacity(bases.len() * n);
    for b in &bases {
        let cdf = cdfs.entry(b.clone()).or_insert_with(|| {
            let p = nqs::tomography::basis_probabilities(&psi, b);
            p.iter()
                .scan(0.0, |acc, x| {
                    *acc += x;
                    Some(*acc)
                })
                .collect()
        });
        let u: f64 = rng.random::<f64>() * cdf[cdf.len() - 1];
        let index = cdf.partition_point(|&c| c < u).min(cdf.len() - 1);
        for j in 0..n {
            outcomes.push(((index >> (n - 1 - j)) & 1) as u8);
        }
    }
    std::fs::create_dir_all(&args.output)
        .map_err(|e| Error::Runtime(format!("{}: {e}", args.output.display())))?;
    let write = |name: &str, text: String| {
        std::fs::write(args.output.join(name), text)
            .map_err(|e| Error::Runtime(format!("{}: {e}", args.output.join(name).display())))
    };
    write(
        "samples.txt",
        outcomes
            .chunks(n)
            .map(|r| {
                r.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
                    + "\n"
            })
            .collect(),
    )?;
    write(
        "bases.txt",
        bases
            .iter()
            .map(|r| {
                String::from_utf8_lossy(r)
                    .chars()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
                    + "\n"
            })
            .collect(),
    )?;
    write(
        "state.txt",
        psi.iter()
            .map(|z| format!("{:.17e} {:.17e}\n", z.re, z.im))
            .collect(),
    )?;
    let h5 = args.output.join("measurements.h5");
    let root = RootInfo {
        config_text: String::new(),
        seed: args.seed,
        ranks: 1,
        threads: 1,
        command: "sample".into(),
        start_time: io::utc_now(),
    };
    let file = NewFile::create(&h5, true, &root)?;
    let write_h5 = || -> hdf5::Result<()> {
        let g = file.file.create_group("measurements")?;
        io::write_2d(
            &g,
            "outcomes",
            &ndarray::Array2::from_shape_vec((bases.len(), n), outcomes.clone()).expect("shape"),
        )?;
        io::write_2d(
            &g,
            "bases",
            &ndarray::Array2::from_shape_vec((bases.len(), n), bases.concat()).expect("shape"),
        )
    };
    write_h5().map_err(io::h5err(&h5))?;
    file.commit()?;
    if json {
        println!(
            "{}",
            json!({"shots": bases.len(), "n_sites": n, "output": args.output})
        );
    } else {
        println!("{} shots on {n} sites written to {} (samples.txt, bases.txt, measurements.h5, state.txt)", bases.len(), args.output.display());
    }
    Ok(())
}
