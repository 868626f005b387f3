//! Model files: the TOML schema of DESIGN.md §6, `--set` overrides and validation.
//!
//! A model file is parsed with serde into [`Config`]; unknown sections and keys are errors, so a
//! typo never silently falls back to a default. `--set section.key=value` overrides are applied
//! to the parsed TOML table before the typed structs are built (values are parsed as TOML; a bare
//! word that is not valid TOML is taken as a string). [`Config::validate`] checks every value that
//! serde cannot (finite couplings, sizes, sectors) and names the offending key.

use crate::error::{Error, Result};
use num_complex::Complex64;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Largest number of sites any lattice may have (VMC cost grows like N² per sweep).
pub const MAX_SITES: usize = 4096;

/// A complete model file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub lattice: LatticeConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub ansatz: AnsatzConfig,
    #[serde(default)]
    pub sampler: SamplerConfig,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub run: RunConfig,
    /// Extra Pauli strings whose expectation values `nqs run` reports after convergence.
    #[serde(default)]
    pub observables: Vec<ObservableConfig>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LatticeKind {
    Chain,
    Square,
    Custom,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Boundary {
    #[default]
    Periodic,
    Open,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LatticeConfig {
    pub kind: LatticeKind,
    /// Chain: number of sites.
    pub length: Option<usize>,
    /// Square: `[Lx, Ly]`.
    pub extent: Option<Vec<usize>>,
    /// Custom: nearest-neighbour bonds.
    pub edges: Option<Vec<[usize; 2]>>,
    /// Custom: next-nearest-neighbour bonds (used by `j1j2`).
    pub next_edges: Option<Vec<[usize; 2]>>,
    /// Custom: number of sites (default: 1 + the largest site in `edges`).
    pub n_sites: Option<usize>,
    #[serde(default)]
    pub boundary: Boundary,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Heisenberg,
    Xxz,
    Tfi,
    J1j2,
    Pauli,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Units {
    /// Pauli matrices σ (eigenvalues ±1).
    #[default]
    Pauli,
    /// Spin operators S = σ/2.
    Spin,
}

impl Units {
    pub fn name(self) -> &'static str {
        match self {
            Units::Pauli => "pauli",
            Units::Spin => "spin",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct ModelConfig {
    pub kind: ModelKind,
    /// Nearest-neighbour coupling (J1 for j1j2, the XX+YY coupling for xxz, the ZZ coupling for tfi).
    pub J: Option<f64>,
    /// xxz: ZZ coupling.
    pub Jz: Option<f64>,
    /// tfi: transverse field.
    pub h: Option<f64>,
    /// j1j2: next-nearest-neighbour coupling.
    pub J2: Option<f64>,
    #[serde(default)]
    pub units: Units,
    #[serde(default)]
    pub marshall_sign: bool,
    /// Total S^z (spin units: (n_up − n_down)/2) of the sector to work in.
    pub total_sz: Option<f64>,
    /// pauli: the terms of the sum.
    #[serde(default)]
    pub terms: Vec<TermConfig>,
}

/// A real coefficient `0.5` or a complex one `[re, im]`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Coefficient {
    Real(f64),
    Complex([f64; 2]),
}

impl Coefficient {
    pub fn value(self) -> Complex64 {
        match self {
            Coefficient::Real(re) => Complex64::new(re, 0.0),
            Coefficient::Complex([re, im]) => Complex64::new(re, im),
        }
    }
}

/// One Pauli string `coeff · Π_k ops[k]_{sites[k]}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TermConfig {
    pub coeff: Coefficient,
    pub ops: String,
    pub sites: Vec<usize>,
}

/// A Pauli string to measure: `coeff · Π ops` (coeff defaults to 1).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObservableConfig {
    pub name: String,
    pub ops: String,
    pub sites: Vec<usize>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AnsatzKind {
    #[default]
    Rbm,
    RbmSymm,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnsatzConfig {
    #[serde(default)]
    pub kind: AnsatzKind,
    /// Hidden-unit density M/N (filters per site for rbm_symm).
    #[serde(default = "defaults::alpha")]
    pub alpha: usize,
    /// Standard deviation of the random initial parameters (real and imaginary parts).
    #[serde(default = "defaults::init_std")]
    pub init_std: f64,
}

impl Default for AnsatzConfig {
    fn default() -> Self {
        AnsatzConfig {
            kind: AnsatzKind::Rbm,
            alpha: defaults::alpha(),
            init_std: defaults::init_std(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    Local,
    Exchange,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// Default: `exchange` when the model conserves S^z, else `local`.
    pub kind: Option<SamplerKind>,
    /// Global number of Markov chains (over all ranks and threads).
    #[serde(default = "defaults::chains")]
    pub chains: usize,
    /// Samples per iteration, all chains together (rounded up to a multiple of `chains`).
    #[serde(default = "defaults::samples")]
    pub samples: usize,
    /// Sweeps before the first sample of each chain.
    #[serde(default = "defaults::thermalization")]
    pub thermalization: usize,
    /// Proposals between two samples (default: one sweep = N proposals).
    pub sweep: Option<usize>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            kind: None,
            chains: defaults::chains(),
            samples: defaults::samples(),
            thermalization: defaults::thermalization(),
            sweep: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    #[default]
    Sr,
    Adam,
    Sgd,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SrSolverKind {
    #[default]
    Auto,
    Dense,
    Cg,
    Sample,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DiagShiftKind {
    /// `S + ε I`.
    #[default]
    Additive,
    /// `S_kk (1 + ε)`.
    Multiplicative,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    #[serde(default)]
    pub kind: OptimizerKind,
    /// η at iteration 0; η(p) = max(η0·decay^p, learning_rate_min).
    #[serde(default = "defaults::learning_rate")]
    pub learning_rate: f64,
    #[serde(default = "defaults::one")]
    pub learning_rate_decay: f64,
    #[serde(default)]
    pub learning_rate_min: f64,
    /// ε0 of the SR diagonal shift; ε(p) = max(ε0·b^p, ε_min).
    #[serde(default = "defaults::diag_shift")]
    pub diag_shift: f64,
    #[serde(default = "defaults::one")]
    pub diag_shift_decay: f64,
    #[serde(default)]
    pub diag_shift_min: f64,
    #[serde(default)]
    pub diag_shift_kind: DiagShiftKind,
    #[serde(default)]
    pub solver: SrSolverKind,
    /// Relative residual at which CG stops.
    #[serde(default = "defaults::cg_tolerance")]
    pub cg_tolerance: f64,
    #[serde(default = "defaults::cg_max_iterations")]
    pub cg_max_iterations: usize,
    /// Adam moment decay rates.
    #[serde(default = "defaults::beta1")]
    pub beta1: f64,
    #[serde(default = "defaults::beta2")]
    pub beta2: f64,
    #[serde(default = "defaults::iterations")]
    pub iterations: usize,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        toml::from_str("").expect("all optimizer keys have defaults")
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    /// Output HDF5 file (default: `runs/<model file stem>.h5`).
    pub output: Option<PathBuf>,
    #[serde(default = "defaults::checkpoint_every")]
    pub checkpoint_every: usize,
    /// Samples for the observables measured after the last iteration (default: 4 × sampler.samples).
    pub observable_samples: Option<usize>,
}

impl Default for RunConfig {
    fn default() -> Self {
        toml::from_str("").expect("all run keys have defaults")
    }
}

mod defaults {
    pub fn alpha() -> usize {
        2
    }
    pub fn init_std() -> f64 {
        0.01
    }
    pub fn chains() -> usize {
        16
    }
    pub fn samples() -> usize {
        1008
    }
    pub fn thermalization() -> usize {
        100
    }
    pub fn learning_rate() -> f64 {
        0.01
    }
    pub fn one() -> f64 {
        1.0
    }
    pub fn diag_shift() -> f64 {
        0.01
    }
    pub fn cg_tolerance() -> f64 {
        1e-8
    }
    pub fn cg_max_iterations() -> usize {
        200
    }
    pub fn beta1() -> f64 {
        0.9
    }
    pub fn beta2() -> f64 {
        0.999
    }
    pub fn iterations() -> usize {
        300
    }
    pub fn seed() -> u64 {
        1234
    }
    pub fn checkpoint_every() -> usize {
        50
    }
}

/// A tomography file: one `[tomography]` section (every key optional; command-line options take
/// precedence, then these values, then the defaults of `nqs tomo --help`). Relative paths are
/// relative to the file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TomographyConfig {
    pub samples: Option<PathBuf>,
    pub bases: Option<PathBuf>,
    pub reference: Option<PathBuf>,
    pub alpha: Option<usize>,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub optimizer: Option<crate::tomography::FitOptimizer>,
    pub diag_shift: Option<f64>,
    pub complex: Option<bool>,
    pub validation: Option<f64>,
    pub patience: Option<usize>,
    pub seed: Option<u64>,
    pub output: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomographyFile {
    tomography: TomographyConfig,
}

/// Reads a `[tomography]` file.
pub fn load_tomography(path: &Path) -> Result<TomographyConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let file: TomographyFile = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
    let mut c = file.tomography;
    let dir = path.parent().unwrap_or(Path::new(""));
    for p in [
        &mut c.samples,
        &mut c.bases,
        &mut c.reference,
        &mut c.output,
    ]
    .into_iter()
    .flatten()
    {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    }
    Ok(c)
}

/// A model file together with where it came from (for messages) and its final text.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    pub config: Config,
    pub path: PathBuf,
    /// The effective configuration as TOML (file plus overrides), stored in output files.
    pub text: String,
}

/// Reads, overrides, parses and validates a model file.
pub fn load(path: &Path, overrides: &[String]) -> Result<LoadedConfig> {
    let bytes = std::fs::read(path).map_err(|e| {
        if path.is_dir() {
            Error::input(path, "is a directory, expected a TOML model file")
        } else {
            Error::input(path, format!("cannot read model file: {e}"))
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::input(
            path,
            format!(
                "not a UTF-8 text file (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Err(Error::input(
            path,
            "empty model file; expected at least [lattice] and [model] sections",
        ));
    }
    parse(&text, path, overrides)
}

/// Parses a model file's text (see [`load`]).
pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<LoadedConfig> {
    let config: Config = if overrides.is_empty() {
        toml::from_str(text).map_err(|e| toml_error(path, text, &e))?
    } else {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        // Apply the overrides one at a time so that a failure names the one that caused it.
        let mut config = None;
        for assignment in overrides {
            apply_override(&mut table, assignment)?;
            match toml::Value::Table(table.clone()).try_into::<Config>() {
                Ok(c) => config = Some(c),
                Err(e) if config.is_some() || !missing_section(&e) => {
                    return Err(Error::Input(format!(
                        "{}: --set {assignment}: {}",
                        path.display(),
                        e.message().trim()
                    )));
                }
                Err(_) => {}
            }
        }
        match config {
            Some(c) => c,
            None => toml::Value::Table(table)
                .try_into::<Config>()
                .map_err(|e| {
                    Error::input(
                        path,
                        format!("(with --set overrides) {}", e.message().trim()),
                    )
                })?,
        }
    };
    config.validate(path)?;
    let text = toml::to_string(&config)
        .map_err(|e| Error::Runtime(format!("cannot serialize configuration: {e}")))?;
    Ok(LoadedConfig {
        config,
        path: path.to_path_buf(),
        text,
    })
}

/// Does a deserialization error only say that a required section is missing (which a later
/// override may still add)?
fn missing_section(error: &toml::de::Error) -> bool {
    error.message().contains("missing field")
}

/// One-line message for a TOML error: `file:line:column: message (in `that line`)`.
fn toml_error(path: &Path, text: &str, error: &toml::de::Error) -> Error {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = start - line_start + 1;
            let source = text[line_start..].lines().next().unwrap_or("").trim();
            let context = if source.is_empty() {
                String::new()
            } else {
                format!(" (in `{}`)", source.chars().take(80).collect::<String>())
            };
            Error::Input(format!(
                "{}:{line}:{column}: {message}{context}",
                path.display()
            ))
        }
        None => Error::input(path, message),
    }
}

/// Applies `section.key=value` (value parsed as TOML, bare words as strings) to a parsed file.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let bad = |why: &str| Error::Input(format!("--set {assignment}: {why}"));
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| bad("expected section.key=value"))?;
    let keys: Vec<&str> = path.trim().split('.').map(str::trim).collect();
    if keys.len() < 2 || keys.iter().any(|k| k.is_empty()) {
        return Err(bad("expected a key of the form section.key"));
    }
    let raw = raw.trim();
    let value = match toml::from_str::<toml::Table>(&format!("value = {raw}")) {
        Ok(mut t) => t.remove("value").ok_or_else(|| bad("missing value"))?,
        Err(_)
            if !raw.is_empty()
                && raw
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c)) =>
        {
            toml::Value::String(raw.to_string())
        }
        Err(e) => {
            return Err(bad(&format!(
                "value is not valid TOML: {}",
                e.message().trim()
            )))
        }
    };
    let mut node = table;
    for key in &keys[..keys.len() - 1] {
        let entry = node
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| bad(&format!("`{key}` is not a section")))?;
    }
    node.insert(keys[keys.len() - 1].to_string(), value);
    Ok(())
}

fn finite(path: &Path, key: &str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::key(
            path,
            key,
            format!("expected a finite number, got {value}"),
        ))
    }
}

