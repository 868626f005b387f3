//! The jobs the command line launches, each from validated inputs to a report the binary prints:
//! [`run`] (VMC with its files), [`ed`], [`measure`] (post-hoc observables of a stored run),
//! [`sample`] (synthetic shots), [`tomo`], [`info`], [`doctor`].
//!
//! Every job checks its outputs before any work (`io::prepare_output`) and owns them through a
//! lock while it writes; an existing output is replaced only with `--force`.

pub mod doctor;
pub mod ed;
pub mod info;
pub mod measure;
pub mod run;
pub mod sample;
pub mod spectrum;
pub mod tomo;

use crate::ansatz::{self, Ansatz, AnsatzVisitor};
use crate::config::{self, Model};
use crate::error::{Error, Result};
use crate::io::{self, StateRecord};
use crate::vmc::HistoryRow;
use std::path::Path;

/// A run file's (or checkpoint's) model, rebuilt from its stored configuration, and its state.
pub struct StoredRun {
    pub model: Model,
    pub state: StateRecord,
    pub finished: bool,
}

/// Reads a run file or checkpoint: its configuration (validated again), state and status.
pub fn read_run(path: &Path) -> Result<StoredRun> {
    let file = io::open_nqs_file(path)?;
    let root = io::read_root(&file).map_err(|e| Error::file(path, e))?;
    if root.command != "run" {
        return Err(Error::file(
            path,
            format!(
                "holds an `nqs {}` result, not a run; a run file (or its .ckpt) is needed",
                if root.command.is_empty() {
                    "?"
                } else {
                    &root.command
                }
            ),
        ));
    }
    let model = config::parse(&root.config_text, path, &[])
        .map_err(|e| Error::file(path, format!("its stored configuration is invalid: {e}")))?;
    let state = io::read_state(&file, &HistoryRow::COLUMNS).map_err(|e| {
        Error::bad_hdf5(
            path,
            "no complete run state (a live file without checkpoint?)",
            e,
        )
    })?;
    check_units(path, &root.units, model.config.model.units)?;
    let finished = io::read_finished(&file).map_err(|e| Error::file(path, e))?;
    Ok(StoredRun {
        model,
        state,
        finished,
    })
}

/// Refuses a file whose `units` attribute contradicts its stored `model.units` (files written
/// before the attribute existed have none, and their configuration alone says).
fn check_units(path: &Path, attribute: &str, configured: crate::operator::Units) -> Result<()> {
    if attribute.is_empty() || attribute == configured.name() {
        return Ok(());
    }
    Err(Error::file(
        path,
        format!(
            "its units attribute ({attribute:?}) contradicts its stored configuration (model.units = \"{}\"; damaged file?)",
            configured.name()
        ),
    ))
}

