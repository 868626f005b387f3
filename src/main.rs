//! The `nqs` command line. Each subcommand parses its arguments, calls the library and prints
//! either a human-readable report (stdout) or, with `--json`, exactly one JSON object.

use clap::{Args, Parser, Subcommand};
use nqs::config::{self, LoadedConfig};
use nqs::error::{Error, Result};
use nqs::exact::{self, formulas, EdOptions, Method, SymmetryRequest};
use nqs::io::{self, NewFile, RootInfo};
use nqs::lattice::Lattice;
use nqs::operator::Hamiltonian;
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
    /// Validate a model file and print what it describes.
    Check(ModelArgs),
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
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
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