fn positive(path: &Path, key: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Error::key(
            path,
            key,
            format!("expected a finite number > 0, got {value}"),
        ))
    }
}

fn in_range(path: &Path, key: &str, value: usize, lo: usize, hi: usize) -> Result<usize> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(Error::key(
            path,
            key,
            format!("expected an integer in {lo}..={hi}, got {value}"),
        ))
    }
}

impl ModelConfig {
    /// The couplings a model kind uses, with their defaults; others must be absent.
    fn check_couplings(&self, path: &Path) -> Result<()> {
        let (allowed, name): (&[&str], &str) = match self.kind {
            ModelKind::Heisenberg => (&["J"], "heisenberg"),
            ModelKind::Xxz => (&["J", "Jz"], "xxz"),
            ModelKind::Tfi => (&["J", "h"], "tfi"),
            ModelKind::J1j2 => (&["J", "J2"], "j1j2"),
            ModelKind::Pauli => (&[], "pauli"),
        };
        for (key, value) in [
            ("J", self.J),
            ("Jz", self.Jz),
            ("h", self.h),
            ("J2", self.J2),
        ] {
            match value {
                Some(v) if allowed.contains(&key) => {
                    finite(path, &format!("model.{key}"), v)?;
                }
                Some(_) => {
                    return Err(Error::key(
                        path,
                        &format!("model.{key}"),
                        format!("not used by kind = \"{name}\" (it takes {allowed:?})"),
                    ));
                }
                None => {}
            }
        }
        if self.kind == ModelKind::Pauli && self.terms.is_empty() {
            return Err(Error::key(
                path,
                "model.terms",
                "kind = \"pauli\" needs at least one [[model.terms]] entry",
            ));
        }
        if self.kind != ModelKind::Pauli && !self.terms.is_empty() {
            return Err(Error::key(
                path,
                "model.terms",
                format!("only used by kind = \"pauli\", not \"{name}\""),
            ));
        }
        for (k, term) in self.terms.iter().enumerate() {
            let key = format!("model.terms[{k}]");
            let c = term.coeff.value();
            if !(c.re.is_finite() && c.im.is_finite()) {
                return Err(Error::key(
                    path,
                    &format!("{key}.coeff"),
                    format!("expected a finite coefficient, got {c}"),
                ));
            }
            check_pauli_string(path, &key, &term.ops, &term.sites)?;
        }
        Ok(())
    }
}

