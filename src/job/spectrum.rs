//! `nqs spectrum`: the lowest state of each chosen symmetry sector, one sector after another,
//! each a projected-RBM run (Choo et al. 2018) compared with exact diagonalization of that
//! sector where it fits.
//!
//! Each sector is an ordinary run of the model with `ansatz.momentum` (and
//! `ansatz.spin_inversion`) set, written to its own run file next to the summary
//! (`STEM.k3.h5`, `STEM.k1_2.z-1.h5`): resumable, inspectable and measurable like any run. The
//! summary file holds the table; a PNG shows the dispersion.

use crate::ansatz::Projection;
use crate::config::{self, Model};
use crate::dist::{on_root, Communicator};
use crate::error::{Error, Result};
use crate::io::{self, NewFile, RootInfo};
use crate::job::run::{self, RunOptions, RunOutcome, RunStatus};
use crate::vmc::{Observer, StopFlag};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Choices of `nqs spectrum`.
#[derive(Clone, Debug)]
pub struct SpectrumJob {
    pub model: PathBuf,
    pub overrides: Vec<String>,
    /// Momentum indices per sector; None = every momentum of the lattice.
    pub momenta: Option<Vec<Vec<usize>>>,
    /// Spin-inversion eigenvalues each momentum is also projected on, one sector per value
    /// (empty: no inversion projection).
    pub spin_inversions: Vec<i8>,
    /// The summary file (default: next to the file `nqs run` would write, `<stem>.spectrum.h5`).
    pub output: Option<PathBuf>,
    pub force: bool,
    pub resume: bool,
    pub threads: usize,
}

/// `{mean, error}`.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Energy {
    pub mean: f64,
    pub error: f64,
}

/// One sector's result.
#[derive(Clone, Debug, Serialize)]
pub struct SectorResult {
    pub momentum: Vec<usize>,
    pub spin_inversion: Option<i8>,
    pub energy: Option<Energy>,
    /// The sector's exact lowest energy (ED of the sector, or a closed form for the ground
    /// state's sector); None where neither applies.
    pub exact: Option<f64>,
    pub relative_error: Option<f64>,
    pub v_score: Option<f64>,
    pub wall_time_s: f64,
    pub output: PathBuf,
}

/// The des Cloizeaux–Pearson lower edge `E(k) = E_0 + v|sin k|` of a periodic Heisenberg
/// chain, `v = (π/2)|J|` in spin units (×4 in Pauli units), with `k` measured in the physical
/// basis (|sin k| is the same about 0 and π, where the ground state sits for L/2 even / odd).
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct LowerEdge {
    /// `E_0`: the Bethe-ansatz ground energy.
    pub ground: f64,
    /// `v` in the model's units.
    pub velocity: f64,
}

impl LowerEdge {
    /// `E_0 + v|sin k|`.
    pub fn at(&self, k: f64) -> f64 {
        self.ground + self.velocity * k.sin().abs()
    }
}

/// What `nqs spectrum` did.
#[derive(Clone, Debug)]
pub struct SpectrumReport {
    pub sectors: Vec<SectorResult>,
    /// Set when a signal stopped a sector: the sectors after it did not run.
    pub interrupted: Option<String>,
    /// Heisenberg chains: the des Cloizeaux–Pearson lower edge of the two-spinon continuum.
    pub edge: Option<LowerEdge>,
    /// The edge at each sector's momentum (None without an edge).
    pub lower_edge: Vec<Option<f64>>,
    pub summary: PathBuf,
    pub plot: Option<PathBuf>,
    pub n_sites: usize,
    pub extent: Vec<usize>,
}

/// `STEM.k3.h5`, `STEM.k1_2.z+1.h5`: a sector's run file next to the summary `STEM.h5`.
pub fn sector_path(summary: &Path, momentum: &[usize], inversion: Option<i8>) -> PathBuf {
    let stem = summary
        .file_stem()
        .map_or("spectrum".into(), |s| s.to_string_lossy().into_owned());
    let k: Vec<String> = momentum.iter().map(usize::to_string).collect();
    let z = inversion.map_or(String::new(), |z| format!(".z{z:+}"));
    summary.with_file_name(format!("{stem}.k{}{z}.h5", k.join("_")))
}

/// The default summary file next to where a plain run of the model would write:
/// `<run output stem>.spectrum.h5` (so `run.output` and the suffix of `--set` overrides apply
/// as they do for `nqs run`).
fn summary_path(run_output: &Path) -> PathBuf {
    let stem = run_output
        .file_stem()
        .map_or("run".into(), |s| s.to_string_lossy().into_owned());
    run_output.with_file_name(format!("{stem}.spectrum.h5"))
}

