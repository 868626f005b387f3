//! `nqs ed`: exact diagonalization of a model file, reported and optionally stored.

use crate::config::Model;
use crate::error::Result;
use crate::exact::{self, formulas, EdOptions, EdResult, Method, SymmetryRequest};
use crate::io::{self, ExactRecord, NewFile, OutputLock, RootInfo};
use crate::measure::structure_factor;
use ndarray::Array2;
use std::path::PathBuf;

/// Choices of `nqs ed`.
#[derive(Clone, Debug)]
pub struct EdJob {
    pub states: usize,
    pub method: Method,
    pub symmetry: SymmetryRequest,
    /// Solve only the ground state's sector when Perron–Frobenius fixes it.
    pub auto_sector: bool,
    /// Solve every symmetry sector (`--spectrum`).
    pub spectrum: bool,
    /// Memory budget in bytes (default: what is available now).
    pub memory_limit: Option<u64>,
    pub output: Option<PathBuf>,
    pub force: bool,
    /// Compute the ground state's correlations (needs the eigenvector).
    pub correlations: bool,
}

/// What `nqs ed` found.
pub struct EdReport {
    pub result: EdResult,
    /// A closed form for this model, when one applies: (energy, method).
    pub closed_form: Option<(f64, &'static str)>,
    /// `⟨Z_i Z_j⟩` or `⟨S^z_i S^z_j⟩` (the label says which) of the ground state, and `S(q)`.
    pub correlation_label: &'static str,
    pub correlations: Option<Array2<f64>>,
    pub structure_factor: Vec<(Vec<f64>, f64)>,
    pub output: Option<PathBuf>,
    pub wall_time: f64,
    /// What the caller should know about the result (one line each).
    pub notes: Vec<String>,
}

/// Diagonalizes `model`; the output (if any) is checked and locked before the work starts.
/// `on_start` is told what runs once the output is checked.
pub fn run(
    model: &Model,
    job: &EdJob,
    threads: usize,
    on_start: &mut dyn FnMut(&str),
) -> Result<EdReport> {
    let start = std::time::Instant::now();
    let _lock = match &job.output {
        Some(path) => {
            io::prepare_output(path, job.force, "nqs ed --output")?;
            Some(OutputLock::acquire(path)?)
        }
        None => None,
    };
    on_start(&format!("nqs ed: {} ({threads} threads)", model.describe()));
    let mut opts = EdOptions {
        n_states: job.states,
        method: job.method,
        symmetry: job.symmetry.clone(),
        auto_sector: job.auto_sector,
        spectrum: job.spectrum,
        ..EdOptions::default()
    };
    if let Some(limit) = job.memory_limit {
        opts.memory_limit = limit;
    }
    opts.lanczos.eigenvectors = job.output.is_some() || job.correlations;
    let result = exact::solve(&model.hamiltonian, &model.lattice, &opts)?;
    let (label, factor) = model.hamiltonian.units.zz();
    let correlations = result
        .ground_state
        .zz_correlations
        .as_ref()
        .map(|zz| zz.mapv(|c| c * factor));
    let structure_factor = correlations
        .as_ref()
        .map_or(vec![], |c| structure_factor(&model.lattice, c));
    let mut report = EdReport {
        // The closed form is the ground state of the whole S^z sector: no check of one
        // chosen momentum or parity sector.
        closed_form: (job.symmetry.momentum.is_none() && job.symmetry.inversion.is_none())
            .then(|| formulas::reference_energy(&model.config.lattice, &model.config.model))
            .flatten(),
        correlation_label: label,
        correlations,
        structure_factor,
        output: None,
        wall_time: 0.0,
        notes: vec![],
        result,
    };
    let found = report.result.energies.len();
    if found < job.states {
        report.notes.push(format!(
            "--states {}: the solved sectors hold only {found} states, all of them listed",
            job.states
        ));
    }
    if let Some(path) = &job.output {
        let root = RootInfo {
            command: "ed".into(),
            config_text: model.canonical_text(),
            identity: crate::config::identity(&model.config),
            units: model.config.model.units.name().into(),
            seed: 0,
            ranks: 1,
            threads,
            start_time: io::utc_now(),
        };
        let r = &report.result;
        let record = ExactRecord {
            energy: r.ground_state.energy,
            n_sites: model.lattice.n_sites(),
            units: root.units.clone(),
            method: r.method(),
            dimension: r.dimension() as u64,
            sector: serde_json::to_string(&r.ground_state.sector).unwrap_or_default(),
            sectors: serde_json::to_string(&r.sectors).unwrap_or_default(),
            energies: r.energies.iter().map(|e| e.0).collect(),
            basis_states: r.ground_state.basis_states.clone(),
            eigenvector: r.ground_state.amplitudes.clone(),
            correlation_label: label.into(),
            correlations: report.correlations.clone(),
            momenta: Array2::from_shape_fn(
                (
                    report.structure_factor.len(),
                    report.structure_factor.first().map_or(0, |s| s.0.len()),
                ),
                |(k, d)| report.structure_factor[k].0[d],
            ),
            structure_factor: report.structure_factor.iter().map(|s| s.1).collect(),
        };
        let file = NewFile::create(path, &root)?;
        file.write("cannot write the exact result", |f| {
            io::write_exact(f, &record)
        })?;
        report.output = Some(file.commit()?);
    }
    report.wall_time = start.elapsed().as_secs_f64();
    Ok(report)
}