/// Checks a Pauli string's letters and that it has one site per letter (ranges are checked
/// against the lattice by the operator builder).
pub fn check_pauli_string(path: &Path, key: &str, ops: &str, sites: &[usize]) -> Result<()> {
    if ops.is_empty() {
        return Err(Error::key(
            path,
            &format!("{key}.ops"),
            "empty Pauli string; expected letters from X, Y, Z, I",
        ));
    }
    if let Some(bad) = ops.chars().find(|c| !"XYZI".contains(*c)) {
        return Err(Error::key(
            path,
            &format!("{key}.ops"),
            format!("bad letter {bad:?} in \"{ops}\"; expected X, Y, Z or I"),
        ));
    }
    if ops.chars().count() != sites.len() {
        return Err(Error::key(
            path,
            &format!("{key}.sites"),
            format!(
                "has {} sites but ops \"{ops}\" has {} letters",
                sites.len(),
                ops.chars().count()
            ),
        ));
    }
    Ok(())
}

impl Config {
    /// Checks everything serde cannot: finiteness, ranges, and which keys apply to which kind.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let l = &self.lattice;
        let only = |present: bool, key: &str, kind: &str| -> Result<()> {
            if present {
                Err(Error::key(
                    path,
                    key,
                    format!("only used by lattice kind = \"{kind}\""),
                ))
            } else {
                Ok(())
            }
        };
        match l.kind {
            LatticeKind::Chain => {
                let n = l.length.ok_or_else(|| {
                    Error::key(
                        path,
                        "lattice.length",
                        "missing; a chain needs its number of sites",
                    )
                })?;
                in_range(path, "lattice.length", n, 2, MAX_SITES)?;
                only(l.extent.is_some(), "lattice.extent", "square")?;
                only(
                    l.edges.is_some() || l.next_edges.is_some() || l.n_sites.is_some(),
                    "lattice.edges/n_sites",
                    "custom",
                )?;
            }
            LatticeKind::Square => {
                let e = l.extent.as_ref().ok_or_else(|| {
                    Error::key(
                        path,
                        "lattice.extent",
                        "missing; a square lattice needs [Lx, Ly]",
                    )
                })?;
                if e.len() != 2 {
                    return Err(Error::key(
                        path,
                        "lattice.extent",
                        format!("expected [Lx, Ly], got {} numbers", e.len()),
                    ));
                }
                in_range(path, "lattice.extent", e[0], 1, MAX_SITES)?;
                in_range(path, "lattice.extent", e[1], 1, MAX_SITES)?;
                if e[0] * e[1] < 2 || e[0] * e[1] > MAX_SITES {
                    return Err(Error::key(
                        path,
                        "lattice.extent",
                        format!("Lx·Ly must be in 2..={MAX_SITES}, got {}", e[0] * e[1]),
                    ));
                }
                only(l.length.is_some(), "lattice.length", "chain")?;
                only(
                    l.edges.is_some() || l.next_edges.is_some() || l.n_sites.is_some(),
                    "lattice.edges/n_sites",
                    "custom",
                )?;
            }
            LatticeKind::Custom => {
                let edges = l.edges.as_ref().ok_or_else(|| {
                    Error::key(
                        path,
                        "lattice.edges",
                        "missing; a custom lattice needs its bonds",
                    )
                })?;
                only(l.length.is_some(), "lattice.length", "chain")?;
                only(l.extent.is_some(), "lattice.extent", "square")?;
                let n = l
                    .n_sites
                    .unwrap_or_else(|| edges.iter().flatten().max().map_or(0, |m| m + 1));
                in_range(path, "lattice.n_sites", n, 1, MAX_SITES)?;
                for (key, list) in [
                    ("lattice.edges", Some(edges)),
                    ("lattice.next_edges", l.next_edges.as_ref()),
                ] {
                    for (k, &[a, b]) in list.into_iter().flatten().enumerate() {
                        if a >= n || b >= n {
                            return Err(Error::key(
                                path,
                                &format!("{key}[{k}]"),
                                format!("site out of range: [{a}, {b}] with n_sites = {n}"),
                            ));
                        }
                        if a == b {
                            return Err(Error::key(
                                path,
                                &format!("{key}[{k}]"),
                                format!("a bond joins site {a} to itself"),
                            ));
                        }
                    }
                }
                if l.boundary != Boundary::Periodic {
                    return Err(Error::key(
                        path,
                        "lattice.boundary",
                        "not used by custom lattices (the edges define the graph)",
                    ));
                }
            }
        }
        self.model.check_couplings(path)?;
        if let Some(sz) = self.model.total_sz {
            finite(path, "model.total_sz", sz)?;
        }

