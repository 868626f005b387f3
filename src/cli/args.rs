//! The command-line arguments (clap).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "nqs",
    version,
    about = "Neural-network quantum states: VMC with a complex RBM, exact diagonalization, tomography",
    allow_negative_numbers = true
)]
pub struct Cli {
    /// Worker threads of this process (default: all cores of the allocation).
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,
    /// Print exactly one JSON object on stdout (progress and logs go to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Exact diagonalization of a model file: ground state (and k lowest states).
    Ed(EdArgs),
    /// Variational ground state: RBM + Metropolis + stochastic reconfiguration.
    Run(RunArgs),
    /// The lowest state of each momentum sector by a projected RBM (one run per sector),
    /// against ED per sector: a table, JSON and a PNG of the dispersion.
    Spectrum(SpectrumArgs),
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
pub struct ModelArgs {
    /// Model file (TOML, see README).
    pub model: PathBuf,
    /// Override a key: `--set section.key=value` (value parsed as TOML; repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output HDF5 file (default: run.output of the model file, else runs/<model>.h5; with
    /// --set overrides of physics keys the name gets their suffix).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Skip the exact reference (ED or closed form) in the summary.
    #[arg(long)]
    pub no_reference: bool,
    /// Continue the output's run from its last checkpoint (same physics; see README).
    #[arg(long)]
    pub resume: bool,
}

#[derive(Args)]
pub struct SpectrumArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Sectors: `all`, or a comma-separated list of momentum indices m (k = 2πm/L; `mx:my` on
    /// rectangular lattices).
    #[arg(long, default_value = "all", value_parser = parse_momenta)]
    pub momenta: Momenta,
    /// Project every momentum also onto spin inversion (S^z = 0): `+1`, `-1`, or `both` (two
    /// sectors per momentum; the lowest singlet and triplet of a momentum can be nearly
    /// degenerate, and a run without this projection can settle in the higher one).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_inversions)]
    pub spin_inversion: Option<Inversions>,
    /// Summary file (default: `<stem>.spectrum.h5` next to the file `nqs run` would write, so
    /// `run.output` and the `--set` suffix apply); each sector's run goes next to it
    /// (`STEM.k<m>.h5`).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Replace existing sector runs and summary.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Continue: finished sectors are kept, interrupted ones resume from their checkpoints.
    #[arg(long)]
    pub resume: bool,
}

/// `--momenta`: every momentum, or a list.
#[derive(Clone, Debug)]
pub enum Momenta {
    All,
    List(Vec<Vec<usize>>),
}

pub fn parse_momenta(s: &str) -> std::result::Result<Momenta, String> {
    if s == "all" {
        return Ok(Momenta::All);
    }
    let list = s
        .split(',')
        .map(|entry| {
            entry
                .split(':')
                .map(|m| {
                    m.trim().parse::<usize>().map_err(|_| {
                        format!("`{entry}`: expected `all` or integers m (or mx:my) separated by commas")
                    })
                })
                .collect::<std::result::Result<Vec<usize>, String>>()
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(Momenta::List(list))
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EdMethod {
    /// Dense below 1500 states, Lanczos above.
    Auto,
    Lanczos,
    Dense,
}

#[derive(Args)]
pub struct EdArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of lowest eigenstates.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub states: u32,
    /// Eigensolver.
    #[arg(long, value_enum, default_value_t = EdMethod::Auto)]
    pub method: EdMethod,
    /// Use translation (and, at S^z = 0, spin-inversion) sectors; scans all of them unless
    /// --momentum / --inversion pick one. Sector labels refer to the physical basis.
    #[arg(long)]
    pub symmetry: bool,
    /// Momentum sector: integer(s) m with k = 2π m / L ("3" for chains, "2,0" for squares).
    #[arg(long, value_delimiter = ',')]
    pub momentum: Option<Vec<usize>>,
    /// Spin-inversion sector (+1 or -1), at total_sz = 0 only.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_inversion)]
    pub inversion: Option<i8>,
    /// The exact lowest energies of every momentum (and spin-inversion) sector: the reference
    /// of `nqs spectrum` (each sector solved; --states per sector).
    #[arg(long)]
    pub spectrum: bool,
    /// Solve the whole S^z sector even when the ground state's symmetry sector is known by
    /// Perron–Frobenius (stoquastic and connected; by default only that sector is solved).
    #[arg(long)]
    pub no_auto_sector: bool,
    /// Memory budget in GiB (default: the memory available now).
    #[arg(long, value_parser = parse_positive)]
    pub memory_gb: Option<f64>,
    /// Write the ground state (physical basis) and spectrum to this HDF5 file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Print the ground state's spin correlations and structure factor (model units).
    #[arg(long)]
    pub correlations: bool,
}

#[derive(Args)]
pub struct MeasureArgs {
    /// A finished run file (or a checkpoint).
    pub file: PathBuf,
    /// Samples over all chains (default: the run's observable_samples, else 4 × samples).
    #[arg(long, allow_negative_numbers = true)]
    pub samples: Option<usize>,
    /// A Pauli string to measure besides the run's [[observables]]: NAME:OPS:SITES (repeatable).
    #[arg(long = "observable", value_name = "NAME:OPS:SITES", value_parser = parse_observable)]
    pub observables: Vec<nqs::measure::ObservableSpec>,
}

#[derive(Args)]
pub struct InfoArgs {
    /// A run, checkpoint, ed, tomography or sample file.
    pub file: PathBuf,
}

#[derive(Args)]
pub struct PlotArgs {
    /// A run file.
    pub file: PathBuf,
    /// The PNG to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace an existing PNG.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct SampleArgs {
    /// A file from `nqs ed --output`, `nqs run` or `nqs tomo`.
    pub state: PathBuf,
    /// Bases file: one shot per row (N letters X/Y/Z).
    #[arg(long, conflicts_with = "basis")]
    pub bases: Option<PathBuf>,
    /// One basis for every shot, e.g. ZZXY.
    #[arg(long)]
    pub basis: Option<String>,
    /// Number of shots (with --basis, or all Z).
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    pub shots: usize,
    #[arg(long, default_value_t = 1234)]
    pub seed: u64,
    /// Directory for samples.txt, bases.txt, measurements.h5 and state.txt.
    #[arg(long)]
    pub output: PathBuf,
    /// Replace an existing data set in the directory.
    #[arg(long)]
    pub force: bool,
}

/// `nqs tomo` options; each may also come from the `[tomography]` file (the command line wins).
#[derive(Args)]
pub struct TomoArgs {
    /// A TOML file with a [tomography] section holding any of the options below.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Shots: text (one shot a row, N values 0/1) or HDF5 (measurements/outcomes, /bases).
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// Bases of the shots (text, one row of N letters X/Y/Z per shot); all Z when absent.
    #[arg(long)]
    pub bases: Option<PathBuf>,
    /// Reference state (2^N rows "Re Im") for fidelity and KL divergence.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Hidden-unit density, 1..=64 [default: 1].
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<i64>,
    /// [default: 200]
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<i64>,
    /// [default: 100]
    #[arg(long, allow_negative_numbers = true)]
    pub batch_size: Option<i64>,
    /// (0, 10] [default: 0.003]
    #[arg(long, allow_negative_numbers = true)]
    pub learning_rate: Option<f64>,
    /// adam, sgd, or sr (natural gradient, exact metric, N ≤ 14) [default: adam].
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Diagonal shift of the SR metric [default: 0.01].
    #[arg(long, allow_negative_numbers = true)]
    pub diag_shift: Option<f64>,
    /// Fit a complex RBM even to Z-only data (default: positive real RBM for Z-only data).
    #[arg(long)]
    pub complex: bool,
    /// Fraction of shots held out for the validation NLL, [0, 0.9) [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    pub validation: Option<f64>,
    /// Epochs without a better validation NLL before stopping [default: 40].
    #[arg(long, allow_negative_numbers = true)]
    pub patience: Option<i64>,
    /// [default: 1234]
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<i64>,
    /// Output HDF5 file [default: runs/tomography.h5].
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

impl TomoArgs {
    /// The options given on the command line, as the keys of a `[tomography]` section.
    pub fn table(&self) -> toml::Table {
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

pub fn parse_inversion(s: &str) -> std::result::Result<i8, String> {
    match s.trim() {
        "1" | "+1" | "+" => Ok(1),
        "-1" | "-" => Ok(-1),
        other => Err(format!(
            "expected +1 or -1, got {}",
            nqs::error::shorten(other)
        )),
    }
}

/// The spin-inversion eigenvalues of `nqs spectrum --spin-inversion`.
#[derive(Clone, Debug)]
pub struct Inversions(pub Vec<i8>);

/// `--spin-inversion` of `nqs spectrum`: `+1`, `-1` or `both`.
pub fn parse_inversions(s: &str) -> std::result::Result<Inversions, String> {
    if s.trim() == "both" {
        return Ok(Inversions(vec![1, -1]));
    }
    parse_inversion(s)
        .map(|z| Inversions(vec![z]))
        .map_err(|_| format!("expected +1, -1 or both, got {}", nqs::error::shorten(s)))
}

pub fn parse_positive(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e6 => Ok(v),
        _ => Err(format!(
            "expected a number in (0, 1e6], got {}",
            nqs::error::shorten(s)
        )),
    }
}

pub fn parse_observable(s: &str) -> std::result::Result<nqs::measure::ObservableSpec, String> {
    nqs::measure::parse_observable(s)
}