/// The normalized state vector, in the physical basis and qubit ordering, of an nqs file: an
/// ED eigenvector or a stored RBM (VMC run, checkpoint or tomography fit); N ≤ 20.
pub fn physical_state(path: &Path) -> Result<Vec<num_complex::Complex64>> {
    use crate::tomography::EXACT_LIMIT;
    let file = io::open_nqs_file(path)?;
    let root = io::read_root(&file).map_err(|e| Error::file(path, e))?;
    if file.group("exact").is_ok() && root.command == "ed" {
        let g = file
            .group("exact")
            .map_err(|e| Error::bad_hdf5(path, "exact", e))?;
        let states: Vec<u64> = io::read_1d(&g, "basis_states").map_err(|_| {
            Error::file(
                path,
                "no stored eigenvector (run nqs ed with --output on a small system)",
            )
        })?;
        let amplitudes: Vec<num_complex::Complex64> = io::read_1d(&g, "eigenvector")
            .map_err(|e| Error::bad_hdf5(path, "exact/eigenvector", e))?;
        let n = config::parse(&root.config_text, path, &[])
            .map_err(|e| Error::file(path, format!("its stored configuration is invalid: {e}")))?
            .lattice
            .n_sites();
        if n > EXACT_LIMIT {
            return Err(Error::file(
                path,
                format!("the state vector needs N ≤ {EXACT_LIMIT}; this state has {n} sites"),
            ));
        }
        if states.len() != amplitudes.len() || states.iter().any(|&s| s >> n != 0) {
            return Err(Error::file(
                path,
                "exact/basis_states and exact/eigenvector do not match",
            ));
        }
        let mut psi = vec![num_complex::Complex64::new(0.0, 0.0); 1 << n];
        for (&s, a) in states.iter().zip(amplitudes) {
            psi[crate::hilbert::qubit_index(s, n)] = a;
        }
        crate::tomography::data::normalize(&mut psi).map_err(|e| Error::file(path, e))?;
        return Ok(psi);
    }
    let record = io::read_ansatz(&file).map_err(|e| {
        Error::bad_hdf5(path, "holds neither an ansatz nor an exact eigenvector", e)
    })?;
    let n = record.n_sites;
    if n == 0 || n > EXACT_LIMIT {
        return Err(Error::file(
            path,
            format!("the state vector needs 1 ≤ N ≤ {EXACT_LIMIT}; this state has {n} sites"),
        ));
    }
    if record.marshall_sites.iter().any(|&s| s as usize >= n) {
        return Err(Error::file(path, "ansatz/marshall_sites out of range"));
    }
    let marshall: Vec<usize> = record.marshall_sites.iter().map(|&s| s as usize).collect();
    let mut vector = StateVector {
        record: &record,
        marshall: &marshall,
        n_up: None,
        path,
    };
    if root.command == "tomo" {
        let alpha = record.alpha.max(1);
        vector.visit(crate::ansatz::Rbm::new(
            n,
            crate::ansatz::RbmKind::Dense { alpha },
        ))
    } else {
        let model = config::parse(&root.config_text, path, &[])
            .map_err(|e| Error::file(path, format!("its stored configuration is invalid: {e}")))?;
        check_units(path, &root.units, model.config.model.units)?;
        io::read_finished(&file).map_err(|e| Error::file(path, e))?;
        record
            .check_basis(&model.hamiltonian.marshall_sites())
            .map_err(|e| Error::file(path, e))?;
        vector.n_up = model.sampled_n_up;
        ansatz::visit(
            &model.config.ansatz,
            &model.lattice,
            &model.transform,
            0,
            vector,
        )
    }
}

/// The normalized physical state vector of a stored parameter record.
struct StateVector<'a> {
    record: &'a io::AnsatzRecord,
    marshall: &'a [usize],
    /// The S^z sector the run sampled: amplitudes outside it are zero.
    n_up: Option<usize>,
    path: &'a Path,
}

impl AnsatzVisitor for StateVector<'_> {
    type Output = Result<Vec<num_complex::Complex64>>;
    fn visit<A: Ansatz + 'static>(self, mut ansatz: A) -> Self::Output {
        let p = &self.record.parameters;
        if self.record.kind != ansatz.kind()
            || p.len() != ansatz.n_parameters()
            || !p.iter().all(|z| z.re.is_finite() && z.im.is_finite())
        {
            return Err(Error::file(
                self.path,
                format!(
                    "ansatz: {} with {} parameters does not match the stored configuration ({} with {}), or holds non-finite numbers",
                    self.record.kind,
                    p.len(),
                    ansatz.kind(),
                    ansatz.n_parameters()
                ),
            ));
        }
        ansatz.set_parameters(p);
        let factor = |sigma: &[i8]| {
            if self
                .n_up
                .is_some_and(|k| sigma.iter().filter(|&&s| s > 0).count() != k)
            {
                0.0
            } else if self.marshall.iter().filter(|&&i| sigma[i] < 0).count() % 2 == 0 {
                1.0
            } else {
                -1.0
            }
        };
        crate::tomography::metrics::normalized_state(&ansatz, factor).ok_or_else(|| {
            Error::file(
                self.path,
                "its state vanishes in the sampled sector (every amplitude is rounding noise, or none is finite), so it cannot be normalized",
            )
        })
    }
}