/// The model of one sector: the file with `ansatz.momentum` (and `ansatz.spin_inversion`) set.
fn sector_model(job: &SpectrumJob, momentum: &[usize], inversion: Option<i8>) -> Result<Model> {
    let mut overrides = job.overrides.clone();
    let value = match momentum {
        [m] => m.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    overrides.push(format!("ansatz.momentum={value}"));
    if let Some(z) = inversion {
        overrides.push(format!("ansatz.spin_inversion={z}"));
    }
    config::load(&job.model, &overrides)
}

/// Runs every sector (all are validated first), then writes the summary and the plot.
pub fn run(
    job: &SpectrumJob,
    comm: &dyn Communicator,
    observers: &mut [&mut dyn Observer],
    stop: &StopFlag,
    on_sector: &mut dyn FnMut(&str),
) -> Result<SpectrumReport> {
    let base = config::load(&job.model, &job.overrides)?;
    let inversions: Vec<Option<i8>> = if job.spin_inversions.is_empty() {
        // The model's own `ansatz.spin_inversion`, if it has one, is every sector's.
        vec![base.config.ansatz.sector().and_then(|(_, z)| z)]
    } else {
        job.spin_inversions.iter().copied().map(Some).collect()
    };
    let mut momenta = sector_momenta(job, &base)?;
    if base.config.ansatz.point_group() && job.momenta.is_none() {
        // All momenta with the point group: only those it fixes have a symmetric sector.
        momenta.retain(|k| {
            let fixed = base.lattice.point_group_fixes(k);
            if !fixed {
                on_sector(&format!(
                    "sector k = {k:?}: not fixed by the point group (ansatz.point_group), left out"
                ));
            }
            fixed
        });
    }
    let mut sectors: Vec<(Vec<usize>, Option<i8>)> = momenta
        .into_iter()
        .flat_map(|k| inversions.iter().map(move |&z| (k.clone(), z)))
        .collect();
    if inversions.len() > 1 {
        // `both`: a parity without states at this momentum (small lattices) is left out; a
        // single chosen parity without states is an input error (from the sector's model).
        let point_group = base.config.ansatz.point_group();
        sectors.retain(|(k, z)| {
            // A momentum the point group does not fix is refused by the sector's model.
            let point_group = point_group && base.lattice.point_group_fixes(k);
            let empty = Projection::sector_is_empty(
                &base.lattice,
                Some(k),
                *z,
                point_group,
                base.sampled_n_up,
            );
            if empty {
                on_sector(&format!(
                    "sector k = {k:?}, z = {:+}: no states in this S^z sector, left out",
                    z.unwrap_or(0)
                ));
            }
            !empty
        });
        if sectors.is_empty() {
            return Err(Error::usage(
                "--spin-inversion",
                "no chosen momentum has states of either parity in this S^z sector",
            ));
        }
    }
    // Every sector's model is checked before the first iteration of any.
    let models: Vec<Model> = sectors
        .iter()
        .map(|(k, z)| sector_model(job, k, *z))
        .collect::<Result<_>>()?;
    let summary = job
        .output
        .clone()
        .unwrap_or_else(|| summary_path(&run::output_path(&base, None)));
    on_root(comm, || {
        io::prepare_output(&summary, job.force || job.resume, "nqs spectrum --output")
    })?;
    let mut report = SpectrumReport {
        sectors: vec![],
        interrupted: None,
        edge: None,
        lower_edge: vec![],
        summary: summary.clone(),
        plot: None,
        n_sites: base.lattice.n_sites(),
        extent: base.lattice.extent().to_vec(),
    };
    for ((momentum, inversion), model) in sectors.iter().zip(&models) {
        let output = sector_path(&summary, momentum, *inversion);
        let label = format!(
            "k = {momentum:?}{}",
            inversion.map_or(String::new(), |z| format!(", z = {z:+}"))
        );
        on_sector(&format!("sector {label}: {}", output.display()));
        let options = RunOptions {
            output: Some(output),
            force: job.force,
            resume: job.resume,
            reference: true,
            threads: job.threads,
        };
        let outcome = run::run(model, &options, comm, observers, stop)?;
        report
            .sectors
            .push(result(momentum, *inversion, &outcome, model));
        if let RunStatus::Interrupted { iteration, during } = &outcome.status {
            report.interrupted = Some(format!(
                "sector {label} stopped during {during} at iteration {iteration}; continue with --resume"
            ));
            break;
        }
    }
    report.edge = lower_edge(&base);
    let length = base.lattice.n_sites() as f64;
    report.lower_edge = report
        .sectors
        .iter()
        .map(|s| {
            let k = 2.0 * std::f64::consts::PI * s.momentum[0] as f64 / length;
            report.edge.map(|edge| edge.at(k))
        })
        .collect();
    if comm.is_root() && report.interrupted.is_none() {
        write_summary(&base, &report)?;
        let png = summary.with_extension("png");
        match crate::plot::plot_spectrum(&report, &png) {
            Ok(()) => report.plot = Some(png),
            Err(e) => on_sector(&format!("note: no plot: {e}")),
        }
    }
    Ok(report)
}

/// The sectors' momenta: `--momenta` (checked against the lattice, no repeats) or all.
fn sector_momenta(job: &SpectrumJob, base: &Model) -> Result<Vec<Vec<usize>>> {
    let momenta = job
        .momenta
        .clone()
        .unwrap_or_else(|| base.lattice.momentum_indices());
    let extent = base.lattice.extent();
    if momenta.is_empty() || extent.is_empty() {
        return Err(Error::usage(
            "--momenta",
            "the lattice has no translations: a spectrum by momentum needs a periodic chain or square lattice",
        ));
    }
    for (i, k) in momenta.iter().enumerate() {
        if k.len() != extent.len() || k.iter().zip(extent).any(|(&m, &l)| m >= l) {
            let range: Vec<String> = extent.iter().map(|l| format!("0..={}", l - 1)).collect();
            return Err(Error::usage(
                "--momenta",
                format!(
                    "{} is not a momentum of this lattice: expected {} ({} index per direction, \
                     k = 2πm/L)",
                    k.iter().map(usize::to_string).collect::<Vec<_>>().join(":"),
                    range.join(":"),
                    extent.len()
                ),
            ));
        }
        if momenta[..i].contains(k) {
            return Err(Error::usage(
                "--momenta",
                format!("momentum {k:?} is listed twice"),
            ));
        }
    }
    Ok(momenta)
}

fn result(
    momentum: &[usize],
    spin_inversion: Option<i8>,
    outcome: &RunOutcome,
    model: &Model,
) -> SectorResult {
    SectorResult {
        momentum: momentum.to_vec(),
        spin_inversion,
        energy: outcome.energy.map(|(e, _)| Energy {
            mean: e.mean,
            error: e.error,
        }),
        exact: outcome.reference.as_ref().map(|r| r.energy),
        relative_error: outcome.relative_error(),
        v_score: outcome.v_score(model.lattice.n_sites()),
        wall_time_s: outcome.wall_time,
        output: outcome.output.clone(),
    }
}

/// The des Cloizeaux–Pearson lower edge `E_0 + ε(k)`, `ε(k) = (π J/2)|sin k|` in spin units,
/// with `E_0` the Bethe-ansatz ground energy: only where that applies (antiferromagnetic
/// periodic chain, even L, S^z = 0); the edge describes that ground state's two-spinon
/// continuum.
fn lower_edge(model: &Model) -> Option<LowerEdge> {
    let crate::operator::ModelKind::Heisenberg(h) = &model.config.model.kind else {
        return None;
    };
    let (ground, _) =
        crate::exact::formulas::reference_energy(&model.config.lattice, &model.config.model)?;
    let units = match model.config.model.units {
        crate::operator::Units::Spin => 1.0,
        crate::operator::Units::Pauli => 4.0,
    };
    Some(LowerEdge {
        ground,
        velocity: units * std::f64::consts::FRAC_PI_2 * h.J,
    })
}

/// The summary file: one row per sector in group `spectrum`.
fn write_summary(model: &Model, report: &SpectrumReport) -> Result<()> {
    let root = RootInfo {
        command: "spectrum".into(),
        config_text: model.canonical_text(),
        identity: config::identity(&model.config),
        units: model.config.model.units.name().into(),
        seed: model.config.run.seed,
        ranks: 1,
        threads: 0,
        start_time: io::utc_now(),
    };
    let record = io::SpectrumRecord {
        momentum: report.sectors.iter().map(|s| s.momentum.clone()).collect(),
        spin_inversion: report
            .sectors
            .iter()
            .map(|s| s.spin_inversion.unwrap_or(0))
            .collect(),
        energy: report
            .sectors
            .iter()
            .map(|s| s.energy.map_or(f64::NAN, |e| e.mean))
            .collect(),
        error: report
            .sectors
            .iter()
            .map(|s| s.energy.map_or(f64::NAN, |e| e.error))
            .collect(),
        exact: report
            .sectors
            .iter()
            .map(|s| s.exact.unwrap_or(f64::NAN))
            .collect(),
        lower_edge: report
            .lower_edge
            .iter()
            .map(|e| e.unwrap_or(f64::NAN))
            .collect(),
        files: report
            .sectors
            .iter()
            .map(|s| s.output.display().to_string())
            .collect(),
    };
    let file = NewFile::create(&report.summary, &root)?;
    file.write("cannot write the spectrum", |f| {
        io::write_spectrum(f, &record)
    })?;
    file.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default summary sits where `nqs run` would write, so `run.output` and the suffix of
    /// physics overrides apply (two `--set lattice.length` runs never share a file).
    #[test]
    fn the_default_summary_follows_the_run_output() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("chain.toml");
        std::fs::write(
            &model,
            "[lattice]\nkind = \"chain\"\nlength = 8\n[model]\nkind = \"heisenberg\"\n",
        )
        .unwrap();
        let summary = |overrides: &[&str]| {
            let overrides: Vec<String> = overrides.iter().map(|o| o.to_string()).collect();
            summary_path(&run::output_path(
                &config::load(&model, &overrides).unwrap(),
                None,
            ))
        };
        assert_eq!(summary(&[]), PathBuf::from("runs/chain.spectrum.h5"));
        assert_eq!(
            summary(&["run.output=/data/k.h5"]),
            PathBuf::from("/data/k.spectrum.h5")
        );
        assert_eq!(
            summary(&["lattice.length=10"]),
            PathBuf::from("runs/chain.length=10.spectrum.h5")
        );
    }
}