        let a = &self.ansatz;
        in_range(path, "ansatz.alpha", a.alpha, 1, 1024)?;
        if !(a.init_std.is_finite() && a.init_std >= 0.0 && a.init_std <= 10.0) {
            return Err(Error::key(
                path,
                "ansatz.init_std",
                format!("expected a number in [0, 10], got {}", a.init_std),
            ));
        }

        let s = &self.sampler;
        in_range(path, "sampler.chains", s.chains, 1, 1 << 20)?;
        in_range(path, "sampler.samples", s.samples, 1, 1 << 26)?;
        in_range(path, "sampler.thermalization", s.thermalization, 0, 1 << 24)?;
        if let Some(sweep) = s.sweep {
            in_range(path, "sampler.sweep", sweep, 1, 1 << 24)?;
        }

        let o = &self.optimizer;
        positive(path, "optimizer.learning_rate", o.learning_rate)?;
        positive(path, "optimizer.learning_rate_decay", o.learning_rate_decay)?;
        if !(o.learning_rate_min.is_finite() && o.learning_rate_min >= 0.0) {
            return Err(Error::key(
                path,
                "optimizer.learning_rate_min",
                format!("expected a finite number >= 0, got {}", o.learning_rate_min),
            ));
        }
        if !(o.diag_shift.is_finite() && o.diag_shift >= 0.0) {
            return Err(Error::key(
                path,
                "optimizer.diag_shift",
                format!("expected a finite number >= 0, got {}", o.diag_shift),
            ));
        }
        positive(path, "optimizer.diag_shift_decay", o.diag_shift_decay)?;
        if !(o.diag_shift_min.is_finite() && o.diag_shift_min >= 0.0) {
            return Err(Error::key(
                path,
                "optimizer.diag_shift_min",
                format!("expected a finite number >= 0, got {}", o.diag_shift_min),
            ));
        }
        positive(path, "optimizer.cg_tolerance", o.cg_tolerance)?;
        in_range(
            path,
            "optimizer.cg_max_iterations",
            o.cg_max_iterations,
            1,
            1 << 20,
        )?;
        for (key, beta) in [("optimizer.beta1", o.beta1), ("optimizer.beta2", o.beta2)] {
            if !(beta.is_finite() && (0.0..1.0).contains(&beta)) {
                return Err(Error::key(
                    path,
                    key,
                    format!("expected a number in [0, 1), got {beta}"),
                ));
            }
        }
        in_range(path, "optimizer.iterations", o.iterations, 0, 100_000_000)?;
        in_range(
            path,
            "run.checkpoint_every",
            self.run.checkpoint_every,
            1,
            usize::MAX,
        )?;
        if let Some(n) = self.run.observable_samples {
            in_range(path, "run.observable_samples", n, 1, 1 << 26)?;
        }
        for (k, obs) in self.observables.iter().enumerate() {
            check_pauli_string(path, &format!("observables[{k}]"), &obs.ops, &obs.sites)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[lattice]\nkind = \"chain\"\nlength = 8\n[model]\nkind = \"heisenberg\"\n";

    #[test]
    fn minimal_file_gets_defaults() {
        let c = parse(MINIMAL, Path::new("m.toml"), &[]).unwrap().config;
        assert_eq!(c.lattice.length, Some(8));
        assert_eq!(c.sampler.chains, 16);
        assert_eq!(c.optimizer.solver, SrSolverKind::Auto);
    }

    #[test]
    fn overrides_parse_toml_values_and_bare_words() {
        let c = parse(
            MINIMAL,
            Path::new("m.toml"),
            &[
                "lattice.length=12".into(),
                "model.kind=xxz".into(),
                "model.Jz=0.5".into(),
            ],
        )
        .unwrap()
        .config;
        assert_eq!(c.lattice.length, Some(12));
        assert_eq!(c.model.kind, ModelKind::Xxz);
        assert_eq!(c.model.Jz, Some(0.5));
    }

    #[test]
    fn unknown_key_names_line() {
        let err = parse(&format!("{MINIMAL}foo = 1\n"), Path::new("m.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.toml:6:"), "{err}");
        assert!(err.contains("foo"), "{err}");
    }

    #[test]
    fn coupling_of_other_model_is_rejected() {
        let err = parse(&format!("{MINIMAL}h = 1.0\n"), Path::new("m.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.h"), "{err}");
    }
}
